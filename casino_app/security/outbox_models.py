"""Tables of the audit outbox (security/outbox.py): staged rows in the ledger database,
delivery markers in the identity database (next to the audit log they are written with)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from casino_app.core.db import IdentityBase, LedgerBase


class AuditOutbox(LedgerBase):
    """An audit row staged in the same ledger transaction as the money action it
    describes; ``delivered_at`` is set once the row is in the audit log."""

    __tablename__ = "audit_outbox"
    __table_args__ = (Index("ix_audit_outbox_delivered", "delivered_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)  # naive UTC
    action: Mapped[str] = mapped_column(String(64))
    actor_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    actor_role: Mapped[str | None] = mapped_column(String(16), nullable=True)
    ip: Mapped[str] = mapped_column(String(64), default="")
    target_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    detail: Mapped[str] = mapped_column(Text)  # JSON
    # The second factor the action used: spent again on delivery if the identity
    # transaction that should have spent it never committed.
    totp_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    recovery_code_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    audit_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class AuditOutboxDelivered(IdentityBase):
    """Outbox row ``outbox_id`` is audit row ``audit_id``: written in the audit row's
    transaction, so a row is delivered once whoever delivers it and whatever crashes."""

    __tablename__ = "audit_outbox_delivered"

    outbox_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    audit_id: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(DateTime)
