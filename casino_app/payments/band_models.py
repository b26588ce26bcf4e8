"""Ledger database table of the hot wallets' band state, per chain and currency, kept across
restarts of the jobs process. Written by each chain's sweeper (payments/eth/sweeper.py,
payments/btc/sweeper.py), which audits a fall below the band's minimum once per crossing."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from casino_app.core.clock import utcnow
from casino_app.core.db import LedgerBase


class HotBand(LedgerBase):
    """Per currency: whether the hot wallet was last seen below its band's minimum (the
    alert is audited once per crossing, restarts included)."""

    __tablename__ = "hot_band_state"

    chain: Mapped[str] = mapped_column(String(16), primary_key=True)
    currency: Mapped[str] = mapped_column(String(8), primary_key=True)
    below: Mapped[bool] = mapped_column(Boolean)
    changed_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
