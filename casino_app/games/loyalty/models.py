"""Tables of the loyalty programme (ledger database: pseudonymous player ids only).

``loyalty_windows`` is the accrual cursor: one row per stretch of time accrued, contiguous
and never overlapping, so a bet or a provider round counts in exactly one period.
``loyalty_accruals`` holds each player's volume per period and currency, with its USD value
fixed at accrual; ``loyalty_rewards`` the rakeback and level-up bonuses a player can claim
(the ledger key of each payment is its UNIQUE ``key``); ``loyalty_flags`` the periods in
which a player was seen wagering both sides of a near-even game.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from casino_app.core.clock import utcnow
from casino_app.core.db import LedgerBase

_ID = BigInteger().with_variant(Integer, "sqlite")
REWARD_KINDS = ("rakeback", "levelup")
REWARD_STATES = ("available", "held", "paid", "rejected")


class LoyaltyWindow(LedgerBase):
    """A stretch of time accrued (usually one period; an empty stretch may span many)."""

    __tablename__ = "loyalty_windows"
    __table_args__ = (CheckConstraint("end_at > start_at", name="ck_loyalty_window_order"),)

    start_at: Mapped[datetime] = mapped_column(DateTime, primary_key=True)
    end_at: Mapped[datetime] = mapped_column(DateTime, unique=True)
    accruals: Mapped[int] = mapped_column(Integer, default=0)
    flags: Mapped[int] = mapped_column(Integer, default=0)
    rate_source: Mapped[str] = mapped_column(String(100), default="")
    accrued_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class LoyaltyAccrual(LedgerBase):
    """One player's real-money volume in one period and currency, as accrued."""

    __tablename__ = "loyalty_accruals"
    __table_args__ = (
        UniqueConstraint("player_id", "currency", "window_start", name="uq_loyalty_accrual"),
        CheckConstraint("house_wagered >= 0 AND provider_wagered >= 0 AND usd_e2 >= 0 "
                        "AND rakeback >= 0", name="ck_loyalty_accrual_amounts"),
        Index("ix_loyalty_accrual_player", "player_id", "window_start"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    player_id: Mapped[str] = mapped_column(String(36))
    currency: Mapped[str] = mapped_column(String(8))
    window_start: Mapped[datetime] = mapped_column(DateTime)
    window_end: Mapped[datetime] = mapped_column(DateTime)
    house_wagered: Mapped[int] = mapped_column(BigInteger, default=0)     # base units
    provider_wagered: Mapped[int] = mapped_column(BigInteger, default=0)  # base units
    usd_e2: Mapped[int] = mapped_column(BigInteger, default=0)  # volume in USD cents
    usd_rate: Mapped[str] = mapped_column(String(64), default="")  # USD per coin, as used
    tier: Mapped[str] = mapped_column(String(20), default="")   # the tier of the period
    rakeback_bps: Mapped[int] = mapped_column(Integer, default=0)
    rakeback: Mapped[int] = mapped_column(BigInteger, default=0)  # base units, rounded down
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class LoyaltyReward(LedgerBase):
    """Something a player can claim: a period's rakeback in one currency, or the bonus of
    a tier reached. States: available -> paid, or available -> held (a flagged player)
    -> paid (staff approved) or rejected."""

    __tablename__ = "loyalty_rewards"
    __table_args__ = (
        CheckConstraint("kind IN ('rakeback', 'levelup')", name="ck_loyalty_reward_kind"),
        CheckConstraint("state IN ('available', 'held', 'paid', 'rejected')",
                        name="ck_loyalty_reward_state"),
        CheckConstraint("amount > 0", name="ck_loyalty_reward_amount"),
        Index("ix_loyalty_reward_player", "player_id", "id"),
        Index("ix_loyalty_reward_state", "state", "id"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    key: Mapped[str] = mapped_column(String(160), unique=True)  # the ledger entry's key
    player_id: Mapped[str] = mapped_column(String(36))
    kind: Mapped[str] = mapped_column(String(10))
    currency: Mapped[str] = mapped_column(String(8))
    amount: Mapped[int] = mapped_column(BigInteger)
    window_start: Mapped[datetime] = mapped_column(DateTime)  # the period it comes from
    window_end: Mapped[datetime] = mapped_column(DateTime)
    tier: Mapped[str] = mapped_column(String(20), default="")  # levelup: the tier reached
    state: Mapped[str] = mapped_column(String(10), default="available")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime)
    decided_by: Mapped[int | None] = mapped_column(Integer)  # staff user id (held claims)
    note: Mapped[str] = mapped_column(String(200), default="")  # why it was rejected
    entry_id: Mapped[int | None] = mapped_column(BigInteger)   # the payment's ledger entry


class LoyaltyFlag(LedgerBase):
    """A period in which a player wagered both sides of a near-even game (rakeback
    farming): the player's claims wait for staff (games/loyalty/rewards.py)."""

    __tablename__ = "loyalty_flags"
    __table_args__ = (
        UniqueConstraint("player_id", "currency", "window_start", "kind",
                         name="uq_loyalty_flag"),
        Index("ix_loyalty_flag_player", "player_id", "window_end"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    player_id: Mapped[str] = mapped_column(String(36))
    currency: Mapped[str] = mapped_column(String(8))
    kind: Mapped[str] = mapped_column(String(16), default="hedge")
    window_start: Mapped[datetime] = mapped_column(DateTime)
    window_end: Mapped[datetime] = mapped_column(DateTime)
    hedged: Mapped[int] = mapped_column(BigInteger, default=0)   # base units
    wagered: Mapped[int] = mapped_column(BigInteger, default=0)  # base units
    detail: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
