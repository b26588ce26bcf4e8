"""Bitcoin withdrawals on a real bcoin regtest node: requests validated (network-aware
addresses) and reserved through the shared payments/withdrawals.py; the btc-batch job pays
the queue in one transaction (exact outputs, change to a recorded change address, the
miner fee booked); crashes before and after the broadcast pay once; a fee bump (RBF, mined
through a reorg since bcoin relays no replacement) confirms once; dust change goes to the
fee; a hot wallet too small pays the oldest that fit and alerts; reorgs of an unconfirmed
and of a settled batch. The ledger's invariants hold after each test.

The hot wallet's coins, the batches' change and the spends are recorded by the real
watcher (payments/btc/watcher.py), one pass after the blocks a test mined (``env.poll``).
Where a test needs the watcher NOT to have seen a block yet (a coin on chain that the
batcher cannot know of, a spend it has not recorded), it simply polls later; nothing
writes ``btc_utxos`` but the watcher. Each test has its own seed (its own hot wallet), so
the session's node serves them all."""

from __future__ import annotations

import hashlib
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
from casino_app.payments.btc.sender import DUST, Coin, Output, Plan, fit, select_coins, vsize
from casino_app.payments.btc.watcher import Watcher
from casino_app.payments.models import PendingTransfer
from casino_app.payments.signer import btc as signer
from casino_app.payments.signer.seed import _mnemonic
from casino_app.payments.withdrawal_models import (
    Withdrawal,
    WithdrawalBatch,
    WithdrawalBatchTx,
)
from tests.payments.eth.helpers import balance as _balance
from tests.payments.eth.helpers import fund as _credit
from tests.payments.eth.helpers import invariants_clean as _invariants_clean
from tests.support.bitcoin import NETWORK, BcoinNode, fresh_address

pytestmark = pytest.mark.bitcoin

MNEMONIC = "abandon " * 11 + "about"  # the coin-selection tests' keys (no node)
FEE = 1_000           # sat, the house's fee per withdrawal
SEQUENCE_RBF = 0xFFFFFFFD


class Crash(Exception):
    """A simulated process death at a fault point."""


@dataclass(frozen=True)
class RecordedCoin:
    """A coin of ours as the watcher recorded it (``btc_utxos``)."""

    txid: str
    vout: int
    amount: int


class Env:
    """The session's node (its calls pass through: ``mine``, ``fund``, ``rpc``...), this
    test's own seed, and the real watcher, started at the node's height."""

    def __init__(self, node: BcoinNode, words: str) -> None:
        self.node, self.words = node, words
        self.watcher = Watcher(node.rpc, start_height=node.height, confirmations=1)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.node, name)

    def poll(self) -> None:
        """One pass of the watcher: what the test's blocks (and the mempool) hold."""
        self.watcher.poll()

    def coin(self, txid: str, role: str | None = None) -> RecordedCoin:
        with ledger_tx(readonly=True) as s:
            q = select(BtcUtxo).where(BtcUtxo.txid == txid)
            if role is not None:
                q = q.where(BtcUtxo.role == role)
            row = s.execute(q).scalar_one()
            return RecordedCoin(row.txid, row.vout, row.amount)

    def fund_hot(self, sats: int) -> RecordedCoin:
        """Pay the hot wallet on the node (one block); the watcher records the coin."""
        f = self.node.fund(_hot(), sats)
        self.poll()
        return self.coin(f.txid, "hot")


def _env(node: BcoinNode, monkeypatch: pytest.MonkeyPatch, **extra: str) -> Env:
    words = _mnemonic().to_mnemonic(secrets.token_bytes(32))  # this test's own wallet
    monkeypatch.setenv("CASINO_ETH_HOT_SEED", words)
    monkeypatch.setenv("CASINO_BTC_NETWORK", "regtest-bcoin")
    monkeypatch.setenv("CASINO_BTC_RPC_URL", node.url)
    monkeypatch.setenv("CASINO_BTC_RPC_USER", "hashhouse")
    monkeypatch.setenv("CASINO_BTC_RPC_PASSWORD", node.api_key)
    monkeypatch.setenv("CASINO_BTC_RPC_DIALECT", "bcoin")
    monkeypatch.setenv("CASINO_BTC_XPUB", signer.account_xpub(NETWORK, words))
    monkeypatch.setenv("CASINO_BTC_WITHDRAW_MIN", "10000")
    monkeypatch.setenv("CASINO_BTC_WITHDRAW_MAX", "100000000")
    monkeypatch.setenv("CASINO_BTC_WITHDRAW_FEE", str(FEE))
    for name, value in extra.items():
        monkeypatch.setenv(name, value)
    reset_settings_cache()
    signer.forget()
    return Env(node, words)


