"""Bitcoin reconciliation (payments/btc/reconcile.py) against the real bcoin regtest node,
with the real watcher and batcher: a clean run on a quiet chain stays clean through a
withdrawal's whole life (in the mempool, mined but not settled, settled, settled above a
watcher that lags the node); coins moved outside the ledger (a deposit coin spent with its
key, bypassing the sender), a credit whose block left the chain, a lost deposit record, a
miner paying a deposit address, a settled batch a reorg took out of the chain and a mined
batch nobody settles are each flagged, stored, audited and counted in /api/metrics; the
``btc-reconcile`` job and ``casino reconcile`` (JSON, exit 1 on a discrepancy). Each test
has its own seed, so the session's node serves them all."""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest
from sqlalchemy import select

from casino_app.core.db import identity_tx, ledger_tx
from casino_app.core.metrics import INVARIANT_VIOLATIONS, render
from casino_app.core.settings import reset_settings_cache
from casino_app.payments import ledger, sender, withdrawals
from casino_app.payments.btc import addresses, keys
from casino_app.payments.btc.batcher import Batcher
from casino_app.payments.btc.models import BtcUtxo
from casino_app.payments.btc.reconcile import UNSETTLED_GRACE, reconcile
from casino_app.payments.btc.rpc import BitcoinRPC
from casino_app.payments.btc.watcher import Watcher
from casino_app.payments.deposit_models import ChainDeposit
from casino_app.payments.reconcile import ReconcileUnavailable
from casino_app.payments.reconcile_models import ReconcileIssue, ReconcileRun
from casino_app.payments.signer import btc as signer
from casino_app.payments.signer.seed import _mnemonic
from casino_app.payments.withdrawal_models import WithdrawalBatch
from casino_app.security.models import AuditEvent
from tests.support.bitcoin import NETWORK, BcoinNode, fresh_address

pytestmark = pytest.mark.bitcoin

CONFIRMATIONS = 2
PENDING_CAP = 500_000
HOT = 3_000_000


class Env:
    """A fresh ledger, the session's node, this test's own seed; the hot wallet funded on
    chain and booked as the house's capital (custody -> bankroll), as an operator does."""

    def __init__(self, node: BcoinNode, words: str) -> None:
        self.node, self.words = node, words
        self.xpub = signer.account_xpub(NETWORK, words)
        self.watcher = Watcher(node.rpc, start_height=node.height, confirmations=CONFIRMATIONS,
                               pending_cap=PENDING_CAP, dust=1_000)
        self.hot = signer.hot_address(NETWORK)

    def poll(self) -> None:
        self.watcher.poll()

    def batcher(self, **kw: Any) -> Batcher:
        kw.setdefault("confirmations", CONFIRMATIONS)
        kw.setdefault("fee_bump_seconds", 3600)
        return Batcher(BitcoinRPC(self.node.url, "hashhouse", self.node.api_key, timeout=120,
                                  dialect="bcoin", accept_timeout=2), **kw)

    def fund_hot(self, sats: int) -> None:
        f = self.node.fund(self.hot, sats)
        with ledger_tx() as s:
            ledger.transfer(s, f"capital:BTC:{f.txid}", "capital",
                            ledger.house_account(s, "BTC", "custody"),
                            ledger.house_account(s, "BTC", "bankroll"), sats)

    def deposit(self, player: str, sats: int, mine: bool = True) -> str:
        return self.node.fund(addresses.deposit_address(player), sats, mine=mine).txid

    def reconcile(self, **kw: Any):  # noqa: ANN201
        return reconcile(self.node.rpc, **kw)


@pytest.fixture
def env(app_env, bitcoin_node: BcoinNode, monkeypatch: pytest.MonkeyPatch) -> Env:  # noqa: ANN001
    return _env(bitcoin_node, monkeypatch)


@pytest.fixture
def both(any_env: str, bitcoin_node: BcoinNode, monkeypatch: pytest.MonkeyPatch) -> Env:
    return _env(bitcoin_node, monkeypatch)


def _env(node: BcoinNode, monkeypatch: pytest.MonkeyPatch) -> Env:
    words = _mnemonic().to_mnemonic(secrets.token_bytes(32))
    for name, value in {"CASINO_BTC_NETWORK": "regtest-bcoin", "CASINO_BTC_RPC_URL": node.url,
                        "CASINO_BTC_RPC_USER": "hashhouse",
                        "CASINO_BTC_RPC_PASSWORD": node.api_key,
                        "CASINO_BTC_RPC_DIALECT": "bcoin",
                        "CASINO_BTC_XPUB": signer.account_xpub(NETWORK, words),
                        "CASINO_ETH_HOT_SEED": words,
                        "CASINO_BTC_CONFIRMATIONS": str(CONFIRMATIONS),
                        "CASINO_BTC_PENDING_CAP": str(PENDING_CAP),
                        "CASINO_BTC_WITHDRAW_FEE": "1000"}.items():
        monkeypatch.setenv(name, value)
    reset_settings_cache()
    signer.forget()
    monkeypatch.setattr(sender, "fault", None)
    return Env(node, words)


