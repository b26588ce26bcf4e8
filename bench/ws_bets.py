"""Benchmark (not a test): dice bets over Reflex's real websocket, OPEN loop at fixed
arrival rates, against two floors measured in the same run on the same machine.

  .venv/bin/python bench/ws_bets.py [--players 200] [--rates 25,50,100,150,200,300,400]
        [--seconds 10] [--workers 1,2] [--sqlite] [--single-rate 2 --single-seconds 20]

PostgreSQL by default (a private cluster, fsync on: the production set-up, its WAL
segments made beforehand and recycled as on a server in service: ``recycle_wal``);
``--sqlite``: the embedded default. Starts the real app (``casino run``, production build, one port)
under the /tmp/hh-web.lock flock (held until it answers), creates the players, sessions
and FUN balances through the services in this process, and connects every player as a
browser tab does (tests/support/reflex_client.py: hydrate in the CONNECT packet, the dice
page's on_load chain). The floors: bench/echo_server.py (bare Starlette + python-socketio
on granian, started and stopped here), and ``GameState.edit_amount`` (a Reflex event that
changes one string var; each tab alternates two texts, since a handler that changes
nothing gets no answer). The bet is ``GameState.bet(bet_key)`` (fresh key per click).

Open loop: at a total rate R over N clients, event j is planned at t0 + j/R and sent by
client j mod N (player i at offsets i/R + k*N/R). Latency runs from the PLANNED time to
the answer's arrival (no coordinated omission: a late sender counts against the figure);
a phase waits up to ``--drain`` s after its last send for its answers.
A tab sends on schedule even when its earlier events are unanswered: Reflex queues a
tab's events and runs them one at a time in order (a real browser would hold them back;
either way the wait counts), so answers are matched to requests first-in first-out. An
answer missing after the drain time counts as infinitely late (p99 "inf").

For each worker set-up (``--workers``; 2 = two granian workers on a private Redis, the
Reflex state manager for several workers), it measures one player at ``--single-rate``
bets/s (its p99 is ``single``), then steps the rate up: at each rate the echo, the Reflex
event and the bet, each for ``--seconds``. The knee is the highest rate whose bet p99 is
<= min(3 x single, single + 25 ms). It stops after the first rate at or above the target
rate (players x 1 bet/s) that misses it. CPU: the app's process tree, the database
server's and the echo server's (psutil, user + system over each phase) and the bench's
own (process_time: it shares the 2 cores), per event. The target: bet p99 <= 2 x the
Reflex event's p99 at the target rate, on one worker. At the end: acknowledged bets =
ledger bets (by id), last shown FUN balance = ledger's, ``ledger.check_invariants`` clean;
then everything it started is stopped and checked gone. The last line is

  knee_bets_per_s=<n> bet_p99_ms=<n> reflex_event_p99_ms=<n> echo_p99_ms=<n> cpu_ms_per_bet=<x.x>

(one worker; the p99s and the app's CPU per bet at the target rate).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import fcntl
import gc
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support import reflex_client as rc  # noqa: E402
from tests.support.services import (  # noqa: E402
    AppFailed,
    PgCluster,
    RedisServer,
    app_base_env,
    free_port,
    start_casino,
    stop_casino,
    web_workers_env,
)

LOCK = "/tmp/hh-web.lock"
PAGE = "/games/dice"
WALLET_STATE = f"{rc.ROOT_STATE}.casino_app___ui___state___wallet____wallet_state"
GAME_STATE = f"{rc.ROOT_STATE}.casino_app___ui___state___games____game_state"
BET = f"{GAME_STATE}.bet"
EDIT = f"{GAME_STATE}.edit_amount"
UA = "Mozilla/5.0 (X11; Linux x86_64) hh-bench/ws_bets"
PASSWORD = "bench pass phrase"  # noqa: S105 - throwaway accounts in a temporary database
v = rc.v
INF = float("inf")
KEYS = "bench:" + base64.b64encode(secrets.token_bytes(32)).decode()


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else INF


def ms(x: float) -> str:
    return "inf" if x == INF else f"{x * 1000:.0f}" if x >= 0.0995 else f"{x * 1000:.1f}"


# --- what the bench starts, and stops whatever happens ----------------------------------

class Stack:
    """Every process and folder the bench starts; ``close`` stops them all (idempotent)
    and returns what is still alive afterwards (should be nothing)."""

    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="hh-wsbench-"))
        self.cluster: PgCluster | None = None
        self.redis: RedisServer | None = None
        self.app: subprocess.Popen | None = None
        self.echo: subprocess.Popen | None = None
        # by group (app, echo, redis, db): pid -> create_time of each process seen
        self.seen: dict[str, dict[int, float]] = {}
        self.ever: set[int] = set()
        self.pending_kills: list[str] = []  # what stop_app had to kill

    def remember(self, group: str, pid: int | None) -> list[psutil.Process]:
        """The process tree of ``pid`` (noted, to check later that it is gone)."""
        if pid is None:
            return []
        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []
        for p in procs:
            try:
                self.seen.setdefault(group, {})[p.pid] = p.create_time()
                self.ever.add(p.pid)
            except psutil.NoSuchProcess:
                pass
        return procs

    def pg_pid(self) -> int | None:
        try:
            return int((self.cluster.datadir / "postmaster.pid").read_text().split()[0])
        except (AttributeError, OSError, ValueError, IndexError):
            return None

    def stop_app(self) -> None:
        if self.app is not None:
            self.remember("app", self.app.pid)
            stop_casino(self.app)
            self.app = None
            self.pending_kills += self.kill_leftovers("app", grace=10)

    def kill_leftovers(self, group: str, grace: float) -> list[str]:
        """Wait up to ``grace`` s for the group's processes to exit, SIGKILL the rest."""
        procs = []
        for pid, created in self.seen.pop(group, {}).items():
            try:
                p = psutil.Process(pid)
                if p.create_time() == created and p.status() != psutil.STATUS_ZOMBIE:
                    procs.append(p)  # (a different create_time: the pid was reused)
            except psutil.NoSuchProcess:
                pass
        _, alive = psutil.wait_procs(procs, timeout=grace)
        left = []
        for p in alive:
            try:
                p.kill()
                left.append(f"{p.pid} (killed)")
            except psutil.NoSuchProcess:
                pass
        return [f"{group} {x}" for x in left]

    def close(self, keep: bool = False) -> list[str]:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not cut the cleanup
        steps = [self.stop_app, self._stop_echo, self._stop_redis, self._stop_db]
        for step in steps:
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - the next steps must still run
                print(f"cleanup: {step.__name__} failed: {exc!r}")
        if keep:
            print(f"kept {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)
        return self.pending_kills + [x for g in list(self.seen)
                                     for x in self.kill_leftovers(g, grace=10)]

    def _stop_echo(self) -> None:
        if self.echo is not None:
            self.remember("echo", self.echo.pid)
            os.killpg(self.echo.pid, signal.SIGTERM)
            try:
                self.echo.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.echo.pid, signal.SIGKILL)
            self.echo = None

    def _stop_redis(self) -> None:
        if self.redis is not None:
            self.remember("redis", self.redis.proc.pid if self.redis.proc else None)
            self.redis.stop()
            self.redis = None

    def _stop_db(self) -> None:
        if self.cluster is not None:
            self.remember("db", self.pg_pid())
            from casino_app.core.db import reset_databases

            reset_databases()  # drop this process's pooled connections first
            self.cluster.destroy()
            self.cluster = None


