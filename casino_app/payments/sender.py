"""The transactions we send, on any chain: recorded before they are broadcast, settled once,
and what settling them does to the withdrawals they pay.

Rows of ``withdrawal_batches`` (payments/withdrawal_models.py), with every signed version
of each in ``withdrawal_batch_txs``. The lifecycle every chain's sender keeps
(:class:`ChainSender`; Ethereum's is payments/eth/sender.py, which the withdrawal batcher
and the sweeper build on):

1. **Record before broadcast.** A transaction is signed and stored with its raw bytes (the
   batch row and its version 0), its withdrawals marked ``batched``, in one ledger
   transaction; only then is it broadcast. A crash in between leaves a recorded
   transaction that a later run broadcasts: a second payment for the same withdrawals is
   never signed.
2. **Rebroadcast.** When the node knows none of its versions, the latest recorded raw
   transaction is sent again, byte for byte.
3. **Fee bump.** Not mined ``fee_bump_seconds`` after its latest version, a replacement
   that can only be mined instead of the original (Ethereum: the same call with the same
   nonce and higher fees; Bitcoin: RBF over the same inputs) is recorded as a new version
   BEFORE it is broadcast. Whichever version is mined settles the batch.
4. **Settle once**, after ``confirmations``: in one ledger transaction, the batch row
   locked and its state checked, the network fee booked (fees -> custody) and each
   withdrawal posted, voided, queued again, given back to its cold-wallet payment or left
   for staff, as :meth:`ChainSender._outcomes` says.
5. **Its slot used by another transaction.** When what the transaction needed to be mined
   (Ethereum: its sender's nonce; Bitcoin: its inputs) was used at the confirmed depth
   and none of its versions was, the chain decides (:meth:`ChainSender._slot_taken`):
   find the transaction that did, alert, settle as not paid only after a grace.

A chain's sender answers the chain's questions: the node's head, a version's receipt and
whether the node knows it, sending raw bytes, the bump, the slot, the network fee.

Crash points (``fault``) let tests stop a run right after recording (before the
broadcast), right after the broadcast (before recording it) and after a fee bump.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session

from casino_app.core.clock import utcnow
from casino_app.core.db import ledger_tx
from casino_app.core.logging import get_logger
from casino_app.core.metrics import PAYMENT_ANOMALIES
from casino_app.payments import ledger
from casino_app.payments.hold_models import PlayerHold
from casino_app.payments.withdrawal_models import (
    OPEN_BATCH_STATES,
    Withdrawal,
    WithdrawalBatch,
    WithdrawalBatchTx,
)

OPEN = OPEN_BATCH_STATES
REFUSED = "the address refused the payment"

# Tests only: called at named points ("signed": batch recorded, not broadcast;
# "broadcast": sent, not recorded as sent; "bumped": a fee bump recorded, not broadcast)
# with the batch id; raising stops the run there.
fault: Callable[[str, int], None] | None = None


def _fault(point: str, batch_id: int) -> None:
    if fault is not None:
        fault(point, batch_id)


@dataclass
class RunResult:
    created: int = 0        # new transactions recorded (pay and approve)
    broadcast: int = 0      # first broadcasts
    rebroadcast: int = 0    # a recorded raw transaction sent again
    bumped: int = 0         # fee bumps signed
    confirmed: int = 0      # batches settled as paid
    failed: int = 0         # batches settled as not paid
    paid: int = 0           # withdrawals posted
    voided: int = 0         # withdrawals whose reservation was voided
    requeued: int = 0       # withdrawals of a reverted batch queued again
    anomalies: int = 0      # transactions or withdrawals left for staff (see PAYMENT_ANOMALIES)

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class OpenBatch:
    """An open (signed or sent) recorded transaction, as its row says."""

    id: int
    kind: str
    currency: str
    from_address: str
    nonce: int
    state: str
    to: str
    value: int
    data: str
    gas: int


@dataclass(frozen=True)
class Version:
    """One signed version of a recorded transaction."""

    id: int
    version: int
    tx_hash: str
    raw: str | None
    max_fee: int
    tip: int
    at: Any  # broadcast_at or created_at


class BatchChanged(Exception):
    """A withdrawal left the queue while its batch was being built."""


# --- reads and bookings every chain shares ---------------------------------------------------

def tx_hashes(s: Session, batch_ids: set[int]) -> dict[int, str]:
    """Batch id -> its mined tx hash, or its latest signed version's."""
    if not batch_ids:
        return {}
    out: dict[int, str] = {}
    for bid, _version, h in s.execute(
            select(WithdrawalBatchTx.batch_id, WithdrawalBatchTx.version,
                   WithdrawalBatchTx.tx_hash)
            .where(WithdrawalBatchTx.batch_id.in_(batch_ids))
            .order_by(WithdrawalBatchTx.batch_id, WithdrawalBatchTx.version)):
        out[bid] = h
    for bid, h in s.execute(select(WithdrawalBatch.id, WithdrawalBatch.tx_hash).where(
            WithdrawalBatch.id.in_(batch_ids), WithdrawalBatch.tx_hash.is_not(None))):
        out[bid] = h
    return out


