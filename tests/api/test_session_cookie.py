"""The session cookie: handoff codes, ``/api/session/adopt`` and ``/api/session/clear``
(casino_app/security/session_cookie.py, casino_app/api/session.py), against real
databases and real sessions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from casino_app.security.session_cookie import (
    HANDOFF_SECONDS,
    HandoffRefused,
    cookie_names,
    open_handoff,
    parse_cookie_header,
    seal_handoff,
)
from tests.api import assemble

ORIGIN = "http://localhost:3000"
BIND = "bind-value-of-this-browser-0123456789"


def test_a_handoff_code_opens_only_with_its_bind_cookie_and_only_for_a_minute(
        base_env: Path) -> None:
    code = seal_handoff("session-token-1", BIND, now=1_000_000)
    assert "session-token-1" not in code
    assert open_handoff(code, BIND, now=1_000_000 + HANDOFF_SECONDS) == "session-token-1"
    for bind, now in (("another browser", 1_000_000), (BIND, 1_000_000 + HANDOFF_SECONDS + 1),
                      ("", 1_000_000)):
        with pytest.raises(HandoffRefused):
            open_handoff(code, bind, now=now)
    tampered = code[:-3] + ("A" if code[-3] != "A" else "B") + code[-2:]
    for junk in (tampered, "", "x" * 2000, None, 42, "!!!"):
        with pytest.raises(HandoffRefused):
            open_handoff(junk, BIND, now=1_000_000)
    with pytest.raises(ValueError):
        seal_handoff("t", "")


def test_cookie_names_and_parsing() -> None:
    https = cookie_names("https://play.example")
    assert (https.session, https.bind, https.secure) == \
        ("__Host-hh_session", "__Host-hh_bind", True)
    http = cookie_names("http://localhost:3000")
    assert (http.session, http.bind, http.secure) == ("hh_session", "hh_bind", False)
    assert parse_cookie_header('a=1; hh_session="tok"; b; hh_session=second; =x') == \
        {"a": "1", "hh_session": "tok"}
    assert parse_cookie_header(None) == {}


@pytest.fixture
def client(app_env: Path) -> Iterator[TestClient]:
    with TestClient(assemble(Starlette())) as c:
        yield c


def _adopt(client: TestClient, code: object, *, bind: str | None = BIND,
           origin: str | None = ORIGIN):  # noqa: ANN202
    client.cookies.clear()
    if bind is not None:
        client.cookies.set("hh_bind", bind)
    headers = {"Origin": origin} if origin else {}
    return client.post("/api/session/adopt", data={"code": code}, headers=headers)


def _cookie_attrs(set_cookie: str) -> dict[str, str]:
    first, *attrs = [p.strip() for p in set_cookie.split(";")]
    out = {"": first}
    for a in attrs:
        k, _, v = a.partition("=")
        out[k.lower()] = v
    return out


def test_adopt_sets_the_session_as_an_httponly_strict_cookie(client: TestClient) -> None:
    from tests.users.helpers import register

    token, _ = register()
    r = _adopt(client, seal_handoff(token, BIND))
    assert r.status_code == 204
    attrs = _cookie_attrs(r.headers["set-cookie"])
    assert attrs[""] == f"hh_session={token}"
    assert "httponly" in attrs and attrs["samesite"] == "Strict" and attrs["path"] == "/"
    assert attrs["max-age"] == str(7 * 86400)  # the session's absolute lifetime
    assert r.headers["cache-control"] == "no-store"


def test_adopt_refuses_another_browser_a_foreign_page_and_dead_sessions(
        client: TestClient) -> None:
    from casino_app.users import accounts
    from tests.users.helpers import new_ctx, register

    token, _ = register()
    code = seal_handoff(token, BIND)
    refusals = [
        _adopt(client, code, bind="the attacker's own bind cookie"),  # copied elsewhere
        _adopt(client, code, bind=None),
        _adopt(client, code, origin="https://evil.example"),  # another site's form
        _adopt(client, code, origin=None),
        _adopt(client, "not a code"),
    ]
    assert [r.status_code for r in refusals] == [400, 400, 403, 403, 400]
    assert all("set-cookie" not in r.headers for r in refusals)
    accounts.logout(token, new_ctx())
    dead = _adopt(client, code)
    assert dead.status_code == 400 and "set-cookie" not in dead.headers


def test_clear_removes_the_cookie_for_our_own_pages_only(client: TestClient) -> None:
    r = client.post("/api/session/clear", headers={"Origin": ORIGIN})
    assert r.status_code == 204
    attrs = _cookie_attrs(r.headers["set-cookie"])
    assert attrs[""] == "hh_session=" and attrs["max-age"] == "0" and "httponly" in attrs
    foreign = client.post("/api/session/clear", headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 403 and "set-cookie" not in foreign.headers
    assert client.get("/api/session/clear").status_code in (404, 405)  # POST only
