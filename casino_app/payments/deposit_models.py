"""Ledger database tables of the chain watchers, keyed by chain: the blocks each followed
and the deposits it found. Written only through payments/deposits.py (the watchers:
payments/eth/watcher.py, payments/btc/watcher.py). ``address`` and ``sender`` are
``String(90)`` (EIP-55 or bech32; a Bitcoin deposit has no single sender: its first input's
address, or "" when none has one); ``log_index`` is a Bitcoin deposit's output index."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from casino_app.core.clock import utcnow
from casino_app.core.db import LedgerBase


class ChainBlock(LedgerBase):
    """A block the watcher processed, as it saw it. The highest one is the cursor; a new
    block whose parent hash differs from the stored hash below it means a reorg."""

    __tablename__ = "chain_blocks"

    chain: Mapped[str] = mapped_column(String(16), primary_key=True)
    number: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    hash: Mapped[str] = mapped_column(String(66))
    parent_hash: Mapped[str] = mapped_column(String(66))
    seen_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


# A deposit's states: seen (in a block, not credited: over the pending cap), pending
# (credited at 1 confirmation: playable, not withdrawable), available (N confirmations),
# reversed (its block left the chain: the credit was taken back), dust (below the
# threshold: recorded, never credited); on a chain whose watcher reads the node's mempool
# (Bitcoin): incoming (unconfirmed: shown, never credited; no block) and dropped (left the
# mempool without being mined: double-spent or replaced; never credited, not shown).
DEPOSIT_STATES = ("seen", "pending", "available", "reversed", "dust", "incoming", "dropped")
UNCONFIRMED_STATES = ("incoming", "dropped")


class ChainDeposit(LedgerBase):
    """One transfer to a deposit address: (chain, tx hash, log index) once. ``log_index``
    is the token Transfer log's index (>= 0), -1 for a native transfer by the transaction
    itself, and ``-1 - position`` (-2, -3, ...) for ETH a contract passed on inside the
    transaction, ``position`` being the call's place in the transaction's call tree in
    pre-order (the transaction itself is 0), as the node's traces give it. ``credits``
    counts the credit entries posted (a deposit reversed by a reorg and mined again is
    credited again under a new key). ``block_number`` and ``block_hash`` are NULL while the
    deposit is unconfirmed (``incoming``, ``dropped``)."""

    __tablename__ = "chain_deposits"
    __table_args__ = (
        UniqueConstraint("chain", "tx_hash", "log_index", name="uq_chain_deposit"),
        CheckConstraint("state IN ('seen', 'pending', 'available', 'reversed', 'dust', "
                        "'incoming', 'dropped')", name="ck_chain_deposit_state"),
        # Only an unconfirmed deposit has no block.
        CheckConstraint("(state IN ('incoming', 'dropped')) = (block_number IS NULL)",
                        name="ck_chain_deposit_block"),
        CheckConstraint("amount >= 0 AND owed >= 0 AND credits >= 0",
                        name="ck_chain_deposit_amounts"),
        Index("ix_chain_deposit_state", "chain", "state"),
        Index("ix_chain_deposit_block", "chain", "block_number"),
        Index("ix_chain_deposit_player", "player_id", "id"),
        # The web process's push loop reads what changed since its last look.
        Index("ix_chain_deposit_updated", "updated_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chain: Mapped[str] = mapped_column(String(16))
    tx_hash: Mapped[str] = mapped_column(String(66))
    log_index: Mapped[int] = mapped_column(Integer)
    block_number: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    block_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    currency: Mapped[str] = mapped_column(String(8))
    address: Mapped[str] = mapped_column(String(90))
    sender: Mapped[str] = mapped_column(String(90))
    player_id: Mapped[str] = mapped_column(String(36))
    # On-chain units (wei, token units) as decimal digits: they can pass 64 bits.
    amount_raw: Mapped[str] = mapped_column(String(80))
    # Ledger units (ETH: gwei); what a credit moves. Wei below a gwei stay uncredited.
    amount: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(12))
    credits: Mapped[int] = mapped_column(Integer, default=0)
    # What the player could not pay back when a spent deposit was reversed.
    owed: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