def post_paid(s: Session, w: Withdrawal) -> None:
    """Book a paid withdrawal: its reservation posted and its fee custody -> ``fees``,
    under the keys the batcher's settlement uses (``withdrawal:<id>#post``,
    ``withdrawal-fee:<id>``), so it happens once whichever path settles it."""
    ledger.post_pending(s, f"withdrawal:{w.id}")
    if w.fee:
        ledger.transfer(s, f"withdrawal-fee:{w.id}", "withdrawal_fee",
                        ledger.house_account(s, w.currency, "custody"),
                        ledger.house_account(s, w.currency, "fees"), w.fee,
                        memo=f"fee of withdrawal {w.id}")


def queued(chain: str, code: str, limit: int) -> list[tuple[int, str, int]]:
    """The next batch's withdrawals (id, address, amount): the oldest queued ones, or alone
    the oldest that was in two reverted batches (so it can no longer make others' batches
    revert). A player on hold (staff review) is not paid until the hold is released."""
    with ledger_tx(readonly=True) as s:
        rows = [tuple(r) for r in s.execute(
            select(Withdrawal.id, Withdrawal.address, Withdrawal.amount,
                   Withdrawal.reverts).where(
                Withdrawal.chain == chain, Withdrawal.currency == code,
                Withdrawal.state == "queued",
                ~exists().where(PlayerHold.player_id == Withdrawal.player_id,
                                PlayerHold.released_at.is_(None)))
            .order_by(Withdrawal.id).limit(limit))]
    alone = [r for r in rows if r[3] >= 2]
    return [r[:3] for r in (alone[:1] or rows)]


def mark_batched(s: Session, ids: list[int], batch_id: int, now: datetime) -> None:
    """The withdrawals ``ids`` (queued) are in the batch being recorded; BatchChanged when
    one left the queue meanwhile, or its player was put on hold since ``queued`` read it
    (the caller records nothing; the next batch leaves that player out)."""
    if not ids:
        return
    marked = s.execute(update(Withdrawal).where(
        Withdrawal.id.in_(ids), Withdrawal.state == "queued",
        ~exists().where(PlayerHold.player_id == Withdrawal.player_id,
                        PlayerHold.released_at.is_(None))).values(
        state="batched", batch_id=batch_id, updated_at=now)).rowcount
    if marked != len(ids):
        raise BatchChanged()


# --- the lifecycle ---------------------------------------------------------------------------

