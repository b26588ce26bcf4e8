"""Deposits on any chain, once that chain's watcher has found them: recorded once, credited,
confirmed, and taken back when their block leaves the chain.

Each chain's watcher (payments/eth/watcher.py) reads its node, finds the transfers to our
deposit addresses and calls a :class:`DepositBook` inside its own ledger transactions;
nothing here reads a node. The rows (payments/deposit_models.py) are keyed by (chain,
transaction, index): on Ethereum the log index or ``-1 - position`` of a call, on Bitcoin
the output index.

A deposit's states: ``seen`` (in a block, not credited: over the pending cap), ``pending``
(credited at 1 confirmation: playable, not withdrawable), ``available`` (its
confirmations, or its block final), ``reversed`` (its block left the chain: the credit was
taken back), ``dust`` (below the chain's threshold: recorded, never credited). A watcher
that reads its node's mempool (Bitcoin's) also records what it sees there:
``incoming`` (unconfirmed, no block: shown to the player, never credited, never playable)
becomes ``seen`` or ``dust`` when mined, or ``dropped`` when it leaves the mempool without
being mined (double-spent, replaced: never credited, not shown; ``incoming`` again if it
comes back). Credits are
``deposit:<chain>:<tx>:<index>:<n>`` entries custody -> player (``n`` counts credits: a
deposit reversed by a reorg and mined again is credited again). A reversal takes back what
the player still has; the rest goes to the player's ``debt`` account (may be negative) and
a hold puts the player under staff review (payments/holds.py): never a silent edit.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from casino_app.core.clock import utcnow
from casino_app.core.logging import get_logger
from casino_app.payments import ledger
from casino_app.payments.assets import Asset
from casino_app.payments.deposit_models import ChainBlock, ChainDeposit
from casino_app.payments.hold_models import PlayerHold

log = get_logger("casino.payments.deposits")


@dataclass
class DepositChanges:
    """What a watcher's pass changed, and whose deposits (their open tabs are refreshed)."""

    deposits: int = 0
    credited: int = 0
    made_available: int = 0
    reversed: int = 0
    players: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Found:
    """A transfer to one of our deposit addresses, as a watcher found it in a block."""

    tx_hash: str
    log_index: int       # the index that makes (chain, tx, index) unique (see the module)
    asset: Asset
    address: str
    sender: str
    raw: int             # on-chain units


