"""The Ethereum deposit watcher: follows blocks, records deposits once, credits them and
takes credits back when their block leaves the chain. What it does with a deposit once
found (record once, credit, confirm, reverse) is the chain-neutral ``DepositBook``
(payments/deposits.py); this module reads the node.

One pass (``Watcher.poll``), run by the ``eth-watch`` job under a lease:

1. Reorg check: the stored tip's hash is compared with the node's block at that height;
   a mismatch walks back to the common ancestor and reverses what the dropped blocks
   credited (``_rewind``).
2. Scan: from the block after the cursor (the highest stored block) up to
   ``CASINO_ETH_BLOCKS_PER_POLL`` blocks, CHUNK blocks at a time: one JSON-RPC batch
   reads the blocks (with their transactions), a second one (per TRACE_BATCH blocks when
   traces are on) what else they need, asked for by block HASH (or checked against it)
   so that it belongs to that very block: the ERC-20 ``Transfer`` logs
   (``eth_getLogs {blockHash}``, only for blocks whose ``logsBloom`` may hold a Transfer
   of one of our tokens), the receipts of the transactions paying one of our addresses,
   and the call traces (``_Tracer``, for blocks with transactions, when the node has
   traces: ``CASINO_ETH_TRACES``). Deposits are
   native transfers to our addresses (successful top-level transactions, log index -1),
   ETH that a contract passes on to them (successful internal calls in successful
   transactions, log index ``-1 - position`` of the call in its transaction's call tree:
   -2, -3, ...) and Transfer logs to them (their log index); never our own transactions
   (``_sent_by_us``). Each block is stored with its hash and parent hash, with its
   deposits, in one ledger transaction: a crash resumes from the cursor and nothing is
   applied twice (UNIQUE (chain, tx, log index); credit entries keyed by the deposit and
   its credit count). A block whose parent hash is not the stored tip's hash, or whose
   logs, receipts or traces the node cannot give for its hash (it left the chain, or a
   backend behind a load balancer does not know it), stops the scan there: the next
   pass rewinds or reads it again.
3. Confirmations (``DepositBook.confirm``): a deposit seen in a block has 1 confirmation; it is
   credited at once as pending (playable, not withdrawable) while the player's pending
   credits stay within ``CASINO_ETH_PENDING_CAP``, else when it becomes available at
   ``CASINO_ETH_CONFIRMATIONS``. Below ``CASINO_ETH_DUST`` it is recorded, never credited.

A reversed deposit whose money was already spent leaves the player owing the rest (a
``debt`` account) and puts a hold on the player for staff review; never a silent edit
(``DepositBook.rewind``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_utils import keccak
from sqlalchemy import select
from sqlalchemy.orm import Session
from web3 import Web3
from web3.exceptions import BlockNotFound

from casino_app.core.clock import utcnow
from casino_app.core.db import ledger_tx
from casino_app.core.logging import get_logger
from casino_app.core.settings import get_settings
from casino_app.payments.assets import Asset, parse_amounts
from casino_app.payments.currencies import currency
from casino_app.payments.deposit_models import ChainBlock
from casino_app.payments.deposits import (
    DepositBook,
    DepositChanges,
    Found,
    next_range,
    stored_tip,
)

log = get_logger("casino.eth.watcher")

CHAIN = "ethereum"
TRANSFER_TOPIC = Web3.keccak(text="Transfer(address,address,uint256)").to_0x_hex()
# A reorg deeper than this is not walked back automatically: the watcher stops and alerts.
MAX_REORG_DEPTH = 256
WEI_PER_GWEI = 10**9
CHUNK = 50  # blocks fetched in one JSON-RPC batch and stored in one ledger transaction
# Blocks whose traces go in one JSON-RPC batch: a node re-executes each traced block
# (a busy mainnet block: a few hundred ms), so a whole chunk's could pass the timeout.
TRACE_BATCH = 10


class WatcherStopped(Exception):
    """The chain does not match the stored blocks beyond MAX_REORG_DEPTH (or the settings
    are wrong): nothing was changed, staff must look."""


def parse_tokens(spec: str) -> dict[str, str]:
    """CASINO_ETH_TOKENS "USDT:0x...,USDC:0x..." -> {code: checksummed address}."""
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        code, _, addr = part.partition(":")
        if not Web3.is_address(addr):
            raise ValueError(f"CASINO_ETH_TOKENS: '{part}' is not CUR:0xaddress")
        cur = currency(code.strip())
        if not cur.real_money or cur.code in ("ETH", "BTC"):
            raise ValueError(f"CASINO_ETH_TOKENS: {cur.code} is not an ERC-20 currency")
        out[cur.code] = Web3.to_checksum_address(addr)
    return out


_DECIMALS_ABI = [{"name": "decimals", "type": "function", "stateMutability": "view",
                  "inputs": [], "outputs": [{"name": "", "type": "uint8"}]}]


def chain_assets(w3: Web3, tokens: dict[str, str]) -> list[Asset]:
    """ETH and the configured tokens, with each token's decimals read from the chain."""
    assets = [Asset("ETH", None, WEI_PER_GWEI)]
    for code, addr in tokens.items():
        onchain = w3.eth.contract(address=addr, abi=_DECIMALS_ABI).functions.decimals().call()
        extra = onchain - currency(code).decimals
        if extra < 0:
            raise WatcherStopped(f"{code} has {onchain} decimals on chain, fewer than the "
                                 f"ledger's {currency(code).decimals}")
        assets.append(Asset(code, addr, 10**extra))
    return assets


