"""The transactions we send, on any chain: recorded before they are broadcast, and what
settling them does to the withdrawals they pay.

Rows of ``withdrawal_batches`` (payments/withdrawal_models.py), each with every signed
version in ``withdrawal_batch_txs``, are written by a chain's sender (payments/eth/batcher.py)
before anything is broadcast.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from casino_app.payments import ledger
from casino_app.payments.withdrawal_models import Withdrawal, WithdrawalBatch, WithdrawalBatchTx


def tx_hashes(s: Session, batch_ids: set[int]) -> dict[int, str]:
    """Batch id -> its mined tx hash, or its latest signed version's."""
    if not batch_ids:
        return {}
    out: dict[int, str] = {}
    for bid, _version, h in s.execute(
            select(WithdrawalBatchTx.batch_id, WithdrawalBatchTx.version,
                   WithdrawalBatchTx.tx_hash)
            .where(WithdrawalBatchTx.batch_id.in_(batch_ids))
            .order_by(WithdrawalBatchTx.batch_id, WithdrawalBatchTx.version)):
        out[bid] = h
    for bid, h in s.execute(select(WithdrawalBatch.id, WithdrawalBatch.tx_hash).where(
            WithdrawalBatch.id.in_(batch_ids), WithdrawalBatch.tx_hash.is_not(None))):
        out[bid] = h
    return out


def post_paid(s: Session, w: Withdrawal) -> None:
    """Book a paid withdrawal: its reservation posted and its fee custody -> ``fees``,
    under the keys the batcher's settlement uses (``withdrawal:<id>#post``,
    ``withdrawal-fee:<id>``), so it happens once whichever path settles it."""
    ledger.post_pending(s, f"withdrawal:{w.id}")
    if w.fee:
        ledger.transfer(s, f"withdrawal-fee:{w.id}", "withdrawal_fee",
                        ledger.house_account(s, w.currency, "custody"),
                        ledger.house_account(s, w.currency, "fees"), w.fee,
                        memo=f"fee of withdrawal {w.id}")
