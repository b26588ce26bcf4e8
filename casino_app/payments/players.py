"""Pseudonymous players in the ledger database."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from casino_app.core.db import ledger_tx
from casino_app.payments.models import Player


def ensure_player(player_id: str) -> None:
    """Create the ledger's record of a player id; a repeat is a no-op."""
    with ledger_tx() as s:
        if s.get(Player, player_id) is not None:
            return
    try:
        with ledger_tx() as s:
            s.add(Player(player_id=player_id))
    except IntegrityError:
        pass  # created concurrently: the same outcome
