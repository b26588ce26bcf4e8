"""Ledger database table of the Ethereum sweeper's own state (payments/eth/sweeper.py), kept
across restarts of the jobs process. The hot band's state, which every chain's sweeper
keeps, is payments/band_models.py."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from casino_app.core.clock import utcnow
from casino_app.core.db import LedgerBase


class SweepMark(LedgerBase):
    """Per deposit address and currency: how far its deposits were swept, and the retry
    state of a sweep that failed. Written only by the sweeper."""

    __tablename__ = "sweep_marks"

    chain: Mapped[str] = mapped_column(String(16), primary_key=True)
    address: Mapped[str] = mapped_column(String(42), primary_key=True)
    currency: Mapped[str] = mapped_column(String(8), primary_key=True)
    # Deposits in blocks up to here were final when a sweep that confirmed was recorded:
    # the address needs another look only after a deposit in a later block.
    swept_to: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # The open sweep (withdrawal_batches.id) and the final block it was recorded at.
    open_batch_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    open_final: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # Sweeps that failed in a row, and when the next may be tried.
    failures: Mapped[int] = mapped_column(Integer, default=0)
    retry_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
