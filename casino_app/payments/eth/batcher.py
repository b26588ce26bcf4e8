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

The lifecycle (record, broadcast, rebroadcast, bump, settle once) is every chain's
(payments/sender.ChainSender: settling a batch's withdrawals, the queue a batch takes them
from); its Ethereum side (nonces, EIP-1559 fees, receipts, the gas booked) is
payments/eth/sender.EthereumSender, which also carries the sweeper's transactions
(payments/eth/sweeper.py), each runner advancing only its own ``kind`` of rows. This
module is what is BatchPay's: the calls, the ``Paid``/``Refused`` logs, finding a batch by
its logs, refusals.

Crash points (``payments.sender.fault``) let tests stop the run right after recording
(before the broadcast) and right after the broadcast (before recording it).

The hot wallet's key is used through ``payments/signer/eth.py`` (the only code that loads
the seed); this module runs in the jobs process, never in the web process.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from web3 import Web3
from web3.exceptions import TransactionNotFound

from casino_app.core.clock import utcnow
from casino_app.core.db import ledger_tx
from casino_app.core.logging import get_logger
from casino_app.core.metrics import PAYMENT_ANOMALIES
from casino_app.core.settings import get_settings
from casino_app.payments import ledger
from casino_app.payments.assets import Asset
from casino_app.payments.eth.chain import ZERO_ADDRESS, artifact
from casino_app.payments.eth.sender import EthereumSender, NodeError, Signer, _hex
from casino_app.payments.eth.watcher import CHAIN, parse_tokens
from casino_app.payments.sender import REFUSED, OpenBatch, RunResult, queued
from casino_app.payments.withdrawal_models import Withdrawal, WithdrawalBatch

log = get_logger("casino.eth.batcher")

MAX_PER_BATCH = 100
MAX_UINT256 = 2**256 - 1
_TOPICS = {name: Web3.to_hex(Web3.keccak(text=f"{name}(uint256,address,address,uint256)"))
           for name in ("Paid", "Refused")}
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


class Batcher(EthereumSender):
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

    def _paid_by(self, b: OpenBatch) -> str | None:
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

    def _pays_through_contract(self, b: OpenBatch) -> bool:
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

    def _outcomes(self, b: OpenBatch, receipt: Any, ok: bool, rows: list[Withdrawal]
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

    def _mined_as(self, b: OpenBatch) -> tuple[str | None, Any]:
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
        """The next batch's withdrawals (payments/sender.queued)."""
        return queued(self.chain, code, self.max_per_batch)

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
