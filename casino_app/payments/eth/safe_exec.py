"""Executing Safe payments (payments/eth/safe_payments.py) that have their owners'
signatures: the job side, run with the eth-batch job (jobs process, never the web).

One run (:meth:`SafeExecutor.run`):

1. Follow sent payments: their ``execTransaction`` is a hot-wallet transaction recorded
   in ``withdrawal_batches`` (kind ``pay``, to the Safe, its withdrawal ``batched`` in it),
   so the batcher broadcasts it, rebroadcasts the same raw bytes after a crash, bumps its
   fee and settles it as its own batches: status 1 posts the withdrawal's reservation
   and fee and books the gas. Status 0 (or its hot-wallet nonce used by another
   transaction) books the gas but voids NOTHING: the Safe did not use the payment's
   nonce, so the owners' signatures (public once broadcast) can still execute it; the
   withdrawal goes back to its payment, still reserved. This step copies the outcome onto
   the payment: ``confirmed``, or ``ready`` again (``exec_failures`` counted, audited
   ``safe.exec_reverted``), retried when its estimate passes, at most
   ``MAX_EXEC_FAILURES`` times; then staff reject it (``cancelling`` until the owners use
   its nonce). Step 2 settles it for good once the Safe's nonce passes.
   The owners' signatures are public once our transaction is broadcast: anyone may send
   the same ``execTransaction`` first, and ours then reverts (or its hot-wallet nonce is
   used) although the Safe paid. So before the batcher voids a Safe exec it asks
   :func:`paid_by_batch` for the Safe's ``ExecutionSuccess`` log of the payment's
   ``safeTxHash``; found, the payment is settled as paid (reservation and fee posted, the
   hash of the transaction that paid recorded, our gas booked if ours was mined).
2. Payments not sent whose Safe nonce the Safe has used at the confirmed depth (owners
   acting in the Safe's own interface; nonce and logs read at the same block, so a
   lagging backend cannot make an executed payment look cancelled),
   :meth:`SafeExecutor._resolve_used`: if the Safe executed THIS payment
   (its ``ExecutionSuccess`` log, :func:`paid_by`: the owners executed it themselves, or
   someone else sent its signatures) it is settled as paid, never sent again; otherwise
   its signatures can never execute and it is cancelled. A withdrawal then keeps waiting
   for approval with its approvals cleared (prepare and sign again). A ``cancelling``
   payment (rejected by staff after it was signed, safe_payments.take_back) ends here too:
   paid after all (audited and logged as an error: staff had refused it) or cancelled,
   its withdrawal's reservation voided then (the withdrawal ``rejected``).
3. Record the next payment: the ``ready`` payment whose nonce is the Safe's next one, when
   no other payment of the Safe is in flight. The ``execTransaction`` call (signatures
   sorted by owner) is estimated (a call that would revert, e.g. the Safe lacks the funds,
   waits for the next run), signed by the hot wallet at its next nonce (the same rule as
   the batcher, in the same table: their nonces never collide), and recorded with its raw
   transaction, the payment ``sent`` and its withdrawal ``batched``, in one ledger
   transaction BEFORE anything is broadcast. The batcher's run broadcasts it.

A payment never pays twice: it has one Safe nonce, which the Safe uses once; the recorded
raw transaction is the only one signed for it (fee bumps re-sign the same call and nonce).
A payment is never voided while the Safe paid it: both places that would (the batcher's
settlement, step 2) first look for its execution with :func:`paid_by`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hexbytes import HexBytes
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from web3 import Web3

from casino_app.core.clock import utcnow
from casino_app.core.db import identity_tx, ledger_tx
from casino_app.core.logging import get_logger
from casino_app.core.settings import get_settings
from casino_app.payments import ledger
from casino_app.payments.eth import chain
from casino_app.payments.eth.safe_models import SafePayment
from casino_app.payments.eth.safe_payments import _cancel, _hash_of, packed_signatures
from casino_app.payments.hold_models import PlayerHold
from casino_app.payments.sender import post_paid
from casino_app.payments.withdrawal_models import (
    Withdrawal,
    WithdrawalBatch,
    WithdrawalBatchTx,
)
from casino_app.security import outbox
from casino_app.security.audit import SYSTEM, AuditAction

log = get_logger("casino.eth.safe")

CHAIN = "ethereum"
UNSENT = ("awaiting_signatures", "ready", "cancelling")  # payments the Safe may not have run

# Our execTransaction of one payment may revert (the recipient refused, the Safe was
# short); it is tried again when its estimate passes, this many times at most.
MAX_EXEC_FAILURES = 3

# Tests only: called at "recorded" (the exec transaction is stored, not broadcast) with
# the payment id; raising stops the run there, as a crash would.
fault: Callable[[str, int], None] | None = None


@dataclass
class SafeRunResult:
    recorded: int = 0       # execTransaction transactions recorded (broadcast by the batcher)
    confirmed: int = 0      # payments settled as paid
    failed: int = 0         # payments settled as not paid
    cancelled: int = 0      # payments whose Safe nonce was used elsewhere

    def as_dict(self) -> dict[str, int]:
        return {f"safe_{k}": v for k, v in self.__dict__.items()}


class _Changed(Exception):
    """The payment or its withdrawal changed while the transaction was being built."""


class SafeExecutor:
    def __init__(self, w3: Web3, safe: str, *, signer: Any = None, chain_name: str = CHAIN,
                 confirmations: int | None = None) -> None:
        if signer is None:
            from casino_app.payments.signer import eth as signer_module

            signer = signer_module
        self.w3, self.signer, self.chain = w3, signer, chain_name
        self.hot = Web3.to_checksum_address(signer.hot_address())
        self.safe = Web3.to_checksum_address(safe)
        self.contract = chain.contract(w3, "SafeL2", self.safe)
        self.chain_id = int(w3.eth.chain_id)
        self.confirmations = confirmations or get_settings().eth_confirmations

    def run(self) -> SafeRunResult:
        res = SafeRunResult()
        self._follow(res)
        # Whether the Safe used a payment's nonce, and with which transaction, is read at
        # the confirmed depth (nonce and logs at the same block): a lagging backend or a
        # reorg must not make an executed payment look cancelled.
        final = int(self.w3.eth.block_number) - self.confirmations + 1
        if final >= 0:
            used = int(self.contract.functions.nonce().call(block_identifier=final))
            self._resolve_used(used, final, res)
        self._record_next(int(self.contract.functions.nonce().call()), res)
        if any(res.as_dict().values()):
            log.info("eth_safe_run", **res.as_dict())
        return res

    # --- 1. sent payments ---

    def _follow(self, res: SafeRunResult) -> None:
        with ledger_tx(readonly=True) as s:
            done = s.execute(select(SafePayment.id).join(
                WithdrawalBatch, WithdrawalBatch.id == SafePayment.batch_id).where(
                SafePayment.chain == self.chain, SafePayment.safe_address == self.safe,
                SafePayment.state == "sent",
                WithdrawalBatch.state.in_(("confirmed", "failed")))).scalars().all()
        for pid in done:
            self._settle(pid, res)

    def _settle(self, payment_id: int, res: SafeRunResult) -> None:
        with ledger_tx() as s:
            audit = _Audit(s)
            p = s.execute(select(SafePayment).where(SafePayment.id == payment_id)
                          .with_for_update()).scalar_one()
            if p.state != "sent":
                return
            b = s.get(WithdrawalBatch, p.batch_id)
            ok = b.state == "confirmed"
            p.updated_at = utcnow()
            if ok:  # failure: a note when another sender's transaction paid it
                p.state, p.tx_hash, p.failure = "confirmed", b.tx_hash, b.failure
                action = AuditAction.withdrawal_paid if p.kind == "withdrawal" \
                    else AuditAction.refill_paid
            else:
                # Our execTransaction reverted (or its hot-wallet nonce went to another
                # transaction): the Safe did not execute it, so its nonce is unused and the
                # owners' signatures (public now) stay valid. Never cancelled here: it is
                # ready again (the batcher gave a withdrawal back to it, still reserved),
                # tried again when its estimate passes, up to MAX_EXEC_FAILURES; staff
                # may reject it (cancelling until the Safe uses its nonce).
                p.state, p.batch_id = "ready", None
                p.exec_failures += 1
                p.failure = f"execTransaction {b.tx_hash or ''} failed: " \
                    f"{b.failure or 'not executed'}"[:200]
                action = AuditAction.safe_exec_reverted
            player = None
            if p.withdrawal_id is not None:
                player = s.get(Withdrawal, p.withdrawal_id).player_id
            audit(action, _user_of(player), payment_id=p.id,
                  withdrawal_id=p.withdrawal_id, currency=p.currency, amount=p.amount,
                  tx_hash=b.tx_hash, failure=p.failure, exec_failures=p.exec_failures)
        audit.deliver()
        if ok:
            res.confirmed += 1
        else:
            res.failed += 1
        (log.info if ok else log.warning)("eth_safe_payment_settled", payment_id=payment_id,
                                          ok=ok)

    # --- 2. nonces the Safe used ---

    def _resolve_used(self, nonce: int, final: int, res: SafeRunResult) -> None:
        with ledger_tx(readonly=True) as s:
            used = s.execute(select(SafePayment).where(
                SafePayment.chain == self.chain, SafePayment.safe_address == self.safe,
                SafePayment.state.in_(UNSENT), SafePayment.safe_nonce < nonce)
                .order_by(SafePayment.safe_nonce)).scalars().all()
            s.expunge_all()
        for row in used:
            paid = paid_by(self.w3, row, final)  # a chain call, before the transaction
            with ledger_tx() as s:
                audit = _Audit(s)
                p = s.execute(select(SafePayment).where(SafePayment.id == row.id)
                              .with_for_update()).scalar_one()
                if p.state not in UNSENT:
                    continue
                w = None if p.withdrawal_id is None else s.execute(
                    select(Withdrawal).where(Withdrawal.id == p.withdrawal_id)
                    .with_for_update()).scalar_one()
                if paid is not None:
                    _paid_unsent(audit, s, p, w, paid)
                else:
                    _cancel_used(audit, s, p, w)
            audit.deliver()
            if paid is not None:
                res.confirmed += 1
                log.warning("eth_safe_payment_executed_elsewhere", payment_id=row.id,
                            tx_hash=paid)
            else:
                res.cancelled += 1
                log.warning("eth_safe_payment_stale", payment_id=row.id)

    # --- 3. the next payment ---

    def _record_next(self, nonce: int, res: SafeRunResult) -> None:
        with ledger_tx(readonly=True) as s:
            busy = s.execute(select(func.count()).select_from(SafePayment).where(
                SafePayment.chain == self.chain, SafePayment.safe_address == self.safe,
                SafePayment.state == "sent")).scalar_one()
            if busy:
                return
            p = s.execute(select(SafePayment).where(
                SafePayment.chain == self.chain, SafePayment.safe_address == self.safe,
                SafePayment.state == "ready", SafePayment.safe_nonce == nonce)
                .order_by(SafePayment.id).limit(1)).scalar_one_or_none()
            if p is None:
                return
            if p.chain_id != self.chain_id or _hash_of(p) != p.safe_tx_hash:
                log.error("eth_safe_payment_mismatch", payment_id=p.id)
                return
            if p.withdrawal_id is not None and s.execute(select(PlayerHold.id).join(
                    Withdrawal, Withdrawal.player_id == PlayerHold.player_id).where(
                    Withdrawal.id == p.withdrawal_id, PlayerHold.released_at.is_(None))
                    .limit(1)).first() is not None:
                log.warning("eth_safe_payment_on_hold", payment_id=p.id)
                return  # the player is under staff review: paid once the hold is released
            if p.exec_failures >= MAX_EXEC_FAILURES:
                log.error("eth_safe_payment_exec_failing", payment_id=p.id,
                          exec_failures=p.exec_failures, failure=p.failure,
                          hint="not tried again: check the recipient; reject it on "
                               "/admin/withdrawals (the owners then burn its nonce)")
                return
            pid, kind, code, amount = p.id, p.kind, p.currency, p.amount
            call = self.contract.encode_abi("execTransaction", args=[
                Web3.to_checksum_address(p.to_address), int(p.value_wei),
                bytes(HexBytes(p.call_data)), p.operation, 0, 0, 0, chain.ZERO_ADDRESS,
                chain.ZERO_ADDRESS, packed_signatures(s, p.id)])
        try:
            estimate = int(self.w3.eth.estimate_gas({"from": self.hot, "to": self.safe,
                                                     "value": 0, "data": call}))
        except Exception as exc:  # noqa: BLE001 - it would revert (Safe short, bad signature)
            log.error("eth_safe_exec_would_revert", payment_id=pid, error=str(exc)[:200])
            return
        gas = estimate * 6 // 5
        block = self.w3.eth.get_block("latest")
        tip = int(self.w3.eth.max_priority_fee)
        max_fee = max(2 * int(block.get("baseFeePerGas") or 0) + tip, tip)
        now = utcnow()
        try:
            with ledger_tx() as s:
                p = s.execute(select(SafePayment).where(SafePayment.id == pid)
                              .with_for_update()).scalar_one()
                if p.state != "ready":
                    raise _Changed()
                stored = s.execute(select(func.max(WithdrawalBatch.nonce)).where(
                    WithdrawalBatch.chain == self.chain,
                    WithdrawalBatch.from_address == self.hot)).scalar_one()
                tx_nonce = max(self.w3.eth.get_transaction_count(self.hot, "pending"),
                               -1 if stored is None else int(stored) + 1)
                raw, tx_hash = self.signer.sign_transaction({
                    "type": 2, "chainId": self.chain_id, "from": self.hot, "to": self.safe,
                    "value": 0, "data": call, "gas": gas, "nonce": tx_nonce,
                    "maxFeePerGas": max_fee, "maxPriorityFeePerGas": tip})
                batch = WithdrawalBatch(
                    chain=self.chain, kind="pay", currency=code, from_address=self.hot,
                    nonce=tx_nonce, state="signed", to_address=self.safe, value_wei="0",
                    call_data=call, gas_limit=gas,
                    total=amount if kind == "withdrawal" else 0,  # a refill stays ours
                    created_at=now, updated_at=now)
                s.add(batch)
                s.flush()
                if p.withdrawal_id is not None:
                    moved = s.execute(update(Withdrawal).where(
                        Withdrawal.id == p.withdrawal_id,
                        Withdrawal.state == "awaiting_approval",
                        Withdrawal.approved_by_2.is_not(None)).values(
                        state="batched", batch_id=batch.id, updated_at=now)).rowcount
                    if moved != 1:
                        raise _Changed()
                s.add(WithdrawalBatchTx(batch_id=batch.id, version=0, tx_hash=tx_hash,
                                        raw_tx=Web3.to_hex(raw), max_fee_per_gas=max_fee,
                                        max_priority_fee_per_gas=tip, created_at=now))
                p.state, p.batch_id, p.updated_at = "sent", batch.id, now
        except (_Changed, IntegrityError) as exc:
            # Nothing was recorded, so the signed transaction is thrown away unsent.
            log.warning("eth_safe_exec_not_recorded", payment_id=pid,
                        reason=type(exc).__name__)
            return
        res.recorded += 1
        log.info("eth_safe_exec_recorded", payment_id=pid, kind=kind, currency=code,
                 nonce=tx_nonce, tx_hash=tx_hash)
        if fault is not None:
            fault("recorded", pid)


def paid_by(w3: Web3, p: SafePayment, to_block: int | None = None) -> str | None:
    """The hash of the transaction in which the Safe executed payment ``p`` (its
    ``ExecutionSuccess`` log with the payment's safeTxHash, whoever sent it), or None.
    The one check before a Safe payment is voided or cancelled (the batcher's settlement
    through :func:`paid_by_batch`, and :meth:`SafeExecutor._resolve_used`); a node error
    raises, so nothing is voided then."""
    return chain.safe_execution(w3, p.safe_address, p.safe_tx_hash, p.prepared_block or 0,
                                to_block)


def paid_by_batch(w3: Web3, batch_id: int) -> str | None:
    """:func:`paid_by` for the payment whose execTransaction is batch ``batch_id`` (None
    when no Safe payment is sent in it)."""
    with ledger_tx(readonly=True) as s:
        p = s.execute(select(SafePayment).where(SafePayment.batch_id == batch_id)
                      ).scalar_one_or_none()
        if p is not None:
            s.expunge(p)
    return None if p is None else paid_by(w3, p)


def _paid_unsent(audit: _Audit, s: Any, p: SafePayment, w: Withdrawal | None,
                 tx_hash: str) -> None:
    """Settle payment ``p`` (not sent by us; rows locked) as paid by ``tx_hash``: a
    withdrawal's reservation and fee posted (the batcher's keys), audited as paid; a
    rejected (``cancelling``) one audited and logged as an error as well."""
    rejected, now = p.state == "cancelling", utcnow()
    if w is not None:
        if w.state in ("awaiting_approval", "rejecting"):
            post_paid(s, w)
            w.state, w.updated_at = "confirmed", now
        else:  # cannot happen: a voided reservation is not open; reconciliation shows it
            log.error("eth_safe_paid_withdrawal_not_reserved", payment_id=p.id,
                      withdrawal_id=w.id, state=w.state)
    note = (f"executed by the Safe owners after it was rejected ({p.failure})" if rejected
            else "executed in the Safe by another sender")
    p.state, p.tx_hash, p.failure, p.updated_at = "confirmed", tx_hash, note[:200], now
    player = None if w is None else w.player_id
    user = _user_of(player)
    action = AuditAction.withdrawal_paid if p.kind == "withdrawal" \
        else AuditAction.refill_paid
    audit(action, user, payment_id=p.id, withdrawal_id=p.withdrawal_id,
           currency=p.currency, amount=p.amount, tx_hash=tx_hash, failure=p.failure,
           sent_by_us=False)
    if rejected:
        audit(AuditAction.safe_rejected_executed, user, payment_id=p.id,
               withdrawal_id=p.withdrawal_id, currency=p.currency, amount=p.amount,
               safe_nonce=p.safe_nonce, tx_hash=tx_hash)
        log.error("eth_safe_rejected_payment_executed", payment_id=p.id,
                  withdrawal_id=p.withdrawal_id, currency=p.currency, amount=p.amount,
                  tx_hash=tx_hash)


def _cancel_used(audit: _Audit, s: Any, p: SafePayment, w: Withdrawal | None) -> None:
    """Cancel payment ``p`` (rows locked): the Safe used its nonce for another
    transaction, so its signatures can never execute. A withdrawal waiting for approval
    waits on with its approvals cleared; a ``rejecting`` one is rejected now (its
    reservation voided)."""
    used = f"the Safe used nonce {p.safe_nonce} for another transaction"
    rejected = p.state == "cancelling"
    _cancel(p, f"{used} ({p.failure})" if rejected else used)
    if w is not None:
        if w.state == "awaiting_approval":  # sign again, from the start
            w.approved_by = w.approved_by_2 = None
            w.updated_at = utcnow()
        elif w.state == "rejecting":
            ledger.void_pending(s, f"withdrawal:{w.id}")
            w.state, w.updated_at = "rejected", utcnow()
    audit(AuditAction.safe_payment_cancelled,
          _user_of(None if w is None else w.player_id), payment_id=p.id,
           withdrawal_id=p.withdrawal_id, reason=p.failure)


class _Audit:
    """Audit rows of one ledger transaction, staged in it (security/outbox.py: the
    payment's outcome and its audit row commit together) and written to the audit log
    right after it commits (the audit-outbox job does it if a crash comes first)."""

    def __init__(self, s: Any) -> None:
        self.s = s
        self.entries: list[outbox.Entry] = []

    def __call__(self, action: AuditAction, user: int | None, **detail: Any) -> None:
        entry = outbox.Entry(action, SYSTEM, user, lambda d: d)
        entry.stage(self.s, detail)
        self.entries.append(entry)

    def deliver(self) -> None:
        outbox.deliver_now(self.entries)


def _user_of(player_id: str | None) -> int | None:
    if player_id is None:
        return None
    from casino_app.users.models import User

    with identity_tx(readonly=True) as ids:
        return ids.execute(select(User.id).where(User.player_id == player_id)
                           ).scalar_one_or_none()


# --- the job ---------------------------------------------------------------------------------

_executor: SafeExecutor | None = None


def safe_once() -> dict[str, int]:
    """The Safe step of the ``eth-batch`` job, run before the batcher (which broadcasts
    what this records). Needs ``CASINO_ETH_SAFE_ADDRESS`` and, as the batcher does,
    ``CASINO_ETH_BATCH_CONTRACT``; without them signed payments wait."""
    global _executor
    st = get_settings()
    if not st.eth_safe_address or not st.eth_batch_contract or not st.eth_rpc_url:
        return {}
    try:
        if _executor is None:
            _executor = SafeExecutor(chain.connect(st.eth_rpc_url), st.eth_safe_address)
        return _executor.run().as_dict()
    except Exception as exc:  # noqa: BLE001 - a Safe problem must not stop the batcher
        log.error("eth_safe_run_failed", error=type(exc).__name__, detail=str(exc)[:300])
        return {"safe_errors": 1}