def _hex(value: Any) -> str:
    return value if isinstance(value, str) else Web3.to_hex(value)


def _int(value: Any) -> int:
    """A JSON-RPC quantity ("0x1a") or an int."""
    return value if isinstance(value, int) else int(value, 16)


def bloom_mask(item: bytes) -> int:
    """The 3 bits ``item`` (an address or a topic) sets in a 2048-bit ``logsBloom`` read
    as a big-endian integer (yellow paper, M3:2048)."""
    h = keccak(item)
    return sum(1 << (int.from_bytes(h[i:i + 2], "big") & 2047) for i in (0, 2, 4))


def _rpc_error(response: Any) -> str | None:
    """The error of one raw JSON-RPC response (None: it has a result)."""
    if not isinstance(response, dict) or "result" not in response:
        return str(response.get("error") if isinstance(response, dict) else response)
    return None


def _method_missing(response: Any) -> bool:
    """Whether a JSON-RPC error says the node does not have the method (EIP-1474 code
    -32601, or a node's own wording), rather than failing this one call."""
    error = response.get("error") if isinstance(response, dict) else None
    if not isinstance(error, dict):
        return False
    text = str(error.get("message", "")).lower()
    return error.get("code") == -32601 or any(
        w in text for w in ("not found", "not supported", "unsupported", "does not exist",
                            "not available", "unknown method", "disabled"))


class TracesUndecided(Exception):
    """The trace probe got an error that is not "method not found": try again later."""


@dataclass
class PollResult(DepositChanges):
    """One pass: the node's head, the stored tip, the blocks stored, and (from
    :class:`DepositChanges`) the deposits found, credited, made available, reversed and
    the players whose deposits changed (push to tabs)."""

    head: int = 0
    tip: int | None = None
    blocks: int = 0


# --- call traces: ETH passed on by contracts ---------------------------------------------

# By hash first (the answer is that block's or an error); trace_block takes a number, so
# its answer is checked against the block's hash.
TRACE_METHODS = ("debug_traceBlockByHash", "trace_block")


@dataclass(frozen=True)
class _Call:
    """A value transfer inside a transaction that did not revert (nor did any call above
    it, nor the transaction)."""
    tx_hash: str
    position: int  # pre-order index in the transaction's call tree; 0: the transaction
    sender: str
    to: str
    value: int


