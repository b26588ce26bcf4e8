"""Ledger database tables. This database never names a person: only player_id."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from casino_app.core.clock import utcnow
from casino_app.core.db import LedgerBase


class Player(LedgerBase):
    """A pseudonymous player: the identity database maps it to a person."""

    __tablename__ = "players"

    player_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
