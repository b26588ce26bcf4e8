"""Ledger database table of the Bitcoin outputs we control: the UTXO set of our wallets.

Every output that pays one of our addresses (a player's deposit address, the hot wallet
and its change addresses, the cold multisig) is one row, keyed by (chain, txid, vout).
Who writes what:

* The watcher (payments/btc/watcher.py, payments/btc/utxos.py) inserts a row when it
  first sees the output, in the node's mempool (``block_height`` NULL: unconfirmed) or in a
  block (its height and hash); an unconfirmed output that leaves the mempool without being
  mined (double-spent, replaced) becomes ``dropped`` and is never spendable (seen again in
  the mempool or a block, it is ``unspent`` again, or ``reserved`` if a sender had
  reserved it). When a BLOCK spends one of our outputs, the watcher marks it ``spent``
  (``spent_by`` = the spending txid that was mined, ``spent_height``); a spend seen only in
  the mempool changes nothing (the sender reserved the output already). A reorg that drops
  a block puts its outputs back to unconfirmed (``block_height`` NULL) and its spends back
  to ``reserved`` (still for ``spent_by``: a transaction a sender recorded in
  ``withdrawal_batch_txs``, which it rebroadcasts) or ``unspent`` (a spend nobody
  recorded). Deposits are credited from blocks only, through payments/deposits.DepositBook
  (``chain_deposits``): this table is the chain's view, the ledger is the money.
* A sender (the withdrawal batcher, the sweeper, a cold payment) that builds a transaction
  marks its inputs ``reserved`` with ``spent_by`` = that transaction's txid IN THE SAME
  ledger transaction that records the signed transaction (payments/sender.py: record
  before broadcast; every version's txid in ``withdrawal_batch_txs``, which is how the
  watcher knows after a reorg that a spend was ours). A fee bump (RBF) spends the same
  inputs: ``spent_by`` follows the newest version. So an output is never put in two
  transactions unless one replaces the other, and coin selection takes only ``unspent``
  outputs (with ``block_height`` set, unless it means to spend unconfirmed change).
  Senders never insert rows: the watcher records their outputs (change) too.

``role``: ``deposit`` (a player's address: ``player_id`` is set, ``key_index`` the
derivation index m/84'/coin'/0'/0/i), ``hot`` (the hot wallet, m/84'/coin'/0'/1/0:
``keys.hot_wallet_address``, the key the signer spends with), ``change`` (the hot wallet's
change addresses m/84'/coin'/0'/1/k, k >= 1: the watcher looks for k up to the highest
seen + ``addresses.CHANGE_GAP``; a sender takes ``addresses.next_change_index`` or any
index in that window, or pays change to the hot address itself), ``cold`` (the 2-of-3
P2WSH cold wallet, payments/btc/cold.py; ``key_chain``/``key_index`` its derivation,
watched the same way: up to the highest seen on each chain + CHANGE_GAP). Amounts are
integer satoshis. The signer derives the key of a hot or change output from
(``key_chain``, ``key_index``).

Which transactions are ours: every signed version of a recorded transaction
(``withdrawal_batch_txs.tx_hash`` of a ``withdrawal_batches`` row with chain ``bitcoin``),
not only the newest: on a node without BIP125 replacement (bcoin), or when a replacement
has not reached the miners, an older version may be the one mined. ``spent_by`` names the
newest version while the batch is open; when the sender settles the batch it names the
mined version on the rows still ``reserved``, and puts back to ``unspent`` an input that
the mined version did not spend (a coin a fee bump added).

**Which change address each batch used** (``btc_change_addresses``): the withdrawal
sender (payments/btc/sender.py) takes k = the highest it recorded + 1, and never less
than ``addresses.next_change_index`` (so always inside the watcher's window unless more
than CHANGE_GAP batches' change is unseen: then it pays the change to the hot address
/1/0 and records no row), and records (k, address, script, batch) IN THE SAME ledger
transaction that records the signed transaction, before it is broadcast. A fee bump keeps
the batch's change address; a batch whose change was dust takes none. UNIQUE (chain,
key_index) and (chain, address): two senders recording at once cannot take the same index
(the second recording fails unsent and is retried). The adapter counts these addresses
as ours (a player cannot withdraw to one).
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

ROLES = ("deposit", "hot", "change", "cold")
STATES = ("unspent", "reserved", "spent", "dropped")


class BtcUtxo(LedgerBase):
    __tablename__ = "btc_utxos"
    __table_args__ = (
        UniqueConstraint("chain", "txid", "vout", name="uq_btc_utxo"),
        CheckConstraint("role IN ('deposit', 'hot', 'change', 'cold')",
                        name="ck_btc_utxo_role"),
        CheckConstraint("state IN ('unspent', 'reserved', 'spent', 'dropped')",
                        name="ck_btc_utxo_state"),
        CheckConstraint("amount > 0 AND vout >= 0", name="ck_btc_utxo_amount"),
        CheckConstraint("(role = 'deposit') = (player_id IS NOT NULL)",
                        name="ck_btc_utxo_player"),
        CheckConstraint("state IN ('unspent', 'dropped') OR spent_by IS NOT NULL",
                        name="ck_btc_utxo_spent_by"),
        Index("ix_btc_utxo_spendable", "chain", "role", "state"),
        Index("ix_btc_utxo_block", "chain", "block_height"),
        Index("ix_btc_utxo_spent_by", "chain", "spent_by"),
        Index("ix_btc_utxo_player", "player_id"),
        # The web process's push loop reads what changed since its last look.
        Index("ix_btc_utxo_updated", "updated_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True)
    chain: Mapped[str] = mapped_column(String(16))
    txid: Mapped[str] = mapped_column(String(64))
    vout: Mapped[int] = mapped_column(Integer)
    address: Mapped[str] = mapped_column(String(90))
    script_pubkey: Mapped[str] = mapped_column(String(140))  # hex
    role: Mapped[str] = mapped_column(String(8))
    key_chain: Mapped[int] = mapped_column(Integer, default=0)
    key_index: Mapped[int] = mapped_column(Integer, default=0)
    player_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    block_height: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    block_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    state: Mapped[str] = mapped_column(String(8), default="unspent")
    spent_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    spent_height: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class BtcChangeAddress(LedgerBase):
    """A change address of the hot wallet, m/84'/coin'/0'/1/``key_index`` (k >= 1; /1/0 is
    the hot wallet's own address), taken once by the transaction ``batch_id`` that pays
    change to it (see the module docstring)."""

    __tablename__ = "btc_change_addresses"
    __table_args__ = (
        UniqueConstraint("chain", "key_index", name="uq_btc_change_index"),
        UniqueConstraint("chain", "address", name="uq_btc_change_address"),
        CheckConstraint("key_index >= 1", name="ck_btc_change_index"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chain: Mapped[str] = mapped_column(String(16))
    key_index: Mapped[int] = mapped_column(Integer)
    address: Mapped[str] = mapped_column(String(90))
    script_pubkey: Mapped[str] = mapped_column(String(140))  # hex
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("withdrawal_batches.id"),
                                                 nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


# --- payments from the cold wallet (payments/btc/cold_payments.py) ---------------------------

# awaiting_signatures (prepared: the reference PSBT stored, its coins reserved; admins
# upload their cosigners' signatures), sent (two different admins brought two different
# cosigners' signatures: finalised and recorded as a ``withdrawal_batches`` row of kind
# ``cold``, ``batch_id``, broadcast; the job follows it), confirmed (mined and settled),
# failed (its batch failed: its coins were spent by another transaction; a withdrawal
# waits for approval again), cancelling (taken back after signatures of enough cosigners
# were uploaded, even by one person: whoever holds those files could still broadcast it,
# so its coins and a withdrawal's money stay reserved until one of its coins is spent:
# by it (paid) or by another transaction (cancelled)), cancelled (taken back before that,
# coins freed; or its coins were spent by another transaction before it was sent).
COLD_PAYMENT_STATES = ("awaiting_signatures", "sent", "confirmed", "failed", "cancelling",
                       "cancelled")
COLD_PAYMENT_KINDS = ("withdrawal", "refill")


class BtcColdPayment(LedgerBase):
    """A spend of cold-wallet coins by PSBT: a large withdrawal (``kind`` withdrawal) or a
    refill of the hot wallet (``kind`` refill). ``psbt`` is the reference (base64, as
    payments/btc/psbt.build_psbt wrote it): every upload is checked against it; ``txid``
    is the transaction's id, fixed by the unsigned transaction (segwit), which is also
    ``btc_utxos.spent_by`` of the coins it reserves (``inputs``: JSON list of
    [txid, vout, value, chain, index]). ``active_withdrawal_id`` (UNIQUE) is the
    withdrawal's id while the payment may still pay it (NULL once cancelled or failed):
    one withdrawal never has two live cold payments."""

    __tablename__ = "btc_cold_payments"
    __table_args__ = (
        UniqueConstraint("active_withdrawal_id", name="uq_btc_cold_payment_withdrawal"),
        CheckConstraint("state IN ('awaiting_signatures', 'sent', 'confirmed', 'failed', "
                        "'cancelling', 'cancelled')", name="ck_btc_cold_payment_state"),
        CheckConstraint("kind IN ('withdrawal', 'refill')", name="ck_btc_cold_payment_kind"),
        CheckConstraint("(kind = 'withdrawal') = (withdrawal_id IS NOT NULL)",
                        name="ck_btc_cold_payment_withdrawal"),
        CheckConstraint("amount > 0 AND fee > 0 AND vsize > 0 AND fee_rate > 0 "
                        "AND change_value >= 0 AND required >= 2",
                        name="ck_btc_cold_payment_values"),
        Index("ix_btc_cold_payment_state", "chain", "state"),
        Index("ix_btc_cold_payment_txid", "chain", "txid"),
        Index("ix_btc_cold_payment_withdrawal", "withdrawal_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chain: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(12))
    withdrawal_id: Mapped[int | None] = mapped_column(ForeignKey("withdrawals.id"),
                                                      nullable=True)
    active_withdrawal_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    amount: Mapped[int] = mapped_column(BigInteger)        # satoshis paid to the recipient
    recipient: Mapped[str] = mapped_column(String(90))     # the player's or the hot wallet
    txid: Mapped[str] = mapped_column(String(64))
    psbt: Mapped[str] = mapped_column(Text)                # the reference PSBT, base64
    inputs: Mapped[str] = mapped_column(Text)              # JSON: the coins it spends
    fee: Mapped[int] = mapped_column(BigInteger)           # miner fee (satoshis)
    vsize: Mapped[int] = mapped_column(Integer)            # signed vsize, at most (vB)
    fee_rate: Mapped[int] = mapped_column(Integer)         # sat/vB it was built for
    change_index: Mapped[int | None] = mapped_column(Integer, nullable=True)  # cold (1, k)
    change_value: Mapped[int] = mapped_column(BigInteger, default=0)
    required: Mapped[int] = mapped_column(Integer)         # cosigners (= distinct admins)
    state: Mapped[str] = mapped_column(String(20))
    # The recorded transaction (kind ``cold``) once it has its approvals.
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("withdrawal_batches.id"),
                                                 nullable=True)
    failure: Mapped[str | None] = mapped_column(String(200), nullable=True)
    requested_by: Mapped[int] = mapped_column(Integer)     # staff user id who prepared it
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class BtcColdSignature(LedgerBase):
    """One admin's approval of a cold payment: the signatures of ONE cosigner (``cosigner``:
    its master key fingerprint), checked against the reference and stored as a PSBT
    holding only them (``psbt``, base64), uploaded by ``staff_id``. UNIQUE per payment on
    the cosigner and on the staff member: the same person counts once whatever they
    upload, and a cosigner's key counts once whoever brings it. ``seen``: every cosigner
    whose signatures covered every input of that upload (comma-separated): one person may
    have uploaded more than they are counted for, which matters when the payment is
    taken back (payments/btc/cold_payments.take_back)."""

    __tablename__ = "btc_cold_signatures"
    __table_args__ = (
        UniqueConstraint("payment_id", "cosigner", name="uq_btc_cold_signature_cosigner"),
        UniqueConstraint("payment_id", "staff_id", name="uq_btc_cold_signature_staff"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("btc_cold_payments.id"))
    cosigner: Mapped[str] = mapped_column(String(8))
    staff_id: Mapped[int] = mapped_column(Integer)
    psbt: Mapped[str] = mapped_column(Text)
    seen: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
