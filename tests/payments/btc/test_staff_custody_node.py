"""Bitcoin on the staff custody pages, against the real bcoin node: the wallets page reads
the hot wallet (its address and its change addresses) and the cold multisig (every
address of its descriptor that holds coins) live from the node, beside the books and the
hot band; "reconcile now" for Bitcoin runs one reconciliation (admins; audited), says why
when it cannot, and its runs are listed beside Ethereum's; the chain a caller names is
checked; the pages' states show the Bitcoin section."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from casino_app.core.db import ledger_tx
from casino_app.payments import ledger
from casino_app.payments.btc import keys
from casino_app.payments.btc.watcher import Watcher
from casino_app.payments.signer import btc as signer
from casino_app.payments.signer.seed import _mnemonic
from casino_app.users import staff_custody
from casino_app.users.errors import Forbidden, ValidationFailed
from casino_app.users.models import Role
from tests.support.bitcoin import NETWORK, BcoinNode
from tests.support.cosigners import MNEMONICS, TestCosigner, cold_keys_setting, wallet_of
from tests.support.services import free_port
from tests.users.helpers import audit_rows, audited, make_staff, new_ctx, reconfigure

pytestmark = pytest.mark.bitcoin

BAND = (1_000_000, 1_500_000)


class Env:
    def __init__(self, node: BcoinNode, words: str, signers: list[TestCosigner]) -> None:
        self.node, self.words = node, words
        self.xpub = signer.account_xpub(NETWORK, words)
        self.cold = wallet_of(signers, NETWORK)
        self.hot = keys.hot_wallet_address(self.xpub, NETWORK)

    def pay(self, address: str, sats: int, mine: bool = True) -> None:
        """Coins the operator put into the house's wallets, booked as capital."""
        f = self.node.fund(address, sats, mine=mine)
        with ledger_tx() as s:
            ledger.transfer(s, f"capital:BTC:{f.txid}", "capital",
                            ledger.house_account(s, "BTC", "custody"),
                            ledger.house_account(s, "BTC", "bankroll"), sats)


@pytest.fixture
def env(app_env, bitcoin_node: BcoinNode, monkeypatch: pytest.MonkeyPatch) -> Env:  # noqa: ANN001
    words = _mnemonic().to_mnemonic(secrets.token_bytes(32))
    # this test's own cold wallet: the test cosigners' keys of a random BIP48 account
    account = 1 + secrets.randbelow(10**6)
    signers = [TestCosigner(m, NETWORK, account) for m in MNEMONICS]
    reconfigure(monkeypatch, btc_network="regtest-bcoin", btc_rpc_url=bitcoin_node.url,
                btc_rpc_user="hashhouse", btc_rpc_password=bitcoin_node.api_key,
                btc_rpc_dialect="bcoin", btc_xpub=signer.account_xpub(NETWORK, words),
                btc_cold_keys=cold_keys_setting(signers), btc_confirmations="2",
                btc_hot_band=f"{BAND[0]}:{BAND[1]}")
    signer.forget()
    return Env(bitcoin_node, words, signers)


def test_the_wallets_page_reads_the_hot_and_cold_wallets_live(env: Env) -> None:
    support, _, _ = make_staff(Role.support)
    env.pay(env.hot, 1_200_000)
    env.pay(keys.address_at(env.xpub, keys.CHANGE, 3, NETWORK), 450_000)   # a change address
    env.pay(env.cold.address(0).address, 2_000_000)
    env.pay(env.cold.address(7, 1).address, 700_000)                    # cold change
    env.pay(env.hot, 99_000, mine=False)    # unconfirmed: not in the wallet yet
    o = staff_custody.wallets(support, "bitcoin")
    assert (o.chain, o.node, o.node_error, o.config_errors) == ("bitcoin", "ok", "", [])
    assert (o.hot_address, o.network) == (env.hot, "Bitcoin regtest (bcoin)")
    assert o.safe_address == env.cold.descriptor(None) and o.at_block == env.node.height
    [btc] = o.wallets
    assert (btc.currency, btc.hot_balance, btc.safe_balance) == (
        "BTC", "0.01650000 BTC", "0.02700000 BTC")
    assert btc.custody == "0.04449000 BTC"   # the books: every coin booked, the unconfirmed too
    assert btc.band == "0.01000000 BTC – 0.01500000 BTC"
    assert (btc.band_status, btc.advice) == ("above", "above maximum: sweep to cold")
    assert staff_custody.wallets(support).chain == "ethereum"  # Ethereum's is the default
    for bad in ("dogecoin", "", None, ["bitcoin"]):
        with pytest.raises(ValidationFailed, match="No such chain"):
            staff_custody.wallets(support, bad)


