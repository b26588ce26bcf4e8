"""Other players' bets, Mines rounds and sessions, aimed at by id over the websocket.

Bet ids, provider round ids and session ids are small integers anyone can guess. A player
who puts another player's id in a recall URL (``/bets/bet?id=N``, ``/bets/round?id=N``),
aims the Mines handlers at another
player's open round, or asks the sessions page to revoke another user's session must get
"not found" or nothing, learn nothing about the other player, and change nothing of
theirs; the handlers keep acting on the caller's own rows.
"""

from __future__ import annotations

import json
import secrets

import pytest

from casino_app.games.models import Bet
from casino_app.ui.state.account import SessionsState
from casino_app.ui.state.bets import BetState
from casino_app.ui.state.games import GameState
from casino_app.ui.state.provider_rounds import ProviderRoundsState, ProviderRoundState
from casino_app.users import accounts
from tests.support import live
from tests.support import provider_setup as ps
from tests.support.reflex_client import UPDATE_VARS_STATE, state_name, v

pytestmark = pytest.mark.security


def what_only_the_victim_may_see(bet: dict) -> list[str]:
    return [bet["client_seed"], bet["server_seed_hash"], bet["bet_key"]]


async def test_another_players_bet_recall_is_not_found(attacked: live.Casino) -> None:
    victim, attacker = live.new_player("Victim"), live.new_player("Mallory")
    dice_id, round_id = live.victim_bets(victim)
    victim_rows = [live.row_of(Bet, i) for i in (dice_id, round_id)]
    async with attacked.tab(attacker, "/bets") as tab:
        await tab.open()
        for bet_id in (dice_id, round_id):
            await tab.goto(f"/bets/bet?id={bet_id}")
            assert tab.var(BetState, "loaded") is True
            assert tab.var(BetState, "bet") is None, f"bet #{bet_id} of another player shown"
            # and through the handler alone, with the id in its router data
            answer = await tab.call(BetState, "on_open", page=f"/bets/bet?id={bet_id}")
            assert not answer.get(BetState, "bet")
        seen = tab.everything()
        for row in victim_rows:
            leaked = [s for s in what_only_the_victim_may_see(row) if s in seen]
            assert not leaked, f"the victim's bet #{row['id']} leaked: {leaked}"
    assert [live.row_of(Bet, i) for i in (dice_id, round_id)] == victim_rows


async def test_mines_handlers_cannot_be_aimed_at_another_players_round(
        attacked: live.Casino) -> None:
    victim, attacker = live.new_player("Victim"), live.new_player("Mallory")
    _, victim_round = live.victim_bets(victim)
    victim_before = live.row_of(Bet, victim_round)
    victim_fun = live.available(victim.player_id, "FUN")
    game = state_name(GameState)
    async with attacked.tab(attacker, "/games/mines") as tab:
        await tab.open()
        # the attacker's own round (3 mines, 1.00 FUN): the only round its tab may touch
        await tab.call(GameState, "choose_mines", value="3")
        await tab.call(GameState, "edit_amount", text="1.00")
        started = await tab.call(GameState, "bet", bet_key=secrets.token_hex(16))
        own_round = started.get(GameState, "round_id")
        assert own_round and own_round != victim_round
        own = live.row_of(Bet, own_round)
        safe = sorted(set(range(25)) - set(json.loads(own["outcome"])))

        # aim at the victim's round: forged round id, extra arguments
        await tab.call(GameState, "setvar", var_name="round_id", value=victim_round)
        await tab.call(UPDATE_VARS_STATE, "update_vars_internal",
                       vars={f"{game}.{v('round_id')}": victim_round})
        for extra in ({"tile": safe[0], "round_id": victim_round},
                      {"tile": safe[0], "bet_id": victim_round}):
            answer = await tab.call(GameState, "reveal", **extra)
            assert not answer.changed(GameState, "mines_revealed")
        for extra in ({"round_id": victim_round}, {"bet_id": victim_round}):
            answer = await tab.call(GameState, "cash_out", **extra)
            assert not answer.changed(GameState, "result_won")
        assert tab.var(GameState, "round_id") == own_round

        # the real handlers act on the attacker's own round
        opened = await tab.call(GameState, "reveal", tile=safe[0])
        assert opened.get(GameState, "mines_revealed") == [safe[0]]
        cashed = await tab.call(GameState, "cash_out")
        assert cashed.get(GameState, "result_won") is True
        assert tab.var(GameState, "round_id") == 0
        assert not [s for s in what_only_the_victim_may_see(victim_before)
                    if s in tab.everything()]
    assert json.loads(live.row_of(Bet, own_round)["progress"]) == [safe[0]]
    assert live.row_of(Bet, victim_round) == victim_before
    assert live.available(victim.player_id, "FUN") == victim_fun


async def test_another_users_session_cannot_be_revoked(attacked: live.Casino) -> None:
    victim, attacker = live.new_player("Victim"), live.new_player("Mallory")
    victim_sessions = accounts.my_sessions(victim.token)
    own_sessions = {s.id for s in accounts.my_sessions(attacker.token)}
    async with attacked.tab(attacker, "/account/sessions") as tab:
        await tab.open()
        shown = {row["id"] for row in tab.var(SessionsState, "rows")}
        assert shown == own_sessions
        for sid in [s.id for s in victim_sessions] + [str(victim_sessions[0].id)]:
            answer = await tab.call(SessionsState, "revoke", session_id=sid)
            assert not answer.redirects, "the attacker's own session ended instead"
            rows = answer.get(SessionsState, "rows")
            assert rows is None or {row["id"] for row in rows} == own_sessions
        await tab.call(SessionsState, "revoke_others")
        assert {row["id"] for row in tab.var(SessionsState, "rows")} == own_sessions
    assert live.session_live(victim.token) and live.session_live(attacker.token)
    assert [s.id for s in accounts.my_sessions(victim.token)] == [s.id for s in victim_sessions]


async def test_another_players_provider_round_is_not_found(attacked: live.Casino) -> None:
    from casino_app.games.providers import recall

    victim, attacker = live.new_player("Victim"), live.new_player("Mallory")
    provider = ps.add_bgaming("ws-" + secrets.token_hex(4), secrets.token_hex(16).encode())
    players = [ps.TestPlayer(a.player_id, a.user_id) for a in (victim, attacker)]
    for p in players:
        ps.credit(p.player_id, "FUN", 1_000)
    theirs = ps.play_round(provider, players[0], ps.token(provider, players[0]), 100, 70)
    own = ps.play_round(provider, players[1], ps.token(provider, players[1]), 100, 0)
    ref = recall.round_detail(theirs, provider_link=False).round.round_ref
    async with attacked.tab(attacker, "/bets") as tab:
        await tab.open()
        await tab.goto("/bets")
        assert [r["id"] for r in tab.var(ProviderRoundsState, "rows")] == [own]
        for rid in (theirs, str(theirs)):
            await tab.goto(f"/bets/round?id={rid}")
            assert tab.var(ProviderRoundState, "loaded") is True
            assert tab.var(ProviderRoundState, "detail") is None, "another player's round"
            answer = await tab.call(ProviderRoundState, "on_open",
                                    page=f"/bets/round?id={rid}")
            assert not answer.get(ProviderRoundState, "detail")
        await tab.goto(f"/bets/round?id={own}")
        assert tab.var(ProviderRoundState, "detail")["id"] == own
        seen = tab.everything()
        leaked = [s for s in (victim.player_id, ref) if s in seen]
        assert not leaked, f"the victim's round leaked: {leaked}"
