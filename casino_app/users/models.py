"""Identity database tables: people, credentials, sessions, one-time tokens.

Personal data is sealed per field under the keyring (``security/sealed.py``): emails,
names, birth dates and IP addresses are ``*_enc`` columns read and written through the
plain-named ``SealedField`` attributes (``user.email``), each bound to its table, column
and row. Emails are found by their blind index (``email_index``), never by value."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from casino_app.core.clock import utcnow
from casino_app.core.db import IdentityBase
from casino_app.security.sealed import SealedField, register


class Role(StrEnum):
    player = "player"
    support = "support"
    admin = "admin"

    @property
    def is_staff(self) -> bool:
        return self in (Role.support, Role.admin)


class TokenPurpose(StrEnum):
    reset = "reset"
    unlock = "unlock"


class User(IdentityBase):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('player', 'support', 'admin')", name="ck_users_role"),
        UniqueConstraint("email_index", name="uq_users_email_index"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Pseudonymous id: the only name the ledger database and game providers ever see.
    player_id: Mapped[str] = mapped_column(String(36), unique=True)
    # Sealed personal data, bound to the row's player_id (set player_id first).
    email_enc: Mapped[bytes] = mapped_column(LargeBinary)
    # security.sealed.email_index of the address: one account per address.
    email_index: Mapped[str] = mapped_column(String(64))
    display_name_enc: Mapped[bytes] = mapped_column(LargeBinary)
    date_of_birth_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default=Role.player.value)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    terms_accepted_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    password_changed_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    last_login_ip_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    # The sign-in before the newest one: what "last sign-in" shows a returning player.
    previous_login_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    previous_login_ip_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    locked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    lock_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # Failed logins before this moment no longer count toward a lock (set on success,
    # unlock and reset).
    failures_since: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # TOTP secret, AES-GCM encrypted (security.crypto); pending until a code confirms it.
    totp_secret_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    totp_pending_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    totp_enabled_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # Highest TOTP time step accepted: a code from this step or earlier is a replay.
    totp_last_step: Mapped[int | None] = mapped_column(Integer, nullable=True)

    email = SealedField("email_enc", row="player_id")
    display_name = SealedField("display_name_enc", row="player_id")
    date_of_birth = SealedField("date_of_birth_enc", row="player_id", kind=date)
    last_login_ip = SealedField("last_login_ip_enc", row="player_id")
    previous_login_ip = SealedField("previous_login_ip_enc", row="player_id")

    @property
    def role_enum(self) -> Role:
        return Role(self.role)

    @property
    def totp_enabled(self) -> bool:
        return self.totp_secret_enc is not None


class UserSession(IdentityBase):
    __tablename__ = "user_sessions"
    __table_args__ = (Index("ix_user_sessions_user", "user_id", "revoked_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # SHA-256 of the 256-bit token; the token itself is only ever in the browser.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    absolute_expires_at: Mapped[datetime] = mapped_column(DateTime)
    ip_enc: Mapped[bytes] = mapped_column(LargeBinary)  # sealed, bound to token_hash
    user_agent: Mapped[str] = mapped_column(String(300), default="")
    device: Mapped[str] = mapped_column(String(100), default="")
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    revoked_reason: Mapped[str | None] = mapped_column(String(50), nullable=True)

    ip = SealedField("ip_enc", row="token_hash")


class LoginAttempt(IdentityBase):
    """Every password check; failures in the window count toward the lock."""

    __tablename__ = "login_attempts"
    __table_args__ = (Index("ix_login_attempts_user_at", "user_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    ip_enc: Mapped[bytes] = mapped_column(LargeBinary)  # sealed, bound to user_id
    success: Mapped[bool] = mapped_column(Boolean, default=False)

    ip = SealedField("ip_enc", row="user_id", nullable_row=True)


class MfaChallenge(IdentityBase):
    """Issued after a correct password on a 2FA account; redeemed with a code."""

    __tablename__ = "mfa_challenges"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class RecoveryCode(IdentityBase):
    __tablename__ = "recovery_codes"
    __table_args__ = (Index("ix_recovery_codes_user", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class ActionToken(IdentityBase):
    """Single-use mailed tokens: password reset and account unlock."""

    __tablename__ = "action_tokens"
    __table_args__ = (
        CheckConstraint("purpose IN ('reset', 'unlock')", name="ck_action_tokens_purpose"),
        Index("ix_action_tokens_user", "user_id", "purpose"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class RoleRequest(IdentityBase):
    """An admin's request to give an account a staff role (support or admin). It takes
    effect only when a different admin approves it (four eyes), so that one admin cannot
    make themselves a second staff identity and approve their own money requests with it.
    The database refuses a decision by the requester (or by the account itself) and keeps
    one pending request per account."""

    __tablename__ = "role_requests"
    __table_args__ = (
        CheckConstraint("role IN ('support', 'admin')", name="ck_role_requests_role"),
        CheckConstraint("state IN ('pending', 'approved', 'rejected')",
                        name="ck_role_requests_state"),
        CheckConstraint("requested_by <> user_id", name="ck_role_requests_not_self"),
        CheckConstraint("decided_by IS NULL OR (decided_by <> requested_by "
                        "AND decided_by <> user_id)", name="ck_role_requests_four_eyes"),
        CheckConstraint("(state = 'pending' AND decided_by IS NULL AND decided_at IS NULL) "
                        "OR (state <> 'pending' AND decided_by IS NOT NULL "
                        "AND decided_at IS NOT NULL)", name="ck_role_requests_decided"),
        Index("uq_role_requests_pending", "user_id", unique=True,
              sqlite_where=text("state = 'pending'"),
              postgresql_where=text("state = 'pending'")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(200))
    requested_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    requested_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    state: Mapped[str] = mapped_column(String(10), default="pending")
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    decision_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)


class PendingRegistration(IdentityBase):
    """A sign-up waiting for its mailed link. No account exists until the link is
    followed (with the password chosen here), so a sign-up reveals nothing about whether
    the address has an account and nobody can hold an address they cannot read mail at.
    Removed when used, after too many wrong passwords, and by the cleanup job once
    expired (it holds the personal data of someone who is not a customer yet)."""

    __tablename__ = "pending_registrations"
    __table_args__ = (
        Index("ix_pending_registrations_email_index", "email_index"),
        Index("ix_pending_registrations_expires", "expires_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Sealed, bound to token_hash (set it first); found by email_index.
    email_enc: Mapped[bytes] = mapped_column(LargeBinary)
    email_index: Mapped[str] = mapped_column(String(64))
    display_name_enc: Mapped[bytes] = mapped_column(LargeBinary)
    date_of_birth_enc: Mapped[bytes] = mapped_column(LargeBinary)
    password_hash: Mapped[str] = mapped_column(String(255))
    # SHA-256 of the mailed 256-bit token; the token itself is only in the mail.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    terms_accepted_at: Mapped[datetime] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    # Wrong passwords given with the link; at MAX_CONFIRM_ATTEMPTS the link stops working.
    attempts: Mapped[int] = mapped_column(Integer, default=0)

    email = SealedField("email_enc", row="token_hash")
    display_name = SealedField("display_name_enc", row="token_hash")
    date_of_birth = SealedField("date_of_birth_enc", row="token_hash", kind=date)


class WithdrawalLock(IdentityBase):
    """A pause on the account's withdrawals until ``until``: after a password, 2FA (or
    email) change (``reason`` password_changed, password_reset, 2fa_enabled, 2fa_disabled),
    or a risk hold (``risk``: users/risk.py; staff were alerted by its audit row). Bets
    go on; only withdrawals and changes to the withdrawal allow-list wait."""

    __tablename__ = "withdrawal_locks"
    __table_args__ = (Index("ix_withdrawal_locks_user", "user_id", "until"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    until: Mapped[datetime] = mapped_column(DateTime)
    # An admin lifted it early (users/staff_money.lift_withdrawal_lock; the note is in the
    # audit log).
    lifted_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    lifted_by: Mapped[int | None] = mapped_column(Integer, nullable=True)


class RiskEvent(IdentityBase):
    """One signal that the account may be in someone else's hands (users/risk.py): a
    sign-in from a new device or network, too many wrong second factors, a withdrawal
    tried soon after a password reset. Its points count until ``expires_at``, or until
    ``resolved_at`` (a strong second factor answered, or a hold was placed for it)."""

    __tablename__ = "risk_events"
    __table_args__ = (Index("ix_risk_events_user", "user_id", "expires_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    points: Mapped[int] = mapped_column(Integer)
    detail: Mapped[str] = mapped_column(String(200), default="")
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


# TOTP secrets (users/totp.py seals them under these contexts).
register("identity", "users", "totp_secret_enc", needs=("id",),
         context=lambda r: f"totp:{r['id']}")
register("identity", "users", "totp_pending_enc", needs=("id",),
         context=lambda r: f"totp-pending:{r['id']}")
