"""No secret of the house ever reaches a browser (WSTG-CRYP-03, sensitive information
sent via unencrypted channels: here, via any channel).

Every byte the server sends a tab is a state delta or a front-end event. A player, a
support and an admin go through their pages as people do (the lobby, bets of each kind,
an open Mines round and a refused rotation, the fairness page, the wallet with its
deposit address, the sessions and security pages, 2FA enrolment; the staff home, a
player's page, the audit log, the wallets and withdrawals pages), and everything their
tabs received is searched for ``live.house_secrets``: every server seed not revealed,
the encryption keys, the hot wallet's seed phrase, the metrics token, every password
hash and TOTP secret, every session token (each tab's own included: it lives in an
HttpOnly cookie and never travels in a delta; what the page gets is a sealed handoff
code). The one secret a tab may see is its own TOTP secret during enrolment.
"""

from __future__ import annotations

import secrets

import pytest

from casino_app.games.models import Bet
from casino_app.ui.state.account import SecurityState, SessionsState
from casino_app.ui.state.fairness import FairnessState
from casino_app.ui.state.games import GameState
from casino_app.ui.state.session import SessionState
from casino_app.ui.state.staff import StaffAuditState, StaffPlayerState, StaffSearchState
from tests.support import live
from tests.support.reflex_client import Tab

pytestmark = pytest.mark.security


async def play(tab: Tab) -> int:
    """A player's evening: bets of each game, an open Mines round; its round id."""
    for game, setup in (("dice", []), ("limbo", [("edit_limbo_target", {"text": "2"})]),
                        ("plinko", []), ("keno", [("keno_toggle", {"square": 3}),
                                                  ("keno_toggle", {"square": 7})])):
        await tab.goto(f"/games/{game}")
        for handler, payload in setup:
            await tab.call(GameState, handler, **payload)
        await tab.call(GameState, "edit_amount", text="1.00")
        answer = await tab.call(GameState, "bet", bet_key=secrets.token_hex(16))
        assert answer.get(GameState, "result_id"), (game, answer.get(GameState, "error"))
    await tab.goto("/games/mines")
    await tab.call(GameState, "choose_mines", value="3")
    await tab.call(GameState, "edit_amount", text="1.00")
    opened = await tab.call(GameState, "bet", bet_key=secrets.token_hex(16))
    round_id = opened.get(GameState, "round_id")
    assert round_id
    await tab.goto("/fairness")
    refused = await tab.call(FairnessState, "rotate")
    assert refused.get(FairnessState, "error") or refused.get(FairnessState, "message")
    await tab.goto(f"/bets/bet?id={round_id}")
    for page in ("/bets", "/wallet", "/account", "/account/sessions", "/verify", "/"):
        await tab.goto(page)
    await tab.call(SessionsState, "on_open")
    return round_id


async def test_no_tab_ever_receives_a_secret_of_the_house(attacked: live.Casino) -> None:
    player = live.new_player("Curious")
    support, admin = attacked.support, attacked.admin
    tabs: list[tuple[str, Tab]] = []
    async with attacked.tab(player, "/") as tab:
        tabs.append(("player", tab))
        await tab.open()
        round_id = await play(tab)
        # 2FA enrolment shows the player their own new secret, and nobody else's
        await tab.goto("/account/security")
        started = await tab.call(SecurityState, "start_totp",
                                 form={"current_password": player.password,
                                       "password": player.password})
        assert started.text, "the enrolment showed nothing"
        await tab.call(SecurityState, "cancel")
        await tab.call(SessionState, "refresh")
    for name, who in (("support", support), ("admin", admin)):
        async with attacked.tab(who, "/admin") as tab:
            tabs.append((name, tab))
            await tab.open()
            await tab.call(StaffSearchState, "search", form={"query": player.email})
            await tab.goto(f"/admin/player?id={player.user_id}")
            await tab.call(StaffPlayerState, "on_open", page=f"/admin/player?id={player.user_id}")
            for page in ("/admin/audit", "/admin/wallets", "/admin/withdrawals",
                         "/admin/adjustments", "/admin/reconcile"):
                await tab.goto(page)
            if name == "admin":
                await tab.call(StaffAuditState, "verify", page="/admin/audit")
    assert live.row_of(Bet, round_id)["state"] == "open"
    house = live.house_secrets(attacked.env, [player.token, support.token, admin.token])
    house.pop(f"totp_pending_enc of user #{player.user_id}", None)  # its own enrolment
    assert any(k.startswith("server seed") for k in house) and \
        any(k.startswith("password hash") for k in house)
    for name, tab in tabs:
        leaks = live.leaked(tab.everything(), house)
        assert not leaks, f"the {name}'s tab received {leaks}"
