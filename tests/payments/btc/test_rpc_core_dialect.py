"""The adapter's Bitcoin Core dialect, against a STAND-IN for Bitcoin Core.

No Bitcoin Core runs on this machine (no registry here ships it; the real-node tests use
bcoin, test_rpc_node.py). This stand-in is an httpx transport that answers in the shapes
Bitcoin Core documents (getblock verbosity 2, fees.base, feerate/errors, HTTP 500 with a
JSON-RPC error body, 404 for an unknown method, 503 when its work queue is full), so that
the Core side of every dialect difference is exercised: what the adapter sends and how it
reads the answers. It proves nothing about Core itself."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx
import pytest

from casino_app.payments.btc.network import PRESETS
from casino_app.payments.btc.rpc import (
    BitcoinRPC,
    Dialect,
    NetworkMismatch,
    NodeUnavailable,
    NotFound,
    RPCError,
    TransactionRejected,
    Unsupported,
    to_sats,
    txid_of,
)

# BIP143's native P2WPKH example, signed: a real transaction to hand around
SIGNED = ("01000000000102fff7f7881a8099afa6940d42d1e7f6362bec38171ea3edf433541db4e4ad969f00000"
          "000494830450221008b9d1dc26ba6a9cb62127b02742fa9d754cd3bebf337f7a55d114c8e5cdd30be0220"
          "40529b194ba3f9281a99f2b1c0a19c0489bc22ede944ccf4ecbab4cc618ef3ed01eeffffffef51e1b804cc"
          "89d182d279655c3aa89e815b1b309fe287d9b2b55d57b90ec68a0100000000ffffffff02202cb2060000"
          "00001976a9148280b37df378db99f66f85c95a783a76ac7a6d5988ac9093510d000000001976a9143bde"
          "42dbee7e4dbe6a21b2d50ce2f0167faa815988ac000247304402203609e17b84f6a7d30c80bfa610b5b4"
          "542f32a8a0d5447a12fb1366d7f01cc44a0220573a954c4518331561406f90300e8f3358f51928d43c21"
          "2a8caed02de67eebee0121025476c2e83188368da1ff3e292e7acafcdb3566bb0ad253f62fc70f07aeee"
          "635711000000")
TXID = txid_of(SIGNED)
BLOCK = "00" * 31 + "aa"
PREV = "00" * 31 + "99"
WATCHED = "0014" + "22" * 20  # a P2WPKH script of ours

TX_JSON = {
    "txid": TXID, "hash": "ff" * 32, "version": 1, "size": 343, "vsize": 261, "weight": 1042,
    "locktime": 17,
    "vin": [{"txid": "9f96ade4b41d5433f4eda31e1738ec2b36f6e7d1420d94a6af99801a88f7f7ff",
             "vout": 0, "scriptSig": {"asm": "", "hex": ""}, "sequence": 4294967278},
            {"txid": "8ac60eb9575db5b2d987e29f301b5b819ea83a5c6579d282d189cc04b8e151ef",
             "vout": 1, "scriptSig": {"asm": "", "hex": ""}, "txinwitness": ["30", "02"],
             "sequence": 4294967295}],
    "vout": [{"value": "1.12340000", "n": 0,
              "scriptPubKey": {"asm": "", "hex": "76a9148280b37df378db99f66f85c95a783a76ac7a6d5988ac",
                               "address": "1CqH...", "type": "pubkeyhash"}},
             {"value": "2.23450000", "n": 1,
              "scriptPubKey": {"asm": "", "hex": "76a9143bde42dbee7e4dbe6a21b2d50ce2f0167faa815988ac",
                               "type": "pubkeyhash"}}],
    "fee": "0.00010000", "hex": SIGNED,
}
COINBASE_JSON = {
    "txid": "cc" * 32, "hash": "cc" * 32, "version": 2, "size": 100, "vsize": 100,
    "weight": 400, "locktime": 0,
    "vin": [{"coinbase": "03a0860100", "txinwitness": ["00" * 32], "sequence": 4294967295}],
    "vout": [{"value": "3.12500000", "n": 0, "scriptPubKey": {"hex": "0014" + "11" * 20}}],
    "hex": "",
}


class CoreStandIn:
    """Answers like Bitcoin Core 27 over JSON-RPC 1.0 (errors: HTTP 500 + JSON body)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fee_reply: dict[str, Any] = {"feerate": "0.00012345", "blocks": 2}
        self.send_error: tuple[int, str] | None = None
        self.busy = False
        self.scanning = False
        self.timeout: Any = None
        self.scan_timeouts: list[Any] = []

    def answer(self, method: str, params: list[Any]) -> tuple[int, Any]:
        if method == "getnetworkinfo":
            return 200, {"version": 270000, "subversion": "/Satoshi:27.0.0/"}
        if method == "getblockchaininfo":
            return 200, {"chain": "main", "blocks": 900_000, "headers": 900_000,
                         "bestblockhash": BLOCK, "initialblockdownload": False}
        if method == "getblock":
            if params[0] != BLOCK:
                return 500, {"code": -5, "message": "Block not found"}
            return 200, {"hash": BLOCK, "confirmations": 3, "height": 900_000, "time": 1,
                         "mediantime": 1, "previousblockhash": PREV,
                         "tx": [COINBASE_JSON, TX_JSON]}
        if method == "getblockheader":
            return 200, {"hash": params[0], "confirmations": -1, "height": 899_999,
                         "time": 5, "mediantime": 4, "previousblockhash": PREV}
        if method == "getblockhash":
            return 500, {"code": -8, "message": "Block height out of range"}
        if method == "getrawtransaction":
            if params[0] != TXID:
                return 500, {"code": -5, "message": "No such mempool or blockchain transaction. "
                                                    "Use gettransaction for wallet transactions."}
            return 200, {**TX_JSON, "blockhash": BLOCK, "confirmations": 3}
        if method == "getmempoolentry":
            return 200, {"vsize": 141, "weight": 561, "fees": {"base": "0.00000282",
                                                               "modified": "0.00000282"},
                         "depends": [PREV], "bip125-replaceable": True}
        if method == "estimatesmartfee":
            return 200, self.fee_reply
        if method == "sendrawtransaction":
            if self.send_error:
                code, message = self.send_error
                return 500, {"code": code, "message": message}
            return 200, TXID
        if method == "testmempoolaccept":
            return 200, [{"txid": TXID, "wtxid": "ff" * 32, "allowed": False,
                          "reject-reason": "min relay fee not met"}]
        if method == "validateaddress":
            return 200, {"isvalid": params[0].startswith("bc1")}
        if method == "scantxoutset":
            if self.scanning:
                return 500, {"code": -8, "message": "Scan already in progress, use action "
                                                    "\"abort\" or \"status\""}
            self.scan_timeouts.append(self.timeout)
            return 200, {"success": True, "txouts": 185_000_000, "height": 900_000,
                         "bestblock": BLOCK, "total_amount": "0.00012345",
                         "unspents": [{"txid": TXID, "vout": 1, "scriptPubKey": WATCHED,
                                       "desc": "addr(bc1q...)#x", "amount": "0.00012345",
                                       "coinbase": False, "height": 899_990,
                                       "blockhash": PREV}]}
        return 404, {"code": -32601, "message": "Method not found"}

    def handle(self, request: httpx.Request) -> httpx.Response:
        if self.busy:
            return httpx.Response(503, text="Work queue depth exceeded")
        body = json.loads(request.content)
        self.timeout = request.extensions.get("timeout", {}).get("read")
        replies = []
        for call in body if isinstance(body, list) else [body]:
            self.requests.append(call)
            status, payload = self.answer(call["method"], call["params"])
            if status == 200:
                reply = {"result": payload, "error": None, "id": call["id"]}
            else:
                reply = {"result": None, "error": payload, "id": call["id"]}
            replies.append((status, reply))
        if isinstance(body, list):
            return httpx.Response(200, json=[r for _, r in replies])
        status, reply = replies[0]
        # Core writes amounts with 8 decimals as JSON numbers: strip the stand-in's quotes
        text = json.dumps(reply)
        for value in ("1.12340000", "2.23450000", "3.12500000", "0.00010000", "0.00000282",
                      "0.00012345"):  # (scantxoutset's amounts too)
            text = text.replace(f'"{value}"', value)
        return httpx.Response(status, text=text, headers={"Content-Type": "application/json"})