@pytest.fixture
def env(app_env, bitcoin_node: BcoinNode, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN001, ANN201
    """SQLite; BTC configured on the session's bcoin node; this test's own seed."""
    e = _env(bitcoin_node, monkeypatch)
    monkeypatch.setattr(sender, "fault", None)
    yield e
    signer.forget()


@pytest.fixture
def both(any_env: str, bitcoin_node: BcoinNode, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """The same on SQLite and on PostgreSQL."""
    e = _env(bitcoin_node, monkeypatch)
    monkeypatch.setattr(sender, "fault", None)
    yield e
    signer.forget()


def _rpc(node: BcoinNode | Env) -> BitcoinRPC:
    # a short wait for bcoin's acceptance: a refused replacement is known in 2 s
    return BitcoinRPC(node.url, "hashhouse", node.api_key, timeout=120, dialect="bcoin",
                      accept_timeout=2)


def _batcher(node: BcoinNode | Env, **kw) -> Batcher:  # noqa: ANN003
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


def env_spent_once(node: Env, txid: str, vout: int) -> str:
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

def test_refused_requests_reserve_nothing(env: Env) -> None:
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
                               address=keys.address_at(signer.account_xpub(NETWORK, env.words),
                                                       1, 1, NETWORK),
                               script_pubkey="00", batch_id=None))
    change = keys.address_at(signer.account_xpub(NETWORK, env.words), 1, 1, NETWORK)
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
    amounts = [("0.00009", withdrawals.InvalidAmount, "smallest withdrawal is 0.00010000 BTC"),
               ("1.1", withdrawals.InvalidAmount, "largest withdrawal is 1.00000000 BTC"),
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


def test_the_minimum_is_never_below_the_dust_limit(env: Env,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASINO_BTC_WITHDRAW_MIN", "1")
    reset_settings_cache()
    assert withdrawals.limits("BTC").minimum == 546  # P2PKH's dust limit: any address
    _credit("p-dust", "BTC", 100_000)
    with pytest.raises(withdrawals.InvalidAmount, match="smallest withdrawal is 0.00000546 BTC"):
        withdrawals.request_withdrawal("p-dust", "BTC", 545, _p2pkh(), "k-dust")


def test_large_withdrawals_wait_for_staff_and_the_batcher_leaves_them(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASINO_BTC_WITHDRAW_LARGE", "2000000")
    reset_settings_cache()
    _credit("p-large", "BTC", 10_000_000)
    env.fund_hot(5_000_000)
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

def test_twenty_withdrawals_are_paid_in_one_transaction(both: Env) -> None:
    node = both
    players = [f"p-b{i}" for i in range(4)]
    for p in players:
        _credit(p, "BTC", 100_000_000)
    big = node.fund_hot(3_000_000)
    small = node.fund_hot(200_000)
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
    assert change.address == keys.address_at(signer.account_xpub(NETWORK, node.words), 1, 1,
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
    node.poll()  # the watcher records the change, with its key
    coin = node.coin(batch.tx_hash, "change")
    assert coin.amount == 3_000_000 - paid - fee
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
        both: Env) -> None:
    node = both
    _credit("p-crash", "BTC", 10_000_000)
    coin = node.fund_hot(2_000_000)
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


def test_a_crash_after_broadcast_before_recording_it_settles_once(both: Env) -> None:
    node = both
    _credit("p-crash2", "BTC", 10_000_000)
    node.fund_hot(1_000_000)
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


def test_a_fee_bump_confirms_once_with_the_replacements_fee(both: Env) -> None:
    """Not mined in time: a replacement over the same coin with a higher fee (taken from
    the change) is recorded, then refused by bcoin (no BIP125 replacement): the original
    stays in its mempool and is waited for. The replacement is mined instead (through a
    reorg, the only way past bcoin's mempool): the batch settles once, with its fee."""
    node = both
    _credit("p-bump", "BTC", 10_000_000)
    coin = node.fund_hot(1_000_000)
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


def test_dust_change_goes_to_the_fee(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CASINO_BTC_FEE_FLOOR", "CASINO_BTC_FEE_CEILING", "CASINO_BTC_FEE_FALLBACK"):
        monkeypatch.setenv(name, "5")  # a fixed rate, whatever the node estimates
    reset_settings_cache()
    _credit("p-dust", "BTC", 1_000_000)
    to = fresh_address()
    out = 8 + 1 + 22
    with_change, without = vsize(1, [out, out]), vsize(1, [out])
    assert (with_change, without) == (141, 110)
    left = DUST - 1  # what a change would hold: below the dust limit
    coin = env.fund_hot(100_000 + 5 * with_change + left)
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


def test_not_enough_coins_pays_the_oldest_that_fit_and_alerts(env: Env) -> None:
    _credit("p-short", "BTC", 10_000_000)
    env.fund_hot(300_000)
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
    env.fund_hot(1_000_000)  # refilled: the rest is paid
    assert b.run().created == 1
    env.mine(1)
    assert b.run().paid == 2
    assert {withdrawals.get_withdrawal(i).state for i in ids} == {"confirmed"}
    assert _balance("p-short", "BTC").reserved == 0
    _invariants_clean()


def test_an_unconfirmed_batch_dropped_by_a_reorg_is_sent_again(env: Env) -> None:
    _credit("p-reorg", "BTC", 10_000_000)
    env.fund_hot(1_000_000)
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
        env: Env) -> None:
    _credit("p-deep", "BTC", 10_000_000)
    env.fund_hot(1_000_000)
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
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
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
    env.fund_hot(1_000_000)
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


# --- sizes and coin selection (no node) ------------------------------------------------------

def _coin(value: int, n: int = 0) -> Coin:
    """A hot-wallet coin of a made-up transaction (signing needs no chain)."""
    txid = hashlib.sha256(f"coin-{n}".encode()).hexdigest()
    return Coin(txid, 0, value, keys.p2wpkh_script(signer.public_key(1, 0, NETWORK, MNEMONIC)),
                1, 0)


@pytest.mark.parametrize("n_inputs,kinds", [(1, "w"), (1, "ww"), (2, "wspk"), (5, "w" * 30),
                                            (12, "wt")])
def test_the_computed_vsize_bounds_the_signed_one(n_inputs: int, kinds: str) -> None:
    """The size the fee is computed for is the signed transaction's, each signature at its
    largest: never smaller, at most 3 weight units an input larger (DER's 70 to 72 bytes)."""
    from casino_app.payments.btc import tx as txfacts
    from casino_app.payments.signer.btc import Payment, SpendInput

    make = {"w": fresh_address, "s": _p2wsh, "p": _p2pkh, "k": _p2sh,
            "t": lambda: bech32.encode_segwit(NETWORK.bech32_hrp, 1, secrets.token_bytes(32))}
    outs = [Payment(_script(make[k]()), 10_000) for k in kinds]
    each = -(-(10_000 * len(outs) + 2_000 * (n_inputs + 1)) // n_inputs)  # a normal fee
    coins = [_coin(each, n) for n in range(n_inputs)]
    signed = signer.sign_p2wpkh(
        [SpendInput(c.txid, c.vout, c.value, c.script, 1, 0) for c in coins], outs,
        network=NETWORK, words=MNEMONIC)
    computed = vsize(n_inputs, [8 + 1 + len(o.script_pubkey) for o in outs])
    weight = txfacts.facts(signed.raw).weight
    assert 0 <= 4 * computed - weight <= 3 * n_inputs + 3
    assert computed >= signed.vsize


def test_largest_first_and_the_oldest_that_fit() -> None:
    pool = [_coin(50_000, 1), _coin(900_000, 2), _coin(300_000, 3)]
    out = Output(_script(fresh_address()), 400_000, 1)
    sel = select_coins(pool, [out], 10)
    assert sel is not None and [c.value for c in sel.coins] == [900_000]
    assert sel.fee == 10 * sel.vsize and sel.change == 900_000 - 400_000 - sel.fee
    two = select_coins(pool, [Output(out.script, 1_100_000, 1)], 10)
    assert two is not None and [c.value for c in two.coins] == [900_000, 300_000]
    assert select_coins(pool, [Output(out.script, 1_250_000, 1)], 10) is None
    # the oldest that fit: a withdrawal too large is skipped, the younger ones are paid
    outs = [Output(out.script, v, i) for i, v in enumerate((2_000_000, 800_000, 300_000,
                                                            100_000, 200_000))]
    chosen, sel = fit(outs, pool, 10)
    assert [o.withdrawal_id for o in chosen] == [1, 2, 3]  # 1.2M of 1.25M; not 2M, not 200k
    assert sel is not None and sum(c.value for c in sel.coins) == 1_250_000
    assert sel.change == 50_000 - sel.fee


# --- more of the fee bump ----------------------------------------------------------------------

def test_a_bump_the_change_cannot_pay_adds_a_coin_which_is_freed_if_the_original_is_mined(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """The batch has no change (it was dust), so its bump needs another coin of the hot
    wallet: without one it is not bumped (alert); with one, the replacement spends it too
    and makes a change. bcoin keeps the original, which is then mined: the batch settles
    once with the original's fee, and the added coin is unspent again."""
    for name in ("CASINO_BTC_FEE_FLOOR", "CASINO_BTC_FEE_FALLBACK"):
        monkeypatch.setenv(name, "5")
    monkeypatch.setenv("CASINO_BTC_FEE_CEILING", "50")
    reset_settings_cache()
    _credit("p-add", "BTC", 1_000_000)
    coin = env.fund_hot(100_000 + 5 * 141 + 100)  # a change would be dust
    # A second coin on chain that the watcher has not seen yet (no pass after its block):
    # the batcher cannot know of it until the watcher records it.
    later = env.fund(_hot(), 50_000)
    withdrawals.request_withdrawal("p-add", "BTC", 100_000, fresh_address(), "k-add")
    b = _batcher(env, fee_bump_seconds=0)
    assert b.run().broadcast == 1
    [batch] = _batches()
    [v0] = _versions(batch.id)
    assert batch.to_address == "" and v0.max_priority_fee_per_gas == 5 * 141 + 100
    before = _anomalies("bump_unfunded")
    res = b.run()  # no coin to add: not bumped, alerted
    assert (res.bumped, res.anomalies) == (0, 1)
    assert _anomalies("bump_unfunded") == before + 1 and len(_versions(batch.id)) == 1
    env.poll()  # now the watcher records it
    extra = env.coin(later.txid, "hot")
    res = b.run()
    assert res.bumped == 1
    v0, v1 = _versions(batch.id)
    [batch] = _batches()
    plan = Plan.from_json(batch.call_data)
    assert [c.outpoint for c in plan.inputs] == [(coin.txid, coin.vout),
                                                 (extra.txid, extra.vout)]
    assert plan.change_index == 1 and batch.to_address != ""  # the added coin's rest
    assert v1.max_priority_fee_per_gas >= v0.max_priority_fee_per_gas + batch.gas_limit
    assert _utxos()[(extra.txid, extra.vout)] == ("reserved", v1.tx_hash)
    assert env.transaction(v1.tx_hash) is None  # refused by bcoin: the original waits
    env.mine(1)  # the original is mined
    env.poll()
    res = _batcher(env).run()
    assert (res.confirmed, res.paid) == (1, 1)
    [batch] = _batches()
    assert batch.tx_hash == v0.tx_hash
    assert int(batch.gas_fee_wei) == v0.max_priority_fee_per_gas
    assert _utxos()[(extra.txid, extra.vout)] == ("unspent", None)
    assert _utxos()[(coin.txid, coin.vout)] == ("spent", v0.tx_hash)
    assert _house("BTC", "fees") == FEE - v0.max_priority_fee_per_gas
    _invariants_clean()


def test_no_bump_above_the_ceiling(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CASINO_BTC_FEE_FLOOR", "CASINO_BTC_FEE_CEILING", "CASINO_BTC_FEE_FALLBACK"):
        monkeypatch.setenv(name, "3")
    reset_settings_cache()
    _credit("p-ceil", "BTC", 1_000_000)
    env.fund_hot(500_000)
    withdrawals.request_withdrawal("p-ceil", "BTC", 100_000, fresh_address(), "k-ceil")
    b = _batcher(env, fee_bump_seconds=0)
    assert b.run().broadcast == 1
    assert not any(b.run().as_dict().values())  # at the ceiling: waits as it is
    [batch] = _batches()
    assert len(_versions(batch.id)) == 1
    env.mine(1)
    assert b.run().paid == 1
    _invariants_clean()


# --- coins spent by another transaction ------------------------------------------------------

def _spend_elsewhere(node: Env, coin) -> str:  # noqa: ANN001
    """The operator spends the hot wallet's coin with the seed (not through the sender)."""
    from casino_app.payments.signer.btc import Payment, SpendInput

    signed = signer.sign_p2wpkh(
        [SpendInput(coin.txid, coin.vout, coin.amount, _script(_hot()), 1, 0)],
        [Payment(_script(fresh_address()), coin.amount - 2_000)], network=NETWORK,
        words=node.words)
    node.rpc.send_raw_transaction(signed.raw)
    node.mine(1)
    return signed.txid


def test_a_batch_whose_coins_were_spent_elsewhere_fails_and_its_withdrawals_wait_again(
        env: Env) -> None:
    _credit("p-gone", "BTC", 10_000_000)
    coin = env.fund_hot(1_000_000)
    ids = [withdrawals.request_withdrawal("p-gone", "BTC", 100_000, fresh_address(),
                                          f"k-gone-{i}").id for i in range(2)]
    _crash_at(_batcher(env), "signed")  # recorded, never broadcast
    other = _spend_elsewhere(env, coin)
    b = _batcher(env)
    res = b.run()  # the node refuses the rebroadcast (the coin is spent); the watcher
    assert res.rebroadcast == 0  # has not recorded the spend yet: nothing decided
    assert {withdrawals.get_withdrawal(i).state for i in ids} == {"batched"}
    env.poll()  # the watcher sees the block: the coin is spent by another transaction
    assert _utxos()[(coin.txid, coin.vout)] == ("spent", other)
    before = _anomalies("inputs_spent_elsewhere")
    res = b.run()  # failed, queued again (and the hot wallet, empty now, is short)
    assert (res.failed, res.requeued, res.voided, res.short) == (1, 2, 0, 2)
    assert _anomalies("inputs_spent_elsewhere") == before + 1
    [batch] = _batches()
    assert batch.state == "failed" and "spent by another transaction" in batch.failure
    assert {withdrawals.get_withdrawal(i).state for i in ids} == {"queued"}
    assert _balance("p-gone", "BTC").reserved == 2 * (100_000 + FEE)
    env.fund_hot(1_000_000)  # paid by a new batch
    assert b.run().created == 1
    env.mine(1)
    assert b.run().paid == 2
    assert _house("BTC", "fees") == 2 * FEE - int(_batches()[1].gas_fee_wei)
    _invariants_clean()


def test_a_hold_placed_while_the_batch_is_built_keeps_that_player_out_of_it(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found in review: a hold placed between reading the queue and recording the batch
    (a deposit reversed by a reorg, staff) did not stop that run's batch. The recording
    checks the holds again: nothing is recorded or sent, and the next batch pays the
    others."""
    from casino_app.core.clock import utcnow
    from casino_app.payments.btc import batcher as batcher_mod
    from casino_app.payments.hold_models import PlayerHold

    for p in ("p-held", "p-free"):
        _credit(p, "BTC", 10_000_000)
    env.fund_hot(1_000_000)
    held = withdrawals.request_withdrawal("p-held", "BTC", 100_000, fresh_address(), "k-h1")
    free = withdrawals.request_withdrawal("p-free", "BTC", 100_000, fresh_address(), "k-h2")
    real = batcher_mod.queued

    def queued_then_hold(*args: Any) -> list[tuple[int, str, int]]:
        rows = real(*args)
        with ledger_tx() as s:
            s.add(PlayerHold(player_id="p-held", reason="deposit_reversed",
                             detail="test: placed meanwhile", created_at=utcnow()))
        return rows

    monkeypatch.setattr(batcher_mod, "queued", queued_then_hold)
    res = _batcher(env).run()
    assert (res.created, res.broadcast) == (0, 0)
    assert _batches() == []
    assert all(state == "unspent" for state, _ in _utxos().values())  # nothing reserved
    monkeypatch.setattr(batcher_mod, "queued", real)
    assert _batcher(env).run().broadcast == 1
    assert len(_batches()) == 1
    assert withdrawals.get_withdrawal(free.id).state == "batched"
    assert withdrawals.get_withdrawal(held.id).state == "queued"  # waits for staff
    _invariants_clean()


def test_no_batch_spends_the_change_of_one_a_reorg_and_a_fee_bump_could_replace(
        env: Env) -> None:
    """Found in review: a batch spending the 1-confirmation change of a batch not settled
    yet could never be mined once a reorg put that batch back in the mempool and a fee
    bump replaced it (a new txid, less change): its withdrawals stayed batched, unalerted.
    The change of our own transactions is spent only once they are settled."""
    _credit("p-dep", "BTC", 10_000_000)
    env.fund_hot(1_000_000)
    first = withdrawals.request_withdrawal("p-dep", "BTC", 400_000, fresh_address(), "k-d1")
    b = _batcher(env, confirmations=3)
    assert b.run().broadcast == 1
    [b1] = _batches()
    [v0] = _versions(b1.id)
    env.mine(1)
    env.poll()  # B1's change: a hot coin with one confirmation, B1 not settled
    second = withdrawals.request_withdrawal("p-dep", "BTC", 100_000, fresh_address(), "k-d2")
    res = b.run()
    assert (res.created, res.short, res.anomalies) == (0, 1, 0)  # waits for B1 to settle
    assert withdrawals.get_withdrawal(second.id).state == "queued"
    env.reorg(1)  # B1's block replaced (bcoin empties its mempool)
    env.poll()
    bump = _batcher(env, confirmations=3, fee_bump_seconds=0)
    assert bump.run().bumped == 1  # B1 replaced: a new txid, less change
    env.mine(3)
    env.poll()
    res = bump.run()  # B1 settled through its replacement, then the second one batched
    assert (res.confirmed, res.paid, res.created) == (1, 1, 1)
    b1, b2 = _batches()
    assert b1.tx_hash != v0.tx_hash
    assert [c.txid for c in Plan.from_json(b2.call_data).inputs] == [b1.tx_hash]
    env.mine(3)
    env.poll()
    assert bump.run().paid == 1
    assert {withdrawals.get_withdrawal(w.id).state for w in (first, second)} == {"confirmed"}
    _invariants_clean()


def test_a_version_the_database_lost_settles_the_batch_by_its_outputs(env: Env) -> None:
    """The database was restored from a backup taken before the fee bump that was mined:
    no recorded version is in the chain, but the transaction that spent the batch's coin
    pays every one of its outputs: it is ours, and settles the batch as paid."""
    _credit("p-lost", "BTC", 10_000_000)
    coin = env.fund_hot(1_000_000)
    env.mine(1)
    withdrawals.request_withdrawal("p-lost", "BTC", 300_000, fresh_address(), "k-lost")
    b = _batcher(env, fee_bump_seconds=0)
    b.run()
    assert b.run().bumped == 1
    [batch] = _batches()
    v0, v1 = _versions(batch.id)
    env.reorg(1, txs=[bytes.fromhex(v1.raw_tx)])  # the replacement is mined
    with ledger_tx() as s:  # the backup knew only version 0
        s.query(WithdrawalBatchTx).filter(WithdrawalBatchTx.id == v1.id).delete()
        s.query(BtcUtxo).filter(BtcUtxo.txid == coin.txid).update(
            {BtcUtxo.spent_by: v0.tx_hash})
    env.poll()  # the watcher sees the block: the coin spent by v1, unknown to the database
    assert _utxos()[(coin.txid, coin.vout)] == ("spent", v1.tx_hash)
    res = _batcher(env).run()
    assert (res.confirmed, res.paid, res.failed, res.requeued) == (1, 1, 0, 0)
    [batch] = _batches()
    assert batch.tx_hash == v1.tx_hash and int(batch.gas_fee_wei) == \
        v1.max_priority_fee_per_gas
    assert withdrawals.withdrawals_of("p-lost")[0].state == "confirmed"
    _invariants_clean()


def test_a_short_wait_for_our_own_change_is_not_an_alert(env: Env) -> None:
    _credit("p-wait", "BTC", 10_000_000)
    env.fund_hot(1_000_000)
    withdrawals.request_withdrawal("p-wait", "BTC", 100_000, fresh_address(), "k-w1")
    b = _batcher(env)
    assert b.run().created == 1
    withdrawals.request_withdrawal("p-wait", "BTC", 100_000, fresh_address(), "k-w2")
    before = _anomalies("hot_wallet_short")
    res = b.run()  # the only coin is in the open batch; its change will pay the next
    assert (res.created, res.short, res.anomalies) == (0, 1, 0)
    assert _anomalies("hot_wallet_short") == before
    change = 1_000_000 - 100_000 - _versions(_batches()[0].id)[-1].max_priority_fee_per_gas
    assert b.incoming() == change     # from the batch's plan
    env.poll()  # the watcher sees the change in the mempool: counted once, as its coin
    assert b.incoming() == change
    env.mine(1)
    b.run()
    env.poll()  # the watcher records the change mined
    assert b.run().created == 1
    _invariants_clean()


# --- the watcher's records, step by step ------------------------------------------------------

def test_the_watchers_records_the_coin_the_change_in_the_mempool_and_the_spends(
        env: Env) -> None:
    """The watcher records the hot wallet's coin, sees the batch's change in the mempool
    (role change, key (1, 1): the change address the sender took is inside its window),
    marks the coin spent by the batch when mined; the next batch spends that change with
    the key the watcher recorded."""
    funding = env.fund(_hot(), 2_000_000)
    env.poll()
    with ledger_tx(readonly=True) as s:
        [coin] = s.execute(select(BtcUtxo)).scalars().all()
        assert (coin.txid, coin.role, coin.key_chain, coin.key_index, coin.state) == \
            (funding.txid, "hot", 1, 0, "unspent") and coin.block_height is not None
    _credit("p-w", "BTC", 10_000_000)
    tos = [fresh_address() for _ in range(3)]
    for i, to in enumerate(tos):
        withdrawals.request_withdrawal("p-w", "BTC", 200_000, to, f"k-w{i}")
    b = _batcher(env)
    assert b.run().broadcast == 1
    [batch] = _batches()
    env.poll()  # the mempool: our change, unconfirmed
    with ledger_tx(readonly=True) as s:
        change = s.execute(select(BtcUtxo).where(BtcUtxo.txid == batch_tx(batch))
                           ).scalar_one()
        assert (change.role, change.key_chain, change.key_index, change.block_height,
                change.address) == ("change", 1, 1, None, batch.to_address)
    env.mine(1)
    env.poll()
    assert _utxos()[(funding.txid, funding.vout)] == ("spent", batch_tx(batch))
    assert b.run().paid == 3
    later = withdrawals.request_withdrawal("p-w", "BTC", 500_000, fresh_address(), "k-w-later")
    assert b.run().created == 1
    second = _batches()[1]
    plan = Plan.from_json(second.call_data)
    assert [(c.txid, c.key_chain, c.key_index) for c in plan.inputs] == \
        [(change.txid, 1, 1)]
    assert plan.change_index == 2  # the next index, inside the watcher's window
    env.mine(1)
    env.poll()
    assert b.run().paid == 1
    assert withdrawals.get_withdrawal(later.id).state == "confirmed"
    assert _utxos()[(change.txid, change.vout)] == ("spent", _batches()[1].tx_hash)
    _invariants_clean()


def batch_tx(batch: WithdrawalBatch) -> str:
    """The txid of a batch's latest version (its mined one once settled)."""
    return batch.tx_hash or _versions(batch.id)[-1].tx_hash
