"""Ledger database tables of the proof of reserves (payments/reserves.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from casino_app.core.clock import utcnow
from casino_app.core.db import LedgerBase
from casino_app.security.sealed import register

_ID = BigInteger().with_variant(Integer, "sqlite")


class ReserveProof(LedgerBase):
    """A published proof: the signed document, as published."""

    __tablename__ = "reserve_proofs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    document: Mapped[str] = mapped_column(Text)      # canonical JSON, what is signed
    signature: Mapped[str] = mapped_column(String(200))
    public_key: Mapped[str] = mapped_column(String(100))
    covered: Mapped[bool] = mapped_column(default=True)


class ReserveLeaf(LedgerBase):
    """A player's leaf in a proof (to give the player their inclusion path)."""

    __tablename__ = "reserve_leaves"
    __table_args__ = (Index("ix_reserve_leaf_player", "player_id", "proof_id"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    proof_id: Mapped[int] = mapped_column(ForeignKey("reserve_proofs.id"))
    currency: Mapped[str] = mapped_column(String(8))
    position: Mapped[int] = mapped_column(Integer)
    player_id: Mapped[str] = mapped_column(String(36))
    leaf_id: Mapped[str] = mapped_column(String(64))
    balance: Mapped[int] = mapped_column(BigInteger)


class ReserveSalt(LedgerBase):
    """A player's salt (sealed): only that player is shown it, so nobody else can tell
    which leaf is theirs."""

    __tablename__ = "reserve_salts"

    player_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    salt_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


def salt_context(row: dict) -> str:
    return f"reserve_salts.salt:{row['player_id']}"


register("ledger", "reserve_salts", "salt_sealed", needs=("player_id",),
         context=salt_context, key="player_id")
