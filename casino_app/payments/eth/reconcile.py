"""Reconciliation of the books against the chain (hourly job ``eth-reconcile`` and
``casino reconcile``).

At one pinned block (the lower of the node's head and the watcher's tip, so both look
at the same chain), per currency:

* **Balances.** What every address we control holds on chain (deposit addresses, the hot
  wallet, the cold Safe) against what the ledger says the house holds: minus the custody
  account, plus what is on chain but deliberately not in the ledger (deposits recorded
  and not credited: dust, over the pending cap; the sub-gwei rest of ETH deposits), minus
  credits of blocks after the pinned one, corrected for the transactions we sent
  (``hot_wallet_txs``: mined but not settled, settled but mined later, gas rests).
* **Deposits, chain -> ledger.** Every token ``Transfer`` to one of our deposit addresses
  and every successful top-level transaction with value to one of them that we did not
  send (not in ``withdrawal_batch_txs``: the sweeper's gas top-ups) has its recorded
  deposit (``missing_deposit``). Native transfers are found by reading the blocks
  (``native_transfers``: full blocks in JSON-RPC batches, receipts only for candidates).
* **Deposits, ledger -> chain.** Every credited deposit's transaction is on the chain, in
  the block the watcher recorded.

The deposit checks cover the blocks since the last run whose deposit checks were clean
(its ``deposits_checked_to`` in the summary, minus ``MAX_REORG_DEPTH`` so a reorg's blocks
are looked at again; from the watcher's first block the first time), at most
``DEPOSIT_CHECK_BLOCKS`` per run: a longer gap is caught up by the following runs. A run
with a deposit issue does not move that cursor, so a missing deposit is reported again
until it is resolved; a balance issue alone does not hold it back.

Each discrepancy is stored (``reconcile_issues``), audited, logged to the security log and
counted in ``casino_invariant_violations_total{check="reconcile.<kind>"}``; a clean run is
stored too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from web3 import Web3
from web3.exceptions import TransactionNotFound

from casino_app.core.clock import utcnow
from casino_app.core.db import ledger_tx
from casino_app.core.logging import get_logger
from casino_app.core.settings import get_settings
from casino_app.payments import ledger
from casino_app.payments.assets import Asset
from casino_app.payments.deposit_models import ChainBlock, ChainDeposit
from casino_app.payments.deposits import stored_tip
from casino_app.payments.eth import addresses
from casino_app.payments.eth.chain import refused_amount
from casino_app.payments.eth.watcher import CHAIN, MAX_REORG_DEPTH, TRANSFER_TOPIC, WEI_PER_GWEI
from casino_app.payments.reconcile import (
    Issue,
    ReconcileUnavailable,
    Result,
    checked_to,
    deposit_window,
    last_deposits_clean,
    store_run,
)

__all__ = ["Issue", "ReconcileUnavailable", "Result", "reconcile", "run_reconcile",
           "run_reconcile_result"]

log = get_logger("casino.eth.reconcile")

_BALANCE_OF_ABI = [{"name": "balanceOf", "type": "function", "stateMutability": "view",
                    "inputs": [{"name": "a", "type": "address"}],
                    "outputs": [{"name": "", "type": "uint256"}]}]
RPC_BATCH = 200          # calls per JSON-RPC batch
TOPIC_CHUNK = 500        # recipient addresses per eth_getLogs filter
BLOCK_BATCH = 50         # full blocks per JSON-RPC batch
DEPOSIT_CHECK_BLOCKS = 2_000   # blocks the deposit checks cover per run (at most)


def _batched(w3: Web3, calls: Sequence[Callable[[], Any]]) -> list[Any]:
    """Run the calls (each builds one web3 request inside a batch) RPC_BATCH at a time."""
    out: list[Any] = []
    for i in range(0, len(calls), RPC_BATCH):
        with w3.batch_requests() as batch:
            for c in calls[i:i + RPC_BATCH]:
                batch.add(c())
            out.extend(batch.execute())
    return out


def onchain_totals(w3: Web3, assets: Sequence[Asset], owned: Sequence[str], block: int
                   ) -> dict[str, int]:
    """What ``owned`` addresses hold at ``block``, per currency, in on-chain units (JSON-RPC
    batches of RPC_BATCH calls)."""
    return {code: sum(per.values())
            for code, per in onchain_holdings(w3, assets, owned, block).items()}


def onchain_holdings(w3: Web3, assets: Sequence[Asset], owned: Sequence[str], block: int
                     ) -> dict[str, dict[str, int]]:
    """What each of ``owned`` holds at ``block``, per currency, in on-chain units."""
    totals: dict[str, dict[str, int]] = {}
    for a in assets:
        if a.token is None:
            values = _batched(w3, [lambda addr=addr: w3.eth.get_balance(addr, block)
                                   for addr in owned])
        else:
            token = w3.eth.contract(address=a.token, abi=_BALANCE_OF_ABI)
            values = _batched(w3, [
                lambda addr=addr, to=a.token, token=token: w3.eth.call(
                    {"to": to, "data": token.encode_abi("balanceOf", [addr])}, block)
                for addr in owned])
            values = [int.from_bytes(bytes(v), "big") if v else 0 for v in values]
        totals[a.code] = {addr: int(v) for addr, v in zip(owned, values, strict=True)}
    return totals


def expected_totals(s: Session, assets: Sequence[Asset], block: int, chain: str = CHAIN
                    ) -> dict[str, int]:
    """What the ledger says the controlled addresses hold at ``block`` (on-chain units)."""
    out: dict[str, int] = {}
    for a in assets:
        expected = -ledger.house_total(s, a.code, "custody") * a.per_unit
        rows = s.execute(select(ChainDeposit.amount_raw, ChainDeposit.amount,
                                ChainDeposit.state, ChainDeposit.block_number).where(
            ChainDeposit.chain == chain, ChainDeposit.currency == a.code,
            ChainDeposit.state != "reversed")).all()
        for raw_text, amount, state, number in rows:
            raw, credited = int(raw_text), state in ("pending", "available")
            if number <= block:
                expected += raw - amount * a.per_unit if credited else raw
            elif credited:
                expected -= amount * a.per_unit
        out[a.code] = expected
    return out


def hot_wallet_txs(w3: Web3, s: Session, assets: Sequence[Asset], block: int,
                   chain: str = CHAIN) -> dict[str, int]:
    """What the ledger's view must be corrected by (on-chain units per currency) for the
    transactions we sent (payments/eth/batcher: withdrawal batches, approvals; other
    kinds move coins between our own addresses and cost only gas):

    * gas booked rounded up to gwei leaves its sub-gwei rest on chain;
    * a transaction settled in the ledger but mined after the pinned block has not yet
      paid (its value and gas) at that block;
    * a transaction mined at or before the pinned block and not settled yet has paid
      (a BatchPay batch: all but what its Refused logs name; once settled, ``total`` is
      what it paid)."""
    from casino_app.payments.withdrawal_models import WithdrawalBatch, WithdrawalBatchTx

    per_unit = {a.code: a.per_unit for a in assets}
    adj = dict.fromkeys(per_unit, 0)
    rows = s.execute(select(WithdrawalBatch).where(WithdrawalBatch.chain == chain)).scalars()
    pending: list[WithdrawalBatch] = []
    for b in rows:
        paid = b.total * per_unit.get(b.currency, 1) if b.kind == "pay" else 0
        if b.state in ("confirmed", "failed") and b.gas_fee_wei is not None:
            gas_wei = int(b.gas_fee_wei)
            charged = -(-gas_wei // WEI_PER_GWEI) * WEI_PER_GWEI
            if b.block_number is not None and b.block_number > block:
                adj["ETH"] += charged
                if b.state == "confirmed":
                    adj[b.currency] = adj.get(b.currency, 0) + paid
            else:
                adj["ETH"] += charged - gas_wei
        elif b.state in ("signed", "sent"):
            pending.append(b)
    if pending:
        by_batch: dict[int, list[str]] = {}
        for bid, h in s.execute(select(WithdrawalBatchTx.batch_id, WithdrawalBatchTx.tx_hash)
                                .where(WithdrawalBatchTx.batch_id.in_([b.id for b in pending]))):
            by_batch.setdefault(bid, []).append(h)
        receipts = _receipts(w3, [h for hs in by_batch.values() for h in hs])
        for b in pending:
            for h in by_batch.get(b.id, []):
                rc = receipts.get(h)
                if rc is None or int(rc["blockNumber"]) > block:
                    continue
                adj["ETH"] -= int(rc["gasUsed"]) * int(rc["effectiveGasPrice"])
                if rc["status"] == 1 and b.kind == "pay":  # less what BatchPay refused
                    adj[b.currency] = adj.get(b.currency, 0) - b.total * per_unit.get(
                        b.currency, 1) + refused_amount(rc, b.to_address)
    return adj


def _receipts(w3: Web3, hashes: Sequence[str]) -> dict[str, Any]:
    """Receipts of mined transactions (a transaction not mined is left out)."""
    out: dict[str, Any] = {}
    for h in hashes:
        try:
            out[h] = w3.eth.get_transaction_receipt(h)
        except TransactionNotFound:
            pass  # not mined (yet, or dropped): nothing paid at the pinned block
    return out


def _credits_not_on_chain(w3: Web3, s: Session, since: int, block: int, chain: str
                          ) -> list[Issue]:
    rows = s.execute(select(ChainDeposit).where(
        ChainDeposit.chain == chain, ChainDeposit.state.in_(("pending", "available")),
        ChainDeposit.block_number > since, ChainDeposit.block_number <= block)).scalars().all()
    txs = sorted({r.tx_hash for r in rows})
    receipts = dict(zip(txs, _batched(w3, [
        lambda tx=tx: w3.eth.get_transaction_receipt(tx) for tx in txs]), strict=True))
    issues = []
    for r in rows:
        rc = receipts.get(r.tx_hash)
        if rc is None or Web3.to_hex(rc["blockHash"]) != r.block_hash or rc["status"] != 1:
            issues.append(Issue(r.currency, "credit_not_on_chain",
                                f"deposit {r.id} ({r.tx_hash}, log {r.log_index}) is credited "
                                f"but not in block {r.block_number} of the chain",
                                str(r.amount), ""))
    return issues


@dataclass(frozen=True)
class Transfer:
    """Coins that arrived at one of our addresses, as the watcher keys a deposit."""
    tx_hash: str
    log_index: int     # -1: the value of a top-level transaction
    block: int
    to: str            # checksummed
    raw: int           # on-chain units (wei)


def native_transfers(w3: Web3, to: Iterable[str], start: int, end: int) -> list[Transfer]:
    """Successful top-level transactions with value to ``to`` in blocks ``start..end``:
    full blocks in JSON-RPC batches of BLOCK_BATCH, then the receipts of the candidates
    only (a reverted call moves no value). Coins that arrive through a contract's internal
    call are not top-level transactions and are not listed here."""
    wanted = {a.lower() for a in to}
    found: list[Transfer] = []
    numbers = list(range(start, end + 1))
    for i in range(0, len(numbers), BLOCK_BATCH):
        with w3.batch_requests() as batch:
            for n in numbers[i:i + BLOCK_BATCH]:
                batch.add(w3.eth.get_block(n, True))
            blocks = batch.execute()
        for n, block in zip(numbers[i:i + BLOCK_BATCH], blocks, strict=True):
            for tx in block["transactions"]:
                dest = tx.get("to")
                if dest and int(tx["value"]) > 0 and dest.lower() in wanted:
                    found.append(Transfer(Web3.to_hex(tx["hash"]), -1, n,
                                          Web3.to_checksum_address(dest), int(tx["value"])))
    statuses = _batched(w3, [lambda h=f.tx_hash: w3.eth.get_transaction_receipt(h)
                             for f in found])
    return [f for f, rc in zip(found, statuses, strict=True) if rc["status"] == 1]


def _native_not_recorded(w3: Web3, s: Session, asset: Asset, deposit_addrs: Sequence[str],
                         since: int, block: int, chain: str) -> list[Issue]:
    """Native deposits on chain without their recorded deposit (our own transactions to
    a deposit address, the sweeper's gas top-ups, are not deposits)."""
    from casino_app.payments.withdrawal_models import WithdrawalBatchTx

    if since >= block or not deposit_addrs:
        return []
    found = native_transfers(w3, deposit_addrs, since + 1, block)
    hashes = sorted({f.tx_hash for f in found})
    ours = {h for (h,) in s.execute(select(WithdrawalBatchTx.tx_hash).where(
        WithdrawalBatchTx.tx_hash.in_(hashes)))} if hashes else set()
    recorded = {(tx, i) for tx, i in s.execute(select(
        ChainDeposit.tx_hash, ChainDeposit.log_index).where(
        ChainDeposit.chain == chain, ChainDeposit.tx_hash.in_(hashes),
        ChainDeposit.state != "reversed"))} if hashes else set()
    return [Issue(asset.code, "missing_deposit",
                  f"transaction {f.tx_hash} in block {f.block} sends {f.raw} wei to our "
                  f"address {f.to} and has no recorded deposit", "", str(f.raw))
            for f in found if f.tx_hash not in ours and (f.tx_hash, f.log_index) not in recorded]


def _transfers_not_recorded(w3: Web3, s: Session, assets: Sequence[Asset],
                            deposit_addrs: Sequence[str], since: int, block: int, chain: str
                            ) -> list[Issue]:
    tokens = {a.token.lower(): a for a in assets if a.token}
    if not tokens or since >= block:
        return []
    recorded = {(tx, i) for tx, i in s.execute(select(
        ChainDeposit.tx_hash, ChainDeposit.log_index).where(
        ChainDeposit.chain == chain, ChainDeposit.block_number > since,
        ChainDeposit.state != "reversed"))}
    issues = []
    for i in range(0, len(deposit_addrs), TOPIC_CHUNK):
        padded = ["0x" + a[2:].lower().rjust(64, "0") for a in deposit_addrs[i:i + TOPIC_CHUNK]]
        for entry in w3.eth.get_logs({"fromBlock": since + 1, "toBlock": block,
                                      "address": [a.token for a in tokens.values()],
                                      "topics": [TRANSFER_TOPIC, None, padded]}):
            tx, idx = Web3.to_hex(entry["transactionHash"]), int(entry["logIndex"])
            if (tx, idx) not in recorded:
                asset = tokens[entry["address"].lower()]
                issues.append(Issue(asset.code, "missing_deposit",
                                    f"transfer {tx} log {idx} in block {entry['blockNumber']} "
                                    f"to one of our addresses has no recorded deposit",
                                    "", str(int(Web3.to_hex(entry["data"]), 16))))
    return issues


def reconcile(w3: Web3, assets: Sequence[Asset], extra: Iterable[str] = (),
              chain: str = CHAIN, deposit_blocks: int = DEPOSIT_CHECK_BLOCKS) -> Result:
    """One reconciliation run; stores, audits and counts what it finds."""
    started = utcnow()
    with ledger_tx(readonly=True) as s:
        tip = stored_tip(s, chain)
        first = s.execute(select(ChainBlock.number).where(ChainBlock.chain == chain)
                          .order_by(ChainBlock.number).limit(1)).scalar_one_or_none()
        checked = checked_to(last_deposits_clean(s, chain))
        deposit_addrs = sorted(addresses.all_addresses(s, chain))
    owned = sorted(set(deposit_addrs) | {Web3.to_checksum_address(a) for a in extra if a})
    if tip is None:
        raise ReconcileUnavailable("the watcher has not stored a block yet")
    block = min(w3.eth.block_number, tip.number)
    block_hash = Web3.to_hex(w3.eth.get_block(block)["hash"])
    # Deposit checks look again at the blocks a reorg could still change since the last
    # clean run (all of them the first time), at most DEPOSIT_CHECK_BLOCKS of them.
    since, to = deposit_window(first, checked, block, MAX_REORG_DEPTH, deposit_blocks)
    held = onchain_holdings(w3, assets, owned, block)
    onchain = {code: sum(per.values()) for code, per in held.items()}
    with ledger_tx(readonly=True) as s:
        expected = expected_totals(s, assets, block, chain)
        for code, extra_units in hot_wallet_txs(w3, s, assets, block, chain).items():
            expected[code] = expected.get(code, 0) + extra_units
        issues = [Issue(code, "balance",
                        f"{code}: addresses we control hold {onchain[code]}, the ledger "
                        f"expects {expected[code]} (on-chain units) at block {block}",
                        str(expected[code]), str(onchain[code]))
                  for code in expected if expected[code] != onchain[code]]
        deposit_issues = _credits_not_on_chain(w3, s, since, to, chain)
        deposit_issues += _native_not_recorded(
            w3, s, next(a for a in assets if a.token is None), deposit_addrs, since,
            to, chain)
        deposit_issues += _transfers_not_recorded(w3, s, assets, deposit_addrs, since,
                                                  to, chain)
        issues += deposit_issues
    totals = {c: {"onchain": str(onchain[c]), "expected": str(expected[c])} for c in expected}
    summary = {"addresses": len(owned), "totals": totals, "deposits_checked_to": to,
               "deposits_clean": not deposit_issues,
               "per_unit": {a.code: a.per_unit for a in assets},
               # what each address held (proof of reserves: payments/reserves.py)
               "holdings": {code: {addr: str(v) for addr, v in per.items() if v}
                            for code, per in held.items()}}
    run_id = store_run(chain, block, block_hash, issues, summary, started,
                       metric_prefix="reconcile", log=log, event="eth_reconcile")
    return Result(run_id, block, not issues, issues, totals, summary)


def controlled_extra() -> list[str]:
    """The hot wallet and the cold Safe (from the settings and the hot wallet's xpub)."""
    from casino_app.payments.eth import keys

    out = [keys.hot_wallet_address()]
    safe = get_settings().eth_safe_address
    if safe:
        out.append(safe)
    return out


def run_reconcile_result() -> Result:
    """``casino reconcile``: one run with the settings."""
    from casino_app.payments.eth.watcher import chain_assets, parse_tokens

    st = get_settings()
    w3 = Web3(Web3.HTTPProvider(st.eth_rpc_url, request_kwargs={"timeout": 30}))
    return reconcile(w3, chain_assets(w3, parse_tokens(st.eth_tokens)), controlled_extra())


def run_reconcile() -> dict[str, int]:
    """The ``eth-reconcile`` job (a run before the watcher stored a block is skipped)."""
    try:
        res = run_reconcile_result()
    except ReconcileUnavailable:
        return {"skipped": 1}
    return {"run_id": res.run_id, "block": res.block, "issues": len(res.issues)}
