"""The Bitcoin chain adapter: Bitcoin Core's JSON-RPC over HTTP (httpx, basic auth,
timeouts, batches), with bcoin's differences absorbed here and nowhere else.

A deployment points it at Bitcoin Core (or a compatible backend: Knots, ...); development
and the tests point it at bcoin 1.0.2 (``tests/support/bitcoin.py``). Which one answers is
the *dialect*: ``CASINO_BTC_RPC_DIALECT=auto`` asks the node once (``getnetworkinfo``'s
``subversion``: ``/bcoin:v1.0.2/`` is bcoin, anything else is taken as Core), ``core`` or
``bcoin`` says it.

Amounts: JSON-RPC writes BTC amounts as JSON numbers. Every response is parsed with
``parse_float=Decimal`` and amounts become integer satoshis through :func:`to_sats`, which
refuses anything with more than 8 decimals; no float ever holds money.

The calls the platform needs, checked against bcoin 1.0.2 on regtest (the results are
asserted by ``tests/payments/btc/test_rpc_node.py``):

| call | used for | Bitcoin Core | bcoin 1.0.2 (what the adapter does) |
|---|---|---|---|
| getnetworkinfo | dialect, version | subversion /Satoshi:x/ | subversion /bcoin:v1.0.2/ |
| getblockchaininfo | network check, tip | chain main/test/testnet4/signet/regtest | same names; no initialblockdownload (None) |
| getblockcount, getbestblockhash | tip | yes | yes |
| getblockhash height | walk the chain | -8 out of range | -8 (same) |
| getblock hash + full txs | watcher | (hash, verbosity=2) | (hash, verbose=true, details=true); a number 2 is refused (-3) |
| getblockheader hash | reorg checks | confirmations -1 off the main chain | confirmations counted from the tip on any branch: the adapter asks getblockhash(height) and writes -1 for a block off the main chain (as getblock); a block dropped by invalidateblock is forgotten (NotFound) |
| getrawtransaction txid | a transaction by id | needs -txindex, or the block hash as 3rd param | needs --index-tx; takes 2 params (block hash dropped) |
| gettxout txid n | is an output unspent | yes | yes |
| getrawmempool | unconfirmed txids | yes | yes (verbose form differs: not used) |
| getmempoolentry txid | fee, vsize of an unconfirmed tx | fees.base, vsize | fee, size (sigop-adjusted vsize) |
| sendrawtransaction hex | broadcast | error -25/-26 on rejection; -27 already in chain | always answers the txid, even for a transaction its mempool rejects: the adapter then looks the transaction up and raises TransactionRejected if the node does not have it |
| testmempoolaccept [hex] | check before broadcast | yes | absent: returns None |
| estimatesmartfee n | fee rate | {"feerate": BTC/kvB} or {"errors"} | {"fee": BTC/kB or -1}; one parameter only |
| validateaddress addr | network check (prefix) | yes | yes |
| getchaintips | reorg diagnostics | yes | yes |
| what addresses hold (confirmed UTXOs at the tip) | reconciliation, the staff wallets page | no address index: ``scantxoutset start [addr(A), ...]`` scans the whole UTXO set (confirmed outputs only; about a minute on mainnet, one scan at a time) | no ``scantxoutset``; its address index (``--index-address``) over REST, ``POST /coin/address {"addresses": [...]}`` on the same port and key: chain coins minus those a mempool transaction spends, plus the mempool's own (height -1); the adapter drops the mempool's and puts back the chain coins the mempool spends (``getrawmempool``, ``getrawtransaction``, ``gettxout txid n false``) |

Other differences absorbed: bcoin answers HTTP 200 with the error in the body (Core: 500 or
404 with a JSON body, 200 with ``jsonrpc: 2.0``), both are read; bcoin's "not found" errors
have code -1 and a message where Core uses -5: both raise :class:`NotFound`; outputs are read
from ``scriptPubKey.hex`` (bcoin writes ``addresses: [...]`` and type names such as
``WITNESSPUBKEYHASH``, Core ``address`` and ``witness_v0_keyhash``); bcoin writes amounts
in the shortest float form (``12.5``, ``1e-7``), Core with 8 decimals. bcoin checks only the
password of basic auth (its API key); the user name is ignored. bcoin's getblock gives its
transactions without ``hex`` or ``fee`` (``Transaction.raw`` is None there; Core fills it).

Node behaviour callers must know (not a matter of dialect, so not hidden here): bcoin's
mempool has no BIP125 replacement (a conflicting transaction is refused whatever its fee);
its ``invalidateblock`` forgets the dropped blocks and empties the whole mempool (Core keeps
stale blocks and puts their transactions back); its regtest activates segwit only at
height 432.

Errors: :class:`NodeUnavailable` when there is no usable answer (connection, timeout,
HTTP 401, a body that is not JSON-RPC), :class:`RPCError` when the node answered with an
error (:class:`NotFound`, :class:`Unsupported`, :class:`TransactionRejected` are kinds of
it). Callers treat both as "try again later"; nothing here retries on its own.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

import httpx

from casino_app.core.logging import get_logger
from casino_app.core.settings import Settings, get_settings
from casino_app.payments.btc import bech32
from casino_app.payments.btc.network import Network
from casino_app.payments.btc.tx import txid_of

log = get_logger("casino.btc")

SATS_PER_BTC = 100_000_000
MAX_SATS = 21_000_000 * SATS_PER_BTC
BATCH_SIZE = 100  # calls per HTTP request in :meth:`BitcoinRPC.batch`
ADDRESS_CHUNK = 1_000  # addresses per REST request to bcoin's address index
SCAN_TIMEOUT = 600.0   # seconds Core's scantxoutset may take (a full UTXO set scan)


# --- errors --------------------------------------------------------------------------------

class BitcoinNodeError(Exception):
    """Any failure talking to the node."""


class NodeUnavailable(BitcoinNodeError):
    """No usable answer: connection refused, timeout, HTTP 401/5xx without JSON-RPC."""


class RPCError(BitcoinNodeError):
    """The node answered a call with an error."""

    def __init__(self, method: str, code: int | None, message: str) -> None:
        super().__init__(f"{method}: {message} (code {code})")
        self.method, self.code, self.message = method, code, message


class NotFound(RPCError):
    """No such block, height, transaction or mempool entry."""


class Unsupported(RPCError):
    """The node does not have this method (e.g. testmempoolaccept on bcoin)."""


class TransactionRejected(RPCError):
    """The node did not accept a transaction into its mempool (``message`` says why when
    the node says; bcoin never does over RPC)."""


class NetworkMismatch(BitcoinNodeError):
    """The node runs another network than the configured one."""


# --- amounts -------------------------------------------------------------------------------

def to_sats(value: Any, *, what: str = "amount") -> int:
    """A BTC amount as the node wrote it (Decimal from ``parse_float=Decimal``, an int, or a
    decimal string) in satoshis, exactly; ValueError for a float, more than 8 decimals,
    a negative or non-finite value or more than 21 million BTC."""
    if isinstance(value, bool):
        raise ValueError(f"{what}: {value!r} is not a number")
    if isinstance(value, float):
        raise ValueError(f"{what}: {value!r} is a float; amounts are parsed as Decimal")
    try:
        dec = Decimal(value) if isinstance(value, int | str) else value
        if not isinstance(dec, Decimal) or not dec.is_finite():
            raise ValueError(f"{what}: {value!r} is not a number")
        sats = dec.scaleb(8)
        if sats != sats.to_integral_value():
            raise ValueError(f"{what}: {value} BTC has more than 8 decimals")
    except InvalidOperation:
        raise ValueError(f"{what}: {value!r} is not a number") from None
    result = int(sats)
    if not 0 <= result <= MAX_SATS:
        raise ValueError(f"{what}: {value} BTC is out of range")
    return result


# --- what the node tells us ----------------------------------------------------------------

class Dialect(StrEnum):
    core = "core"
    bcoin = "bcoin"


@dataclass(frozen=True)
class NodeInfo:
    dialect: Dialect
    subversion: str
    chain: str


@dataclass(frozen=True)
class ChainInfo:
    chain: str                  # main, test, testnet4, signet, regtest
    blocks: int
    best_block_hash: str
    initial_block_download: bool | None  # None: the node does not say (bcoin)


@dataclass(frozen=True)
class TxInput:
    txid: str | None   # None for a coinbase input
    vout: int | None
    sequence: int

    @property
    def is_coinbase(self) -> bool:
        return self.txid is None


@dataclass(frozen=True)
class TxOutput:
    n: int
    value: int          # satoshis
    script_pubkey: bytes


@dataclass(frozen=True)
class Transaction:
    txid: str
    wtxid: str
    vsize: int
    version: int
    locktime: int
    inputs: tuple[TxInput, ...]
    outputs: tuple[TxOutput, ...]
    block_hash: str | None  # None while unconfirmed
    confirmations: int      # 0 while unconfirmed
    raw: bytes | None       # the serialization, when the node gave it

    @property
    def is_coinbase(self) -> bool:
        return len(self.inputs) == 1 and self.inputs[0].is_coinbase

    @property
    def signals_rbf(self) -> bool:
        """BIP125: some input's sequence is below 0xfffffffe (replaceable while unconfirmed)."""
        return any(i.sequence < 0xFFFFFFFE for i in self.inputs)


