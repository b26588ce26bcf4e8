"""Loyalty rewards and the staff decisions on held claims, aimed at over the websocket.

Reward ids are small integers anyone can guess. A player who claims another player's
reward id gets "nothing to claim" and moves nothing of anyone's; a player (or support)
who sends the staff page's approve or reject events for a held claim is refused and the
claim stays held; an admin's approval pays it once.
"""

from __future__ import annotations

import pytest

from casino_app.ui.state.loyalty import LoyaltyState
from casino_app.ui.state.staff_loyalty import StaffLoyaltyState
from tests.support import live
from tests.support import loyalty as lt

pytestmark = pytest.mark.security


async def test_another_players_reward_cannot_be_claimed(attacked: live.Casino) -> None:
    victim, attacker = live.new_player("Victim"), live.new_player("Mallory")
    theirs = lt.reward(victim.player_id, 9_000)
    mine = lt.reward(attacker.player_id, 1_000)
    victim_before = live.available(victim.player_id, "BTC")
    attacker_before = live.available(attacker.player_id, "BTC")
    async with attacked.tab(attacker, "/account") as tab:
        await tab.open()
        assert [r["id"] for r in tab.var(LoyaltyState, "rows")] == [mine]
        for value in (theirs, str(theirs), [theirs], {"id": theirs}, -theirs, 2**63):
            answer = await tab.call(LoyaltyState, "claim", reward_id=value)
            assert "9,000" not in answer.text and "0.00009" not in answer.text
        await tab.call(LoyaltyState, "claim", reward_id=theirs, player_id=victim.player_id)
        await tab.call(LoyaltyState, "claim_all")  # the attacker's own reward only
        assert victim.player_id not in tab.everything()
    assert lt.state_of(theirs) == "available" and lt.state_of(mine) == "paid"
    assert live.available(victim.player_id, "BTC") == victim_before
    assert live.available(attacker.player_id, "BTC") == attacker_before + 1_000


async def test_players_and_support_cannot_decide_held_claims(attacked: live.Casino) -> None:
    hedger = live.new_player("Hedger")
    rid = lt.reward(hedger.player_id, 4_000)
    lt.flag(hedger.player_id)
    from casino_app.games.loyalty import rewards

    assert rewards.claim(hedger.player_id).held
    before = live.available(hedger.player_id, "BTC")
    other = live.new_player("Bystander")
    for who in (hedger, other, attacked.support, None):
        async with attacked.tab(who, "/admin/loyalty") as tab:
            await tab.open()
            for value in (rid, str(rid)):
                await tab.call(StaffLoyaltyState, "approve", reward_id=value,
                               page="/admin/loyalty")
                await tab.call(StaffLoyaltyState, "reject", page="/admin/loyalty",
                               form={"reward_id": str(rid), "reason": "mine now"})
            assert tab.var(StaffLoyaltyState, "rows") in (None, []) or who is attacked.support
        assert lt.state_of(rid) == "held", f"{who and who.email} decided a held claim"
    assert live.available(hedger.player_id, "BTC") == before
    # an admin decides: paid once, audited
    async with attacked.tab(attacked.admin, "/admin/loyalty") as tab:
        await tab.open()
        assert rid in [r["id"] for r in tab.var(StaffLoyaltyState, "rows")]
        await tab.call(StaffLoyaltyState, "approve", reward_id=rid, page="/admin/loyalty")
        await tab.call(StaffLoyaltyState, "approve", reward_id=rid, page="/admin/loyalty")
    assert lt.state_of(rid) == "paid"
    assert live.available(hedger.player_id, "BTC") == before + 4_000
    assert lt.entries(f"loyalty:rakeback:{hedger.player_id}:") == 1
    assert live.audit_rows("staff.loyalty_approved", attacked.admin.user_id,
                           hedger.user_id) == 1
