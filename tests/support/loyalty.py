"""Loyalty rewards for the attack tests, written straight into the ledger database (the
accrual job of the running app owns the periods; the attacks aim at the claim and the
staff decision, which these rows are all they need)."""

from __future__ import annotations

from datetime import timedelta

from casino_app.core.clock import utcnow
from casino_app.core.db import ledger_tx
from casino_app.games.loyalty import accrual
from casino_app.games.loyalty.models import LoyaltyFlag, LoyaltyReward


def reward(player_id: str, amount: int = 1_234, code: str = "BTC", days_ago: int = 3) -> int:
    """An available rakeback reward of ``player_id`` for a period ``days_ago`` days back."""
    start = (utcnow() - timedelta(days=days_ago)).replace(minute=0, second=0, microsecond=0)
    with ledger_tx() as s:
        r = LoyaltyReward(key=accrual.rakeback_key(player_id, code, start),
                          player_id=player_id, kind="rakeback", currency=code, amount=amount,
                          window_start=start, window_end=start + timedelta(hours=1),
                          tier="Bronze", state="available", note="")
        s.add(r)
        s.flush()
        return r.id


def flag(player_id: str, code: str = "BTC") -> None:
    """A rakeback-farming flag of ``player_id`` in the last hour."""
    end = utcnow()
    with ledger_tx() as s:
        s.add(LoyaltyFlag(player_id=player_id, currency=code, kind="hedge",
                          window_start=end - timedelta(hours=1), window_end=end,
                          hedged=1_000_000, wagered=1_000_000,
                          detail="near-even dice over and under (test)"))


def state_of(reward_id: int) -> str:
    with ledger_tx(readonly=True) as s:
        r = s.get(LoyaltyReward, reward_id)
        assert r is not None
        return r.state


def entries(key_prefix: str) -> int:
    from sqlalchemy import func, select

    from casino_app.payments.models import JournalEntry

    with ledger_tx(readonly=True) as s:
        return s.scalar(select(func.count()).select_from(JournalEntry).where(
            JournalEntry.key.like(key_prefix + "%"))) or 0
