"""The chain adapter (payments/btc/rpc.py) against a real node: bcoin 1.0.2 on regtest.

Each call the platform needs is made through the adapter and checked against what the node
did (amounts exact in satoshis, bcoin's dialect detected from getnetworkinfo, its
differences absorbed); the test helpers (mine, reorg, fund) are checked too, since later
work builds on them. Deposit addresses derived by payments/btc/keys.py receive coins and the
node's own view of the block names them: the node is the judge."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from casino_app.payments.btc import bech32, keys
from casino_app.payments.btc.devnet import COINBASE_MATURITY
from casino_app.payments.btc.network import PRESETS, VPUB
from casino_app.payments.btc.rpc import (
    BitcoinRPC,
    Dialect,
    NetworkMismatch,
    NodeUnavailable,
    NotFound,
    TransactionRejected,
    Unsupported,
    txid_of,
)
from tests.support.bitcoin import REORG_MARGIN, BcoinNode, RegtestWallet, fresh_address

from .test_keys import BIP84_ZPUB, with_version

pytestmark = pytest.mark.bitcoin

REGTEST = PRESETS["regtest-bcoin"]
VPUB_KEY = with_version(BIP84_ZPUB, VPUB)  # the BIP84 vector account as a test-network key


def test_dialect_is_detected_from_getnetworkinfo(bitcoin_node: BcoinNode):
    rpc = BitcoinRPC(bitcoin_node.url, "anyone", bitcoin_node.api_key)  # dialect "auto"
    try:
        assert rpc.dialect is Dialect.bcoin
        info = rpc.node_info()
        assert info.subversion == "/bcoin:v1.0.2/" and info.chain == "regtest"
    finally:
        rpc.close()


def test_chain_calls(bitcoin_node: BcoinNode):
    rpc = bitcoin_node.rpc
    bitcoin_node.mine(1)
    info = rpc.blockchain_info()
    assert info.chain == "regtest" and info.blocks == rpc.block_count() >= 433
    assert info.initial_block_download is None  # bcoin does not say
    assert rpc.best_block_hash() == info.best_block_hash == rpc.block_hash(info.blocks)
    with pytest.raises(NotFound):
        rpc.block_hash(info.blocks + 1)
    header = rpc.block_header(info.best_block_hash)
    assert (header.height, header.confirmations) == (info.blocks, 1)
    assert header.previous_hash == rpc.block_hash(info.blocks - 1)
    genesis = rpc.block_header(rpc.block_hash(0))
    assert genesis.previous_hash is None
    with pytest.raises(NotFound):
        rpc.block("00" * 32)
    with pytest.raises(NotFound):
        rpc.block_header("11" * 32)
    tips = rpc.chain_tips()
    assert tips[0]["hash"] == info.best_block_hash


def test_a_deposit_address_receives_coins_and_the_node_names_it(bitcoin_node: BcoinNode):
    """keys.py derives m/84'/1'/0'/0/i from the account vpub with the configured prefix;
    fund() pays it; the node's getblock shows the output to that very address."""
    rpc = bitcoin_node.rpc
    index = 7
    address = keys.deposit_address(index, VPUB_KEY, REGTEST)
    assert address.startswith("rb1q")
    answer = rpc.call("validateaddress", address)
    assert answer["isvalid"] is True
    funding = bitcoin_node.fund(address, 1_234_567)
    raw_block = rpc.call("getblock", funding.block_hash, True, True)
    raw_tx = next(t for t in raw_block["tx"] if t["txid"] == funding.txid)
    assert raw_tx["vout"][0]["scriptPubKey"]["addresses"] == [address]  # bcoin's own encoding
    block = rpc.block(funding.block_hash)
    tx = next(t for t in block.transactions if t.txid == funding.txid)
    out = tx.outputs[funding.vout]
    assert out.value == 1_234_567
    expected = keys.p2wpkh_script(keys.public_key_at(VPUB_KEY, keys.RECEIVE, index, REGTEST))
    assert out.script_pubkey == expected
    assert keys.script_address(out.script_pubkey, REGTEST) == address
    assert tx.block_hash == block.hash and tx.confirmations == 1 and not tx.is_coinbase
    assert block.transactions[0].is_coinbase
    assert sum(o.value for o in tx.outputs) + funding.fee == sum(
        c.value for c in [rpc.raw_transaction(i.txid).outputs[i.vout] for i in tx.inputs])


