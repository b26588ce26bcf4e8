"""Holds on a player's money for staff review (e.g. a reorg reversed a deposit the player
had already spent: they owe it). While a hold is open the player can neither bet nor
withdraw; staff release it (``player_holds.released_at``)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from casino_app.payments.eth.watch_models import PlayerHold

MESSAGE = ("Your account is under review by our staff: betting and withdrawals are paused. "
           "Please contact support.")


def on_hold(s: Session, player_id: str) -> bool:
    return s.execute(select(PlayerHold.id).where(
        PlayerHold.player_id == player_id, PlayerHold.released_at.is_(None)).limit(1)
    ).first() is not None
