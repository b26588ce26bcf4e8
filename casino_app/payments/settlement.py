"""The settlement writer: house bets settled in batches, one writer per ledger database per
process (TigerBeetle's three moves: many operations per commit, one round trip per batch,
the hot house account touched once per batch).

A caller submits a ``BetOrder`` (player, key, game, stake, currency, the bet row's fields
and a ``draw`` function from ``games``) and awaits its ``Settled`` answer: a Future, which
async code awaits without holding a thread. The writer thread takes the orders waiting when
it has room (up to half of the orders out, at most ``BATCH_CAP``), draws them and hands the
batch to a database thread; two batches are out at once (see "the thread" below), so
Python and the database work at the same time:

1. It resolves what it does not know yet, in one read for the whole batch: the player's
   ledger account and active seed pair (kept in memory afterwards).
2. It takes the next nonce of each player's pair in memory and asks ``games`` for the
   outcome (``order.draw``), so the database never sees a server seed.
3. One statement settles the batch: on PostgreSQL ``settle_bets_v1`` (alembic led0018,
   led0019, led0020), run in autocommit, so the answer arrives after COMMIT; on SQLite
   the same decisions in one ``BEGIN IMMEDIATE`` transaction. Each bet is decided in order
   against running balances (see the function): a refused bet gets its own status and
   never fails the batch; accepted bets are inserted in sets and each balance is written
   once, the bankroll's last, by its net (a batch that finds it fallen under its exposure
   caps is sent again: SQLSTATE HH001).
4. A bet whose nonce was not the pair's (a rotation, a refused bet before it, another
   writer) is ``stale``: the writer reloads the pair and settles it in the next batch.
   An unexpected database error splits the batch in halves until the bad order is alone
   (it gets ``error``); the others commit. A lost connection answers ``unknown``: the bet
   may or may not have committed, and a retry with the same key settles it exactly once.

The queue is bounded (``QUEUE_CAP``): a full queue answers ``busy`` at once. Other work
that must be serialized with the bets of this process (a Mines step, a cash-out) runs on
the writer thread through ``run``, with no batch out. Deposits, withdrawals and staff
adjustments keep their own transactions: they lock accounts in id order, the bankroll
last, and never a seed pair; a batch locks seed pairs, then its players' accounts, each
in id order, and writes the bankroll last, so none of them can deadlock with a batch.
Several processes each have their own writer, for the same reason.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import dataclasses
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from sqlalchemy import Engine, bindparam, select, text

from casino_app.core.clock import utcnow
from casino_app.core.db import databases, dbapi_url, ledger_tx
from casino_app.core.settings import get_settings
from casino_app.payments import ledger

log = logging.getLogger(__name__)

BATCH_CAP = 500          # orders per batch, at most
QUEUE_CAP = 5_000        # orders waiting; beyond it: busy
TX_JOBS_CAP = 200        # jobs sharing one transaction (run_in_transaction), at most
STALE_ATTEMPTS = 4       # a bet whose pair changed under it is drawn again this often
PAIR_CACHE_CAP = 100_000  # players whose active pair is kept in memory
SPLIT = 2                # a batch takes at most 1/SPLIT of the orders out
WINDOW = 2               # batches out at once: both in the server on PostgreSQL; on SQLite
                         # one in the database and the next drawn, waiting for it
BANKROLL_MOVED = "HH001"  # settle_bets_v1: the bankroll fell under the batch's caps
BANKROLL_RETRIES = 5


@dataclass(frozen=True)
class SeedInputs:
    """A player's active seed pair, as the writer draws from it."""
    pair_id: int
    server_seed: str
    server_seed_hash: str
    client_seed: str
    next_nonce: int


@dataclass(frozen=True)
class Drawn:
    """What ``games`` drew for one nonce: the bet row's outcome fields."""
    outcome_json: str
    mult_e4: int
    payout: int
    state: str          # open (Mines in play), won, lost


# games' function that gives each player an active pair and returns them
SeedSource = Callable[[Sequence[str]], dict[str, SeedInputs]]


@dataclass
class BetOrder:
    player_id: str
    bet_key: str
    entry_key: str
    game: str
    currency: str
    stake: int
    params_json: str
    max_win: int | None            # the largest net win this bet can have (None: no cap)
    memo: str
    draw: Callable[[SeedInputs, int], Drawn]   # (pair, nonce) -> outcome
    seeds: SeedSource
    # filled by the writer
    attempts: int = 0
    inputs: SeedInputs | None = None
    nonce: int = 0
    drawn: Drawn | None = None
    player_acct: int = 0
    bank_acct: int = 0