def cpu_of(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


# --- the app and the echo server --------------------------------------------------------

def app_env(tmp: Path, port: int, db_urls: dict[str, str], redis_url: str,
            workers: int) -> dict[str, str]:
    env = app_base_env()
    env.update({
        "CASINO_DATA_DIR": str(tmp / "data"),
        "CASINO_PORT": str(port),
        "CASINO_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "CASINO_ENCRYPTION_KEYS": KEYS,  # one for the run: every app opens the same seeds
        # measured here: the cost of a bet, not the limits in front of it
        "CASINO_RATE_BETS_PLAYER": "100000/second",
        "CASINO_RATE_REGISTER_IP": "100000/minute",
        "CASINO_FUN_TOPUP_AMOUNT": str(10**9),
        # this checkout's code, even when the venv's editable install points elsewhere
        "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
        **db_urls,
        **web_workers_env(redis_url, workers),
    })
    return env


def adopt_env(env: dict[str, str]) -> None:
    """Point this process at the app's databases (CASINO_* only), caches forgotten."""
    for k in [k for k in os.environ if k.startswith("CASINO_")]:
        del os.environ[k]
    os.environ.update({k: val for k, val in env.items() if k.startswith("CASINO_")})
    from casino_app.core.db import reset_databases
    from casino_app.core.settings import reset_settings_cache

    reset_settings_cache()
    reset_databases()


def start_app(stack: Stack, env: dict[str, str], port: int) -> rc.Boot:
    """``casino run`` on the port; the .web lock is held only until it answers."""
    fd = os.open(LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    t0 = time.perf_counter()
    fcntl.flock(fd, fcntl.LOCK_EX)
    waited = time.perf_counter() - t0
    try:
        stack.app = start_casino(env, port, stack.tmp / f"app-{port}.log", ROOT)
        boot = rc.Boot.from_build(ROOT)  # the build the app serves, read under the lock
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    n = len(stack.remember("app", stack.app.pid))
    print(f"app up on :{port} ({n} processes; waited {waited:.0f} s for the .web lock, "
          f"{time.perf_counter() - t0 - waited:.0f} s to build and start)", flush=True)
    return boot


def start_echo(stack: Stack) -> str:
    port = free_port()
    log = (stack.tmp / "echo.log").open("wb")
    stack.echo = subprocess.Popen(  # noqa: S603
        [str(Path(sys.executable).parent / "granian"), "--interface", "asgi", "--host",
         "127.0.0.1", "--port", str(port), "--workers", "1", "--no-log", "echo_server:app"],
        cwd=ROOT / "bench", stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    import httpx

    deadline = time.time() + 60
    while time.time() < deadline and stack.echo.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=1).text == "pong":
                stack.remember("echo", stack.echo.pid)
                return f"http://127.0.0.1:{port}"
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError("the echo server did not start: " + (stack.tmp / "echo.log").read_text())


# --- players and clients ----------------------------------------------------------------

@dataclass
class Account:
    player_id: str
    token: str


def create_players(n: int) -> list[Account]:
    from casino_app.payments import demo
    from casino_app.users import accounts
    from casino_app.users.sessions import RequestContext
    from tests.support.signup import sign_up

    ctx = RequestContext("127.0.0.1", UA)
    run = secrets.token_hex(3)

    def one(i: int) -> Account:
        token = sign_up(email_addr=f"ws{run}-{i}@example.com", password=PASSWORD,
                        display_name=f"Bench {i}", date_of_birth="1990-01-01", ctx=ctx)
        me = accounts.current_user(token)
        assert me is not None
        demo.top_up_fun(me.player_id, f"bench-topup-{i:06d}")
        return Account(me.player_id, token)

    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(one, range(n)))


@dataclass
class Phase:
    """One timed phase: ``kind`` events at ``rate``/s; latencies from the planned time."""

    kind: str
    rate: float
    sent: int = 0
    lat: list[float] = field(default_factory=list)
    planned: list[float] = field(default_factory=list)  # of each latency in ``lat``
    refused: list[str] = field(default_factory=list)
    late_send: list[float] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)  # seconds per event, by process
    closed: bool = False  # past its drain time: later answers no longer count

    def p(self, q: float) -> float:
        missing = self.sent - len(self.lat)  # unanswered or refused: infinitely late
        return pct(self.lat + [INF] * missing, q)

    def answer(self, planned: float, t: float, refused: str = "") -> None:
        if self.closed:
            return
        if refused:
            self.refused.append(refused)
        else:
            self.lat.append(t - planned)
            self.planned.append(planned)

    def slowest(self, n: int) -> str:
        """The ``n`` slowest answers: planned time (s after the first) and latency."""
        if not self.planned:
            return ""
        t0 = min(self.planned)
        worst = sorted(zip(self.lat, self.planned, strict=True), reverse=True)[:n]
        at = time.time() - (time.perf_counter() - t0)  # the first's wall-clock time
        return f"(first at {at:.3f}) " + ", ".join(
            f"{p - t0:.2f}s:{lat * 1000:.0f}ms" for lat, p in worst)


