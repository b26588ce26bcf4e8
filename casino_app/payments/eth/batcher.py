"""The withdrawal batcher: pays the queued withdrawals from the hot wallet, one
transaction per currency and interval, and never pays a withdrawal twice.

One run (``Batcher.run``, the ``eth-batch`` job every ``CASINO_ETH_BATCH_SECONDS``):

1. Open batches first (``signed`` or ``sent``, oldest nonce first):
   - a version of its transaction has a receipt with enough confirmations
     (``CASINO_ETH_CONFIRMATIONS``): settled in one ledger transaction, once (the batch
     row is locked and its state checked), the gas the hot wallet paid booked as an entry
     fees -> custody in ETH. Status 1: each withdrawal whose BatchPay ``Paid`` log is in
     the receipt (ref, token, to, amount) is posted (its fee to the house ``fees``
     account); one with a ``Refused`` log (its address or the token refused it; BatchPay
     went on with the others and sent refused ether back) fails, reservation voided ("the
     address refused the payment"); one with neither is an anomaly: error log and
     ``casino_eth_payment_anomalies_total{anomaly="no_paid_log"}``, left ``batched`` with
     its reservation for staff. The batch's ``total`` becomes what it paid. Status 0 (the
     whole call reverted): its withdrawals are queued again, reservations kept, the
     batch counted on them (``reverts``, ``reverted_batch_id``); one in its second
     reverted batch is then paid alone, and one that reverts alone after an earlier
     revert fails (voided).
   - no receipt for any version, yet its nonce is used at the confirmed depth: receipts
     and nonces can come from different backends (a load balancer, a lagging node, a
     database restored from a backup missing a fee bump), so this alone proves nothing.
     For a BatchPay batch the ``Paid`` logs of its withdrawal ids since it was recorded
     (``recorded_block``) name the transaction that paid them; sent by the batch's sender
     with its nonce, its receipt settles the batch as above (found but unreadable: wait).
     Otherwise each run logs an error and counts ``nonce_used_no_receipt``, and only once
     the nonce was already used ``CASINO_ETH_VOID_AFTER_BLOCKS`` (default 64) blocks below
     the confirmed depth is the batch failed and its reservations voided (the node must
     keep that much state: 128 blocks on a pruned geth). Safe payments (``pay`` rows to
     the Safe) and the other kinds get only the grace.
   - before a Safe payment is settled as not paid (reverted, or its nonce used),
     ``_paid_by`` may name another transaction that paid after all (someone else sent
     the same signed Safe transaction first): then it is settled as paid.
   - not mined ``CASINO_ETH_FEE_BUMP_SECONDS`` after its latest version: the SAME call (to, value, data,
     gas, nonce) is signed again with fees raised by at least 12.5 %; the new version is
     recorded BEFORE it is broadcast. Whichever version is mined settles the batch.
   - the node does not know any version: the latest signed raw transaction is broadcast
     again, byte for byte (a new payment for the same withdrawals is never signed).
2. New batches: per currency without an open batch, up to ``MAX_PER_BATCH`` queued
   withdrawals (or alone the oldest one in two reverted batches) become one BatchPay
   call (``payEth`` with the sum as value; ``payToken`` after a one-time ``approve`` of
   BatchPay by the hot wallet, itself a recorded transaction). BatchPay reverts only
   when it would pay nobody, so when the estimate reverts each withdrawal is estimated
   alone and those that revert alone fail at once ("the address refused the payment");
   a node or network error while estimating is not a revert: nobody fails, the batch
   waits for the next run. The nonce is reserved, the transaction signed, and the batch
   with its raw transaction, hash and the node's head recorded (withdrawals marked
   ``batched``) in one ledger transaction; only then is it broadcast.

The generic part (``ChainSender``: record, broadcast, rebroadcast, bump, settle with the
gas booked) also carries the sweeper's transactions (payments/eth/sweeper.py), each
runner advancing only its own ``kind`` of rows.

Crash points (``fault``) let tests stop the run right after recording (before the
broadcast) and right after the broadcast (before recording it).

The hot wallet's key is used through ``payments/signer/eth.py`` (the only code that loads
the seed); this module runs in the jobs process, never in the web process.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import exists, func, select, update
from sqlalchemy.exc import IntegrityError
from web3 import Web3
from web3.exceptions import ContractLogicError, TransactionNotFound

from casino_app.core.clock import utcnow
from casino_app.core.db import ledger_tx
from casino_app.core.logging import get_logger
from casino_app.core.metrics import PAYMENT_ANOMALIES
from casino_app.core.settings import get_settings
from casino_app.payments import ledger
from casino_app.payments.assets import Asset
from casino_app.payments.eth.chain import ZERO_ADDRESS, artifact
from casino_app.payments.eth.watcher import chain_assets, parse_tokens
from casino_app.payments.hold_models import PlayerHold
from casino_app.payments.sender import post_paid
from casino_app.payments.withdrawal_models import (
    Withdrawal,
    WithdrawalBatch,
    WithdrawalBatchTx,
)

log = get_logger("casino.eth.batcher")

CHAIN = "ethereum"
MAX_PER_BATCH = 100
MAX_UINT256 = 2**256 - 1
_TOPICS = {name: Web3.to_hex(Web3.keccak(text=f"{name}(uint256,address,address,uint256)"))
           for name in ("Paid", "Refused")}
WEI_PER_GWEI = 10**9
OPEN = ("signed", "sent")
REFUSED = "the address refused the payment"
_TOKEN_ABI = [
    {"type": "function", "name": "allowance", "stateMutability": "view",
     "inputs": [{"name": "owner", "type": "address"}, {"name": "spender", "type": "address"}],
     "outputs": [{"name": "", "type": "uint256"}]},
    {"type": "function", "name": "balanceOf", "stateMutability": "view",
     "inputs": [{"name": "owner", "type": "address"}],
     "outputs": [{"name": "", "type": "uint256"}]},
    # No outputs: USDT's approve returns nothing.
    {"type": "function", "name": "approve", "stateMutability": "nonpayable",
     "inputs": [{"name": "spender", "type": "address"}, {"name": "value", "type": "uint256"}],
     "outputs": []},
]

# Tests only: called at named points ("signed": batch recorded, not broadcast;
# "broadcast": sent, not recorded as sent) with the batch id; raising stops the run there.
fault: Callable[[str, int], None] | None = None


def _fault(point: str, batch_id: int) -> None:
    if fault is not None:
        fault(point, batch_id)


class Signer(Protocol):
    def hot_address(self) -> str: ...
    def sign_transaction(self, tx: dict[str, Any]) -> tuple[bytes, str]: ...


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
class _Open:
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
class _Version:
    id: int
    version: int
    tx_hash: str
    raw: str | None
    max_fee: int
    tip: int
    at: Any  # broadcast_at or created_at


def _hex(value: Any) -> str:
    return value if isinstance(value, str) else Web3.to_hex(value)


def _bumped(old: int) -> int:
    """At least +12.5 % (nodes require +10 % to replace a pending transaction)."""
    return old + max(1, math.ceil(old / 8))


class ChainSender:
    """Recorded transactions of one chain (rows of ``withdrawal_batches`` of the kinds in
    ``KINDS``): recorded with the signed raw transaction before the broadcast, rebroadcast
    byte for byte, fee-bumped with the same call and nonce, settled once after
    ``confirmations`` with their gas booked (fees -> custody, rounded up to gwei). The
    :class:`Batcher` (withdrawals) and ``payments/eth/sweeper.Sweeper`` (sweeps, gas
    top-ups, hot -> cold) build on it."""

    KINDS: tuple[str, ...] = ()

    def __init__(self, w3: Web3, tokens: dict[str, str], *, signer: Signer | None = None,
                 chain: str = CHAIN, confirmations: int | None = None,
                 fee_bump_seconds: float | None = None,
                 void_after_blocks: int | None = None) -> None:
        st = get_settings()
        if signer is None:
            from casino_app.payments.signer import eth as signer_module

            signer = signer_module
        self.w3, self.chain, self.signer = w3, chain, signer
        self.hot = Web3.to_checksum_address(signer.hot_address())
        self.assets: dict[str, Asset] = {a.code: a for a in chain_assets(w3, tokens)}
        self.confirmations = confirmations or st.eth_confirmations
        self.fee_bump_seconds = (st.eth_fee_bump_seconds if fee_bump_seconds is None
                                 else fee_bump_seconds)
        self.void_after_blocks = (st.eth_void_after_blocks if void_after_blocks is None
                                  else void_after_blocks)
        self.chain_id = w3.eth.chain_id

    def _open_where(self) -> list[Any]:
        """Which senders' open transactions this runner advances (the hot wallet's)."""
        return [WithdrawalBatch.from_address == self.hot]

    def _open_batches(self) -> list[_Open]:
        with ledger_tx(readonly=True) as s:
            rows = s.execute(select(WithdrawalBatch).where(
                WithdrawalBatch.chain == self.chain,
                WithdrawalBatch.kind.in_(self.KINDS), *self._open_where(),
                WithdrawalBatch.state.in_(OPEN)).order_by(
                WithdrawalBatch.from_address, WithdrawalBatch.nonce)).scalars()
            return [_Open(b.id, b.kind, b.currency, b.from_address, b.nonce, b.state,
                          b.to_address, int(b.value_wei), b.call_data, b.gas_limit)
                    for b in rows]

    def _versions(self, batch_id: int) -> list[_Version]:
        with ledger_tx(readonly=True) as s:
            rows = s.execute(select(WithdrawalBatchTx).where(
                WithdrawalBatchTx.batch_id == batch_id)
                .order_by(WithdrawalBatchTx.version)).scalars()
            return [_Version(v.id, v.version, v.tx_hash, v.raw_tx, v.max_fee_per_gas,
                             v.max_priority_fee_per_gas, v.broadcast_at or v.created_at)
                    for v in rows]

    # --- open batches ---

    def _receipt(self, tx_hash: str) -> Any:
        try:
            return self.w3.eth.get_transaction_receipt(tx_hash)
        except TransactionNotFound:
            return None

    def _known(self, tx_hash: str) -> bool:
        try:
            self.w3.eth.get_transaction(tx_hash)
            return True
        except TransactionNotFound:
            return False

    def _advance(self, b: _Open, res: RunResult) -> None:
        versions = self._versions(b.id)
        head = self.w3.eth.block_number
        for v in versions:
            receipt = self._receipt(v.tx_hash)
            if receipt is None:
                continue
            if head - receipt["blockNumber"] + 1 >= self.confirmations:
                self._settle(b, receipt, res)
            elif b.state == "signed":
                self._mark_sent(b.id, v.id)  # it was broadcast: it is mined
            return
        safe_block = head - self.confirmations + 1
        if safe_block >= 0 and self._nonce_used(b, safe_block):
            self._nonce_used_elsewhere(b, head, safe_block, res)
            return
        latest = versions[-1]
        age = (utcnow() - latest.at).total_seconds()
        if age >= self.fee_bump_seconds:
            self._bump(b, latest, res)
        elif not any(self._known(v.tx_hash) for v in versions):
            if latest.raw and self._broadcast(b.id, latest):
                res.rebroadcast += 1

    def _nonce_used(self, b: _Open, block: int) -> bool:
        return self.w3.eth.get_transaction_count(b.from_address, block) > b.nonce

    def _nonce_used_elsewhere(self, b: _Open, head: int, safe_block: int,
                              res: RunResult) -> None:
        """No version of ``b`` has a receipt, yet its nonce is used at the confirmed depth.
        Receipts and nonces may come from different backends (a load balancer, a lagging
        node), so a missing receipt does not prove that ``b`` was not mined: the
        transaction that used the nonce is looked for first (:meth:`_mined_as`) and, when
        found, settles ``b`` with its receipt; a Safe payment that the Safe executed anyway
        (:meth:`_paid_by`) is settled as paid at once. Otherwise ``b`` is settled as not paid only
        once its nonce was already used ``void_after_blocks`` below the confirmed depth;
        until then every run alerts (error log, ``casino_eth_payment_anomalies_total``)."""
        tx_hash, receipt = self._mined_as(b)
        if receipt is not None:
            if head - receipt["blockNumber"] + 1 >= self.confirmations:
                self._settle(b, receipt, res)
            return
        if tx_hash is not None:  # it was mined: never voided, wait for a readable receipt
            res.anomalies += 1
            PAYMENT_ANOMALIES.labels("nonce_used_no_receipt").inc()
            log.error("eth_batch_receipt_unreadable", batch_id=b.id, tx_hash=tx_hash)
            return
        paid = self._paid_by(b)
        if paid is not None:  # a Safe payment executed (by someone else, or ours after all)
            receipt = self._receipt(paid)  # ours: settled with its receipt, gas booked
            if receipt is not None and _hex(receipt["from"]).lower() == b.from_address.lower():
                self._settle(b, receipt, res)
            else:
                self._settle(b, None, res, "its nonce was used by another transaction",
                             paid_by=paid)
            return
        grace_block = safe_block - self.void_after_blocks
        try:
            over = grace_block >= 0 and self._nonce_used(b, grace_block)
        except Exception as exc:  # noqa: BLE001 - e.g. a pruned node: not over yet
            log.warning("eth_batch_nonce_history_unreadable", batch_id=b.id,
                        block=grace_block, error=str(exc)[:200])
            over = False
        if over:
            PAYMENT_ANOMALIES.labels("voided_after_grace").inc()
            self._settle(b, None, res, "its nonce was used by another transaction")
            return
        res.anomalies += 1
        PAYMENT_ANOMALIES.labels("nonce_used_no_receipt").inc()
        log.error("eth_batch_nonce_used_without_receipt", batch_id=b.id, kind=b.kind,
                  currency=b.currency, nonce=b.nonce, sender=b.from_address,
                  void_after_blocks=self.void_after_blocks,
                  hint="no receipt for any recorded version and no Paid log: check the "
                       "node(s); settled as not paid after CASINO_ETH_VOID_AFTER_BLOCKS")

    def _mined_as(self, b: _Open) -> tuple[str | None, Any]:
        """(hash, receipt or None) of the transaction that used ``b``'s nonce for ``b``'s
        call when it can be found without a recorded version's receipt; (None, None) when
        it cannot (here: never; see Batcher)."""
        return None, None

    def _mark_sent(self, batch_id: int, version_id: int) -> None:
        now = utcnow()
        with ledger_tx() as s:
            s.execute(update(WithdrawalBatchTx).where(
                WithdrawalBatchTx.id == version_id, WithdrawalBatchTx.broadcast_at.is_(None))
                .values(broadcast_at=now))
            s.execute(update(WithdrawalBatch).where(
                WithdrawalBatch.id == batch_id, WithdrawalBatch.state == "signed")
                .values(state="sent", broadcast_at=now, updated_at=now))

    def _broadcast(self, batch_id: int, v: _Version) -> bool:
        """Send a recorded raw transaction; True when the node took it (or had it)."""
        assert v.raw is not None
        try:
            self.w3.eth.send_raw_transaction(v.raw)
        except Exception as exc:  # noqa: BLE001 - the node's refusal is logged, retried later
            text = str(exc).lower()
            if "already known" not in text and "known transaction" not in text:
                log.warning("eth_batch_broadcast_refused", batch_id=batch_id,
                            tx_hash=v.tx_hash, error=str(exc)[:300])
                return False
        _fault("broadcast", batch_id)
        self._mark_sent(batch_id, v.id)
        return True

    def _fees(self, floor_fee: int = 0, floor_tip: int = 0) -> tuple[int, int]:
        block = self.w3.eth.get_block("latest")
        base = int(block.get("baseFeePerGas") or 0)
        tip = max(int(self.w3.eth.max_priority_fee), floor_tip)
        return max(2 * base + tip, floor_fee, tip), tip

    def _tx(self, to: str, value: int, data: str, gas: int, nonce: int, max_fee: int,
            tip: int, sender: str | None = None) -> dict[str, Any]:
        return {"type": 2, "chainId": self.chain_id, "from": sender or self.hot, "to": to,
                "value": value, "data": data, "gas": gas, "nonce": nonce,
                "maxFeePerGas": max_fee, "maxPriorityFeePerGas": tip}

    def _sign(self, tx: dict[str, Any]) -> tuple[bytes, str]:
        """Sign with the key of ``tx["from"]`` (here: the hot wallet's)."""
        return self.signer.sign_transaction(tx)

    def _succeeded(self, b: _Open, receipt: Any) -> bool:
        """Whether a mined transaction with status 1 did what it was for."""
        return True

    def _paid_by(self, b: _Open) -> str | None:
        """Asked before a batch is settled as not paid: the hash of another transaction
        that made its payment after all (see :meth:`Batcher._paid_by`), or None."""
        return None

    def _bump(self, b: _Open, latest: _Version, res: RunResult) -> None:
        max_fee, tip = self._fees(_bumped(latest.max_fee), _bumped(latest.tip))
        raw, tx_hash = self._sign(
            self._tx(b.to, b.value, b.data, b.gas, b.nonce, max_fee, tip, b.from_address))
        now = utcnow()
        with ledger_tx() as s:
            row = WithdrawalBatchTx(batch_id=b.id, version=latest.version + 1,
                                    tx_hash=tx_hash, raw_tx=Web3.to_hex(raw),
                                    max_fee_per_gas=max_fee, max_priority_fee_per_gas=tip,
                                    created_at=now)
            s.add(row)
            s.execute(update(WithdrawalBatch).where(WithdrawalBatch.id == b.id)
                      .values(updated_at=now))
            s.flush()
            version = _Version(row.id, row.version, tx_hash, row.raw_tx, max_fee, tip, now)
        res.bumped += 1
        log.info("eth_batch_fee_bumped", batch_id=b.id, nonce=b.nonce, tx_hash=tx_hash,
                 max_fee_per_gas=max_fee, priority_fee=tip)
        _fault("bumped", b.id)
        self._broadcast(b.id, version)

    def _outcomes(self, b: _Open, receipt: Any, ok: bool, rows: list[Withdrawal]
                  ) -> dict[int, str]:
        """How each withdrawal of ``b`` settles: ``paid`` (reservation posted, fee to
        ``fees``), ``void`` (failed with the batch's reason, reservation voided),
        ``refused`` (failed: the address refused the payment, voided), ``requeue`` (queued
        again, reservation kept), ``unbatch`` (back to awaiting its Safe payment,
        reservation kept) or ``anomaly`` (left batched, reservation kept, alert).
        Here: all paid when the transaction did what it was for, else all void."""
        return {w.id: "paid" if ok else "void" for w in rows}

    def _settle(self, b: _Open, receipt: Any, res: RunResult, reason: str = "",
                paid_by: str | None = None) -> None:
        """Final state of a batch, in one ledger transaction, once: its gas booked, each
        withdrawal as :meth:`_outcomes` says. ``paid_by``: the transaction that made the
        payment after all, when the caller already found it (asked once: a second
        question to another backend could answer differently)."""
        ok = receipt is not None and receipt["status"] == 1 and self._succeeded(b, receipt)
        if paid_by is None and not ok:
            paid_by = self._paid_by(b)  # a chain call: before the transaction
        now = utcnow()
        with ledger_tx() as s:
            batch = s.execute(select(WithdrawalBatch).where(WithdrawalBatch.id == b.id)
                              .with_for_update()).scalar_one()
            if batch.state not in OPEN:
                return
            if receipt is not None:
                tx_hash = _hex(receipt["transactionHash"])
                gas_wei = int(receipt["gasUsed"]) * int(receipt["effectiveGasPrice"])
                gas_gwei = -(-gas_wei // WEI_PER_GWEI)  # rounded up: never overstate custody
                if gas_gwei:
                    ledger.transfer(s, f"eth-gas:{self.chain}:{tx_hash}", "network_fee",
                                    ledger.house_account(s, "ETH", "fees"),
                                    ledger.house_account(s, "ETH", "custody"), gas_gwei,
                                    memo=f"gas of {self.chain} {b.kind} {b.id}")
                batch.tx_hash, batch.block_number = tx_hash, int(receipt["blockNumber"])
                batch.gas_used, batch.gas_fee_wei = int(receipt["gasUsed"]), str(gas_wei)
                if not ok:
                    reason = ("the transaction reverted" if receipt["status"] != 1
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
                    PAYMENT_ANOMALIES.labels("no_paid_log").inc()
                    log.error("eth_withdrawal_without_paid_log", withdrawal_id=w.id,
                              batch_id=b.id, tx_hash=batch.tx_hash,
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
            s.execute(update(WithdrawalBatchTx).where(WithdrawalBatchTx.batch_id == b.id)
                      .values(raw_tx=None))
        if ok:
            res.confirmed += 1
        else:
            res.failed += 1
        (log.info if ok else log.warning)("eth_batch_settled", batch_id=b.id, kind=b.kind,
                currency=b.currency, nonce=b.nonce, ok=ok, withdrawals=len(rows),
                reason=reason or None)

    # --- recording and sending ---

    def _estimate(self, to: str, value: int, data: str,
                  sender: str | None = None) -> int | None:
        """The gas of the call; None when it would revert or the node did not answer."""
        try:
            return self._gas(to, value, data, sender)
        except NodeError as exc:
            log.warning("eth_estimate_node_error", to=to, error=str(exc))
            return None

    def _gas(self, to: str, value: int, data: str, sender: str | None = None) -> int | None:
        """The gas of the call; None when it would revert. A node or network error is not
        a revert: it raises :class:`NodeError`."""
        try:
            return int(self.w3.eth.estimate_gas({"from": sender or self.hot, "to": to,
                                                 "value": value, "data": data}))
        except Exception as exc:
            if isinstance(exc, ContractLogicError) or "execution reverted" in str(exc).lower():
                log.debug("eth_batch_estimate_reverts", error=str(exc)[:200])
                return None
            raise NodeError(str(exc)[:300]) from exc

    def _next_nonce(self, s: Any, sender: str | None = None) -> int:
        sender = sender or self.hot
        stored = s.execute(select(func.max(WithdrawalBatch.nonce)).where(
            WithdrawalBatch.chain == self.chain,
            WithdrawalBatch.from_address == sender)).scalar_one()
        on_chain = self.w3.eth.get_transaction_count(sender, "pending")
        return max(on_chain, -1 if stored is None else int(stored) + 1)

    def _record_and_send(self, kind: str, code: str, to: str, value: int, data: str,
                         items: list[tuple[int, str, int]], res: RunResult, *,
                         sender: str | None = None, gas: int | None = None,
                         fees: tuple[int, int] | None = None, total: int | None = None
                         ) -> int | None:
        """Record (nonce, signed raw transaction) in one ledger transaction, then
        broadcast; the batch id, None when nothing was recorded. ``sender`` defaults to
        the hot wallet, ``gas`` to the estimate + 20 %, ``fees`` to the current ones,
        ``total`` to the sum of ``items``."""
        sender = sender or self.hot
        if gas is None:
            estimate = self._estimate(to, value, data, sender)
            if estimate is None:
                log.error("eth_batch_would_revert", kind=kind, currency=code)
                return None
            gas = estimate * 6 // 5
        max_fee, tip = fees or self._fees()
        head = self.w3.eth.block_number
        now = utcnow()
        try:
            with ledger_tx() as s:
                nonce = self._next_nonce(s, sender)
                raw, tx_hash = self._sign(
                    self._tx(to, value, data, gas, nonce, max_fee, tip, sender))
                batch = WithdrawalBatch(
                    chain=self.chain, kind=kind, currency=code, from_address=sender,
                    nonce=nonce, state="signed", to_address=to, value_wei=str(value),
                    call_data=data, gas_limit=gas,
                    total=sum(a for _, _, a in items) if total is None else total,
                    recorded_block=head, created_at=now, updated_at=now)
                s.add(batch)
                s.flush()
                ids = [wid for wid, _, _ in items]
                if ids:
                    marked = s.execute(update(Withdrawal).where(
                        Withdrawal.id.in_(ids), Withdrawal.state == "queued").values(
                        state="batched", batch_id=batch.id, updated_at=now)).rowcount
                    if marked != len(ids):
                        raise _Changed()
                version = WithdrawalBatchTx(batch_id=batch.id, version=0, tx_hash=tx_hash,
                                            raw_tx=Web3.to_hex(raw), max_fee_per_gas=max_fee,
                                            max_priority_fee_per_gas=tip, created_at=now)
                s.add(version)
                s.flush()
                batch_id, v = batch.id, _Version(version.id, 0, tx_hash, version.raw_tx,
                                                 max_fee, tip, now)
        except (_Changed, IntegrityError) as exc:
            # Nothing was recorded, so the signed transaction is thrown away unsent.
            log.warning("eth_batch_not_recorded", kind=kind, currency=code,
                        reason=type(exc).__name__)
            return None
        res.created += 1
        log.info("eth_batch_recorded", batch_id=batch_id, kind=kind, currency=code,
                 nonce=nonce, tx_hash=tx_hash, withdrawals=len(items))
        _fault("signed", batch_id)
        if self._broadcast(batch_id, v):
            res.broadcast += 1
        return batch_id


class Batcher(ChainSender):
    """Pays queued withdrawals on one chain from the hot wallet through BatchPay."""

    KINDS = ("pay", "approve")

    def __init__(self, w3: Web3, batch_contract: str, tokens: dict[str, str], *,
                 signer: Signer | None = None, chain: str = CHAIN,
                 confirmations: int | None = None, fee_bump_seconds: float | None = None,
                 void_after_blocks: int | None = None,
                 max_per_batch: int = MAX_PER_BATCH) -> None:
        super().__init__(w3, tokens, signer=signer, chain=chain, confirmations=confirmations,
                         fee_bump_seconds=fee_bump_seconds, void_after_blocks=void_after_blocks)
        self.contract = w3.eth.contract(address=Web3.to_checksum_address(batch_contract),
                                        abi=artifact("BatchPay")["abi"])
        self.max_per_batch = max_per_batch

    def _paid_by(self, b: _Open) -> str | None:
        """A Safe ``execTransaction`` row (kind pay, not to BatchPay) whose own transaction
        reverted or lost its nonce may still have paid: anyone can send the same signed
        Safe transaction first (payments/eth/safe_exec.paid_by_batch)."""
        if b.kind != "pay" or b.to == self.contract.address:
            return None
        from casino_app.payments.eth.safe_exec import paid_by_batch

        return paid_by_batch(self.w3, b.id)

    # --- the run ---

    def run(self) -> RunResult:
        res = RunResult()
        for batch in self._open_batches():
            self._advance(batch, res)
        busy = {b.currency for b in self._open_batches()}
        for code in self.assets:
            if code not in busy:
                self._start(code, res)
        if any(res.as_dict().values()):
            log.info("eth_batch_run", **res.as_dict())
        return res

    # --- settling BatchPay batches ---

    def _pays_through_contract(self, b: _Open) -> bool:
        """A BatchPay call (not an approval, not a Safe payment: a pay row to the Safe)."""
        return b.kind == "pay" and b.to == self.contract.address

    def _logs(self, receipt: Any, name: str) -> set[tuple[int, str, str, int]]:
        """(ref, token, to, amount) of BatchPay's ``name`` events in ``receipt``, from our
        BatchPay only (a recipient may emit look-alike events)."""
        event, topic = getattr(self.contract.events, name)(), _TOPICS[name]
        out = set()
        for entry in receipt["logs"]:
            if Web3.to_checksum_address(entry["address"]) != self.contract.address or \
                    not entry["topics"] or _hex(entry["topics"][0]) != topic:
                continue
            a = event.process_log(entry)["args"]
            out.add((int(a["ref"]), Web3.to_checksum_address(a["token"]),
                     Web3.to_checksum_address(a["to"]), int(a["amount"])))
        return out

    def _outcomes(self, b: _Open, receipt: Any, ok: bool, rows: list[Withdrawal]
                  ) -> dict[int, str]:
        """BatchPay batches: mined with status 1, a withdrawal is paid when its ``Paid``
        log is in the receipt (ref, token, to, amount), refused with its ``Refused`` log,
        an anomaly with neither. Reverted (status 0): queued again, unless it was in a
        reverted batch before and was alone in this one (then it fails)."""
        if b.kind == "pay" and not self._pays_through_contract(b) and not ok:
            # A Safe payment not executed: the Safe did not use its nonce, so the owners'
            # signatures (public now) can still execute it. Never voided here: the
            # withdrawal goes back to its payment, reserved, and the Safe step retries it
            # or settles it once the Safe's nonce passes (safe_exec).
            return {w.id: "unbatch" for w in rows}
        if not self._pays_through_contract(b) or receipt is None:
            return super()._outcomes(b, receipt, ok, rows)
        if receipt["status"] != 1:
            return {w.id: "void" if w.reverts and len(rows) == 1 else "requeue"
                    for w in rows}
        paid, refused = self._logs(receipt, "Paid"), self._logs(receipt, "Refused")
        asset = self.assets[b.currency]
        token = asset.token or ZERO_ADDRESS
        out = {}
        for w in rows:
            key = (w.id, token, Web3.to_checksum_address(w.address), asset.to_chain(w.amount))
            out[w.id] = "paid" if key in paid else "refused" if key in refused else "anomaly"
        return out

    def _mined_as(self, b: _Open) -> tuple[str | None, Any]:
        """A BatchPay batch none of whose recorded versions has a receipt: the ``Paid``
        logs of its withdrawals (refs) since it was recorded name the transaction that
        paid them; it counts when it was sent by the batch's sender with its nonce. Its
        hash and receipt (None while no node gives it)."""
        if not self._pays_through_contract(b):
            return None, None  # approvals; Safe payments are settled from the Safe's side
        with ledger_tx(readonly=True) as s:
            refs = s.execute(select(Withdrawal.id).where(
                Withdrawal.batch_id == b.id, Withdrawal.state == "batched")).scalars().all()
            since = s.execute(select(WithdrawalBatch.recorded_block).where(
                WithdrawalBatch.id == b.id)).scalar_one()
        if not refs:
            return None, None
        logs = self.w3.eth.get_logs({
            "address": self.contract.address,
            # a node behind the one that gave the head, or a short reorg: look a bit lower
            "fromBlock": max(0, (since or 0) - self.confirmations), "toBlock": "latest",
            "topics": [_TOPICS["Paid"], ["0x" + ref.to_bytes(32, "big").hex() for ref in refs]]})
        for tx_hash in dict.fromkeys(_hex(e["transactionHash"]) for e in logs):
            try:
                tx = self.w3.eth.get_transaction(tx_hash)
            except TransactionNotFound:
                continue
            if Web3.to_checksum_address(tx["from"]) == b.from_address and \
                    int(tx["nonce"]) == b.nonce:
                log.warning("eth_batch_found_by_paid_log", batch_id=b.id, tx_hash=tx_hash)
                return tx_hash, self._receipt(tx_hash)
        return None, None

    # --- new batches ---

    def _queued(self, code: str) -> list[tuple[int, str, int]]:
        """The next batch's withdrawals: the oldest queued ones, or alone the oldest that
        was in two reverted batches (so it can no longer make others' batches revert)."""
        with ledger_tx(readonly=True) as s:
            rows = [tuple(r) for r in s.execute(
                select(Withdrawal.id, Withdrawal.address, Withdrawal.amount,
                       Withdrawal.reverts).where(
                    Withdrawal.chain == self.chain, Withdrawal.currency == code,
                    Withdrawal.state == "queued",
                    # a player on hold (staff review) is not paid until it is released
                    ~exists().where(PlayerHold.player_id == Withdrawal.player_id,
                                    PlayerHold.released_at.is_(None)))
                .order_by(Withdrawal.id).limit(self.max_per_batch))]
        alone = [r for r in rows if r[3] >= 2]
        return [r[:3] for r in (alone[:1] or rows)]

    def _call(self, asset: Asset, items: list[tuple[int, str, int]]) -> tuple[str, int]:
        """(call data, value in wei) of the BatchPay call paying ``items``."""
        tos = [Web3.to_checksum_address(a) for _, a, _ in items]
        amounts = [asset.to_chain(amount) for _, _, amount in items]
        refs = [wid for wid, _, _ in items]
        if asset.token is None:
            return self.contract.encode_abi("payEth", args=[tos, amounts, refs]), sum(amounts)
        return self.contract.encode_abi("payToken", args=[asset.token, tos, amounts, refs]), 0

    def _start(self, code: str, res: RunResult) -> None:
        items = self._queued(code)
        if not items:
            return
        asset = self.assets[code]
        if asset.token is not None:
            token = self.w3.eth.contract(address=asset.token, abi=_TOKEN_ABI)
            need = asset.to_chain(sum(a for _, _, a in items))
            allowance = token.functions.allowance(self.hot, self.contract.address).call()
            if allowance < need:
                # USDT refuses to change a non-zero allowance: reset it to 0 first.
                value = 0 if allowance else MAX_UINT256
                data = token.encode_abi("approve", args=[self.contract.address, value])
                self._record_and_send("approve", code, asset.token, 0, data, [], res)
                return
            if token.functions.balanceOf(self.hot).call() < need:
                log.error("eth_hot_wallet_short", currency=code, needed=need,
                          withdrawals=len(items))
                return
        else:
            value = asset.to_chain(sum(a for _, _, a in items))
            if self.w3.eth.get_balance(self.hot) < value:
                log.error("eth_hot_wallet_short", currency=code, needed=value,
                          withdrawals=len(items))
                return
        data, value = self._call(asset, items)
        try:
            gas = self._gas(self.contract.address, value, data)
            if gas is None:  # nobody would be paid: find who refuses
                items = self._drop_refused(asset, items, res)
                if not items:
                    return
                data, value = self._call(asset, items)
                gas = self._gas(self.contract.address, value, data)
        except NodeError as exc:  # not an answer about the batch: it waits, nobody fails
            log.warning("eth_batch_node_error", currency=code, error=str(exc))
            return
        if gas is None:
            log.error("eth_batch_would_revert", currency=code, withdrawals=len(items))
            return
        self._record_and_send("pay", code, self.contract.address, value, data, items, res,
                              gas=gas * 6 // 5)

    def _drop_refused(self, asset: Asset, items: list[tuple[int, str, int]],
                      res: RunResult) -> list[tuple[int, str, int]]:
        """The batch would revert (BatchPay reverts when it would pay nobody): try each
        withdrawal alone; those that revert alone (the address refuses the payment) fail
        now (reservation voided), the others stay. When every one of several refuses (a
        paused token looks like that), only the oldest fails this run, with an alert. A
        node error on any estimate raises :class:`NodeError` before anything failed."""
        refused, kept = [], []
        for item in items:
            data, value = self._call(asset, [item])
            (kept if self._gas(self.contract.address, value, data) else refused).append(item)
        if len(refused) > 1 and not kept:
            # Everyone refused: more likely the token (paused, or the hot wallet itself
            # blocked) than every address at once. Fail only the oldest this run (a
            # queue of real refusers still drains), alert, and keep the rest queued.
            log.error("eth_batch_everyone_refused", currency=asset.code,
                      withdrawals=len(refused),
                      hint="check the token contract (paused?) and the hot wallet")
            PAYMENT_ANOMALIES.labels("everyone_refused").inc()
            refused = refused[:1]
        if refused:
            now = utcnow()
            with ledger_tx() as s:
                for wid, _, _ in refused:
                    done = s.execute(update(Withdrawal).where(
                        Withdrawal.id == wid, Withdrawal.state == "queued").values(
                        state="failed", updated_at=now, failure=REFUSED)).rowcount
                    if done:
                        ledger.void_pending(s, f"withdrawal:{wid}")
                        res.voided += 1
            log.warning("eth_withdrawals_refused_by_address", ids=[i for i, _, _ in refused])
        if kept and len(kept) == len(items):
            log.error("eth_batch_would_revert", currency=asset.code, withdrawals=len(items))
            return []
        return kept

class _Changed(Exception):
    """A withdrawal left the queue while its batch was being built."""


class NodeError(Exception):
    """The node could not answer (network, timeout, overload): not a revert."""


# --- the job ---------------------------------------------------------------------------------

_batcher: Batcher | None = None


def batch_once() -> dict[str, int]:
    """The ``eth-batch`` job: one run of the process's batcher (built from the settings on
    first use). Without ``CASINO_ETH_BATCH_CONTRACT`` withdrawals stay queued."""
    global _batcher
    st = get_settings()
    if not st.eth_batch_contract:
        log.warning("eth_batch_no_contract")
        return {}
    if _batcher is None:
        w3 = Web3(Web3.HTTPProvider(st.eth_rpc_url, request_kwargs={"timeout": 10}))
        _batcher = Batcher(w3, st.eth_batch_contract, parse_tokens(st.eth_tokens))
    return _batcher.run().as_dict()
