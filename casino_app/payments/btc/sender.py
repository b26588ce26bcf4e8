"""Bitcoin's side of the transactions we send (payments/sender.ChainSender): transactions
of the hot wallet built from its coins (``btc_utxos``), with exact sizes, the node's fee
rate, RBF fee bumps, the miner fee booked in satoshis, and the reorg watch of settled
batches. The withdrawal batcher (payments/btc/batcher.py) builds on :class:`BitcoinSender`;
the sweeper and cold-wallet payments are meant to (``kind`` says which rows a runner
advances; inputs, outputs and change are general).

**What a recorded transaction is** (a ``withdrawal_batches`` row, chain ``bitcoin``; the
columns shaped for Ethereum are used like this):

- ``from_address``: the hot wallet's address (m/84'/coin'/0'/1/0): whose transactions a
  runner advances;
- ``nonce``: the sender's sequence number of the batch (0, 1, 2...), UNIQUE per chain and
  sender: it orders the batches; Bitcoin has no nonce;
- ``call_data``: the plan as JSON (:class:`Plan`): the inputs (outpoint, value, script, the
  key (chain, index) that owns it), the outputs (script, value, the withdrawal each pays)
  and the change address (index k of m/84'/coin'/0'/1/k, script; k = 0: the hot address,
  when the watcher's window of change addresses is full); the change VALUE is the
  version's (inputs - outputs - fee). A fee bump that needs another coin rewrites it (its
  inputs only grow);
- ``to_address``: the change address ("" without change); ``value_wei``: what the outputs
  pay, change left out (satoshis); ``gas_limit``: the upper bound of the signed vsize (vB)
  of the latest version; ``total``: what the withdrawals receive;
- settled: ``tx_hash``, ``block_number``, ``block_hash`` of the mined version, its
  ``gas_used`` = its vsize and ``gas_fee_wei`` = its miner fee in satoshis.

Each version (``withdrawal_batch_txs``): ``tx_hash`` the txid, ``raw_tx`` the signed bytes,
``max_fee_per_gas`` the fee rate it was built for (sat/vB) and ``max_priority_fee_per_gas``
its absolute fee (satoshis).

**Sizes and fees.** The vsize is computed from BIP141's weights for P2WPKH inputs (41
bytes of outpoint, empty script and sequence; a witness of two items: the signature at its
largest, 72 DER bytes + the sighash byte, and the 33-byte key) and the exact serialized
outputs. Only the signatures' length is not known before signing (DER is 70 to 72 bytes),
so the signed transaction is at most 2 weight units an input smaller than computed and its
fee rate never below the target. The rate is the node's ``estimatesmartfee``
(``CASINO_BTC_FEE_TARGET`` blocks) kept within [``CASINO_BTC_FEE_FLOOR``,
``CASINO_BTC_FEE_CEILING``], ``CASINO_BTC_FEE_FALLBACK`` when the node has no estimate
(an empty regtest, a node just started).

**Coin selection: largest first** over the hot wallet's confirmed ``unspent`` coins (roles
``hot`` and ``change``, at least one confirmation; the change of our own transactions is
spent only once they are settled, at ``CASINO_BTC_CONFIRMATIONS``: before that a reorg can
put one back in the mempool, where a fee bump replaces it by a version with another txid,
so no transaction of ours depends on another that could be replaced). Largest-first takes
the fewest inputs, so the payout that players wait for pays the least fee, and since each
batch spends at least one coin and makes at most one change, the hot wallet's coins do not
multiply. Branch-and-bound (Bitcoin Core's search for a change-less input set) rarely finds
a match for a batch of many outputs whose sum changes every interval, and it would leave
the large coins idle. A change below the P2WPKH dust limit (294 sat) is not made: it goes to
the fee.

**Fee bump (RBF).** Every input signals BIP125 (sequence 0xfffffffd). A version not mined
``CASINO_BTC_FEE_BUMP_SECONDS`` after it was sent is replaced by one spending the same
inputs and paying the same outputs at a higher rate: at least 25 % and 1 sat/vB more, the
node's current estimate if higher, never above the ceiling, and at least the old fee plus
1 sat/vB of the new size (BIP125 rules 3 and 4). The increase comes out of the change; a
change that would fall below dust is dropped into the fee; when even that does not pay, one
more confirmed coin of the hot wallet is added (a replacement may add confirmed inputs) and
a change is made from it; with no coin to add, the batch is not bumped (error log and
``casino_btc_payment_anomalies_total{anomaly="bump_unfunded"}``) and waits as it is. At the
ceiling nothing is bumped. The new version is recorded (and the inputs' ``spent_by`` moved
to it) BEFORE it is broadcast. A node that refuses the replacement (bcoin has no BIP125
replacement at all; Core refuses one that pays too little) keeps the original in its
mempool: the refusal is logged and the batch waits; whichever version is mined settles it.

**Settling** (after ``CASINO_BTC_CONFIRMATIONS``, in one ledger transaction): each
withdrawal whose output (its address's script, its exact amount) is in the mined version is
posted (its fee to ``fees``); the miner fee is booked ``btc-fee:bitcoin:<txid>`` fees ->
custody; inputs the mined version did not spend (a coin a bump added, when the original
was mined) are ``unspent`` again.

**Reorgs.** An unconfirmed batch dropped by a reorg (its block replaced before the
confirmations) has no version in the chain any more: the same bytes are broadcast again
(bcoin's ``invalidateblock`` empties its mempool; Core puts the transactions back itself).
A SETTLED batch whose block is replaced (a reorg deeper than the confirmations: an
incident) is found within ``REORG_WATCH_BLOCKS`` by its stored block hash: if its
transaction is in the chain again its block is updated (warning), else every run logs an
error (``btc_settled_batch_reorged``) and counts
``casino_btc_payment_anomalies_total{anomaly="settled_batch_reorged"}``, and the kept raw
transaction is broadcast again. The ledger already shows those withdrawals paid; staff
check the transaction on the node: once mined again nothing is left to do; if the node
refuses it (its coins spent by another transaction), the players were not paid on chain
and are paid by hand after the coins are accounted for.

**Inputs spent by another transaction.** When the watcher recorded one of a batch's coins
``spent`` at the confirmed depth by a transaction that is none of its versions: a
transaction paying every output of the batch is a version we lost (a database restored
from a backup) and settles it as paid; one paying none of them means the batch can never be
mined: it fails, its withdrawals are queued again with their reservations and its other
coins freed (error log, ``inputs_spent_elsewhere``); anything else is left for staff.

The hot wallet's key is used through payments/signer/btc.py (the only code that reads the
seed), imported when a sender is built: this module runs in the jobs process, never in the
web process.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import func, or_, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from casino_app.core.clock import utcnow
from casino_app.core.db import ledger_tx
from casino_app.core.logging import get_logger
from casino_app.core.metrics import BTC_PAYMENT_ANOMALIES
from casino_app.core.settings import Settings, get_settings
from casino_app.payments import ledger
from casino_app.payments.btc import addresses, keys, utxos
from casino_app.payments.btc import network as networks
from casino_app.payments.btc.adapter import CHAIN, CURRENCY
from casino_app.payments.btc.models import BtcChangeAddress, BtcUtxo
from casino_app.payments.btc.network import Network
from casino_app.payments.btc.rpc import BitcoinRPC, NotFound, RPCError, Transaction
from casino_app.payments.sender import (
    BatchChanged,
    ChainSender,
    OpenBatch,
    RunResult,
    Version,
    _fault,
    mark_batched,
)
from casino_app.payments.withdrawal_models import Withdrawal, WithdrawalBatch, WithdrawalBatchTx

log = get_logger("casino.btc.batcher")

DUST = keys.DUST_LIMITS[keys.AddressKind.p2wpkh]  # 294 sat: our change is P2WPKH
CHANGE_SCRIPT_SIZE = 22                           # OP_0 <20 bytes>
INPUT_WEIGHT = 41 * 4 + 1 + (1 + 73) + (1 + 33)   # outpoint..sequence x4, witness (largest)
INCREMENTAL_RELAY = 1                             # sat/vB a replacement adds (BIP125 rule 4)
MAX_INPUTS = 500                                  # about 34,000 vB: far below 100,000
REORG_WATCH_BLOCKS = 144                          # settled batches watched for a day
HOT_CHAIN, HOT_INDEX = keys.CHANGE, 0


# --- sizes, plans, selection -----------------------------------------------------------------

def _varint_size(n: int) -> int:
    return 1 if n < 0xFD else 3 if n <= 0xFFFF else 5


def output_size(script: bytes) -> int:
    """Serialized size of an output: value, script length, script."""
    return 8 + _varint_size(len(script)) + len(script)


def vsize(n_inputs: int, output_sizes: Sequence[int]) -> int:
    """The vsize (vB, rounded up) of a segwit transaction spending ``n_inputs`` P2WPKH
    outputs to outputs of these serialized sizes, each signature at its largest (72-byte
    DER + sighash): the signed transaction is never larger."""
    base = 4 + _varint_size(n_inputs) + _varint_size(len(output_sizes)) + \
        sum(output_sizes) + 4
    weight = 4 * base + 2 + n_inputs * INPUT_WEIGHT  # + segwit marker and flag
    return -(-weight // 4)


@dataclass(frozen=True)
class Coin:
    """An output of ours to spend (a ``btc_utxos`` row): owned by m/84'/coin'/0'/chain/index."""

    txid: str
    vout: int
    value: int
    script: bytes
    key_chain: int
    key_index: int

    @property
    def outpoint(self) -> tuple[str, int]:
        return self.txid, self.vout


