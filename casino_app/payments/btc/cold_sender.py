"""The job side of cold payments by PSBT (payments/btc/cold_payments.py), run with the
``btc-batch`` job: the recorded cold spends (``withdrawal_batches`` of kind ``cold``,
``from_address`` "cold") go through the shared lifecycle (payments/sender.ChainSender with
Bitcoin's answers, payments/btc/sender.BitcoinSender), and payments not recorded yet are
settled when the chain spends their coins.

One run (:meth:`ColdSender.run`):

1. Recorded spends: one the node does not know (never broadcast: the web process crashed
   or the node refused it; or dropped by a reorg) is broadcast again byte for byte; one
   mined at ``CASINO_BTC_CONFIRMATIONS`` is settled once, in one ledger transaction: the
   withdrawal whose exact output (its address's script, its amount) is in it is posted
   (reservation, fee to ``fees``), the miner fee booked ``btc-fee:bitcoin:<txid>`` fees
   -> custody (a refill moves no player money: only that fee), the payment ``confirmed``
   and audited (``withdrawal.paid`` / ``refill.paid``, staged in that transaction: audit
   outbox). It is never fee-bumped by the service: a replacement needs the cosigners'
   signatures again. One not mined ``CASINO_BTC_FEE_BUMP_SECONDS`` after it was sent is
   alerted (``btc_cold_payment_stuck``, at most hourly) for staff to sign a replacement
   with the same coins and payments and less change by hand; whichever version is mined
   settles it, found by its outputs, with that version's fee. When its coins were spent
   by another transaction at the confirmed depth, it failed: the payment ``failed``
   (audited), the withdrawal waits for approval again with its reservation and its
   approvals cleared, the coins it did not lose are free. Settled spends are watched for
   deep reorgs like the hot wallet's batches.
2. Payments not recorded (``awaiting_signatures``, ``cancelling``) one of whose coins the
   watcher recorded ``spent`` at the confirmed depth: spent by the payment's own
   transaction (someone holding the signatures broadcast it), it is recorded now from the
   node's copy and settled as above (a ``cancelling`` one is also audited
   ``btc.cold_rejected_payment_executed`` and logged as an error: staff had taken it
   back); spent by another transaction (staff spent a coin back to the cold wallet to
   cancel it), it is cancelled: its other coins are free, a ``rejecting`` withdrawal is
   rejected and its reservation voided (a withdrawal still awaiting approval keeps
   waiting, approvals cleared), audited ``btc.cold_payment_cancelled``.

No key is used: the cold keys are the cosigners', and nothing here signs (the base class
loads the hot wallet's address only, as this runs in the jobs process anyway).
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from casino_app.core.clock import utcnow
from casino_app.core.db import identity_tx, ledger_tx
from casino_app.core.logging import get_logger
from casino_app.core.settings import get_settings
from casino_app.payments.btc import cold_payments
from casino_app.payments.btc.models import BtcColdPayment, BtcUtxo
from casino_app.payments.btc.rpc import BitcoinRPC
from casino_app.payments.btc.sender import BitcoinSender, BtcRunResult
from casino_app.payments.sender import OpenBatch, Version
from casino_app.payments.withdrawal_models import Withdrawal, WithdrawalBatch
from casino_app.security import outbox
from casino_app.security.audit import SYSTEM, AuditAction

log = get_logger("casino.btc.cold")

UNRECORDED = ("awaiting_signatures", "cancelling")
STUCK_REALERT_SECONDS = 3600  # a stuck cold payment is alerted again after this long


def _user_of(player_id: str | None) -> int | None:
    if player_id is None:
        return None
    from casino_app.users.models import User

    with identity_tx(readonly=True) as ids:
        return ids.execute(select(User.id).where(User.player_id == player_id)
                           ).scalar_one_or_none()


def _lock_unrecorded(s: Session, payment_id: int
                     ) -> tuple[BtcColdPayment, Withdrawal | None] | None:
    """The payment ``payment_id`` and its withdrawal, row-locked in that order, while the
    payment is still not recorded (else None: another run settled it meanwhile)."""
    p = s.execute(select(BtcColdPayment).where(BtcColdPayment.id == payment_id)
                  .with_for_update()).scalar_one()
    if p.state not in UNRECORDED:
        return None
    w = None
    if p.withdrawal_id is not None:
        w = s.execute(select(Withdrawal).where(Withdrawal.id == p.withdrawal_id)
                      .with_for_update()).scalar_one()
    return p, w


class ColdSender(BitcoinSender):
    """Recorded cold-wallet spends (kind ``cold``) and unrecorded payments whose coins
    the chain spent (see the module docstring)."""

    KINDS = (cold_payments.KIND,)

    def __init__(self, rpc: BitcoinRPC, **kw: Any) -> None:
        super().__init__(rpc, **kw)
        self.sender = cold_payments.SENDER
        self._entries: list[outbox.Entry] = []
        self._stuck_alerted: dict[int, float] = {}  # batch id -> when last alerted

    def run(self) -> BtcRunResult:
        res = BtcRunResult()
        for b in self._open_batches():
            self._advance(b, res)
        self.check_settled(res)
        self._resolve_unrecorded(res)
        if any(res.as_dict().values()):
            log.info("btc_cold_run", **res.as_dict())
        return res

    # --- the shared lifecycle, with a cold spend's answers ---

    def _bump(self, b: OpenBatch, latest: Version, res: Any) -> None:
        """Not mined ``fee_bump_seconds`` after it was sent. Never re-signed here (the
        cosigners' signatures would be needed): sent again while the node does not know
        it, and alerted (an error log, the anomaly counter ``cold_payment_stuck``) at most
        once an hour per payment, for staff to raise its fee with the cosigners: a
        replacement spending the same coins, paying the same outputs, the change to the
        same cold change address less the extra fee, signed by two cosigners and
        broadcast by hand. Whichever version is mined settles it (found by its outputs)."""
        if latest.raw and not any(self._known(v.tx_hash) for v in self._versions(b.id)):
            if self._broadcast(b.id, latest):
                res.rebroadcast += 1
        now = time.monotonic()
        last = self._stuck_alerted.get(b.id)
        if last is not None and now - last < STUCK_REALERT_SECONDS:
            return
        self._stuck_alerted[b.id] = now
        res.anomalies += 1
        self.anomaly_metric.labels("cold_payment_stuck").inc()
        log.error("btc_cold_payment_stuck", batch_id=b.id, tx_hash=latest.tx_hash,
                  waiting_seconds=int((utcnow() - latest.at).total_seconds()),
                  hint="a cold payment is not mined CASINO_BTC_FEE_BUMP_SECONDS after it was "
                       "sent, and only its cosigners can raise its fee: sign a replacement "
                       "(same coins, same payments, the change to the same cold change "
                       "address less the extra fee) with two of them and broadcast it; "
                       "whichever version is mined settles the payment once")

    def _outcomes(self, b: OpenBatch, receipt: Any, ok: bool, rows: list[Withdrawal]
                  ) -> dict[int, str]:
        """Mined: paid when its exact output is in the transaction. Not mined (its coins
        went elsewhere): back to awaiting approval, still reserved; never queued for the
        hot wallet (a large withdrawal needs its approvals)."""
        if not ok or receipt is None:
            return {w.id: "unbatch" for w in rows}
        return super()._outcomes(b, receipt, ok, rows)

    def _settle(self, *args: Any, **kw: Any) -> None:
        self._entries = []
        try:
            super()._settle(*args, **kw)
        finally:
            entries, self._entries = self._entries, []
        outbox.deliver_now(entries)

    def _stage(self, s: Session, action: AuditAction, player: str | None,
               **detail: Any) -> None:
        entry = outbox.Entry(action, SYSTEM, _user_of(player), lambda d: d)
        entry.stage(s, detail)
        self._entries.append(entry)

    def _settled(self, s: Session, b: OpenBatch, batch: WithdrawalBatch, receipt: Any,
                 ok: bool) -> None:
        super()._settled(s, b, batch, receipt, ok)
        p = s.execute(select(BtcColdPayment).where(BtcColdPayment.batch_id == b.id)
                      .with_for_update()).scalar_one_or_none()
        if p is None:
            return
        now = utcnow()
        w = s.get(Withdrawal, p.withdrawal_id) if p.withdrawal_id is not None else None
        p.updated_at = now
        if ok:
            p.state = "confirmed"
            action = AuditAction.withdrawal_paid if p.kind == "withdrawal" \
                else AuditAction.refill_paid
        else:
            p.state, p.active_withdrawal_id = "failed", None
            p.failure = (batch.failure or "not mined")[:200]
            if w is not None:  # waits for a new payment and two new approvals
                w.approved_by = w.approved_by_2 = None
            action = AuditAction.cold_payment_failed
            log.error("btc_cold_payment_failed", payment_id=p.id, batch_id=b.id,
                      withdrawal_id=p.withdrawal_id, reason=p.failure)
        self._stage(s, action, None if w is None else w.player_id, chain="bitcoin",
                    payment_id=p.id, withdrawal_id=p.withdrawal_id, currency="BTC",
                    amount=p.amount, tx_hash=batch.tx_hash or p.txid, failure=p.failure,
                    cold=True)

    # --- payments not recorded whose coins the chain spent ---

    def _resolve_unrecorded(self, res: BtcRunResult) -> None:
        safe = self._head() - self.confirmations + 1
        if safe < 0:
            return
        found: list[tuple[int, str, str]] = []
        with ledger_tx(readonly=True) as s:
            for p in s.execute(select(BtcColdPayment).where(
                    BtcColdPayment.chain == self.chain,
                    BtcColdPayment.state.in_(UNRECORDED))).scalars():
                outpoints = [(c[0], int(c[1])) for c in cold_payments._inputs(p)]
                spender = s.execute(select(BtcUtxo.spent_by).where(
                    BtcUtxo.chain == self.chain, BtcUtxo.state == "spent",
                    BtcUtxo.spent_height <= safe,
                    tuple_(BtcUtxo.txid, BtcUtxo.vout).in_(outpoints))
                    .order_by(BtcUtxo.spent_by != p.txid).limit(1)).scalar_one_or_none()
                if spender is not None:
                    found.append((p.id, p.txid, spender))
        for pid, txid, spender in found:
            if spender == txid:
                self._record_found(pid, res)
            else:
                self._cancel_spent(pid, spender, res)

    def _record_found(self, payment_id: int, res: BtcRunResult) -> None:
        """Its own transaction was mined although we never recorded it: recorded now from
        the node's copy (the next steps settle it as paid)."""
        with ledger_tx(readonly=True) as s:
            txid = s.get(BtcColdPayment, payment_id).txid
        mined = self._receipt(txid)
        if mined is None or mined.tx.raw is None:
            log.warning("btc_cold_payment_spend_unreadable", payment_id=payment_id,
                        txid=txid)
            return
        now = utcnow()
        self._entries = []
        with ledger_tx() as s:
            locked = _lock_unrecorded(s, payment_id)
            if locked is None:
                return
            p, w = locked
            was = p.state
            rec = cold_payments.record_transaction(s, p, w, txid, mined.tx.raw.hex(),
                                                   mined.tx.vsize, mined.fee or 0, now)
            if was == "cancelling":
                self._stage(s, AuditAction.cold_rejected_executed,
                            None if w is None else w.player_id, chain="bitcoin",
                            payment_id=p.id, withdrawal_id=p.withdrawal_id, currency="BTC",
                            amount=p.amount, tx_hash=txid)
                log.error("btc_cold_rejected_payment_executed", payment_id=p.id,
                          withdrawal_id=p.withdrawal_id, amount=p.amount, txid=txid,
                          hint="a cold payment taken back after its signatures were "
                               "uploaded was broadcast by someone holding them: it is paid")
        entries, self._entries = self._entries, []
        outbox.deliver_now(entries)
        res.created += 1
        log.warning("btc_cold_payment_found_on_chain", payment_id=payment_id,
                    batch_id=rec.batch_id, txid=txid)
        for b in self._open_batches():
            if b.id == rec.batch_id:
                self._advance(b, res)

    def _cancel_spent(self, payment_id: int, spender: str, res: BtcRunResult) -> None:
        """Another transaction spent one of its coins: it can never be mined."""
        self._entries = []
        with ledger_tx() as s:
            locked = _lock_unrecorded(s, payment_id)
            if locked is None:
                return
            p, w = locked
            was = p.state
            cold_payments.cancel(s, p, f"its coins were spent by transaction {spender}")
            if w is not None and w.state == "rejecting":
                cold_payments.void_withdrawal(s, w, "rejected")
                res.voided += 1
            elif w is not None and w.state == "awaiting_approval":
                w.approved_by = w.approved_by_2 = None
                w.updated_at = utcnow()
            self._stage(s, AuditAction.cold_payment_cancelled,
                        None if w is None else w.player_id, chain="bitcoin",
                        payment_id=p.id, withdrawal_id=p.withdrawal_id, currency="BTC",
                        amount=p.amount, spent_by=spender, was=was)
        entries, self._entries = self._entries, []
        outbox.deliver_now(entries)
        res.failed += 1
        log.warning("btc_cold_payment_spent_elsewhere", payment_id=payment_id,
                    spender=spender, was=was)


# --- the job ---------------------------------------------------------------------------------

_sender: ColdSender | None = None


def cold_once() -> dict[str, int]:
    """The cold step of the ``btc-batch`` job (a node configured): one run of the
    process's cold sender."""
    global _sender
    st = get_settings()
    if not st.btc_rpc_url:
        return {}
    try:
        if _sender is None:
            _sender = ColdSender(BitcoinRPC.from_settings(st))
        return {f"cold_{k}": v for k, v in _sender.run().as_dict().items() if v}
    except Exception as exc:  # noqa: BLE001 - a cold payment problem must not stop the batcher
        log.error("btc_cold_run_failed", error=type(exc).__name__, detail=str(exc)[:300])
        return {"cold_errors": 1}
