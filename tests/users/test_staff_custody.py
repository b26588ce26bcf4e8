"""Staff custody services without a node: the hot band setting, exact on-chain amounts,
reconciliation runs newest first with their totals and issues, the wallets overview
saying there is no node, and "reconcile now" refused politely (no node; not an admin).
Against a real node (anvil): tests/payments/eth/test_staff_custody_node.py."""

from __future__ import annotations

import json

import pytest

from casino_app.core.clock import utcnow
from casino_app.core.db import ledger_tx
from casino_app.payments import custody
from casino_app.payments.reconcile_models import ReconcileIssue, ReconcileRun
from casino_app.users import staff_custody
from casino_app.users.errors import Forbidden, NotAuthenticated, NotFound, ValidationFailed
from casino_app.users.models import Role
from tests.users.helpers import audited, make_staff, new_ctx, reconfigure, register


def test_the_hot_band_setting() -> None:
    assert custody.parse_band("") == {}
    assert custody.parse_band(" eth:1000:5000 , USDT:0:10 ,") == {
        "ETH": (1000, 5000), "USDT": (0, 10)}
    for bad in ("ETH:1", "ETH:1:2:3", "ETH:-1:5", "ETH:1.5:2", "XYZ:1:2", "ETH:5:1",
                "ETH:١:٢", "ETH:1:" + "9" * 20):
        with pytest.raises(ValueError, match="CASINO_ETH_HOT_BAND"):
            custody.parse_band(bad)
    band = (1_000, 2_000)
    assert custody.band_status(999 * 10**9, 10**9, band) == "below"
    assert custody.band_status(1_000 * 10**9, 10**9, band) == "within"
    assert custody.band_status(2_000 * 10**9, 10**9, band) == "within"
    assert custody.band_status(2_000 * 10**9 + 1, 10**9, band) == "above"
    assert custody.band_status(None, 10**9, band) == ""
    assert custody.band_status(5, 10**9, None) == ""
    assert custody.BAND_ADVICE["below"] == "below minimum: refill from cold"
    assert custody.BAND_ADVICE["above"] == "above maximum: sweep to cold"


def test_onchain_amounts_are_shown_exactly() -> None:
    assert custody.onchain_text("ETH", 10**16, 10**9) == "0.010000000 ETH"
    assert custody.onchain_text("ETH", 10**16 + 123, 10**9) == "0.010000000000000123 ETH"
    assert custody.onchain_text("ETH", -1, 10**9) == "-0.000000000000000001 ETH"
    assert custody.onchain_text("ETH", 12_345 * 10**18 + 1, 10**9) == \
        "12,345.000000000000000001 ETH"
    assert custody.onchain_text("USDT", 5_000_000, 1) == "5.000000 USDT"
    assert custody.onchain_text("USDC", 5 * 10**18 + 1, 10**12) == "5.000000000000000001 USDC"
    assert custody.onchain_text("USDC", 7, None) == "7 on-chain units of USDC"
    assert custody.ledger_text("ETH", -1) == "-0.000000001 ETH"


def _run(block: int, clean: bool, totals: dict, issues: list[tuple] = (),
         per_unit: dict | None = None) -> int:
    summary = {"addresses": 3, "totals": totals}
    if per_unit is not None:
        summary["per_unit"] = per_unit
    with ledger_tx() as s:
        run = ReconcileRun(chain="ethereum", block_number=block, block_hash="0x" + "ee" * 32,
                           clean=clean, issues=len(issues), summary=json.dumps(summary),
                           started_at=utcnow(), finished_at=utcnow())
        s.add(run)
        s.flush()
        for cur, kind, exp, act in issues:
            s.add(ReconcileIssue(run_id=run.id, currency=cur, kind=kind, detail="d",
                                 expected=exp, actual=act))
        return run.id


def test_runs_newest_first_with_exact_totals_and_issues(any_env: str) -> None:
    support, _, _ = make_staff(Role.support)
    first = _run(10, True, {"ETH": {"onchain": str(10**16 + 123),
                                    "expected": str(10**16 + 123)}})
    second = _run(20, False, {"ETH": {"onchain": str(10**16), "expected": str(10**16 + 5)},
                              "USDT": {"onchain": "5000000", "expected": "5000000"}},
                  [("ETH", "balance", str(10**16 + 5), str(10**16)),
                   ("USDT", "credit_not_on_chain", "2500000", "")],
                  per_unit={"ETH": 10**9, "USDT": 1})
    with audited({}):  # no personal data: the views are not audited
        runs = staff_custody.reconcile_runs(support)
    assert [r.id for r in runs] == [second, first]
    assert (runs[0].clean, runs[0].issues, runs[0].block, runs[0].addresses) == \
        (False, 2, 20, 3)
    eth, usdt = runs[0].totals
    assert (eth.onchain, eth.expected, eth.difference, eth.matches) == (
        "0.010000000 ETH", "0.010000000000000005 ETH", "-0.000000000000000005 ETH", False)
    assert (usdt.onchain, usdt.matches, usdt.difference) == ("5.000000 USDT", True, "")
    assert runs[1].totals[0].onchain == "0.010000000000000123 ETH"

    assert [r.id for r in staff_custody.reconcile_runs(support, second)] == [first]
    assert [r.id for r in staff_custody.reconcile_runs(support, str(first))] == []
    assert len(staff_custody.reconcile_runs(support, None, 1)) == 1

    run, issues = staff_custody.reconcile_issues(support, second)
    assert run.id == second
    assert [(i.currency, i.kind, i.expected, i.actual) for i in issues] == [
        ("ETH", "balance", "0.010000000000000005 ETH", "0.010000000 ETH"),
        ("USDT", "credit_not_on_chain", "2.500000 USDT", "")]
    for junk in (0, -1, True, None, "x", 2**40, 999_999):
        with pytest.raises(NotFound):
            staff_custody.reconcile_issues(support, junk)


