"""Demo mode: FUN play money from the house faucet. FUN never mixes with real currencies."""

from __future__ import annotations

import re

from sqlalchemy import select

from casino_app.core.db import ledger_tx
from casino_app.core.settings import get_settings
from casino_app.payments import ledger
from casino_app.payments.models import JournalEntry
from casino_app.security import ratelimit

_KEY = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


class TopUpRefused(Exception):
    """``str(exc)`` is the message for the player."""


def fun_balance(player_id: str) -> int:
    with ledger_tx(readonly=True) as s:
        b = ledger.player_balances(s, player_id).get("FUN")
    return 0 if b is None else b.available


def top_up_fun(player_id: str, request_key: object) -> int:
    """Refill the player's FUN balance to the top-up amount; returns the new balance.

    Allowed only while the balance is below a tenth of that amount, so play money stays
    play money. ``request_key`` (from the browser) makes a resent click a no-op.
    """
    if not isinstance(request_key, str) or not _KEY.match(request_key):
        raise TopUpRefused("Bad request id: reload the page and try again.")
    amount = get_settings().fun_topup_amount
    try:
        ratelimit.hit("fun-topup", "5/minute;30/hour", player_id)
    except ratelimit.RateLimited as exc:
        raise TopUpRefused(f"Too many top-ups. Try again in {exc.retry_after} s.") from None
    with ledger_tx() as s:
        player = ledger.player_account(s, player_id, "FUN")
        current = ledger.player_balances(s, player_id)["FUN"]
        key = f"fun-topup:{player_id}:{request_key}"
        if current.available * 10 >= amount:
            # a resend of a top-up that already happened still answers with the balance
            if s.execute(select(JournalEntry.id).where(JournalEntry.key == key)
                         ).first() is not None:
                return current.available
            raise TopUpRefused("You can top up play money when it runs low.")
        faucet = ledger.house_account(s, "FUN", "faucet")
        try:
            r = ledger.transfer(s, key, "topup", faucet, player, amount - current.available,
                                memo="FUN top-up")
        except ledger.IdempotencyConflict:
            return current.available  # this click was already served
        return r.balances.get(player, current.available)
