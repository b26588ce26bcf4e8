"""Ledger database table of holds on a player's money (payments/holds.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from casino_app.core.clock import utcnow
from casino_app.core.db import LedgerBase


class PlayerHold(LedgerBase):
    """A hold on a player's money for staff review (e.g. a reversed deposit left them
    owing): open while ``released_at`` is empty."""

    __tablename__ = "player_holds"
    __table_args__ = (Index("ix_player_holds_open", "player_id", "released_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    player_id: Mapped[str] = mapped_column(String(36))
    reason: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    released_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    released_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
