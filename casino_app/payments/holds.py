"""Holds on a player's money for staff review (e.g. a reorg reversed a deposit the player
had already spent: they owe it). While a hold is open the player can neither bet nor
withdraw; an admin releases it (``player_holds.released_at`` and ``released_by``, the
staff member's user id: the ledger database names nobody, so the admin's note lives in
the audit log, written by the caller, ``users/staff_money.release_hold``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from casino_app.core.clock import utcnow
from casino_app.payments.hold_models import PlayerHold

MESSAGE = ("Your account is under review by our staff: betting and withdrawals are paused. "
           "Please contact support.")


class HoldNotFound(LookupError):
    """No hold with that id on that player."""


class HoldAlreadyReleased(Exception):
    """The hold was released before (by ``released_by``)."""


@dataclass(frozen=True)
class HoldView:
    id: int
    player_id: str
    reason: str
    detail: str
    created_at: datetime
    released_at: datetime | None
    released_by: int | None


def _view(h: PlayerHold) -> HoldView:
    return HoldView(h.id, h.player_id, h.reason, h.detail, h.created_at, h.released_at,
                    h.released_by)


def on_hold(s: Session, player_id: str) -> bool:
    return s.execute(select(PlayerHold.id).where(
        PlayerHold.player_id == player_id, PlayerHold.released_at.is_(None)).limit(1)
    ).first() is not None


def holds_of(s: Session, player_id: str, limit: int = 20) -> list[HoldView]:
    """The player's holds, open ones first, then the newest."""
    rows = s.execute(select(PlayerHold).where(PlayerHold.player_id == player_id)
                     .order_by(PlayerHold.released_at.is_not(None), PlayerHold.id.desc())
                     .limit(limit)).scalars()
    return [_view(h) for h in rows]


def release(s: Session, hold_id: int, staff_user_id: int, player_id: str) -> HoldView:
    """Release the open hold ``hold_id`` of ``player_id`` (row locked: two admins releasing
    at once release it once). The caller checks that ``staff_user_id`` may, and audits."""
    h = s.execute(select(PlayerHold).where(PlayerHold.id == hold_id,
                                           PlayerHold.player_id == player_id)
                  .with_for_update()).scalar_one_or_none()
    if h is None:
        raise HoldNotFound(hold_id)
    if h.released_at is not None:
        raise HoldAlreadyReleased(hold_id)
    h.released_at, h.released_by = utcnow(), staff_user_id
    s.flush()
    return _view(h)