@pytest.fixture
def core() -> CoreStandIn:
    return CoreStandIn()


@pytest.fixture
def rpc(core: CoreStandIn) -> BitcoinRPC:
    client = httpx.Client(transport=httpx.MockTransport(core.handle))
    return BitcoinRPC("http://core.invalid:8332", "user", "pw", client=client)


def test_core_is_detected_and_getblock_asks_verbosity_2(rpc: BitcoinRPC, core: CoreStandIn):
    assert rpc.dialect is Dialect.core
    block = rpc.block(BLOCK)
    assert core.requests[-1]["params"] == [BLOCK, 2]
    assert (block.height, block.header.previous_hash, block.header.confirmations) == \
        (900_000, PREV, 3)
    coinbase, tx = block.transactions
    assert coinbase.is_coinbase and coinbase.outputs[0].value == 312_500_000
    assert [o.value for o in tx.outputs] == [112_340_000, 223_450_000]
    assert tx.raw == bytes.fromhex(SIGNED) and tx.signals_rbf
    assert tx.block_hash == BLOCK and tx.confirmations == 3
    with pytest.raises(NotFound):
        rpc.block("ab" * 32)
    assert rpc.block_header(BLOCK).confirmations == -1  # Core: off the main chain
    with pytest.raises(NotFound):
        rpc.block_hash(10**7)


