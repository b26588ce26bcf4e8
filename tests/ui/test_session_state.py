"""The session as the handlers see it: read from the HttpOnly cookie in the socket's
handshake headers, kept per socket after a sign-in or rotation, never sent to the page.
Driven as Reflex drives a tab (a State tree whose router data is what the socket's
handshake gave), against real databases."""

from __future__ import annotations

import asyncio
from typing import Any

from reflex.istate.data import HeaderData, ReflexURL, RouterData, SessionData
from reflex_base.utils.format import json_dumps

from casino_app.security.session_cookie import open_handoff
from casino_app.ui.state.auth import LoginState
from casino_app.ui.state.notice import NoticeState
from casino_app.ui.state.session import SessionState, caller
from tests.ui.test_state_security import _call, _fresh_root, _substate

BIND = "bind-cookie-of-the-browser-0123456789"


def _tab(cookie: str = "", sid: str = "sid-1", client: str = "tab-1") -> Any:
    """A tab's State tree as the events of a socket with this handshake see it."""
    root = _fresh_root()
    _connect(root, cookie, sid, client)
    return root


def _connect(root: Any, cookie: str, sid: str, client: str = "tab-1") -> None:
    """The tab's (new) socket: what Reflex puts in router data from its handshake."""
    root.router = RouterData(
        url=ReflexURL("http://localhost:3000/account"),
        session=SessionData(client_token=client, client_ip="10.9.9.9", session_id=sid),
        headers=HeaderData(cookie=cookie, user_agent="pytest"))


def _run(state: Any, name: str, *args: Any) -> list[Any]:
    return asyncio.run(_call(state, type(state).event_handlers[name], list(args)))


def _me(root: Any) -> Any:
    return asyncio.run(caller(_substate(root, SessionState)))[1]


def test_handlers_read_the_session_from_the_sockets_cookie(app_env) -> None:  # noqa: ANN001
    from tests.users.helpers import register

    token, addr = register()
    me = _me(_tab(f"hh_bind={BIND}; hh_session={token}"))
    assert me is not None and me.email == addr
    assert _me(_tab(f"hh_bind={BIND}")) is None
    assert _me(_tab(f"hh_session={token}x")) is None
    # on this http site, a cookie under the https name (__Host-) is not ours
    assert _me(_tab(f"__Host-hh_session={token}")) is None


def test_a_sign_in_holds_for_this_socket_and_hands_the_token_to_the_cookie(
        app_env) -> None:  # noqa: ANN001
    from tests.users.helpers import PASSWORD, register

    _, addr = register()
    root = _tab(f"hh_bind={BIND}")
    login = _substate(root, LoginState)
    _run(login, "submit_password", {"email": addr, "password": PASSWORD})
    sess = _substate(root, SessionState)
    assert sess.signed_in and _me(root).email == addr
    op = sess.cookie_op
    assert op["kind"] == "adopt" and op["id"]
    token = open_handoff(op["code"], BIND)  # what /api/session/adopt sets as the cookie
    assert _me(_tab(f"hh_session={token}")).email == addr
    # Someone who copied the tab's id (sessionStorage) and connects their own socket to
    # the same State tree gets nothing: the token is bound to the socket that signed in.
    _connect(root, cookie="", sid="sid-of-an-attacker")
    assert _me(root) is None
    # The tab's own socket, reconnected after the cookie was set, carries the cookie.
    _connect(root, cookie=f"hh_bind={BIND}; hh_session={token}", sid="sid-2")
    assert _me(root).email == addr


def test_the_token_never_reaches_the_page(app_env) -> None:  # noqa: ANN001
    from tests.users.helpers import PASSWORD, register

    _, addr = register()
    root = _tab(f"hh_bind={BIND}")
    _run(_substate(root, LoginState), "submit_password", {"email": addr, "password": PASSWORD})
    token = open_handoff(_substate(root, SessionState).cookie_op["code"], BIND)
    _connect(root, cookie=f"hh_bind={BIND}; hh_session={token}", sid="sid-1")
    assert _me(root).email == addr
    # every var the page can be sent, serialized as Reflex sends it
    sent = json_dumps(root.dict())
    assert token not in sent and BIND not in sent
    assert "hh_session" not in sent


def test_sign_out_ends_the_session_and_removes_the_cookie(app_env) -> None:  # noqa: ANN001
    from tests.users.helpers import register

    token, _ = register()
    root = _tab(f"hh_bind={BIND}; hh_session={token}")
    sess = _substate(root, SessionState)
    assert _me(root) is not None
    _run(sess, "logout")
    assert sess.cookie_op["kind"] == "clear" and not sess.signed_in
    assert _me(root) is None
    # the old cookie, wherever it is still sent from, no longer opens anything
    assert _me(_tab(f"hh_session={token}", sid="sid-9")) is None


def test_a_stale_cookie_is_not_removed_by_a_tab_that_finds_it_dead(app_env) -> None:  # noqa: ANN001
    """Tab B's socket still sends the token that tab A just rotated away: B shows signed
    out, but must not remove the browser's cookie (it now holds A's new token)."""
    from casino_app.users import accounts
    from tests.users.helpers import new_ctx, register

    token, _ = register()
    accounts.logout(token, new_ctx())
    root = _tab(f"hh_bind={BIND}; hh_session={token}")
    sess = _substate(root, SessionState)
    assert _me(root) is None
    assert sess.cookie_op == {}


def test_server_notices_travel_as_data(app_env) -> None:  # noqa: ANN001
    from casino_app.ui.state.account import SessionsState
    from tests.users.helpers import register

    token, _ = register()
    root = _tab(f"hh_bind={BIND}; hh_session={token}")
    _run(_substate(root, SessionsState), "revoke_others")
    notice = _substate(root, NoticeState).notice
    assert notice["level"] == "success" and notice["text"] == "Signed out 0 other sessions."
    assert len(notice["id"]) == 16
