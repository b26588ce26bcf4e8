"""The Bitcoin watcher (payments/btc/watcher.py) against a real bcoin regtest node, on SQLite
and PostgreSQL: a deposit goes incoming (mempool), pending at 1 confirmation, available at
N; reorgs reverse credits and put UTXO rows back; a double-spent unconfirmed deposit is
never credited; a restart catches up exactly; dust; each (txid, vout) applied once, crash
mid-chunk included; the UTXO rows follow our outputs and spends (hot wallet, change
window, cold wallet); our own transactions are never deposits; the mempool is read a
bounded number of transactions per pass. Each test has its own account key (a fresh seed),
so the session's one node serves them all."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from casino_app.core.db import ledger_tx
from casino_app.core.settings import reset_settings_cache
from casino_app.payments import ledger
from casino_app.payments.btc import addresses, keys
from casino_app.payments.btc import watcher as watcher_mod
from casino_app.payments.btc.models import BtcUtxo
from casino_app.payments.btc.rpc import NetworkMismatch
from casino_app.payments.btc.watcher import PollResult, Watcher
from casino_app.payments.deposit_models import ChainBlock, ChainDeposit
from casino_app.payments.deposits import withdrawable
from casino_app.payments.hold_models import PlayerHold
from casino_app.payments.signer import btc as signer
from casino_app.payments.signer.seed import _mnemonic
from casino_app.payments.withdrawal_models import WithdrawalBatch, WithdrawalBatchTx
from tests.support.bitcoin import NETWORK, BcoinNode, Funding, fresh_address
from tests.support.cosigners import cold_keys_setting, own_cosigners

pytestmark = pytest.mark.bitcoin

CONFIRMATIONS = 3


class Env:
    """A fresh ledger, the session's node and this test's own hot-wallet seed."""

    def __init__(self, node: BcoinNode, words: str) -> None:
        self.node, self.words = node, words
        self.xpub = signer.account_xpub(NETWORK, words)

    def watcher(self, **kw: Any) -> Watcher:
        kw.setdefault("start_height", self.node.height)
        return Watcher(self.node.rpc, **kw)

    def spend(self, inputs: list[BtcUtxo], pay: list[tuple[str, int]],
              fee: int = 300) -> signer.SignedTransaction:
        """Sign (as the signer would) a transaction spending our recorded outputs: ``pay``
        gets its amounts, the rest minus ``fee`` is left as fee when nothing else is said."""
        ins = [signer.SpendInput(u.txid, u.vout, u.amount, bytes.fromhex(u.script_pubkey),
                                 u.key_chain, u.key_index) for u in inputs]
        outs = [signer.Payment(keys.validate_address(a, NETWORK).script_pubkey, v)
                for a, v in pay]
        assert sum(u.amount for u in inputs) - sum(v for _, v in pay) >= fee
        return signer.sign_p2wpkh(ins, outs, network=NETWORK, words=self.words)


@pytest.fixture
def env(any_env: str, bitcoin_node: BcoinNode, monkeypatch: pytest.MonkeyPatch) -> Env:
    words = _mnemonic().to_mnemonic(secrets.token_bytes(32))
    e = Env(bitcoin_node, words)
    monkeypatch.setenv("CASINO_BTC_NETWORK", "regtest-bcoin")
    monkeypatch.setenv("CASINO_BTC_RPC_URL", bitcoin_node.url.rstrip("/"))
    monkeypatch.setenv("CASINO_BTC_RPC_PASSWORD", bitcoin_node.api_key)
    monkeypatch.setenv("CASINO_BTC_XPUB", e.xpub)
    monkeypatch.setenv("CASINO_BTC_CONFIRMATIONS", str(CONFIRMATIONS))
    reset_settings_cache()
    signer.forget()
    return e


def _deposit(tx: str, vout: int = 0) -> ChainDeposit:
    with ledger_tx(readonly=True) as s:
        return s.execute(select(ChainDeposit).where(
            ChainDeposit.chain == "bitcoin", ChainDeposit.tx_hash == tx,
            ChainDeposit.log_index == vout)).scalar_one()


def _utxo(tx: str, vout: int = 0) -> BtcUtxo:
    with ledger_tx(readonly=True) as s:
        return s.execute(select(BtcUtxo).where(BtcUtxo.txid == tx, BtcUtxo.vout == vout)
                         ).scalar_one()


def _utxos() -> list[tuple[str, int, str, str, int | None]]:
    with ledger_tx(readonly=True) as s:
        return [(u.txid, u.vout, u.role, u.state, u.block_height)
                for u in s.execute(select(BtcUtxo).order_by(BtcUtxo.id)).scalars()]


def _balance(player: str) -> int:
    with ledger_tx(readonly=True) as s:
        bal = ledger.player_balances(s, player).get("BTC")
        return bal.balance if bal else 0


def _withdrawable(player: str) -> int:
    with ledger_tx(readonly=True) as s:
        return withdrawable(s, player, "BTC")


def _invariants_clean() -> None:
    with ledger_tx(readonly=True) as s:
        assert [f.check for f in ledger.check_invariants(s) if f.violations] == []


def _poll_until(w: Watcher, done: Callable[[PollResult], bool], passes: int = 20
                ) -> PollResult:
    for _ in range(passes):
        res = w.poll()
        if done(res):
            return res
    raise AssertionError("the watcher never saw the change")


def _conflict(node: BcoinNode, funding: Funding) -> bytes:
    """A transaction spending the same coin as ``funding`` (the test wallet's) to an address
    nobody holds: the double spend of an unconfirmed deposit."""
    from bitcoinlib.transactions import Transaction

    sent = node.rpc.raw_transaction(funding.txid)
    value = sum(o.value for o in sent.outputs) + funding.fee
    spent = sent.inputs[0]
    t = Transaction(network="bitcoin", witness_type="segwit", version=2)
    t.add_input(bytes.fromhex(spent.txid), spent.vout, keys=node.wallet.key.public(),
                value=value, witness_type="segwit", script_type="sig_pubkey")
    t.add_output(value - 1_000, lock_script=keys.validate_address(fresh_address(),
                                                                  NETWORK).script_pubkey)
    t.sign(node.wallet.key)
    return bytes.fromhex(t.raw_hex())


# --- deposits ------------------------------------------------------------------------------

def test_a_deposit_is_incoming_then_pending_then_available(env: Env) -> None:
    addr = addresses.deposit_address("p-btc")
    assert addr.startswith("rb1q") and addr == keys.deposit_address(0, env.xpub, NETWORK)
    assert addresses.deposit_address("p-btc") == addr          # handed out once
    w = env.watcher()
    f = env.node.fund(addr, 50_000, mine=False)
    res = w.poll()
    assert res.incoming == 1 and "p-btc" in res.players
    row = _deposit(f.txid)
    assert (row.state, row.block_number, row.amount) == ("incoming", None, 50_000)
    assert row.sender == env.node.wallet.address  # the address the first input spent
    assert _balance("p-btc") == 0                  # incoming: shown, never playable
    assert _utxo(f.txid).block_height is None      # an unconfirmed coin of ours
    assert w.poll().incoming == 0                  # seen once

    env.node.mine(1)
    res = w.poll()
    assert res.deposits == 1 and res.credited == 1
    row = _deposit(f.txid)
    assert row.state == "pending" and row.block_number == env.node.height
    assert _balance("p-btc") == 50_000             # playable at 1 confirmation
    assert _withdrawable("p-btc") == 0             # not withdrawable
    u = _utxo(f.txid)
    assert (u.role, u.player_id, u.state, u.block_height, u.amount, u.address) == (
        "deposit", "p-btc", "unspent", env.node.height, 50_000, addr)

    env.node.mine(1)
    w.poll()
    assert _deposit(f.txid).state == "pending"     # 2 of 3
    env.node.mine(1)
    res = w.poll()
    assert res.made_available == 1 and _deposit(f.txid).state == "available"
    assert _withdrawable("p-btc") == 50_000
    env.node.mine(2)
    w.poll()
    w.poll()
    assert _balance("p-btc") == 50_000             # applied once
    _invariants_clean()


def test_the_pending_cap_holds_back_what_exceeds_it(env: Env) -> None:
    addr = addresses.deposit_address("p-cap")
    w = env.watcher(pending_cap=60_000)
    first = env.node.fund(addr, 50_000, mine=False)
    second = env.node.fund(addr, 40_000)
    w.poll()
    states = {_deposit(first.txid).state, _deposit(second.txid).state}
    assert states == {"pending", "seen"} and _balance("p-cap") in (50_000, 40_000)
    env.node.mine(CONFIRMATIONS - 1)
    w.poll()
    assert _balance("p-cap") == 90_000 and _withdrawable("p-cap") == 90_000
    _invariants_clean()


def test_dust_is_recorded_and_never_credited(env: Env) -> None:
    addr = addresses.deposit_address("p-dust")
    w = env.watcher(dust=1_000)
    f = env.node.fund(addr, 999)
    env.node.mine(CONFIRMATIONS)
    w.poll()
    row = _deposit(f.txid)
    assert (row.state, row.amount, row.credits) == ("dust", 999, 0)
    assert _balance("p-dust") == 0
    assert _utxo(f.txid).state == "unspent"  # still a coin of ours (the sweeper decides)
    _invariants_clean()


# --- reorgs and double spends --------------------------------------------------------------

def test_a_reorg_reverses_a_credited_deposit_and_its_utxo_follows(env: Env) -> None:
    addr = addresses.deposit_address("p-reorg")
    w = env.watcher()
    f = env.node.fund(addr, 70_000)
    w.poll()
    assert _balance("p-reorg") == 70_000 and _utxo(f.txid).block_height == env.node.height
    # The deposit's block is replaced by a branch without it (bcoin forgets the transaction).
    env.node.reorg(1, then_mine=2)
    res = _poll_until(w, lambda r: r.reversed > 0)
    assert res.reversed == 1 and _deposit(f.txid).state == "reversed"
    assert _balance("p-reorg") == 0
    assert (_utxo(f.txid).state, _utxo(f.txid).block_height) == ("dropped", None)
    with ledger_tx(readonly=True) as s:
        tip = s.execute(select(ChainBlock).where(ChainBlock.chain == "bitcoin")
                        .order_by(ChainBlock.number.desc()).limit(1)).scalar_one()
    assert (tip.number, tip.hash) == (env.node.height, env.node.rpc.best_block_hash())
    _invariants_clean()


def test_a_deposit_mined_again_on_the_new_branch_is_credited_again(env: Env) -> None:
    addr = addresses.deposit_address("p-again")
    w = env.watcher()
    f = env.node.fund(addr, 30_000)
    w.poll()
    first_block = _utxo(f.txid).block_hash
    env.node.reorg(1, then_mine=2, keep_txs=True)  # the new branch holds it again
    _poll_until(w, lambda r: r.reversed > 0)
    row = _deposit(f.txid)
    assert row.state == "pending" and row.credits == 2 and row.block_hash != first_block
    assert _balance("p-again") == 30_000
    u = _utxo(f.txid)
    assert (u.state, u.block_height) == ("unspent", row.block_number)
    _invariants_clean()


def test_a_reversed_deposit_already_spent_leaves_a_debt_and_a_hold(env: Env) -> None:
    addr = addresses.deposit_address("p-spent")
    w = env.watcher()
    env.node.fund(addr, 100_000)
    w.poll()
    with ledger_tx() as s:  # the player loses most of it
        ledger.transfer(s, "spend-btc", "withdrawal", ledger.player_account(s, "p-spent", "BTC"),
                        ledger.house_account(s, "BTC", "bankroll"), 80_000)
    env.node.reorg(1, then_mine=2)
    _poll_until(w, lambda r: r.reversed > 0)
    assert _balance("p-spent") == 0
    with ledger_tx(readonly=True) as s:
        debt = ledger.balance_of(s, ledger.account(s, "p-spent", "BTC", "debt"))
        assert debt.balance == -80_000
        holds = s.query(PlayerHold).filter_by(player_id="p-spent").all()
        assert len(holds) == 1 and holds[0].released_at is None
    _invariants_clean()


def test_a_spent_deposit_mined_again_repays_its_debt_and_releases_its_hold(env: Env
                                                                           ) -> None:
    """Found in review: a reorg that drops a spent deposit and mines it again left the
    player owing (debt account, hold) although the money came back. The new credit pays
    the debt first; with nothing owed the hold it opened is released (by the system)."""
    addr = addresses.deposit_address("p-back")
    w = env.watcher()
    f = env.node.fund(addr, 100_000)
    w.poll()
    with ledger_tx() as s:  # the player loses most of it
        ledger.transfer(s, "spend-btc-back", "withdrawal",
                        ledger.player_account(s, "p-back", "BTC"),
                        ledger.house_account(s, "BTC", "bankroll"), 80_000)
    env.node.reorg(1, then_mine=2, keep_txs=True)  # dropped, then mined again
    _poll_until(w, lambda r: r.reversed > 0)
    row = _deposit(f.txid)
    assert row.state == "pending" and row.credits == 2 and row.owed == 0
    assert _balance("p-back") == 20_000  # 100,000 back, 80,000 of it repaid the debt
    with ledger_tx(readonly=True) as s:
        debt = ledger.balance_of(s, ledger.account(s, "p-back", "BTC", "debt"))
        assert debt.balance == 0
        [hold] = s.query(PlayerHold).filter_by(player_id="p-back").all()
        assert hold.released_at is not None and hold.released_by is None
    _invariants_clean()


def test_a_double_spent_unconfirmed_deposit_is_never_credited(env: Env) -> None:
    addr = addresses.deposit_address("p-ds")
    env.node.mine(2)  # the coin it spends is confirmed below the block the reorg drops
    w = env.watcher()
    f = env.node.fund(addr, 60_000, mine=False, rbf=True)
    w.poll()
    assert _deposit(f.txid).state == "incoming"
    # The conflicting transaction is mined instead (bcoin's mempool refuses replacements).
    env.node.reorg(1, txs=(_conflict(env.node, f),))
    res = _poll_until(w, lambda r: r.dropped > 0)
    assert res.dropped == 1 and "p-ds" in res.players
    assert _deposit(f.txid).state == "dropped" and _utxo(f.txid).state == "dropped"
    env.node.mine(CONFIRMATIONS)
    w.poll()
    row = _deposit(f.txid)
    assert (row.state, row.credits) == ("dropped", 0) and _balance("p-ds") == 0
    _invariants_clean()


def test_a_dropped_deposit_that_comes_back_is_incoming_again_then_credited(env: Env) -> None:
    addr = addresses.deposit_address("p-back")
    env.node.mine(2)  # the coin it spends is confirmed below the block the reorg drops
    w = env.watcher()
    f = env.node.fund(addr, 45_000, mine=False)
    w.poll()
    env.node.reorg(1)               # bcoin empties its mempool: the deposit is gone
    _poll_until(w, lambda r: r.dropped > 0)
    assert _deposit(f.txid).state == "dropped"
    env.node.rpc.send_raw_transaction(f.raw)  # rebroadcast by the sender
    w.poll()
    assert _deposit(f.txid).state == "incoming" and _utxo(f.txid).state == "unspent"
    env.node.mine(1)
    w.poll()
    assert _deposit(f.txid).state == "pending" and _balance("p-back") == 45_000
    _invariants_clean()


# --- restarts, retries, crashes ------------------------------------------------------------

def test_a_restart_after_50_blocks_catches_up_exactly(env: Env) -> None:
    players = [f"p-up-{i}" for i in range(5)]
    addrs = [addresses.deposit_address(p) for p in players]
    w = env.watcher(batch=20)
    w.poll()
    sent = []
    for i in range(50):  # the watcher is down: 50 blocks, a deposit in every 5th
        if i % 5 == 0:
            sent.append((env.node.fund(addrs[(i // 5) % 5], 10_000 + i).txid, 10_000 + i))
        else:
            env.node.mine(1)
    fresh = env.watcher(batch=20, chunk=7)  # a new process: only what was stored
    passes = 0
    while fresh.poll().tip != env.node.height:
        passes += 1
    assert passes == 2  # 20 + 20 + 10 blocks
    with ledger_tx(readonly=True) as s:
        rows = s.execute(select(ChainDeposit)).scalars().all()
        numbers = list(s.execute(select(ChainBlock.number).where(ChainBlock.chain == "bitcoin")
                                 .order_by(ChainBlock.number)).scalars())
    assert sorted(r.tx_hash for r in rows) == sorted(t for t, _ in sent)
    assert numbers == list(range(numbers[0], env.node.height + 1))  # no gap
    assert sum(_balance(p) for p in players) == sum(v for _, v in sent)
    assert {r.state for r in rows} <= {"available", "pending"}
    _invariants_clean()


def test_each_output_is_applied_once_whatever_crashes(env: Env,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    addrs = [addresses.deposit_address(f"p-once-{i}") for i in range(3)]
    w = env.watcher()
    w.poll()
    sent = [env.node.fund(a, 20_000 + i) for i, a in enumerate(addrs)]  # three blocks
    env.node.mine(1)
    # A crash mid-chunk: the second deposit's UTXO row fails; the chunk (blocks, rows,
    # deposits) is rolled back as one.
    real = watcher_mod.utxos.add_output
    calls = {"n": 0}

    def crash(*a: Any, **kw: Any) -> bool:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("killed")
        return real(*a, **kw)

    monkeypatch.setattr(watcher_mod.utxos, "add_output", crash)
    with pytest.raises(RuntimeError, match="killed"):
        w.poll()
    with ledger_tx(readonly=True) as s:
        assert s.execute(select(ChainDeposit)).scalars().all() == []
        assert s.execute(select(BtcUtxo)).scalars().all() == []
    monkeypatch.setattr(watcher_mod.utxos, "add_output", real)
    w.poll()
    again = env.watcher()  # another process, and the same one again
    again.poll()
    w.poll()
    with ledger_tx(readonly=True) as s:
        rows = s.execute(select(ChainDeposit)).scalars().all()
        utxo_rows = s.execute(select(BtcUtxo)).scalars().all()
    assert sorted((r.tx_hash, r.credits) for r in rows) == sorted((f.txid, 1) for f in sent)
    assert len(utxo_rows) == 3
    assert [_balance(f"p-once-{i}") for i in range(3)] == [20_000, 20_001, 20_002]
    _invariants_clean()


def test_the_mempool_is_read_a_bounded_number_of_transactions_per_pass(env: Env) -> None:
    addr = addresses.deposit_address("p-pool")
    w = env.watcher(mempool_fetch=2)
    w.poll()
    sent = {env.node.fund(addr, 11_000 + i, mine=False).txid for i in range(5)}
    seen = [w.poll().incoming for _ in range(3)]
    assert sum(seen) == 5 and max(seen) <= 2
    with ledger_tx(readonly=True) as s:
        assert set(s.execute(select(ChainDeposit.tx_hash)
                             .where(ChainDeposit.state == "incoming")).scalars()) == sent
    env.node.mine(1)
    w.poll()
    assert _balance("p-pool") == sum(11_000 + i for i in range(5))
    _invariants_clean()


def test_a_node_of_another_network_is_refused(env: Env) -> None:
    from casino_app.payments.btc.network import PRESETS

    w = Watcher(env.node.rpc, network=PRESETS["testnet"], xpub=env.xpub)
    with pytest.raises(NetworkMismatch):
        w.poll()


# --- the UTXO set of our wallets -----------------------------------------------------------

def _record_sent(txid: str) -> None:
    """What a sender does before broadcasting: record the transaction (and reserve its
    inputs, done by the caller)."""
    with ledger_tx() as s:
        batch = WithdrawalBatch(chain="bitcoin", kind="sweep", currency="BTC",
                                from_address="hot", nonce=secrets.randbelow(2**40),
                                state="sent", to_address="", value_wei="0", call_data="",
                                gas_limit=1, total=0)
        s.add(batch)
        s.flush()
        s.add(WithdrawalBatchTx(batch_id=batch.id, version=0, tx_hash=txid,
                                max_fee_per_gas=0, max_priority_fee_per_gas=0))


def _reserve(rows: list[BtcUtxo], txid: str) -> None:
    with ledger_tx() as s:
        for r in rows:
            row = s.get(BtcUtxo, r.id)
            row.state, row.spent_by = "reserved", txid


def test_utxo_rows_follow_our_outputs_and_spends_across_a_reorg(env: Env) -> None:
    hot = keys.hot_wallet_address(env.xpub, NETWORK)
    addresses.deposit_address("p-utxo")
    w = env.watcher()
    funded = env.node.fund(hot, 200_000)
    w.poll()
    coin = _utxo(funded.txid)
    assert (coin.role, coin.key_chain, coin.key_index, coin.player_id, coin.state) == (
        "hot", 1, 0, None, "unspent")
    with ledger_tx(readonly=True) as s:
        change_index = addresses.next_change_index(s)
    assert change_index == 1
    change = keys.address_at(env.xpub, keys.CHANGE, change_index, NETWORK)
    outside = fresh_address()
    # A payment from the hot wallet: to someone else, change to /1/1 (recorded and
    # reserved by the sender before the broadcast).
    tx = env.spend([coin], [(outside, 50_000), (change, 149_000)], fee=1_000)
    _record_sent(tx.txid)
    _reserve([coin], tx.txid)
    env.node.rpc.send_raw_transaction(tx.raw)
    w.poll()
    assert (_utxo(tx.txid, 1).role, _utxo(tx.txid, 1).block_height) == ("change", None)
    assert _utxo(funded.txid).state == "reserved"   # mempool spends are the sender's
    env.node.mine(1)
    w.poll()
    height = env.node.height
    spent = _utxo(funded.txid)
    assert (spent.state, spent.spent_by, spent.spent_height) == ("spent", tx.txid, height)
    ch = _utxo(tx.txid, 1)
    assert (ch.role, ch.key_chain, ch.key_index, ch.state, ch.block_height) == (
        "change", 1, 1, "unspent", height)
    with ledger_tx(readonly=True) as s:
        assert addresses.next_change_index(s) == 2

    # The block is replaced by a branch that holds the same transaction again: spends
    # undone (our recorded transaction: reserved for it), outputs unconfirmed, then mined
    # again.
    env.node.reorg(1, then_mine=1, keep_txs=True)
    w2 = env.watcher()  # a fresh process, to check what was stored
    res = w2.poll()
    assert res.spends == 1 and res.blocks == 1
    assert _utxo(funded.txid).spent_height == env.node.height
    assert _utxo(tx.txid, 1).block_height == env.node.height
    # ... and the same reorg without the transaction: the hot coin is reserved again (our
    # sender rebroadcasts it), the change output is dropped.
    env.node.reorg(1, then_mine=2)
    _poll_until(w2, lambda r: r.dropped > 0 or _utxo(tx.txid, 1).state == "dropped")
    back = _utxo(funded.txid)
    assert (back.state, back.spent_by, back.spent_height) == ("reserved", tx.txid, None)
    assert _utxo(tx.txid, 1).state == "dropped"
    assert _utxo(funded.txid).block_height is not None   # its own block stayed
    env.node.rpc.send_raw_transaction(tx.raw)            # the sender rebroadcasts
    env.node.mine(1)
    w2.poll()
    assert _utxo(funded.txid).state == "spent"
    assert (_utxo(tx.txid, 1).state, _utxo(tx.txid, 1).block_height) == (
        "unspent", env.node.height)
    with ledger_tx(readonly=True) as s:  # a deposit address exists, none was paid
        assert s.execute(select(ChainDeposit)).scalars().all() == []
    _invariants_clean()


def test_an_unrecorded_spend_undone_by_a_reorg_is_unspent_again(env: Env) -> None:
    hot = keys.hot_wallet_address(env.xpub, NETWORK)
    w = env.watcher()
    funded = env.node.fund(hot, 90_000)
    w.poll()
    tx = env.spend([_utxo(funded.txid)], [(fresh_address(), 80_000)], fee=10_000)
    env.node.rpc.send_raw_transaction(tx.raw)   # no sender recorded it
    env.node.mine(1)
    w.poll()
    assert _utxo(funded.txid).state == "spent"
    env.node.reorg(1, then_mine=2)
    _poll_until(w, lambda r: _utxo(funded.txid).state != "spent")
    coin = _utxo(funded.txid)
    assert (coin.state, coin.spent_by, coin.spent_height) == ("unspent", None, None)


def test_our_own_transaction_to_a_deposit_address_is_not_a_deposit(env: Env) -> None:
    """Only we can spend a deposit address's coins: moving them to another deposit address
    (nothing we send does) is recorded as a UTXO and never credited."""
    a = addresses.deposit_address("p-from")
    b = addresses.deposit_address("p-to")
    w = env.watcher()
    funded = env.node.fund(a, 40_000)
    w.poll()
    tx = env.spend([_utxo(funded.txid)], [(b, 39_000)], fee=1_000)
    env.node.rpc.send_raw_transaction(tx.raw)
    w.poll()
    env.node.mine(CONFIRMATIONS)
    w.poll()
    moved = _utxo(tx.txid)
    assert (moved.role, moved.player_id, moved.state) == ("deposit", "p-to", "unspent")
    assert _utxo(funded.txid).state == "spent"
    with ledger_tx(readonly=True) as s:
        assert [r.tx_hash for r in s.execute(select(ChainDeposit)).scalars()] == [funded.txid]
    assert _balance("p-to") == 0 and _balance("p-from") == 40_000
    _invariants_clean()


def test_the_change_and_cold_windows_widen_as_outputs_are_seen(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    signers = own_cosigners(NETWORK)
    monkeypatch.setenv("CASINO_BTC_COLD_KEYS", cold_keys_setting(signers))
    reset_settings_cache()
    w = env.watcher()
    assert w.wallet.cold is not None
    gap = addresses.CHANGE_GAP
    last = keys.address_at(env.xpub, keys.CHANGE, gap, NETWORK)
    beyond = keys.address_at(env.xpub, keys.CHANGE, gap + 1, NETWORK)
    cold0 = w.wallet.cold.receive_address(0).address
    cold_change = w.wallet.cold.change_address(3).address
    paid = [env.node.fund(a, 25_000, mine=False) for a in (last, beyond, cold0, cold_change)]
    env.node.mine(1)
    w.poll()
    roles = {(t, v): (r, st) for t, v, r, st, _h in _utxos()}
    assert roles[(paid[0].txid, 0)] == ("change", "unspent")
    assert (paid[1].txid, 0) not in roles          # beyond the window: not seen yet ...
    assert roles[(paid[2].txid, 0)] == ("cold", "unspent")
    assert roles[(paid[3].txid, 0)] == ("cold", "unspent")
    assert _utxo(paid[3].txid).key_chain == 1 and _utxo(paid[3].txid).key_index == 3
    # ... but the window now reaches past /1/20: what pays /1/21 later is seen.
    again = env.node.fund(beyond, 26_000)
    w.poll()
    assert _utxo(again.txid).role == "change" and _utxo(again.txid).key_index == gap + 1
    with ledger_tx(readonly=True) as s:
        assert addresses.next_change_index(s) == gap + 2


def test_coinbase_outputs_to_our_addresses_are_left_out(env: Env) -> None:
    addr = addresses.deposit_address("p-miner")
    w = env.watcher()
    env.node.mine(1, to=addr)
    w.poll()
    assert _utxos() == [] and _balance("p-miner") == 0


# --- the job -------------------------------------------------------------------------------

def test_the_btc_watch_job_runs_with_a_node_on_the_signers_development_key(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """``casino worker`` (and the embedded default) runs the signer's check first: in
    development it writes the account key the web side derives deposit addresses from."""
    from casino_app.jobs import runner, worker
    from casino_app.jobs.builtin import builtin_jobs

    monkeypatch.setenv("CASINO_BTC_XPUB", "")
    monkeypatch.setenv("CASINO_ETH_HOT_SEED", env.words)
    monkeypatch.setenv("CASINO_BTC_WATCH_SECONDS", "5")
    reset_settings_cache()
    monkeypatch.setattr(watcher_mod, "_watcher", None)
    monkeypatch.setattr(runner, "_registry", {})  # this process's registry, put back after
    names = [j.name for j in worker._prepare(signing=True)]
    assert "btc-watch" in names
    assert keys.account_xpub() == env.xpub  # the file the signer wrote
    job = {j.name: j for j in builtin_jobs()}["btc-watch"]
    assert job.interval == 5
    job.func()  # the first pass starts at the node's head
    addr = addresses.deposit_address("p-job")
    f = env.node.fund(addr, 33_000, mine=False)
    assert job.func()["incoming"] == 1
    env.node.mine(1)
    out = job.func()
    assert out["credited"] == 1 and out["tip"] == env.node.height
    assert _deposit(f.txid).state == "pending"
    monkeypatch.setenv("CASINO_BTC_RPC_URL", "")
    reset_settings_cache()
    assert "btc-watch" not in {j.name for j in builtin_jobs()}


def test_the_web_side_never_imports_the_signer(tmp_path: Any) -> None:
    """The wallet page, its push loop and the watcher (which ``casino run`` runs with the
    account key alone) do not even import the signer, the only reader of the seed."""
    import subprocess
    import sys
    from pathlib import Path

    probe = ("import sys, casino_app.payments.btc.watcher, casino_app.payments.btc.addresses, "
             "casino_app.ui.state.deposits, casino_app.ui.push; "
             "print(sorted(m for m in sys.modules if m.startswith('casino_app.payments.signer')))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[3]).stdout
    assert out.strip().splitlines()[-1] == "[]"


# --- found in review -------------------------------------------------------------------

def test_a_reorg_down_to_the_first_stored_block_rescans_from_the_ancestor(env: Env) -> None:
    """A watcher that started recently stores few blocks: a reorg replacing all of them
    (their parent is the common ancestor) used to restart the cursor near the head,
    skipping the new branch's first blocks, so a deposit mined again there stayed
    reversed. The ancestor stays as the floor and the new branch is read from it."""
    addr = addresses.deposit_address("p-first")
    env.node.mine(10)
    w = Watcher(env.node.rpc)  # as the job builds it: no start height
    f = env.node.fund(addr, 70_000)
    w.poll()  # the first pass stores the last blocks only (head - confirmations ..)
    assert _deposit(f.txid).state == "pending" and _balance("p-first") == 70_000
    env.node.reorg(4, then_mine=5, keep_txs=True)  # the same deposit in the new branch
    _poll_until(w, lambda r: r.reversed > 0)
    for _ in range(3):
        w.poll()
    assert _deposit(f.txid).state in ("pending", "available")
    assert _balance("p-first") == 70_000


def test_a_watcher_taking_the_lease_back_sees_what_another_recorded(env: Env) -> None:
    """Two processes holding the btc-watch lease in turn: the one that comes back knows
    the outputs the other recorded meanwhile, so a spend of one is our own transaction
    (spent, not a deposit to the address it pays)."""
    a = addresses.deposit_address("p-st-from")
    b = addresses.deposit_address("p-st-to")
    first = env.watcher()
    first.poll()
    second = env.watcher()  # the lease passed to another process
    funded = env.node.fund(a, 40_000)
    second.poll()
    tx = env.spend([_utxo(funded.txid)], [(b, 39_000)], fee=1_000)
    env.node.rpc.send_raw_transaction(tx.raw)
    env.node.mine(1)
    first.poll()  # the lease is back
    assert (_balance("p-st-to"), _utxo(funded.txid).state) == (0, "spent")


def test_a_reorg_to_a_shorter_chain_reverses_at_once(env: Env) -> None:
    """Found in review: when the node's new chain is lower than our stored tip (a heavier
    branch of fewer blocks, an invalidated tip), the watcher took it for a node that is
    behind and left the dropped deposit credited until the chain grew back. Its block at
    its own head differs from ours: a reorg, handled now."""
    addr = addresses.deposit_address("p-short")
    w = env.watcher()
    env.node.mine(1)
    f = env.node.fund(addr, 50_000)
    w.poll()
    assert _balance("p-short") == 50_000
    env.node.reorg(2, then_mine=1)  # one block replaces two: the new chain is lower
    res = w.poll()
    assert res.reversed == 1 and _deposit(f.txid).state == "reversed"
    assert _balance("p-short") == 0
    with ledger_tx(readonly=True) as s:
        tip = s.execute(select(ChainBlock).where(ChainBlock.chain == "bitcoin")
                        .order_by(ChainBlock.number.desc()).limit(1)).scalar_one()
    assert (tip.number, tip.hash) == (env.node.height, env.node.rpc.best_block_hash())
    _invariants_clean()


def test_the_job_can_start_its_first_pass_from_a_configured_height(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """A watcher started late begins near the node's head; CASINO_BTC_WATCH_FROM makes its
    first pass start lower, so a deposit to an address shown before is credited."""
    from casino_app.payments.btc import watcher as watcher_mod

    addr = addresses.deposit_address("p-early")
    start = env.node.height + 1
    f = env.node.fund(addr, 45_000)  # mined at ``start``
    env.node.mine(10)  # the job only runs ten blocks later
    monkeypatch.setenv("CASINO_BTC_WATCH_FROM", str(start))
    reset_settings_cache()
    monkeypatch.setattr(watcher_mod, "_watcher", None)
    assert watcher_mod.watch_once()["credited"] == 1
    assert _deposit(f.txid).state == "available" and _balance("p-early") == 45_000
    _invariants_clean()