@dataclass(frozen=True)
class Settled:
    """The writer's answer. ``status``: ok (settled now), replay (the key was settled
    before: read it), conflict (the key holds another bet), hold, funds, exposure (``cap``
    is the largest win allowed), mines_open, stale (seeds kept changing), busy, error
    (this order failed; nothing was written), unknown (the connection was lost: it may
    have committed; retry with the same key)."""
    status: str
    bet_id: int | None = None
    balance_before: int | None = None
    balance_after: int | None = None
    cap: int | None = None
    nonce: int | None = None
    inputs: SeedInputs | None = None
    drawn: Drawn | None = None
    created_at: datetime | None = None


class _Job:
    __slots__ = ("fn", "future")

    def __init__(self, fn: Callable[[], Any]):
        self.fn = fn
        self.future: concurrent.futures.Future = concurrent.futures.Future()


class _TxJob(_Job):
    """``fn(session)``: run with the other such jobs waiting in ONE ledger transaction,
    answered after COMMIT. ``fn`` undoes its own writes when it raises (it works inside
    ``ledger.savepoint``), so one that fails leaves the others' work intact."""

    __slots__ = ()


class _Pending:
    """One submitted order. Its answer is kept in ``result`` during the batch and handed
    over once the batch is done (``_deliver``): to a concurrent Future (a blocking
    caller), or to an asyncio Future through ONE callback per event loop and batch, so
    the writer wakes the loop once per batch, not once per bet."""

    __slots__ = ("order", "future", "loop", "result")

    def __init__(self, order: BetOrder, loop: asyncio.AbstractEventLoop | None = None):
        self.order = order
        self.loop = loop
        self.future: concurrent.futures.Future | asyncio.Future = (
            loop.create_future() if loop is not None else concurrent.futures.Future())
        self.result: Settled | None = None

    def done(self) -> bool:
        return self.result is not None

    def set(self, result: Settled) -> None:
        self.result = result


def _resolve(pairs: list[tuple[asyncio.Future, Settled]]) -> None:
    for fut, result in pairs:
        if not fut.done():  # a caller that gave up (cancelled) is not answered
            fut.set_result(result)


def _deliver(items: list[_Pending]) -> None:
    """Hand the answers of a finished batch to their callers."""
    by_loop: dict[asyncio.AbstractEventLoop, list] = {}
    for p in items:
        if p.result is None:
            continue
        if p.loop is None:
            if not p.future.done():
                p.future.set_result(p.result)
        else:
            by_loop.setdefault(p.loop, []).append((p.future, p.result))
    for loop, pairs in by_loop.items():
        try:
            loop.call_soon_threadsafe(_resolve, pairs)
        except RuntimeError:  # the loop was closed: nobody waits any more
            pass


# Fault points for crash tests (tests/payments/test_settlement_crash.py): a name -> hook
# called at that point of a batch; a hook may raise or kill the process.
FAULTS: dict[str, Callable[[], None]] = {}


def _fault(name: str) -> None:
    hook = FAULTS.get(name)
    if hook is not None:
        hook()


class _Lost(Exception):
    """The database connection broke during a batch: its outcome is unknown."""


class _Batch:
    """One batch between the two threads: what was taken, what was sent (``ready``,
    answered by ``future``), what goes back to the queue (``stale``, ``later``)."""

    __slots__ = ("items", "ready", "stale", "later", "players", "future")

    def __init__(self, items: list[_Pending]):
        self.items = items
        self.ready: list[_Pending] = []
        self.stale: list[_Pending] = []
        self.later: list[_Pending] = []
        self.players: set[str] = set()
        self.future: concurrent.futures.Future = concurrent.futures.Future()


