"""What the wallet page shows about a player's deposits and withdrawals, and what changed
since a last look, on any chain (Ethereum's is the one callers get when they name none).

Read-only views of the watchers' tables (payments/deposit_models.py) for the web side:

* ``player_deposits``: a player's recent deposits on a chain with their confirmations
  (a ``dropped`` one, which left the mempool unmined, is not shown), and per currency what
  is withdrawable, credited but still confirming (``pending``: playable, not
  withdrawable), seen but not yet credited (``confirming``: over the pending cap) and
  unconfirmed (``incoming``: in the node's mempool, Bitcoin's; never credited).
* ``changes_since`` / ``withdrawal_changes_since`` / ``with_open_deposits`` /
  ``chain_tip``: what the web process's push loop (ui/push.py) asks every second to know
  whose open wallet tabs to refresh; ``ChangeTracker`` follows the tips of the chains it
  is given (a deposit on any chain has its ``updated_at`` moved when it changes).

The chain's own part of the wallet page (Ethereum: the EIP-681 URI in the QR code, the
network's name; Bitcoin: the BIP21 URI, payments/btc/keys.py) is its package's.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from casino_app.core.db import ledger_tx
from casino_app.payments.chains import DEFAULT_CHAIN
from casino_app.payments.deposit_models import ChainBlock, ChainDeposit
from casino_app.payments.deposits import withdrawable
from casino_app.payments.withdrawal_models import Withdrawal

_BATCH = 500


@dataclass(frozen=True)
class Deposit:
    id: int
    currency: str
    amount: int           # ledger base units
    state: str            # incoming, seen, pending, available, reversed, dust
    confirmations: int    # 0 when unconfirmed, reversed, or above the watcher's tip
    tx_hash: str
    created_at: datetime
    chain: str = DEFAULT_CHAIN


@dataclass(frozen=True)
class PlayerDeposits:
    tip: int | None                 # the highest block the watcher has processed
    deposits: list[Deposit]         # newest first
    withdrawable: dict[str, int]    # per currency asked for
    pending: dict[str, int]         # credited, not yet withdrawable
    confirming: dict[str, int]      # seen, not credited until confirmed
    incoming: dict[str, int] = field(default_factory=dict)  # unconfirmed (mempool)


def chain_tip(s: Session, chain: str = DEFAULT_CHAIN) -> int | None:
    return s.execute(select(func.max(ChainBlock.number))
                     .where(ChainBlock.chain == chain)).scalar_one()


def _confirmations(tip: int | None, row: ChainDeposit) -> int:
    if tip is None or row.state == "reversed" or row.block_number is None \
            or row.block_number > tip:
        return 0
    return tip - row.block_number + 1


def player_deposits(player_id: str, currencies: Iterable[str], limit: int = 50,
                    chain: str = DEFAULT_CHAIN) -> PlayerDeposits:
    """The player's last ``limit`` deposits on ``chain`` (dropped ones left out) and their
    amounts per currency (one read-only transaction)."""
    with ledger_tx(readonly=True) as s:
        return deposits_in(s, player_id, currencies, limit, chain)


def deposits_in(s: Session, player_id: str, currencies: Iterable[str], limit: int = 50,
                chain: str = DEFAULT_CHAIN) -> PlayerDeposits:
    """``player_deposits`` inside the caller's transaction."""
    codes = list(currencies)
    tip = chain_tip(s, chain)
    rows = s.execute(select(ChainDeposit).where(
        ChainDeposit.player_id == player_id, ChainDeposit.chain == chain,
        ChainDeposit.state != "dropped")
        .order_by(ChainDeposit.id.desc()).limit(limit)).scalars().all()
    sums = {(cur, state): int(total or 0) for cur, state, total in s.execute(
        select(ChainDeposit.currency, ChainDeposit.state, func.sum(ChainDeposit.amount))
        .where(ChainDeposit.player_id == player_id, ChainDeposit.chain == chain,
               ChainDeposit.state.in_(("seen", "pending", "incoming")))
        .group_by(ChainDeposit.currency, ChainDeposit.state)).tuples().all()}
    return PlayerDeposits(
        tip=tip,
        deposits=[Deposit(r.id, r.currency, r.amount, r.state, _confirmations(tip, r),
                          r.tx_hash, r.created_at, r.chain) for r in rows],
        withdrawable={c: withdrawable(s, player_id, c) for c in codes},
        pending={c: sums.get((c, "pending"), 0) for c in codes},
        confirming={c: sums.get((c, "seen"), 0) for c in codes},
        incoming={c: sums.get((c, "incoming"), 0) for c in codes})


