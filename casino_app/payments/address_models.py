"""Ledger database table of deposit addresses: one per (chain, player), never reassigned.

Written only by a chain's allocator (payments/eth/addresses.py, payments/btc/addresses.py). The database refuses
UPDATE and DELETE on it (triggers in migration led0004): an address handed to a player
stays theirs. ``address`` is ``String(90)``: EIP-55 (42) or bech32 (up to 90).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from casino_app.core.clock import utcnow
from casino_app.core.db import LedgerBase


class DepositAddress(LedgerBase):
    """The address given to a player on a chain: on Ethereum ``m/44'/60'/0'/0/<index>`` of
    the hot wallet's xpub, stored checksummed (EIP-55; look-ups normalise their input with
    ``keys.checksum`` so they use the unique index); on Bitcoin the BIP84 P2WPKH address
    ``m/84'/coin'/0'/0/<index>`` in bech32, lower case."""

    __tablename__ = "deposit_addresses"
    __table_args__ = (
        UniqueConstraint("chain", "player_id", name="uq_deposit_address_player"),
        UniqueConstraint("chain", "derivation_index", name="uq_deposit_address_index"),
        UniqueConstraint("chain", "address", name="uq_deposit_address_address"),
        CheckConstraint("derivation_index >= 0", name="ck_deposit_address_index"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chain: Mapped[str] = mapped_column(String(16))
    player_id: Mapped[str] = mapped_column(String(36))
    derivation_index: Mapped[int] = mapped_column(Integer)
    address: Mapped[str] = mapped_column(String(90))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
