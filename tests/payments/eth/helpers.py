"""Ledger helpers shared by the Ethereum tests (test-only credits and checks)."""

from __future__ import annotations

from eth_account import Account

from casino_app.core.db import ledger_tx
from casino_app.payments import ledger


def fund(player: str, code: str, amount: int) -> None:
    """A test-only credit of ``amount`` from custody (as if deposited)."""
    with ledger_tx() as s:
        ledger.transfer(s, f"test-deposit:{player}:{code}:{amount}", "deposit",
                        ledger.house_account(s, code, "custody"),
                        ledger.player_account(s, player, code), amount)


def balance(player: str, code: str) -> ledger.Balance:
    with ledger_tx(readonly=True) as s:
        return ledger.player_balances(s, player).get(code) or ledger.Balance(code, 0, 0)


def invariants_clean() -> None:
    with ledger_tx(readonly=True) as s:
        assert [(f.check, f.examples) for f in ledger.check_invariants(s) if f.violations] \
            == []


def fresh_address() -> str:
    return Account.create().address
