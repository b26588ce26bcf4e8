"""Audit anchors: copies of the audit log's head kept in the ledger database.

The audit log lives in the identity database; its anchors live in the other database
(separate credentials in production), so rewriting the chain and hiding it takes both.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from casino_app.core.db import LedgerBase


class AuditAnchor(LedgerBase):
    """The audit row ``audit_id`` had hash ``row_hash`` when it was anchored at ``at``."""

    __tablename__ = "audit_anchors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime)  # naive UTC
    audit_id: Mapped[int] = mapped_column(Integer, unique=True)
    row_hash: Mapped[str] = mapped_column(String(64))
