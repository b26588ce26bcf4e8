"""Tables of the game-provider integration (ledger database: pseudonymous ids only).

A provider's secrets are sealed at rest (``security.sealed``): the BGaming-style shared
secret, and the private key we sign Hub88-style calls and answers with. Its public key,
and ours, are public by nature and kept in clear.
"""

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
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from casino_app.core.clock import utcnow
from casino_app.core.db import LedgerBase
from casino_app.security.sealed import register

_ID = BigInteger().with_variant(Integer, "sqlite")


class Provider(LedgerBase):
    """A game provider (or aggregator) and how we talk to it."""

    __tablename__ = "providers"
    __table_args__ = (
        CheckConstraint("dialect IN ('hub88', 'bgaming')", name="ck_provider_dialect"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(32), unique=True)
    dialect: Mapped[str] = mapped_column(String(16))
    base_url: Mapped[str] = mapped_column(String(300))
    currencies: Mapped[str] = mapped_column(String(200))  # comma-separated codes
    # hub88: operator_id; bgaming: casino_id (what our calls to the provider name us by)
    operator_ref: Mapped[str] = mapped_column(String(64), default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # hub88: the provider's public key (PEM), which verifies its calls to us
    peer_public_key: Mapped[str | None] = mapped_column(Text)
    # hub88: our key pair for this provider (private part sealed); bgaming: the secret
    own_public_key: Mapped[str | None] = mapped_column(Text)
    secret_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime)


def provider_secret_context(row: dict) -> str:
    return f"providers.secret:{row['name']}"


register("ledger", "providers", "secret_sealed", needs=("name",),
         context=provider_secret_context)


class ProviderGame(LedgerBase):
    """A game of a provider's catalogue (refreshed from its game list)."""

    __tablename__ = "provider_games"
    __table_args__ = (
        UniqueConstraint("provider_id", "game_code", name="uq_provider_game"),
        CheckConstraint("rtp_e4 >= 0 AND rtp_e4 <= 1000000", name="ck_provider_game_rtp"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"))
    game_code: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(100))
    category: Mapped[str] = mapped_column(String(40), default="")
    rtp_e4: Mapped[int] = mapped_column(Integer, default=0)  # 96.00% -> 960000
    volatility: Mapped[str] = mapped_column(String(20), default="")
    thumb_url: Mapped[str] = mapped_column(String(300), default="")
    demo: Mapped[bool] = mapped_column(Boolean, default=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    fair_scheme: Mapped[str] = mapped_column(String(32), default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ProviderSession(LedgerBase):
    """A launch: the token a provider sends with a player's bets (sha256 kept only)."""

    __tablename__ = "provider_sessions"
    __table_args__ = (Index("ix_provider_session_player", "player_id", "id"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"))
    player_id: Mapped[str] = mapped_column(String(36))
    game_code: Mapped[str] = mapped_column(String(100))
    currency: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)


class ProviderRound(LedgerBase):
    """A provider's round: open on its first bet, closed by its closing call."""

    __tablename__ = "provider_rounds"
    __table_args__ = (
        UniqueConstraint("provider_id", "round_ref", name="uq_provider_round"),
        CheckConstraint("state IN ('open', 'closed')", name="ck_provider_round_state"),
        CheckConstraint("fair_state IN ('none', 'pending', 'ok', 'mismatch')",
                        name="ck_provider_round_fair"),
        Index("ix_provider_round_player", "player_id", "id"),
        Index("ix_provider_round_game", "provider_id", "game_code", "closed_at"),
        Index("ix_provider_round_closed", "closed_at"),  # the loyalty job's periods
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"))
    round_ref: Mapped[str] = mapped_column(String(128))
    player_id: Mapped[str] = mapped_column(String(36))
    game_code: Mapped[str] = mapped_column(String(100))
    currency: Mapped[str] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(String(8), default="open")
    staked: Mapped[int] = mapped_column(BigInteger, default=0)  # bets less rolled back
    paid: Mapped[int] = mapped_column(BigInteger, default=0)    # wins less rolled back
    fair_scheme: Mapped[str] = mapped_column(String(32), default="")
    seed_hash: Mapped[str] = mapped_column(String(128), default="")
    seed: Mapped[str] = mapped_column(String(256), default="")
    fair_state: Mapped[str] = mapped_column(String(8), default="none")
    fair_detail: Mapped[str] = mapped_column(String(300), default="")
    opened_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime)


class ProviderTx(LedgerBase):
    """One provider transaction, kept for good (the contract asks for four months):
    its id is never applied twice. ``tombstone`` is the marker a rollback of an unknown
    transaction leaves under that transaction's id, so that it is refused if it comes."""

    __tablename__ = "provider_txs"
    __table_args__ = (
        UniqueConstraint("provider_id", "tx_ref", name="uq_provider_tx"),
        CheckConstraint("kind IN ('bet', 'win', 'rollback', 'tombstone')",
                        name="ck_provider_tx_kind"),
        CheckConstraint("amount >= 0", name="ck_provider_tx_amount"),
        Index("ix_provider_tx_round", "round_id", "id"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"))
    tx_ref: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(10))
    round_id: Mapped[int | None] = mapped_column(ForeignKey("provider_rounds.id"))
    player_id: Mapped[str] = mapped_column(String(36))
    currency: Mapped[str] = mapped_column(String(8))
    amount: Mapped[int] = mapped_column(BigInteger, default=0)
    reference_ref: Mapped[str] = mapped_column(String(128), default="")
    fingerprint: Mapped[str] = mapped_column(String(64))
    rolled_back: Mapped[bool] = mapped_column(Boolean, default=False)
    receipt_id: Mapped[int | None] = mapped_column(ForeignKey("provider_receipts.id"))
    # the answer we gave, replayed byte for byte to a repeat of the same request
    response: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ProviderReceipt(LedgerBase):
    """A signed callback as it arrived (raw body and signature) with the answer we sent."""

    __tablename__ = "provider_receipts"
    __table_args__ = (Index("ix_provider_receipt_provider", "provider_id", "id"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"))
    path: Mapped[str] = mapped_column(String(64))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    signature: Mapped[str] = mapped_column(String(1024))
    status: Mapped[str] = mapped_column(String(40), default="")
    response: Mapped[bytes | None] = mapped_column(LargeBinary)
    response_signature: Mapped[str] = mapped_column(String(1024), default="")
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ProviderAlert(LedgerBase):
    """Something a provider did that staff must look at: a bad signature, a win for an
    unknown or closed round, a commit-reveal mismatch, RTP drift. Repeats of the same
    alert within its bucket only count up (a flood of bad signatures is one row a
    minute, not one row a request)."""

    __tablename__ = "provider_alerts"
    __table_args__ = (
        UniqueConstraint("provider_id", "kind", "subject", "bucket", name="uq_provider_alert"),
        Index("ix_provider_alert_recent", "id"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("providers.id"))
    kind: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(8))
    subject: Mapped[str] = mapped_column(String(160), default="")
    bucket: Mapped[str] = mapped_column(String(16), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    count: Mapped[int] = mapped_column(Integer, default=1)
    first_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