@dataclass(frozen=True)
class Output:
    """``value`` satoshis to ``script``; ``withdrawal_id``: the withdrawal it pays (None for
    a move between our own addresses)."""

    script: bytes
    value: int
    withdrawal_id: int | None = None


@dataclass(frozen=True)
class Plan:
    """What a recorded transaction spends and pays, stored as JSON in ``call_data``; the
    change output (its value is the version's) pays m/84'/coin'/0'/1/``change_index``."""

    inputs: tuple[Coin, ...]
    outputs: tuple[Output, ...]
    change_index: int | None = None
    change_script: bytes | None = None

    def to_json(self) -> str:
        return json.dumps({
            "inputs": [{"txid": c.txid, "vout": c.vout, "value": c.value,
                        "script": c.script.hex(), "key": [c.key_chain, c.key_index]}
                       for c in self.inputs],
            "outputs": [{"script": o.script.hex(), "value": o.value,
                         "withdrawal": o.withdrawal_id} for o in self.outputs],
            "change": None if self.change_index is None else {
                "index": self.change_index, "script": (self.change_script or b"").hex()},
        }, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Plan:
        d = json.loads(text)
        change = d.get("change")
        return cls(
            tuple(Coin(i["txid"], int(i["vout"]), int(i["value"]), bytes.fromhex(i["script"]),
                       int(i["key"][0]), int(i["key"][1])) for i in d["inputs"]),
            tuple(Output(bytes.fromhex(o["script"]), int(o["value"]), o.get("withdrawal"))
                  for o in d["outputs"]),
            None if change is None else int(change["index"]),
            None if change is None else bytes.fromhex(change["script"]))

    @property
    def paid(self) -> int:
        return sum(o.value for o in self.outputs)


@dataclass(frozen=True)
class Selection:
    """Coins for some outputs at a rate: the fee, the change (0: none, the rest went to the
    fee) and the vsize the fee was computed for (an upper bound of the signed one)."""

    coins: tuple[Coin, ...]
    fee: int
    change: int
    vsize: int
    rate: int


def _funded(coins: Sequence[Coin], out_sizes: Sequence[int], paid: int, rate: int,
            min_fee: int = 0, replaces: int | None = None) -> Selection | None:
    """``coins`` paying the outputs at ``rate`` (at least ``min_fee``; for a replacement of
    a transaction that paid ``replaces``, at least that + 1 sat/vB of its own size), with a
    change when it is not dust; None when they do not cover it."""
    if not coins:
        return None
    total = sum(c.value for c in coins)

    def fee_for(size: int) -> int:
        fee = max(rate * size, min_fee)
        return fee if replaces is None else max(fee, replaces + INCREMENTAL_RELAY * size)

    with_change = vsize(len(coins), [*out_sizes, output_size(bytes(CHANGE_SCRIPT_SIZE))])
    change = total - paid - fee_for(with_change)
    if change >= DUST:
        return Selection(tuple(coins), fee_for(with_change), change, with_change, rate)
    without = vsize(len(coins), out_sizes)
    if total - paid >= fee_for(without):  # a dust change goes to the fee
        return Selection(tuple(coins), total - paid, 0, without, rate)
    return None


def select_coins(pool: Sequence[Coin], outputs: Sequence[Output], rate: int, *,
                 fixed: Sequence[Coin] = (), replaces: int | None = None,
                 max_inputs: int = MAX_INPUTS) -> Selection | None:
    """Largest first: ``fixed`` coins (a replacement's inputs) and then the largest of
    ``pool`` one at a time until the outputs and the fee are paid; None when all of them
    (at most ``max_inputs``) do not pay it."""
    sizes = [output_size(o.script) for o in outputs]
    paid = sum(o.value for o in outputs)
    taken = {c.outpoint for c in fixed}
    coins = list(fixed)
    rest = sorted((c for c in pool if c.outpoint not in taken),
                  key=lambda c: (-c.value, c.txid, c.vout))
    while True:
        found = _funded(coins, sizes, paid, rate, replaces=replaces)
        if found is not None:
            return found
        if not rest or len(coins) >= max_inputs:
            return None
        coins.append(rest.pop(0))


def fit(outputs: Sequence[Output], pool: Sequence[Coin], rate: int,
        max_inputs: int = MAX_INPUTS) -> tuple[list[Output], Selection | None]:
    """The outputs (oldest first) that the coins can pay together: each is added if it
    still fits, so one withdrawal too large for the hot wallet does not hold back the
    smaller ones after it."""
    chosen: list[Output] = []
    best: Selection | None = None
    capacity = sum(c.value for c in pool)
    for o in outputs:
        if sum(x.value for x in chosen) + o.value > capacity:
            continue
        found = select_coins(pool, [*chosen, o], rate, max_inputs=max_inputs)
        if found is not None:
            chosen.append(o)
            best = found
    return chosen, best


# --- the sender ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Mined:
    """A transaction in a block of the main chain: the 'receipt' of ChainSender."""

    tx: Transaction
    height: int
    block_hash: str
    fee: int | None  # inputs minus outputs (None when an input's value is unknown)


@dataclass
class BtcRunResult(RunResult):
    short: int = 0      # withdrawals left queued: the hot wallet's coins do not pay them
    reorged: int = 0    # settled batches a reorg took out of the chain (not mined again yet)


S = TypeVar("S", bound="BitcoinSender")


def checked_runner(cls: type[S], st: Settings) -> S:
    """A ``cls`` on the configured node (a job's runner, built on first use), after
    checking that the node runs the configured network (NetworkMismatch otherwise)."""
    rpc = BitcoinRPC.from_settings(st)
    runner = cls(rpc)
    rpc.check_network(runner.network)
    return runner


class BitcoinSender(ChainSender):
    """Recorded transactions of the hot wallet on Bitcoin (rows of ``KINDS``), through the
    lifecycle of payments/sender.py with Bitcoin's answers (see the module docstring)."""

    log_prefix = "btc"
    log = log
    anomaly_metric = BTC_PAYMENT_ANOMALIES
    keep_mined_raw = True

    def __init__(self, rpc: BitcoinRPC, *, signer: Any = None, network: Network | None = None,
                 chain: str = CHAIN, confirmations: int | None = None,
                 fee_bump_seconds: float | None = None,
                 reorg_watch_blocks: int = REORG_WATCH_BLOCKS) -> None:
        st = get_settings()
        if signer is None:
            from casino_app.payments.signer import btc as signer_module

            signer = signer_module
        self.rpc, self.signer, self.chain = rpc, signer, chain
        self.network = network or networks.from_settings(st)
        self.hot = signer.hot_address(self.network)
        # Whose recorded transactions this runner advances (``withdrawal_batches.
        # from_address``, the sequence of ``nonce``): the hot wallet's; the cold wallet's
        # payments (payments/btc/cold_sender.py) are recorded as ``cold_payments.SENDER``.
        self.sender = self.hot
        self.confirmations = confirmations or self.network.confirmations
        self.fee_bump_seconds = (st.btc_fee_bump_seconds if fee_bump_seconds is None
                                 else fee_bump_seconds)
        self.fee_target, self.fee_floor = st.btc_fee_target, st.btc_fee_floor
        self.fee_ceiling, self.fee_fallback = st.btc_fee_ceiling, st.btc_fee_fallback
        self.reorg_watch_blocks = reorg_watch_blocks
        self._spenders: dict[int, str] = {}

    def _open_where(self) -> list[Any]:
        return [WithdrawalBatch.from_address == self.sender]

    # --- fees and coins ---

    def fee_rate(self) -> int:
        """sat/vB: the node's estimate for CASINO_BTC_FEE_TARGET blocks (the fallback
        without one), within [floor, ceiling]."""
        estimate = self.rpc.estimate_fee(self.fee_target).sat_per_vb
        rate = self.fee_fallback if estimate is None else estimate
        return min(max(rate, self.fee_floor), self.fee_ceiling)

    def spendable(self) -> list[Coin]:
        """The hot wallet's confirmed unspent coins (roles hot and change), largest first;
        never the change of one of our transactions not settled yet (``unsettled_txids``)."""
        with ledger_tx(readonly=True) as s:
            rows = s.execute(select(BtcUtxo).where(
                BtcUtxo.chain == self.chain, BtcUtxo.role.in_(("hot", "change")),
                BtcUtxo.state == "unspent", BtcUtxo.block_height.is_not(None),
                BtcUtxo.txid.not_in(utxos.unsettled_txids(self.chain)))
                .order_by(BtcUtxo.amount.desc(), BtcUtxo.id)).scalars()
            return [Coin(r.txid, r.vout, r.amount, bytes.fromhex(r.script_pubkey),
                         r.key_chain, r.key_index) for r in rows]

    def incoming(self) -> int:
        """What comes back to the hot wallet soon: its unspent coins not spendable yet
        (unconfirmed, or the change of our transactions not settled) and the change of its
        open transactions the watcher has not recorded yet (satoshis)."""
        pending: list[tuple[set[str], int]] = []
        for b in self._open_batches():
            plan = Plan.from_json(b.data)
            if plan.change_index is None:
                continue
            versions = self._versions(b.id)
            pending.append(({v.tx_hash for v in versions}, max(
                0, sum(c.value for c in plan.inputs) - plan.paid - versions[-1].tip)))
        txids = sorted(set().union(*(t for t, _ in pending))) if pending else []
        with ledger_tx(readonly=True) as s:
            unconfirmed = s.execute(select(func.coalesce(func.sum(BtcUtxo.amount), 0)).where(
                BtcUtxo.chain == self.chain, BtcUtxo.role.in_(("hot", "change")),
                BtcUtxo.state == "unspent",
                or_(BtcUtxo.block_height.is_(None),
                    BtcUtxo.txid.in_(utxos.unsettled_txids(self.chain))))).scalar_one()
            # a change the watcher recorded is counted as its coin, not twice
            seen = set(s.execute(select(BtcUtxo.txid).where(
                BtcUtxo.chain == self.chain, BtcUtxo.role.in_(("hot", "change")),
                BtcUtxo.txid.in_(txids))).scalars()) if txids else set()
        return int(unconfirmed) + sum(c for t, c in pending if not t & seen)

    # --- the chain's questions (payments/sender.ChainSender) ---

    def _head(self) -> int:
        return self.rpc.block_count()

    def _on_main_chain(self, block_hash: str) -> tuple[bool, int]:
        try:
            header = self.rpc.block_header(block_hash)
        except NotFound:
            return False, -1
        return header.confirmations >= 0, header.height

    def _receipt(self, tx_hash: str) -> Mined | None:
        try:
            tx = self.rpc.raw_transaction(tx_hash)
        except NotFound:
            return None
        if tx.block_hash is None:
            return None
        main, height = self._on_main_chain(tx.block_hash)
        if not main:
            return None
        return Mined(tx, height, tx.block_hash, self._fee_of(tx))

    def _fee_of(self, tx: Transaction) -> int | None:
        """Inputs minus outputs: our coins' values from ``btc_utxos``, any other input's
        from the node."""
        outpoints = [(i.txid, i.vout) for i in tx.inputs if i.txid is not None]
        with ledger_tx(readonly=True) as s:
            known = {(t, v): a for t, v, a in s.execute(
                select(BtcUtxo.txid, BtcUtxo.vout, BtcUtxo.amount).where(
                    BtcUtxo.chain == self.chain,
                    tuple_(BtcUtxo.txid, BtcUtxo.vout).in_(outpoints)))} if outpoints else {}
        total = 0
        for txid, vout in outpoints:
            value = known.get((txid, vout))
            if value is None:
                try:
                    value = self.rpc.raw_transaction(txid).outputs[vout].value
                except (NotFound, IndexError):
                    return None
            total += value
        return total - sum(o.value for o in tx.outputs)

    def _mined(self, receipt: Mined) -> tuple[str, int]:
        return receipt.tx.txid, receipt.height

    def _status_ok(self, receipt: Mined) -> bool:
        return True  # a mined Bitcoin transaction did what it says

    def _known(self, tx_hash: str) -> bool:
        """In the node's mempool, or in a block of its main chain."""
        try:
            tx = self.rpc.raw_transaction(tx_hash)
        except NotFound:
            return False
        return tx.block_hash is None or self._on_main_chain(tx.block_hash)[0]

    def _send_raw(self, raw: str) -> None:
        self.rpc.send_raw_transaction(raw)

    def _already_known(self, exc: Exception) -> bool:
        text = str(exc).lower()
        return "already" in text and ("mempool" in text or "known" in text
                                      or "in block chain" in text)

    def _slot_used(self, b: OpenBatch, block: int) -> bool:
        """One of the batch's coins is recorded ``spent`` (by the watcher) at or below
        ``block`` by a transaction that is none of its versions."""
        plan = Plan.from_json(b.data)
        ours = [v.tx_hash for v in self._versions(b.id)]
        with ledger_tx(readonly=True) as s:
            spender = s.execute(select(BtcUtxo.spent_by).where(
                BtcUtxo.chain == self.chain,
                tuple_(BtcUtxo.txid, BtcUtxo.vout).in_([c.outpoint for c in plan.inputs]),
                BtcUtxo.state == "spent", BtcUtxo.spent_height <= block,
                BtcUtxo.spent_by.not_in(ours)).limit(1)).scalar_one_or_none()
        if spender is None:
            return False
        self._spenders[b.id] = spender
        return True

    def _slot_taken(self, b: OpenBatch, head: int, safe_block: int, res: RunResult) -> None:
        spender = self._spenders.pop(b.id, None)
        mined = self._receipt(spender) if spender else None
        plan = Plan.from_json(b.data)
        if mined is not None:
            outs = Counter((o.script_pubkey, o.value) for o in mined.tx.outputs)
            found = [o for o in plan.outputs if outs[(o.script, o.value)] > 0]
            if plan.outputs and len(found) == len(plan.outputs):
                # A version of ours that the database does not know (restored from a
                # backup): it paid everything, so it settles the batch.
                log.warning("btc_batch_found_by_outputs", batch_id=b.id, tx_hash=spender)
                self._settle(b, mined, res)
                return
            if not found:
                res.anomalies += 1
                self.anomaly_metric.labels("inputs_spent_elsewhere").inc()
                log.error("btc_batch_inputs_spent_elsewhere", batch_id=b.id, kind=b.kind,
                          spender=spender,
                          hint="a transaction that is none of this batch's versions spent "
                               "its coins and paid none of its outputs: the batch failed, "
                               "its withdrawals are queued again with their reservations")
                self._settle(b, None, res, "its coins were spent by another transaction")
                return
        res.anomalies += 1
        self.anomaly_metric.labels("inputs_spent_elsewhere").inc()
        log.error("btc_batch_inputs_spent_elsewhere", batch_id=b.id, kind=b.kind,
                  spender=spender, readable=mined is not None,
                  hint="the batch's coins were spent by another transaction that pays some "
                       "of its outputs, or that the node cannot show: left for staff (check "
                       "the transaction; settle the withdrawals by hand)")

    def _outcomes(self, b: OpenBatch, receipt: Any, ok: bool, rows: list[Withdrawal]
                  ) -> dict[int, str]:
        """Mined: a withdrawal is paid when an output of the mined transaction pays its
        address's script its exact amount, else left for staff. Not mined (its coins were
        spent by another transaction): queued again, reservations kept."""
        if not ok or receipt is None:
            return {w.id: "requeue" for w in rows}
        outs = Counter((o.script_pubkey, o.value) for o in receipt.tx.outputs)
        out: dict[int, str] = {}
        for w in rows:
            try:
                key = (keys.validate_address(w.address, self.network).script_pubkey, w.amount)
            except ValueError:
                key = (b"", -1)
            if outs[key] > 0:
                outs[key] -= 1
                out[w.id] = "paid"
            else:
                out[w.id] = "anomaly"
        return out

    def _book_network_fee(self, s: Session, b: OpenBatch, batch: WithdrawalBatch,
                          receipt: Mined, tx_hash: str) -> None:
        """The miner fee, booked once as ``btc-fee:<chain>:<txid>`` fees -> custody."""
        if receipt.fee is None:
            self.anomaly_metric.labels("fee_unknown").inc()
            log.error("btc_batch_fee_unknown", batch_id=b.id, tx_hash=tx_hash,
                      hint="an input's value could not be read: book the miner fee by hand")
        elif receipt.fee > 0:
            ledger.transfer(s, f"btc-fee:{self.chain}:{tx_hash}", "network_fee",
                            ledger.house_account(s, CURRENCY, "fees"),
                            ledger.house_account(s, CURRENCY, "custody"), receipt.fee,
                            memo=f"miner fee of {self.chain} {b.kind} {b.id}")
        batch.gas_used = receipt.tx.vsize
        batch.gas_fee_wei = None if receipt.fee is None else str(receipt.fee)
        batch.block_hash = receipt.block_hash

    def _settled(self, s: Session, b: OpenBatch, batch: WithdrawalBatch, receipt: Any,
                 ok: bool) -> None:
        """Our coins reserved by this batch: those the mined transaction spent now name it;
        the others (a coin a bump added, or all of them when the batch failed) are
        ``unspent`` again."""
        ours = [v.tx_hash for v in self._versions_in(s, b.id)]
        spent = {(i.txid, i.vout) for i in receipt.tx.inputs} if receipt is not None else set()
        rows = s.execute(select(BtcUtxo).where(
            BtcUtxo.chain == self.chain, BtcUtxo.state == "reserved",
            BtcUtxo.spent_by.in_(ours)).with_for_update()).scalars().all()
        now = utcnow()
        for r in rows:
            if (r.txid, r.vout) in spent:
                r.spent_by = receipt.tx.txid
            else:
                r.state, r.spent_by = "unspent", None
            r.updated_at = now

    @staticmethod
    def _versions_in(s: Session, batch_id: int) -> list[WithdrawalBatchTx]:
        return list(s.execute(select(WithdrawalBatchTx).where(
            WithdrawalBatchTx.batch_id == batch_id)).scalars())

    # --- recording and sending ---

    def _take_change(self, s: Session, batch_id: int | None) -> tuple[int, bytes, str]:
        """The change address of a new batch: m/84'/coin'/0'/1/k with k the highest taken
        + 1 and never below the watcher's ``next_change_index`` (the highest it has seen
        paid + 1), recorded in ``btc_change_addresses``. The watcher looks only up to the
        highest seen + ``CHANGE_GAP``: if k would be beyond that (more than CHANGE_GAP
        batches' change not seen yet), the change goes to the hot address /1/0 instead
        (index 0, no row), so no coin is ever paid where the watcher does not look."""
        top = s.execute(select(func.max(BtcChangeAddress.key_index)).where(
            BtcChangeAddress.chain == self.chain)).scalar_one()
        k = max(1 if top is None else int(top) + 1, addresses.next_change_index(s))
        seen = addresses.highest_seen(s, "change", keys.CHANGE) or 0
        if k > seen + addresses.CHANGE_GAP:
            log.warning("btc_change_window_full", index=k, highest_seen=seen,
                        hint="the watcher has not seen the change of the last batches: "
                             "this change goes to the hot address")
            public = self.signer.public_key(HOT_CHAIN, HOT_INDEX, self.network)
            return HOT_INDEX, keys.p2wpkh_script(public), self.hot
        public = self.signer.public_key(keys.CHANGE, k, self.network)
        script = keys.p2wpkh_script(public)
        address = keys.p2wpkh_address(public, self.network)
        s.add(BtcChangeAddress(chain=self.chain, key_index=k, address=address,
                               script_pubkey=script.hex(), batch_id=batch_id,
                               created_at=utcnow()))
        return k, script, address

    def _sign(self, coins: Sequence[Coin], outputs: Sequence[Output], change: int,
              change_script: bytes | None) -> Any:
        from casino_app.payments.signer.btc import Payment, SpendInput

        inputs = [SpendInput(txid=c.txid, vout=c.vout, value=c.value, script_pubkey=c.script,
                             chain=c.key_chain, index=c.key_index) for c in coins]
        pays = [Payment(o.script, o.value) for o in outputs]
        if change:
            if change_script is None:
                raise RuntimeError("change without a change address")
            pays.append(Payment(change_script, change))
        return self.signer.sign_p2wpkh(inputs, pays, network=self.network)

    def _next_nonce(self, s: Session) -> int:
        top = s.execute(select(func.max(WithdrawalBatch.nonce)).where(
            WithdrawalBatch.chain == self.chain,
            WithdrawalBatch.from_address == self.sender)).scalar_one()
        return 0 if top is None else int(top) + 1

    @staticmethod
    def _reserve(s: Session, chain: str, coins: Sequence[Coin], txid: str, now: Any) -> None:
        """The coins, unspent and confirmed, become reserved by ``txid``; BatchChanged when
        one of them is no longer so (another sender took it)."""
        if not coins:
            return
        n = s.execute(update(BtcUtxo).where(
            BtcUtxo.chain == chain,
            tuple_(BtcUtxo.txid, BtcUtxo.vout).in_([c.outpoint for c in coins]),
            BtcUtxo.state == "unspent", BtcUtxo.block_height.is_not(None))
            .values(state="reserved", spent_by=txid, updated_at=now)
            .execution_options(synchronize_session=False)).rowcount
        if n != len(coins):
            raise BatchChanged()

    def _record_and_send(self, kind: str, sel: Selection, outputs: Sequence[Output],
                         res: RunResult, *, code: str = CURRENCY,
                         total: int | None = None) -> int | None:
        """Sign the transaction (the selection's coins to ``outputs`` plus its change) and
        record it, in ONE ledger transaction: the batch row (nonce, plan), the change
        address, the withdrawals ``batched``, the coins ``reserved`` by its txid, version
        0 with the raw bytes; only then broadcast it. The batch id, None when nothing was
        recorded (a withdrawal or a coin was taken meanwhile: retried next run)."""
        head = self._head()
        now = utcnow()
        ids = [o.withdrawal_id for o in outputs if o.withdrawal_id is not None]
        try:
            with ledger_tx() as s:
                batch = WithdrawalBatch(
                    chain=self.chain, kind=kind, currency=code, from_address=self.sender,
                    nonce=self._next_nonce(s), state="signed", to_address="",
                    value_wei=str(sum(o.value for o in outputs)), call_data="",
                    gas_limit=sel.vsize,
                    total=sum(o.value for o in outputs if o.withdrawal_id is not None)
                    if total is None else total,
                    recorded_block=head, created_at=now, updated_at=now)
                s.add(batch)
                s.flush()
                change_index, change_script = None, None
                if sel.change:
                    change_index, change_script, batch.to_address = \
                        self._take_change(s, batch.id)
                signed = self._sign(sel.coins, outputs, sel.change, change_script)
                batch.call_data = Plan(sel.coins, tuple(outputs), change_index,
                                       change_script).to_json()
                mark_batched(s, ids, batch.id, now)
                self._reserve(s, self.chain, sel.coins, signed.txid, now)
                version = WithdrawalBatchTx(batch_id=batch.id, version=0, tx_hash=signed.txid,
                                            raw_tx=signed.hex, max_fee_per_gas=sel.rate,
                                            max_priority_fee_per_gas=signed.fee,
                                            created_at=now)
                s.add(version)
                s.flush()
                batch_id = batch.id
                v = Version(version.id, 0, signed.txid, signed.hex, sel.rate, signed.fee, now)
        except (BatchChanged, IntegrityError) as exc:
            # Nothing was recorded, so the signed transaction is thrown away unsent.
            log.warning("btc_batch_not_recorded", kind=kind, reason=type(exc).__name__)
            return None
        res.created += 1
        log.info("btc_batch_recorded", batch_id=batch_id, kind=kind, tx_hash=signed.txid,
                 withdrawals=len(ids), inputs=len(sel.coins), fee=signed.fee,
                 vsize=signed.vsize, fee_rate=sel.rate, change=sel.change)
        _fault("signed", batch_id)
        if self._broadcast(batch_id, v):
            res.broadcast += 1
        return batch_id

    # --- fee bumps ---

    def _bump(self, b: OpenBatch, latest: Version, res: RunResult) -> None:
        """Replace the stuck batch (see the module docstring: RBF over the same inputs, the
        increase from the change, a coin added when the change cannot pay it)."""
        plan = Plan.from_json(b.data)
        rate = min(max(self.fee_rate(), -(-latest.max_fee * 5 // 4), latest.max_fee + 1),
                   self.fee_ceiling)
        versions = self._versions(b.id)
        if rate <= latest.max_fee:
            log.warning("btc_batch_fee_at_ceiling", batch_id=b.id, fee_rate=latest.max_fee,
                        ceiling=self.fee_ceiling)
            if not any(self._known(v.tx_hash) for v in versions) and latest.raw:
                if self._broadcast(b.id, latest):
                    res.rebroadcast += 1
            return
        sel = select_coins(self.spendable(), plan.outputs, rate, fixed=plan.inputs,
                           replaces=latest.tip)
        if sel is None:
            res.anomalies += 1
            self.anomaly_metric.labels("bump_unfunded").inc()
            log.error("btc_batch_bump_unfunded", batch_id=b.id, fee_rate=rate,
                      hint="no confirmed hot-wallet coin can pay the fee bump: the batch "
                           "waits at its fee (refill the hot wallet)")
            return
        now = utcnow()
        added = [c for c in sel.coins if c not in plan.inputs]
        try:
            with ledger_tx() as s:
                batch = s.execute(select(WithdrawalBatch).where(WithdrawalBatch.id == b.id)
                                  .with_for_update()).scalar_one()
                if batch.state not in ("signed", "sent"):
                    return
                change_index, change_script = plan.change_index, plan.change_script
                if sel.change and change_index is None:
                    change_index, change_script, batch.to_address = \
                        self._take_change(s, batch.id)
                signed = self._sign(sel.coins, plan.outputs, sel.change, change_script)
                old = [v.tx_hash for v in versions]
                s.execute(update(BtcUtxo).where(
                    BtcUtxo.chain == self.chain, BtcUtxo.state == "reserved",
                    BtcUtxo.spent_by.in_(old))
                    .values(spent_by=signed.txid, updated_at=now)
                    .execution_options(synchronize_session=False))
                self._reserve(s, self.chain, added, signed.txid, now)
                batch.call_data = Plan(sel.coins, plan.outputs, change_index,
                                       change_script).to_json()
                batch.gas_limit, batch.updated_at = sel.vsize, now
                row = WithdrawalBatchTx(batch_id=b.id, version=latest.version + 1,
                                        tx_hash=signed.txid, raw_tx=signed.hex,
                                        max_fee_per_gas=rate,
                                        max_priority_fee_per_gas=signed.fee, created_at=now)
                s.add(row)
                s.flush()
                version = Version(row.id, row.version, signed.txid, signed.hex, rate,
                                  signed.fee, now)
        except (BatchChanged, IntegrityError) as exc:
            log.warning("btc_batch_bump_not_recorded", batch_id=b.id,
                        reason=type(exc).__name__)
            return
        res.bumped += 1
        log.info("btc_batch_fee_bumped", batch_id=b.id, tx_hash=signed.txid,
                 replaces=latest.tx_hash, fee=signed.fee, fee_rate=rate,
                 added_inputs=len(added), change=sel.change)
        _fault("bumped", b.id)
        self._send_replacement(b.id, version, versions)

    def _send_replacement(self, batch_id: int, v: Version, older: list[Version]) -> bool:
        if v.raw is None:
            raise RuntimeError(f"version {v.tx_hash} of batch {batch_id} has no raw bytes")
        try:
            self._send_raw(v.raw)
        except Exception as exc:  # noqa: BLE001 - the node's refusal is logged, waited out
            if not self._already_known(exc):
                waiting = [o.tx_hash for o in older if self._known(o.tx_hash)]
                if waiting:
                    log.warning("btc_batch_replacement_refused", batch_id=batch_id,
                                tx_hash=v.tx_hash, waiting_on=waiting[-1],
                                error=str(exc)[:300],
                                hint="the node kept the earlier version (bcoin has no BIP125 "
                                     "replacement; Core refuses one that pays too little): "
                                     "whichever version is mined settles the batch")
                else:
                    log.warning("btc_batch_broadcast_refused", batch_id=batch_id,
                                tx_hash=v.tx_hash, error=str(exc)[:300])
                return False
        _fault("broadcast", batch_id)
        self._mark_sent(batch_id, v.id)
        return True

    # --- settled batches and reorgs ---

    def check_settled(self, res: BtcRunResult) -> None:
        """Settled batches of the last ``reorg_watch_blocks`` blocks whose block is no
        longer the main chain's at its height: mined again (block updated), or alerted and
        broadcast again. Kept raw transactions deeper than that are dropped."""
        head = self._head()
        low = head - self.reorg_watch_blocks
        with ledger_tx(readonly=True) as s:
            rows = s.execute(select(WithdrawalBatch.id, WithdrawalBatch.kind,
                                    WithdrawalBatch.tx_hash, WithdrawalBatch.block_number,
                                    WithdrawalBatch.block_hash).where(
                WithdrawalBatch.chain == self.chain, WithdrawalBatch.kind.in_(self.KINDS),
                WithdrawalBatch.from_address == self.sender,
                WithdrawalBatch.state == "confirmed", WithdrawalBatch.block_number > low,
                WithdrawalBatch.block_hash.is_not(None))).all()
        if rows:
            heights = sorted({int(r.block_number) for r in rows})
            answers = self.rpc.batch([("getblockhash", [h]) for h in heights])
            at = {h: a if isinstance(a, str) else None
                  for h, a in zip(heights, answers, strict=True)}
            for r in rows:
                if at[int(r.block_number)] != r.block_hash:
                    self._reorged(r.id, r.kind, r.tx_hash, int(r.block_number), res)
        with ledger_tx() as s:
            deep = select(WithdrawalBatch.id).where(
                WithdrawalBatch.chain == self.chain, WithdrawalBatch.state == "confirmed",
                WithdrawalBatch.from_address == self.sender,
                WithdrawalBatch.block_number <= low)
            s.execute(update(WithdrawalBatchTx).where(
                WithdrawalBatchTx.batch_id.in_(deep), WithdrawalBatchTx.raw_tx.is_not(None))
                .values(raw_tx=None).execution_options(synchronize_session=False))

    def _reorged(self, batch_id: int, kind: str, tx_hash: str, block: int,
                 res: BtcRunResult) -> None:
        mined = self._receipt(tx_hash)
        if mined is not None:
            with ledger_tx() as s:
                s.execute(update(WithdrawalBatch).where(WithdrawalBatch.id == batch_id)
                          .values(block_number=mined.height, block_hash=mined.block_hash,
                                  updated_at=utcnow()))
            log.warning("btc_settled_batch_remined", batch_id=batch_id, tx_hash=tx_hash,
                        old_block=block, block=mined.height)
            return
        res.reorged += 1
        res.anomalies += 1
        self.anomaly_metric.labels("settled_batch_reorged").inc()
        log.error("btc_settled_batch_reorged", batch_id=batch_id, kind=kind, tx_hash=tx_hash,
                  block=block,
                  hint="a reorg deeper than CASINO_BTC_CONFIRMATIONS took this settled "
                       "transaction out of the chain; the ledger shows it paid. The job "
                       "broadcasts the same transaction again: check that it is mined "
                       "again; if the node refuses it (its coins spent elsewhere), its "
                       "withdrawals were not paid on chain: pay them by hand")
        with ledger_tx(readonly=True) as s:
            raw = s.execute(select(WithdrawalBatchTx.raw_tx).where(
                WithdrawalBatchTx.batch_id == batch_id,
                WithdrawalBatchTx.tx_hash == tx_hash)).scalar_one_or_none()
        if raw and not self._known(tx_hash):
            try:
                self._send_raw(raw)
                log.warning("btc_settled_batch_rebroadcast", batch_id=batch_id,
                            tx_hash=tx_hash)
            except RPCError as exc:
                log.error("btc_settled_batch_rebroadcast_refused", batch_id=batch_id,
                          tx_hash=tx_hash, error=str(exc)[:300])
