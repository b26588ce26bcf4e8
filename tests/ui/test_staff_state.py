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
