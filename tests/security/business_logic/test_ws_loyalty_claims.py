"""Loyalty claims over the websocket, as a player would try to bend them: the same claim
sent twice (and from two tabs at once) pays once, and a player flagged for rakeback
farming cannot get the money out by claiming: the claim waits for staff."""

from __future__ import annotations

import asyncio

import pytest

from casino_app.ui.state.loyalty import LoyaltyState
from tests.support import live
from tests.support import loyalty as lt

pytestmark = pytest.mark.security


async def test_a_claim_sent_twice_and_from_two_tabs_pays_once(attacked: live.Casino) -> None:
    player = live.new_player("Twice")
    rid = lt.reward(player.player_id, 5_000)
    before = live.available(player.player_id, "BTC")
    audits = live.audit_rows("loyalty.claimed", target_user_id=player.user_id)
    async with attacked.tab(player, "/account") as one, attacked.tab(player, "/account") as two:
        await one.open()
        await two.open()
        await asyncio.gather(one.call(LoyaltyState, "claim", reward_id=rid),
                             two.call(LoyaltyState, "claim_all"))
        await one.call(LoyaltyState, "claim", reward_id=rid)
        await two.call(LoyaltyState, "claim", reward_id=str(rid))
        await two.call(LoyaltyState, "on_open")
        rows = two.var(LoyaltyState, "rows")
    assert live.available(player.player_id, "BTC") == before + 5_000
    assert lt.state_of(rid) == "paid"
    assert lt.entries(f"loyalty:rakeback:{player.player_id}:") == 1
    assert [r["state"] for r in rows] == ["paid"]
    assert live.audit_rows("loyalty.claimed", target_user_id=player.user_id) == audits + 1


async def test_a_flagged_players_claim_waits_for_staff(attacked: live.Casino) -> None:
    player = live.new_player("Hedger")
    rid = lt.reward(player.player_id, 7_000)
    lt.flag(player.player_id)
    before = live.available(player.player_id, "BTC")
    async with attacked.tab(player, "/account") as tab:
        await tab.open()
        for call in (("claim", {"reward_id": rid}), ("claim_all", {}),
                     ("claim", {"reward_id": rid}), ("claim", {"reward_id": str(rid)})):
            await tab.call(LoyaltyState, call[0], **call[1])
        assert [r["state_text"] for r in tab.var(LoyaltyState, "rows")] == \
            ["Waiting for review"]
        assert tab.var(LoyaltyState, "flagged") is True
    assert lt.state_of(rid) == "held"
    assert live.available(player.player_id, "BTC") == before
    assert lt.entries(f"loyalty:rakeback:{player.player_id}:") == 0