@dataclass(frozen=True)
class Change:
    deposit_id: int
    player_id: str
    updated_at: datetime


def changes_since(s: Session, since: datetime) -> list[Change]:
    """Deposits updated at or after ``since`` (index ix_chain_deposit_updated)."""
    return [Change(i, p, u) for i, p, u in s.execute(
        select(ChainDeposit.id, ChainDeposit.player_id, ChainDeposit.updated_at)
        .where(ChainDeposit.updated_at >= since)
        .order_by(ChainDeposit.updated_at)).tuples().all()]


def withdrawal_changes_since(s: Session, since: datetime) -> list[Change]:
    """Withdrawals updated at or after ``since`` (index ix_withdrawal_updated): requested,
    batched, confirmed, failed, rejected. ``deposit_id`` holds the withdrawal's id."""
    return [Change(i, p, u) for i, p, u in s.execute(
        select(Withdrawal.id, Withdrawal.player_id, Withdrawal.updated_at)
        .where(Withdrawal.updated_at >= since)
        .order_by(Withdrawal.updated_at)).tuples().all()]


def withdrawable_amounts(player_id: str, currencies: Iterable[str]) -> dict[str, int]:
    """Per currency what the player can withdraw now (base units)."""
    with ledger_tx(readonly=True) as s:
        return {c: withdrawable(s, player_id, c) for c in currencies}


def with_open_deposits(s: Session, players: Collection[str], chain: str = DEFAULT_CHAIN
                       ) -> set[str]:
    """Those of ``players`` with deposits still counting confirmations (seen, pending)."""
    found: set[str] = set()
    ordered = sorted(players)
    for i in range(0, len(ordered), _BATCH):
        found.update(s.execute(select(ChainDeposit.player_id).distinct().where(
            ChainDeposit.chain == chain, ChainDeposit.state.in_(("seen", "pending")),
            ChainDeposit.player_id.in_(ordered[i:i + _BATCH]))).scalars())
    return found


class ChangeTracker:
    """Remembers what it has reported: ``poll`` returns the players whose deposits or
    withdrawals changed since the last call (any chain), or who have unconfirmed deposits
    on a chain whose tip moved (the ``chains`` followed: DEFAULT_CHAIN unless given).

    Rows are read with a look-back window (a transaction may commit a little after the
    time it stamped), and a row already reported with the same ``updated_at`` is not
    reported again."""

    LOOKBACK = timedelta(seconds=10)

    def __init__(self, now: datetime, chain: str = DEFAULT_CHAIN,
                 chains: Sequence[str] | None = None) -> None:
        self.chains = tuple(chains) if chains is not None else (chain,)
        self.cursor = now
        self.tips: dict[str, int | None] = {}  # per chain, once known
        self._seen: dict[int, datetime] = {}
        self.w_cursor = now
        self._w_seen: dict[int, datetime] = {}

    @property
    def tip(self) -> int | None:
        """The first chain's tip (the one callers that name no chain follow)."""
        return self.tips.get(self.chains[0]) if self.chains else None

    def poll(self, s: Session, watched: Collection[str]) -> tuple[set[str], int | None]:
        """(players of ``watched`` to refresh, the first chain's tip)."""
        rows = changes_since(s, self.cursor - self.LOOKBACK)
        affected = {r.player_id for r in rows if self._seen.get(r.deposit_id) != r.updated_at}
        self._seen = {r.deposit_id: r.updated_at for r in rows}
        if rows:
            self.cursor = max(self.cursor, rows[-1].updated_at)
        moved = withdrawal_changes_since(s, self.w_cursor - self.LOOKBACK)
        affected |= {r.player_id for r in moved if self._w_seen.get(r.deposit_id) != r.updated_at}
        self._w_seen = {r.deposit_id: r.updated_at for r in moved}
        if moved:
            self.w_cursor = max(self.w_cursor, moved[-1].updated_at)
        for chain in self.chains:
            tip = chain_tip(s, chain)
            if chain not in self.tips or tip != self.tips[chain]:
                if chain in self.tips:
                    affected |= with_open_deposits(s, watched, chain)
                self.tips[chain] = tip
        return affected & set(watched), self.tip