class DepositBook:
    """The deposits of one chain in the ledger database, with that chain's rules: the
    confirmations that make a deposit available, the pending cap and the dust threshold
    per currency (ledger base units). It logs to the chain's ``logger`` with event names
    starting with ``log_prefix`` (``eth``: ``eth_reversed_spent_deposit``)."""

    def __init__(self, chain: str, confirmations: int, pending_cap: Mapping[str, int],
                 dust: Mapping[str, int], *, log_prefix: str, logger: Any = None) -> None:
        self.chain, self.confirmations = chain, confirmations
        self.pending_cap, self.dust = pending_cap, dust
        self.log_prefix, self.log = log_prefix, logger or log

    # --- recording ---

    def record(self, s: Session, f: Found, player_id: str, number: int, block_hash: str,
               res: DepositChanges) -> bool:
        """Store a deposit (once). A deposit that a reorg reversed and that is mined again
        gets its new block and will be credited again. True when something was stored."""
        row = s.execute(select(ChainDeposit).where(
            ChainDeposit.chain == self.chain, ChainDeposit.tx_hash == f.tx_hash,
            ChainDeposit.log_index == f.log_index)).scalar_one_or_none()
        amount = f.asset.to_ledger(f.raw)
        dust = amount < max(1, self.dust.get(f.asset.code, 0))
        now = utcnow()
        if row is None:
            s.add(ChainDeposit(
                chain=self.chain, tx_hash=f.tx_hash, log_index=f.log_index,
                block_number=number, block_hash=block_hash, currency=f.asset.code,
                address=f.address, sender=f.sender, player_id=player_id,
                amount_raw=str(f.raw), amount=amount, state="dust" if dust else "seen",
                credits=0, owed=0, created_at=now, updated_at=now))
        elif row.state in ("reversed", "incoming", "dropped"):
            row.block_number, row.block_hash, row.updated_at = number, block_hash, now
            row.state = "dust" if dust else "seen"
        else:
            return False  # already recorded in a block we still hold
        res.players.add(player_id)
        return True

    # --- unconfirmed (a watcher that reads the mempool) ---

    def see_unconfirmed(self, s: Session, f: Found, player_id: str,
                        res: DepositChanges) -> bool:
        """Store a deposit seen in the node's mempool as ``incoming`` (never credited), or
        make a ``dropped`` one incoming again. A deposit already recorded from a block (or
        reversed: its credit history stays visible) is left as it is. True when something
        changed."""
        row = s.execute(select(ChainDeposit).where(
            ChainDeposit.chain == self.chain, ChainDeposit.tx_hash == f.tx_hash,
            ChainDeposit.log_index == f.log_index)).scalar_one_or_none()
        now = utcnow()
        if row is None:
            s.add(ChainDeposit(
                chain=self.chain, tx_hash=f.tx_hash, log_index=f.log_index,
                block_number=None, block_hash=None, currency=f.asset.code,
                address=f.address, sender=f.sender, player_id=player_id,
                amount_raw=str(f.raw), amount=f.asset.to_ledger(f.raw), state="incoming",
                credits=0, owed=0, created_at=now, updated_at=now))
        elif row.state == "dropped":
            row.state, row.updated_at = "incoming", now
        else:
            return False
        res.players.add(player_id)
        return True

    def drop_unconfirmed(self, s: Session, in_mempool: Collection[str],
                         res: DepositChanges) -> int:
        """Mark ``dropped`` the incoming deposits whose transaction is neither in
        ``in_mempool`` (the node's mempool, read while the watcher's tip was the node's)
        nor mined; returns how many. Nothing is credited, so nothing is taken back."""
        rows = s.execute(select(ChainDeposit).where(
            ChainDeposit.chain == self.chain, ChainDeposit.state == "incoming")
            .order_by(ChainDeposit.id).with_for_update()).scalars().all()
        gone = [r for r in rows if r.tx_hash not in in_mempool]
        for row in gone:
            row.state, row.updated_at = "dropped", utcnow()
            res.players.add(row.player_id)
        return len(gone)

    # --- confirmations and credits ---

    def confirm(self, s: Session, tip: int, res: DepositChanges,
                finalized: int | None = None) -> None:
        """Credit and confirm the open deposits against the watcher's tip: final at
        ``confirmations`` (or at or below the ``finalized`` block when given); before
        that credited as pending while the player's pending credits stay within the cap."""
        rows = s.execute(select(ChainDeposit).where(
            ChainDeposit.chain == self.chain, ChainDeposit.state.in_(("seen", "pending")))
            .order_by(ChainDeposit.id).with_for_update()).scalars().all()
        for row in rows:
            if row.block_number is None:  # seen and pending deposits are in a block
                raise RuntimeError(f"deposit #{row.id} is {row.state} without a block")
            confs = tip - row.block_number + 1
            final = (row.block_number <= finalized if finalized is not None
                     else confs >= self.confirmations)
            if row.state == "pending":
                if final:
                    row.state, row.updated_at = "available", utcnow()
                    res.made_available += 1
                    res.players.add(row.player_id)
                continue
            if not final and not self._within_cap(s, row):
                continue
            self._credit(s, row)
            row.state = "available" if final else "pending"
            row.updated_at = utcnow()
            res.credited += 1
            res.made_available += final
            res.players.add(row.player_id)

    def _within_cap(self, s: Session, row: ChainDeposit) -> bool:
        cap = self.pending_cap.get(row.currency, 0)
        pending = s.execute(select(func.coalesce(func.sum(ChainDeposit.amount), 0)).where(
            ChainDeposit.player_id == row.player_id, ChainDeposit.currency == row.currency,
            ChainDeposit.state == "pending")).scalar_one()
        return int(pending) + row.amount <= cap

    def _credit(self, s: Session, row: ChainDeposit) -> None:
        row.credits += 1
        player = ledger.player_account(s, row.player_id, row.currency)
        ledger.transfer(
            s, f"deposit:{self.chain}:{row.tx_hash}:{row.log_index}:{row.credits}", "deposit",
            ledger.house_account(s, row.currency, "custody"), player, row.amount,
            memo=f"{self.chain} deposit {row.tx_hash}")
        if row.owed:
            self._repay(s, row, player)

    def _repay(self, s: Session, row: ChainDeposit, player: int) -> None:
        """The deposit is credited again (mined again after a reorg reversed it, when the
        player had spent it and owed the rest): what it left owing is paid back from this
        credit first, and once nothing is owed the hold its reversal opened is released."""
        bal = ledger.balance_of(s, player, lock=True)
        repay = min(row.owed, max(0, bal.balance - bal.reserved))
        if repay:
            ledger.post_entry(
                s, f"deposit-repay:{self.chain}:{row.tx_hash}:{row.log_index}:{row.credits}",
                "deposit_repaid",
                [(player, -repay),
                 (ledger.account(s, row.player_id, row.currency, "debt"), repay)],
                memo=f"{self.chain} deposit {row.tx_hash} mined again: its debt repaid")
            row.owed -= repay
        if row.owed:
            return
        for hold in s.execute(select(PlayerHold).where(
                PlayerHold.player_id == row.player_id, PlayerHold.reason == "deposit_reversed",
                PlayerHold.detail.startswith(self._hold_detail_prefix(row)),
                PlayerHold.released_at.is_(None)).with_for_update()).scalars():
            hold.released_at = utcnow()  # released_by empty: by the system
        self.log.info(f"{self.log_prefix}_reversed_deposit_repaid", player_id=row.player_id,
                      tx=row.tx_hash, currency=row.currency, repaid=repay)

    def _hold_detail_prefix(self, row: ChainDeposit) -> str:
        return f"{self.chain} {row.tx_hash}:"

    # --- reorgs ---

    def rewind(self, s: Session, ancestor: int, res: DepositChanges) -> int:
        """Drop the stored blocks above ``ancestor`` and reverse their deposits (in the
        caller's transaction); returns how many blocks were dropped."""
        rows = s.execute(select(ChainDeposit).where(
            ChainDeposit.chain == self.chain, ChainDeposit.block_number > ancestor,
            ChainDeposit.state != "reversed").order_by(ChainDeposit.id)
            .with_for_update()).scalars().all()
        for row in rows:
            self._reverse(s, row)
            res.reversed += 1
            res.players.add(row.player_id)
        return s.query(ChainBlock).filter(
            ChainBlock.chain == self.chain, ChainBlock.number > ancestor
        ).delete(synchronize_session=False)

    def _reverse(self, s: Session, row: ChainDeposit) -> None:
        credited = row.state in ("pending", "available")
        row.state, row.updated_at = "reversed", utcnow()
        if not credited:
            return
        player = ledger.player_account(s, row.player_id, row.currency)
        custody = ledger.house_account(s, row.currency, "custody")
        bal = ledger.balance_of(s, player, lock=True)
        back = min(row.amount, max(0, bal.balance - bal.reserved))
        owed = row.amount - back
        moves = [(custody, row.amount)]
        if back:
            moves.append((player, -back))
        if owed:
            moves.append((ledger.account(s, row.player_id, row.currency, "debt"), -owed))
        ledger.post_entry(
            s, f"deposit-reversal:{self.chain}:{row.tx_hash}:{row.log_index}:{row.credits}",
            "deposit_reversal", moves, memo=f"{self.chain} reorg dropped {row.tx_hash}")
        if owed:
            row.owed += owed
            s.add(PlayerHold(player_id=row.player_id, reason="deposit_reversed",
                             detail=f"{self._hold_detail_prefix(row)} owes {owed} "
                                    f"{row.currency} base units", created_at=utcnow()))
            self.log.warning(f"{self.log_prefix}_reversed_spent_deposit",
                             player_id=row.player_id, tx=row.tx_hash, currency=row.currency,
                             owed=owed)


