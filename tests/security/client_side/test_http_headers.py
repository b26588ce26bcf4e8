"""Client-side defences of the served pages (WSTG-CLNT), read from the running app as a
browser receives them: every page the app serves, its static files, its 404s and its
API carry the security headers; the CSP allows no inline script it does not list by
hash (and lists every inline script the served page really has, so nothing is allowed
blindly and nothing the page needs is blocked), no eval, no framing by another site
(clickjacking: ``frame-ancestors 'none'`` and ``X-Frame-Options: DENY``); the bind
cookie is HttpOnly and SameSite=Strict and never cached for everyone; and the sign-in
page's ``next`` sends nobody to another site (an open redirect)."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from casino_app.api.csp import inline_script_hashes
from casino_app.ui import routes
from casino_app.ui.state.auth import LoginState
from tests.support import live

pytestmark = pytest.mark.security

PAGES = [routes.HOME, routes.LOGIN, routes.REGISTER, routes.FORGOT, routes.RESET,
         routes.UNLOCK, routes.REGISTER_CONFIRM, routes.TERMS, routes.ACCOUNT, routes.SECURITY,
         routes.SESSIONS, routes.STAFF, routes.STAFF_PLAYER + "?id=1", routes.STAFF_AUDIT,
         routes.STAFF_WITHDRAWALS, routes.BETS, routes.BET + "?id=1", routes.FAIRNESS,
         routes.VERIFY, routes.WALLET, routes.game("dice"), routes.game("mines"),
         routes.RESERVES, routes.PROVIDER_GAME + "?g=p1", "/no-such-page",
         "/games/no-such-game"]
OTHER = ["/manifest.webmanifest", "/sw.js", "/offline.html", "/favicon.ico", "/sitemap.xml",
         "/api/livez", "/api/readyz", "/api/metrics", "/api/no-such-route", "/ping",
         "/api/reserves/latest.json"]
HEADERS = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "strict-origin-when-cross-origin",
    "cross-origin-opener-policy": "same-origin",
}


def directives(csp: str) -> dict[str, list[str]]:
    out = {}
    for part in csp.split(";"):
        name, *values = part.split()
        out[name] = values
    return out


def assert_protected(r: httpx.Response, what: str) -> dict[str, list[str]]:
    for name, value in HEADERS.items():
        assert r.headers.get(name) == value, f"{what}: {name} is {r.headers.get(name)!r}"
    assert r.headers.get("strict-transport-security", "").startswith("max-age="), what
    assert "camera=()" in r.headers.get("permissions-policy", ""), what
    csp = directives(r.headers.get("content-security-policy", ""))
    assert csp.get("frame-ancestors") == ["'none'"], f"{what} may be framed: {csp}"
    assert csp.get("object-src") == ["'none'"] and csp.get("base-uri") == ["'self'"], what
    script = csp.get("script-src", [])
    assert script and script[0] == "'self'", f"{what}: script-src {script}"
    assert not {"'unsafe-inline'", "'unsafe-eval'", "*", "data:", "http:", "https:"} & \
        set(script), f"{what}: script-src {script}"
    assert all(s == "'self'" or re.fullmatch(r"'sha256-[A-Za-z0-9+/]+=*'", s)
               for s in script), f"{what}: script-src {script}"
    assert csp.get("script-src-attr") == ["'none'"], what
    assert csp.get("form-action") == ["'self'"], what
    return csp


def test_every_page_is_protected_and_runs_only_its_own_inline_scripts(
        attacked: live.Casino) -> None:
    with httpx.Client(base_url=attacked.url, timeout=30) as http:
        for page in PAGES:
            r = http.get(page, follow_redirects=True)
            for hop in r.history:  # a redirect (a trailing slash) is protected too
                assert_protected(hop, f"{page} ({hop.status_code})")
                assert same_site(attacked.url, hop.headers["location"]), hop.headers
            assert r.status_code in (200, 404), f"{page}: {r.status_code}"
            assert "text/html" in r.headers.get("content-type", ""), page
            csp = assert_protected(r, page)
            needed = inline_script_hashes(r.text)
            assert needed, f"{page} has no inline script: is this the built page?"
            missing = needed - set(csp["script-src"])
            assert not missing, f"{page}: inline scripts the CSP would block: {missing}"
            # no inline event handler attributes (script-src-attr 'none' would block them)
            assert not re.search(r"<[^>]+\son[a-z]+\s*=", r.text, re.I), \
                f"{page} has an inline event handler"
        for path in OTHER:
            r = http.get(path)
            assert r.status_code < 500, f"{path}: {r.status_code}"
            assert_protected(r, path)


def test_api_answers_are_never_cached_and_the_bind_cookie_is_private(
        attacked: live.Casino) -> None:
    with httpx.Client(base_url=attacked.url, timeout=30) as http:
        for path in ("/api/livez", "/api/readyz", "/api/metrics", "/api/nope"):
            assert http.get(path).headers.get("cache-control") == "no-store", path
        first = http.get(routes.LOGIN)  # a new browser: no cookie yet
        cookies = first.headers.get_list("set-cookie")
        bind = [c for c in cookies if c.split("=", 1)[0].endswith("hh_bind")]
        assert len(bind) == 1, cookies
        flags = {f.strip().lower() for f in bind[0].split(";")[1:]}
        assert {"httponly", "samesite=strict", "path=/"} <= flags, bind
        assert "private" in first.headers.get("cache-control", ""), \
            "a page that sets a browser's own cookie may be cached for everyone"
        again = http.get(routes.LOGIN)  # the cookie is kept: not set again
        assert not [c for c in again.headers.get_list("set-cookie") if "hh_bind" in c]


def same_site(base: str, location: str) -> bool:
    """Whether a browser on ``base`` that follows ``location`` stays on this site (URL
    resolution as browsers do it; a backslash or a control character, which some
    browsers drop or read as a slash, is refused outright)."""
    if "\\" in location or any(c < " " or c == "\x7f" for c in location):
        return False
    resolved = urlsplit(urljoin(base + "/", location))
    return (resolved.scheme, resolved.netloc) == (urlsplit(base).scheme, urlsplit(base).netloc)


def test_no_served_path_redirects_to_another_site(attacked: live.Casino) -> None:
    """The static file server's own redirects (a trailing slash added, a path cleaned)
    keep the browser on this site, whatever the path looks like."""
    with httpx.Client(base_url=attacked.url, timeout=30) as http:
        for path in ("//evil.example", "//evil.example/", "/%2F%2Fevil.example",
                     "/%2F%2Fevil.example/", "/%5Cevil.example", "/login//evil.example",
                     "/.//evil.example", "/%09/evil.example", "/login/..//evil.example",
                     "/games/..%2F..%2F%2Fevil.example", "/login", "/games/dice"):
            r = http.get(path)
            assert r.status_code < 500, f"{path}: {r.status_code}"
            if 300 <= r.status_code < 400:
                assert same_site(attacked.url, r.headers.get("location", "")), \
                    f"{path} redirects to {r.headers.get('location')!r}"


OPEN_REDIRECTS = ["https://evil.example/", "//evil.example/", "/\\evil.example",
                  "/\t/evil.example", "\\\\evil.example", "javascript:alert(1)",
                  "/%2F%2Fevil.example", "http:evil.example", " /account", "/\r\n//evil"]


async def test_sign_in_never_sends_the_browser_to_another_site(attacked: live.Casino) -> None:
    """``/login?next=`` takes same-site paths only (WSTG-CLNT-04): a phishing link that
    signs the player in on the real site and then hands them to a copy of it."""
    player = live.new_player("Redirected")
    for target in OPEN_REDIRECTS:
        page = routes.LOGIN + "?" + httpx.QueryParams({"next": target}).__str__()
        async with attacked.tab(None, page) as tab:
            await tab.open()
            answer = await tab.call(LoginState, "submit_password",
                                    form={"email": player.email, "password": player.password})
            assert answer.redirects, f"{target!r}: no redirect after sign-in"
            for path in answer.redirects:
                assert path.startswith("/") and same_site(attacked.url, path), \
                    f"next={target!r} redirected to {path!r}"
    # a same-site path is kept
    async with attacked.tab(None, routes.LOGIN + "?next=/bets") as tab:
        await tab.open()
        answer = await tab.call(LoginState, "submit_password",
                                form={"email": player.email, "password": player.password})
        assert answer.redirects == ["/bets"]
