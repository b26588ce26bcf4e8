"""Bitcoin sweeps and the hot band on a real bcoin regtest node (payments/btc/sweeper.py):
final, credited deposit coins move to the hot wallet in one low-fee transaction (never a
dust deposit's coin, never one not final yet), the miner fee is booked once and the
custody account changes by nothing else; a crash between recording and broadcasting
sweeps once; the hot wallet's overflow above its band goes to a fresh cold address, down
to the band's middle; below its minimum the hot wallet is alerted (log, gauge) and audited
once per crossing. The real watcher (payments/btc/watcher.py) records every chain fact;
the ledger's invariants hold after each test."""

from __future__ import annotations

import secrets

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from casino_app.core.db import ledger_tx
from casino_app.core.settings import reset_settings_cache
from casino_app.payments import ledger, sender
from casino_app.payments.btc import addresses, keys
from casino_app.payments.btc.models import BtcUtxo
from casino_app.payments.btc.rpc import BitcoinRPC
from casino_app.payments.btc.sender import Plan
from casino_app.payments.btc.sweeper import Sweeper
from casino_app.payments.btc.watcher import Watcher
from casino_app.payments.deposit_models import ChainDeposit
from casino_app.payments.models import JournalEntry
from casino_app.payments.signer import btc as signer
from casino_app.payments.signer.seed import _mnemonic
from casino_app.payments.withdrawal_models import WithdrawalBatch
from tests.payments.eth.helpers import invariants_clean as _invariants_clean
from tests.support.bitcoin import NETWORK, BcoinNode
from tests.support.cosigners import cold_keys_setting, own_cosigners, wallet_of
from tests.users.helpers import audit_rows

pytestmark = pytest.mark.bitcoin

CONFIRMATIONS = 2


class Crash(Exception):
    """A simulated process death at a fault point."""


class Env:
    def __init__(self, node: BcoinNode, monkeypatch: pytest.MonkeyPatch) -> None:
        self.node = node
        self.words = _mnemonic().to_mnemonic(secrets.token_bytes(32))  # this test's wallet
        signers = own_cosigners(NETWORK)
        for name, value in {
                "CASINO_ETH_HOT_SEED": self.words,
                "CASINO_BTC_NETWORK": "regtest-bcoin", "CASINO_BTC_RPC_URL": node.url,
                "CASINO_BTC_RPC_USER": "hashhouse", "CASINO_BTC_RPC_PASSWORD": node.api_key,
                "CASINO_BTC_RPC_DIALECT": "bcoin",
                "CASINO_BTC_XPUB": signer.account_xpub(NETWORK, self.words),
                "CASINO_BTC_COLD_KEYS": cold_keys_setting(signers),
                "CASINO_BTC_CONFIRMATIONS": str(CONFIRMATIONS)}.items():
            monkeypatch.setenv(name, value)
        reset_settings_cache()
        signer.forget()
        monkeypatch.setattr(sender, "fault", None)
        self.cold = wallet_of(signers, NETWORK)
        self.hot = signer.hot_address(NETWORK)
        self.watcher = Watcher(node.rpc, start_height=node.height + 1)
        self.rpc = BitcoinRPC(node.url, "hashhouse", node.api_key, timeout=120,
                              dialect="bcoin", accept_timeout=2)

    def sweeper(self, **kw: object) -> Sweeper:
        kw.setdefault("confirmations", CONFIRMATIONS)
        kw.setdefault("fee_bump_seconds", 3600)
        kw.setdefault("band", None)
        kw.setdefault("cold", self.cold)
        return Sweeper(self.rpc, **kw)  # type: ignore[arg-type]

    def mine(self, n: int = 1) -> None:
        self.node.mine(n)
        self.watcher.poll()


@pytest.fixture
def env(app_env, bitcoin_node: BcoinNode, monkeypatch: pytest.MonkeyPatch) -> Env:  # noqa: ANN001
    return Env(bitcoin_node, monkeypatch)


