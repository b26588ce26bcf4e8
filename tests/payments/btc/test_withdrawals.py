"""Bitcoin withdrawals on a real bcoin regtest node: requests validated (network-aware
addresses) and reserved through the shared payments/withdrawals.py; the btc-batch job pays
the queue in one transaction (exact outputs, change to a recorded change address, the
miner fee booked); crashes before and after the broadcast pay once; a fee bump (RBF, mined
through a reorg since bcoin relays no replacement) confirms once; dust change goes to the
fee; a hot wallet too small pays the oldest that fit and alerts; reorgs of an unconfirmed
and of a settled batch. The ledger's invariants hold after each test.

The hot wallet's coins are recorded by tests/support/btc_watcher_standin.py, a stand-in
for the watcher's bookkeeping (payments/btc/watcher.py is being built in parallel)."""

from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from casino_app.core.db import ledger_tx
from casino_app.core.settings import reset_settings_cache
from casino_app.payments import ledger, sender, withdrawals
from casino_app.payments.btc import bech32, keys
from casino_app.payments.btc.batcher import Batcher
from casino_app.payments.btc.models import BtcChangeAddress, BtcUtxo
from casino_app.payments.btc.network import PRESETS
from casino_app.payments.btc.rpc import BitcoinRPC
from casino_app.payments.btc.sender import DUST, Plan, vsize
from casino_app.payments.models import PendingTransfer
from casino_app.payments.signer import btc as signer
from casino_app.payments.withdrawal_models import (
    Withdrawal,
    WithdrawalBatch,
    WithdrawalBatchTx,
)
from tests.payments.eth.helpers import balance as _balance
from tests.payments.eth.helpers import fund as _credit
from tests.payments.eth.helpers import invariants_clean as _invariants_clean
from tests.support.bitcoin import NETWORK, BcoinNode, fresh_address
from tests.support.btc_watcher_standin import fund_hot, record_change

pytestmark = pytest.mark.bitcoin

MNEMONIC = "abandon " * 11 + "about"
FEE = 1_000           # sat, the house's fee per withdrawal
SEQUENCE_RBF = 0xFFFFFFFD


class Crash(Exception):
    """A simulated process death at a fault point."""


def _env(node: BcoinNode, monkeypatch: pytest.MonkeyPatch, **extra: str) -> None:
    monkeypatch.setenv("CASINO_ETH_HOT_SEED", MNEMONIC)
    monkeypatch.setenv("CASINO_BTC_NETWORK", "regtest-bcoin")
    monkeypatch.setenv("CASINO_BTC_RPC_URL", node.url)
    monkeypatch.setenv("CASINO_BTC_RPC_USER", "hashhouse")
    monkeypatch.setenv("CASINO_BTC_RPC_PASSWORD", node.api_key)
    monkeypatch.setenv("CASINO_BTC_RPC_DIALECT", "bcoin")
    monkeypatch.setenv("CASINO_BTC_XPUB", signer.account_xpub(NETWORK, MNEMONIC))
    monkeypatch.setenv("CASINO_BTC_WITHDRAW_MIN", "10000")
    monkeypatch.setenv("CASINO_BTC_WITHDRAW_MAX", "100000000")
    monkeypatch.setenv("CASINO_BTC_WITHDRAW_FEE", str(FEE))
    for name, value in extra.items():
        monkeypatch.setenv(name, value)
    reset_settings_cache()
    signer.forget()


