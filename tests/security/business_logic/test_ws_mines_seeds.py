"""The Mines rotation attack, over the websocket.

A Mines round's tiles are drawn from the active seed pair when the round starts. Rotating
the pair reveals its server seed; if that were allowed while the round is open, the
player could recompute where the mines are and only ever open safe tiles (with 24 mines:
open the one safe tile, win 24.75x every time). FAIRNESS.md: no seed from which an
unsettled bet was drawn is ever revealed. So while a round is open the fairness page
refuses to rotate and to change the client seed (which also rotates), with a message that
says why, and no page shows the seed; the round stays playable, and once it is over
rotation works again and reveals a seed that reproduces the round.
"""

from __future__ import annotations

import json
import re
import secrets

import pytest

from casino_app.games.house import GAMES, mines_multiplier_e4
from casino_app.games.models import Bet, SeedPair
from casino_app.ui.state.bets import BetState
from casino_app.ui.state.fairness import FairnessState
from casino_app.ui.state.games import GameState
from casino_app.ui.state.session import SessionState
from tests.support import live
from tests.support.reflex_client import Answer, Tab

pytestmark = pytest.mark.security

STAKE = 1000  # 10.00 FUN, in cents


def key() -> str:
    return secrets.token_hex(16)


async def start_round(tab: Tab, mines: int) -> dict:
    """Start a Mines round of 10 FUN from the game page; the round's row in the ledger."""
    await tab.goto("/games/mines")
    assert tab.var(GameState, "game") == "mines"
    await tab.call(GameState, "choose_mines", value=str(mines))
    await tab.call(GameState, "edit_amount", text="10.00")
    started = await tab.call(GameState, "bet", bet_key=key())
    assert not started.get(GameState, "error"), started.get(GameState, "error")
    round_id = started.get(GameState, "round_id")
    assert round_id, "the round did not start"
    row = live.row_of(Bet, round_id)
    assert row["state"] == "open" and len(json.loads(row["outcome"])) == mines
    return row


def refusal(answer: Answer) -> str:
    """The fairness page's message for a refused change ("" if none)."""
    return answer.get(FairnessState, "error") or answer.get(FairnessState, "message") or ""


def what_the_seed_gives_away(seed: str, rnd: dict) -> str:
    mines = GAMES["mines"].draw(seed, rnd["client_seed"], rnd["nonce"],
                                GAMES["mines"].parse_params(json.loads(rnd["params"])))
    safe = sorted(set(range(25)) - set(mines))
    return f"with it the open round's mines are {sorted(mines)}: the safe tiles are {safe}"


async def test_seeds_cannot_be_rotated_or_read_while_a_mines_round_is_open(
        attacked: live.Casino) -> None:
    player = live.new_player("Miner")
    start_fun = live.available(player.player_id, "FUN")
    async with attacked.tab(player, "/games/mines") as tab:
        await tab.open()
        assert tab.var(SessionState, "signed_in") is True

        # --- a 24-mine round, then the attack: rotate, change the client seed, read ---
        rnd = await start_round(tab, 24)
        pair_before = live.row_of(SeedPair, rnd["seed_pair_id"])
        await tab.goto("/fairness")
        rotated = await tab.call(FairnessState, "rotate")
        reseeded = await tab.call(FairnessState, "save_client_seed",
                                  form={"client_seed": "attacker-chosen-seed"})
        await tab.goto(f"/bets/bet?id={rnd['id']}")
        recall = tab.var(BetState, "bet")
        await tab.goto("/bets")
        await tab.goto("/fairness")

        leaked = live.seeds_in(tab.everything(), rnd["server_seed_hash"])
        assert not leaked, (
            "the server seed of the open round's pair reached the browser while the round "
            f"was open: {sorted(leaked)[0]}; {what_the_seed_gives_away(sorted(leaked)[0], rnd)}")
        for what, answer in (("rotate", rotated), ("save_client_seed", reseeded)):
            message = refusal(answer)
            assert message and re.search(r"round|mines", message, re.I), \
                f"{what} was not refused with a message about the open round: {message!r}"
            assert not answer.get(FairnessState, "notice"), answer.get(FairnessState, "notice")
        assert recall is not None and recall["id"] == rnd["id"] and not recall["server_seed"]
        pair_after = live.row_of(SeedPair, rnd["seed_pair_id"])
        assert pair_after == pair_before, "the open round's seed pair changed"
        assert pair_after["state"] == "active" and pair_after["revealed_seed"] is None

        # --- the round is still playable: its one safe tile wins 24.75x ---
        await tab.goto("/games/mines")
        assert tab.var(GameState, "round_id") == rnd["id"]
        safe = (set(range(25)) - set(json.loads(rnd["outcome"]))).pop()
        won = await tab.call(GameState, "reveal", tile=safe)
        assert not won.get(GameState, "error"), won.get(GameState, "error")
        assert won.get(GameState, "round_id") == 0 and won.get(GameState, "result_won") is True
        payout = STAKE * mines_multiplier_e4(24, 1) // 10_000
        assert live.available(player.player_id, "FUN") == start_fun - STAKE + payout

        # --- a 3-mine round: the client seed cannot change; reveal and cash out work ---
        second = await start_round(tab, 3)
        await tab.goto("/fairness")
        reseeded = await tab.call(FairnessState, "save_client_seed",
                                  form={"client_seed": "attacker-chosen-seed"})
        assert refusal(reseeded) and not reseeded.get(FairnessState, "notice")
        assert not live.seeds_in(tab.everything(), second["server_seed_hash"])
        await tab.goto("/games/mines")
        tile = min(set(range(25)) - set(json.loads(second["outcome"])))
        opened = await tab.call(GameState, "reveal", tile=tile)
        assert opened.get(GameState, "mines_revealed") == [tile]
        cashed = await tab.call(GameState, "cash_out")
        assert cashed.get(GameState, "result_won") is True and cashed.get(GameState,
                                                                           "round_id") == 0
        second_payout = STAKE * mines_multiplier_e4(3, 1) // 10_000
        assert live.available(player.player_id, "FUN") == \
            start_fun - 2 * STAKE + payout + second_payout

        # --- no round open: rotation works and reveals a seed that reproduces both ---
        await tab.goto("/fairness")
        done = await tab.call(FairnessState, "rotate")
        assert not refusal(done) and done.get(FairnessState, "notice")
        revealed = live.seeds_in(tab.everything(), rnd["server_seed_hash"])
        assert len(revealed) == 1
        seed = revealed.pop()
        for r in (rnd, live.row_of(Bet, second["id"])):
            params = GAMES["mines"].parse_params(json.loads(r["params"]))
            assert GAMES["mines"].draw(seed, r["client_seed"], r["nonce"], params) == \
                json.loads(r["outcome"])
    assert not live.ledger_violations()
