"""The strict CSP and the HttpOnly session cookie, in Chromium against the production
build (issue 10: "the CSP allows 'unsafe-inline' and 'unsafe-eval', and the session
token lives in localStorage").

A player's main pages (lobby, a game with a bet, wallet, verifier, sign-in with 2FA,
account security) run with the header the app sends, and the browser reports no CSP
violation and no script error. The session token is a cookie that page scripts cannot
read; it is never in localStorage, document.cookie or any websocket frame; it survives
reloads, reaches other tabs, is rotated on a password change and removed on sign-out;
and a handoff code copied out of the page does not sign anyone in elsewhere.
"""

from __future__ import annotations

import base64
import re
import secrets
import socket
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.e2e.conftest import PHONE, LiveApp
from tests.e2e.flows import (
    at,
    code_for_next_step,
    enrol_2fa,
    enter_code,
    expect_signed_out,
    goto,
    login_password,
    register,
    sign_out,
)

pytestmark = pytest.mark.e2e

PASSWORD = "strict policy pass phrase"
NEW_PASSWORD = "rotated policy pass phrase"

# Reported to Python through a binding that survives navigations (an init script runs in
# every document before the page's own scripts).
_REPORT = """
document.addEventListener("securitypolicyviolation", (e) => window.__cspReport({
  directive: e.effectiveDirective, blocked: e.blockedURI, disposition: e.disposition,
  sample: (e.sample || "").slice(0, 120), source: e.sourceFile, line: e.lineNumber,
  page: location.pathname}));
"""


@pytest.fixture(params=[pytest.param(PHONE, id="phone")])
def viewport(request: pytest.FixtureRequest) -> dict[str, int]:
    return request.param


class Watch:
    """CSP violations, uncaught script errors and websocket frames of one context."""

    def __init__(self, ctx: BrowserContext) -> None:
        self.violations: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.frames: list[str] = []
        ctx.expose_binding("__cspReport", lambda _src, v: self.violations.append(v))
        ctx.add_init_script(_REPORT)
        ctx.on("page", self.page)

    def page(self, page: Page) -> None:
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("console", lambda m: self.errors.append(m.text)
                if m.type == "error" and "Content Security Policy" in m.text else None)
        page.on("websocket", lambda ws: (
            ws.on("framereceived", lambda f: self.frames.append(str(f))),
            ws.on("framesent", lambda f: self.frames.append(str(f)))))

    def assert_clean(self) -> None:
        assert self.violations == [], self.violations
        assert self.errors == [], self.errors


def _csp(page: Page, path: str) -> dict[str, str]:
    header = page.request.get(path).headers["content-security-policy"]
    return {p.strip().split(" ")[0]: p.strip().partition(" ")[2] for p in header.split(";")}


def _session_cookie(ctx: BrowserContext) -> dict[str, Any] | None:
    found = [c for c in ctx.cookies() if c["name"].endswith("hh_session")]
    return found[0] if found else None