def _kinds(res) -> list[str]:  # noqa: ANN001
    return sorted(i.kind for i in res.issues)


def _stored(run_id: int) -> list[str]:
    with ledger_tx(readonly=True) as s:
        return sorted(s.execute(select(ReconcileIssue.kind).where(
            ReconcileIssue.run_id == run_id)).scalars())


def _invariants_clean() -> None:
    with ledger_tx(readonly=True) as s:
        assert [f.check for f in ledger.check_invariants(s) if f.violations] == []


def _onchain(res) -> int:  # noqa: ANN001
    return int(res.totals["BTC"]["onchain"])


def test_a_quiet_chain_reconciles_clean_through_a_withdrawals_whole_life(both: Env) -> None:
    """Deposits of every kind (credited, over the pending cap and waiting, dust, still in
    the mempool) and the hot wallet: clean. A withdrawal batch in the mempool, mined but
    not settled (reported in flight), settled: clean. A batch settled by the batcher above
    the watcher's tip (the watcher lags the node): the run pins the watcher's block, puts
    back the coins spent above it, and is clean."""
    env = both
    env.fund_hot(HOT)
    a = env.deposit("p-a", 2_000_000, mine=False)  # over the pending cap: waits
    b = env.deposit("p-b", 300_000, mine=False)    # credited at 1 confirmation
    env.deposit("p-c", 600, mine=False)            # dust: recorded, never credited
    env.node.mine(1)
    env.poll()
    with ledger_tx(readonly=True) as s:
        states = dict(s.execute(select(ChainDeposit.tx_hash, ChainDeposit.state)
                                ).tuples().all())
    assert (states[a], states[b]) == ("seen", "pending")
    env.deposit("p-b", 40_000, mine=False)   # incoming: not on chain at the pinned block
    env.poll()
    res = env.reconcile()
    assert res.clean, res.issues
    assert _onchain(res) == HOT + 2_000_000 + 300_000 + 600
    assert res.summary["onchain_by_role"] == {"deposit": 2_300_600, "hot": HOT, "change": 0,
                                              "cold": 0}
    assert res.summary["books"]["not_credited"] == 2_000_600
    with ledger_tx(readonly=True) as s:
        run = s.get(ReconcileRun, res.run_id)
        assert (run.chain, run.clean, run.block_number) == ("bitcoin", True, res.block)
        assert run.block_hash == env.node.rpc.block_hash(res.block)

    env.node.mine(1)   # the deposits are final (2 confirmations): withdraw 200,000 of a's
    env.poll()
    w = withdrawals.request_withdrawal("p-a", "BTC", 200_000, fresh_address(), "k-rec-1")
    batcher = env.batcher()
    assert batcher.run().broadcast == 1
    env.poll()         # the batch and its change in the mempool: nothing at the block yet
    res = env.reconcile()
    assert res.clean, res.issues
    env.node.mine(1)
    env.poll()         # mined, one confirmation of two: not settled, in flight
    res = env.reconcile()
    assert res.clean, res.issues
    [flight] = res.summary["in_flight"]
    fee = int(_batch().versions_fee)
    assert flight["left"] == 200_000 + fee and res.summary["books"]["unsettled"] == flight["left"]
    env.node.mine(1)
    assert batcher.run().paid == 1
    env.poll()
    res = env.reconcile()
    assert res.clean, res.issues
    assert withdrawals.get_withdrawal(w.id).state == "confirmed"
    assert _onchain(res) == HOT + 2_000_000 + 300_000 + 40_000 + 600 - 200_000 - fee

    # the watcher lags: a second batch is mined and settled above its tip
    tip_before = env.watcher.poll().tip
    withdrawals.request_withdrawal("p-b", "BTC", 100_000, fresh_address(), "k-rec-2")
    assert batcher.run().broadcast == 1
    env.node.mine(CONFIRMATIONS)
    assert batcher.run().paid == 1
    res = env.reconcile()
    assert res.block == tip_before < env.node.height
    assert res.clean, res.issues
    assert res.summary["books"]["settled_not_at_block"] > 100_000
    env.poll()
    res = env.reconcile()
    assert res.clean and res.block == env.node.height
    _invariants_clean()


