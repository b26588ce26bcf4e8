"""Ledger database tables. This database never names a person: only player_id."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from casino_app.core.clock import utcnow
from casino_app.core.db import LedgerBase


class Player(LedgerBase):
    """A pseudonymous player: the identity database maps it to a person."""

    __tablename__ = "players"

    player_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class LedgerAccount(LedgerBase):
    """One balance: (owner, currency, kind, shard). Written only by payments/ledger.py.

    ``balance`` is the sum of the account's postings; ``reserved`` the sum of its pending
    outgoing transfers. An account that may not go negative keeps ``balance - reserved``
    at zero or above, enforced by the database, not only by code.
    ``shard`` is 0 for every account since the settlement writer (the bankroll was once
    split into 64 shards; migration led0018 merged them).
    """

    __tablename__ = "ledger_accounts"
    __table_args__ = (
        UniqueConstraint("owner", "currency", "kind", "shard", name="uq_ledger_account"),
        CheckConstraint("reserved >= 0", name="ck_reserved_not_negative"),
        CheckConstraint("allow_negative OR balance - reserved >= 0",
                        name="ck_available_not_negative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner: Mapped[str] = mapped_column(String(64))
    currency: Mapped[str] = mapped_column(String(8))
    kind: Mapped[str] = mapped_column(String(16))
    shard: Mapped[int] = mapped_column(Integer, default=0)
    allow_negative: Mapped[bool] = mapped_column(Boolean)
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    reserved: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class JournalEntry(LedgerBase):
    """A balanced movement of money. ``key`` is the caller's idempotency key."""

    __tablename__ = "journal_entries"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True)
    key: Mapped[str] = mapped_column(String(160), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    fingerprint: Mapped[str] = mapped_column(String(64))
    memo: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Posting(LedgerBase):
    """One line of an entry: ``amount`` added to an account's balance (negative: taken)."""

    __tablename__ = "postings"
    __table_args__ = (Index("ix_postings_account", "account_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("journal_entries.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"))
    currency: Mapped[str] = mapped_column(String(8))
    amount: Mapped[int] = mapped_column(BigInteger)


class PendingTransfer(LedgerBase):
    """A reservation: counts against the debit account until posted or voided, once."""

    __tablename__ = "pending_transfers"
    __table_args__ = (
        CheckConstraint("amount > 0", name="ck_pending_amount_positive"),
        CheckConstraint("state IN ('pending', 'posted', 'voided')", name="ck_pending_state"),
        Index("ix_pending_debit_state", "debit_account_id", "state"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True)
    key: Mapped[str] = mapped_column(String(160), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    fingerprint: Mapped[str] = mapped_column(String(64))
    debit_account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"))
    credit_account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"))
    currency: Mapped[str] = mapped_column(String(8))
    amount: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(8), default="pending")
    entry_id: Mapped[int | None] = mapped_column(ForeignKey("journal_entries.id"))
    memo: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime)


class AdjustmentRequest(LedgerBase):
    """A manual balance change asked for by one staff member, applied when another approves.

    Staff are named by their identity-database user id only (no personal data here).
    """

    __tablename__ = "adjustment_requests"
    __table_args__ = (
        CheckConstraint("amount <> 0", name="ck_adjustment_not_zero"),
        CheckConstraint("state IN ('pending', 'approved', 'rejected')",
                        name="ck_adjustment_state"),
        CheckConstraint("decided_by IS NULL OR decided_by <> requested_by",
                        name="ck_adjustment_four_eyes"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    player_id: Mapped[str] = mapped_column(String(36), index=True)
    currency: Mapped[str] = mapped_column(String(8))
    amount: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(500))
    requested_by: Mapped[int] = mapped_column(Integer)
    requested_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    state: Mapped[str] = mapped_column(String(10), default="pending")
    decided_by: Mapped[int | None] = mapped_column(Integer)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime)
    entry_id: Mapped[int | None] = mapped_column(ForeignKey("journal_entries.id"))