@pytest.fixture
def both(any_env: str, bitcoin_node: BcoinNode, monkeypatch: pytest.MonkeyPatch) -> Env:
    return Env(bitcoin_node, monkeypatch)


def _house(kind: str) -> int:
    with ledger_tx(readonly=True) as s:
        return ledger.balance_of(s, ledger.house_account(s, "BTC", kind)).balance


def _player(player: str) -> int:
    with ledger_tx(readonly=True) as s:
        bal = ledger.player_balances(s, player).get("BTC")
        return bal.balance if bal else 0


def _batches() -> list[WithdrawalBatch]:
    with ledger_tx(readonly=True) as s:
        rows = s.execute(select(WithdrawalBatch).order_by(WithdrawalBatch.id)).scalars().all()
        s.expunge_all()
        return list(rows)


def _coin(txid: str, vout: int = 0) -> BtcUtxo:
    with ledger_tx(readonly=True) as s:
        row = s.execute(select(BtcUtxo).where(BtcUtxo.txid == txid, BtcUtxo.vout == vout)
                        ).scalar_one()
        s.expunge(row)
        return row


def _fee_entries() -> list[str]:
    with ledger_tx(readonly=True) as s:
        return list(s.execute(select(JournalEntry.key).where(
            JournalEntry.key.like("btc-fee:%"))).scalars())


def _below_min() -> float | None:
    return REGISTRY.get_sample_value("casino_hot_wallet_below_min", {"currency": "BTC"})


# --- sweeps ----------------------------------------------------------------------------------

def test_final_credited_deposits_are_swept_to_the_hot_wallet_with_the_fee_booked(both: Env
                                                                                 ) -> None:
    e = both
    a1, a2, a3 = (addresses.deposit_address(p) for p in ("p-s1", "p-s2", "p-s3"))
    f1 = e.node.fund(a1, 60_000, mine=False)
    f2 = e.node.fund(a2, 70_000, mine=False)
    dust = e.node.fund(a3, 900, mine=False)  # below CASINO_BTC_DUST: never credited
    e.mine(1)
    assert _player("p-s1") == 60_000 and _player("p-s3") == 0
    sweeper = e.sweeper(sweep_min=100_000, sweep_fee=2)
    assert sweeper.run().swept == 0  # credited, not final yet
    e.mine(1)
    late = e.node.fund(a1, 50_000)  # credited, 1 confirmation: not final
    e.watcher.poll()
    assert e.sweeper(sweep_min=10**9, sweep_fee=2).run().swept == 0  # below the minimum
    custody = _house("custody")
    res = sweeper.run()
    assert res.swept == 1 and res.broadcast == 1
    [batch] = _batches()
    plan = Plan.from_json(batch.call_data)
    assert batch.kind == "sweep" and batch.from_address == e.hot
    assert {(c.txid, c.vout) for c in plan.inputs} == {(f1.txid, 0), (f2.txid, 0)}
    assert {(c.key_chain, c.key_index) for c in plan.inputs} == {(0, 0), (0, 1)}
    [out] = plan.outputs
    hot_script = keys.validate_address(e.hot, NETWORK).script_pubkey
    assert out.script == hot_script and plan.change_index is None
    fee = 130_000 - out.value
    assert fee == 2 * batch.gas_limit and batch.total == out.value
    for coin in (f1.txid, f2.txid):
        assert _coin(coin).state == "reserved"
    assert _coin(dust.txid).state == "unspent" and _coin(late.txid).state == "unspent"
    with ledger_tx(readonly=True) as s:
        assert s.execute(select(ChainDeposit.state).where(
            ChainDeposit.tx_hash == dust.txid)).scalar_one() == "dust"
    assert sweeper.run().swept == 0  # one sweep at a time

    e.mine(1)
    txid = _first_version(batch.id)
    swept = _coin(txid)
    assert (swept.role, swept.amount, swept.state) == ("hot", out.value, "unspent")
    assert _coin(f1.txid).state == "spent" and _coin(f1.txid).spent_by == txid
    e.mine(1)
    assert sweeper.run().confirmed == 1
    # an internal move: the custody account changed by the miner fee only
    assert _house("custody") - custody == fee
    assert _fee_entries() == [f"btc-fee:bitcoin:{txid}"]
    assert (_player("p-s1"), _player("p-s2"), _player("p-s3")) == (110_000, 70_000, 0)
    assert _batches()[0].gas_fee_wei == str(fee)
    assert sweeper.run().confirmed == 0 and len(_fee_entries()) == 1
    _invariants_clean()


