"""Reconciliation of the books against the Bitcoin chain (the hourly job ``btc-reconcile``,
every ``CASINO_BTC_RECONCILE_SECONDS``, and ``casino reconcile``). It reads; it never moves
money. Runs are stored, counted and audited like Ethereum's (payments/reconcile.py); staff
read them on ``/admin/reconcile``.

Everything is judged at one pinned block P: the lower of the node's tip and the watcher's
(``chain_blocks``), so the node and the books look at the same chain.

**(a) What our addresses hold against the books.** The chain's side is read from the node,
never from ``btc_utxos`` (our own record of our coins, which is what is being checked):
the confirmed unspent outputs of every address we control (the players' deposit
addresses, the hot wallet /1/0, its change addresses in the watcher's window and those the
senders recorded, the cold wallet's addresses in its window) through
``BitcoinRPC.address_utxos`` (bcoin: its address index; Core: ``scantxoutset``; see
payments/btc/rpc.py). That answer is at the node's tip T >= P: coins mined above P are left
out, and coins of ours that blocks P+1..T spent are put back (their blocks read, the spent
outputs' values and scripts read from their funding transactions). The books' side: minus
the custody account, plus what is on chain and deliberately not in the ledger (deposits
recorded and not credited: dust, over the pending cap, waiting for confirmations; mined at
or below P), minus credits of deposits mined above P, corrected for our own transactions
(``withdrawal_batches`` of any kind, every version in ``withdrawal_batch_txs``): one mined
at or below P but not settled yet has already taken its inputs minus its outputs to our
own addresses (its payments and its miner fee) out of our addresses; one settled whose
mined version is above P, or no longer in the chain, has not. Unconfirmed transactions
change neither side. A difference is a ``balance`` issue (coins moved outside the ledger:
a key used outside the senders, a credit without coins, a coinbase to our address...).

**(b) Credited deposits are on chain.** Every credited deposit (pending, available) of the
blocks since the last run whose deposit checks were clean (minus MAX_REORG_DEPTH, at most
``DEPOSIT_CHECK_BLOCKS`` blocks a run; from the watcher's first block the first time): the
watcher's block hash is still the chain's at that height, and the transaction in that
block pays the deposit address exactly that amount at that output
(``credit_not_on_chain``; such an issue keeps the window where it was, so it is reported
again until resolved). Coins mined at or below P at a deposit address that have no
recorded deposit and that no transaction of ours paid are ``missing_deposit``.

**(c) Our transactions.** Mined but not settled yet: listed in the run's summary
(``in_flight``), and an ``unsettled_tx`` issue once mined ``confirmations +
UNSETTLED_GRACE`` blocks deep (the batcher should have settled it). Settled in the last
SETTLED_WATCH blocks but no longer in the chain (a reorg deeper than the confirmations):
``settled_not_in_chain``. Coins the watcher saw spent by a transaction that no sender
recorded (within the deposit window) are named as ``unrecorded_spend``: the why of a
balance issue.

Issues are counted as ``casino_invariant_violations_total{check="reconcile.bitcoin.<kind>"}``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from casino_app.core.clock import utcnow
from casino_app.core.db import ledger_tx
from casino_app.core.logging import get_logger
from casino_app.core.settings import get_settings
from casino_app.payments import ledger
from casino_app.payments.btc import cold as cold_wallets
from casino_app.payments.btc import keys
from casino_app.payments.btc import network as networks
from casino_app.payments.btc.addresses import CHAIN, Owner, Wallet
from casino_app.payments.btc.models import BtcChangeAddress, BtcUtxo
from casino_app.payments.btc.network import Network
from casino_app.payments.btc.rpc import BitcoinNodeError, BitcoinRPC, Transaction, TxOutput
from casino_app.payments.btc.watcher import MAX_REORG_DEPTH
from casino_app.payments.deposit_models import ChainBlock, ChainDeposit
from casino_app.payments.deposits import stored_tip
from casino_app.payments.reconcile import (
    Issue,
    ReconcileUnavailable,
    Result,
    checked_to,
    deposit_window,
    last_deposits_clean,
    store_run,
)
from casino_app.payments.withdrawal_models import WithdrawalBatch, WithdrawalBatchTx

log = get_logger("casino.btc.reconcile")

CURRENCY = "BTC"
DEPOSIT_CHECK_BLOCKS = 2_000  # blocks the deposit checks cover per run (at most)
MAX_LAG = 144                 # the node's tip above the pinned block by more: not now
UNSETTLED_GRACE = 6           # blocks past the confirmations before an unsettled tx is an issue
SETTLED_WATCH = 144           # settled transactions checked against the chain this long
ATTEMPTS = 3                  # reads again when the chain moves under the snapshot
METRIC_PREFIX = "reconcile.bitcoin"

__all__ = ["Issue", "ReconcileUnavailable", "Result", "reconcile", "run_reconcile",
           "run_reconcile_result"]


class _Moved(Exception):
    """The node's chain changed between two reads."""