def _eventually(check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.time() + timeout
    while not check():
        assert time.time() < deadline, "timed out"
        time.sleep(0.1)


def _balance(page: Page) -> str:
    return page.locator("#header-balance").inner_text().strip()


def test_the_main_pages_work_under_the_strict_csp_without_a_violation(
        new_context, live_app: LiveApp) -> None:  # noqa: ANN001
    ctx = new_context()
    watch = Watch(ctx)
    page = ctx.new_page()

    csp = _csp(page, "/login")
    assert csp["script-src"].startswith("'self' 'sha256-")
    assert "unsafe" not in csp["script-src"] and "unsafe" not in csp["default-src"]
    assert csp["object-src"] == "'none'" and csp["frame-ancestors"] == "'none'"

    # Registration ends with a notice sent by the server (a toast, without eval).
    email = f"csp-{secrets.token_hex(4)}@example.com"
    register(page, email, "Strict Player", PASSWORD)
    expect(page.get_by_text("Welcome to HashHouse!")).to_be_visible()

    # The lobby, and a game with a bet.
    goto(page, "/")
    expect(page.locator("#all-games .game-tile")).to_have_count(5)
    goto(page, "/games/dice")
    expect(page.locator("#header-balance")).to_be_visible()
    expect(page.locator("#header-balance")).to_have_text("1,000.00")  # play money to start
    before = _balance(page)
    page.locator("#bet-button").click()
    expect(page.locator("#result-bet")).to_be_visible()
    expect(page.locator("#header-balance")).not_to_have_text(before)

    # The wallet; the in-page copy button is compiled code (clipboard + toast).
    goto(page, "/wallet")
    expect(page.get_by_role("heading", name="Wallet", exact=True)).to_be_visible()

    # The verifier runs its compiled script in the page.
    goto(page, "/fairness")
    expect(page.get_by_role("link", name="Open the verifier")).to_be_visible()
    goto(page, "/verify?game=dice&server_seed=" + "ab" * 32 + "&client_seed=c&nonce=0")
    page.wait_for_function("() => !!window.HashHouseVerify")
    page.locator("#verify-run").click()
    expect(page.locator("#verify-outcome")).to_have_text(re.compile(r"rolled \d+\.\d\d"))

    # 2FA on the security page keeps the recovery codes on screen (the session is
    # rotated meanwhile), then sign-out and sign-in with the second factor.
    secret, _ = enrol_2fa(page, PASSWORD)
    expect(page.get_by_text("Two-factor authentication is on.")).to_be_visible()
    sign_out(page)
    login_password(page, email, PASSWORD)
    enter_code(page, code_for_next_step(secret))
    page.wait_for_url(at("/account"))
    expect(page.get_by_text(email)).to_be_visible()

    # Staff pages refuse a player with a notice from the server.
    page.goto("/admin")
    page.wait_for_url(at("/account"))
    expect(page.get_by_text("That page is for staff only.")).to_be_visible()

    watch.assert_clean()


def test_the_session_is_an_httponly_cookie_scripts_never_see(
        new_context, live_app: LiveApp) -> None:  # noqa: ANN001
    ctx = new_context()
    watch = Watch(ctx)
    tab1 = ctx.new_page()
    email = f"cookie-{secrets.token_hex(4)}@example.com"
    register(tab1, email, "Cookie Player", PASSWORD)

    cookie = _session_cookie(ctx)
    assert cookie is not None, ctx.cookies()
    token = cookie["value"]
    assert len(token) >= 43
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/"
    bind = [c for c in ctx.cookies() if c["name"].endswith("hh_bind")]
    assert bind and bind[0]["httpOnly"] and bind[0]["sameSite"] == "Strict"

    def scripts_see(page: Page) -> str:
        return page.evaluate("""() => JSON.stringify([document.cookie,
            Object.entries(localStorage), Object.entries(sessionStorage)])""")

    tab1.reload()
    expect(tab1.get_by_text(email)).to_be_visible()  # still signed in after a reload
    visible = scripts_see(tab1)
    assert token not in visible and "hh_session=" not in visible

    # Another tab of the same browser is signed in.
    tab2 = ctx.new_page()
    goto(tab2, "/account")
    expect(tab2.get_by_text(email)).to_be_visible()

    # A password change rotates the token: this tab stays signed in and says so, the
    # other tab picks up the new cookie, and the old token opens nothing any more.
    goto(tab1, "/account/security")
    region = tab1.get_by_role("region", name="Change password")
    region.get_by_label("Current password").fill(PASSWORD)
    region.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    region.get_by_label("Repeat new password").fill(NEW_PASSWORD)
    region.get_by_role("button", name="Change password").click()
    expect(tab1.get_by_text("Password changed.")).to_be_visible()
    _eventually(lambda: (_session_cookie(ctx) or {}).get("value") not in (None, token))
    rotated = _session_cookie(ctx)["value"]
    goto(tab1, "/account")
    expect(tab1.get_by_text(email)).to_be_visible()
    goto(tab2, "/account")
    expect(tab2.get_by_text(email)).to_be_visible()
    thief = new_context()
    thief.add_cookies([{"name": cookie["name"], "value": token, "url": live_app.url}])
    expect_signed_out(thief.new_page())

    # Sign-out in one tab removes the cookie and signs the other tab out too.
    sign_out(tab1)
    _eventually(lambda: _session_cookie(ctx) is None)
    tab2.wait_for_url(at("/login", query=True))
    thief2 = new_context()
    thief2.add_cookies([{"name": cookie["name"], "value": rotated, "url": live_app.url}])
    expect_signed_out(thief2.new_page())

    # Signing in again in one tab brings the other (on the sign-in page) along.
    login_password(tab1, email, NEW_PASSWORD)
    tab1.wait_for_url(at("/account"))
    tab2.wait_for_url(at("/account"))
    expect(tab2.get_by_text(email)).to_be_visible()

    final = _session_cookie(ctx)["value"]
    seen = "\n".join(watch.frames) + scripts_see(tab1) + scripts_see(tab2)
    for value in (token, rotated, final):
        assert value not in seen, "a session token reached the page"
    watch.assert_clean()


def test_a_handoff_code_copied_out_of_the_page_signs_nobody_in(
        new_context, live_app: LiveApp) -> None:  # noqa: ANN001
    """What an injected script could read during a sign-in (the handoff code in the
    tab's state) is useless on another machine: it is bound to the HttpOnly bind
    cookie of the browser that signed in."""
    ctx = new_context()
    watch = Watch(ctx)
    page = ctx.new_page()
    register(page, f"handoff-{secrets.token_hex(4)}@example.com", "Handoff", PASSWORD)
    codes = re.findall(r'\\?"code\\?":\s*\\?"([A-Za-z0-9_-]{40,})', "\n".join(watch.frames))
    assert codes, "the sign-in sent no handoff code"

    attacker = new_context()
    attacker_page = attacker.new_page()
    goto(attacker_page, "/login")  # the attacker's own browser, with its own bind cookie
    r = attacker.request.post(live_app.url + "/api/session/adopt", form={"code": codes[-1]},
                              headers={"Origin": live_app.url})
    assert r.status == 400
    assert _session_cookie(attacker) is None
    # A form on another site cannot post it either.
    r = page.request.post(live_app.url + "/api/session/adopt", form={"code": codes[-1]},
                          headers={"Origin": "https://evil.example"})
    assert r.status == 403


def _handshake_status(url: str, origin: str, cookie: str) -> int:
    """The HTTP status of a raw websocket handshake at /_event (101 = accepted)."""
    parts = urlsplit(url)
    key = base64.b64encode(secrets.token_bytes(16)).decode()
    request = (f"GET /_event/?EIO=4&transport=websocket&token={secrets.token_hex(8)} HTTP/1.1\r\n"
               f"Host: {parts.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
               f"Origin: {origin}\r\nCookie: {cookie}\r\n\r\n")
    with socket.create_connection(("127.0.0.1", parts.port), timeout=10) as conn:
        conn.sendall(request.encode())
        status_line = conn.recv(1024).split(b"\r\n", 1)[0].decode()
    return int(status_line.split()[1])


def test_another_site_cannot_open_the_socket_with_the_players_cookie(
        new_context, live_app: LiveApp) -> None:  # noqa: ANN001
    """Cross-site WebSocket hijacking: even a request that carried the cookie (browsers do
    not send a SameSite=Strict cookie with another site's socket) is refused for its
    Origin."""
    ctx = new_context()
    page = ctx.new_page()
    register(page, f"cswsh-{secrets.token_hex(4)}@example.com", "Socket", PASSWORD)
    cookie = _session_cookie(ctx)
    assert cookie is not None
    jar = f"{cookie['name']}={cookie['value']}"
    assert _handshake_status(live_app.url, live_app.url, jar) == 101
    assert _handshake_status(live_app.url, "https://evil.example", jar) in (400, 403)
