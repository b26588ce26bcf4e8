"""Loyalty in Chromium, on a phone and a desktop: a player's real-money bets reach Silver,
the period is accrued, and the account page shows the tier, the progress bar and the
rakeback and level-up bonus, which one click pays to the balance, once."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from tests.e2e.conftest import LiveApp
from tests.e2e.flows import goto, register
from tests.support import live

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PASSWORD = "a long pass phrase"


def _play_and_accrue(player_id: str) -> None:
    """Two BTC dice bets worth $10,800 (default Silver: $10,000) in a period that is then
    accrued."""
    from casino_app.core.clock import utcnow
    from casino_app.core.db import ledger_tx
    from casino_app.core.settings import get_settings
    from casino_app.games import bets
    from casino_app.games.loyalty import accrual, tiers
    from casino_app.games.loyalty.models import LoyaltyWindow
    from casino_app.games.models import Bet
    from casino_app.payments import ledger

    with ledger_tx() as s:
        custody = ledger.house_account(s, "BTC", "custody")
        ledger.transfer(s, f"e2e-loyalty:{uuid.uuid4().hex}", "capital", custody,
                        ledger.house_account(s, "BTC", "bankroll"), 10 * 10**8)
        ledger.transfer(s, f"e2e-loyalty:{uuid.uuid4().hex}", "deposit", custody,
                        ledger.player_account(s, player_id, "BTC"), 20_000_000)
    bets.reset_bankroll_cache()
    for _ in range(2):
        bets.place_bet(player_id, "dice", "BTC", 6_000_000,
                       {"target": 50, "direction": "over"}, "k" + uuid.uuid4().hex[:15])
    # The bets go into the first period not accrued yet, and that period is accrued now
    # as if it had ended: a later run (the other viewport) takes the next one.
    with ledger_tx(readonly=True) as s:
        start = s.scalar(select(func.max(LoyaltyWindow.end_at))) or tiers.align(utcnow())
    with ledger_tx() as s:
        for b in s.scalars(select(Bet).where(Bet.player_id == player_id)):
            b.created_at = b.settled_at = start + timedelta(minutes=1)
    seconds = tiers.period_seconds() + get_settings().loyalty_grace_seconds + 1
    for _ in range(3):
        try:
            accrual.accrue(now=start + timedelta(seconds=seconds))
            return
        except IntegrityError:  # the app's loyalty-accrue job took a window meanwhile
            continue


def test_a_tier_is_reached_and_rakeback_claimed(live_app: LiveApp, new_context) -> None:  # noqa: ANN001
    email = f"vip-{uuid.uuid4().hex[:8]}@example.com"
    page = new_context().new_page()
    register(page, email, "VIP Player", PASSWORD)
    _user_id, player_id = live_app.account(email)
    with live.adopted(live_app.env):
        before = live.available(player_id, "BTC")
        _play_and_accrue(player_id)
        after_bets = live.available(player_id, "BTC")
    assert before == 0 and after_bets > 0
    goto(page, "/account")
    expect(page.locator("#vip-tier")).to_contain_text("Silver")
    expect(page.locator("#vip-progress")).to_be_visible()
    rows = page.locator("tr.reward-row")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="Level-up bonus: Silver")).to_contain_text("BTC")
    page.locator("#claim-all").click()
    expect(page.get_by_text("Paid to your balance")).to_be_visible()
    expect(rows.filter(has_text="Paid")).to_have_count(2)
    expect(page.locator("#claim-all")).to_have_count(0)
    with live.adopted(live_app.env):
        from casino_app.games.loyalty import rewards

        paid = [r for r in rewards.status(player_id).rewards if r.state == "paid"]
        assert len(paid) == 2
        assert live.available(player_id, "BTC") == after_bets + sum(r.amount for r in paid)
        assert rewards.claim(player_id).paid == []