@dataclass
class _Ours:
    """One of our recorded transactions as the node has it now."""

    batch_id: int
    kind: str
    state: str
    txid: str
    tx: Transaction | None        # None: the node has no such transaction
    height: int | None = None     # its block's height, on the main chain only
    left: int | None = None       # inputs minus outputs to our addresses (sats)


@dataclass
class _Books:
    custody: int = 0
    uncredited: int = 0           # recorded, not credited, mined at or below the pin
    credited_later: int = 0       # credited, mined above the pin
    in_flight: int = 0            # our mined, unsettled transactions (left our addresses)
    settled_later: int = 0        # settled, but mined above the pin or not in the chain
    notes: list[str] = field(default_factory=list)

    @property
    def expected(self) -> int:
        return (self.custody + self.uncredited - self.credited_later - self.in_flight
                + self.settled_later)


# --- what we control ----------------------------------------------------------------------

def controlled(s: Session, wallet: Wallet, chain: str = CHAIN, deposits: bool = True
               ) -> dict[bytes, Owner]:
    """Every output script we control, with whose it is: the watcher's wallet (deposit
    addresses unless ``deposits`` is False, the hot wallet, the change and cold windows)
    and every change address a sender recorded (even one beyond the watcher's window)."""
    wallet.refresh(s, deposits)
    out = dict(wallet.scripts)
    for row in s.execute(select(BtcChangeAddress).where(BtcChangeAddress.chain == chain)
                         ).scalars():
        script = bytes.fromhex(row.script_pubkey)
        out.setdefault(script, Owner(row.address, "change", keys.CHANGE, row.key_index))
    return out


def holdings(rpc: BitcoinRPC, scripts: dict[bytes, Owner], pinned: int | None = None,
             attempts: int = ATTEMPTS) -> tuple[int, int, dict[str, int], list]:
    """What ``scripts`` hold on chain at block ``pinned`` (the node's tip when None), from
    the node: (pinned, the node's tip, satoshis per role, the coins at or below ``pinned``
    that are still unspent at the tip). Coins of ours spent above ``pinned`` are put back
    from the blocks that spent them."""
    addresses = {script: owner.address for script, owner in scripts.items()}
    for _ in range(attempts):
        snap = rpc.address_utxos(addresses)
        pin = snap.height if pinned is None else min(pinned, snap.height)
        if snap.height - pin > MAX_LAG:
            raise ReconcileUnavailable(
                f"the watcher is {snap.height - pin} blocks behind the node (block {pin} of "
                f"{snap.height}): reconcile once it has caught up")
        by_role: dict[str, int] = defaultdict(int)
        coins = [c for c in snap.coins if c.height <= pin]
        for c in coins:
            by_role[scripts[c.script_pubkey].role] += c.value
        try:
            for owner, value in _spent_above(rpc, scripts, pin, snap.height, snap.best_hash):
                by_role[owner.role] += value
        except _Moved:
            continue
        return pin, snap.height, dict(by_role), coins
    raise ReconcileUnavailable("the node's chain kept moving while it was read: try again")