def test_core_getrawtransaction_gets_the_block_hash(rpc: BitcoinRPC, core: CoreStandIn):
    tx = rpc.raw_transaction(TXID, block_hash=BLOCK)
    assert core.requests[-1]["params"] == [TXID, True, BLOCK]
    assert tx.block_hash == BLOCK and tx.confirmations == 3
    with pytest.raises(NotFound):
        rpc.raw_transaction("ab" * 32)


def test_core_fee_estimates(rpc: BitcoinRPC, core: CoreStandIn):
    estimate = rpc.estimate_fee(2)
    assert core.requests[-1]["params"] == [2]
    assert (estimate.sat_per_kvb, estimate.sat_per_vb, estimate.blocks) == (12_345, 13, 2)
    core.fee_reply = {"errors": ["Insufficient data or no feerate found"], "blocks": 0}
    assert rpc.estimate_fee(6).sat_per_kvb is None


def test_core_mempool_entry_and_acceptance(rpc: BitcoinRPC):
    entry = rpc.mempool_entry(TXID)
    assert (entry.fee, entry.vsize, entry.depends) == (282, 141, (PREV,))
    result = rpc.test_mempool_accept(SIGNED)
    assert result is not None and not result.allowed
    assert result.reason == "min relay fee not met"


def test_core_broadcast_errors(rpc: BitcoinRPC, core: CoreStandIn):
    assert rpc.send_raw_transaction(SIGNED) == TXID
    core.send_error = (-27, "Transaction outputs already in utxo set")
    assert rpc.send_raw_transaction(SIGNED) == TXID  # already mined: done
    core.send_error = (-26, "min relay fee not met, 0 < 141")
    with pytest.raises(TransactionRejected, match="min relay fee not met") as err:
        rpc.send_raw_transaction(SIGNED)
    assert err.value.code == -26
    core.send_error = (-25, "bad-txns-inputs-missingorspent")
    with pytest.raises(TransactionRejected, match="missingorspent"):
        rpc.send_raw_transaction(bytes.fromhex(SIGNED))


def test_core_unknown_method_busy_node_and_network(rpc: BitcoinRPC, core: CoreStandIn):
    with pytest.raises(Unsupported):
        rpc.call("getblockfilter", BLOCK)
    assert rpc.blockchain_info().initial_block_download is False
    assert rpc.check_network(PRESETS["mainnet"]).chain == "main"
    with pytest.raises(NetworkMismatch, match="runs 'main'"):
        rpc.check_network(PRESETS["testnet"])
    core.busy = True
    with pytest.raises(NodeUnavailable, match="HTTP 503"):
        rpc.block_count()


