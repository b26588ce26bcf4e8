"""The watcher's side of ``btc_utxos`` (payments/btc/models.py: read its docstring for who
writes what): outputs of ours found in the mempool or in blocks, spends found in blocks,
unconfirmed outputs that left the mempool, and what a reorg undoes. Every function works
in the caller's ledger transaction; the senders' side (reserving inputs before a
broadcast) is theirs.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from casino_app.core.clock import utcnow
from casino_app.core.logging import get_logger
from casino_app.payments.btc.addresses import Owner
from casino_app.payments.btc.models import BtcColdPayment, BtcUtxo
from casino_app.payments.withdrawal_models import (
    OPEN_BATCH_STATES,
    WithdrawalBatch,
    WithdrawalBatchTx,
)

log = get_logger("casino.btc.watcher")

Outpoint = tuple[str, int]


def live_outpoints(s: Session, chain: str) -> set[Outpoint]:
    """Every recorded output that no block has spent (unspent, reserved, dropped): what an
    input of a new transaction may spend."""
    return set(s.execute(select(BtcUtxo.txid, BtcUtxo.vout).where(
        BtcUtxo.chain == chain, BtcUtxo.state != "spent")).tuples())


def _row(s: Session, chain: str, txid: str, vout: int) -> BtcUtxo | None:
    return s.execute(select(BtcUtxo).where(
        BtcUtxo.chain == chain, BtcUtxo.txid == txid, BtcUtxo.vout == vout)
        .with_for_update()).scalar_one_or_none()


def add_output(s: Session, chain: str, txid: str, vout: int, owner: Owner, amount: int,
               script: bytes, height: int | None, block_hash: str | None) -> bool:
    """Record an output paying one of our addresses (once per (chain, txid, vout)): from
    the mempool (``height`` None: unconfirmed) or from a block. An output seen again in a
    block gets its block; a ``dropped`` one seen again (back in the mempool, or mined after
    all) is ``unspent`` again (``reserved`` if a sender had reserved it). True when a row
    was written."""
    row = _row(s, chain, txid, vout)
    now = utcnow()
    if row is None:
        s.add(BtcUtxo(chain=chain, txid=txid, vout=vout, address=owner.address,
                      script_pubkey=script.hex(), role=owner.role, key_chain=owner.key_chain,
                      key_index=owner.key_index, player_id=owner.player_id, amount=amount,
                      block_height=height, block_hash=block_hash, state="unspent",
                      created_at=now, updated_at=now))
        s.flush()  # a later transaction of the same block may spend it
        return True
    changed = False
    if height is not None and (row.block_height, row.block_hash) != (height, block_hash):
        row.block_height, row.block_hash, changed = height, block_hash, True
    if row.state == "dropped":  # a sender's reservation (spent_by) still holds
        row.state, changed = ("reserved" if row.spent_by else "unspent"), True
    if changed:
        row.updated_at = now
    return changed


def mark_spent(s: Session, chain: str, outpoint: Outpoint, spender: str, height: int) -> None:
    """A block's transaction ``spender`` spends our output ``outpoint``. ``spent_by``
    becomes the transaction that was mined (when a sender's fee bump and its original
    race, the chain decides). A spend nobody reserved is logged: a transaction of ours that
    no sender recorded, or a key that is not only ours."""
    row = _row(s, chain, *outpoint)
    if row is None:  # the caller's set said it is ours: it is in the table
        raise RuntimeError(f"btc_utxos has no row for {outpoint[0]}:{outpoint[1]}")
    if row.state == "unspent":
        log.warning("btc_unreserved_spend", txid=row.txid, vout=row.vout, role=row.role,
                    spent_by=spender, height=height)
    elif row.state == "reserved" and row.spent_by != spender:
        log.info("btc_spent_by_other_version", txid=row.txid, vout=row.vout,
                 reserved_for=row.spent_by, spent_by=spender)
    row.state, row.spent_by, row.spent_height = "spent", spender, height
    row.updated_at = utcnow()


def _recorded_by_senders(s: Session, txids: Collection[str]) -> set[str]:
    """Those of ``txids`` that a sender recorded before broadcasting them (every version,
    fee bumps included: ``withdrawal_batch_txs``), or that are the transaction of a live
    cold payment by PSBT (``btc_cold_payments``: its coins were reserved when it was
    prepared, and whoever holds its signatures may have broadcast it before we did)."""
    ordered = sorted(set(txids))
    found: set[str] = set()
    for i in range(0, len(ordered), 500):
        part = ordered[i:i + 500]
        found.update(s.execute(select(WithdrawalBatchTx.tx_hash).where(
            WithdrawalBatchTx.tx_hash.in_(part))).scalars())
        found.update(s.execute(select(BtcColdPayment.txid).where(
            BtcColdPayment.txid.in_(part),
            BtcColdPayment.state.in_(("awaiting_signatures", "cancelling")))).scalars())
    return found


def rewind(s: Session, chain: str, ancestor: int) -> tuple[int, int]:
    """Undo the blocks above ``ancestor`` (in the caller's transaction): their outputs are
    unconfirmed again (``block_height`` NULL; the next mempool look keeps them or marks
    them dropped), and their spends are undone: ``reserved`` (still for ``spent_by``) when
    a sender recorded the spending transaction (it rebroadcasts it), else ``unspent``.
    Returns (outputs made unconfirmed, spends undone)."""
    now = utcnow()
    outputs = s.execute(select(BtcUtxo).where(
        BtcUtxo.chain == chain, BtcUtxo.block_height > ancestor)
        .with_for_update()).scalars().all()
    for row in outputs:
        row.block_height, row.block_hash, row.updated_at = None, None, now
    spends = s.execute(select(BtcUtxo).where(
        BtcUtxo.chain == chain, BtcUtxo.state == "spent", BtcUtxo.spent_height > ancestor)
        .with_for_update()).scalars().all()
    ours = _recorded_by_senders(s, {r.spent_by for r in spends if r.spent_by})
    for row in spends:
        if row.spent_by in ours:
            row.state = "reserved"
        else:
            row.state, row.spent_by = "unspent", None
        row.spent_height, row.updated_at = None, now
    return len(outputs), len(spends)


def drop_missing(s: Session, chain: str, in_mempool: Collection[str]) -> list[BtcUtxo]:
    """Unconfirmed outputs whose transaction is no longer in the node's mempool (read while
    the watcher's tip was the node's: it was not mined either) become ``dropped``: a
    double spend or a replacement took their place; never spendable. Returns them."""
    rows = s.execute(select(BtcUtxo).where(
        BtcUtxo.chain == chain, BtcUtxo.block_height.is_(None),
        BtcUtxo.state.in_(("unspent", "reserved"))).with_for_update()).scalars().all()
    gone = [r for r in rows if r.txid not in in_mempool]
    now = utcnow()
    for row in gone:
        row.state, row.updated_at = "dropped", now
    return gone


def unsettled_txids(chain: str) -> Select:
    """SQL: the txid of every version of our recorded transactions on ``chain`` that is
    not settled yet. Their outputs (change) are not spent by a new transaction: until
    settled, a reorg can put such a transaction back in the mempool, where a fee bump
    replaces it by a version with another txid and less change, and a transaction built
    on the old change could never be mined."""
    return (select(WithdrawalBatchTx.tx_hash)
            .join(WithdrawalBatch, WithdrawalBatch.id == WithdrawalBatchTx.batch_id)
            .where(WithdrawalBatch.chain == chain,
                   WithdrawalBatch.state.in_(OPEN_BATCH_STATES)))
