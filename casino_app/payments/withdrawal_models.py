"""Ledger database tables of withdrawals, on any chain (``chain``): the requests, the
transactions that pay them (and the other transactions we send) and every signed version of
each transaction.

Written only by payments/withdrawals.py (requests) and the chain's sender
(payments/sender.py, payments/eth/sender.py, batcher.py, sweeper.py: batches). A batch and
its signed raw transaction are stored BEFORE it is broadcast, so a crash never makes the
batcher sign a second payment for the same withdrawals.

Ethereum-shaped columns: a batch's ``nonce`` (UNIQUE per chain and sender),
``to_address``, ``value_wei``, ``call_data``, ``gas_limit``, ``gas_used``, ``gas_fee_wei``
and a version's ``max_fee_per_gas`` and ``max_priority_fee_per_gas`` describe one EVM call.
A Bitcoin batch (chain ``bitcoin``) uses them as payments/btc/sender.py documents: the
nonce is the sender's batch sequence, ``call_data`` the plan as JSON (inputs, outputs,
change address), ``to_address`` the change address, ``value_wei`` the satoshis paid,
``gas_limit`` the vsize bound, ``gas_used``/``gas_fee_wei`` the mined version's vsize and
miner fee, a version's ``max_fee_per_gas``/``max_priority_fee_per_gas`` its rate (sat/vB)
and absolute fee (sat). Addresses are ``String(90)`` (EIP-55 or bech32).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from casino_app.core.clock import utcnow
from casino_app.core.db import LedgerBase

# queued (reserved, waiting for the next batch; also after its batch reverted), awaiting_approval (large: two staff must
# approve before it is queued), batched (in a signed transaction), confirmed (paid on
# chain, posted in the ledger), failed (not paid: the reservation was voided), rejected
# (a large withdrawal staff refused: voided), rejecting (refused by staff after its Safe
# payment was fully signed: still reserved until the Safe uses the payment's nonce, then
# rejected, or confirmed if the owners executed that payment after all).
# unconfirmed (reserved, waiting for the player to open the mailed link: then
# queued or awaiting_approval) and cancelled (its link expired, or the account's
# withdrawals were locked before it was opened: voided) come from led0024.
WITHDRAWAL_STATES = ("queued", "awaiting_approval", "batched", "confirmed", "failed",
                     "rejected", "rejecting", "unconfirmed", "cancelled")
# signed (recorded, maybe not broadcast yet), sent (broadcast), confirmed (mined with
# status 1 and enough confirmations; a BatchPay batch may still have refused withdrawals),
# failed (status 0, or its nonce was used by another transaction for
# CASINO_ETH_VOID_AFTER_BLOCKS with no receipt nor Paid log).
BATCH_STATES = ("signed", "sent", "confirmed", "failed")
OPEN_BATCH_STATES = ("signed", "sent")  # recorded, not settled: a version may still change
# pay and approve: the batcher's (from the hot wallet); sweep (a deposit address's coins to
# the hot wallet, sent from the deposit address), topup (gas ETH from the hot wallet to a
# deposit address that must send a token) and to_cold (the hot wallet's excess over its
# band to the cold Safe): the sweeper's (payments/eth/sweeper.py; on Bitcoin
# payments/btc/sweeper.py: sweep and to_cold, from the hot wallet's sequence); cold (a
# Bitcoin cold-wallet spend signed by PSBT, payments/btc/cold_payments.py: a large
# withdrawal or a hot-wallet refill, ``from_address`` "cold"). Only pay and cold move
# players' money in the ledger; the others are moves between our own addresses (the
# network fee booked only).
BATCH_KINDS = ("pay", "approve", "sweep", "topup", "to_cold", "cold")


class WithdrawalBatch(LedgerBase):
    """One transaction we send: from the hot wallet a BatchPay call paying withdrawals of
    one currency (``kind`` pay) or the token approval BatchPay needs (``kind`` approve), or
    one of the sweeper's (see BATCH_KINDS; ``from_address`` is then the deposit address
    for a sweep). The call (to, value, data, gas) is fixed when first signed; a fee bump
    re-signs the same call with the same nonce (a new row in ``withdrawal_batch_txs``)."""

    __tablename__ = "withdrawal_batches"
    __table_args__ = (
        UniqueConstraint("chain", "from_address", "nonce", name="uq_withdrawal_batch_nonce"),
        CheckConstraint("state IN ('signed', 'sent', 'confirmed', 'failed')",
                        name="ck_withdrawal_batch_state"),
        CheckConstraint("kind IN ('pay', 'approve', 'sweep', 'topup', 'to_cold', 'cold')",
                        name="ck_withdrawal_batch_kind"),
        CheckConstraint("nonce >= 0 AND total >= 0 AND gas_limit > 0",
                        name="ck_withdrawal_batch_amounts"),
        Index("ix_withdrawal_batch_state", "chain", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chain: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(8))
    currency: Mapped[str] = mapped_column(String(8))
    from_address: Mapped[str] = mapped_column(String(90))
    nonce: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(12))
    # The call, as signed: contract, value in wei (decimal digits), call data (0x-hex).
    to_address: Mapped[str] = mapped_column(String(90))
    value_wei: Mapped[str] = mapped_column(String(80))
    call_data: Mapped[str] = mapped_column(Text)
    gas_limit: Mapped[int] = mapped_column(BigInteger)
    # Sum of the withdrawals' amounts paid (ledger base units; 0 for an approval); for the
    # sweeper's kinds the amount moved, in ledger base units of ``currency`` (rounded down).
    total: Mapped[int] = mapped_column(BigInteger)
    # The version that was mined, its block, and the gas it cost (wei, and ledger gwei).
    tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    block_number: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # The hash of that block (Bitcoin: a settled batch whose block a reorg replaced is
    # found by it; None on Ethereum rows and on rows settled before led0016_btc_batches).
    block_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    gas_used: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    gas_fee_wei: Mapped[str | None] = mapped_column(String(80), nullable=True)
    failure: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # The node's head when the transaction was recorded (a lower bound of the block that
    # mines it: where the batcher looks for its Paid logs). None on rows recorded before.
    recorded_block: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    broadcast_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class WithdrawalBatchTx(LedgerBase):
    """One signed version of a batch's transaction (version 0, then each fee bump). The
    raw transaction is kept until the batch is final, so a restart rebroadcasts exactly
    what was signed."""

    __tablename__ = "withdrawal_batch_txs"
    __table_args__ = (
        UniqueConstraint("batch_id", "version", name="uq_withdrawal_batch_tx_version"),
        UniqueConstraint("tx_hash", name="uq_withdrawal_batch_tx_hash"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("withdrawal_batches.id"))
    version: Mapped[int] = mapped_column(Integer)
    tx_hash: Mapped[str] = mapped_column(String(66))
    raw_tx: Mapped[str | None] = mapped_column(Text, nullable=True)
    max_fee_per_gas: Mapped[int] = mapped_column(BigInteger)
    max_priority_fee_per_gas: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    broadcast_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class Withdrawal(LedgerBase):
    """A player's withdrawal request. ``key`` is the request's idempotency key (the same
    key returns the same withdrawal); the ledger reservation is ``withdrawal:<id>`` of
    amount + fee, from the player's account to custody."""

    __tablename__ = "withdrawals"
    __table_args__ = (
        UniqueConstraint("key", name="uq_withdrawal_key"),
        CheckConstraint("state IN ('queued', 'awaiting_approval', 'batched', 'confirmed', "
                        "'failed', 'rejected', 'rejecting', 'unconfirmed', "
                        "'cancelled')", name="ck_withdrawal_state"),
        UniqueConstraint("confirm_token_hash", name="uq_withdrawal_confirm_token"),
        CheckConstraint("amount > 0 AND fee >= 0", name="ck_withdrawal_amounts"),
        CheckConstraint("approved_by IS NULL OR approved_by_2 IS NULL "
                        "OR approved_by <> approved_by_2", name="ck_withdrawal_two_staff"),
        Index("ix_withdrawal_state", "chain", "currency", "state"),
        Index("ix_withdrawal_player", "player_id", "id"),
        Index("ix_withdrawal_batch", "batch_id"),
        Index("ix_withdrawal_updated", "updated_at"),
        Index("ix_withdrawal_announced", "announced", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(100))
    player_id: Mapped[str] = mapped_column(String(36))
    chain: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(8))
    amount: Mapped[int] = mapped_column(BigInteger)   # paid to the address (base units)
    fee: Mapped[int] = mapped_column(BigInteger)      # kept by the house (base units)
    address: Mapped[str] = mapped_column(String(90))  # EIP-55 or bech32
    state: Mapped[str] = mapped_column(String(20))
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("withdrawal_batches.id"),
                                                 nullable=True)
    failure: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # BatchPay batches that reverted (status 0) with this withdrawal in them, and the last
    # one: it was queued again (reservation kept). After two it is paid alone; alone and
    # reverting once more, it fails (payments/eth/batcher.py).
    reverts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    reverted_batch_id: Mapped[int | None] = mapped_column(
        ForeignKey("withdrawal_batches.id"), nullable=True)
    # Large withdrawals: the two staff members (identity user ids) who approved.
    approved_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    approved_by_2: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Confirmation by mailed link: sha256 of the link's token, its expiry, and when it
    # was opened (the link works once; opened again it answers what it did).
    confirm_token_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    confirm_expires_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # The last mail that told the player about it: requested, sent, ended (NULL: none;
    # payments/withdrawal_notices.py and the withdrawal-notices job).
    announced: Mapped[str | None] = mapped_column(String(12), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class WithdrawalAddress(LedgerBase):
    """An address a player has named for withdrawals on a chain
    (payments/withdrawal_addresses.py). It can be paid from ``usable_at`` (its first
    naming plus CASINO_WITHDRAW_COOLING_HOURS) or at once while ``allowed_at`` is set
    (the player's allow-list, changed only with a second factor)."""

    __tablename__ = "withdrawal_addresses"
    __table_args__ = (
        UniqueConstraint("player_id", "chain", "address", name="uq_withdrawal_address"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    player_id: Mapped[str] = mapped_column(String(36))
    chain: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(90))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    usable_at: Mapped[datetime] = mapped_column(DateTime)
    allowed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