class ChainSender(ABC):
    """Recorded transactions of one chain (rows of ``withdrawal_batches`` of the kinds in
    ``KINDS``) through the lifecycle in this module's docstring. A subclass sets
    ``chain``, ``confirmations`` and ``fee_bump_seconds`` and answers the chain's
    questions; events are logged to ``log`` with names starting with ``log_prefix``."""

    KINDS: tuple[str, ...] = ()
    log_prefix = ""
    log: Any = get_logger("casino.payments.sender")
    # The counter of what is left for staff (by anomaly), the chain's own.
    anomaly_metric: Any = PAYMENT_ANOMALIES
    # Keep the mined version's raw bytes once settled (Bitcoin: a deeper reorg than the
    # confirmations is answered by sending the same bytes again); the others are dropped.
    keep_mined_raw = False
    chain: str
    confirmations: int
    fee_bump_seconds: float

    # --- the chain's questions ---

    @abstractmethod
    def _head(self) -> int:
        """The node's current block number."""

    @abstractmethod
    def _receipt(self, tx_hash: str) -> Any:
        """The receipt of a mined version (None: not mined, or unknown to the node)."""

    @abstractmethod
    def _mined(self, receipt: Any) -> tuple[str, int]:
        """(transaction hash, block number) of a receipt."""

    @abstractmethod
    def _status_ok(self, receipt: Any) -> bool:
        """Whether the mined transaction did not fail (Ethereum: status 1)."""

    @abstractmethod
    def _known(self, tx_hash: str) -> bool:
        """Whether the node knows the transaction (mined or waiting)."""

    @abstractmethod
    def _send_raw(self, raw: str) -> None:
        """Send a raw signed transaction; raises the node's refusal."""

    @abstractmethod
    def _already_known(self, exc: Exception) -> bool:
        """Whether a refusal of ``_send_raw`` only says the node has it already."""

    @abstractmethod
    def _slot_used(self, b: OpenBatch, block: int) -> bool:
        """Whether what ``b`` needs to be mined (its nonce, its inputs) was used by
        ``block``."""

    @abstractmethod
    def _slot_taken(self, b: OpenBatch, head: int, safe_block: int, res: RunResult) -> None:
        """No version of ``b`` has a receipt, yet its slot was used at the confirmed depth
        (``safe_block``): find the transaction that did, alert, or settle ``b``."""

    @abstractmethod
    def _bump(self, b: OpenBatch, latest: Version, res: RunResult) -> None:
        """Record a replacement of ``latest`` with higher fees, then broadcast it."""

    @abstractmethod
    def _book_network_fee(self, s: Session, b: OpenBatch, batch: WithdrawalBatch,
                          receipt: Any, tx_hash: str) -> None:
        """Book what the mined transaction cost the house (fees -> custody) and note it on
        the batch row, in the settling ledger transaction."""

    # --- rows ---

    def _open_where(self) -> list[Any]:
        """Which senders' open transactions this runner advances (all of its kinds)."""
        return []

    def _open_batches(self) -> list[OpenBatch]:
        with ledger_tx(readonly=True) as s:
            rows = s.execute(select(WithdrawalBatch).where(
                WithdrawalBatch.chain == self.chain,
                WithdrawalBatch.kind.in_(self.KINDS), *self._open_where(),
                WithdrawalBatch.state.in_(OPEN)).order_by(
                WithdrawalBatch.from_address, WithdrawalBatch.nonce)).scalars()
            return [OpenBatch(b.id, b.kind, b.currency, b.from_address, b.nonce, b.state,
                              b.to_address, int(b.value_wei), b.call_data, b.gas_limit)
                    for b in rows]

    def _versions(self, batch_id: int) -> list[Version]:
        with ledger_tx(readonly=True) as s:
            rows = s.execute(select(WithdrawalBatchTx).where(
                WithdrawalBatchTx.batch_id == batch_id)
                .order_by(WithdrawalBatchTx.version)).scalars()
            return [Version(v.id, v.version, v.tx_hash, v.raw_tx, v.max_fee_per_gas,
                            v.max_priority_fee_per_gas, v.broadcast_at or v.created_at)
                    for v in rows]

    # --- open batches ---

    def _advance(self, b: OpenBatch, res: RunResult) -> None:
        versions = self._versions(b.id)
        head = self._head()
        for v in versions:
            receipt = self._receipt(v.tx_hash)
            if receipt is None:
                continue
            if head - self._mined(receipt)[1] + 1 >= self.confirmations:
                self._settle(b, receipt, res)
            elif b.state == "signed":
                self._mark_sent(b.id, v.id)  # it was broadcast: it is mined
            return
        safe_block = head - self.confirmations + 1
        if safe_block >= 0 and self._slot_used(b, safe_block):
            self._slot_taken(b, head, safe_block, res)
            return
        latest = versions[-1]
        age = (utcnow() - latest.at).total_seconds()
        if age >= self.fee_bump_seconds:
            self._bump(b, latest, res)
        elif not any(self._known(v.tx_hash) for v in versions):
            if latest.raw and self._broadcast(b.id, latest):
                res.rebroadcast += 1

    def _mark_sent(self, batch_id: int, version_id: int) -> None:
        now = utcnow()
        with ledger_tx() as s:
            s.execute(update(WithdrawalBatchTx).where(
                WithdrawalBatchTx.id == version_id, WithdrawalBatchTx.broadcast_at.is_(None))
                .values(broadcast_at=now))
            s.execute(update(WithdrawalBatch).where(
                WithdrawalBatch.id == batch_id, WithdrawalBatch.state == "signed")
                .values(state="sent", broadcast_at=now, updated_at=now))

    def _broadcast(self, batch_id: int, v: Version) -> bool:
        """Send a recorded raw transaction; True when the node took it (or had it)."""
        if v.raw is None:
            raise RuntimeError(f"version {v.tx_hash} of batch {batch_id} has no raw bytes")
        try:
            self._send_raw(v.raw)
        except Exception as exc:  # noqa: BLE001 - the node's refusal is logged, retried later
            if not self._already_known(exc):
                self.log.warning(f"{self.log_prefix}_batch_broadcast_refused",
                                 batch_id=batch_id, tx_hash=v.tx_hash, error=str(exc)[:300])
                return False
        _fault("broadcast", batch_id)
        self._mark_sent(batch_id, v.id)
        return True

    # --- settling ---

    def _succeeded(self, b: OpenBatch, receipt: Any) -> bool:
        """Whether a mined transaction with status 1 did what it was for."""
        return True

    def _settled(self, s: Session, b: OpenBatch, batch: WithdrawalBatch, receipt: Any,
                 ok: bool) -> None:
        """Called at the end of the settling ledger transaction (Bitcoin: the inputs the
        mined version did not spend are free again). Here: nothing."""
        return

    def _paid_by(self, b: OpenBatch) -> str | None:
        """Asked before a batch is settled as not paid: the hash of another transaction
        that made its payment after all (see ``eth.batcher.Batcher._paid_by``), or None."""
        return None

    def _outcomes(self, b: OpenBatch, receipt: Any, ok: bool, rows: list[Withdrawal]
                  ) -> dict[int, str]:
        """How each withdrawal of ``b`` settles: ``paid`` (reservation posted, fee to
        ``fees``), ``void`` (failed with the batch's reason, reservation voided),
        ``refused`` (failed: the address refused the payment, voided), ``requeue`` (queued
        again, reservation kept), ``unbatch`` (back to awaiting its Safe payment,
        reservation kept) or ``anomaly`` (left batched, reservation kept, alert).
        Here: all paid when the transaction did what it was for, else all void."""
        return {w.id: "paid" if ok else "void" for w in rows}

    def _settle(self, b: OpenBatch, receipt: Any, res: RunResult, reason: str = "",
                paid_by: str | None = None) -> None:
        """Final state of a batch, in one ledger transaction, once: its network fee
        booked, each withdrawal as :meth:`_outcomes` says. ``paid_by``: the transaction
        that made the payment after all, when the caller already found it (asked once: a
        second question to another backend could answer differently)."""
        status_ok = receipt is not None and self._status_ok(receipt)
        ok = status_ok and self._succeeded(b, receipt)
        if paid_by is None and not ok:
            paid_by = self._paid_by(b)  # a chain call: before the transaction
        now = utcnow()
        with ledger_tx() as s:
            batch = s.execute(select(WithdrawalBatch).where(WithdrawalBatch.id == b.id)
                              .with_for_update()).scalar_one()
            if batch.state not in OPEN:
                return
            if receipt is not None:
                tx_hash, block = self._mined(receipt)
                self._book_network_fee(s, b, batch, receipt, tx_hash)
                batch.tx_hash, batch.block_number = tx_hash, block
                if not ok:
                    reason = ("the transaction reverted" if not status_ok
                              else "the transfer did not happen")
            if paid_by is not None:  # paid by that transaction: posted, its hash recorded
                reason = f"{reason or 'not mined'}; paid by transaction {paid_by}"
                ok, batch.tx_hash = True, paid_by
            rows = s.execute(select(Withdrawal).where(
                Withdrawal.batch_id == b.id, Withdrawal.state == "batched")
                .order_by(Withdrawal.id).with_for_update()).scalars().all()
            outcomes = self._outcomes(b, receipt, ok, list(rows))
            for w in rows:
                key = f"withdrawal:{w.id}"
                outcome = outcomes[w.id]
                if outcome == "paid":
                    post_paid(s, w)
                    w.state = "confirmed"
                    res.paid += 1
                elif outcome == "unbatch":  # back to its signed Safe payment, reserved
                    w.state, w.batch_id = "awaiting_approval", None
                    w.reverts += 1
                    res.requeued += 1
                elif outcome == "requeue":
                    w.state, w.batch_id, w.reverted_batch_id = "queued", None, b.id
                    w.reverts += 1
                    res.requeued += 1
                elif outcome == "anomaly":
                    res.anomalies += 1
                    self.anomaly_metric.labels("no_paid_log").inc()
                    self.log.error(f"{self.log_prefix}_withdrawal_without_paid_log",
                                   withdrawal_id=w.id, batch_id=b.id, tx_hash=batch.tx_hash,
                                   hint="left batched with its reservation: check the "
                                        "transaction and settle it by hand")
                    continue
                else:
                    ledger.void_pending(s, key)
                    w.state = "failed"
                    w.failure = (REFUSED if outcome == "refused" else reason)[:200]
                    res.voided += 1
                w.updated_at = now
            if ok and any(o != "paid" for o in outcomes.values()):
                # what actually left for the withdrawals (reconciliation reads it)
                batch.total = sum(w.amount for w in rows if outcomes[w.id] == "paid")
            batch.state = "confirmed" if ok else "failed"
            batch.failure = reason[:200] or None
            batch.confirmed_at = batch.updated_at = now
            drop = update(WithdrawalBatchTx).where(WithdrawalBatchTx.batch_id == b.id)
            if self.keep_mined_raw and receipt is not None:
                drop = drop.where(WithdrawalBatchTx.tx_hash != batch.tx_hash)
            s.execute(drop.values(raw_tx=None))
            self._settled(s, b, batch, receipt, ok)
        if ok:
            res.confirmed += 1
        else:
            res.failed += 1
        (self.log.info if ok else self.log.warning)(
            f"{self.log_prefix}_batch_settled", batch_id=b.id, kind=b.kind,
            currency=b.currency, nonce=b.nonce, ok=ok, withdrawals=len(rows),
            reason=reason or None)