class Client:
    """What a phase drives: ``pending[kind]`` holds (planned time, phase) first-in
    first-out; an answer pops the oldest."""

    def __init__(self) -> None:
        self.pending: dict[str, deque[tuple[float, Phase]]] = {
            k: deque() for k in ("echo", "event", "bet")}

    def _answered(self, kind: str, t: float, refused: str = "") -> None:
        if self.pending[kind]:
            planned, phase = self.pending[kind].popleft()
            phase.answer(planned, t, refused)

    async def send(self, kind: str) -> None:
        raise NotImplementedError


class EchoClient(Client):
    def __init__(self, url: str) -> None:
        import socketio

        super().__init__()
        self.url = url
        self.sio = socketio.AsyncClient(reconnection=False)
        self.sio.on("event", lambda _u: self._answered("echo", time.perf_counter()),
                    namespace=rc.NAMESPACE)
        self.n = 0

    async def open(self) -> None:
        await self.sio.connect(self.url, socketio_path=rc.SOCKETIO_PATH,
                               namespaces=[rc.NAMESPACE], transports=["websocket"])

    async def send(self, kind: str) -> None:
        self.n += 1
        await self.sio.emit("event", {"name": "echo", "payload": {"n": self.n},
                                      "router_data": rc.router_data(PAGE)},
                            namespace=rc.NAMESPACE)


