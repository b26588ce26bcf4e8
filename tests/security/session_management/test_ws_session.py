"""Session management, attacked over the websocket and the session API (WSTG-SESS).

- The session cookie the app sets is HttpOnly, SameSite=Strict, Path=/, with a bounded
  lifetime (plain http here: on https it is also Secure and ``__Host-``-prefixed,
  tests/api/test_session_cookie.py).
- Fixation: a session id planted in the victim's browser before they sign in (an
  attacker's own valid session, or any value) is not what they are signed in with
  afterwards, and the planted one never becomes theirs.
- The token never travels in a URL: no redirect, page address or delta carries it, and
  ``/api/session/adopt`` takes its code from a POST body only (not from the query
  string, not by GET).
- Sign-out ends the session on the server: the old cookie, replayed, is nobody.
"""

from __future__ import annotations

import httpx
import pytest

from casino_app.ui.state.auth import LoginState
from casino_app.ui.state.session import SessionState
from tests.support import live
from tests.support.reflex_client import SESSION_COOKIE, Tab, strings

pytestmark = pytest.mark.security


async def sign_in(tab: Tab, who: live.Account) -> list[str]:
    """Sign in on ``tab`` as the form does; the redirects the answer asked for."""
    answer = await tab.call(LoginState, "submit_password",
                            form={"email": who.email, "password": who.password})
    assert answer.redirects, answer.get(LoginState, "message")
    return answer.redirects


async def signed_in_as(casino: live.Casino, token: str) -> str:
    """Who a new socket carrying ``token`` as its cookie is ("" for nobody)."""
    async with casino.tab(None, "/", token=token) as tab:
        await tab.open()
        await tab.call(SessionState, "refresh")
        return tab.var(SessionState, "email") or ""


async def test_the_session_cookie_is_httponly_strict_and_bounded(attacked: live.Casino) -> None:
    from casino_app.security.session_cookie import seal_handoff

    player = live.new_player("Cookie")
    async with attacked.tab(None, "/login") as tab:
        await tab.open()
        bind = tab.bind
    code = seal_handoff(player.token, bind)
    r = httpx.post(f"{attacked.url}/api/session/adopt", data={"code": code},
                   headers={"Origin": attacked.url, "Cookie": f"hh_bind={bind}"})
    assert r.status_code == 204, r.text
    [cookie] = [c for c in r.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE)]
    flags = {f.strip().split("=")[0].lower(): f.strip() for f in cookie.split(";")[1:]}
    assert "httponly" in flags and flags.get("samesite", "").lower() == "samesite=strict"
    assert flags.get("path") == "Path=/"
    max_age = int(flags["max-age"].split("=")[1])
    assert 0 < max_age <= 90 * 86400, cookie
    assert "domain" not in flags, "a Domain attribute would share the cookie with subdomains"
    assert r.headers.get("cache-control") == "no-store"


async def test_a_planted_session_id_is_not_what_the_victim_signs_in_with(
        attacked: live.Casino) -> None:
    attacker, victim = live.new_player("Fixer"), live.new_player("Fixed")
    for planted in (attacker.token, "attacker-chosen-value-" + "a" * 20):
        async with attacked.tab(None, "/login", token=planted) as tab:
            await tab.open()
            await sign_in(tab, victim)
            # the tab's cookie now: what the app handed over through /api/session/adopt
            assert tab.token and tab.token != planted
            assert await signed_in_as(attacked, tab.token) == victim.email
            everything = tab.everything()
        assert await signed_in_as(attacked, planted) in ("", attacker.email), \
            "the planted session id became the victim's"
        assert tab.token not in everything, "the session token reached the page"


async def test_the_token_never_travels_in_a_url(attacked: live.Casino) -> None:
    player = live.new_player("Urls")
    async with attacked.tab(None, "/login?next=/bets") as tab:
        await tab.open()
        redirects = await sign_in(tab, player)
        token = tab.token
        urls = [*redirects, *(s for s in strings(tab.log) if s.startswith(("/", "http")))]
        assert token and not [u for u in urls if token in u], urls
        assert token not in tab.everything()
        code = (tab.var(SessionState, "cookie_op") or {}).get("code", "")
    assert code, "no handoff code seen"
    # the handoff code is taken from a POST body only
    with httpx.Client(base_url=attacked.url, headers={"Origin": attacked.url,
                                                      "Cookie": f"hh_bind={tab.bind}"}) as http:
        for r in (http.post(f"/api/session/adopt?code={code}"),
                  http.get(f"/api/session/adopt?code={code}")):
            assert r.status_code in (400, 404, 405), r.status_code
            assert not [c for c in r.headers.get_list("set-cookie") if SESSION_COOKIE in c]


async def test_sign_out_ends_the_session_on_the_server(attacked: live.Casino) -> None:
    player = live.new_player("Leaver")
    async with attacked.tab(player, "/account") as tab:
        await tab.open()
        await tab.call(SessionState, "refresh")
        assert tab.var(SessionState, "email") == player.email
        await tab.call(SessionState, "logout")
    assert not live.session_live(player.token)
    assert await signed_in_as(attacked, player.token) == ""
