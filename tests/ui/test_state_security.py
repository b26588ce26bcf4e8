"""Every public method of an rx.State can be called by any browser. This walks every
State class of the app and calls each public handler as an anonymous caller (no session
token) with plausible arguments, against databases holding real players, staff and
sessions: handlers that act on an account must refuse and change nothing. Handlers that
are meant for anonymous visitors (sign-up, sign-in, reset, unlock) are listed here and
checked to reject junk without creating anything."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import os
from typing import Any

import pytest
from sqlalchemy import text

from tests.support.states import app_states

os.environ.setdefault("PYTEST_CURRENT_TEST", "state-security")

# Handlers made for visitors who are not signed in. Everything else must refuse them.
ANONYMOUS_OK = {
    "SessionState": {"refresh", "require_player", "require_staff", "redirect_if_signed_in",
                     "logout"},
    "RegisterState": {"submit", "again"},
    "RegisterConfirmState": {"on_open", "submit"},
    "LoginState": {"submit_password", "submit_code", "restart"},
    "ForgotState": {"submit", "again"},
    "ResetState": {"on_open", "submit"},
    "UnlockState": {"on_open"},
    "SecurityState": {"cancel"},  # clears the tab's own view, touches no data
    "VerifyState": {"on_open"},  # the public verifier: reads its form values from the URL
}

JUNK_FORM = {
    "email": "victim@example.com", "password": "victim pass phrase",
    "password_confirm": "victim pass phrase", "display_name": "Mallory",
    "date_of_birth": "1990-01-01", "accept_terms": "on", "code": "123456",
    "current_password": "victim pass phrase", "current_code": "123456",
    "new_password": "a brand new passphrase", "new_password_confirm": "a brand new passphrase",
    "reason": "because", "role": "admin", "query": "victim",
}


def _fingerprint() -> str:
    from casino_app.core.db import databases

    h = hashlib.sha256()
    dbs = databases()
    for engine in (dbs.identity_engine, dbs.ledger_engine):
        from sqlalchemy import inspect as sa_inspect

        with engine.connect() as conn:
            for table in sorted(sa_inspect(conn).get_table_names()):
                rows = conn.execute(text(f'SELECT * FROM "{table}"')).fetchall()  # noqa: S608
                h.update(table.encode())
                h.update(repr(sorted(map(repr, rows))).encode())
    return h.hexdigest()


def _args_for(fn: Any) -> list[Any]:
    args = []
    for name, p in list(inspect.signature(fn).parameters.items())[1:]:
        ann = str(p.annotation)
        if "dict" in ann or name == "form":
            args.append(dict(JUNK_FORM))
        elif "int" in ann:
            args.append(1)
        else:
            args.append("x")
    return args


async def _call(state: Any, handler: Any, args: list[Any]) -> list[Any]:
    out = handler.fn(state, *args)
    if inspect.isasyncgen(out):
        return [x async for x in out]
    if inspect.iscoroutine(out):
        out = await out
    return [out]


def _redirects_to_login(results: list[Any]) -> bool:
    flat: list[Any] = []
    for r in results:
        flat.extend(r if isinstance(r, list) else [r])
    return any("/login" in repr(r) for r in flat)


@pytest.fixture
def populated(app_env):  # noqa: ANN001, ANN201
    """A player with 2FA-free sessions, a locked player and an admin."""
    from casino_app.users import accounts, staff
    from casino_app.users.models import Role
    from casino_app.users.sessions import RequestContext
    from tests.support.signup import sign_up

    ctx = RequestContext("10.0.0.1", "pytest")
    sign_up(email_addr="victim@example.com", password="victim pass phrase",
            display_name="Victim", date_of_birth="1990-01-01", ctx=ctx)
    sign_up(email_addr="other@example.com", password="other pass phrase",
            display_name="Other", date_of_birth="1990-01-01", ctx=ctx)
    staff.create_staff("boss@example.com", "boss pass phrase 1", Role.admin)
    accounts.begin_login(email="boss@example.com", password="boss pass phrase 1", ctx=ctx)
    return app_env


def _fresh_root() -> Any:
    """A new root state with every substate of the app (a state class defined after the
    root was made would be missing from it, whatever test ran first in the process)."""
    from reflex.state import State

    import casino_app.ui.pages  # noqa: F401  (defines every state)

    return State(_reflex_internal_init=True)


def _substate(root: Any, cls: type) -> Any:
    return root.get_substate(cls.get_full_name().split(".")[1:])


def test_every_public_handler_is_classified_and_protected(populated) -> None:  # noqa: ANN001
    states = app_states()
    assert {s.__name__ for s in states} >= set(ANONYMOUS_OK), "a known state disappeared"
    assert "DepositsState" in {s.__name__ for s in states}  # the wallet (deposit addresses)
    checked = 0
    for cls in states:
        for name, handler in cls.event_handlers.items():
            if name.startswith("_") or name == "setvar":
                continue
            root = _fresh_root()
            state = _substate(root, cls)
            if hasattr(state, "_user_id"):
                state._user_id = 1  # a tab that had a victim's page open
            before = _fingerprint()
            results = asyncio.run(_call(state, handler, _args_for(handler.fn)))
            after = _fingerprint()
            if name in ANONYMOUS_OK.get(cls.__name__, set()):
                continue  # checked below with junk input
            checked += 1
            assert before == after, f"{cls.__name__}.{name} changed data for an anonymous caller"
            assert _redirects_to_login(results) or results == [None], \
                f"{cls.__name__}.{name} did not refuse an anonymous caller: {results!r}"
    assert checked >= 15


def test_setvar_cannot_set_any_state_var_from_the_browser(populated) -> None:  # noqa: ANN001
    from casino_app.ui.state.session import SessionState

    root = _fresh_root()
    for cls in app_states():
        state = _substate(root, cls)
        for var in list(cls.base_vars)[:20]:
            if var.startswith("_"):
                continue
            with pytest.raises(AttributeError):
                asyncio.run(_call(state, cls.event_handlers["setvar"], [var, "forged"]))
    sess = _substate(root, SessionState)
    assert sess.role == ""


def test_anonymous_handlers_reject_junk_without_creating_anything(populated) -> None:  # noqa: ANN001
    from casino_app.ui.state.auth import (
        ForgotState,
        LoginState,
        RegisterConfirmState,
        RegisterState,
        ResetState,
    )

    junk_values: list[Any] = [None, 42, [], {}, "", "x" * 5000, "'; DROP TABLE users;--",
                              "<script>alert(1)</script>", "\u202e\u0000emoji😀"]
    for junk in junk_values:
        root = _fresh_root()
        before = _fingerprint()
        form = {k: junk for k in JUNK_FORM}
        reg = _substate(root, RegisterState)
        asyncio.run(_call(reg, RegisterState.event_handlers["submit"], [form]))
        assert reg.errors or reg.message, f"no message for {junk!r}"
        assert not reg.sent
        confirm = _substate(root, RegisterConfirmState)
        asyncio.run(_call(confirm, RegisterConfirmState.event_handlers["submit"], [form]))
        assert confirm.errors or confirm.message, f"no message for {junk!r}"
        reset = _substate(root, ResetState)
        asyncio.run(_call(reset, ResetState.event_handlers["submit"], [form]))
        assert reset.errors or reset.message
        assert _fingerprint() == before, f"junk {junk!r} changed data"
        login = _substate(root, LoginState)
        asyncio.run(_call(login, LoginState.event_handlers["submit_code"], [form]))
        assert login.message and login.step == "password"
        forgot = _substate(root, ForgotState)
        asyncio.run(_call(forgot, ForgotState.event_handlers["submit"], [form]))
        assert forgot.message and not forgot.sent