@dataclass(frozen=True)
class BlockHeader:
    hash: str
    height: int
    previous_hash: str | None
    time: int
    median_time: int
    confirmations: int  # Core: -1 when the block is not on the main chain


@dataclass(frozen=True)
class Block:
    header: BlockHeader
    transactions: tuple[Transaction, ...]

    @property
    def hash(self) -> str:
        return self.header.hash

    @property
    def height(self) -> int:
        return self.header.height


@dataclass(frozen=True)
class MempoolEntry:
    txid: str
    fee: int        # satoshis
    vsize: int
    depends: tuple[str, ...]  # unconfirmed parents


@dataclass(frozen=True)
class UnspentOutput:
    value: int
    script_pubkey: bytes
    confirmations: int  # 0 while in the mempool
    coinbase: bool


@dataclass(frozen=True)
class AddressCoin:
    """A confirmed unspent output paying one of the addresses asked about, as the node
    has it (never read from our records)."""

    txid: str
    vout: int
    value: int          # satoshis
    script_pubkey: bytes
    height: int         # the block it was mined in
    coinbase: bool

    @property
    def outpoint(self) -> tuple[str, int]:
        return self.txid, self.vout


@dataclass(frozen=True)
class UtxoSnapshot:
    """The confirmed unspent outputs of some addresses at the node's tip ``height``
    (``best_hash``): unconfirmed transactions neither add nor take away anything."""

    height: int
    best_hash: str
    coins: tuple[AddressCoin, ...]

    def total(self, at_or_below: int | None = None) -> int:
        """Satoshis held, counting only coins mined at or below ``at_or_below``."""
        return sum(c.value for c in self.coins
                   if at_or_below is None or c.height <= at_or_below)