class Tab(rc.Tab, Client):
    """One player's tab on the dice page (tests/support/reflex_client.py). Once open,
    answers are handled as they arrive: an update whose GameState delta has ``amount`` is
    the answer to the oldest edit, one with ``result_seq`` or ``error`` to the oldest bet."""

    def __init__(self, url: str, account: Account, boot: rc.Boot) -> None:
        rc.Tab.__init__(self, url, account.token, PAGE, boot, user_agent=UA, keep_log=False)
        Client.__init__(self)
        self.account = account
        self.bet_ids: list[int] = []
        self.live = False
        self.last_text = ""

    async def open(self) -> float:  # type: ignore[override]
        dt = await super().open()
        if not self.var(rc.SESSION_STATE, "signed_in") or self.var(GAME_STATE, "game") != "dice":
            raise RuntimeError(f"not signed in on {PAGE}: {self.seen.get(rc.SESSION_STATE)}")
        await self.drain()
        self.last_text = self.var(GAME_STATE, "amount", "")
        self.live = True
        return dt

    def _on_event(self, update: Any) -> None:
        if not self.live:
            return super()._on_event(update)
        t = time.perf_counter()
        if isinstance(update, str):
            update = json.loads(update)
        self._merge(update)
        g = (update.get("delta") or {}).get(GAME_STATE, {})
        if v("amount") in g:
            self._answered("event", t)
        elif v("result_seq") in g or g.get(v("error")):
            if g.get(v("error")):
                self._answered("bet", t, g[v("error")])
            else:
                self.bet_ids.append(int(g[v("result_id")]))
                self._answered("bet", t)
        return None

    async def send(self, kind: str) -> None:
        if kind == "bet":
            await self.emit(BET, {"bet_key": secrets.token_hex(16)})
        else:  # always a change, so always an answer; both are 1 FUN for the bets
            self.last_text = "1.00" if self.last_text == "1.0" else "1.0"
            await self.emit(EDIT, {"text": self.last_text})

    def shown_fun(self) -> str | None:
        return (self.var(WALLET_STATE, "balances") or {}).get("FUN")


# --- phases and the sweep ---------------------------------------------------------------

