"""Staff custody against a real node (anvil): "reconcile now" runs one reconciliation and is
audited, or says why it cannot (the watcher stored no block; the node does not answer);
the wallets page reads the hot wallet and the Safe live and flags the hot band."""

from __future__ import annotations

import pytest

from casino_app.core.db import ledger_tx
from casino_app.payments.eth import keys
from casino_app.payments.eth.watcher import Watcher, chain_assets
from casino_app.payments.reconcile_models import ReconcileRun
from casino_app.payments.signer.seed import account_xpub
from casino_app.users import staff_custody
from casino_app.users.errors import ValidationFailed
from casino_app.users.models import Role
from tests.support.services import free_port
from tests.users.helpers import audit_rows, audited, make_staff, new_ctx, reconfigure

pytestmark = pytest.mark.ethereum

MNEMONIC = ("abandon abandon abandon abandon abandon abandon abandon abandon abandon "
            "abandon abandon about")
GWEI = 10**9


@pytest.fixture
def node(any_env: str, chain_state, devnet, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN001, ANN201
    reconfigure(monkeypatch, eth_xpub=account_xpub(MNEMONIC), eth_rpc_url=chain_state.url,
                eth_tokens=f"USDT:{devnet['USDT']},USDC:{devnet['USDC']}",
                eth_safe_address=devnet["safe"],
                eth_hot_band=f"ETH:{GWEI}:{3 * GWEI // 2},USDT:1000000:9000000")
    return chain_state


def _runs() -> int:
    with ledger_tx(readonly=True) as s:
        return s.query(ReconcileRun).count()


def test_reconcile_now_runs_once_and_is_audited(node, devnet) -> None:  # noqa: ANN001
    admin, admin_id, _ = make_staff(Role.admin)
    support, _, _ = make_staff(Role.support)
    with pytest.raises(ValidationFailed, match="watcher has not stored a block"), audited({}):
        staff_custody.reconcile_now(admin, new_ctx())
    assert _runs() == 0

    w3 = node.w3
    Watcher(w3, chain_assets(w3, {"USDT": devnet["USDT"], "USDC": devnet["USDC"]}),
            start_block=w3.eth.block_number).poll()
    with audited({"staff.reconcile_run": 1}):
        res = staff_custody.reconcile_now(admin, new_ctx())
    assert res.clean, res.issues
    ev, = audit_rows("staff.reconcile_run")
    assert ev.actor_user_id == admin_id and f'"run_id":{res.run_id}' in ev.detail
    run, = staff_custody.reconcile_runs(support)
    assert (run.id, run.clean, run.block) == (res.run_id, True, res.block)
    assert [t.currency for t in run.totals] == ["ETH", "USDC", "USDT"]
    assert all(t.matches for t in run.totals)


def test_wallets_read_the_hot_wallet_and_the_safe_live(node, devnet) -> None:  # noqa: ANN001
    support, _, _ = make_staff(Role.support)
    w3 = node.w3
    hot = keys.hot_wallet_address()
    w3.eth.send_transaction({"from": node.accounts[1], "to": hot, "value": 2 * 10**18 + 1})
    w3.eth.send_transaction({"from": node.accounts[1], "to": devnet["safe"],
                             "value": 10**18})
    o = staff_custody.wallets(support)
    assert (o.node, o.node_error, o.config_errors) == ("ok", "", [])
    assert (o.hot_address, o.safe_address) == (hot, devnet["safe"])
    eth, usdt, usdc = o.wallets
    assert (eth.currency, usdt.currency, usdc.currency) == ("ETH", "USDT", "USDC")
    assert eth.hot_balance == "2.000000000000000001 ETH"
    assert eth.safe_balance == "1.000000000 ETH"
    assert eth.custody == "0.000000000 ETH"
    assert (eth.band_status, eth.advice) == ("above", "above maximum: sweep to cold")
    assert (usdt.hot_balance, usdt.band_status, usdt.advice) == (
        "0.000000 USDT", "below", "below minimum: refill from cold")
    assert usdt.token == devnet["USDT"]
    assert (usdc.band, usdc.band_status) == ("", "")


def test_an_unreachable_node_is_said_not_raised(node, monkeypatch) -> None:  # noqa: ANN001
    admin, _, _ = make_staff(Role.admin)
    reconfigure(monkeypatch, eth_rpc_url=f"http://127.0.0.1:{free_port()}")
    o = staff_custody.wallets(admin)
    assert o.node == "unreachable" and o.node_error.startswith("node unreachable")
    assert o.wallets[0].hot_balance == "" and o.wallets[0].custody == "0.000000000 ETH"
    with pytest.raises(ValidationFailed, match="did not answer"), audited({}):
        staff_custody.reconcile_now(admin, new_ctx())
