"""The Bitcoin watcher: follows the node's blocks and mempool, keeps the UTXO set of our
wallets (``btc_utxos``) and records the players' deposits once, credits them and takes
credits back when their block leaves the chain. What happens to a deposit once found
(record once, credit within the pending cap, confirm, dust, reversal with debt and hold)
is the chain-neutral ``DepositBook`` (payments/deposits.py); this module reads the node
(payments/btc/rpc.py) and matches outputs against our scripts (payments/btc/addresses.py).

One pass (``Watcher.poll``), run by the ``btc-watch`` job under a lease:

1. Reorg check: the stored tip's hash (``chain_blocks``, chain ``bitcoin``) is compared
   with the node's block at that height. A node without a block there is behind (waited
   for, never taken for a reorg). A different hash walks back (one JSON-RPC batch of
   ``getblockhash`` over the last MAX_REORG_DEPTH stored blocks) to the highest block both
   still share and, in ONE ledger transaction, drops the blocks above it, reverses their
   deposits (DepositBook.rewind) and puts their UTXO rows back: outputs unconfirmed, spends
   ``reserved`` (a sender's recorded transaction, which it rebroadcasts) or ``unspent``
   (payments/btc/utxos.rewind).
2. Scan: from the block after the cursor up to ``CASINO_BTC_BLOCKS_PER_POLL`` blocks, CHUNK
   at a time: one batch of ``getblockhash``, one of ``getblock`` (full transactions), and
   ONE ledger transaction per chunk for its blocks, UTXO rows and deposits (a crash
   resumes at the cursor; nothing is applied twice: UNIQUE (chain, txid, vout) in both
   tables, credit entries keyed by the deposit and its credit count). A block whose parent
   is not the stored tip (the chain moved between calls) stops the scan; the next pass
   rewinds.
   For each transaction: its outputs paying one of our scripts become UTXO rows (role
   deposit with the player, hot, change, cold); its inputs spending one of our recorded
   outputs mark them ``spent``. A transaction that spends one of our outputs is OURS
   (only we hold those keys: the signer for deposit, hot and change addresses, the
   cosigners for cold ones): its outputs are never deposits. Every other output to a
   deposit address is a deposit: ``log_index`` = the output index, ``sender`` = the
   address paid by the output the first input spends ("" when the node cannot say).
   Coinbase outputs to our addresses are logged and left out (immature for 100 blocks;
   a miner paying a deposit address is for staff).
3. Confirmations (``DepositBook.confirm``): credited as pending at 1 confirmation
   (playable, not withdrawable) while the player's pending credits stay within
   ``CASINO_BTC_PENDING_CAP`` (empty: no cap), available at ``CASINO_BTC_CONFIRMATIONS``
   (the network's default); below ``CASINO_BTC_DUST`` recorded, never credited.
4. Mempool: ``getrawmempool`` between two ``getbestblockhash``; the transactions not
   looked at yet (at most ``mempool_fetch`` a pass, in batches; the rest next pass) are
   read: their outputs to our scripts become unconfirmed UTXO rows, and an output to a
   deposit address that is not ours is an ``incoming`` deposit (shown, never credited).
   Only when the watcher's tip is the node's best block before and after that read (so a
   transaction missing from the mempool was not mined either), the unconfirmed rows whose
   transaction is gone become ``dropped`` (double-spent, replaced) and disappear from the
   wallet; seen again, they come back.

A deposit address paid by a transaction of ours (nothing we send does that: withdrawals
refuse our addresses, sweeps pay the hot wallet) is recorded as a UTXO, never credited,
and logged (``btc_own_tx_pays_deposit_address``). A player can never move coins from
one deposit address to another: the keys are ours.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from casino_app.core.clock import utcnow
from casino_app.core.db import ledger_tx
from casino_app.core.logging import get_logger
from casino_app.core.settings import Settings, get_settings
from casino_app.payments.assets import Asset
from casino_app.payments.btc import adapter, keys, utxos
from casino_app.payments.btc import cold as cold_wallets
from casino_app.payments.btc import network as networks
from casino_app.payments.btc.addresses import CHAIN, Owner, Wallet
from casino_app.payments.btc.network import Network
from casino_app.payments.btc.rpc import BitcoinRPC, Block, RPCError, Transaction
from casino_app.payments.currencies import MAX_AMOUNT
from casino_app.payments.deposit_models import ChainBlock
from casino_app.payments.deposits import (
    DepositBook,
    DepositChanges,
    Found,
    next_range,
    stored_tip,
)

log = get_logger("casino.btc.watcher")

BTC = Asset("BTC", None, 1)   # the ledger counts satoshis, as the chain does
CHUNK = 20                    # blocks per JSON-RPC batch and per ledger transaction
# A reorg deeper than this is not walked back automatically: the watcher stops and alerts.
MAX_REORG_DEPTH = 144         # a day of blocks
MEMPOOL_FETCH = 500           # mempool transactions read per pass (the rest next pass)


class WatcherStopped(Exception):
    """The chain does not match the stored blocks beyond MAX_REORG_DEPTH: nothing was
    changed, staff must look."""


@dataclass
class PollResult(DepositChanges):
    """One pass: the node's head, the stored tip, the blocks stored, the UTXO rows written
    and spends marked, the mempool transactions read, the deposits seen incoming and
    dropped, and (from :class:`DepositChanges`) the deposits found, credited, made
    available, reversed and the players whose deposits changed."""

    head: int = 0
    tip: int | None = None
    blocks: int = 0
    outputs: int = 0
    spends: int = 0
    mempool: int = 0
    incoming: int = 0
    dropped: int = 0


@dataclass(frozen=True)
class _Out:
    vout: int
    value: int
    script: bytes
    owner: Owner


@dataclass
class _Tx:
    """A transaction that touches our wallet: outputs to our scripts, spends of ours."""

    txid: str
    outs: list[_Out]
    spends: list[utxos.Outpoint]
    first_input: utxos.Outpoint | None
    sender: str = ""

    @property
    def ours(self) -> bool:
        return bool(self.spends)


@dataclass
class _Outpoints:
    """Our outputs that no block has spent, as committed (``base``), plus what the chunk
    being read adds and spends (applied to ``base`` only after its commit)."""

    base: set[utxos.Outpoint]
    added: set[utxos.Outpoint] = field(default_factory=set)
    removed: set[utxos.Outpoint] = field(default_factory=set)

    def __contains__(self, op: utxos.Outpoint) -> bool:
        return op in self.added or (op in self.base and op not in self.removed)

    def commit(self) -> None:
        self.base -= self.removed
        self.base |= self.added - self.removed
        self.added, self.removed = set(), set()

    def rollback(self) -> None:
        self.added, self.removed = set(), set()


def pending_cap_setting(st: Settings | None = None) -> int:
    """``CASINO_BTC_PENDING_CAP`` in satoshis; no cap (the largest amount) when empty."""
    st = st or get_settings()
    return adapter._sats("CASINO_BTC_PENDING_CAP", st.btc_pending_cap) or MAX_AMOUNT


class Watcher:
    """Follows one Bitcoin node for the wallet of the account key ``xpub``."""

    def __init__(self, rpc: BitcoinRPC, *, network: Network | None = None,
                 xpub: str | None = None, cold: cold_wallets.ColdWallet | None | bool = True,
                 confirmations: int | None = None, pending_cap: int | None = None,
                 dust: int | None = None, batch: int | None = None,
                 start_height: int | None = None, mempool_fetch: int = MEMPOOL_FETCH,
                 chunk: int = CHUNK, chain: str = CHAIN) -> None:
        st = get_settings()
        self.rpc, self.chain = rpc, chain
        self.network = network or networks.from_settings(st)
        self.confirmations = confirmations or self.network.confirmations
        cap = pending_cap if pending_cap is not None else pending_cap_setting(st)
        self.dust = dust if dust is not None else st.btc_dust
        self.batch = batch or st.btc_blocks_per_poll
        self.start_height, self.mempool_fetch, self.chunk = start_height, mempool_fetch, chunk
        if cold is True:
            cold = cold_wallets.wallet_from_settings(st)
        self.wallet = Wallet(xpub or keys.account_xpub(), self.network, cold or None)
        self.book = DepositBook(chain, self.confirmations, {"BTC": cap}, {"BTC": self.dust},
                                log_prefix="btc", logger=log)
        self._live: _Outpoints | None = None
        self._seen_mempool: set[str] = set()
        self._network_checked = False

    # --- the pass ---

    def poll(self) -> PollResult:
        if not self._network_checked:
            self.rpc.check_network(self.network)  # NetworkMismatch: another chain's node
            self._network_checked = True
        res = PollResult(head=self.rpc.block_count())
        try:
            return self._poll(res)
        except BaseException:
            self._live = None  # re-read from what was committed
            raise

    def _poll(self, res: PollResult) -> PollResult:
        with ledger_tx(readonly=True) as s:
            self.wallet.refresh(s)
            tip = self._tip(s)
            # Read at every pass: another process may have held the btc-watch lease
            # since the last one and recorded outputs (a spend of one unknown here would
            # be missed, and its outputs to deposit addresses taken for deposits).
            self._live = _Outpoints(utxos.live_outpoints(s, self.chain))
        if tip is not None:
            node_hash = self.rpc.block_hashes([tip.number])[0]
            if node_hash is None and not self._shorter_chain(res.head):
                # The node is behind our stored tip (restarted, syncing, another backend):
                # not a reorg. Change nothing; look again next pass.
                log.warning("btc_node_behind", tip=tip.number, head=res.head)
                res.tip = tip.number
                return res
            if node_hash != tip.hash:
                self._rewind(tip, res)
                with ledger_tx(readonly=True) as s:
                    tip = self._tip(s)
        start, end = next_range(tip, res.head, self.start_height, self.confirmations, self.batch)
        if start <= end:
            self._scan(start, end, tip, res)
        with ledger_tx() as s:
            tip = self._tip(s)
            res.tip = tip.number if tip else None
            if tip is not None:
                self.book.confirm(s, tip.number, res)
        self._mempool(tip, res)
        if res.blocks or res.credited or res.made_available or res.reversed or \
                res.incoming or res.dropped:
            log.info("btc_watch", head=res.head, tip=res.tip, blocks=res.blocks,
                     deposits=res.deposits, credited=res.credited,
                     made_available=res.made_available, reversed=res.reversed,
                     outputs=res.outputs, spends=res.spends, incoming=res.incoming,
                     dropped=res.dropped)
        return res

    def _tip(self, s: Session) -> ChainBlock | None:
        return stored_tip(s, self.chain)

    # --- reading transactions ---

    def _read(self, txs: Iterable[Transaction], mined: bool) -> list[_Tx]:
        """The transactions that pay or spend our outputs, in order; the chunk's own
        outputs count as ours for the transactions after them (``self._live.added``).
        Only a ``mined`` spend takes an output out of the live set (the mempool's are not
        recorded: the block that spends it is)."""
        if self._live is None:
            raise RuntimeError("the watcher's live outputs are not loaded")
        out: list[_Tx] = []
        for tx in txs:
            if tx.is_coinbase:
                for o in tx.outputs:
                    owner = self.wallet.get(o.script_pubkey)
                    if owner is not None:
                        log.warning("btc_coinbase_to_our_address", txid=tx.txid, vout=o.n,
                                    role=owner.role, amount=o.value)
                continue
            spends = [(i.txid, i.vout) for i in tx.inputs
                      if i.txid is not None and i.vout is not None
                      and (i.txid, i.vout) in self._live]
            outs = []
            for o in tx.outputs:
                owner = self.wallet.get(o.script_pubkey)
                if owner is not None and o.value > 0:
                    outs.append(_Out(o.n, o.value, o.script_pubkey, owner))
                    self.wallet.saw(owner)
            if not spends and not outs:
                continue
            if mined:
                self._live.removed.update(spends)
            self._live.added.update((tx.txid, o.vout) for o in outs)
            first = tx.inputs[0]
            out.append(_Tx(tx.txid, outs, spends,
                           (first.txid, first.vout) if first.txid is not None
                           and first.vout is not None else None))
        return out

    def _senders(self, found: Sequence[_Tx], known: dict[str, Transaction]) -> None:
        """Fill in the sender of the transactions that pay deposit addresses: the address
        of the output their first input spends, from ``known`` (the same block) or the node
        (one batch; "" when it cannot tell: no transaction index, a non-standard script)."""
        wanted = [t for t in found if not t.ours and t.first_input is not None
                  and any(o.owner.role == "deposit" for o in t.outs)]
        missing = sorted({t.first_input[0] for t in wanted if t.first_input
                          and t.first_input[0] not in known})
        fetched: dict[str, Transaction | None] = {}
        if missing:
            try:
                fetched = dict(zip(missing, self.rpc.transactions(missing), strict=True))
            except RPCError as exc:  # informational only: the deposit does not wait for it
                log.warning("btc_sender_unknown", error=str(exc)[:200])
        for t in wanted:
            if t.first_input is None:  # wanted: transactions with a first input
                continue
            prev = known.get(t.first_input[0]) or fetched.get(t.first_input[0])
            outs = {o.n: o for o in prev.outputs} if prev is not None else {}
            spent = outs.get(t.first_input[1])
            t.sender = (keys.script_address(spent.script_pubkey, self.network) or ""
                        if spent is not None else "")

    def _apply(self, s: Session, found: Sequence[_Tx], height: int | None,
               block_hash: str | None, res: PollResult) -> None:
        """Write what ``found`` changes (in the caller's transaction): UTXO rows, spends
        (blocks only), deposits (recorded from a block, incoming from the mempool)."""
        for t in found:
            for o in t.outs:
                if utxos.add_output(s, self.chain, t.txid, o.vout, o.owner, o.value, o.script,
                                    height, block_hash):
                    res.outputs += 1
                if o.owner.role != "deposit":
                    continue
                if t.ours:
                    log.warning("btc_own_tx_pays_deposit_address", txid=t.txid, vout=o.vout,
                                player_id=o.owner.player_id, amount=o.value)
                    continue
                f = Found(t.txid, o.vout, BTC, o.owner.address, t.sender, o.value)
                if o.owner.player_id is None:
                    raise RuntimeError(f"deposit address {o.owner.address} has no player")
                if height is None:
                    if self.book.see_unconfirmed(s, f, o.owner.player_id, res):
                        res.incoming += 1
                elif self.book.record(s, f, o.owner.player_id, height, block_hash or "",
                                      res):
                    res.deposits += 1
            if height is not None:
                for op in t.spends:
                    utxos.mark_spent(s, self.chain, op, t.txid, height)
                    res.spends += 1

    # --- blocks ---

    def _scan(self, start: int, end: int, tip: ChainBlock | None, res: PollResult) -> None:
        if self._live is None:
            raise RuntimeError("the watcher's live outputs are not loaded")
        parent = tip.hash if tip is not None else None
        for first in range(start, end + 1, self.chunk):
            last = min(end, first + self.chunk - 1)
            hashes = self.rpc.block_hashes(range(first, last + 1))
            hashes = hashes[:hashes.index(None)] if None in hashes else hashes
            blocks = self.rpc.blocks([h for h in hashes if h is not None]) if hashes else []
            linked: list[Block] = []
            for block in blocks:
                if block.header.confirmations < 0 or (
                        parent is not None and block.header.previous_hash != parent):
                    log.warning("btc_chain_moved", block=block.height)  # the next pass rewinds
                    break
                linked.append(block)
                parent = block.hash
            if not linked:
                return
            self._live.rollback()
            read = [(b, self._read(b.transactions, mined=True)) for b in linked]
            known = {t.txid: t for b in linked for t in b.transactions}
            self._senders([t for _, found in read for t in found], known)
            try:
                with ledger_tx() as s:
                    now = utcnow()
                    for block, found in read:
                        s.add(ChainBlock(chain=self.chain, number=block.height,
                                         hash=block.hash,
                                         parent_hash=block.header.previous_hash or "",
                                         seen_at=now))
                        self._apply(s, found, block.height, block.hash, res)
            except BaseException:
                self._live.rollback()
                raise
            self._live.commit()
            res.blocks += len(linked)
            if len(linked) < last - first + 1:
                return

    # --- the mempool ---

    def _mempool(self, tip: ChainBlock | None, res: PollResult) -> None:
        if self._live is None:
            raise RuntimeError("the watcher's live outputs are not loaded")
        before = self.rpc.best_block_hash()
        txids = self.rpc.mempool_txids()
        after = self.rpc.best_block_hash()
        pool = set(txids)
        caught_up = tip is not None and before == after == tip.hash
        self._seen_mempool &= pool
        new = [t for t in txids if t not in self._seen_mempool][:self.mempool_fetch]
        txs = [t for t in (self.rpc.transactions(new) if new else []) if t is not None]
        res.mempool = len(txs)
        self._live.rollback()
        # Two rounds: outputs first, so a child read before its parent still sees that it
        # spends one of ours.
        for tx in txs:
            for o in tx.outputs:
                owner = self.wallet.get(o.script_pubkey)
                if owner is not None and o.value > 0:
                    self._live.added.add((tx.txid, o.n))
        found = self._read(txs, mined=False)
        self._senders(found, {t.txid: t for t in txs})
        if not found and not caught_up:
            self._live.rollback()
            self._seen_mempool.update(t.txid for t in txs)
            return
        try:
            with ledger_tx() as s:
                self._apply(s, found, None, None, res)
                if caught_up:
                    gone = utxos.drop_missing(s, self.chain, pool)
                    res.dropped = self.book.drop_unconfirmed(s, pool, res)
                    for row in gone:  # still "not spent": a block may revive it
                        log.info("btc_output_dropped", txid=row.txid, vout=row.vout,
                                 role=row.role, amount=row.amount)
        except BaseException:
            self._live.rollback()
            raise
        self._live.commit()
        self._seen_mempool.update(t.txid for t in txs)

    # --- reorgs ---

    def _shorter_chain(self, head: int) -> bool:
        """The node's chain is lower than our stored tip: whether its block at its own
        head differs from ours there (a reorg to a shorter chain, e.g. a heavier branch
        of fewer blocks, or an invalidated tip), not a node that is merely behind."""
        with ledger_tx(readonly=True) as s:
            ours = s.execute(select(ChainBlock.hash).where(
                ChainBlock.chain == self.chain, ChainBlock.number == head)
            ).scalar_one_or_none()
        if ours is None:
            return False  # below what we stored: nothing to compare, wait for the node
        theirs = self.rpc.block_hashes([head])[0]
        return theirs is not None and theirs != ours

    def _rewind(self, tip: ChainBlock, res: PollResult) -> None:
        """Walk back to the highest stored block the node still has, then in one ledger
        transaction drop the stored blocks above it, reverse their deposits and put their
        UTXO rows back."""
        with ledger_tx(readonly=True) as s:
            rows = s.execute(select(ChainBlock.number, ChainBlock.hash, ChainBlock.parent_hash)
                             .where(ChainBlock.chain == self.chain,
                                    ChainBlock.number > tip.number - MAX_REORG_DEPTH)).all()
        stored = {number: block_hash for number, block_hash, _ in rows}
        # The lowest stored block's parent counts too (a watcher that started recently).
        lowest = min(rows, key=lambda r: r[0])
        if lowest[0] > 0:
            stored[lowest[0] - 1] = lowest[2]
        numbers = sorted(stored, reverse=True)
        node = dict(zip(numbers, self.rpc.block_hashes(numbers), strict=True))
        ancestor = None
        for number in numbers:
            if node[number] is None and number > res.head:
                continue  # above a shorter chain's head: not on the node's chain
            if node[number] is None:  # the node lost blocks below its head: not a reorg
                log.warning("btc_rewind_node_gap", block=number)
                return
            if node[number] == stored[number]:
                ancestor = number
                break
        if ancestor is None:
            raise WatcherStopped(
                f"no stored block of the last {MAX_REORG_DEPTH} is on the node's chain "
                f"(stored tip {tip.number}): the Bitcoin watcher stops; check the node")
        floor = None
        if ancestor == lowest[0] - 1:
            # Every stored block is dropped: the ancestor, never stored, stays as the floor
            # (the cursor), so the next pass reads from the block above it. Without it the
            # cursor would restart near the head and skip the blocks between (a deposit
            # mined again there would stay reversed).
            header = self.rpc.block_header(stored[ancestor])
            floor = ChainBlock(chain=self.chain, number=ancestor, hash=stored[ancestor],
                               parent_hash=header.previous_hash or "")
        with ledger_tx() as s:
            dropped = self.book.rewind(s, ancestor, res)
            unconfirmed, unspent = utxos.rewind(s, self.chain, ancestor)
            if floor is not None:
                s.add(floor)
        self._live = None  # spends undone: re-read
        with ledger_tx(readonly=True) as s:
            self._live = _Outpoints(utxos.live_outpoints(s, self.chain))
        log.warning("btc_reorg", ancestor=ancestor, dropped_blocks=dropped,
                    reversed=res.reversed, outputs_unconfirmed=unconfirmed,
                    spends_undone=unspent)


_watcher: Watcher | None = None


def watch_once() -> dict[str, int]:
    """The ``btc-watch`` job: one pass of the process's watcher (built on first use from
    the settings; a failed pass is retried by the next one and resumes from the cursor)."""
    global _watcher
    if _watcher is None:
        _watcher = Watcher(BitcoinRPC.from_settings(),
                           start_height=get_settings().btc_watch_from)
    res = _watcher.poll()
    return {"head": res.head, "tip": res.tip or 0, "blocks": res.blocks,
            "credited": res.credited, "reversed": res.reversed, "incoming": res.incoming,
            "dropped": res.dropped}