@pytest.fixture
def env(app_env, bitcoin_node: BcoinNode, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN001, ANN201
    """SQLite; BTC configured on the session's bcoin node; the abandon-about seed."""
    _env(bitcoin_node, monkeypatch)
    monkeypatch.setattr(sender, "fault", None)
    yield bitcoin_node
    signer.forget()


@pytest.fixture
def both(any_env: str, bitcoin_node: BcoinNode, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """The same on SQLite and on PostgreSQL."""
    _env(bitcoin_node, monkeypatch)
    monkeypatch.setattr(sender, "fault", None)
    yield bitcoin_node
    signer.forget()


def _rpc(node: BcoinNode) -> BitcoinRPC:
    # a short wait for bcoin's acceptance: a refused replacement is known in 2 s
    return BitcoinRPC(node.url, "hashhouse", node.api_key, timeout=120, dialect="bcoin",
                      accept_timeout=2)


def _batcher(node: BcoinNode, **kw) -> Batcher:  # noqa: ANN003
    kw.setdefault("confirmations", 1)
    kw.setdefault("fee_bump_seconds", 3600)
    return Batcher(_rpc(node), **kw)


def _hot() -> str:
    return signer.hot_address(NETWORK)


def _batches() -> list[WithdrawalBatch]:
    with ledger_tx(readonly=True) as s:
        rows = s.execute(select(WithdrawalBatch).order_by(WithdrawalBatch.id)).scalars().all()
        s.expunge_all()
        return list(rows)


def _versions(batch_id: int) -> list[WithdrawalBatchTx]:
    with ledger_tx(readonly=True) as s:
        rows = s.execute(select(WithdrawalBatchTx).where(
            WithdrawalBatchTx.batch_id == batch_id).order_by(WithdrawalBatchTx.version)
        ).scalars().all()
        s.expunge_all()
        return list(rows)


def _utxos() -> dict[tuple[str, int], tuple[str, str | None]]:
    with ledger_tx(readonly=True) as s:
        return {(u.txid, u.vout): (u.state, u.spent_by)
                for u in s.execute(select(BtcUtxo)).scalars()}


def _house(code: str, kind: str) -> int:
    with ledger_tx(readonly=True) as s:
        return ledger.balance_of(s, ledger.house_account(s, code, kind)).balance


def _script(address: str) -> bytes:
    return keys.validate_address(address, NETWORK).script_pubkey


def _crash_at(b: Batcher, point: str) -> None:
    def die(at: str, batch_id: int) -> None:
        if at == point:
            raise Crash(at)

    sender.fault = die
    try:
        with pytest.raises(Crash):
            b.run()
    finally:
        sender.fault = None


def env_spent_once(node: BcoinNode, txid: str, vout: int) -> str:
    """The one transaction of the chain that spends ``txid:vout`` (bcoin's address index:
    every transaction touching the coin's address)."""
    address = keys.script_address(node.rpc.raw_transaction(txid).outputs[vout].script_pubkey,
                                  NETWORK)
    spenders = [t["hash"] for t in node.rest(f"/tx/address/{address}")
                if any(i["prevout"]["hash"] == txid and i["prevout"]["index"] == vout
                       for i in t["inputs"])]
    assert len(spenders) == 1, spenders
    return spenders[0]


def _anomalies(name: str) -> float:
    return REGISTRY.get_sample_value("casino_btc_payment_anomalies_total",
                                     {"anomaly": name}) or 0.0


# Destinations of every kind the platform pays (random programs: nobody holds them).
def _p2wsh() -> str:
    return bech32.encode_segwit(NETWORK.bech32_hrp, 0, secrets.token_bytes(32))


def _p2pkh() -> str:
    return keys.b58check_encode(bytes([NETWORK.p2pkh_version]) + secrets.token_bytes(20))


def _p2sh() -> str:
    return keys.b58check_encode(bytes([NETWORK.p2sh_version]) + secrets.token_bytes(20))


# --- requests -------------------------------------------------------------------------------

def test_refused_requests_reserve_nothing(env: BcoinNode) -> None:
    _credit("p-val", "BTC", 5_000_000)
    good = fresh_address()
    w = withdrawals.request_withdrawal("p-val", "BTC", "0.001", good, "k-first")
    assert (w.amount, w.fee, w.state, w.currency) == (100_000, FEE, "queued", "BTC")

    def count() -> tuple[int, int]:
        with ledger_tx(readonly=True) as s:
            return (s.execute(select(func.count()).select_from(Withdrawal)).scalar_one(),
                    s.execute(select(func.count()).select_from(PendingTransfer)).scalar_one())

    before, rows_before = _balance("p-val", "BTC"), count()
    mainnet = keys.address_at(signer.account_xpub(PRESETS["mainnet"], MNEMONIC), 0, 3,
                              PRESETS["mainnet"])
    typo = good[:-1] + ("q" if good[-1] != "q" else "p")
    with ledger_tx() as s:  # a change address of ours, as the sender records it
        s.add(BtcChangeAddress(chain="bitcoin", key_index=1,
                               address=keys.address_at(signer.account_xpub(NETWORK, MNEMONIC),
                                                       1, 1, NETWORK),
                               script_pubkey="00", batch_id=None))
    change = keys.address_at(signer.account_xpub(NETWORK, MNEMONIC), 1, 1, NETWORK)
    cases = [
        (mainnet, "address for Bitcoin mainnet; this casino pays on Bitcoin regtest"),
        (bech32.encode_segwit("tb", 0, bytes(20)), "address for Bitcoin testnet or signet"),
        (bech32.encode_segwit("bcrt", 0, bytes(20)), "address for Bitcoin regtest;"),
        ("1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2", "address for Bitcoin mainnet"),
        ("0x52908400098527886E0F7030069857D2E4169EE7", "not a Bitcoin address"),
        (typo, "not a valid Bitcoin address"),
        (good.upper()[:10] + good[10:], "not a valid Bitcoin address"),
        (bech32.encode_segwit(NETWORK.bech32_hrp, 2, bytes(20)), "future segwit version"),
        (_hot(), "casino's own"),
        (change, "casino's own"),
        ("", "Enter a Bitcoin address"),
    ]
    for i, (address, text) in enumerate(cases):
        with pytest.raises(withdrawals.InvalidAddress, match=text):
            withdrawals.request_withdrawal("p-val", "BTC", "0.001", address, f"k-bad-{i}")
    amounts = [("0.00009", withdrawals.InvalidAmount, "smallest withdrawal is 0.0001 BTC"),
               ("1.1", withdrawals.InvalidAmount, "largest withdrawal is 1 BTC"),
               ("0.000000001", withdrawals.InvalidAmount, "at most 8 decimals"),
               ("0,001", withdrawals.InvalidAmount, "Use a dot for decimals"),
               ("0.05", withdrawals.InsufficientBalance, "withdrawable")]
    for i, (amount, exc, text) in enumerate(amounts):
        with pytest.raises(exc, match=text):
            withdrawals.request_withdrawal("p-val", "BTC", amount, good, f"k-amt-{i}")
    assert _balance("p-val", "BTC") == before and count() == rows_before
    # bech32 is stored lower case: the same request in upper case is the same withdrawal
    again = withdrawals.request_withdrawal("p-val", "BTC", 100_000, good.upper(), "k-first")
    assert again.id == w.id and again.replayed
    assert before.reserved == 100_000 + FEE
    _invariants_clean()


def test_the_minimum_is_never_below_the_dust_limit(env: BcoinNode,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASINO_BTC_WITHDRAW_MIN", "1")
    reset_settings_cache()
    assert withdrawals.limits("BTC").minimum == 546  # P2PKH's dust limit: any address
    _credit("p-dust", "BTC", 100_000)
    with pytest.raises(withdrawals.InvalidAmount, match="smallest withdrawal is 0.00000546"):
        withdrawals.request_withdrawal("p-dust", "BTC", 545, _p2pkh(), "k-dust")


def test_large_withdrawals_wait_for_staff_and_the_batcher_leaves_them(
        env: BcoinNode, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASINO_BTC_WITHDRAW_LARGE", "2000000")
    reset_settings_cache()
    _credit("p-large", "BTC", 10_000_000)
    fund_hot(env, _hot(), 5_000_000)
    small = withdrawals.request_withdrawal("p-large", "BTC", 1_999_999, fresh_address(), "k-s")
    large = withdrawals.request_withdrawal("p-large", "BTC", 2_000_000, fresh_address(), "k-l")
    assert (small.state, large.state) == ("queued", "awaiting_approval")
    b = _batcher(env)
    assert b.run().created == 1
    env.mine(1)
    b.run()
    assert withdrawals.get_withdrawal(small.id).state == "confirmed"
    assert withdrawals.get_withdrawal(large.id).state == "awaiting_approval"
    assert b.run().created == 0
    assert withdrawals.reject_withdrawal(large.id, 7, "no PSBT flow yet").state == "rejected"
    assert _balance("p-large", "BTC") == ledger.Balance(
        "BTC", 10_000_000 - 1_999_999 - FEE, 0)
    _invariants_clean()


# --- batches --------------------------------------------------------------------------------

def test_twenty_withdrawals_are_paid_in_one_transaction(both: BcoinNode) -> None:
    node = both
    players = [f"p-b{i}" for i in range(4)]
    for p in players:
        _credit(p, "BTC", 100_000_000)
    big = fund_hot(node, _hot(), 3_000_000)
    small = fund_hot(node, _hot(), 200_000)
    kinds = [fresh_address] * 17 + [_p2wsh, _p2pkh, _p2sh]
    wanted: dict[int, tuple[str, int]] = {}
    owner: dict[int, str] = {}
    for i, make in enumerate(kinds):
        to, amount = make(), 10_000 + i * 12_345
        w = withdrawals.request_withdrawal(players[i % 4], "BTC", amount, to, f"k-20-{i}")
        wanted[w.id], owner[w.id] = (to, amount), players[i % 4]
    paid = sum(a for _, a in wanted.values())
    b = _batcher(node)
    res = b.run()
    assert (res.created, res.broadcast) == (1, 1)
    [batch] = _batches()
    [v0] = _versions(batch.id)
    plan = Plan.from_json(batch.call_data)
    # largest first: the big coin alone pays it; the small one stays unspent
    assert [c.outpoint for c in plan.inputs] == [(big.txid, big.vout)]
    assert _utxos()[(big.txid, big.vout)] == ("reserved", v0.tx_hash)
    assert _utxos()[(small.txid, small.vout)] == ("unspent", None)
    # the node took it: its fee and size are what we recorded; every input signals RBF
    entry = node.rpc.mempool_entry(v0.tx_hash)
    assert entry is not None and entry.fee == v0.max_priority_fee_per_gas
    tx = node.rpc.raw_transaction(v0.tx_hash)
    assert all(i.sequence == SEQUENCE_RBF for i in tx.inputs)
    rate = v0.max_fee_per_gas
    assert tx.vsize <= batch.gas_limit == vsize(1, [8 + 1 + len(o.script_pubkey)
                                                    for o in tx.outputs])
    assert entry.fee == rate * batch.gas_limit and entry.fee >= rate * tx.vsize
    node.mine(1)
    res = b.run()
    assert (res.confirmed, res.paid) == (1, 20)
    [batch] = _batches()
    assert (batch.state, batch.tx_hash, batch.total) == ("confirmed", v0.tx_hash, paid)
    mined = node.rpc.raw_transaction(batch.tx_hash)
    assert mined.confirmations == 1 and batch.block_hash == mined.block_hash
    # each destination received exactly its amount, in this one transaction
    outputs = [(o.script_pubkey, o.value) for o in mined.outputs]
    assert sorted(outputs[:20]) == sorted((_script(to), a) for to, a in wanted.values())
    # the change went back to our change address m/84'/1'/0'/1/1, as recorded
    with ledger_tx(readonly=True) as s:
        [change] = s.execute(select(BtcChangeAddress)).scalars().all()
    assert (change.key_index, change.batch_id, batch.to_address) == (1, batch.id, change.address)
    assert change.address == keys.address_at(signer.account_xpub(NETWORK, MNEMONIC), 1, 1,
                                             NETWORK)
    fee = int(batch.gas_fee_wei)
    assert outputs[20] == (bytes.fromhex(change.script_pubkey), 3_000_000 - paid - fee)
    assert fee == v0.max_priority_fee_per_gas and batch.gas_used == mined.vsize
    # the ledger: reservations posted, house fees minus the miner fee, custody = coins held
    assert _house("BTC", "fees") == 20 * FEE - fee
    for p in players:
        mine = [a for wid, (_, a) in wanted.items() if owner[wid] == p]
        assert _balance(p, "BTC") == ledger.Balance(
            "BTC", 100_000_000 - sum(mine) - len(mine) * FEE, 0)
    assert {v.state for p in players for v in withdrawals.withdrawals_of(p)} == {"confirmed"}
    assert all(v.tx_hash == batch.tx_hash for v in withdrawals.withdrawals_of(players[0]))
    # custody is minus the coins we hold for the books: what left is the payments + miner fee
    assert _house("BTC", "custody") == -4 * 100_000_000 + paid + fee
    # the change is the hot wallet's next coin: a later batch spends it with key (1, 1)
    coin = record_change(node, batch.tx_hash)
    assert coin is not None and coin.amount == 3_000_000 - paid - fee
    to = fresh_address()
    later = withdrawals.request_withdrawal(players[0], "BTC", 300_000, to, "k-20-later")
    res = b.run()
    assert res.created == 1
    second = _batches()[1]
    assert [c.outpoint for c in Plan.from_json(second.call_data).inputs] == \
        [(coin.txid, coin.vout)]
    assert second.nonce == 1 and second.to_address != batch.to_address  # change index 2
    node.mine(1)
    assert b.run().paid == 1
    assert withdrawals.get_withdrawal(later.id).state == "confirmed"
    _invariants_clean()


def test_a_crash_between_recording_and_broadcast_sends_the_same_bytes_once(
        both: BcoinNode) -> None:
    node = both
    _credit("p-crash", "BTC", 10_000_000)
    coin = fund_hot(node, _hot(), 2_000_000)
    tos = [fresh_address() for _ in range(3)]
    for i, to in enumerate(tos):
        withdrawals.request_withdrawal("p-crash", "BTC", 100_000 * (i + 1), to, f"k-c{i}")
    _crash_at(_batcher(node), "signed")
    [batch] = _batches()
    [v0] = _versions(batch.id)
    assert batch.state == "signed" and v0.raw_tx
    assert node.transaction(v0.tx_hash) is None          # never broadcast
    assert _utxos()[(coin.txid, coin.vout)] == ("reserved", v0.tx_hash)
    restarted = _batcher(node)                           # a new process
    res = restarted.run()
    assert (res.rebroadcast, res.created, res.broadcast) == (1, 0, 0)
    sent = node.transaction(v0.tx_hash)
    assert sent is not None and sent.raw.hex() == v0.raw_tx  # the same signed bytes
    assert v0.tx_hash in node.rpc.mempool_txids()
    node.mine(1)
    res = restarted.run()
    assert (res.confirmed, res.paid, res.created) == (1, 3, 0)
    for _ in range(2):
        assert not any(restarted.run().as_dict().values())
    [batch] = _batches()
    assert batch.tx_hash == v0.tx_hash and len(_versions(batch.id)) == 1
    assert env_spent_once(node, coin.txid, coin.vout) == v0.tx_hash
    outs = {(o.script_pubkey, o.value) for o in node.rpc.raw_transaction(v0.tx_hash).outputs}
    assert {(_script(t), 100_000 * (i + 1)) for i, t in enumerate(tos)} <= outs
    assert _balance("p-crash", "BTC") == ledger.Balance(
        "BTC", 10_000_000 - 600_000 - 3 * FEE, 0)
    _invariants_clean()


def test_a_crash_after_broadcast_before_recording_it_settles_once(both: BcoinNode) -> None:
    node = both
    _credit("p-crash2", "BTC", 10_000_000)
    fund_hot(node, _hot(), 1_000_000)
    to = fresh_address()
    withdrawals.request_withdrawal("p-crash2", "BTC", "0.0025", to, "k-c2")
    _crash_at(_batcher(node), "broadcast")
    [batch] = _batches()
    [v0] = _versions(batch.id)
    assert batch.state == "signed" and v0.tx_hash in node.rpc.mempool_txids()
    restarted = _batcher(node)
    res = restarted.run()  # the node has it: nothing is sent again, nothing new signed
    assert not any(res.as_dict().values())
    node.mine(1)
    res = restarted.run()
    assert (res.confirmed, res.paid, res.rebroadcast, res.created) == (1, 1, 0, 0)
    assert not any(restarted.run().as_dict().values())
    assert _balance("p-crash2", "BTC") == ledger.Balance("BTC", 10_000_000 - 250_000 - FEE, 0)
    fee = int(_batches()[0].gas_fee_wei)
    assert _house("BTC", "fees") == FEE - fee
    _invariants_clean()


def test_a_fee_bump_confirms_once_with_the_replacements_fee(both: BcoinNode) -> None:
    """Not mined in time: a replacement over the same coin with a higher fee (taken from
    the change) is recorded, then refused by bcoin (no BIP125 replacement): the original
    stays in its mempool and is waited for. The replacement is mined instead (through a
    reorg, the only way past bcoin's mempool): the batch settles once, with its fee."""
    node = both
    _credit("p-bump", "BTC", 10_000_000)
    coin = fund_hot(node, _hot(), 1_000_000)
    node.mine(1)  # a block above the funding that the reorg below can replace
    tos = [fresh_address(), _p2wsh()]
    for i, to in enumerate(tos):
        withdrawals.request_withdrawal("p-bump", "BTC", 200_000, to, f"k-bump-{i}")
    b = _batcher(node, fee_bump_seconds=0)
    assert b.run().broadcast == 1
    res = b.run()  # not mined: bumped
    assert (res.bumped, res.broadcast, res.rebroadcast) == (1, 0, 0)
    [batch] = _batches()
    v0, v1 = _versions(batch.id)
    assert v1.max_fee_per_gas >= -(-v0.max_fee_per_gas * 5 // 4)
    assert v1.max_priority_fee_per_gas >= v0.max_priority_fee_per_gas + batch.gas_limit
    t0, t1 = node.rpc.raw_transaction(v0.tx_hash), None
    assert v0.tx_hash in node.rpc.mempool_txids()       # bcoin kept the original
    assert node.transaction(v1.tx_hash) is None         # and refused the replacement
    assert _utxos()[(coin.txid, coin.vout)] == ("reserved", v1.tx_hash)
    plan = Plan.from_json(batch.call_data)
    assert [c.outpoint for c in plan.inputs] == [(coin.txid, coin.vout)]
    # the replacement is mined instead of the original
    node.reorg(1, txs=[bytes.fromhex(v1.raw_tx)])
    t1 = node.rpc.raw_transaction(v1.tx_hash)
    assert [o.value for o in t1.outputs[:2]] == [o.value for o in t0.outputs[:2]]
    assert t1.outputs[2].value == t0.outputs[2].value - (v1.max_priority_fee_per_gas -
                                                         v0.max_priority_fee_per_gas)
    res = _batcher(node).run()
    assert (res.confirmed, res.paid) == (1, 2)
    [batch] = _batches()
    assert batch.state == "confirmed" and batch.tx_hash == v1.tx_hash
    assert node.transaction(v0.tx_hash) is None          # the original never was
    assert int(batch.gas_fee_wei) == v1.max_priority_fee_per_gas
    assert _house("BTC", "fees") == 2 * FEE - v1.max_priority_fee_per_gas
    assert _utxos()[(coin.txid, coin.vout)] == ("reserved", v1.tx_hash)
    assert not any(_batcher(node).run().as_dict().values())
    assert _balance("p-bump", "BTC") == ledger.Balance("BTC", 10_000_000 - 2 * 201_000, 0)
    _invariants_clean()


def test_dust_change_goes_to_the_fee(env: BcoinNode, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CASINO_BTC_FEE_FLOOR", "CASINO_BTC_FEE_CEILING", "CASINO_BTC_FEE_FALLBACK"):
        monkeypatch.setenv(name, "5")  # a fixed rate, whatever the node estimates
    reset_settings_cache()
    _credit("p-dust", "BTC", 1_000_000)
    to = fresh_address()
    out = 8 + 1 + 22
    with_change, without = vsize(1, [out, out]), vsize(1, [out])
    assert (with_change, without) == (141, 110)
    left = DUST - 1  # what a change would hold: below the dust limit
    coin = fund_hot(env, _hot(), 100_000 + 5 * with_change + left)
    withdrawals.request_withdrawal("p-dust", "BTC", 100_000, to, "k-dust")
    b = _batcher(env)
    assert b.run().broadcast == 1
    env.mine(1)
    assert b.run().paid == 1
    [batch] = _batches()
    tx = env.rpc.raw_transaction(batch.tx_hash)
    assert [(o.script_pubkey, o.value) for o in tx.outputs] == [(_script(to), 100_000)]
    assert int(batch.gas_fee_wei) == coin.amount - 100_000 == 5 * with_change + left
    assert batch.to_address == ""
    with ledger_tx(readonly=True) as s:  # no change address was taken
        assert s.execute(select(func.count()).select_from(BtcChangeAddress)).scalar_one() == 0
    assert _house("BTC", "fees") == FEE - int(batch.gas_fee_wei)
    _invariants_clean()


def test_not_enough_coins_pays_the_oldest_that_fit_and_alerts(env: BcoinNode) -> None:
    _credit("p-short", "BTC", 10_000_000)
    fund_hot(env, _hot(), 300_000)
    ids = [withdrawals.request_withdrawal("p-short", "BTC", amount, fresh_address(),
                                          f"k-short-{i}").id
           for i, amount in enumerate((500_000, 100_000, 150_000, 100_000))]
    before = _anomalies("hot_wallet_short")
    b = _batcher(env)
    res = b.run()
    assert (res.created, res.short, res.anomalies) == (1, 2, 1)
    assert _anomalies("hot_wallet_short") == before + 1
    states = [withdrawals.get_withdrawal(i).state for i in ids]
    assert states == ["queued", "batched", "batched", "queued"]
    env.mine(1)
    res = b.run()
    assert (res.paid, res.created, res.short) == (2, 0, 2)  # still short: alerted again
    assert _anomalies("hot_wallet_short") == before + 2
    fund_hot(env, _hot(), 1_000_000)  # refilled: the rest is paid
    assert b.run().created == 1
    env.mine(1)
    assert b.run().paid == 2
    assert {withdrawals.get_withdrawal(i).state for i in ids} == {"confirmed"}
    assert _balance("p-short", "BTC").reserved == 0
    _invariants_clean()


def test_an_unconfirmed_batch_dropped_by_a_reorg_is_sent_again(env: BcoinNode) -> None:
    _credit("p-reorg", "BTC", 10_000_000)
    fund_hot(env, _hot(), 1_000_000)
    to = fresh_address()
    withdrawals.request_withdrawal("p-reorg", "BTC", 400_000, to, "k-reorg")
    b = _batcher(env, confirmations=2)
    assert b.run().broadcast == 1
    [batch] = _batches()
    [v0] = _versions(batch.id)
    env.mine(1)
    assert not any(b.run().as_dict().values())  # 1 of 2 confirmations
    env.reorg(1)  # bcoin forgets the dropped block's transactions
    assert env.transaction(v0.tx_hash) is None
    res = b.run()
    assert (res.rebroadcast, res.created, res.bumped) == (1, 0, 0)
    assert env.rpc.raw_transaction(v0.tx_hash).raw.hex() == v0.raw_tx
    env.mine(2)
    assert b.run().paid == 1
    assert _balance("p-reorg", "BTC") == ledger.Balance("BTC", 10_000_000 - 401_000, 0)
    _invariants_clean()


def test_a_settled_batch_dropped_by_a_deep_reorg_is_alerted_and_sent_again(
        env: BcoinNode) -> None:
    _credit("p-deep", "BTC", 10_000_000)
    fund_hot(env, _hot(), 1_000_000)
    withdrawals.request_withdrawal("p-deep", "BTC", 400_000, fresh_address(), "k-deep")
    b = _batcher(env)
    b.run()
    env.mine(1)
    assert b.run().confirmed == 1
    [batch] = _batches()
    fees = _house("BTC", "fees")
    before = _anomalies("settled_batch_reorged")
    env.reorg(1)  # deeper than the confirmations (1): the settled transaction is gone
    assert env.transaction(batch.tx_hash) is None
    res = b.run()
    assert (res.reorged, res.anomalies) == (1, 1)
    assert _anomalies("settled_batch_reorged") == before + 1
    assert batch.tx_hash in env.rpc.mempool_txids()  # the kept raw bytes, sent again
    env.mine(1)
    res = b.run()
    assert not any(res.as_dict().values())
    [again] = _batches()  # mined again one block higher (the reorg's block came first)
    assert again.block_number == batch.block_number + 1
    assert again.block_hash == env.rpc.raw_transaction(batch.tx_hash).block_hash
    assert _house("BTC", "fees") == fees  # booked once
    assert withdrawals.withdrawals_of("p-deep")[0].state == "confirmed"
    _invariants_clean()


def test_btc_batch_job_is_registered_with_a_node_and_pays(
        env: BcoinNode, monkeypatch: pytest.MonkeyPatch) -> None:
    from casino_app.jobs.builtin import SIGNING_JOBS, builtin_jobs
    from casino_app.payments.btc import batcher

    monkeypatch.setenv("CASINO_BTC_BATCH_SECONDS", "30")
    monkeypatch.setenv("CASINO_BTC_CONFIRMATIONS", "1")
    reset_settings_cache()
    jobs = {j.name: j for j in builtin_jobs()}
    assert jobs["btc-batch"].interval == 30 and "btc-batch" in SIGNING_JOBS
    assert "btc-batch" not in {j.name for j in builtin_jobs(signing=False)}
    monkeypatch.setattr(batcher, "_batcher", None)
    _credit("p-job", "BTC", 1_000_000)
    fund_hot(env, _hot(), 1_000_000)
    to = fresh_address()
    withdrawals.request_withdrawal("p-job", "BTC", "0.003", to, "k-job")
    assert jobs["btc-batch"].func()["broadcast"] == 1
    env.mine(1)
    assert jobs["btc-batch"].func()["paid"] == 1
    monkeypatch.setenv("CASINO_BTC_RPC_URL", "")
    reset_settings_cache()
    assert "btc-batch" not in {j.name for j in builtin_jobs()}
    _invariants_clean()


def test_the_web_side_does_not_import_the_signer() -> None:
    probe = ("import sys, casino_app.payments.withdrawals, casino_app.payments.btc.adapter, "
             "casino_app.payments.btc.keys; print(sorted(m for m in sys.modules if "
             "m.startswith('casino_app.payments.signer') or m in "
             "('casino_app.payments.btc.sender', 'casino_app.payments.btc.batcher')))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[3]).stdout
    assert out.strip() == "[]"