def test_reconcile_now_for_bitcoin_runs_once_is_audited_and_listed_beside_ethereum(
        env: Env) -> None:
    admin, admin_id, _ = make_staff(Role.admin)
    support, _, _ = make_staff(Role.support)
    watcher = Watcher(env.node.rpc, start_height=env.node.height)
    with pytest.raises(ValidationFailed, match="watcher has not stored a block"), audited({}):
        staff_custody.reconcile_now(admin, new_ctx(), chain="bitcoin")
    with pytest.raises(Forbidden, match="Only an admin"), audited({}):
        staff_custody.reconcile_now(support, new_ctx(), chain="bitcoin")
    with pytest.raises(ValidationFailed, match="No Ethereum node"):
        staff_custody.reconcile_now(admin, new_ctx())
    env.pay(env.hot, 800_000)
    env.pay(env.cold.address(2).address, 300_000)
    watcher.poll()
    with audited({"staff.reconcile_run": 1}):
        res = staff_custody.reconcile_now(admin, new_ctx(), chain="bitcoin")
    assert res.clean, res.issues
    ev, = audit_rows("staff.reconcile_run")
    assert ev.actor_user_id == admin_id and '"chain":"bitcoin"' in ev.detail
    run, = staff_custody.reconcile_runs(support, chain="bitcoin")
    assert (run.id, run.clean, run.block) == (res.run_id, True, res.block)
    assert [(t.currency, t.onchain, t.matches) for t in run.totals] == [
        ("BTC", "0.01100000 BTC", True)]
    assert staff_custody.reconcile_runs(support) == []   # Ethereum's runs: none
    assert staff_custody.configured_chains(support) == ["ethereum", "bitcoin"]
    with pytest.raises(ValidationFailed, match="No such chain"):
        staff_custody.reconcile_runs(support, chain="litecoin")


def test_an_unreachable_node_is_said_not_raised(env: Env, monkeypatch) -> None:  # noqa: ANN001
    admin, _, _ = make_staff(Role.admin)
    reconfigure(monkeypatch, btc_rpc_url=f"http://127.0.0.1:{free_port()}")
    o = staff_custody.wallets(admin, "bitcoin")
    assert o.node == "unreachable" and o.node_error.startswith("node unreachable")
    assert o.wallets[0].hot_balance == "" and o.wallets[0].custody == "0.00000000 BTC"
    with pytest.raises(ValidationFailed, match="did not answer"), audited({}):
        staff_custody.reconcile_now(admin, new_ctx(), chain="bitcoin")


def test_the_pages_states_show_bitcoin_beside_ethereum(env: Env) -> None:
    from casino_app.ui.state.staff_custody import StaffReconcileState, StaffWalletsState
    from tests.ui.test_staff_custody_state import _run, _state

    admin, _, _ = make_staff(Role.admin)
    support, _, _ = make_staff(Role.support)
    watcher = Watcher(env.node.rpc, start_height=env.node.height)
    env.pay(env.hot, 1_100_000)
    watcher.poll()
    wal: Any = _state(StaffWalletsState, support)
    _run(wal, "on_open")
    assert wal.loaded and wal.btc_on and wal.node == "not configured"  # Ethereum: no node
    assert (wal.btc_node, wal.btc_hot_address) == ("ok", env.hot)
    assert [(w.currency, w.hot_balance, w.band_status) for w in wal.btc_wallets] == [
        ("BTC", "0.01100000 BTC", "within")]
    assert wal.btc_latest == ""
    rec: Any = _state(StaffReconcileState, admin)
    _run(rec, "on_open")
    assert rec.btc_on and rec.btc_runs == [] and rec.runs == []
    _run(rec, "reconcile_now", "bitcoin")
    assert rec.notice.startswith("Bitcoin run #") and rec.notice.endswith(": clean.")
    assert [r.status for r in rec.btc_runs] == ["clean"] and rec.runs == []
    _run(rec, "reconcile_now", "ethereum")
    assert "No Ethereum node is configured" in rec.message
    _run(rec, "load_older", "bitcoin")
    assert len(rec.btc_runs) == 1 and not rec.btc_more
    _run(wal, "refresh")
    assert wal.btc_latest.endswith(": clean") and wal.btc_latest_clean