def test_core_reads_what_addresses_hold_with_scantxoutset(rpc: BitcoinRPC,
                                                           core: CoreStandIn):
    """Core has no address index: one scantxoutset over addr() descriptors, confirmed
    outputs at its tip, with a long timeout (a full UTXO-set scan); a second scan while
    one runs is refused by Core (code -8) and raised, not waited for."""
    ours = {bytes.fromhex(WATCHED): "bc1qyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zhv2ns5",
            bytes.fromhex("0014" + "33" * 20): "bc1qxvenxvenxvenxvenxvenxvenxvenxvenme6tqs"}
    snap = rpc.address_utxos(ours, scan_timeout=321)
    assert core.requests[-1]["method"] == "scantxoutset"
    assert core.requests[-1]["params"] == ["start", [f"addr({a})" for a in sorted(
        ours.values())]]
    assert core.scan_timeouts == [321]
    assert (snap.height, snap.best_hash) == (900_000, BLOCK)
    [coin] = snap.coins
    assert (coin.outpoint, coin.value, coin.height, coin.coinbase) == \
        ((TXID, 1), 12_345, 899_990, False)
    assert coin.script_pubkey == bytes.fromhex(WATCHED) and snap.total(899_989) == 0
    core.scanning = True
    with pytest.raises(RPCError, match="Scan already in progress"):
        rpc.address_utxos(ours)


def test_explicit_dialect_skips_detection(core: CoreStandIn):
    client = httpx.Client(transport=httpx.MockTransport(core.handle))
    rpc = BitcoinRPC("http://core.invalid:8332", client=client, dialect="core")
    rpc.block(BLOCK)
    assert [r["method"] for r in core.requests] == ["getblock"]


def test_to_sats_refuses_what_is_not_an_exact_amount():
    assert to_sats(Decimal("20999999.97690000")) == 2_099_999_997_690_000
    assert to_sats(Decimal("1E-8")) == 1 and to_sats(0) == 0 and to_sats("0.1") == 10_000_000
    for bad, text in [(0.1, "float"), (Decimal("0.000000001"), "more than 8 decimals"),
                      (Decimal("-0.00000001"), "out of range"),
                      (Decimal("21000000.00000001"), "out of range"), ("1e", "not a number"),
                      (Decimal("Infinity"), "not a number"), (True, "not a number")]:
        with pytest.raises(ValueError, match=text):
            to_sats(bad)


def test_txid_of_agrees_with_bitcoinlib():
    from bitcoinlib.transactions import Transaction

    assert TXID == Transaction.parse_hex(SIGNED).txid \
        == "e8151a2af31c368a35053ddd4bdb285a8595c769a3ad83e0fa02314a602d4609"
    unsigned = SIGNED[:8] + SIGNED[12:]  # drop marker and flag: a witness-free reading
    with pytest.raises(ValueError):
        txid_of(unsigned)
    with pytest.raises(ValueError):
        txid_of(SIGNED + "00")


def test_bcoin_blocks_off_the_main_chain_get_minus_one_confirmations():
    """bcoin counts a stored side-branch block's confirmations from its tip (positive);
    the adapter asks which block is at that height and writes -1, as Core does. (A single
    bcoin node cannot be made to store a side branch here, so this is a stand-in too.)"""
    main, side = "aa" * 32, "bb" * 32
    requests: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        replies = []
        for call in body if isinstance(body, list) else [body]:
            requests.append(call["method"])
            method, params = call["method"], call["params"]
            if method == "getblockheader" or method == "getblock":
                result = {"hash": params[0], "height": 10, "confirmations": 3, "time": 1,
                          "mediantime": 1, "previousblockhash": PREV,
                          "tx": [COINBASE_JSON]}
            elif method == "getblockhash":
                result = main
            else:
                result = None
            replies.append({"result": result, "error": None, "id": call["id"]})
        return httpx.Response(200, json=replies if isinstance(body, list) else replies[0])

    rpc = BitcoinRPC("http://bcoin.invalid", client=httpx.Client(
        transport=httpx.MockTransport(handle)), dialect="bcoin")
    assert rpc.block_header(main).confirmations == 3
    assert rpc.block_header(side).confirmations == -1
    block = rpc.block(side)
    assert block.header.confirmations == -1
    assert [t.confirmations for t in block.transactions] == [-1]
    assert [b.header.confirmations for b in rpc.blocks([main, side])] == [3, -1]
    assert requests.count("getblockhash") == 5