# --- the cursor both watchers follow ---------------------------------------------------------

def stored_tip(s: Session, chain: str) -> ChainBlock | None:
    """The highest block ``chain``'s watcher stored: its cursor (None before its first)."""
    return s.execute(select(ChainBlock).where(ChainBlock.chain == chain)
                     .order_by(ChainBlock.number.desc()).limit(1)).scalar_one_or_none()


def next_range(tip: ChainBlock | None, head: int, first: int | None, confirmations: int,
               batch: int) -> tuple[int, int]:
    """The blocks a pass reads, (start, end) inclusive (empty when start > end): after the
    stored tip; on the very first pass from ``first`` when given, else from the head
    minus the confirmations; at most ``batch`` of them, never past the node's head."""
    if tip is not None:
        start = tip.number + 1
    else:
        start = first if first is not None else max(0, head - confirmations)
    return start, min(head, start + batch - 1)


# --- reads ---------------------------------------------------------------------------------

def withdrawable(s: Session, player_id: str, currency_code: str) -> int:
    """Available balance minus deposits credited but not yet confirmed (not withdrawable)."""
    bal = ledger.player_balances(s, player_id).get(currency_code)
    if bal is None:
        return 0
    pending = s.execute(select(func.coalesce(func.sum(ChainDeposit.amount), 0)).where(
        ChainDeposit.player_id == player_id, ChainDeposit.currency == currency_code,
        ChainDeposit.state == "pending")).scalar_one()
    return max(0, bal.balance - bal.reserved - int(pending))


def deposits_of(s: Session, player_id: str, limit: int = 50) -> list[ChainDeposit]:
    return list(s.execute(select(ChainDeposit).where(ChainDeposit.player_id == player_id)
                          .order_by(ChainDeposit.id.desc()).limit(limit)).scalars())