def test_amounts_are_exact_satoshis_even_in_bcoins_float_form(bitcoin_node: BcoinNode):
    """bcoin writes 7 sat as the JSON number 7e-08 and 12.5 BTC as 12.5: both become exact
    integers; a 21-million-BTC-scale value would be refused rather than rounded."""
    rpc = bitcoin_node.rpc
    address = fresh_address()
    funding = bitcoin_node.fund(address, 7)
    text = rpc._client.post(rpc.url, json={"method": "getrawtransaction",
                                           "params": [funding.txid, True]}).text
    assert '"value":7e-8' in text.replace(" ", "")
    tx = rpc.raw_transaction(funding.txid)
    assert tx.outputs[0].value == 7
    assert tx.raw == funding.raw and txid_of(tx.raw) == tx.txid
    coinbase = rpc.block(rpc.block_hash(1)).transactions[0]
    assert coinbase.outputs[0].value == 50 * 10**8


def test_transactions_and_mempool(bitcoin_node: BcoinNode):
    rpc = bitcoin_node.rpc
    funding = bitcoin_node.fund(fresh_address(), 50_000, mine=False, fee_rate=3, rbf=True)
    assert funding.txid in rpc.mempool_txids()
    entry = rpc.mempool_entry(funding.txid)
    # one P2WPKH input, two outputs: 141 vB with a 72-byte DER signature, 140 with the
    # 71-byte ones about half of all signatures are (no low-R grinding); the helper pays
    # the fee of the larger
    assert entry is not None and entry.fee == funding.fee and entry.vsize in (140, 141)
    assert entry.fee == 3 * 141
    tx = rpc.raw_transaction(funding.txid)
    assert tx.block_hash is None and tx.confirmations == 0 and tx.signals_rbf
    unspent = rpc.tx_out(funding.txid, 0)
    assert unspent is not None and unspent.value == 50_000 and unspent.confirmations == 0
    assert rpc.tx_out(funding.txid, 0, include_mempool=False) is None
    (block_hash,) = bitcoin_node.mine(1)
    assert rpc.mempool_entry(funding.txid) is None
    tx = rpc.raw_transaction(funding.txid)
    assert (tx.block_hash, tx.confirmations) == (block_hash, 1)
    assert rpc.tx_out(funding.txid, 0).confirmations == 1
    assert rpc.test_mempool_accept(funding.raw) is None  # bcoin cannot tell
    estimate = rpc.estimate_fee(6)
    assert estimate.sat_per_kvb is None and estimate.sat_per_vb is None  # bcoin's -1
    with pytest.raises(NotFound):
        rpc.raw_transaction("ab" * 32)
    with pytest.raises(Unsupported):
        rpc.call("scantxoutset", "start", [])
    with pytest.raises(Unsupported):
        rpc.call("testmempoolaccept", [funding.raw.hex()])


def test_what_addresses_hold_is_read_at_the_tip_whatever_the_mempool_does(
        bitcoin_node: BcoinNode):
    """bcoin's address index (REST) answers chain coins minus those a mempool transaction
    spends, plus the mempool's own; the adapter gives the confirmed UTXOs at the tip: an
    unconfirmed spend neither hides a coin nor adds its change, until it is mined."""
    node, rpc = bitcoin_node, bitcoin_node.rpc
    node.mine(1)
    holder = node.wallet  # the test wallet: hundreds of coinbase coins
    a, b = fresh_address(), fresh_address()
    scripts = {holder.script: holder.address,
               keys.validate_address(a, REGTEST).script_pubkey: a,
               keys.validate_address(b, REGTEST).script_pubkey: b}
    mined = node.fund(a, 12_345)
    before = rpc.address_utxos(scripts)
    assert before.height == rpc.block_count() and before.best_hash == rpc.best_block_hash()
    assert [(c.txid, c.vout, c.value, c.height) for c in before.coins if c.txid == mined.txid
            and c.script_pubkey != holder.script] == [(mined.txid, 0, 12_345, before.height)]
    assert all(c.height <= before.height for c in before.coins)
    pending = node.fund(b, 7_000, mine=False)  # spends one of the wallet's chain coins
    spent = rpc.raw_transaction(pending.txid).inputs[0]
    raw = node.rest(f"/coin/address/{holder.address}")
    assert not any(c["hash"] == spent.txid and c["index"] == spent.vout for c in raw)
    assert any(c["height"] == -1 for c in raw)  # bcoin's answer mixes in the mempool
    during = rpc.address_utxos(scripts)
    assert during == before  # the coin is still the wallet's at the tip; b has nothing yet
    assert rpc.prevouts([(spent.txid, spent.vout)])[(spent.txid, spent.vout)].script_pubkey \
        == holder.script
    node.mine(1)
    after = rpc.address_utxos(scripts)
    ops = {c.outpoint for c in after.coins}
    assert after.height == before.height + 1 and (spent.txid, spent.vout) not in ops
    b_script = keys.validate_address(b, REGTEST).script_pubkey
    assert [(c.outpoint, c.value, c.height) for c in after.coins
            if c.script_pubkey == b_script] == [((pending.txid, 0), 7_000, after.height)]
    assert after.total(before.height) == before.total() - \
        rpc.prevouts([(spent.txid, spent.vout)])[(spent.txid, spent.vout)].value
    with pytest.raises(NotFound):
        rpc.prevouts([("ab" * 32, 0)])