def _first_version(batch_id: int) -> str:
    from casino_app.payments.withdrawal_models import WithdrawalBatchTx

    with ledger_tx(readonly=True) as s:
        return s.execute(select(WithdrawalBatchTx.tx_hash).where(
            WithdrawalBatchTx.batch_id == batch_id, WithdrawalBatchTx.version == 0)
        ).scalar_one()


def test_a_crash_between_recording_and_broadcasting_a_sweep_sweeps_once(env: Env) -> None:
    e = env
    f = e.node.fund(addresses.deposit_address("p-c"), 80_000)
    e.watcher.poll()
    e.mine(1)

    def die(at: str, batch_id: int) -> None:
        if at == "signed":
            raise Crash(at)

    sweeper = e.sweeper(sweep_min=50_000, sweep_fee=1)
    sender.fault = die
    try:
        with pytest.raises(Crash):
            sweeper.run()
    finally:
        sender.fault = None
    [batch] = _batches()
    txid = _first_version(batch.id)
    assert batch.state == "signed" and e.node.transaction(txid) is None
    res = sweeper.run()
    assert (res.rebroadcast, res.swept) == (1, 0)  # the same bytes, no second sweep
    e.mine(CONFIRMATIONS)
    assert sweeper.run().confirmed == 1
    assert _coin(f.txid).spent_by == txid and len(_batches()) == 1
    _invariants_clean()


# --- the band --------------------------------------------------------------------------------

def test_the_hot_wallets_overflow_goes_to_a_fresh_cold_address(env: Env) -> None:
    e = env
    e.node.fund(e.hot, 3_000_000)
    e.watcher.poll()
    custody = _house("custody")
    sweeper = e.sweeper(band=(500_000, 1_500_000))
    assert sweeper.hot_balance() == 3_000_000
    res = sweeper.run()
    assert res.to_cold == 1 and res.below_min == 0
    [batch] = _batches()
    plan = Plan.from_json(batch.call_data)
    cold0 = e.cold.receive_address(0)
    assert [(o.script, o.value) for o in plan.outputs] == [(cold0.script_pubkey, 2_000_000)]
    assert batch.kind == "to_cold" and batch.total == 2_000_000
    assert sweeper.run().to_cold == 0  # not while it is open
    e.mine(1)
    txid = _first_version(batch.id)
    assert (_coin(txid, 0).role, _coin(txid, 0).amount, _coin(txid, 0).key_index) == \
        ("cold", 2_000_000, 0)
    e.mine(1)
    assert sweeper.run().confirmed == 1
    fee = int(_batches()[0].gas_fee_wei)
    assert sweeper.hot_balance() == 1_000_000 - fee  # the band's middle, less the fee
    assert _house("custody") - custody == fee
    # the next overflow goes to the next cold address
    e.node.fund(e.hot, 1_000_000)
    e.watcher.poll()
    assert sweeper.run().to_cold == 1
    nxt = Plan.from_json(_batches()[1].call_data).outputs[0]
    assert nxt.script == e.cold.receive_address(1).script_pubkey
    _invariants_clean()


