"""Ledger database tables of payments from the cold wallet (a Safe multisig): large
withdrawals and hot-wallet refills, each one Safe transaction that owners sign offline.

Written only by payments/eth/safe_payments.py (prepare, signatures, cancel) and
payments/eth/safe_exec.py (the job that turns a fully signed payment into a hot-wallet
transaction calling ``execTransaction``).

Two columns make the database refuse what must never happen:

* ``active_withdrawal_id`` (UNIQUE) is the withdrawal's id while its payment is open or
  paid, NULL once cancelled or failed: one withdrawal never has two live Safe payments.
* ``nonce_slot`` (UNIQUE per Safe) is the Safe nonce while the payment may still use it,
  NULL once cancelled or failed: two open payments never share a Safe nonce. A rejected
  payment that the owners had fully signed keeps it (``cancelling``) until the Safe has
  used that nonce: its signatures could still execute it until then.
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

# awaiting_signatures (prepared: owners sign its safeTxHash), ready (enough owner
# signatures from different staff members), sent (its execTransaction is a recorded
# hot-wallet transaction, ``batch_id``), confirmed (mined with status 1 and settled),
# failed (the transaction reverted or its nonce was used elsewhere and the Safe did not
# execute it: a withdrawal's reservation was voided), cancelling (rejected by staff when
# fully signed: the owners' signatures could still execute it, so its Safe nonce stays
# reserved, and a withdrawal's money too, until the Safe uses that nonce: then confirmed
# if it was this payment, cancelled otherwise), cancelled (rejected by staff, or its Safe
# nonce was used by another Safe transaction before it was sent). A payment whose Safe
# transaction was executed by someone else (its ExecutionSuccess log) is confirmed.
SAFE_PAYMENT_STATES = ("awaiting_signatures", "ready", "sent", "confirmed", "failed",
                       "cancelling", "cancelled")
SAFE_PAYMENT_KINDS = ("withdrawal", "refill")


class SafePayment(LedgerBase):
    """One Safe transaction paying a large withdrawal (``kind`` withdrawal) or moving
    funds from the Safe to the hot wallet (``kind`` refill). The call (to, value, data,
    operation 0 = CALL, never DELEGATECALL) and the Safe nonce are fixed when prepared;
    ``safe_tx_hash`` is what the owners sign."""

    __tablename__ = "safe_payments"
    __table_args__ = (
        UniqueConstraint("active_withdrawal_id", name="uq_safe_payment_withdrawal"),
        UniqueConstraint("chain", "safe_address", "nonce_slot", name="uq_safe_payment_nonce"),
        CheckConstraint("state IN ('awaiting_signatures', 'ready', 'sent', 'confirmed', "
                        "'failed', 'cancelling', 'cancelled')", name="ck_safe_payment_state"),
        CheckConstraint("kind IN ('withdrawal', 'refill')", name="ck_safe_payment_kind"),
        CheckConstraint("kind = 'refill' OR withdrawal_id IS NOT NULL",
                        name="ck_safe_payment_withdrawal"),
        CheckConstraint("amount > 0 AND safe_nonce >= 0 AND operation = 0 AND required >= 2",
                        name="ck_safe_payment_values"),
        Index("ix_safe_payment_state", "chain", "safe_address", "state"),
        Index("ix_safe_payment_withdrawal", "withdrawal_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chain: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(12))
    withdrawal_id: Mapped[int | None] = mapped_column(ForeignKey("withdrawals.id"),
                                                      nullable=True)
    active_withdrawal_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    currency: Mapped[str] = mapped_column(String(8))
    amount: Mapped[int] = mapped_column(BigInteger)      # ledger base units paid
    recipient: Mapped[str] = mapped_column(String(42))   # the player's or the hot wallet
    # The Safe transaction as signed.
    safe_address: Mapped[str] = mapped_column(String(42))
    chain_id: Mapped[int] = mapped_column(BigInteger)
    to_address: Mapped[str] = mapped_column(String(42))
    value_wei: Mapped[str] = mapped_column(String(80))
    call_data: Mapped[str] = mapped_column(Text)         # 0x-hex
    operation: Mapped[int] = mapped_column(Integer)
    safe_nonce: Mapped[int] = mapped_column(BigInteger)
    nonce_slot: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    safe_tx_hash: Mapped[str] = mapped_column(String(66))
    # The node's head when prepared: the Safe cannot have executed it before (where its
    # ExecutionSuccess log is looked for); NULL for payments prepared before led0009.
    prepared_block: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # Our execTransaction calls that reverted (the Safe did not execute it: its nonce and
    # the signatures stay valid); retried up to safe_exec.MAX_EXEC_FAILURES.
    exec_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    required: Mapped[int] = mapped_column(Integer)       # signatures (distinct staff) needed
    state: Mapped[str] = mapped_column(String(20))
    # The hot-wallet transaction calling execTransaction (paid, settled by the batcher).
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("withdrawal_batches.id"),
                                                 nullable=True)
    # The transaction that executed it (ours, or another sender's when someone else
    # executed the same signed Safe transaction first).
    tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    failure: Mapped[str | None] = mapped_column(String(200), nullable=True)
    requested_by: Mapped[int] = mapped_column(Integer)   # staff user id who prepared it
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class SafePaymentSignature(LedgerBase):
    """An owner's signature of a payment's ``safe_tx_hash``, made offline with the owner's
    own key and submitted by a staff member. One per owner and one per staff member."""

    __tablename__ = "safe_signatures"
    __table_args__ = (
        UniqueConstraint("payment_id", "owner", name="uq_safe_signature_owner"),
        UniqueConstraint("payment_id", "staff_id", name="uq_safe_signature_staff"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("safe_payments.id"))
    owner: Mapped[str] = mapped_column(String(42))
    signature: Mapped[str] = mapped_column(String(132))  # 0x + r, s, v (v 27/28 or 31/32)
    staff_id: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