def test_batches_return_each_result_or_error_in_order(bitcoin_node: BcoinNode):
    rpc = bitcoin_node.rpc
    height = rpc.block_count()
    calls = [("getblockhash", [h]) for h in range(height - 2, height + 2)]
    results = rpc.batch(calls * 60)  # 240 calls: three HTTP requests
    assert len(results) == 240
    assert results[:3] == [rpc.block_hash(h) for h in range(height - 2, height + 1)]
    assert isinstance(results[3], NotFound)
    blocks = rpc.blocks(results[:3])
    assert [b.height for b in blocks] == [height - 2, height - 1, height]


def test_a_transaction_bcoin_drops_is_reported_as_rejected(bitcoin_node: BcoinNode):
    """bcoin's sendrawtransaction answers the txid even when its mempool refuses the
    transaction; the adapter notices it is not there. Sending accepted bytes again (in the
    mempool, or mined) is harmless."""
    rpc = BitcoinRPC(bitcoin_node.url, "hashhouse", bitcoin_node.api_key, dialect="bcoin",
                     accept_timeout=3)
    first = bitcoin_node.fund(fresh_address(), 10_000, mine=False)
    assert rpc.send_raw_transaction(first.raw) == first.txid  # already in the mempool
    # the same coin spent again to someone else: bcoin keeps the first (no BIP125 either)
    from bitcoinlib.transactions import Transaction

    spent = rpc.raw_transaction(first.txid).inputs[0]
    prev = rpc.raw_transaction(spent.txid).outputs[spent.vout]
    tx = Transaction(network="bitcoin", witness_type="segwit", version=2)
    tx.add_input(bytes.fromhex(spent.txid), spent.vout, keys=bitcoin_node.wallet.key.public(),
                 value=prev.value, witness_type="segwit", script_type="sig_pubkey")
    tx.add_output(prev.value - 10_000,
                  lock_script=keys.validate_address(fresh_address(), REGTEST).script_pubkey)
    tx.sign(bitcoin_node.wallet.key)
    double_spend = bytes.fromhex(tx.raw_hex())
    with pytest.raises(TransactionRejected, match="did not accept"):
        rpc.send_raw_transaction(double_spend)
    assert txid_of(double_spend) not in rpc.mempool_txids()
    bitcoin_node.mine(1)
    assert rpc.send_raw_transaction(first.raw) == first.txid  # already mined
    with pytest.raises(ValueError, match="not a serialized transaction"):
        rpc.send_raw_transaction("00")  # refused before anything is sent
    rpc.close()


def test_network_check(bitcoin_node: BcoinNode):
    rpc = bitcoin_node.rpc
    assert rpc.check_network(REGTEST).chain == "regtest"
    with pytest.raises(NetworkMismatch, match="prefix 'bcrt1'"):
        rpc.check_network(PRESETS["regtest-core"])
    with pytest.raises(NetworkMismatch, match="runs 'regtest' but CASINO_BTC_NETWORK is mainnet"):
        rpc.check_network(PRESETS["mainnet"])


def test_node_unavailable(bitcoin_node: BcoinNode):
    wrong = BitcoinRPC(bitcoin_node.url, "hashhouse", "not-the-key", dialect="bcoin")
    with pytest.raises(NodeUnavailable, match="HTTP 401"):
        wrong.block_count()
    wrong.close()
    from tests.support.services import free_port

    nobody = BitcoinRPC(f"http://127.0.0.1:{free_port()}", timeout=2, dialect="core")
    with pytest.raises(NodeUnavailable, match="cannot reach"):
        nobody.block_count()
    nobody.close()


# --- the helpers -------------------------------------------------------------------------

