"""One player's wallet as one read-only transaction sees it: the balances the header shows,
and the deposits, withdrawable amounts and withdrawals of the wallet page. The page's
on_load, the header and the live push (``ui/push.py``) all read it here, so they never
disagree (a deposit shown credited beside a header balance read before it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from casino_app.core.db import ledger_tx
from casino_app.payments import activity, ledger, withdrawals
from casino_app.payments.deposits import withdrawable
from casino_app.payments.withdrawals import WithdrawalView

ROWS = 50  # deposits per chain and withdrawals shown


@dataclass(frozen=True)
class WalletView:
    player_id: str
    # currency -> (available, reserved), every currency the player has an account in
    balances: dict[str, tuple[int, int]]
    # chain -> its deposits (only the chains asked for)
    deposits: dict[str, activity.PlayerDeposits] = field(default_factory=dict)
    # currency -> what can be withdrawn now (only the currencies asked for)
    withdrawable: dict[str, int] = field(default_factory=dict)
    withdrawals: list[WithdrawalView] | None = None  # None: not asked for

    def available(self, code: str) -> int:
        return self.balances.get(code, (0, 0))[0]


def read(player_id: str, *, deposits: Mapping[str, Sequence[str]] | None = None,
         withdraw: Iterable[str] | None = None, rows: int = ROWS) -> WalletView:
    """The balances always; ``deposits`` {chain: currencies}: those chains' deposits;
    ``withdraw`` (currencies): what can be withdrawn in each, and the withdrawals."""
    with ledger_tx(readonly=True) as s:
        balances = {code: (b.available, b.reserved)
                    for code, b in ledger.player_balances(s, player_id).items()}
        chains = {chain: activity.deposits_in(s, player_id, codes, rows, chain)
                  for chain, codes in (deposits or {}).items()}
        codes = list(withdraw) if withdraw is not None else None
        return WalletView(
            player_id, balances, chains,
            {c: withdrawable(s, player_id, c) for c in codes or []},
            withdrawals.withdrawals_in(s, player_id, rows) if codes is not None else None)
