"""Ledger helpers shared by the Ethereum tests (test-only credits and checks)."""

from __future__ import annotations

from collections.abc import Callable

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


# A recipient contract with a switch: storage slot 0 zero accepts any payment, non-zero
# reverts (PUSH1 0 SLOAD PUSH1 7 JUMPI STOP JUMPDEST PUSH1 0 DUP1 REVERT).
SWITCH_CODE = "0x600054600757005b600080fd"


def switch_recipient(anvil) -> tuple[str, Callable[[bool], None]]:  # noqa: ANN001
    """(address, set(refuse)) of a contract that accepts ether until switched to refuse."""
    addr = fresh_address()
    anvil.rpc("anvil_setCode", [addr, SWITCH_CODE])

    def refuse(on: bool = True) -> None:
        anvil.rpc("anvil_setStorageAt", [addr, "0x" + "00" * 32,
                                         "0x" + "00" * 31 + ("01" if on else "00")])

    return addr, refuse