def test_a_hot_wallet_below_its_minimum_is_alerted_and_audited_once(env: Env) -> None:
    e = env
    e.node.fund(e.hot, 1_000_000)
    e.watcher.poll()
    sweeper = e.sweeper(band=(2_000_000, 5_000_000))
    assert sweeper.run().below_min == 1
    assert _below_min() == 1.0
    assert sweeper.run().below_min == 1
    assert len(audit_rows("chain.hot_wallet_low")) == 1  # once per crossing
    assert e.sweeper(band=(2_000_000, 5_000_000)).run().below_min == 1  # a restart
    assert len(audit_rows("chain.hot_wallet_low")) == 1
    e.node.fund(e.hot, 2_000_000)  # a refill (here from the test wallet)
    e.watcher.poll()
    assert sweeper.run().below_min == 0 and _below_min() == 0.0
    assert _batches() == []  # within the band: nothing moves
    _invariants_clean()


def test_the_btc_sweep_job_is_a_signing_job_and_runs(env: Env,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from casino_app.jobs.builtin import SIGNING_JOBS, builtin_jobs
    from casino_app.payments.btc import sweeper as sweeper_mod

    monkeypatch.setenv("CASINO_BTC_SWEEP_SECONDS", "45")
    monkeypatch.setenv("CASINO_BTC_SWEEP_MIN", "50000")
    reset_settings_cache()
    monkeypatch.setattr(sweeper_mod, "_sweeper", None)
    jobs = {j.name: j for j in builtin_jobs()}
    assert jobs["btc-sweep"].interval == 45 and "btc-sweep" in SIGNING_JOBS
    assert "btc-sweep" not in {j.name for j in builtin_jobs(signing=False)}
    e = env
    e.node.fund(addresses.deposit_address("p-job"), 70_000)
    e.watcher.poll()
    e.mine(1)
    assert jobs["btc-sweep"].func()["swept"] == 1
    _invariants_clean()


def test_sweeping_and_the_overflow_to_cold_keep_reconciliation_clean_at_every_step(
        env: Env) -> None:
    """Reconciliation (payments/btc/reconcile.py) after every step of a sweep to hot and of
    the band's overflow to cold: recorded, in the mempool, mined but not settled, settled.
    The books never differ from what our addresses hold on the node (cold included)."""
    from casino_app.payments.btc.reconcile import reconcile

    e = env

    def clean(step: str) -> None:
        res = reconcile(e.node.rpc)
        assert res.clean, f"{step}: {[(i.kind, i.detail) for i in res.issues]}"

    # the operator funds the hot wallet and books it as bankroll, as `casino ledger fund`
    f = e.node.fund(e.hot, 3_000_000)
    with ledger_tx() as s:
        ledger.transfer(s, f"capital:BTC:{f.txid}", "capital",
                        ledger.house_account(s, "BTC", "custody"),
                        ledger.house_account(s, "BTC", "bankroll"), 3_000_000)
    for player, sats in (("p-r1", 150_000), ("p-r2", 90_000)):
        e.node.fund(addresses.deposit_address(player), sats, mine=False)
    e.mine(1)
    clean("deposits credited")
    e.mine(CONFIRMATIONS)
    clean("deposits final")

    sweeper = e.sweeper(sweep_min=100_000, sweep_fee=2)
    assert sweeper.run().swept == 1
    clean("sweep recorded and in the mempool")
    e.mine(1)
    clean("sweep mined, not settled")
    e.mine(CONFIRMATIONS)
    assert sweeper.run().confirmed == 1
    clean("sweep settled")

    band = e.sweeper(band=(500_000, 1_500_000))
    assert band.run().to_cold == 1
    clean("overflow recorded and in the mempool")
    e.mine(1)
    clean("overflow mined, not settled")
    e.mine(CONFIRMATIONS)
    assert band.run().confirmed == 1
    clean("overflow settled: the coins are in the cold wallet")
    assert _house("custody") < 0  # the house holds coins: custody is their negative
    _invariants_clean()