@dataclass(frozen=True)
class FeeEstimate:
    sat_per_kvb: int | None  # None: the node has no estimate (empty regtest, new node)
    blocks: int              # the target the estimate is for

    @property
    def sat_per_vb(self) -> int | None:
        """Rounded up to whole sat/vB."""
        return None if self.sat_per_kvb is None else -(-self.sat_per_kvb // 1000)


@dataclass(frozen=True)
class AcceptResult:
    txid: str
    allowed: bool
    reason: str | None
    vsize: int | None
    fee: int | None


# --- the client ----------------------------------------------------------------------------

_NOT_FOUND_TEXT = ("block not found", "transaction not found", "transaction not in mempool",
                   "no such mempool or blockchain transaction", "not found")
_ALREADY_IN_CHAIN = -27  # Core's RPC_VERIFY_ALREADY_IN_CHAIN


class BitcoinRPC:
    """One node. Thread-safe (one httpx client with a connection pool)."""

    def __init__(self, url: str, user: str = "", password: str = "", *,
                 timeout: float = 30.0, dialect: str | Dialect = "auto",
                 accept_timeout: float = 10.0, client: httpx.Client | None = None) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError("the node's URL must start with http:// or https://")
        self.url = url.rstrip("/") + "/"
        auth = httpx.BasicAuth(user, password) if (user or password) else None
        self._client = client or httpx.Client(auth=auth, timeout=timeout,
                                              headers={"Content-Type": "application/json"})
        self._own_client = client is None
        self._ids = itertools.count(1)
        self._dialect = None if dialect == "auto" else Dialect(dialect)
        self._lock = threading.Lock()
        self.accept_timeout = accept_timeout

    @classmethod
    def from_settings(cls, st: Settings | None = None) -> BitcoinRPC:
        """The node of ``CASINO_BTC_RPC_URL`` (with user, password, timeout, dialect)."""
        st = st or get_settings()
        if not st.btc_rpc_url:
            raise ValueError("CASINO_BTC_RPC_URL is not set: no Bitcoin node")
        return cls(st.btc_rpc_url, st.btc_rpc_user, st.btc_rpc_password,
                   timeout=st.btc_rpc_timeout, dialect=st.btc_rpc_dialect)

    def close(self) -> None:
        if self._own_client:
            self._client.close()

    def __enter__(self) -> BitcoinRPC:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # transport ---------------------------------------------------------------------------
    def _post(self, body: Any, path: str = "", timeout: float | None = None) -> Any:
        extra = {} if timeout is None else {"timeout": timeout}
        try:
            resp = self._client.post(self.url + path, content=json.dumps(body), **extra)
        except httpx.TimeoutException as exc:
            raise NodeUnavailable(f"the Bitcoin node did not answer in time ({exc})") from exc
        except httpx.HTTPError as exc:
            raise NodeUnavailable(f"cannot reach the Bitcoin node: {exc}") from exc
        if resp.status_code in (401, 403):
            raise NodeUnavailable(f"the Bitcoin node refused our credentials (HTTP "
                                  f"{resp.status_code}): check CASINO_BTC_RPC_USER and "
                                  "CASINO_BTC_RPC_PASSWORD")
        try:
            return json.loads(resp.text, parse_float=Decimal)
        except ValueError:
            raise NodeUnavailable(f"the Bitcoin node answered HTTP {resp.status_code} without "
                                  f"JSON: {resp.text[:200]!r}") from None

    def _request(self, method: str, params: Sequence[Any]) -> dict[str, Any]:
        return {"jsonrpc": "1.0", "id": next(self._ids), "method": method,
                "params": list(params)}

    @staticmethod
    def _outcome(method: str, reply: Any) -> Any:
        if not isinstance(reply, dict) or ("result" not in reply and "error" not in reply):
            raise NodeUnavailable(f"{method}: not a JSON-RPC answer: {str(reply)[:200]}")
        error = reply.get("error")
        if error:
            code = error.get("code") if isinstance(error, dict) else None
            message = str(error.get("message") if isinstance(error, dict) else error)
            if code == -32601:
                return Unsupported(method, code, message)
            if code == -5 or (code == -8 and method == "getblockhash") or (
                    method in ("getblock", "getblockheader", "getrawtransaction",
                               "getmempoolentry")
                    and message.lower().rstrip(".").startswith(_NOT_FOUND_TEXT)):
                return NotFound(method, code, message)
            return RPCError(method, code, message)
        return reply.get("result")

    def call(self, method: str, *params: Any, timeout: float | None = None) -> Any:
        """One call (``timeout`` seconds instead of the client's); its result (floats as
        Decimal) or an exception."""
        result = self._outcome(method, self._post(self._request(method, params),
                                                  timeout=timeout))
        if isinstance(result, RPCError):
            raise result
        return result

    def batch(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """Several calls in JSON-RPC batches (both Core and bcoin take them); one item per
        call, in order: its result or its :class:`RPCError` (returned, not raised). A
        transport failure raises NodeUnavailable for the whole batch."""
        out: list[Any] = []
        for start in range(0, len(calls), BATCH_SIZE):
            chunk = [self._request(m, p) for m, p in calls[start:start + BATCH_SIZE]]
            replies = self._post(chunk)
            if not isinstance(replies, list):
                raise NodeUnavailable(f"a batch was answered with {str(replies)[:200]}")
            by_id = {r.get("id"): r for r in replies if isinstance(r, dict)}
            for req in chunk:
                if req["id"] not in by_id:
                    raise NodeUnavailable(f"{req['method']}: no answer in the batch")
                out.append(self._outcome(req["method"], by_id[req["id"]]))
        return out

    # who answers --------------------------------------------------------------------------
    @property
    def dialect(self) -> Dialect:
        if self._dialect is None:
            info = self.call("getnetworkinfo")
            subversion = str(info.get("subversion", ""))
            dialect = Dialect.bcoin if "bcoin" in subversion.lower() else Dialect.core
            with self._lock:
                self._dialect = dialect
            log.info("bitcoin node dialect", dialect=str(dialect), subversion=subversion)
        return self._dialect

    def node_info(self) -> NodeInfo:
        info = self.call("getnetworkinfo")
        return NodeInfo(dialect=self.dialect, subversion=str(info.get("subversion", "")),
                        chain=self.blockchain_info().chain)

    def check_network(self, network: Network) -> ChainInfo:
        """Refuse a node of another network (NetworkMismatch, naming the settings): its
        chain must be one of the network's, and it must accept an address written with the
        configured bech32 prefix (``validateaddress``: the node is the judge)."""
        info = self.blockchain_info()
        if info.chain not in network.node_chains:
            raise NetworkMismatch(f"the Bitcoin node runs '{info.chain}' but CASINO_BTC_NETWORK "
                                  f"is {network.name} (expects {'/'.join(network.node_chains)})")
        probe = bech32.encode_segwit(network.bech32_hrp, 0, bytes(20))
        answer = self.call("validateaddress", probe)
        if not (isinstance(answer, dict) and answer.get("isvalid")):
            raise NetworkMismatch(f"the Bitcoin node does not accept addresses with the prefix "
                                  f"'{network.bech32_hrp}1' ({probe}): check CASINO_BTC_NETWORK "
                                  "and CASINO_BTC_BECH32_HRP (Bitcoin Core's regtest uses "
                                  "'bcrt', bcoin's 'rb')")
        return info

    # chain --------------------------------------------------------------------------------
    def blockchain_info(self) -> ChainInfo:
        r = self.call("getblockchaininfo")
        ibd = r.get("initialblockdownload")
        return ChainInfo(chain=str(r["chain"]), blocks=int(r["blocks"]),
                         best_block_hash=str(r["bestblockhash"]),
                         initial_block_download=None if ibd is None else bool(ibd))

    def block_count(self) -> int:
        return int(self.call("getblockcount"))

    def best_block_hash(self) -> str:
        return str(self.call("getbestblockhash"))

    def block_hash(self, height: int) -> str:
        """The main chain's block at ``height``; NotFound above the tip."""
        return str(self.call("getblockhash", int(height)))

    def block_hashes(self, heights: Sequence[int]) -> list[str | None]:
        """The main chain's blocks at ``heights`` (JSON-RPC batches); None above the tip.
        Any other error is raised."""
        out: list[str | None] = []
        for r in self.batch([("getblockhash", [int(h)]) for h in heights]):
            if isinstance(r, NotFound):
                out.append(None)
            elif isinstance(r, RPCError):
                raise r
            else:
                out.append(str(r))
        return out

    def _getblock_params(self, block_hash: str) -> list[Any]:
        if self.dialect is Dialect.bcoin:
            return [block_hash, True, True]  # (hash, verbose, details)
        return [block_hash, 2]               # (hash, verbosity)

    def block(self, block_hash: str) -> Block:
        """The block with all its transactions (amounts in satoshis); NotFound if unknown.
        ``confirmations`` is -1 when the block is not on the main chain (both dialects)."""
        return self._main_chain_blocks(
            [_block(self.call("getblock", *self._getblock_params(block_hash)))])[0]

    def blocks(self, block_hashes: Sequence[str]) -> list[Block]:
        """Several blocks in JSON-RPC batches; raises the first error."""
        results = self.batch([("getblock", self._getblock_params(h)) for h in block_hashes])
        for r in results:
            if isinstance(r, RPCError):
                raise r
        return self._main_chain_blocks([_block(r) for r in results])

    def block_header(self, block_hash: str) -> BlockHeader:
        """A block's header; ``confirmations`` -1 when it is not on the main chain."""
        header = _header(self.call("getblockheader", block_hash, True))
        return self._main_chain_headers([header])[0]

    def _main_chain_headers(self, headers: list[BlockHeader]) -> list[BlockHeader]:
        """Core writes confirmations -1 for a block off the main chain; bcoin counts from its
        tip whatever branch the block is on, so bcoin is asked which block is at each
        height and a block that is not the one there gets -1 too."""
        if not headers or self.dialect is not Dialect.bcoin:
            return headers
        there = self.batch([("getblockhash", [h.height]) for h in headers])
        return [h if at == h.hash else replace(h, confirmations=-1)
                for h, at in zip(headers, there, strict=True)]

    def _main_chain_blocks(self, blocks: list[Block]) -> list[Block]:
        headers = self._main_chain_headers([b.header for b in blocks])
        return [b if h is b.header else Block(
                    header=h, transactions=tuple(replace(t, confirmations=-1)
                                                 for t in b.transactions))
                for b, h in zip(blocks, headers, strict=True)]

    def chain_tips(self) -> list[dict[str, Any]]:
        return list(self.call("getchaintips"))

    # transactions -------------------------------------------------------------------------
    def raw_transaction(self, txid: str, block_hash: str | None = None) -> Transaction:
        """A transaction by id (mempool, or the chain: Core needs -txindex or ``block_hash``,
        bcoin needs --index-tx and takes no block hash); NotFound if the node has none."""
        params: list[Any] = [txid, True]
        if block_hash is not None and self.dialect is Dialect.core:
            params.append(block_hash)
        return _transaction(self.call("getrawtransaction", *params))

    def transactions(self, txids: Sequence[str]) -> list[Transaction | None]:
        """Several transactions by id (``getrawtransaction txid true`` in JSON-RPC batches:
        the mempool, or the chain with a transaction index); None for one the node does not
        have (it left the mempool, or no index). Any other error is raised."""
        out: list[Transaction | None] = []
        for r in self.batch([("getrawtransaction", [t, True]) for t in txids]):
            if isinstance(r, NotFound):
                out.append(None)
            elif isinstance(r, RPCError):
                raise r
            else:
                out.append(_transaction(r))
        return out

    def tx_out(self, txid: str, vout: int, include_mempool: bool = True) -> UnspentOutput | None:
        """The output if it is unspent (None if spent or unknown)."""
        r = self.call("gettxout", txid, int(vout), include_mempool)
        if r is None:
            return None
        return UnspentOutput(value=to_sats(r["value"], what="gettxout value"),
                             script_pubkey=bytes.fromhex(r["scriptPubKey"]["hex"]),
                             confirmations=int(r.get("confirmations", 0)),
                             coinbase=bool(r.get("coinbase", False)))

    def prevouts(self, outpoints: Collection[tuple[str, int]]) -> dict[tuple[str, int],
                                                                       TxOutput]:
        """The outputs that ``outpoints`` name (spent or not), read from their funding
        transactions (``getrawtransaction`` in batches: Core needs ``txindex=1``, bcoin
        ``--index-tx``). NotFound when the node does not have a funding transaction."""
        txids = sorted({t for t, _ in outpoints})
        found = dict(zip(txids, self.transactions(txids), strict=True)) if txids else {}
        out: dict[tuple[str, int], TxOutput] = {}
        for txid, vout in outpoints:
            tx = found.get(txid)
            outputs = {o.n: o for o in tx.outputs} if tx is not None else {}
            if vout not in outputs:
                raise NotFound("getrawtransaction", None,
                               f"the node does not have output {txid}:{vout} (it needs a "
                               "transaction index: Core txindex=1, bcoin --index-tx)")
            out[(txid, vout)] = outputs[vout]
        return out

    # what addresses hold ------------------------------------------------------------------
    def address_utxos(self, scripts: Mapping[bytes, str], *,
                      scan_timeout: float = SCAN_TIMEOUT, attempts: int = 3) -> UtxoSnapshot:
        """The confirmed unspent outputs paying ``scripts`` (output script -> its address)
        at the node's tip, read from the node alone (see the module's table):

        * Core has no address index: ``scantxoutset start ["addr(A)", ...]`` scans its UTXO
          set (confirmed only) once for every address (``scan_timeout``: a mainnet scan
          takes about a minute; Core runs one scan at a time and refuses a second with
          code -8);
        * bcoin: its address index (``--index-address``) over REST (``POST /coin/address``,
          ADDRESS_CHUNK addresses a request), whose answer mixes in the mempool: its coins
          (height -1) are dropped, and the chain's coins a mempool transaction spends
          (which it leaves out) are put back with ``gettxout txid n false``. The tip and
          the mempool are read before and after; if either moved, the read starts again
          (``attempts`` times, then NodeUnavailable). A bcoin without ``--index-address``
          answers no coins at all (reconciliation then reports everything missing).
        """
        if not scripts:
            info = self.blockchain_info()
            return UtxoSnapshot(info.blocks, info.best_block_hash, ())
        if self.dialect is Dialect.core:
            return self._scan_utxos(scripts, scan_timeout)
        for _ in range(attempts):
            snapshot = self._bcoin_utxos(scripts)
            if snapshot is not None:
                return snapshot
        raise NodeUnavailable("the chain or the mempool kept moving while bcoin's address "
                              "index was read: try again")

    def _scan_utxos(self, scripts: Mapping[bytes, str], timeout: float) -> UtxoSnapshot:
        objects = [f"addr({a})" for a in sorted(set(scripts.values()))]
        r = self.call("scantxoutset", "start", objects, timeout=timeout)
        if not isinstance(r, dict) or r.get("success") is False or "unspents" not in r:
            raise RPCError("scantxoutset", None, f"the scan did not complete: {str(r)[:200]}")
        coins = []
        for u in r["unspents"]:
            script = bytes.fromhex(str(u["scriptPubKey"]))
            if script in scripts:
                coins.append(AddressCoin(str(u["txid"]), int(u["vout"]),
                                         to_sats(u["amount"], what="scantxoutset amount"),
                                         script, int(u["height"]), bool(u.get("coinbase"))))
        return UtxoSnapshot(int(r["height"]), str(r["bestblock"]), tuple(sorted(
            coins, key=lambda c: (c.height, c.txid, c.vout))))

    def _mempool_spends(self) -> tuple[set[str], set[tuple[str, int]]]:
        """The mempool's txids and the outpoints its transactions spend."""
        txids = self.mempool_txids()
        spends: set[tuple[str, int]] = set()
        for tx in self.transactions(txids) if txids else []:
            if tx is not None:
                spends.update((i.txid, i.vout) for i in tx.inputs
                              if i.txid is not None and i.vout is not None)
        return set(txids), spends

    def _rest(self, path: str, body: Any) -> Any:
        """bcoin's REST API (same port and key as its RPC): the JSON answer or an error."""
        try:
            resp = self._client.post(self.url + path, content=json.dumps(body))
        except httpx.TimeoutException as exc:
            raise NodeUnavailable(f"the Bitcoin node did not answer in time ({exc})") from exc
        except httpx.HTTPError as exc:
            raise NodeUnavailable(f"cannot reach the Bitcoin node: {exc}") from exc
        if resp.status_code in (401, 403):
            raise NodeUnavailable(f"the Bitcoin node refused our credentials (HTTP "
                                  f"{resp.status_code})")
        try:
            data = json.loads(resp.text, parse_float=Decimal)
        except ValueError:
            raise NodeUnavailable(f"{path}: HTTP {resp.status_code} without JSON: "
                                  f"{resp.text[:200]!r}") from None
        if resp.status_code != 200 or (isinstance(data, dict) and data.get("error")):
            error = data.get("error") if isinstance(data, dict) else None
            message = str(error.get("message") if isinstance(error, dict) else error or data)
            if resp.status_code == 404:
                raise Unsupported(path, 404, f"no such REST route ({message[:100]}): bcoin's "
                                             "HTTP API must be reachable, not only its RPC")
            raise RPCError(path, resp.status_code, message[:300])
        return data

    def _bcoin_utxos(self, scripts: Mapping[bytes, str]) -> UtxoSnapshot | None:
        before = self.blockchain_info()
        pool, spends = self._mempool_spends()
        found: list[Any] = []
        addrs = sorted(set(scripts.values()))
        for i in range(0, len(addrs), ADDRESS_CHUNK):
            found.extend(self._rest("coin/address", {"addresses": addrs[i:i + ADDRESS_CHUNK]}))
        pool_after, spends_after = self._mempool_spends()
        after = self.blockchain_info()
        if after.best_block_hash != before.best_block_hash or pool_after != pool:
            return None
        tip = after.blocks
        coins: dict[tuple[str, int], AddressCoin] = {}
        for c in found:
            height, script = int(c["height"]), bytes.fromhex(str(c["script"]))
            if height < 0 or script not in scripts:  # the mempool's own coins
                continue
            coin = AddressCoin(str(c["hash"]), int(c["index"]), int(c["value"]), script,
                               height, bool(c.get("coinbase")))
            coins[coin.outpoint] = coin
        # bcoin leaves out the chain's coins that a mempool transaction spends: put them back
        missing = sorted(op for op in spends | spends_after
                         if op not in coins and op[0] not in pool)
        answers = self.batch([("gettxout", [t, v, False]) for t, v in missing])
        for (txid, vout), r in zip(missing, answers, strict=True):
            if isinstance(r, RPCError):
                raise r
            if r is None:
                continue
            script = bytes.fromhex(str(r["scriptPubKey"]["hex"]))
            if script in scripts:
                coins[(txid, vout)] = AddressCoin(
                    txid, vout, to_sats(r["value"], what="gettxout value"), script,
                    tip - int(r["confirmations"]) + 1, bool(r.get("coinbase")))
        return UtxoSnapshot(tip, after.best_block_hash, tuple(sorted(
            coins.values(), key=lambda c: (c.height, c.txid, c.vout))))

    # mempool ------------------------------------------------------------------------------
    def mempool_txids(self) -> list[str]:
        return [str(t) for t in self.call("getrawmempool")]

    def mempool_entry(self, txid: str) -> MempoolEntry | None:
        try:
            r = self.call("getmempoolentry", txid)
        except NotFound:
            return None
        if isinstance(r.get("fees"), dict):  # Core
            fee, vsize = r["fees"]["base"], r["vsize"]
        else:                                # bcoin: fee in BTC, size = sigop-adjusted vsize
            fee, vsize = r["fee"], r.get("vsize", r.get("size"))
        return MempoolEntry(txid=txid, fee=to_sats(fee, what="mempool fee"), vsize=int(vsize),
                            depends=tuple(str(d) for d in r.get("depends", [])))

    def send_raw_transaction(self, raw: bytes | str) -> str:
        """Broadcast a signed transaction; its txid once the node has it (mempool or chain).

        TransactionRejected when the node refuses it. Sending the same bytes again is
        harmless (already in the mempool: its txid; already confirmed: its txid). On bcoin,
        which answers the txid even for a transaction it drops, the transaction is looked up
        for up to ``accept_timeout`` seconds afterwards (needs --index-tx to find one that
        was mined in between)."""
        hex_tx = raw if isinstance(raw, str) else bytes(raw).hex()
        txid = txid_of(hex_tx)
        try:
            answer = self.call("sendrawtransaction", hex_tx)
        except RPCError as exc:
            if exc.code == _ALREADY_IN_CHAIN:
                return txid
            raise TransactionRejected(exc.method, exc.code, exc.message) from None
        if self.dialect is Dialect.bcoin:
            self._await_acceptance(txid)
        return str(answer or txid)

    def _await_acceptance(self, txid: str) -> None:
        deadline = time.monotonic() + self.accept_timeout
        delay = 0.02
        while True:
            try:
                self.call("getrawtransaction", txid, False)
                return
            except NotFound:
                pass
            if time.monotonic() >= deadline:
                raise TransactionRejected(
                    "sendrawtransaction", None,
                    f"the node did not accept {txid} (bcoin gives no reason over RPC: a "
                    "conflict with a mempool transaction, a spent or missing input, a fee "
                    "below its minimum, a non-final or invalid transaction; see its log)")
            time.sleep(delay)
            delay = min(delay * 2, 0.25)

    def test_mempool_accept(self, raw: bytes | str) -> AcceptResult | None:
        """Would the node accept this transaction (Core's testmempoolaccept)? None when the
        node cannot tell (bcoin has no such call): broadcasting is then the test."""
        hex_tx = raw if isinstance(raw, str) else bytes(raw).hex()
        if self.dialect is Dialect.bcoin:
            return None
        try:
            r = self.call("testmempoolaccept", [hex_tx])[0]
        except Unsupported:
            return None
        fees = r.get("fees") or {}
        return AcceptResult(txid=str(r["txid"]), allowed=bool(r.get("allowed")),
                            reason=r.get("reject-reason"),
                            vsize=int(r["vsize"]) if "vsize" in r else None,
                            fee=to_sats(fees["base"], what="fee") if "base" in fees else None)

    def estimate_fee(self, target_blocks: int) -> FeeEstimate:
        """The node's fee rate for confirmation within ``target_blocks``, in sat/kvB;
        ``sat_per_kvb`` None when it has none (bcoin's -1, Core's ``errors``): the caller
        falls back to its configured floor."""
        r = self.call("estimatesmartfee", int(target_blocks))
        rate = r.get("feerate", r.get("fee"))
        blocks = int(r.get("blocks") or target_blocks)
        if rate is None or (isinstance(rate, int | Decimal) and rate < 0):
            return FeeEstimate(None, blocks)
        return FeeEstimate(to_sats(rate, what="fee rate"), blocks)


# --- parsing -------------------------------------------------------------------------------

def _header(r: dict[str, Any]) -> BlockHeader:
    return BlockHeader(hash=str(r["hash"]), height=int(r["height"]),
                       previous_hash=r.get("previousblockhash") or None,
                       time=int(r["time"]), median_time=int(r.get("mediantime", r["time"])),
                       confirmations=int(r.get("confirmations", 0)))


def _block(r: dict[str, Any]) -> Block:
    header = _header(r)
    txs = []
    for t in r["tx"]:
        if not isinstance(t, dict):
            raise NodeUnavailable("getblock answered txids, not transactions (wrong dialect?)")
        txs.append(_transaction(t, header.hash, header.confirmations))
    return Block(header=header, transactions=tuple(txs))


def _transaction(r: dict[str, Any], block_hash: str | None = None,
                 confirmations: int | None = None) -> Transaction:
    inputs = tuple(
        TxInput(txid=None, vout=None, sequence=int(i["sequence"])) if "coinbase" in i
        else TxInput(txid=str(i["txid"]), vout=int(i["vout"]), sequence=int(i["sequence"]))
        for i in r["vin"])
    outputs = tuple(TxOutput(n=int(o["n"]), value=to_sats(o["value"], what="output value"),
                             script_pubkey=bytes.fromhex(o["scriptPubKey"]["hex"]))
                    for o in r["vout"])
    in_block = block_hash or r.get("blockhash") or None
    confs = confirmations if confirmations is not None else int(r.get("confirmations") or 0)
    return Transaction(txid=str(r["txid"]), wtxid=str(r.get("hash") or r["txid"]),
                       vsize=int(r["vsize"]), version=int(r["version"]),
                       locktime=int(r["locktime"]), inputs=inputs, outputs=outputs,
                       block_hash=in_block, confirmations=confs if in_block else 0,
                       raw=bytes.fromhex(r["hex"]) if r.get("hex") else None)
