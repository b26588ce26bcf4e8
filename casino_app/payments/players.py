"""Pseudonymous players in the ledger database."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from casino_app.core.db import ledger_tx
from casino_app.core.settings import get_settings
from casino_app.payments import ledger
from casino_app.payments.models import Player


def ensure_player(player_id: str) -> None:
    """Create the ledger's record of a player id, with the play money a new account
    starts with (``CASINO_FUN_WELCOME``, from the FUN faucet, once: its entry key is the
    player's); a repeat is a no-op."""
    with ledger_tx() as s:
        if s.get(Player, player_id) is not None:
            return
    try:
        with ledger_tx() as s:
            s.add(Player(player_id=player_id))
    except IntegrityError:
        return  # created concurrently: the same outcome (and its welcome)
    welcome = get_settings().fun_welcome
    if welcome > 0:
        with ledger_tx() as s:
            try:
                ledger.transfer(s, f"fun-welcome:{player_id}", "topup",
                                ledger.house_account(s, "FUN", "faucet"),
                                ledger.player_account(s, player_id, "FUN"), welcome,
                                memo="FUN to start with")
            except ledger.IdempotencyConflict:
                pass  # already given
