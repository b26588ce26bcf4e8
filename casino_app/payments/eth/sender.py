"""Ethereum's side of the transactions we send (payments/sender.ChainSender): the hot
wallet's and the deposit addresses' transactions with their nonces, EIP-1559 fees (a bump
re-signs the same call with the same nonce and fees raised by at least 12.5 %), receipts,
and the gas they burn booked in ETH (``eth-gas:<chain>:<tx>``, fees -> custody, rounded up
to gwei). The withdrawal batcher (payments/eth/batcher.py) and the sweeper
(payments/eth/sweeper.py) build on :class:`EthereumSender`.

The keys are used through ``payments/signer/eth.py`` (the only code that loads the seed);
this module runs in the jobs process, never in the web process.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from web3 import Web3
from web3.exceptions import ContractLogicError, TransactionNotFound

from casino_app.core.clock import utcnow
from casino_app.core.db import ledger_tx
from casino_app.core.logging import get_logger
from casino_app.core.metrics import PAYMENT_ANOMALIES
from casino_app.core.settings import get_settings
from casino_app.payments import ledger
from casino_app.payments.assets import Asset
from casino_app.payments.eth.watcher import CHAIN, WEI_PER_GWEI, chain_assets
from casino_app.payments.sender import (
    BatchChanged,
    ChainSender,
    OpenBatch,
    RunResult,
    Version,
    _fault,
    mark_batched,
)
from casino_app.payments.withdrawal_models import WithdrawalBatch, WithdrawalBatchTx

# The logger its events have always had (they were the batcher's before the split).
log = get_logger("casino.eth.batcher")


class Signer(Protocol):
    def hot_address(self) -> str: ...
    def sign_transaction(self, tx: dict[str, Any]) -> tuple[bytes, str]: ...


class NodeError(Exception):
    """The node could not answer (network, timeout, overload): not a revert."""


def _hex(value: Any) -> str:
    return value if isinstance(value, str) else Web3.to_hex(value)


def _bumped(old: int) -> int:
    """At least +12.5 % (nodes require +10 % to replace a pending transaction)."""
    return old + max(1, math.ceil(old / 8))


class EthereumSender(ChainSender):
    """Recorded transactions on an Ethereum chain, sent from the hot wallet (or, for the
    sweeper, from deposit addresses): fee-bumped with the same call and nonce, settled
    once after ``confirmations`` with their gas booked. A runner advances only its own
    ``KINDS`` of rows."""

    log_prefix = "eth"
    log = log

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

    # --- the chain's questions (payments/sender.ChainSender) ---

    def _head(self) -> int:
        return self.w3.eth.block_number

    def _receipt(self, tx_hash: str) -> Any:
        try:
            return self.w3.eth.get_transaction_receipt(tx_hash)
        except TransactionNotFound:
            return None

    def _mined(self, receipt: Any) -> tuple[str, int]:
        return _hex(receipt["transactionHash"]), int(receipt["blockNumber"])

    def _status_ok(self, receipt: Any) -> bool:
        return receipt["status"] == 1

    def _known(self, tx_hash: str) -> bool:
        try:
            self.w3.eth.get_transaction(tx_hash)
            return True
        except TransactionNotFound:
            return False

    def _send_raw(self, raw: str) -> None:
        self.w3.eth.send_raw_transaction(raw)

    def _already_known(self, exc: Exception) -> bool:
        text = str(exc).lower()
        return "already known" in text or "known transaction" in text

    def _slot_used(self, b: OpenBatch, block: int) -> bool:
        return self._nonce_used(b, block)

    def _slot_taken(self, b: OpenBatch, head: int, safe_block: int, res: RunResult) -> None:
        self._nonce_used_elsewhere(b, head, safe_block, res)

    def _book_network_fee(self, s: Session, b: OpenBatch, batch: WithdrawalBatch,
                          receipt: Any, tx_hash: str) -> None:
        """The gas the sender paid, booked once as ``eth-gas:<chain>:<tx>`` fees -> custody
        in ETH (rounded up to gwei: never overstate custody)."""
        gas_wei = int(receipt["gasUsed"]) * int(receipt["effectiveGasPrice"])
        gas_gwei = -(-gas_wei // WEI_PER_GWEI)  # rounded up: never overstate custody
        if gas_gwei:
            ledger.transfer(s, f"eth-gas:{self.chain}:{tx_hash}", "network_fee",
                            ledger.house_account(s, "ETH", "fees"),
                            ledger.house_account(s, "ETH", "custody"), gas_gwei,
                            memo=f"gas of {self.chain} {b.kind} {b.id}")
        batch.gas_used, batch.gas_fee_wei = int(receipt["gasUsed"]), str(gas_wei)

    # --- nonces ---

    def _nonce_used(self, b: OpenBatch, block: int) -> bool:
        return self.w3.eth.get_transaction_count(b.from_address, block) > b.nonce

    def _nonce_used_elsewhere(self, b: OpenBatch, head: int, safe_block: int,
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

    def _mined_as(self, b: OpenBatch) -> tuple[str | None, Any]:
        """(hash, receipt or None) of the transaction that used ``b``'s nonce for ``b``'s
        call when it can be found without a recorded version's receipt; (None, None) when
        it cannot (here: never; see Batcher)."""
        return None, None

    # --- signing, fees, bumps ---

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

    def _bump(self, b: OpenBatch, latest: Version, res: RunResult) -> None:
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
            version = Version(row.id, row.version, tx_hash, row.raw_tx, max_fee, tip, now)
        res.bumped += 1
        log.info("eth_batch_fee_bumped", batch_id=b.id, nonce=b.nonce, tx_hash=tx_hash,
                 max_fee_per_gas=max_fee, priority_fee=tip)
        _fault("bumped", b.id)
        self._broadcast(b.id, version)

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
                mark_batched(s, [wid for wid, _, _ in items], batch.id, now)
                version = WithdrawalBatchTx(batch_id=batch.id, version=0, tx_hash=tx_hash,
                                            raw_tx=Web3.to_hex(raw), max_fee_per_gas=max_fee,
                                            max_priority_fee_per_gas=tip, created_at=now)
                s.add(version)
                s.flush()
                batch_id, v = batch.id, Version(version.id, 0, tx_hash, version.raw_tx,
                                                max_fee, tip, now)
        except (BatchChanged, IntegrityError) as exc:
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