async def run_phase(clients: list[Client], kind: str, rate: float, seconds: float,
                    watch: dict[str, list[psutil.Process]], drain: float) -> Phase:
    ph = Phase(kind, rate, sent=max(1, round(rate * seconds)))
    before = {k: cpu_of(p) for k, p in watch.items()}
    gen0 = time.process_time()
    t0 = time.perf_counter() + 0.05
    for j in range(ph.sent):
        planned = t0 + j / rate
        if (d := planned - time.perf_counter()) > 0:
            await asyncio.sleep(d)
        c = clients[j % len(clients)]
        ph.late_send.append(time.perf_counter() - planned)
        c.pending[kind].append((planned, ph))
        await c.send(kind)
    deadline = time.perf_counter() + drain
    while len(ph.lat) + len(ph.refused) < ph.sent and time.perf_counter() < deadline:
        await asyncio.sleep(0.02)
    ph.closed = True
    ph.cpu = {k: (cpu_of(p) - before[k]) / ph.sent for k, p in watch.items()}
    ph.cpu["bench"] = (time.process_time() - gen0) / ph.sent
    return ph


def describe(ph: Phase) -> str:
    cpu = ", ".join(f"{k} {val * 1000:.1f}" for k, val in ph.cpu.items())
    lost = ph.sent - len(ph.lat)
    return (f"{ph.kind} p50/p99 {ms(ph.p(0.5))}/{ms(ph.p(0.99))} ms"
            + (f" ({lost} of {ph.sent} unanswered or refused{': ' if ph.refused else ''}"
               f"{'; '.join(sorted(set(ph.refused))[:3])})" if lost else "")
            + f"; CPU ms/{ph.kind}: {cpu}")


@dataclass
class Sweep:
    workers: int
    single: Phase
    limit: float
    steps: list[dict[str, Phase]] = field(default_factory=list)

    @property
    def knee(self) -> float:
        ok = [s["bet"].rate for s in self.steps if s["bet"].p(0.99) <= self.limit]
        return max(ok, default=0)

    def at(self, rate: float) -> dict[str, Phase] | None:
        return next((s for s in self.steps if s["bet"].rate == rate), None)


async def sweep(stack: Stack, url: str, echo_url: str, boot: rc.Boot, accounts: list[Account],
                a: argparse.Namespace, workers: int, target: float) -> tuple[Sweep, list[Tab]]:
    tabs = [Tab(url, acc, boot) for acc in accounts]
    echoes = [EchoClient(echo_url) for _ in accounts]
    gate = asyncio.Semaphore(25)

    async def opened(c: Client) -> None:
        async with gate:
            await c.open()

    t0 = time.perf_counter()
    await asyncio.gather(*(opened(c) for c in [*tabs, *echoes]))
    print(f"{len(tabs)} tabs hydrated on {PAGE} and {len(echoes)} echo clients connected "
          f"in {time.perf_counter() - t0:.0f} s", flush=True)
    watch = {k: stack.remember(k, pid) for k, pid in
             (("app", stack.app.pid), ("db", stack.pg_pid()), ("echo", stack.echo.pid))}
    watch = {k: p for k, p in watch.items() if p}
    warm = min(50.0, len(tabs))  # untimed: each tab's first bet also makes its seed pair
    for kind in ("event", "bet"):
        await run_phase(tabs, kind, warm, len(tabs) / warm, watch, a.drain)
    # The load generator must not be what is measured: its 200 clients hold ~100,000
    # objects, and a full garbage collection over them paused it for 125-165 ms (answers
    # then count as late). Frozen while the sweep runs, as casino run freezes its own.
    gc.collect()
    gc.freeze()
    single = await run_phase(tabs[:1], "bet", a.single_rate, a.single_seconds, watch, a.drain)
    s = single.p(0.99)
    if s == INF:
        raise RuntimeError(f"one player's bets went unanswered: {describe(single)}")
    sw = Sweep(workers, single, min(3 * s, s + 0.025))
    print(f"one player at {a.single_rate:g} bets/s: {describe(single)}\n"
          f"knee limit: bet p99 <= min(3 x {ms(s)}, {ms(s)} + 25) = {ms(sw.limit)} ms",
          flush=True)
    rates = sorted({*a.rates, target})
    for rate in rates:
        step = {"echo": await run_phase(echoes, "echo", rate, a.seconds, watch, a.drain),
                "event": await run_phase(tabs, "event", rate, a.seconds, watch, a.drain),
                "bet": await run_phase(tabs, "bet", rate, a.seconds, watch, a.drain)}
        sw.steps.append(step)
        bet = step["bet"]
        ok = bet.p(0.99) <= sw.limit
        lag = pct(bet.late_send, 0.99)
        print(f"{rate:g}/s ({workers} worker{'s' * (workers > 1)}): bet p99 "
              f"{ms(bet.p(0.99))} ms {'<=' if ok else '>'} {ms(sw.limit)}: "
              f"{'within' if ok else 'PAST'} the knee (sender late p99 {ms(lag)} ms)\n"
              + "".join(f"    {describe(step[k])}\n" for k in ("echo", "event", "bet"))
              + (f"    slowest bets: {bet.slowest(a.slowest)}\n" if a.slowest else ""),
              end="", flush=True)
        if not ok and rate >= target:
            break
    deadline = time.perf_counter() + 120  # every answer back before the ledger check
    while any(t.pending["bet"] for t in tabs) and time.perf_counter() < deadline:
        await asyncio.sleep(0.1)
    await asyncio.gather(*(c.sio.disconnect() for c in [*tabs, *echoes]))
    await asyncio.sleep(0.25)  # let aiohttp close its sessions inside the loop
    for c in [*tabs, *echoes]:
        c.sio = None  # type: ignore[assignment]  # freed while the loop still runs
    gc.unfreeze()
    gc.collect()
    return sw, tabs