def test_mine_to_an_address(bitcoin_node: BcoinNode):
    address = keys.deposit_address(3, VPUB_KEY, REGTEST)
    (block_hash,) = bitcoin_node.mine(1, to=address)
    coinbase = bitcoin_node.rpc.block(block_hash).transactions[0]
    assert keys.script_address(coinbase.outputs[0].script_pubkey, REGTEST) == address


def test_reorg_drops_a_deposit_and_the_new_branch_replaces_the_blocks(bitcoin_node: BcoinNode):
    rpc = bitcoin_node.rpc
    funding = bitcoin_node.fund(fresh_address(), 40_000)
    bitcoin_node.mine(1)
    height = rpc.block_count()
    before = [rpc.block_hash(h) for h in (height - 1, height)]
    new = bitcoin_node.reorg(2)
    assert rpc.block_count() == height and len(new) == 2
    assert [rpc.block_hash(h) for h in (height - 1, height)] == new
    assert not set(new) & set(before)
    assert bitcoin_node.transaction(funding.txid) is None  # gone with its block
    with pytest.raises(NotFound):  # bcoin forgets invalidated blocks (Core: confirmations -1)
        rpc.block_header(before[0])


def test_reorg_can_keep_or_double_spend_the_dropped_transactions(bitcoin_node: BcoinNode):
    rpc = bitcoin_node.rpc
    kept = bitcoin_node.fund(fresh_address(), 30_000)
    new = bitcoin_node.reorg(1, then_mine=2, keep_txs=True)
    tx = rpc.raw_transaction(kept.txid)
    assert tx.block_hash == new[0] and tx.block_hash != kept.block_hash
    # a deposit replaced by a double spend in the competing branch
    victim = bitcoin_node.fund(fresh_address(), 20_000)
    spent = rpc.raw_transaction(victim.txid).inputs[0]
    from bitcoinlib.transactions import Transaction

    prev = rpc.raw_transaction(spent.txid).outputs[spent.vout]
    tx = Transaction(network="bitcoin", witness_type="segwit", version=2)
    tx.add_input(bytes.fromhex(spent.txid), spent.vout, keys=bitcoin_node.wallet.key.public(),
                 value=prev.value, witness_type="segwit", script_type="sig_pubkey")
    tx.add_output(prev.value - 500, lock_script=bitcoin_node.wallet.script)
    tx.sign(bitcoin_node.wallet.key)
    new = bitcoin_node.reorg(1, then_mine=2, txs=(tx.raw_hex(),))
    assert bitcoin_node.transaction(victim.txid) is None
    assert rpc.raw_transaction(txid_of(tx.raw_hex())).block_hash == new[0]
    assert rpc.tx_out(victim.txid, 0) is None


def test_fund_matures_new_coinbases_when_the_wallet_runs_dry(bitcoin_node: BcoinNode):
    original = bitcoin_node.wallet
    bitcoin_node.wallet = RegtestWallet()  # a key that owns nothing yet
    try:
        before = bitcoin_node.height
        funding = bitcoin_node.fund(fresh_address(), 100_000)
        # the coinbase, its maturity (with the margin a test's reorg may take), the payment
        assert bitcoin_node.height == before + 1 + COINBASE_MATURITY + REORG_MARGIN + 1
        tx = bitcoin_node.rpc.raw_transaction(funding.txid)
        assert tx.outputs[0].value == 100_000 and tx.confirmations == 1
    finally:
        bitcoin_node.wallet = original


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its new parent to reap it counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


@pytest.mark.slow
def test_the_node_dies_with_the_process_that_started_it(tmp_path: Path):
    """No leftover bcoin: a test process killed with SIGKILL takes its node with it."""
    script = tmp_path / "start.py"
    script.write_text(
        "import sys, time\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parents[3])!r})\n"
        "from tests.support.bitcoin import BcoinNode\n"
        "node = BcoinNode().start()\n"
        "print(node.proc.pid, node.root, flush=True)\n"
        "time.sleep(600)\n")
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    root = ""
    try:
        pid_text, root = proc.stdout.readline().split()
        pid = int(pid_text)
        os.kill(pid, 0)  # running
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if not _alive(pid):
                break
            time.sleep(0.1)
        else:
            os.kill(pid, signal.SIGKILL)
            pytest.fail("bcoin outlived the process that started it")
    finally:
        if proc.poll() is None:
            proc.kill()
        if root:
            shutil.rmtree(root, ignore_errors=True)  # the killed process could not remove it


def test_fresh_addresses_are_regtest_p2wpkh():
    hrp, version, program, _ = bech32.decode_segwit(fresh_address())
    assert (hrp, version, len(program)) == ("rb", 0, 20)