class _Tracer:
    """Which trace method the node answers (``mode``: auto, on, off, or one of
    TRACE_METHODS to pin it), the request for a block, and the value transfers in the
    answer. geth has ``debug_traceBlockByHash`` with callTracer; Erigon, Nethermind and
    reth also ``trace_block`` (Parity style); anvil both."""

    def __init__(self, w3: Web3, mode: str) -> None:
        if mode not in ("auto", "on", "off", *TRACE_METHODS):
            raise ValueError(f"CASINO_ETH_TRACES: {mode!r} is not auto, on or off")
        self.w3, self.mode = w3, mode
        self.method: str | None = mode if mode in TRACE_METHODS else None
        self.probed = mode == "off" or self.method is not None

    def probe(self) -> None:
        """Once: find the method the node answers. A node error (transport) propagates and
        the next pass probes again; "on" without traces stops the watcher."""
        if self.probed:
            return
        import requests

        head = self.w3.eth.get_block("latest")
        for method in TRACE_METHODS:
            try:
                answer = self.w3.provider.make_request(  # type: ignore[arg-type]
                    method, self.params(method, int(head["number"]), _hex(head["hash"])))
            except requests.HTTPError as exc:  # some gateways answer 4xx to unknown methods
                if exc.response is None or not 400 <= exc.response.status_code < 500:
                    raise
                continue
            if _rpc_error(answer) is None:
                self.method = method
                break
            if not _method_missing(answer):
                # e.g. a timeout tracing a heavy block: undecided, not "no traces". The
                # pass fails (nothing stored) and the next one probes again.
                raise TracesUndecided(f"{method}: {_rpc_error(answer)}"[:300])
        if self.method is None and self.mode == "on":
            raise WatcherStopped("CASINO_ETH_TRACES=on but the node answers neither "
                                 f"{' nor '.join(TRACE_METHODS)}")
        self.probed = True
        if self.method is None:
            log.error("eth_traces_unavailable", detail="the node has no call traces: ETH "
                      "that a contract passes on to a deposit address is NOT credited; use "
                      "a node with traces or set CASINO_ETH_TRACES=off to silence this")
        else:
            log.info("eth_traces", method=self.method)

    @staticmethod
    def params(method: str, number: int, block_hash: str) -> list[Any]:
        if method == "trace_block":
            return [hex(number)]
        return [block_hash, {"tracer": "callTracer"}]

    def calls(self, block_hash: str, txs: Sequence[Any], result: Any) -> list[_Call] | None:
        """The successful value transfers below the top level; None when the answer is
        not this block's (another fork, a backend that does not have it)."""
        if not isinstance(result, list):
            return None
        hashes = [_hex(tx["hash"]).lower() for tx in txs]
        if self.method == "trace_block":
            return _parity_calls(block_hash, hashes, result)
        return _geth_calls(hashes, result)


def _geth_calls(hashes: list[str], result: list[Any]) -> list[_Call] | None:
    """callTracer frames, one per transaction in block order."""
    if len(result) != len(hashes):
        return None
    out: list[_Call] = []
    for tx_hash, item in zip(hashes, result, strict=True):
        root = item.get("result") if isinstance(item, dict) else None
        if not isinstance(root, dict) or item.get("txHash", tx_hash).lower() != tx_hash:
            return None
        stack, position = [(root, True)], -1
        while stack:  # pre-order: a frame, then its calls in order
            frame, ok = stack.pop()
            position += 1
            ok = ok and not frame.get("error")
            if ok and position and frame.get("type") in ("CALL", "SELFDESTRUCT"):
                out.append(_Call(tx_hash, position, frame.get("from") or "",
                                 frame.get("to") or "", _int(frame.get("value") or 0)))
            stack.extend((c, ok) for c in reversed(frame.get("calls") or []))
    return out