def summary(sw: Sweep, target: float) -> None:
    name = f"{sw.workers} worker{'s on Redis' if sw.workers > 1 else ''}"
    print(f"\n{name}: knee {sw.knee:g} bets/s (single-player p99 {ms(sw.single.p(0.99))} ms, "
          f"limit {ms(sw.limit)} ms)")
    st = sw.at(target)
    if st is None:
        return
    bet, ev, echo = st["bet"], st["event"], st["echo"]
    ratio = bet.p(0.99) / ev.p(0.99)
    print(f"  at the target {target:g} bets/s: bet p99 {ms(bet.p(0.99))} ms, Reflex event p99 "
          f"{ms(ev.p(0.99))} ms, echo p99 {ms(echo.p(0.99))} ms; bet/event p99 "
          f"{ratio:.2f} (target <= 2: {'met' if ratio <= 2 else 'NOT met'}); CPU per bet: "
          + ", ".join(f"{k} {val * 1000:.1f} ms" for k, val in bet.cpu.items()))


def verify(tabs: list[Tab]) -> bool:
    from sqlalchemy import func, select

    from casino_app.core.db import ledger_tx
    from casino_app.games.models import Bet
    from casino_app.payments import ledger
    from casino_app.payments.currencies import currency

    acked = [i for t in tabs for i in t.bet_ids]
    players = sorted({t.account.player_id for t in tabs})
    with ledger_tx(readonly=True) as s:
        in_db = set(s.execute(select(Bet.id).where(Bet.player_id.in_(players))).scalars())
        total = s.execute(select(func.count()).select_from(Bet)).scalar_one()
        bad = [f for f in ledger.check_invariants(s) if f.violations]
        balances = {p: ledger.player_balances(s, p).get("FUN") for p in players}
    fun = currency("FUN")
    last = {t.account.player_id: t for t in tabs}  # the last sweep's tab of each player
    wrong = [p for p, t in last.items() if t.bet_ids and
             t.shown_fun() != fun.format(balances[p].available if balances[p] else 0)]
    same = len(acked) == len(set(acked)) and set(acked) == in_db and total == len(in_db)
    print(f"\nledger: {len(in_db)} bets stored, {len(acked)} acknowledged over the websocket "
          f"({'the same ids' if same else 'DIFFERENT'}); last shown FUN balance = ledger "
          f"for {len(last) - len(wrong)}/{len(last)} players; invariants: "
          + ("clean" if not bad else "; ".join(f"{f.check}: {f.violations}" for f in bad)))
    return same and not bad and not wrong


