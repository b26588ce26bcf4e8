"""Staff handlers answer a refused caller with a redirect, never an unhandled error."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.ui.test_state_security import _call, _fresh_root, _substate


def _admin_without_2fa() -> str:
    from casino_app.users import accounts, staff
    from casino_app.users.models import Role
    from casino_app.users.sessions import RequestContext

    staff.create_staff("boss@example.com", "boss pass phrase 1", Role.admin)
    step = accounts.begin_login(email="boss@example.com", password="boss pass phrase 1",
                                ctx=RequestContext("10.0.0.9", "pytest"))
    assert step.session_token
    return step.session_token


def _flat(results: list[Any]) -> str:
    return repr(results)


def test_audit_verify_sends_an_admin_without_2fa_to_the_security_page(app_env) -> None:  # noqa: ANN001
    from casino_app.ui.state.session import SessionState
    from casino_app.ui.state.staff import StaffAuditState

    root = _fresh_root()
    _substate(root, SessionState).token = _admin_without_2fa()
    state = _substate(root, StaffAuditState)
    results = asyncio.run(_call(state, StaffAuditState.event_handlers["verify"], []))
    assert "/account/security" in _flat(results)
    assert state.verify_result == ""


def test_signing_out_other_sessions_with_a_session_ended_meanwhile_asks_to_sign_in(
        app_env, monkeypatch) -> None:  # noqa: ANN001
    from casino_app.ui.state.account import SessionsState
    from casino_app.ui.state.session import SessionState
    from casino_app.users import accounts
    from casino_app.users.errors import NotAuthenticated

    def ended(*_: object) -> int:
        raise NotAuthenticated()

    root = _fresh_root()
    _substate(root, SessionState).token = _admin_without_2fa()
    monkeypatch.setattr(accounts, "revoke_my_other_sessions", ended)
    state = _substate(root, SessionsState)
    results = asyncio.run(_call(state, SessionsState.event_handlers["revoke_others"], []))
    assert "/login" in _flat(results)


# Support works on player accounts only ------------------------------------------------------
def _staff_tab(token: str, user_id: int) -> Any:
    from reflex.istate.data import ReflexURL, RouterData

    from casino_app.ui.state.session import SessionState

    root = _fresh_root()
    root.router = RouterData(url=ReflexURL(f"http://localhost:3000/admin/player?id={user_id}"))
    _substate(root, SessionState).token = token
    return root


def _run(state: Any, name: str, *args: Any) -> list[Any]:
    return asyncio.run(_call(state, type(state).event_handlers[name], list(args)))


def test_support_opening_a_staff_account_sees_a_refusal_and_none_of_its_data(app_env) -> None:  # noqa: ANN001
    from casino_app.ui.state.staff import StaffPlayerState, StaffSearchState
    from casino_app.ui.state.staff_money import StaffMoneyState
    from casino_app.users.models import Role
    from tests.users.helpers import audited, make_staff, register, user_row, whoami

    _, player_addr = register()
    support, _, _ = make_staff(Role.support)
    admin, admin_id, admin_addr = make_staff(Role.admin)

    root = _staff_tab(support, admin_id)
    page = _substate(root, StaffPlayerState)
    money = _substate(root, StaffMoneyState)
    with audited({}):
        assert _run(page, "on_open") == [None]  # no redirect: the refusal is shown
        _run(money, "on_open")
        _run(page, "lock", {"reason": "take over"})
        _run(page, "revoke_all")
    assert page.player is None and page.sessions == [] and page.audit == []
    assert page.last_login_ip == ""
    assert "player accounts only" in page.message
    assert money.balances == [] and "player accounts only" in money.message
    assert whoami(admin) is not None and user_row(admin_addr).locked_at is None

    search = _substate(_staff_tab(support, 0), StaffSearchState)
    _run(search, "search", {"query": player_addr.upper()})
    assert [r.email for r in search.results] == [player_addr]
    _run(search, "search", {"query": admin_addr})
    assert search.results == []  # support: players only

    # An admin opens the support account, sessions and IP addresses included.
    _, support_id, _ = make_staff(Role.support)
    root = _staff_tab(admin, support_id)
    page = _substate(root, StaffPlayerState)
    _run(page, "on_open")
    assert page.player is not None and page.player.role == "support"
    assert page.sessions and all(row.ip != "unknown" for row in page.sessions)


# Giving a staff role takes a second admin -------------------------------------------------
def test_a_role_asked_for_on_the_player_page_waits_for_another_admin_there(app_env) -> None:  # noqa: ANN001
    from casino_app.ui.state.staff import StaffPlayerState, StaffRoleRequestsState
    from casino_app.users.models import Role
    from tests.users.helpers import make_staff, register, user_row

    first, _, _ = make_staff(Role.admin)
    second, _, _ = make_staff(Role.admin)
    support, _, _ = make_staff(Role.support)
    _, addr = register()
    target = user_row(addr).id

    page = _substate(_staff_tab(first, target), StaffPlayerState)
    _run(page, "on_open")
    _run(page, "set_role", {"role": "admin", "reason": "second ops admin"})
    assert "another admin must approve" in page.notice and page.player.role == "player"
    (waiting,) = page.role_requests
    assert (waiting.role, waiting.by_me) == ("admin", True)
    _run(page, "approve_role", waiting.id)  # the requester's own approval is refused
    assert "second admin" in page.message and user_row(addr).role == "player"

    home = _substate(_staff_tab(support, 0), StaffRoleRequestsState)
    assert _run(home, "on_open") == [None] and home.rows == []  # support: not theirs
    home = _substate(_staff_tab(second, 0), StaffRoleRequestsState)
    _run(home, "on_open")
    assert [(r.email, r.by_me) for r in home.rows] == [(addr, False)]

    page = _substate(_staff_tab(second, target), StaffPlayerState)
    _run(page, "on_open")
    assert [r.by_me for r in page.role_requests] == [False]
    _run(page, "approve_role", waiting.id)
    assert page.message == "" and "Role granted" in page.notice
    assert page.player.role == "admin" and page.role_requests == []
    assert user_row(addr).role == "admin"

    # Taking it away is one admin's call; a rejection needs a reason.
    _run(page, "set_role", {"role": "player", "reason": "test over"})
    assert "Role changed" in page.notice and user_row(addr).role == "player"
    _run(page, "set_role", {"role": "support", "reason": "helpdesk"})
    (waiting,) = page.role_requests
    page = _substate(_staff_tab(first, target), StaffPlayerState)
    _run(page, "on_open")
    _run(page, "reject_role", {"request_id": str(waiting.id), "reason": ""})
    assert page.message and page.role_requests
    _run(page, "reject_role", {"request_id": str(waiting.id), "reason": "not needed"})
    assert page.notice == "Role request rejected." and page.role_requests == []
    assert user_row(addr).role == "player"


def test_the_staff_homes_role_requests_send_a_player_away_without_a_second_notice(
        app_env) -> None:  # noqa: ANN001
    """The staff home's first on_load (require_staff) already says "staff only"."""
    from casino_app.ui.state.notice import NoticeState
    from casino_app.ui.state.staff import StaffRoleRequestsState
    from tests.users.helpers import register

    player, _ = register()
    root = _staff_tab(player, 0)
    results = _run(_substate(root, StaffRoleRequestsState), "on_open")
    assert "/account" in repr(results)
    assert _substate(root, NoticeState).notice == {}
    assert _substate(root, StaffRoleRequestsState).rows == []
