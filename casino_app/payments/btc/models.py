"""Ledger database table of the Bitcoin outputs we control: the UTXO set of our wallets.

Every output that pays one of our addresses (a player's deposit address, the hot wallet
and its change addresses, the cold multisig) is one row, keyed by (chain, txid, vout).
Who writes what:

* The watcher (payments/btc/watcher.py) inserts a row when it first sees the output, in
  the node's mempool (``block_height`` NULL: unconfirmed) or in a block (its height and
  hash); an unconfirmed output that leaves the mempool without being mined (double-spent,
  replaced) becomes ``dropped`` and is never spendable. When a block spends one of our
  outputs, the watcher marks it ``spent`` (``spent_by`` = the spending txid,
  ``spent_height``). A reorg that drops a block puts its outputs back to unconfirmed
  (``block_height`` NULL) and its spends back to ``reserved`` (a transaction of ours,
  which will be rebroadcast) or ``unspent`` (anyone else's). Deposits are credited from
  blocks only, through payments/deposits.DepositBook (``chain_deposits``): this table is
  the chain's view, the ledger is the money.
* A sender (the withdrawal batcher, the sweeper, a cold payment) that builds a transaction
  marks its inputs ``reserved`` with ``spent_by`` = that transaction's txid IN THE SAME
  ledger transaction that records the signed transaction (payments/sender.py: record
  before broadcast). A fee bump (RBF) spends the same inputs: ``spent_by`` follows the
  newest version. So an output is never put in two transactions unless one replaces the
  other, and coin selection takes only ``unspent`` outputs.

``role``: ``deposit`` (a player's address: ``player_id`` is set, ``key_index`` the
derivation index m/84'/coin'/0'/0/i), ``hot`` (the hot wallet's own address
m/84'/coin'/0'/1/0: refills and sweeps pay it; ``key_chain`` 1, ``key_index`` 0),
``change`` (the hot wallet's change addresses m/84'/coin'/0'/1/k, k >= 1: ``key_chain`` 1,
``key_index`` k, as ``btc_change_addresses`` below names them), ``cold`` (the 2-of-3 P2WSH
cold wallet, payments/btc/cold.py; ``key_chain``/``key_index`` its derivation). Amounts are
integer satoshis. The signer derives the key of a hot or change output from
(``key_chain``, ``key_index``), so the watcher must fill them exactly.

Which transactions are ours: every signed version of a recorded transaction
(``withdrawal_batch_txs.tx_hash`` of a ``withdrawal_batches`` row with chain ``bitcoin``),
not only the newest: on a node without BIP125 replacement (bcoin), or when a replacement
has not reached the miners, an older version may be the one mined. ``spent_by`` names the
newest version while the batch is open; the sender sets it to the mined version when it
settles the batch, and puts back to ``unspent`` an input that the mined version did not
spend (an input a fee bump added).

**Change addresses** (``btc_change_addresses``): the sender (payments/btc/sender.py) takes
the next index k (the highest recorded + 1, starting at 1) for a transaction that pays
change, and records (k, address, script, batch) IN THE SAME ledger transaction that
records the signed transaction, before it is broadcast. So the watcher, seeing an output
to one of these addresses (in the mempool or a block, possibly after a crash of the
sender), knows it is ours: role ``change``, key (1, k). A fee bump keeps the batch's
change address; a batch whose change was dust takes none (no gap in the indexes). UNIQUE
(chain, key_index) and (chain, address): two senders recording at once cannot take the
same index (the second recording fails unsent and is retried).
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