def main() -> None:  # noqa: C901, PLR0915
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--players", type=int, default=200)
    p.add_argument("--rates", default="25,50,100,150,200,300,400",
                   type=lambda s: [float(x) for x in s.split(",")],
                   help="total bets/s to step through (the target, players x 1, is added)")
    p.add_argument("--seconds", type=float, default=10, help="per phase and rate")
    p.add_argument("--single-rate", type=float, default=2)
    p.add_argument("--single-seconds", type=float, default=20)
    p.add_argument("--drain", type=float, default=60,
                   help="seconds a phase waits for its answers after its last send")
    p.add_argument("--workers", default="1,2", type=lambda s: [int(x) for x in s.split(",")])
    p.add_argument("--sqlite", action="store_true", help="the embedded default database")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (logs)")
    p.add_argument("--slowest", type=int, default=0,
                   help="print the N slowest bets of each rate (when, how slow)")
    a = p.parse_args()

    def stop(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)
    stack = Stack()
    sweeps: list[Sweep] = []
    target = float(a.players)
    ok = False
    try:
        db_urls: dict[str, str] = {}
        if not a.sqlite:
            stack.cluster = PgCluster(fsync=True, conf={"min_wal_size": "1GB"})
            stack.cluster.start()
            stack.cluster.recycle_wal()  # WAL as on a server in service
            db_urls = {"CASINO_IDENTITY_DB_URL": stack.cluster.create_database("bench_id"),
                       "CASINO_LEDGER_DB_URL": stack.cluster.create_database("bench_led")}
        adopt_env(app_env(stack.tmp, 3000, db_urls, "", 1))
        from casino_app.core.logging import configure_logging
        from casino_app.migrations import upgrade_all

        configure_logging("WARNING", True)
        upgrade_all()  # before the app starts, so the two never migrate at once
        t0 = time.perf_counter()
        accounts = create_players(a.players)
        print(f"database: {'sqlite' if a.sqlite else 'postgres (fsync on)'}; {len(accounts)} "
              f"players registered, signed in and topped up in {time.perf_counter() - t0:.0f} s",
              flush=True)
        echo_url = start_echo(stack)
        tabs: list[Tab] = []
        for workers in a.workers:
            print(f"\n--- {workers} worker{'s' * (workers > 1)}", flush=True)
            redis_url = ""
            if workers > 1:
                stack.redis = RedisServer().start()
                redis_url = stack.redis.url
            port = free_port()
            env = app_env(stack.tmp, port, db_urls, redis_url, workers)
            try:
                boot = start_app(stack, env, port)
                sw, more = asyncio.run(sweep(stack, f"http://127.0.0.1:{port}", echo_url,
                                             boot, accounts, a, workers, target))
                sweeps.append(sw)
                tabs += more
            except (AppFailed, RuntimeError, OSError, TimeoutError) as exc:
                if workers == 1:
                    raise
                print(f"{workers}-worker mode is not available yet: `casino run` with "
                      f"GRANIAN_WORKERS={workers} on Redis failed: "
                      f"{(str(exc).strip().splitlines() or [repr(exc)])[-1]}")
            stack.stop_app()
            if stack.redis is not None:
                stack.redis.stop()
                stack.redis = None
        for sw in sweeps:
            summary(sw, target)
        ok = verify(tabs)
        with open("/proc/loadavg") as fh:
            print(f"load average at the end: {' '.join(fh.read().split()[:3])} "
                  f"({os.cpu_count()} cores, shared with other work)")
    finally:
        left = stack.close(a.keep)
        print("cleanup: app, echo server, Redis and PostgreSQL stopped, temporary folder "
              "removed; " + (f"STILL RUNNING: {left}" if left else
                             f"none of its {len(stack.ever)} processes left"),
              flush=True)
    one = next((sw for sw in sweeps if sw.workers == 1), None)
    st = one.at(target) if one else None
    if not ok or st is None:
        raise SystemExit("verification FAILED" if not ok else "no one-worker figures")
    def n(ph: Phase) -> str:
        return f"{ph.p(0.99) * 1000:.0f}"

    print(f"knee_bets_per_s={one.knee:g} bet_p99_ms={n(st['bet'])} "
          f"reflex_event_p99_ms={n(st['event'])} echo_p99_ms={n(st['echo'])} "
          f"cpu_ms_per_bet={st['bet'].cpu['app'] * 1000:.1f}")


if __name__ == "__main__":
    main()
