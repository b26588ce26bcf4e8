"""The ledger against a simple in-memory model (TRUST.md), on SQLite and on Postgres."""

from __future__ import annotations

import pytest

from casino_app.core.db import ledger_tx
from casino_app.payments import ledger


class _Abort(Exception):
    pass


def test_an_account_created_in_a_rolled_back_transaction_is_not_remembered(
        any_env: str) -> None:
    with pytest.raises(_Abort), ledger_tx() as s:
        ledger.house_account(s, "BTC", "bankroll", 5)
        raise _Abort
    with ledger_tx() as s:  # SQLite hands the freed id to the next account
        player = ledger.player_account(s, "p-rollback", "BTC")
    with ledger_tx() as s:
        bank = ledger.house_account(s, "BTC", "bankroll", 5)
        ledger.transfer(s, "fund-5", "capital", ledger.house_account(s, "BTC", "custody"),
                        bank, 100)
    assert bank != player
    with ledger_tx(readonly=True) as s:
        assert ledger.player_balances(s, "p-rollback")["BTC"].balance == 0
        assert ledger.info(s, bank).kind == "bankroll"
        assert [f.check for f in ledger.check_invariants(s) if f.violations] == []