class SettlementWriter:
    """One writer thread for one ledger database (see the module's docstring), and one
    database thread that sends its batches."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"
        self._cv = threading.Condition()
        self._queue: collections.deque = collections.deque()
        self._stopping = False
        self._pairs: collections.OrderedDict[str, SeedInputs] = collections.OrderedDict()
        self._accounts: dict[tuple[str, str], int] = {}
        self._local = threading.local()      # each database thread's connection
        self._conns: list[psycopg.Connection] = []
        self.batches = 0
        self.settled = 0
        self._db = concurrent.futures.ThreadPoolExecutor(
            max_workers=WINDOW if self.postgres else 1, thread_name_prefix="settlement-db")
        self._thread = threading.Thread(target=self._loop, name="settlement-writer",
                                        daemon=True)
        self._thread.start()

    # --- callers ---

    def submit(self, order: BetOrder) -> concurrent.futures.Future:
        """Queue one bet; its Future gives a ``Settled`` (``busy`` at once when full)."""
        p = _Pending(order)
        self._enqueue(p)
        return p.future  # type: ignore[return-value]

    def submit_async(self, order: BetOrder) -> asyncio.Future:
        """``submit`` for a caller in the running event loop: an asyncio Future."""
        p = _Pending(order, asyncio.get_running_loop())
        self._enqueue(p)
        return p.future  # type: ignore[return-value]

    def _put(self, item: _Pending | _Job) -> bool:
        """Queue ``item`` for the writer thread; False when stopping or full."""
        with self._cv:
            if self._stopping or len(self._queue) >= QUEUE_CAP:
                return False
            self._queue.append(item)
            self._cv.notify()
            return True

    def _enqueue(self, p: _Pending) -> None:
        if self._put(p):
            return
        p.set(Settled("busy"))
        p.future.set_result(p.result)  # in the caller's thread (its loop's, if async)

    def run(self, fn: Callable[[], Any]) -> concurrent.futures.Future:
        """Run ``fn`` on the writer thread between batches; its Future gives fn's result
        (or raises its exception). Raises Busy when the queue is full."""
        job = _Job(fn)
        if not self._put(job):
            raise Busy()
        return job.future

    def run_in_transaction(self, fn: Callable[[Any], Any]) -> concurrent.futures.Future:
        """Run ``fn(session)`` on the writer thread between batches, in a transaction
        shared with the other such jobs waiting (up to TX_JOBS_CAP; one COMMIT for all);
        its Future gives fn's result once that transaction has committed. ``fn`` must
        undo its own writes if it raises (do them inside ``ledger.savepoint(s)``): the
        transaction goes on with the other jobs. Raises Busy when the queue is full."""
        job = _TxJob(fn)
        if not self._put(job):
            raise Busy()
        return job.future

    def stop(self, timeout: float = 10) -> None:
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        self._thread.join(timeout)
        self._db.shutdown(wait=not self._thread.is_alive())
        with self._cv:
            conns, self._conns = self._conns, []
        for conn in conns:
            try:
                conn.close()
            except Exception:  # noqa: S110 - closing a broken connection
                pass

    # --- the thread ---
    #
    # Two batches out at once, so that the database and Python work at the same time:
    # the writer thread takes a batch, draws it and hands it to a database thread
    # (``_db``: on PostgreSQL two threads, one connection each, so both batches are in the
    # server together; on SQLite one, and the second batch waits for it); while a batch
    # is out it takes, draws and hands over the next one, then answers whichever is done
    # first. A batch takes at most half of the orders out (``_batch_cap``), so callers
    # who wait for their answers form two groups that take turns. A batch drawn while
    # another is out leaves out the players with orders in that one: their pair's next
    # nonce is known only once its answers are in. So nonces stay in submission order per
    # player, a player's orders are never in two batches at once, and two batches of one
    # writer share no row but the bankroll, which each writes last (led0020).

    def _take(self, skip: set[str], inflight: collections.deque[_Batch]) -> list | None:
        """The next batch (orders of players not in ``skip``, up to ``_batch_cap``,
        stopping at a job) or a job alone, when fewer than WINDOW batches are out. Blocks
        until there is one, or until a batch in ``inflight`` is answered ([] then); None
        when stopping with nothing left."""
        with self._cv:
            while True:
                if self._queue and len(inflight) < WINDOW:
                    got = self._pop(skip, self._batch_cap(inflight))
                    if got:
                        return got
                if any(b.future.done() for b in inflight):
                    return []
                if self._stopping:
                    return [] if inflight else None
                self._cv.wait()

    def _batch_cap(self, inflight: collections.deque[_Batch]) -> int:
        """At most BATCH_CAP, and at most 1/SPLIT of the orders out (waiting and in
        flight). Callers who wait for their answer before they bet again then form
        groups that take turns: one settles in the server while Python answers and draws
        the other, instead of one batch holding them all, which leaves the server idle
        while Python works and Python idle while the server does."""
        out = len(self._queue) + sum(len(b.ready) for b in inflight)
        return min(BATCH_CAP, max(1, -(-out // SPLIT)))

    def _pop(self, skip: set[str], cap: int) -> list:
        """Orders in queue order, leaving out the players in ``skip``: new players while
        the batch is under ``cap``, and the later orders of its players up to BATCH_CAP
        (they could go in no other batch now)."""
        if isinstance(self._queue[0], _TxJob):
            jobs = []
            while self._queue and isinstance(self._queue[0], _TxJob) \
                    and len(jobs) < TX_JOBS_CAP:
                jobs.append(self._queue.popleft())
            return jobs
        if isinstance(self._queue[0], _Job):
            return [self._queue.popleft()]
        batch: list[_Pending] = []
        mine: set[str] = set()
        kept: list[_Pending] = []
        queue = self._queue
        while queue and len(batch) < BATCH_CAP and len(kept) <= BATCH_CAP \
                and isinstance(queue[0], _Pending):
            p = queue.popleft()
            player = p.order.player_id
            if player in mine or (len(batch) < cap and player not in skip):
                batch.append(p)
                mine.add(player)
            else:
                kept.append(p)
        queue.extendleft(reversed(kept))
        return batch

    def _requeue_front(self, items: list[_Pending]) -> None:
        with self._cv:
            self._queue.extendleft(reversed(items))
            self._cv.notify()

    def _wake(self, _future: concurrent.futures.Future) -> None:
        with self._cv:
            self._cv.notify()

    def _loop(self) -> None:
        inflight: collections.deque[_Batch] = collections.deque()
        while True:
            skip = set().union(*(b.players for b in inflight))
            items = self._take(skip, inflight)
            if items is None:
                break
            if items and isinstance(items[0], _Job):
                while inflight:  # a job runs with no batch in flight
                    self._guarded(self._finish, inflight.popleft())
                if isinstance(items[0], _TxJob):
                    self._run_tx_jobs(items)
                else:
                    self._run_job(items[0])
                continue
            if items:
                started = self._guarded(self._start, items)
                if started is not None:
                    inflight.append(started)
            for b in [b for b in inflight if b.future.done()]:
                inflight.remove(b)
                self._guarded(self._finish, b)
        while inflight:
            self._guarded(self._finish, inflight.popleft())
        with self._cv:
            rest, self._queue = list(self._queue), collections.deque()
        for item in rest:
            if isinstance(item, _Job):
                item.future.set_exception(Busy())
            else:
                item.set(Settled("busy"))
        _deliver([i for i in rest if isinstance(i, _Pending)])

    @staticmethod
    def _guarded(step: Callable[[Any], Any], arg: Any) -> Any:
        """Run a step of the loop; an unexpected error answers the batch's callers
        "unknown" (never leaves one waiting) instead of ending the writer."""
        try:
            return step(arg)
        except Exception:
            log.exception("settlement batch failed")
            items = arg.items if isinstance(arg, _Batch) else arg
            for p in items:
                if not p.done():
                    p.set(Settled("unknown"))
            _deliver(items)
            return None

    @staticmethod
    def _run_job(job: _Job) -> None:
        try:
            job.future.set_result(job.fn())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            job.future.set_exception(exc)

    @staticmethod
    def _run_tx_jobs(jobs: list[_TxJob]) -> None:
        done: list[tuple[_TxJob, Any, BaseException | None]] = []
        try:
            with ledger_tx() as s:
                for job in jobs:
                    try:
                        done.append((job, job.fn(s), None))
                    except Exception as exc:  # noqa: BLE001 - handed to its caller
                        done.append((job, None, exc))
        except BaseException as exc:  # noqa: BLE001 - nothing committed: every caller
            for job in jobs:
                job.future.set_exception(exc)
            return
        for job, result, exc in done:
            if exc is not None:
                job.future.set_exception(exc)
            else:
                job.future.set_result(result)

    # --- one batch ---

    def _start(self, items: list[_Pending]) -> _Batch | None:
        """Draw a batch and hand it to the database thread (None: nothing to send)."""
        b = _Batch(items)
        # the same key twice: the later one waits for the next batch, where it finds the
        # first one stored (replay or conflict) or decides afresh if the first was refused
        seen: set[tuple[str, str]] = set()
        batch: list[_Pending] = []
        for p in items:
            k = (p.order.player_id, p.order.bet_key)
            (b.later if k in seen else batch).append(p)
            seen.add(k)
        try:
            self._prepare(batch)
        except Exception:
            log.exception("settlement: reading seed pairs and accounts failed")
            for p in batch:
                p.set(Settled("error"))
            self._end(b)
            return None
        for p in batch:
            if p.order.inputs is None:
                p.order.attempts += 1  # no active pair could be read or made
                b.stale.append(p)
            else:
                b.ready.append(p)
        if not b.ready:
            self._end(b)
            return None
        b.players = {p.order.player_id for p in b.ready}
        b.future = self._db.submit(self._db_stage, [p.order for p in b.ready])
        b.future.add_done_callback(self._wake)
        return b

    def _finish(self, b: _Batch) -> None:
        """Take a batch's answers from the database thread and hand them out."""
        try:
            try:
                outcomes = b.future.result()
            except BaseException:
                log.exception("settlement batch failed")
                outcomes = [(0, len(b.ready), _Lost())]
            for lo, hi, outcome in outcomes:
                self._answer(b.ready[lo:hi], outcome, b.stale)
        finally:
            for p in b.ready:
                if not p.done() and p not in b.stale:
                    p.set(Settled("unknown"))
            self._end(b)

    def _end(self, b: _Batch) -> None:
        for p in b.stale:
            if p.order.attempts >= STALE_ATTEMPTS:
                p.set(Settled("stale"))
        self._requeue_front([p for p in b.stale if not p.done()] + b.later)
        _deliver(b.items)

    def _db_stage(self, orders: list[BetOrder]) -> list[tuple[int, int, Any]]:
        """On the database thread: settle ``orders``; on an unexpected database error,
        each half alone, until the bad order is alone. Returns (start, end, outcome) for
        consecutive slices: outcome is (rows, now), ``_Lost`` or the error."""
        out: list[tuple[int, int, Any]] = []

        def run(lo: int, hi: int) -> None:
            try:
                out.append((lo, hi, self._execute(orders[lo:hi])))
            except _Lost as exc:
                out.append((lo, hi, exc))
            except Exception as exc:
                if hi - lo == 1:
                    log.exception("settlement: bet %s refused by the database",
                                  orders[lo].bet_key)
                    out.append((lo, hi, exc))
                    return
                mid = (lo + hi) // 2
                run(lo, mid)
                run(mid, hi)

        run(0, len(orders))
        return out

    def _answer(self, ready: list[_Pending], outcome: Any, stale: list[_Pending]) -> None:
        """Each order's answer from its slice's outcome (see ``_db_stage``)."""
        if isinstance(outcome, _Lost):
            for p in ready:
                self._pairs.pop(p.order.player_id, None)
                p.set(Settled("unknown"))
            return
        if isinstance(outcome, BaseException):
            self._pairs.pop(ready[0].order.player_id, None)
            ready[0].set(Settled("error"))
            return
        results, now = outcome
        self.batches += 1
        first: dict[str, BetOrder] = {}
        stale_first: set[str] = set()  # players whose cached pair proved stale
        ok_nonce: dict[str, int] = {}
        for p, (status, bet_id, before, after, cap) in zip(ready, results, strict=True):
            o = p.order
            first.setdefault(o.player_id, o)
            if status == "need_bank":  # a bet to accept: its bankroll account now
                with ledger_tx() as s:
                    self._accounts[(ledger.HOUSE, o.currency)] = ledger.house_account(
                        s, o.currency, "bankroll")
                status = "stale"
            if status == "stale":
                # The player's first order was drawn from a pair that changed (a
                # rotation, another writer): read it again, and count the attempt. A later
                # order of theirs is stale only because one before it was refused.
                if first[o.player_id] is o:
                    o.attempts += 1
                    stale_first.add(o.player_id)
                stale.append(p)
                continue
            if status == "ok":
                self.settled += 1
                ok_nonce[o.player_id] = o.nonce
                p.set(Settled(status, bet_id, before, after, cap, o.nonce, o.inputs,
                              o.drawn, now))
                continue
            p.set(Settled(status, bet_id, cap=cap))
        for player in stale_first:
            self._pairs.pop(player, None)  # read again before the next draw
        for player, nonce in ok_nonce.items():
            pair = self._pairs.get(player)
            if pair is not None and pair.pair_id == first[player].inputs.pair_id:  # type: ignore[union-attr]
                self._pairs[player] = dataclasses.replace(pair, next_nonce=nonce + 1)

    def _prepare(self, batch: list[_Pending]) -> None:
        """Accounts and seed pairs the writer does not know yet, then each order's nonce
        and outcome (nonces in submission order, per player)."""
        need_pairs = sorted({p.order.player_id for p in batch
                             if p.order.player_id not in self._pairs})
        need_accts = sorted({(p.order.player_id, p.order.currency) for p in batch
                             if (p.order.player_id, p.order.currency) not in self._accounts}
                            | {(ledger.HOUSE, p.order.currency) for p in batch
                               if (ledger.HOUSE, p.order.currency) not in self._accounts})
        if need_accts:  # none is made here: a refused bet leaves no row behind
            with ledger_tx(readonly=True) as s:
                for owner, cur in need_accts:
                    acct = (ledger.existing_account(s, owner, cur, "bankroll")
                            if owner == ledger.HOUSE
                            else ledger.existing_account(s, owner, cur, "player"))
                    if acct is not None:
                        self._accounts[(owner, cur)] = acct
        if need_pairs:
            loaded = batch[0].order.seeds(need_pairs)
            for player in need_pairs:
                if player in loaded:
                    self._pairs[player] = loaded[player]
            while len(self._pairs) > PAIR_CACHE_CAP:
                self._pairs.popitem(last=False)
        next_nonce: dict[str, int] = {}
        for p in batch:
            o = p.order
            pair = self._pairs.get(o.player_id)
            o.inputs = None
            # 0: the player has no account in this currency (a balance of 0, refused)
            o.player_acct = self._accounts.get((o.player_id, o.currency), 0)
            o.bank_acct = self._accounts.get((ledger.HOUSE, o.currency), 0)
            if pair is None:  # no active pair: the seeds function could not give one
                continue
            self._pairs.move_to_end(o.player_id)
            o.nonce = next_nonce.get(o.player_id, pair.next_nonce)
            next_nonce[o.player_id] = o.nonce + 1
            o.inputs = pair
            o.drawn = o.draw(pair, o.nonce)

    def _execute(self, orders: list[BetOrder]) -> tuple[list[tuple], datetime]:
        now = utcnow()
        cap_bps = get_settings().exposure_cap_bps
        _fault("before_batch")
        if self.postgres:
            out = self._execute_pg(orders, now, cap_bps)
        else:
            out = _execute_sqlite(orders, now, cap_bps)
        _fault("after_commit")
        return out, now

    def _connection(self) -> psycopg.Connection:
        """This database thread's connection (opened on first use, or again once lost)."""
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = psycopg.connect(dbapi_url(self.engine.url), autocommit=True,
                                   application_name="casino-settlement")
            self._local.conn = conn
            with self._cv:
                self._conns = [c for c in self._conns if not c.closed] + [conn]
        return conn

    def _execute_pg(self, orders: list[BetOrder], now: datetime, cap_bps: int
                    ) -> list[tuple]:
        """One round trip. A connection found broken (a server restart, an idle timeout)
        is opened again and the batch sent once more: safe, since a bet that did commit
        is then found under its key and answered as stored. A batch that found the
        bankroll fallen under its exposure caps (SQLSTATE HH001: another batch committed a
        loss while it ran; nothing was written) is sent again, and decided afresh."""
        args = (*_columns(orders), cap_bps, now)
        lost = moved = 0
        while True:
            conn = None
            try:
                conn = self._connection()
                rows = conn.execute(_CALL, args).fetchall()
            except psycopg.Error as exc:
                if exc.sqlstate == BANKROLL_MOVED and moved < BANKROLL_RETRIES:
                    moved += 1
                    continue
                if not isinstance(exc, psycopg.OperationalError) or (
                        conn is not None and not (conn.closed or conn.broken)):
                    raise  # the statement failed, not the connection
                self._local.conn = None
                lost += 1
                if lost == 2:
                    raise _Lost() from exc
                continue
            rows.sort(key=lambda r: r[0])
            return [tuple(r[1:]) for r in rows]