def test_a_garbled_summary_shows_no_totals(app_env) -> None:  # noqa: ANN001
    support, _, _ = make_staff(Role.support)
    with ledger_tx() as s:
        s.add(ReconcileRun(chain="ethereum", block_number=1, block_hash="0x", clean=True,
                           issues=0, summary="not json", started_at=utcnow(),
                           finished_at=utcnow()))
    run, = staff_custody.reconcile_runs(support)
    assert run.totals == [] and run.clean


def test_views_refuse_players_and_anonymous_callers(app_env) -> None:  # noqa: ANN001
    player, _ = register()
    _run(1, True, {})
    for token, exc in ((player, Forbidden), (None, NotAuthenticated), ("forged", NotAuthenticated)):
        with pytest.raises(exc):
            staff_custody.reconcile_runs(token)
        with pytest.raises(exc):
            staff_custody.reconcile_issues(token, 1)
        with pytest.raises(exc):
            staff_custody.wallets(token)
        with pytest.raises(exc):
            staff_custody.reconcile_now(token, new_ctx())


def test_wallets_without_a_node(app_env, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    support, _, _ = make_staff(Role.support)
    reconfigure(monkeypatch, eth_hot_band="ETH:1000000000:5000000000,USDT:1:2")
    o = staff_custody.wallets(support)
    assert o.node == "not configured" and "CASINO_ETH_RPC_URL" in o.node_error
    assert [w.currency for w in o.wallets] == ["ETH", "USDT"]
    eth = o.wallets[0]
    assert (eth.custody, eth.hot_balance, eth.band_status) == ("0.000000000 ETH", "", "")
    assert eth.band == "1.000000000 ETH – 5.000000000 ETH"
    assert o.latest is None

    reconfigure(monkeypatch, eth_hot_band="ETH:5:1")
    o = staff_custody.wallets(support)
    assert any("CASINO_ETH_HOT_BAND" in e for e in o.config_errors)


def test_reconcile_now_is_refused_without_a_node(app_env) -> None:  # noqa: ANN001
    admin, _, _ = make_staff(Role.admin)
    support, _, _ = make_staff(Role.support)
    with pytest.raises(ValidationFailed, match="No Ethereum node is configured"), audited({}):
        staff_custody.reconcile_now(admin, new_ctx())
    with pytest.raises(Forbidden, match="Only an admin"), audited({}):
        staff_custody.reconcile_now(support, new_ctx())
    with ledger_tx(readonly=True) as s:
        assert s.query(ReconcileRun).count() == 0


def test_bitcoin_without_a_node(app_env) -> None:  # noqa: ANN001
    admin, _, _ = make_staff(Role.admin)
    assert staff_custody.configured_chains(admin) == ["ethereum"]
    with pytest.raises(ValidationFailed, match="No Bitcoin node is configured"), audited({}):
        staff_custody.reconcile_now(admin, new_ctx(), chain="bitcoin")
    with pytest.raises(ValidationFailed, match="No such chain"), audited({}):
        staff_custody.reconcile_now(admin, new_ctx(), chain="bitcoin; drop table")
    o = staff_custody.wallets(admin, "bitcoin")
    assert o.node == "not configured" and "CASINO_BTC_RPC_URL" in o.node_error
    assert [(w.currency, w.custody, w.hot_balance) for w in o.wallets] == [
        ("BTC", "0.00000000 BTC", "")]
    assert staff_custody.reconcile_runs(admin, chain="bitcoin") == []


def test_wallets_without_a_node_do_not_ask_for_the_signer(
        app_env, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """/admin/wallets with no chain said to start `casino worker` while `casino run` was
    running: without a node there is no hot wallet to read, only the way to get one."""
    support, _, _ = make_staff(Role.support)
    reconfigure(monkeypatch, eth_rpc_url="", eth_xpub="")  # a fresh data folder: no xpub
    o = staff_custody.wallets(support)
    assert o.node == "not configured" and "casino devnet" in o.node_error
    assert not any("casino worker" in e for e in o.config_errors), o.config_errors
