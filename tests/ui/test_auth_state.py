"""The sign-up pages from the browser's side: the form answers the same for a new and a
taken address, and the mailed link's page creates the account and signs the tab in."""

from __future__ import annotations

import asyncio
from typing import Any

from reflex.istate.data import ReflexURL, RouterData

from tests.ui.test_state_security import _call, _fresh_root, _substate

FORM = {"email": "", "display_name": "Alice Player", "password": "purple elephants dance",
        "password_confirm": "purple elephants dance", "date_of_birth": "1990-05-17",
        "accept_terms": "on"}


def _tab(url: str = "http://localhost:3000/register") -> Any:
    root = _fresh_root()
    root.router = RouterData(url=ReflexURL(url))
    return root


def _run(state: Any, name: str, *args: Any) -> list[Any]:
    return asyncio.run(_call(state, type(state).event_handlers[name], list(args)))


def _shown(state: Any) -> dict[str, Any]:
    return {name: getattr(state, name) for name in type(state).base_vars
            if not name.startswith("_")}


def test_the_sign_up_form_answers_the_same_for_a_new_and_a_taken_address(app_env) -> None:  # noqa: ANN001
    from casino_app.ui.state.auth import RegisterState
    from tests.users.helpers import register, user_count

    register("taken@example.com")
    answers = []
    for addr in ("taken@example.com", "brand.new@example.com"):
        state = _substate(_tab(), RegisterState)
        results = _run(state, "submit", {**FORM, "email": addr})
        answers.append((results, _shown(state)))
    assert answers[0] == answers[1]
    results, shown = answers[0]
    assert results == [None] and shown == {"errors": {}, "message": "", "sent": True}
    assert user_count() == 1  # nothing is created before the mailed link is followed

    # Field errors are the form's own, never about the address.
    state = _substate(_tab(), RegisterState)
    _run(state, "submit", {**FORM, "email": "taken@example.com", "password": "short",
                           "password_confirm": "short"})
    assert set(state.errors) == {"password"} and not state.sent


def test_the_mailed_link_creates_the_account_and_signs_the_tab_in(app_env) -> None:  # noqa: ANN001
    from casino_app.ui.state.auth import RegisterConfirmState, RegisterState
    from casino_app.ui.state.session import SessionState
    from tests.support.signup import confirmation_token
    from tests.users.helpers import user_count, whoami

    _run(_substate(_tab(), RegisterState), "submit", {**FORM, "email": "new@example.com"})
    link = confirmation_token("new@example.com")
    root = _tab(f"http://localhost:3000/register/confirm?token={link}")
    page = _substate(root, RegisterConfirmState)
    _run(page, "on_open")
    assert (page.message, page.failed) == ("", False)
    _run(page, "submit", {"password": "not what I chose"})
    assert set(page.errors) == {"password"} and user_count() == 0
    results = _run(page, "submit", {"password": FORM["password"]})
    assert "/account" in repr(results)
    session = _substate(root, SessionState)
    me = whoami(session.token)
    assert me is not None and me.email == "new@example.com"

    # The link works once; a page without a token says so before anything is typed.
    again = _substate(_tab(f"http://localhost:3000/register/confirm?token={link}"),
                      RegisterConfirmState)
    _run(again, "submit", {"password": FORM["password"]})
    assert again.failed and "sign up again" in again.message.lower()
    empty = _substate(_tab("http://localhost:3000/register/confirm"), RegisterConfirmState)
    _run(empty, "on_open")
    assert empty.failed and empty.message


def test_without_the_sites_cookie_the_link_is_not_spent(app_env, monkeypatch) -> None:  # noqa: ANN001
    """A browser that blocks cookies could not keep the session the link opens: it is
    told so, and the link still works once cookies are allowed."""
    from casino_app.ui.state import auth as auth_state
    from casino_app.ui.state.auth import RegisterConfirmState, RegisterState
    from casino_app.ui.state.session import NO_COOKIES
    from tests.support.signup import confirmation_token
    from tests.users.helpers import user_count

    _run(_substate(_tab(), RegisterState), "submit", {**FORM, "email": "shy@example.com"})
    link = confirmation_token("shy@example.com")
    url = f"http://localhost:3000/register/confirm?token={link}"
    with monkeypatch.context() as blocked:
        blocked.setattr(auth_state, "can_keep_session", lambda sess: False)
        page = _substate(_tab(url), RegisterConfirmState)
        _run(page, "submit", {"password": FORM["password"]})
    assert page.message == NO_COOKIES and user_count() == 0
    page = _substate(_tab(url), RegisterConfirmState)
    assert "/account" in repr(_run(page, "submit", {"password": FORM["password"]}))
    assert user_count() == 1


def test_a_used_or_expired_reset_link_says_so_at_once_and_offers_a_new_one(app_env) -> None:  # noqa: ANN001
    """It still showed the password form, which could only fail after typing twice."""
    from datetime import timedelta

    from sqlalchemy import update

    from casino_app.core.clock import utcnow
    from casino_app.core.db import identity_tx
    from casino_app.ui.state.auth import LINK_GONE, ResetState
    from casino_app.users import accounts
    from casino_app.users.models import ActionToken
    from tests.users.helpers import NEW_PASSWORD, new_ctx, register
    from tests.users.test_reset import _reset_link

    _, addr = register()
    token = _reset_link(addr)
    url = f"http://localhost:3000/reset?token={token}"
    fresh = _substate(_tab(url), ResetState)
    _run(fresh, "on_open")
    assert not fresh.link_gone and fresh.message == ""          # a good link: the form
    accounts.reset_password(token, NEW_PASSWORD, new_ctx())     # used once
    for link in (url, "http://localhost:3000/reset", "http://localhost:3000/reset?token=x"):
        state = _substate(_tab(link), ResetState)
        _run(state, "on_open")
        assert state.link_gone and state.message == LINK_GONE, link
    # the form opened before the link was used answers the same way on submit
    _run(fresh, "submit", {"new_password": NEW_PASSWORD + "!",
                           "new_password_confirm": NEW_PASSWORD + "!"})
    assert fresh.link_gone and fresh.message == LINK_GONE and not fresh.done

    expired = _reset_link(addr)
    with identity_tx() as s:
        s.execute(update(ActionToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    state = _substate(_tab(f"http://localhost:3000/reset?token={expired}"), ResetState)
    _run(state, "on_open")
    assert state.link_gone