def _spent_above(rpc: BitcoinRPC, scripts: dict[bytes, Owner], pin: int, tip: int,
                 tip_hash: str) -> list[tuple[Owner, int]]:
    """Our outputs that existed at ``pin`` and that blocks pin+1..tip spent."""
    if tip <= pin:
        return []
    hashes = rpc.block_hashes(range(pin + 1, tip + 1))
    if None in hashes or hashes[-1] != tip_hash:
        raise _Moved()
    blocks = rpc.blocks([h for h in hashes if h is not None])
    parent = blocks[0].header.previous_hash
    for b in blocks:  # one branch, ending at the snapshot's tip
        if b.header.previous_hash != parent or b.header.confirmations < 0:
            raise _Moved()
        parent = b.hash
    created = {t.txid for b in blocks for t in b.transactions}
    spent = {(i.txid, i.vout) for b in blocks for t in b.transactions for i in t.inputs
             if i.txid is not None and i.vout is not None and i.txid not in created}
    return [(scripts[o.script_pubkey], o.value) for o in rpc.prevouts(spent).values()
            if o.script_pubkey in scripts]


# --- the books ----------------------------------------------------------------------------

def _deposit_books(s: Session, books: _Books, pin: int, chain: str) -> None:
    rows = s.execute(select(ChainDeposit.amount_raw, ChainDeposit.amount, ChainDeposit.state,
                            ChainDeposit.block_number).where(
        ChainDeposit.chain == chain, ChainDeposit.currency == CURRENCY,
        ChainDeposit.state.in_(("seen", "dust", "pending", "available")))).all()
    for raw, amount, state, number in rows:
        if state in ("seen", "dust") and number <= pin:
            books.uncredited += int(raw)
        elif state in ("pending", "available") and number > pin:
            books.credited_later += int(amount)


def _our_transactions(rpc: BitcoinRPC, s: Session, scripts: dict[bytes, Owner], pin: int,
                      chain: str) -> list[_Ours]:
    """Our open transactions (every version) and those settled in the last SETTLED_WATCH
    blocks, as the node has them, with what each took out of our addresses."""
    batches = s.execute(select(WithdrawalBatch).where(
        WithdrawalBatch.chain == chain,
        or_(WithdrawalBatch.state.in_(("signed", "sent")),
            and_(WithdrawalBatch.state == "confirmed",
                 WithdrawalBatch.block_number > pin - SETTLED_WATCH)))
        .order_by(WithdrawalBatch.id)).scalars().all()
    if not batches:
        return []
    versions: dict[int, list[tuple[str, str | None]]] = defaultdict(list)
    for bid, txid, raw in s.execute(select(
            WithdrawalBatchTx.batch_id, WithdrawalBatchTx.tx_hash, WithdrawalBatchTx.raw_tx)
            .where(WithdrawalBatchTx.batch_id.in_([b.id for b in batches]))
            .order_by(WithdrawalBatchTx.version)):
        versions[bid].append((txid, raw))
    out: list[_Ours] = []
    raws: dict[str, str | None] = {}
    for b in batches:
        if b.state == "confirmed":
            raws[b.tx_hash] = dict(versions[b.id]).get(b.tx_hash)
            out.append(_Ours(b.id, b.kind, b.state, b.tx_hash, None))
        else:
            out.extend(_Ours(b.id, b.kind, b.state, txid, None) for txid, _ in versions[b.id])
    txids = sorted({o.txid for o in out})
    node = dict(zip(txids, rpc.transactions(txids), strict=True))
    heights: dict[str, int | None] = {}
    for h in sorted({t.block_hash for t in node.values() if t and t.block_hash}):
        try:
            header = rpc.block_header(h)
            heights[h] = header.height if header.confirmations >= 0 else None
        except BitcoinNodeError:
            heights[h] = None
    for o in out:
        o.tx = node.get(o.txid)
        if o.tx is not None and o.tx.block_hash:
            o.height = heights.get(o.tx.block_hash)
    # what each took out of our addresses: its inputs (read from the node) minus its
    # outputs to our scripts; a settled one the node no longer has is read from its bytes
    shapes: dict[str, tuple[list[tuple[str, int]], list[TxOutput]]] = {}
    for o in out:
        if o.tx is not None:
            shapes[o.txid] = ([(i.txid, i.vout) for i in o.tx.inputs
                               if i.txid is not None and i.vout is not None],
                              list(o.tx.outputs))
        elif raws.get(o.txid):
            shapes[o.txid] = _parse(raws[o.txid] or "")
    # (a settled transaction in the chain at or below the pin needs no correction)
    wanted = [o for o in out if o.txid in shapes and (
        o.height is not None if o.state != "confirmed" else o.height is None or o.height > pin)]
    prev = rpc.prevouts({op for o in wanted for op in shapes[o.txid][0]}) if wanted else {}
    for o in wanted:
        ins, outs = shapes[o.txid]
        o.left = sum(prev[op].value for op in ins) - sum(
            x.value for x in outs if x.script_pubkey in scripts)
    return out


