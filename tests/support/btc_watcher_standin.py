"""STAND-IN for the Bitcoin watcher's bookkeeping of our coins (``btc_utxos``), for tests of
the senders. Written while payments/btc/watcher.py was being built in parallel; it stays
because it lets a test decide exactly when a coin, a change or a spend is recorded (a
crash, a reorg, a coin spent elsewhere). tests/payments/btc/test_withdrawals.py also runs
the real watcher end to end (``test_with_the_watcher_...``).

The watcher is the only writer of what the chain did to our coins in production (see the
docstring of ``casino_app/payments/btc/models.py``: outputs seen in the mempool and blocks,
spends, reorgs). This module writes rows exactly as the watcher does, from what the node
says, and nothing more. It is NOT the watcher: no scanning, no mempool, no reorg
handling; a test calls it at the moments the watcher would have seen a block.

- :func:`fund_hot` pays the hot wallet (m/84'/coin'/0'/1/0) from the node's test wallet with
  :meth:`BcoinNode.fund` (mined in a block) and records the output: role ``hot``, key
  (1, 0), its script, amount, block height and hash, ``unspent``.
- :func:`record_change` records the change output of one of our mined batches (its address
  is in ``btc_change_addresses``): role ``change``, key (1, k).
- :func:`record_spends` marks our coins spent by a mined transaction (``spent``,
  ``spent_by``, ``spent_height``), as the watcher does when a block spends them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from casino_app.core.clock import utcnow
from casino_app.core.db import ledger_tx
from casino_app.payments.btc import keys
from casino_app.payments.btc.models import BtcChangeAddress, BtcUtxo
from tests.support.bitcoin import NETWORK, BcoinNode

CHAIN = "bitcoin"


@dataclass(frozen=True)
class RecordedCoin:
    txid: str
    vout: int
    amount: int
    height: int
    block_hash: str


def _block_of(node: BcoinNode, txid: str) -> tuple[int, str]:
    tx = node.rpc.raw_transaction(txid)
    assert tx.block_hash is not None, f"{txid} is not mined"
    return node.rpc.block_header(tx.block_hash).height, tx.block_hash


def record_output(node: BcoinNode, txid: str, vout: int, *, role: str, key_chain: int,
                  key_index: int) -> RecordedCoin:
    """Insert the mined output ``txid:vout`` of ours as the watcher will."""
    tx = node.rpc.raw_transaction(txid)
    out = tx.outputs[vout]
    height, block_hash = _block_of(node, txid)
    address = keys.script_address(out.script_pubkey, NETWORK)
    assert address is not None
    now = utcnow()
    with ledger_tx() as s:
        s.add(BtcUtxo(chain=CHAIN, txid=txid, vout=vout, address=address,
                      script_pubkey=out.script_pubkey.hex(), role=role, key_chain=key_chain,
                      key_index=key_index, player_id=None, amount=out.value,
                      block_height=height, block_hash=block_hash, state="unspent",
                      spent_by=None, spent_height=None, created_at=now, updated_at=now))
    return RecordedCoin(txid, vout, out.value, height, block_hash)


def fund_hot(node: BcoinNode, hot_address: str, sats: int) -> RecordedCoin:
    """Pay ``sats`` to the hot wallet on the node (one block) and record the coin."""
    f = node.fund(hot_address, sats)
    return record_output(node, f.txid, f.vout, role="hot", key_chain=keys.CHANGE, key_index=0)


def record_change(node: BcoinNode, txid: str) -> RecordedCoin | None:
    """The change output of our mined transaction ``txid`` (paid to one of the recorded
    change addresses), recorded with its key; None when it has no change."""
    tx = node.rpc.raw_transaction(txid)
    with ledger_tx(readonly=True) as s:
        ours = {bytes.fromhex(c.script_pubkey): c.key_index for c in s.execute(
            select(BtcChangeAddress).where(BtcChangeAddress.chain == CHAIN)).scalars()}
    for out in tx.outputs:
        if out.script_pubkey in ours:
            return record_output(node, txid, out.n, role="change", key_chain=keys.CHANGE,
                                 key_index=ours[out.script_pubkey])
    return None


def record_spends(node: BcoinNode, txid: str) -> int:
    """Our coins spent by the mined transaction ``txid``: ``spent`` by it at its height.
    The number of rows changed."""
    tx = node.rpc.raw_transaction(txid)
    height, _ = _block_of(node, txid)
    n = 0
    with ledger_tx() as s:
        for i in tx.inputs:
            row = s.execute(select(BtcUtxo).where(
                BtcUtxo.chain == CHAIN, BtcUtxo.txid == i.txid, BtcUtxo.vout == i.vout)
            ).scalar_one_or_none()
            if row is not None:
                row.state, row.spent_by, row.spent_height = "spent", txid, height
                row.updated_at = utcnow()
                n += 1
    return n