class _BatchFacts:
    def __init__(self, batch: WithdrawalBatch, fee: int) -> None:
        self.batch, self.versions_fee = batch, fee


def _batch() -> _BatchFacts:
    from casino_app.payments.withdrawal_models import WithdrawalBatchTx

    with ledger_tx(readonly=True) as s:
        b = s.execute(select(WithdrawalBatch).order_by(WithdrawalBatch.id.desc()).limit(1)
                      ).scalar_one()
        v = s.execute(select(WithdrawalBatchTx).where(WithdrawalBatchTx.batch_id == b.id)
                      .order_by(WithdrawalBatchTx.version.desc()).limit(1)).scalar_one()
        s.expunge_all()
    return _BatchFacts(b, int(v.max_priority_fee_per_gas))


def test_coins_moved_outside_the_ledger_are_flagged(env: Env) -> None:
    """The operator (or a thief with the seed) spends a player's deposit coin with the
    deposit key, bypassing the sender: on chain the coin is gone, the books still hold it.
    The run names the balance difference and the spend, stores, audits and counts both
    (in /api/metrics), and so does every later run while it lasts."""
    env.fund_hot(HOT)
    txid = env.deposit("p-x", 400_000)
    env.node.mine(1)
    env.poll()
    assert env.reconcile().clean
    with ledger_tx(readonly=True) as s:
        coin = s.execute(select(BtcUtxo).where(BtcUtxo.txid == txid,
                                               BtcUtxo.role == "deposit")).scalar_one()
    signed = signer.sign_p2wpkh(
        [signer.SpendInput(coin.txid, coin.vout, coin.amount, bytes.fromhex(coin.script_pubkey),
                           coin.key_chain, coin.key_index)],
        [signer.Payment(keys.validate_address(fresh_address(), NETWORK).script_pubkey,
                        coin.amount - 1_000)], network=NETWORK, words=env.words)
    env.node.rpc.send_raw_transaction(signed.raw)
    env.node.mine(1)
    env.poll()
    before = {k: INVARIANT_VIOLATIONS.labels(f"reconcile.bitcoin.{k}")._value.get()
              for k in ("balance", "unrecorded_spend")}
    res = env.reconcile()
    assert _kinds(res) == ["balance", "unrecorded_spend"] and _stored(res.run_id) == \
        ["balance", "unrecorded_spend"]
    balance = next(i for i in res.issues if i.kind == "balance")
    assert int(balance.expected) - int(balance.actual) == 400_000
    spend = next(i for i in res.issues if i.kind == "unrecorded_spend")
    assert f"{coin.txid}:{coin.vout}" in spend.detail and signed.txid in spend.detail
    assert "p-x" in spend.detail
    for kind in ("balance", "unrecorded_spend"):
        assert INVARIANT_VIOLATIONS.labels(f"reconcile.bitcoin.{kind}")._value.get() == \
            before[kind] + 1
    body = render()[0].decode()
    assert 'casino_invariant_violations_total{check="reconcile.bitcoin.balance"}' in body
    with identity_tx(readonly=True) as s:
        events = [e for e in s.execute(select(AuditEvent)).scalars()
                  if e.action == "chain.reconcile_failed"]
    assert len(events) == 1 and "bitcoin" in events[0].detail
    assert "balance" in _kinds(env.reconcile())  # still there an hour later


def test_a_credit_off_chain_a_lost_record_and_a_miner_paying_us_are_flagged(env: Env) -> None:
    """Deposits, ledger -> chain: a credited deposit whose recorded block is not the
    chain's (credit_not_on_chain, reported again until resolved). Chain -> ledger: a coin
    at a deposit address whose record was lost, and a coinbase paying a deposit address
    (the watcher leaves those out): missing_deposit, with the balance off by the miner's
    coin only (the lost record's credit is still in the books)."""
    env.fund_hot(HOT)
    kept = env.deposit("p-k", 150_000)
    lost = env.deposit("p-l", 250_000)
    env.node.mine(1)
    env.poll()
    assert env.reconcile().clean
    with ledger_tx() as s:
        s.query(ChainDeposit).filter_by(tx_hash=lost).delete()
        s.query(ChainDeposit).filter_by(tx_hash=kept).update(
            {ChainDeposit.block_hash: "ab" * 32})
    miner = addresses.deposit_address("p-miner")
    env.node.mine(1, to=miner)
    env.poll()
    res = env.reconcile()
    assert _kinds(res) == ["balance", "credit_not_on_chain", "missing_deposit",
                           "missing_deposit"], res.issues
    credit = next(i for i in res.issues if i.kind == "credit_not_on_chain")
    assert kept in credit.detail and "no longer the chain's block" in credit.detail
    missing = sorted((i.detail for i in res.issues if i.kind == "missing_deposit"),
                     key=lambda d: "coinbase" in d)
    assert lost in missing[0] and "p-l" in missing[0]
    assert miner in missing[1] and "(a coinbase)" in missing[1]
    balance = next(i for i in res.issues if i.kind == "balance")
    coinbase = int(next(i for i in res.issues if "coinbase" in i.detail).actual)
    assert int(balance.actual) - int(balance.expected) == coinbase
    assert "credit_not_on_chain" in _kinds(env.reconcile())  # the window held: again