def _parse(raw_hex: str) -> tuple[list[tuple[str, int]], list[TxOutput]]:
    from embit.transaction import Transaction as RawTx

    tx = RawTx.parse(bytes.fromhex(raw_hex))
    return ([(i.txid.hex(), i.vout) for i in tx.vin],
            [TxOutput(n, o.value, o.script_pubkey.data) for n, o in enumerate(tx.vout)])


# --- checks ---------------------------------------------------------------------------------

def _transactions_issues(ours: list[_Ours], books: _Books, pin: int, confirmations: int
                         ) -> tuple[list[Issue], list[dict]]:
    issues: list[Issue] = []
    in_flight: list[dict] = []
    open_batches: dict[int, list[_Ours]] = defaultdict(list)
    for o in ours:
        if o.state != "confirmed":
            open_batches[o.batch_id].append(o)
            continue
        if o.height is not None and o.height <= pin:
            continue  # settled and in the chain at the pin: the ledger agrees
        books.settled_later += o.left or 0
        if o.height is None:
            where = "in the node's mempool again" if o.tx is not None else "unknown to the node"
            issues.append(Issue(
                CURRENCY, "settled_not_in_chain",
                f"{o.kind} batch {o.batch_id} was settled with {o.txid}, which is no longer in "
                f"the chain ({where}): a reorg deeper than the confirmations; the ledger shows "
                f"it paid ({o.left if o.left is not None else '?'} sat left our addresses)",
                str(o.left or ""), ""))
    for batch_id, versions in open_batches.items():
        mined = [o for o in versions if o.height is not None]
        if not mined:
            continue
        m = mined[0]
        in_flight.append({"batch": batch_id, "kind": m.kind, "txid": m.txid,
                          "height": m.height, "left": m.left})
        if m.height is not None and m.height <= pin:
            books.in_flight += m.left or 0
            depth = pin - m.height + 1
            if depth >= confirmations + UNSETTLED_GRACE:
                issues.append(Issue(
                    CURRENCY, "unsettled_tx",
                    f"{m.kind} batch {batch_id}: {m.txid} was mined in block {m.height} "
                    f"({depth} confirmations) and is not settled in the ledger: is the "
                    f"btc-batch job running?", "", str(m.left or "")))
    return issues, in_flight


def _credits_not_on_chain(rpc: BitcoinRPC, s: Session, scripts: dict[bytes, Owner],
                          since: int, to: int, chain: str, network: Network) -> list[Issue]:
    rows = s.execute(select(ChainDeposit).where(
        ChainDeposit.chain == chain, ChainDeposit.state.in_(("pending", "available")),
        ChainDeposit.block_number > since, ChainDeposit.block_number <= to)
        .order_by(ChainDeposit.id)).scalars().all()
    if not rows:
        return []
    heights = sorted({int(r.block_number) for r in rows if r.block_number is not None})
    at = dict(zip(heights, rpc.block_hashes(heights), strict=True))
    txids = sorted({r.tx_hash for r in rows})
    txs = dict(zip(txids, rpc.transactions(txids), strict=True))
    by_address = {o.address: script for script, o in scripts.items()}
    issues = []
    for r in rows:
        tx = txs.get(r.tx_hash)
        outs = {o.n: o for o in tx.outputs} if tx is not None else {}
        out = outs.get(r.log_index)
        script = by_address.get(r.address)
        if script is None:
            try:
                script = keys.validate_address(r.address, network).script_pubkey
            except ValueError:
                script = b""
        why = ""
        if at.get(r.block_number) != r.block_hash:
            why = (f"block {r.block_number} ({r.block_hash}) is no longer the chain's block "
                   "at that height")
        elif tx is None or tx.block_hash != r.block_hash:
            why = f"its transaction is not in block {r.block_number}"
        elif out is None or out.script_pubkey != script or out.value != int(r.amount_raw):
            why = (f"output {r.log_index} of its transaction does not pay {r.amount_raw} sat "
                   f"to {r.address}")
        if why:
            issues.append(Issue(
                r.currency, "credit_not_on_chain",
                f"deposit {r.id} ({r.tx_hash}:{r.log_index}, {r.amount} sat to {r.address}) "
                f"is credited but {why}", str(r.amount), ""))
    return issues


