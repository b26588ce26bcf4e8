"""The staff custody handlers (reconciliation, wallets, releasing a hold) from the browser's
side: an anonymous caller and a signed-in player change nothing and see nothing (sent to
sign in, or to their account); support reads but cannot release or reconcile; an admin
releases a hold with a note and is told that reconciling needs a node."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from casino_app.core.clock import utcnow
from casino_app.core.db import ledger_tx
from casino_app.payments.hold_models import PlayerHold
from casino_app.payments.reconcile_models import ReconcileIssue, ReconcileRun
from casino_app.users.models import Role
from tests.ui.test_state_security import _call, _fingerprint, _fresh_root, _substate
from tests.users.helpers import make_staff, register, user_row


@pytest.fixture
def world(app_env) -> dict[str, Any]:  # noqa: ANN001
    """A player with an open hold, a reconciliation run with an issue, an admin, support."""
    token, addr = register()
    victim = user_row(addr)
    with ledger_tx() as s:
        hold = PlayerHold(player_id=victim.player_id, reason="deposit_reversed",
                          detail="owes 5", created_at=utcnow())
        run = ReconcileRun(chain="ethereum", block_number=9, block_hash="0x" + "aa" * 32,
                           clean=False, issues=1, started_at=utcnow(), finished_at=utcnow(),
                           summary=json.dumps({"totals": {"ETH": {"onchain": "1",
                                                                  "expected": "2"}}}))
        s.add_all([hold, run])
        s.flush()
        s.add(ReconcileIssue(run_id=run.id, currency="ETH", kind="balance", detail="off",
                             expected="2", actual="1"))
        ids = {"hold": hold.id, "run": run.id}
    admin, _, _ = make_staff(Role.admin)
    support, _, _ = make_staff(Role.support)
    other_player, _ = register()
    return {"player": token, "other_player": other_player, "victim": victim.id,
            "admin": admin, "support": support, **ids}


def _state(cls: type, token: str | None, user_id: int = 0) -> Any:
    from casino_app.ui.state.session import SessionState

    root = _fresh_root()
    if token:
        _substate(root, SessionState).token = token
    state = _substate(root, cls)
    if user_id and hasattr(state, "_user_id"):
        state._user_id = user_id  # a tab that had the victim's page open
    return state


def _run(state: Any, name: str, *args: Any) -> list[Any]:
    return asyncio.run(_call(state, type(state).event_handlers[name], list(args)))


def _handlers(w: dict[str, Any]) -> list[tuple[type, str, list[Any]]]:
    from casino_app.ui.state.staff_custody import StaffReconcileState, StaffWalletsState
    from casino_app.ui.state.staff_money import StaffMoneyState

    return [
        (StaffReconcileState, "on_open", []),
        (StaffReconcileState, "load_older", []),
        (StaffReconcileState, "show_issues", [w["run"]]),
        (StaffReconcileState, "hide_issues", []),
        (StaffReconcileState, "reconcile_now", []),
        (StaffWalletsState, "on_open", []),
        (StaffWalletsState, "refresh", []),
        (StaffMoneyState, "release_hold", [{"hold_id": str(w["hold"]), "note": "mine now"}]),
    ]


def _shown(state: Any) -> dict[str, Any]:
    """Every var of the state that would carry data to the browser."""
    names = ("runs", "issues", "selected", "wallets", "hot_address", "safe_address",
             "latest", "holds", "deposits", "balances", "entries", "notice", "hold_notice")
    return {n: getattr(state, n) for n in names if hasattr(state, n)
            and getattr(state, n) not in ("", 0, [], None)}


@pytest.mark.parametrize("caller,where", [(None, "/login"), ("player", "/account"),
                                          ("other_player", "/account")])
def test_anonymous_and_player_callers_change_nothing_and_see_nothing(
        world: dict[str, Any], caller: str | None, where: str) -> None:
    token = world[caller] if caller else None
    for cls, name, args in _handlers(world):
        state = _state(cls, token, world["victim"])
        before = _fingerprint()
        results = _run(state, name, *args)
        assert _fingerprint() == before, f"{cls.__name__}.{name} changed data for {caller}"
        assert _shown(state) == {}, f"{cls.__name__}.{name} showed data to {caller}"
        if name != "hide_issues":  # it only clears the tab's own view
            assert where in repr(results), f"{cls.__name__}.{name}: {results!r}"
    with ledger_tx(readonly=True) as s:
        assert s.get(PlayerHold, world["hold"]).released_at is None


def test_support_reads_but_cannot_release_or_reconcile(world: dict[str, Any]) -> None:
    from casino_app.ui.state.staff_custody import StaffReconcileState, StaffWalletsState
    from casino_app.ui.state.staff_money import StaffMoneyState

    rec = _state(StaffReconcileState, world["support"])
    _run(rec, "on_open")
    assert [r.id for r in rec.runs] == [world["run"]] and rec.runs[0].status == "1 issue"
    _run(rec, "show_issues", world["run"])
    assert rec.selected == world["run"] and [i.kind for i in rec.issues] == ["balance"]
    before = _fingerprint()
    _run(rec, "reconcile_now")
    assert rec.message == "Only an admin can start a reconciliation." and not rec.running
    wal = _state(StaffWalletsState, world["support"])
    _run(wal, "on_open")
    assert wal.loaded and wal.node == "not configured" and wal.latest.endswith("1 issue")
    assert [w.currency for w in wal.wallets] == ["ETH"]
    money = _state(StaffMoneyState, world["support"], world["victim"])
    _run(money, "release_hold", {"hold_id": str(world["hold"]), "note": "please"})
    assert money.hold_message == "Only an admin can release a hold."
    assert _fingerprint() == before


def test_an_admin_releases_a_hold_and_hears_there_is_no_node(world: dict[str, Any]) -> None:
    from casino_app.ui.state.staff_custody import StaffReconcileState
    from casino_app.ui.state.staff_money import StaffMoneyState

    rec = _state(StaffReconcileState, world["admin"])
    _run(rec, "reconcile_now")
    assert "No Ethereum node is configured" in rec.message and not rec.running

    money = _state(StaffMoneyState, world["admin"], world["victim"])
    _run(money, "release_hold", {"hold_id": str(world["hold"]), "note": " "})
    assert "note" in money.hold_message
    _run(money, "release_hold", {"hold_id": str(world["hold"]), "note": "paid back"})
    assert money.hold_message == "" and f"Hold #{world['hold']} released" in money.hold_notice
    assert [(h.id, h.open) for h in money.holds] == [(world["hold"], False)]
    _run(money, "release_hold", {"hold_id": str(world["hold"]), "note": "again"})
    assert money.hold_message == "This hold was already released."
