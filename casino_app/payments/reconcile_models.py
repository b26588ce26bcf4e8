"""Ledger database tables of the reconciliation against a chain (runs and their issues, keyed
by chain; written through payments/reconcile.py by payments/eth/reconcile.py and
payments/btc/reconcile.py, read by payments/custody.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from casino_app.core.clock import utcnow
from casino_app.core.db import LedgerBase


class ReconcileRun(LedgerBase):
    """One reconciliation at a pinned block; clean runs are recorded too."""

    __tablename__ = "reconcile_runs"
    __table_args__ = (Index("ix_reconcile_runs_chain", "chain", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chain: Mapped[str] = mapped_column(String(16))
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(String(66))
    clean: Mapped[bool] = mapped_column(Boolean)
    issues: Mapped[int] = mapped_column(Integer)
    # Per currency: on-chain and expected totals in on-chain units, as JSON text.
    summary: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ReconcileIssue(LedgerBase):
    """One discrepancy found by a run."""

    __tablename__ = "reconcile_issues"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("reconcile_runs.id"), index=True)
    currency: Mapped[str] = mapped_column(String(8))
    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(String(400))
    # On-chain units as decimal digits (they can pass 64 bits); empty when not amounts.
    expected: Mapped[str] = mapped_column(String(80))
    actual: Mapped[str] = mapped_column(String(80))