def _parity_calls(block_hash: str, hashes: list[str], result: list[Any]) -> list[_Call] | None:
    """trace_block's flat list: each trace names its block, transaction and trace address
    (sorted, the addresses give the pre-order); an ``error`` reverts the subtree."""
    by_tx: dict[str, list[Any]] = {}
    for t in result:
        if _hex(t.get("blockHash") or "").lower() != block_hash.lower():
            return None
        if t.get("transactionHash"):  # block rewards have none
            by_tx.setdefault(t["transactionHash"].lower(), []).append(t)
    if set(by_tx) != set(hashes):
        return None
    out: list[_Call] = []
    for tx_hash, traces in by_tx.items():
        traces.sort(key=lambda t: t["traceAddress"])
        failed = [tuple(t["traceAddress"]) for t in traces if t.get("error")]
        for position, t in enumerate(traces):
            where = tuple(t["traceAddress"])
            if not position or any(where[:len(f)] == f for f in failed):
                continue
            a = t.get("action") or {}
            if t.get("type") == "call" and a.get("callType") == "call":
                out.append(_Call(tx_hash, position, a.get("from") or "", a.get("to") or "",
                                 _int(a.get("value") or 0)))
            elif t.get("type") == "suicide":
                out.append(_Call(tx_hash, position, a.get("address") or "",
                                 a.get("refundAddress") or "", _int(a.get("balance") or 0)))
    return out