class Busy(Exception):
    def __init__(self) -> None:
        super().__init__("The house is very busy right now. Try again in a moment.")


# binary parameters (%b): arrays go over the wire without text quoting
_CALL = "SELECT * FROM settle_bets_v1(" + ", ".join(["%b"] * 22) + ")"  # noqa: S608 - placeholders only


def _lines(o: BetOrder) -> list[tuple[int, int]]:
    if o.drawn is None:
        raise RuntimeError(f"order {o.bet_key} settled before it was drawn")
    return [(a, m) for a, m in ((o.player_acct, -o.stake), (o.bank_acct, o.stake),
                                (o.bank_acct, -o.drawn.payout),
                                (o.player_acct, o.drawn.payout)) if m != 0]


def _columns(orders: list[BetOrder]) -> list[list]:
    """The function's array arguments, one element per order."""
    cols: list[list] = [[] for _ in range(20)]
    for o in orders:
        d, i = o.drawn, o.inputs
        if d is None or i is None:
            raise RuntimeError(f"order {o.bet_key} settled before it was drawn")
        lines = _lines(o)
        for _a, m in lines:
            ledger._check_amount(m)
        for c, v in zip(cols, (
                o.player_id, o.bet_key, o.entry_key, o.game, o.currency, o.stake,
                d.payout, d.mult_e4, d.state, o.params_json, d.outcome_json, i.pair_id,
                o.nonce, i.client_seed, i.server_seed_hash, o.player_acct, o.bank_acct,
                o.max_win, ledger._fingerprint("bet", sorted(lines)), o.memo[:200]),
                strict=True):
            c.append(v)
    return cols