def _missing_deposits(s: Session, coins: Sequence, scripts: dict[bytes, Owner],
                      chain: str) -> list[Issue]:
    """Coins at deposit addresses that are no recorded deposit and that no transaction of
    ours paid (the watcher records those as coins, never as deposits)."""
    at_deposits = [c for c in coins if scripts[c.script_pubkey].role == "deposit"]
    if not at_deposits:
        return []
    txids = sorted({c.txid for c in at_deposits})
    recorded: set[tuple[str, int]] = set()
    ours: set[str] = set()
    for i in range(0, len(txids), 500):
        part = txids[i:i + 500]
        recorded.update(s.execute(select(ChainDeposit.tx_hash, ChainDeposit.log_index).where(
            ChainDeposit.chain == chain, ChainDeposit.tx_hash.in_(part),
            ChainDeposit.state.in_(("seen", "dust", "pending", "available")))).tuples())
        ours.update(s.execute(select(WithdrawalBatchTx.tx_hash).where(
            WithdrawalBatchTx.tx_hash.in_(part))).scalars())
    issues = []
    for c in at_deposits:
        if c.outpoint in recorded or c.txid in ours:
            continue
        owner = scripts[c.script_pubkey]
        issues.append(Issue(
            CURRENCY, "missing_deposit",
            f"{c.value} sat at deposit address {owner.address} (player {owner.player_id}) in "
            f"{c.txid}:{c.vout}, block {c.height}{' (a coinbase)' if c.coinbase else ''}, "
            "has no recorded deposit", "", str(c.value)))
    return issues


def _unrecorded_spends(s: Session, since: int, to: int, chain: str) -> list[Issue]:
    """Our coins the watcher saw spent (in the window) by a transaction no sender
    recorded: coins moved outside the ledger."""
    rows = s.execute(select(BtcUtxo).where(
        BtcUtxo.chain == chain, BtcUtxo.state == "spent", BtcUtxo.spent_height > since,
        BtcUtxo.spent_height <= to, BtcUtxo.spent_by.not_in(
            select(WithdrawalBatchTx.tx_hash))).order_by(BtcUtxo.id)).scalars().all()
    return [Issue(CURRENCY, "unrecorded_spend",
                  f"our {r.role} coin {r.txid}:{r.vout} ({r.amount} sat at {r.address}"
                  f"{', player ' + r.player_id if r.player_id else ''}) was spent in block "
                  f"{r.spent_height} by {r.spent_by}, a transaction no sender recorded",
                  str(r.amount), "") for r in rows]


# --- the run ---------------------------------------------------------------------------------