class Watcher:
    """Follows one chain for the deposit addresses in the ledger database."""

    def __init__(self, w3: Web3, assets: Sequence[Asset], chain: str = CHAIN,
                 confirmations: int | None = None, pending_cap: dict[str, int] | None = None,
                 dust: dict[str, int] | None = None, batch: int | None = None,
                 start_block: int | None = None, finality: str | None = None,
                 traces: str | None = None) -> None:
        st = get_settings()
        self.w3, self.chain, self.assets = w3, chain, list(assets)
        self.confirmations = confirmations or st.eth_confirmations
        self.pending_cap = (pending_cap if pending_cap is not None
                            else parse_amounts(st.eth_pending_cap, "CASINO_ETH_PENDING_CAP"))
        self.dust = dust if dust is not None else parse_amounts(st.eth_dust, "CASINO_ETH_DUST")
        self.batch = batch or st.eth_blocks_per_poll
        self.start_block = start_block
        self.finality = finality or st.eth_finality
        self._by_token = {a.token.lower(): a for a in self.assets if a.token}
        self._tokens = [a.token for a in self.assets if a.token]
        # logsBloom bits of the Transfer topic and of each token contract (computed once)
        self._transfer_bits = bloom_mask(bytes.fromhex(TRANSFER_TOPIC[2:]))
        self._token_bits = [bloom_mask(bytes.fromhex(t[2:])) for t in self._tokens]
        self._tracer = _Tracer(w3, traces or st.eth_traces)
        self.book = DepositBook(chain, self.confirmations, self.pending_cap, self.dust,
                                log_prefix="eth", logger=log)
        self._native = next(a for a in self.assets if a.token is None)
        self._owners: dict[str, str] = {}   # lowercase address -> player_id
        self._owner_count = -1

    # --- addresses ---

    def _refresh_owners(self, s: Session) -> None:
        from casino_app.payments.eth import addresses

        count = addresses.count(s, self.chain)
        if count != self._owner_count:
            self._owners = {a.lower(): p for a, p in
                            addresses.all_addresses(s, self.chain).items()}
            self._owner_count = count

    # --- the pass ---

    def poll(self) -> PollResult:
        self._tracer.probe()
        res = PollResult(head=self.w3.eth.block_number)
        with ledger_tx() as s:
            self._refresh_owners(s)
            tip = self._tip(s)
        if tip is not None:
            node_hash = self._node_hash(tip.number) if res.head >= tip.number else None
            if node_hash is None:
                # The node is behind our stored tip (lagging, or another backend behind a
                # load balancer): not a reorg. Change nothing; look again next pass.
                log.warning("eth_node_behind", tip=tip.number, head=res.head)
                res.tip = tip.number
                return res
            if node_hash != tip.hash:
                self._rewind(tip, res)
                with ledger_tx(readonly=True) as s:
                    tip = self._tip(s)
        start, end = next_range(tip, res.head, self.start_block, self.confirmations, self.batch)
        if start <= end:
            self._scan(start, end, tip, res)
        with ledger_tx() as s:
            tip = self._tip(s)
            res.tip = tip.number if tip else None
            if tip is not None:
                self.book.confirm(s, tip.number, res, self._finalized())
        if res.blocks or res.credited or res.made_available or res.reversed:
            log.info("eth_watch", head=res.head, tip=res.tip, blocks=res.blocks,
                     deposits=res.deposits, credited=res.credited,
                     made_available=res.made_available, reversed=res.reversed)
        return res

    def _tip(self, s: Session) -> ChainBlock | None:
        return stored_tip(s, self.chain)

    def _node_hash(self, number: int) -> str | None:
        """The node's block hash at ``number``; None when it has no block there. Any other
        failure (timeout, node error) propagates: the pass fails and changes nothing."""
        try:
            return _hex(self.w3.eth.get_block(number)["hash"])
        except BlockNotFound:
            return None

    # --- scanning ---

    def _scan(self, start: int, end: int, tip: ChainBlock | None, res: PollResult) -> None:
        parent = tip.hash if tip is not None else None
        for first in range(start, end + 1, CHUNK):
            last = min(end, first + CHUNK - 1)
            # One JSON-RPC batch for the chunk's blocks, one for their logs and traces (by
            # block hash); one ledger transaction for the chunk (its blocks and their
            # deposits together: a crash resumes at the cursor).
            with self.w3.batch_requests() as batch:
                for number in range(first, last + 1):
                    batch.add(self.w3.eth.get_block(number, True))
                blocks = batch.execute()
            linked = []
            for number, block in zip(range(first, last + 1), blocks, strict=True):
                if parent is not None and _hex(block["parentHash"]) != parent:
                    log.warning("eth_chain_moved", block=number)  # the next pass rewinds
                    break
                linked.append(block)
                parent = _hex(block["hash"])
            rows: list[tuple[int, str, str, list[Found]]] = []
            step = TRACE_BATCH if self._tracer.method else CHUNK
            details = [d for i in range(0, len(linked), step)
                       for d in self._deposits_in(linked[i:i + step])]
            for block, (found, error) in zip(linked, details, strict=True):
                number, block_hash = int(block["number"]), _hex(block["hash"])
                if error is not None:
                    # Not this block's logs, traces or receipts (it left the chain, or the
                    # node's backend does not know it): stop; the next pass rewinds or
                    # reads it again.
                    log.warning("eth_block_unreadable", block=number, hash=block_hash,
                                error=error)
                    break
                rows.append((number, block_hash, _hex(block["parentHash"]), found))
            # Our own transactions (the sweeper's gas top-up from the hot wallet, a Safe
            # payment) move coins between our addresses: not deposits.
            ours = self._sent_by_us({f.tx_hash for *_, found in rows for f in found
                                     if f.log_index < 0})
            if rows:
                with ledger_tx() as s:
                    now = utcnow()
                    for number, block_hash, parent_hash, found in rows:
                        s.add(ChainBlock(chain=self.chain, number=number, hash=block_hash,
                                         parent_hash=parent_hash, seen_at=now))
                        for f in found:
                            if f.log_index < 0 and f.tx_hash in ours:
                                continue
                            if self.book.record(s, f, self._owners[f.address.lower()],
                                                number, block_hash, res):
                                res.deposits += 1
                res.blocks += len(rows)
            if len(rows) < last - first + 1:
                return

    def _may_hold_transfer(self, block: Any) -> bool:
        """The block's logsBloom may hold a Transfer log of one of our tokens (a bloom has
        false positives, never false negatives)."""
        bloom = int.from_bytes(bytes(block["logsBloom"]), "big")
        return (bloom & self._transfer_bits == self._transfer_bits
                and any(bloom & bits == bits for bits in self._token_bits))

    def _payments(self, block: Any) -> list[Any]:
        """The block's top-level transactions with value to one of our addresses."""
        return [tx for tx in block["transactions"]
                if tx.get("to") and tx["value"] > 0 and tx["to"].lower() in self._owners]

    def _deposits_in(self, blocks: Sequence[Any]) -> list[tuple[list[Found], str | None]]:
        """Per block: the deposits it holds, or the error when the node's answers are not
        for that block hash. One JSON-RPC batch asks, per block, for the receipts of its
        payments to our addresses, its token Transfer logs (when its logsBloom may hold
        one) and its call traces (when traces are on and it has transactions)."""
        batch: list[tuple[str, list[Any]]] = []
        wanted: list[dict[str, int]] = []  # per block: "logs", "traces", tx hash -> index
        for block in blocks:
            block_hash, want = _hex(block["hash"]), {}
            if self._token_bits and self._may_hold_transfer(block):
                want["logs"] = len(batch)
                batch.append(("eth_getLogs", [{"blockHash": block_hash,
                                               "address": self._tokens,
                                               "topics": [TRANSFER_TOPIC]}]))
            if self._tracer.method is not None and block["transactions"]:
                want["traces"] = len(batch)
                batch.append((self._tracer.method, self._tracer.params(
                    self._tracer.method, int(block["number"]), block_hash)))
            for tx in self._payments(block):
                want[_hex(tx["hash"])] = len(batch)
                batch.append(("eth_getTransactionReceipt", [_hex(tx["hash"])]))
            wanted.append(want)
        answers = self._rpc_batch(batch)
        out: list[tuple[list[Found], str | None]] = []
        for block, want in zip(blocks, wanted, strict=True):
            errors = [e for e in (_rpc_error(answers[i]) for i in want.values()) if e]
            if errors:
                out.append(([], errors[0]))
            else:
                out.append(self._found(block, {k: answers[i]["result"]
                                               for k, i in want.items()}))
        return out

    def _found(self, block: Any, got: dict[str, Any]) -> tuple[list[Found], str | None]:
        block_hash = _hex(block["hash"])
        found: list[Found] = []
        for tx in self._payments(block):
            receipt = got[_hex(tx["hash"])]
            if not receipt or _hex(receipt["blockHash"]).lower() != block_hash:
                return [], "a receipt of another block"
            # A reverted call keeps no value: only a successful transaction is a deposit.
            if _int(receipt["status"]) == 1:
                found.append(Found(_hex(tx["hash"]), -1, self._native,
                                    Web3.to_checksum_address(tx["to"]),
                                    Web3.to_checksum_address(tx["from"]), int(tx["value"])))
        if "traces" in got:
            calls = self._tracer.calls(block_hash, block["transactions"], got["traces"])
            if calls is None:
                return [], "traces of another block"
            # ETH a contract passed on to one of our addresses: log index -1 - position.
            found += [Found(c.tx_hash, -1 - c.position, self._native,
                             Web3.to_checksum_address(c.to), Web3.to_checksum_address(c.sender),
                             c.value)
                      for c in calls if c.value > 0 and c.to.lower() in self._owners]
        logs = got.get("logs") or []
        if any(_hex(e["blockHash"]).lower() != block_hash for e in logs):
            return [], "logs of another block"
        found += filter(None, map(self._token_deposit, logs))
        return found, None

    def _rpc_batch(self, requests: list[tuple[str, list[Any]]]) -> list[Any]:
        """Raw JSON-RPC responses (each with its result or its error), in order."""
        if not requests:
            return []
        answers = self.w3.provider.make_batch_request(requests)  # type: ignore[arg-type]
        if not isinstance(answers, list) or len(answers) != len(requests):
            raise RuntimeError(f"the node refused a JSON-RPC batch: {str(answers)[:300]}")
        return answers

    def _sent_by_us(self, tx_hashes: set[str]) -> set[str]:
        """Those of ``tx_hashes`` we recorded before broadcasting them (eth/batcher)."""
        from casino_app.payments.withdrawal_models import WithdrawalBatchTx

        if not tx_hashes:
            return set()
        with ledger_tx(readonly=True) as s:
            return set(s.execute(select(WithdrawalBatchTx.tx_hash).where(
                WithdrawalBatchTx.tx_hash.in_(sorted(tx_hashes)))).scalars())

    def _token_deposit(self, entry: Any) -> Found | None:
        topics = entry["topics"]
        if len(topics) != 3:
            return None
        to = "0x" + _hex(topics[2])[-40:]
        if to.lower() not in self._owners:
            return None
        asset = self._by_token.get(_hex(entry["address"]).lower())
        if asset is None:
            return None
        raw = int(_hex(entry["data"]), 16) if _hex(entry["data"]) not in ("0x", "") else 0
        if raw <= 0:
            return None
        return Found(_hex(entry["transactionHash"]), _int(entry["logIndex"]), asset,
                      Web3.to_checksum_address(to),
                      Web3.to_checksum_address("0x" + _hex(topics[1])[-40:]), raw)

    # --- confirmations and credits ---

    def _finalized(self) -> int | None:
        """The node's ``finalized`` block when CASINO_ETH_FINALITY=finalized (None: count
        confirmations; also when the node has no such tag, which is logged)."""
        if self.finality != "finalized":
            return None
        try:
            return int(self.w3.eth.get_block("finalized")["number"])
        except Exception:  # noqa: BLE001 - a node without the tag: fall back, say so
            log.warning("eth_no_finalized_tag", fallback_confirmations=self.confirmations)
            return None

    # --- reorgs ---

    def _rewind(self, tip: ChainBlock, res: PollResult) -> None:
        """Walk back to the last stored block the node still has, drop the stored blocks
        above it and reverse their deposits (one transaction)."""
        with ledger_tx(readonly=True) as s:
            stored = dict(s.execute(
                select(ChainBlock.number, ChainBlock.hash).where(
                    ChainBlock.chain == self.chain,
                    ChainBlock.number > tip.number - MAX_REORG_DEPTH)).all())
        ancestor = None
        for number in sorted(stored, reverse=True):
            node_hash = self._node_hash(number)
            if node_hash is None:  # the node lost blocks below its head: not a reorg
                log.warning("eth_rewind_node_gap", block=number)
                return
            if node_hash == stored[number]:
                ancestor = number
                break
        if ancestor is None:
            raise WatcherStopped(
                f"no stored block of the last {MAX_REORG_DEPTH} is on the node's chain "
                f"(stored tip {tip.number}): the watcher stops; check the node")
        with ledger_tx() as s:
            dropped = self.book.rewind(s, ancestor, res)
        log.warning("eth_reorg", ancestor=ancestor, dropped_blocks=dropped,
                    reversed=res.reversed)


_watcher: Watcher | None = None


def watch_once() -> dict[str, int]:
    """The ``eth-watch`` job: one pass of the process's watcher (built on first use from
    the settings; a failed pass is retried by the next one and resumes from the cursor)."""
    global _watcher
    if _watcher is None:
        st = get_settings()
        w3 = Web3(Web3.HTTPProvider(st.eth_rpc_url, request_kwargs={"timeout": 10}))
        _watcher = Watcher(w3, chain_assets(w3, parse_tokens(st.eth_tokens)))
    res = _watcher.poll()
    return {"head": res.head, "tip": res.tip or 0, "blocks": res.blocks,
            "credited": res.credited, "reversed": res.reversed}