def test_a_settled_batch_a_reorg_took_out_of_the_chain_is_flagged_until_mined_again(
        env: Env) -> None:
    env.fund_hot(HOT)
    env.deposit("p-r", 900_000)
    env.node.mine(1)
    env.poll()
    withdrawals.request_withdrawal("p-r", "BTC", 250_000, fresh_address(), "k-reorg")
    batcher = env.batcher(confirmations=1)
    batcher.run()
    env.node.mine(1)
    assert batcher.run().paid == 1
    env.poll()
    assert env.reconcile().clean
    txid = _batch().batch.tx_hash
    env.node.reorg(1)     # deeper than the batcher's confirmations: bcoin forgets it
    env.poll()
    res = env.reconcile()
    assert _kinds(res) == ["settled_not_in_chain"], res.issues  # the balance accounts for it
    assert txid in res.issues[0].detail and "unknown to the node" in res.issues[0].detail
    assert batcher.run().reorged == 1   # the batcher sends the kept bytes again
    res = env.reconcile()
    assert _kinds(res) == ["settled_not_in_chain"]
    assert "in the node's mempool again" in res.issues[0].detail
    env.node.mine(1)
    env.poll()
    assert env.reconcile().clean


def test_a_mined_batch_nobody_settles_is_flagged(env: Env) -> None:
    env.fund_hot(HOT)
    env.deposit("p-u", 900_000)
    env.node.mine(1)
    env.poll()
    withdrawals.request_withdrawal("p-u", "BTC", 250_000, fresh_address(), "k-unsettled")
    env.batcher().run()
    env.node.mine(CONFIRMATIONS + UNSETTLED_GRACE - 1)  # the batcher is not running
    env.poll()
    res = env.reconcile()
    assert res.clean and len(res.summary["in_flight"]) == 1
    env.node.mine(1)
    env.poll()
    res = env.reconcile()
    assert _kinds(res) == ["unsettled_tx"], res.issues
    assert "is the btc-batch job running?" in res.issues[0].detail


def test_the_job_and_the_command(env: Env, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    from casino_app.cli import main
    from casino_app.jobs.builtin import SIGNING_JOBS, builtin_jobs

    monkeypatch.setenv("CASINO_BTC_RECONCILE_SECONDS", "1800")
    reset_settings_cache()
    jobs = {j.name: j for j in builtin_jobs(signing=False)}
    assert jobs["btc-reconcile"].interval == 1800 and "btc-reconcile" not in SIGNING_JOBS
    assert jobs["btc-reconcile"].func() == {"skipped": 1}  # the watcher stored nothing yet
    assert main(["reconcile"]) == 2
    assert "bitcoin: nothing to reconcile yet" in capsys.readouterr().err
    with pytest.raises(ReconcileUnavailable):
        env.reconcile()
    env.fund_hot(HOT)
    env.deposit("p-j", 123_456)
    env.poll()
    capsys.readouterr()
    assert main(["reconcile"]) == 0
    out = json.loads(capsys.readouterr().out)
    got = out["chains"]["bitcoin"]
    assert out["clean"] and got["clean"] and got["totals"]["BTC"]["onchain"] == str(
        HOT + 123_456)
    assert got["onchain_by_role"]["hot"] == HOT
    assert jobs["btc-reconcile"].func()["issues"] == 0
    env.node.fund(addresses.deposit_address("p-j"), 5_000)  # the watcher never sees it
    env.poll()
    with ledger_tx() as s:  # (as if its record were lost)
        s.query(ChainDeposit).filter(ChainDeposit.amount == 5_000).delete()
    capsys.readouterr()
    assert main(["reconcile"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert not out["clean"]
    # its credit is still in the books (the balance agrees); the coin has no record
    assert [i["kind"] for i in out["chains"]["bitcoin"]["issues"]] == ["missing_deposit"]