# --- SQLite: the same decisions, in Python, in one BEGIN IMMEDIATE transaction ---

_STATS_UPSERT = text("""
INSERT INTO player_stats (player_id, currency, bets, wagered, paid, best_mult_e4, updated_at)
VALUES (:p, :c, :n, :w, :pd, :m, :now)
ON CONFLICT (player_id, currency) DO UPDATE SET
  bets = bets + excluded.bets, wagered = wagered + excluded.wagered,
  paid = paid + excluded.paid, best_mult_e4 = max(best_mult_e4, excluded.best_mult_e4),
  updated_at = excluded.updated_at""")


def _execute_sqlite(orders: list[BetOrder], now: datetime, cap_bps: int) -> list[tuple]:
    from casino_app.payments.models import JournalEntry, LedgerAccount, Posting

    with ledger_tx() as s:
        pair_ids = sorted({o.inputs.pair_id for o in orders if o.inputs})
        pairs = {r[0]: [r[1], r[2], r[3] == "active"] for r in s.execute(text(
            "SELECT id, player_id, nonce, state FROM seed_pairs WHERE id IN :ids"
        ).bindparams(bindparam("ids", expanding=True)), {"ids": pair_ids})}
        acct_ids = sorted({o.player_acct for o in orders} | {o.bank_acct for o in orders})
        accts = {r.id: [r.balance, r.reserved, r.allow_negative] for r in s.execute(
            select(LedgerAccount.id, LedgerAccount.balance, LedgerAccount.reserved,
                   LedgerAccount.allow_negative).where(LedgerAccount.id.in_(acct_ids)))}
        orig = {a: v[0] for a, v in accts.items()}
        players = sorted({o.player_id for o in orders})
        keys = {(o.player_id, o.bet_key) for o in orders}
        stored = {(r[0], r[1]): r[2:] for r in s.execute(text(
            "SELECT player_id, bet_key, id, game, currency, stake, params FROM bets "
            "WHERE player_id IN :ps AND bet_key IN :ks").bindparams(
                bindparam("ps", expanding=True), bindparam("ks", expanding=True)),
            {"ps": players, "ks": sorted({k for _p, k in keys})}) if (r[0], r[1]) in keys}
        held = {r[0] for r in s.execute(text(
            "SELECT player_id FROM player_holds WHERE released_at IS NULL AND player_id IN "
            ":ps").bindparams(bindparam("ps", expanding=True)), {"ps": players})}
        open_players = {r[0] for r in s.execute(text(
            "SELECT player_id FROM bets WHERE state = 'open' AND player_id IN :ps"
        ).bindparams(bindparam("ps", expanding=True)), {"ps": players})}
        out: list[tuple] = []
        accepted: list[tuple[int, BetOrder]] = []
        for o in orders:
            d, i = o.drawn, o.inputs
            if d is None or i is None:
                raise RuntimeError(f"order {o.bet_key} settled before it was drawn")
            found = stored.get((o.player_id, o.bet_key))
            if found is not None:
                same = (found[1], found[2], found[3], found[4]) == (
                    o.game, o.currency, o.stake, o.params_json)
                out.append(("replay" if same else "conflict", found[0], None, None, None))
                continue
            if o.player_id in held:
                out.append(("hold", None, None, None, None))
                continue
            pair = pairs.get(i.pair_id)
            if pair is None or not pair[2] or pair[0] != o.player_id or pair[1] != o.nonce:
                out.append(("stale", None, None, None, None))
                continue
            pl, bk = accts.get(o.player_acct, [0, 0, False]), accts.get(o.bank_acct)
            if o.max_win is not None:
                cap = max(bk[0] if bk else 0, 0) * cap_bps // 10_000
                if o.max_win > cap:
                    out.append(("exposure", None, None, None, cap))
                    continue
            if not pl[2] and pl[0] - pl[1] < o.stake:
                out.append(("funds", None, None, None, None))
                continue
            if d.state == "open" and o.player_id in open_players:
                out.append(("mines_open", None, None, None, None))
                continue
            if bk is None:
                out.append(("need_bank", None, None, None, None))
                continue
            before = pl[0]
            pl[0] += d.payout - o.stake
            bk[0] += o.stake - d.payout
            pair[1] += 1
            if d.state == "open":
                open_players.add(o.player_id)
            out.append(("ok", None, before, pl[0], None))
            accepted.append((len(out) - 1, o))
        if not accepted:
            return out
        entries = JournalEntry.__table__
        postings: list[dict] = []
        stats: dict[tuple[str, str], list[int]] = {}
        for idx, o in accepted:
            d = o.drawn
            if d is None or o.inputs is None:
                raise RuntimeError(f"order {o.bet_key} settled before it was drawn")
            lines = _lines(o)
            entry_id = s.execute(entries.insert().returning(entries.c.id), {
                "key": o.entry_key, "kind": "bet", "memo": o.memo[:200],
                "fingerprint": ledger._fingerprint("bet", sorted(lines)),
                "created_at": now}).scalar_one()
            postings += [{"entry_id": entry_id, "account_id": a, "currency": o.currency,
                          "amount": m} for a, m in lines]
            bet_id = s.execute(text(
                "INSERT INTO bets (player_id, bet_key, game, currency, stake, payout, "
                "mult_e4, state, params, outcome, progress, seed_pair_id, nonce, "
                "client_seed, server_seed_hash, balance_before, balance_after, created_at, "
                "settled_at) VALUES (:p, :k, :g, :c, :st, :po, :m, :state, :params, :out, "
                "'[]', :pair, :nonce, :cs, :sh, :b, :a, :now, :settled) RETURNING id"), {
                    "p": o.player_id, "k": o.bet_key, "g": o.game, "c": o.currency,
                    "st": o.stake, "po": d.payout, "m": d.mult_e4, "state": d.state,
                    "params": o.params_json, "out": d.outcome_json,
                    "pair": o.inputs.pair_id, "nonce": o.nonce,
                    "cs": o.inputs.client_seed, "sh": o.inputs.server_seed_hash,
                    "b": out[idx][2], "a": out[idx][3], "now": now,
                    "settled": None if d.state == "open" else now}).scalar_one()
            out[idx] = ("ok", bet_id, *out[idx][2:])
            if d.state != "open":
                t = stats.setdefault((o.player_id, o.currency), [0, 0, 0, 0])
                t[0] += 1
                t[1] += o.stake
                t[2] += d.payout
                t[3] = max(t[3], d.mult_e4)
        s.execute(Posting.__table__.insert(), postings)
        for (p, c), (n, w, pd, m) in stats.items():
            s.execute(_STATS_UPSERT, {"p": p, "c": c, "n": n, "w": w, "pd": pd, "m": m,
                                      "now": now})
        for a, (bal, _res, _neg) in accts.items():
            if bal != orig[a]:
                s.execute(text("UPDATE ledger_accounts SET balance = :b WHERE id = :a"),
                          {"b": bal, "a": a})
        for pid, (_player, nonce, _active) in pairs.items():
            s.execute(text("UPDATE seed_pairs SET nonce = :n WHERE id = :i AND nonce < :n"),
                      {"n": nonce, "i": pid})
        return out


# --- the process's writer ---

_lock = threading.Lock()
_writer: SettlementWriter | None = None


def writer() -> SettlementWriter:
    """This process's writer for the current ledger database (started on first use)."""
    global _writer
    engine = databases().ledger_engine
    w = _writer
    if w is not None and w.engine is engine:
        return w
    with _lock:
        if _writer is not None and _writer.engine is not engine:
            _writer.stop()
            _writer = None
        if _writer is None:
            _writer = SettlementWriter(engine)
        return _writer


def reset() -> None:
    """Stop the writer (tests, and a settings change)."""
    global _writer
    with _lock:
        if _writer is not None:
            _writer.stop()
        _writer = None


def settle(order: BetOrder, timeout: float = 60) -> Settled:
    """Submit and wait (sync callers: the CLI, jobs, tests)."""
    return writer().submit(order).result(timeout)


def run(fn: Callable[[], Any], timeout: float = 60) -> Any:
    """Run ``fn`` on the writer thread and wait for its result."""
    return writer().run(fn).result(timeout)