def reconcile(rpc: BitcoinRPC, *, network: Network | None = None, xpub: str | None = None,
              cold: cold_wallets.ColdWallet | None | bool = True, chain: str = CHAIN,
              confirmations: int | None = None,
              deposit_blocks: int = DEPOSIT_CHECK_BLOCKS) -> Result:
    """One reconciliation run; stores, audits and counts what it finds.
    ReconcileUnavailable (nothing stored) before the watcher stored a block or while it is
    more than MAX_LAG blocks behind the node."""
    st = get_settings()
    started = utcnow()
    net = network or networks.from_settings(st)
    confs = confirmations or st.btc_confirmations or net.confirmations
    if cold is True:
        cold = cold_wallets.wallet_from_settings(st)
    wallet = Wallet(xpub or keys.account_xpub(), net, cold or None)
    with ledger_tx(readonly=True) as s:
        tip = stored_tip(s, chain)
        first = s.execute(select(ChainBlock.number).where(ChainBlock.chain == chain)
                          .order_by(ChainBlock.number).limit(1)).scalar_one_or_none()
        checked = checked_to(last_deposits_clean(s, chain))
        scripts = controlled(s, wallet, chain)
    if tip is None:
        raise ReconcileUnavailable("the watcher has not stored a block yet")
    pin, node_tip, by_role, coins = holdings(rpc, scripts, tip.number)
    pin_hash = rpc.block_hash(pin)
    onchain = sum(by_role.values())
    since, to = deposit_window(first, checked, pin, MAX_REORG_DEPTH, deposit_blocks)
    books = _Books()
    with ledger_tx(readonly=True) as s:
        books.custody = -ledger.house_total(s, CURRENCY, "custody")
        _deposit_books(s, books, pin, chain)
        ours = _our_transactions(rpc, s, scripts, pin, chain)
        tx_issues, in_flight = _transactions_issues(ours, books, pin, confs)
        deposit_issues = _credits_not_on_chain(rpc, s, scripts, since, to, chain, net)
        other = _missing_deposits(s, coins, scripts, chain) + \
            _unrecorded_spends(s, since, to, chain)
    expected = books.expected
    issues: list[Issue] = []
    if onchain != expected:
        issues.append(Issue(
            CURRENCY, "balance",
            f"BTC: addresses we control hold {onchain} sat at block {pin}; the books expect "
            f"{expected} sat (custody {books.custody}, + not credited {books.uncredited}, "
            f"- credited above the block {books.credited_later}, - our unsettled "
            f"transactions {books.in_flight}, + settled but not at the block "
            f"{books.settled_later})", str(expected), str(onchain)))
    issues += deposit_issues + other + tx_issues
    totals = {CURRENCY: {"onchain": str(onchain), "expected": str(expected)}}
    summary = {"addresses": len(scripts), "totals": totals, "per_unit": {CURRENCY: 1},
               "node_tip": node_tip, "deposits_checked_to": to,
               "deposits_clean": not deposit_issues,
               "onchain_by_role": {r: by_role.get(r, 0)
                                   for r in ("deposit", "hot", "change", "cold")},
               "books": {"custody": books.custody, "not_credited": books.uncredited,
                         "credited_above": books.credited_later,
                         "unsettled": books.in_flight, "settled_not_at_block":
                         books.settled_later},
               "in_flight": in_flight,
               "holdings": {CURRENCY: _by_address(coins, scripts, onchain)}}
    run_id = store_run(chain, pin, pin_hash, issues, summary, started,
                       metric_prefix=METRIC_PREFIX, log=log, event="btc_reconcile")
    return Result(run_id, pin, not issues, issues, totals, summary)


def _by_address(coins: Sequence, scripts: dict[bytes, Owner], onchain: int) -> dict[str, str]:
    """Satoshis per address at the pinned block (proof of reserves): the coins still
    unspent at the tip, and what ours spent above the block held, as one line."""
    out: dict[str, int] = defaultdict(int)
    for c in coins:
        out[scripts[c.script_pubkey].address] += c.value
    rest = onchain - sum(out.values())
    if rest:
        out["(coins spent after the block)"] += rest
    return {a: str(v) for a, v in sorted(out.items()) if v}


def run_reconcile_result() -> Result:
    """``casino reconcile`` and staff's "Reconcile now": one run with the settings."""
    st = get_settings()
    rpc = BitcoinRPC.from_settings(st)
    try:
        rpc.check_network(networks.from_settings(st))
        return reconcile(rpc)
    finally:
        rpc.close()


def run_reconcile() -> dict[str, int]:
    """The ``btc-reconcile`` job (skipped while there is nothing to reconcile)."""
    try:
        res = run_reconcile_result()
    except ReconcileUnavailable:
        return {"skipped": 1}
    return {"run_id": res.run_id, "block": res.block, "issues": len(res.issues)}
