"""Benchmark (not a test): click-to-result of a dice bet over Reflex's real websocket,
with N players at once, against a bare event round trip on the same connections.

  .venv/bin/python bench/ws_bets.py [--players 200 [50 ...]] [--bets 20] [--noops 20]
                                    [--think 0] [--warmup 1] [--postgres]

Starts the real app (``casino run``, production build) on a free port with its own
temporary data folder (SQLite; ``--postgres``: a private PostgreSQL cluster), creates the
players, their sessions and FUN balances directly through the services in this process
(same databases as the app), then runs one scenario per ``--players`` value. In each
scenario every simulated player opens a Socket.IO websocket at ``/_event`` the way the
browser does (hydrate in the CONNECT packet, its session token as the ``hh_session``
localStorage value, the dice page's on_load chain: require_player, WalletState.load,
GameState.open_game("dice"); the protocol client is tests/support/reflex_client.py, shared
with the security suite), then, all players together:

  1. ``--noops`` bare events each: ``GameState.edit_amount`` (what typing in the amount
     box sends: sets one string var, no database). A handler that changes nothing gets no
     answer at all in Reflex 0.10 (no delta, no "final" message), so it cannot be timed.
  2. ``--bets`` bets each: ``GameState.bet(bet_key)`` with a fresh key per click, timed
     from the emit to the delta that carries the result (``result_seq``).

Each player waits for its answer (plus a random think time around ``--think`` seconds)
before the next click: a closed loop, so with no think time the server is saturated and
latency ~ N / throughput. The bench's own socket clients share the machine with the app.
Prints per scenario p50/p99 of both, events/s, and p99(bet)/p99(bare). At the end checks
that the bets in the ledger database are exactly the bets acknowledged (by id), that each
player's last shown FUN balance is the ledger's, and that ``ledger.check_invariants`` is
clean. Reflex compiles into the shared ``.web`` folder: the start holds /tmp/hh-web.lock
(flock) until the app answers, then releases it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import fcntl
import json
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support import reflex_client as rc  # noqa: E402
from tests.support.services import (  # noqa: E402
    AppFailed,
    free_port,
    start_casino,
    stop_casino,
)

LOCK = "/tmp/hh-web.lock"
PAGE = "/games/dice"
SESSION_STATE = rc.SESSION_STATE
WALLET_STATE = f"{rc.ROOT_STATE}.casino_app___ui___state___wallet____wallet_state"
GAME_STATE = f"{rc.ROOT_STATE}.casino_app___ui___state___games____game_state"
BET = f"{GAME_STATE}.bet"
BARE = f"{GAME_STATE}.edit_amount"
UA = "Mozilla/5.0 (X11; Linux x86_64) hh-bench/ws_bets"
PASSWORD = "bench pass phrase"  # noqa: S105 - throwaway accounts in a temporary database
EVENT_TIMEOUT = 120.0
v = rc.v


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def ms(x: float) -> str:
    return f"{x * 1000:.0f} ms" if x >= 0.0995 else f"{x * 1000:.1f} ms"


# --- the app ----------------------------------------------------------------------------

def app_env(tmp: Path, port: int, db_urls: dict[str, str]) -> dict[str, str]:
    env = {k: val for k, val in os.environ.items()
           if not k.startswith("CASINO_") and k != "REFLEX_REDIS_URL"}
    env.update({
        "CASINO_DATA_DIR": str(tmp / "data"),
        "CASINO_PORT": str(port),
        "CASINO_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "CASINO_ENCRYPTION_KEYS": "bench:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        # measured here: the cost of a bet, not the limits in front of it
        "CASINO_RATE_BETS_PLAYER": "100000/second",
        "CASINO_RATE_REGISTER_IP": "100000/minute",
        "CASINO_FUN_TOPUP_AMOUNT": str(10**9),
        **db_urls,
    })
    return env


def adopt_env(env: dict[str, str]) -> None:
    """Point this process at the app's settings (its databases): the CASINO_* variables
    of ``env`` only, with the cached settings and engines forgotten."""
    for k in [k for k in os.environ if k.startswith("CASINO_")]:
        del os.environ[k]
    os.environ.update({k: val for k, val in env.items() if k.startswith("CASINO_")})
    from casino_app.core.db import reset_databases
    from casino_app.core.settings import reset_settings_cache

    reset_settings_cache()
    reset_databases()


def start_app(env: dict[str, str], port: int, log: Path):  # noqa: ANN201
    """``casino run`` on the port; the .web lock is held only until it answers."""
    url = f"http://127.0.0.1:{port}"
    fd = os.open(LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    t0 = time.perf_counter()
    fcntl.flock(fd, fcntl.LOCK_EX)
    waited = time.perf_counter() - t0
    try:
        try:
            proc = start_casino(env, port, log, ROOT)
        except AppFailed as exc:
            raise SystemExit(str(exc)) from None
        boot = rc.Boot.from_build(ROOT)  # the build the app serves, read under the lock
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    print(f"app up on {url} (waited {waited:.0f} s for the .web lock, "
          f"{time.perf_counter() - t0 - waited:.0f} s to build and start)")
    return proc, url, boot


# --- players (created through the services, in this process) ---------------------------

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


# --- one simulated browser tab ----------------------------------------------------------

class Tab(rc.Tab):
    """One simulated player's tab (tests/support/reflex_client.py), with the figures the
    bench reports."""

    def __init__(self, url: str, account: Account, boot: rc.Boot, page: str = PAGE) -> None:
        super().__init__(url, account.token, page, boot, user_agent=UA, timeout=EVENT_TIMEOUT,
                         keep_log=False)
        self.account = account
        self.bet_ids: list[int] = []
        self.refused: list[str] = []
        self.bytes_bet = 0
        self.bytes_bare = 0
        self.hydrate_msgs = 0
        self.hydrate_bytes = 0
        self.bares = 0

    def _merge(self, update: dict) -> None:
        if not self.hydrated:  # still connecting: the hydrate and the on_load chain
            self.hydrate_msgs += 1
            self.hydrate_bytes += len(json.dumps(update))
        super()._merge(update)

    async def open(self) -> float:  # type: ignore[override]
        """Connect on the page and wait for its on_load chain; the player must be signed
        in (and, on the dice page, the dice game open)."""
        dt = await super().open()
        game = self.seen.get(GAME_STATE, {})
        if not self.seen.get(SESSION_STATE, {}).get(v("signed_in")) or \
                (self.page == PAGE and game.get(v("game")) != "dice"):
            raise RuntimeError(f"not on {self.page} signed in: {self.seen.get(SESSION_STATE)}")
        return dt

    async def _send(self, name: str, payload: dict[str, Any], match) -> tuple[float, dict]:  # noqa: ANN001
        t0 = await self.emit(name, payload)
        t, update = await self.until(match)
        return t - t0, update

    async def bare(self) -> float:
        self.bares += 1
        text = "1.0" if self.bares % 2 else "1.00"  # always a change: a delta to time

        def match(u: dict) -> bool:
            return (u.get("delta") or {}).get(GAME_STATE, {}).get(v("amount")) == text

        dt, update = await self._send(BARE, {"text": text}, match)
        if not self.bytes_bare:
            self.bytes_bare = len(json.dumps(update))
        return dt

    async def bet(self) -> float | None:
        def match(u: dict) -> bool:
            g = (u.get("delta") or {}).get(GAME_STATE, {})
            return bool(g.get(v("error"))) or v("result_seq") in g

        dt, update = await self._send(BET, {"bet_key": secrets.token_hex(16)}, match)
        g = update["delta"][GAME_STATE]
        if g.get(v("error")):
            self.refused.append(g[v("error")])
            return None
        self.bet_ids.append(int(g[v("result_id")]))
        self.bytes_bet = len(json.dumps(update))  # the last one: "rows" grows to 50 bets
        return dt

    def shown_fun(self) -> str | None:
        return (self.seen.get(WALLET_STATE, {}).get(v("balances")) or {}).get("FUN")


# --- a scenario -------------------------------------------------------------------------

@dataclass
class Result:
    n: int
    hydrate: list[float]
    bare: list[float]
    bets: list[float]
    bare_wall: float
    bet_wall: float
    failures: int
    tabs: list[Tab]


async def scenario(url: str, accounts: list[Account], boot, a: argparse.Namespace) -> Result:  # noqa: ANN001
    tabs = [Tab(url, acc, boot) for acc in accounts]
    gate = asyncio.Semaphore(a.connect_concurrency)

    async def open_tab(tab: Tab) -> float:
        async with gate:
            return await tab.open()

    hydrate = await asyncio.gather(*(open_tab(t) for t in tabs))
    failures = 0
    for _ in range(a.warmup):  # untimed (a player's first bet also creates its seed pair)
        await asyncio.gather(*(t.bare() for t in tabs))
        await asyncio.gather(*(t.bet() for t in tabs))

    async def pause(first: bool = False) -> None:
        """Think time, random so that the players do not click in waves: a first pause
        in [0, think), then think x [0.5, 1.5)."""
        if a.think:
            await asyncio.sleep(a.think * (random.random() if first else 0.5 + random.random()))

    async def bare_loop(tab: Tab) -> list[float]:
        nonlocal failures
        out = []
        await pause(first=True)
        for _ in range(a.noops):
            try:
                out.append(await tab.bare())
            except TimeoutError:
                failures += 1
            await pause()
        return out

    async def bet_loop(tab: Tab) -> list[float]:
        nonlocal failures
        out = []
        await pause(first=True)
        for _ in range(a.bets):
            try:
                dt = await tab.bet()
            except TimeoutError:
                failures += 1
                continue
            if dt is None:
                failures += 1
            else:
                out.append(dt)
            await pause()
        return out

    t0 = time.perf_counter()
    bare = [x for xs in await asyncio.gather(*(bare_loop(t) for t in tabs)) for x in xs]
    bare_wall = time.perf_counter() - t0
    t0 = time.perf_counter()
    bets = [x for xs in await asyncio.gather(*(bet_loop(t) for t in tabs)) for x in xs]
    bet_wall = time.perf_counter() - t0
    await asyncio.gather(*(t.sio.disconnect() for t in tabs))
    await asyncio.sleep(0.25)  # let aiohttp close its sessions inside the loop
    return Result(len(tabs), hydrate, bare, bets, bare_wall, bet_wall, failures, tabs)


def report(r: Result, think: float) -> None:
    tabs = r.tabs
    mean = statistics.fmean
    print(f"\nN={r.n} players, think time {think:g} s"
          + ("  [backend said state_mismatch]" if any(t.mismatch for t in tabs) else ""))
    print(f"  connect + hydrate + on_load (dice page): p50 {ms(statistics.median(r.hydrate))}, "
          f"p99 {ms(pct(r.hydrate, 0.99))}; {mean(t.hydrate_msgs for t in tabs):.1f} messages, "
          f"{mean(t.hydrate_bytes for t in tabs) / 1024:.0f} KiB per tab")
    print(f"  bare event (edit_amount): {len(r.bare)} events, p50 {ms(statistics.median(r.bare))}, "
          f"p99 {ms(pct(r.bare, 0.99))}, {len(r.bare) / r.bare_wall:.0f} events/s, "
          f"answer {mean(t.bytes_bare for t in tabs):.0f} B")
    print(f"  bet (dice, 1 FUN):        {len(r.bets)} bets,   p50 {ms(statistics.median(r.bets))}, "
          f"p99 {ms(pct(r.bets, 0.99))}, {len(r.bets) / r.bet_wall:.0f} bets/s, "
          f"last answer {mean(t.bytes_bet for t in tabs):.0f} B")
    ratio = pct(r.bets, 0.99) / pct(r.bare, 0.99)
    print(f"  p99(bet) / p99(bare) = {ratio:.2f}  (target <= 1.5: "
          f"{'met' if ratio <= 1.5 else 'NOT met'});  p50 ratio "
          f"{statistics.median(r.bets) / statistics.median(r.bare):.2f}")
    refused = [m for t in tabs for m in t.refused]
    if r.failures:
        print(f"  FAILURES: {r.failures} (refused: {refused[:3]})")


def verify(results: list[Result]) -> bool:
    from sqlalchemy import func, select

    from casino_app.core.db import ledger_tx
    from casino_app.games.models import Bet
    from casino_app.payments import ledger
    from casino_app.payments.currencies import currency

    tabs = [t for r in results for t in r.tabs]
    acked = [i for t in tabs for i in t.bet_ids]
    players = sorted({t.account.player_id for t in tabs})
    with ledger_tx(readonly=True) as s:
        in_db = set(s.execute(select(Bet.id).where(Bet.player_id.in_(players))).scalars())
        total = s.execute(select(func.count()).select_from(Bet)).scalar_one()
        findings = ledger.check_invariants(s)
        balances = {p: ledger.player_balances(s, p).get("FUN") for p in players}
    fun = currency("FUN")
    last_tab = {t.account.player_id: t for t in tabs}  # the later scenario's tab
    wrong = [p for p, t in last_tab.items() if t.bet_ids and
             t.shown_fun() != fun.format(balances[p].available if balances[p] else 0)]
    bad = [f for f in findings if f.violations]
    ok = len(acked) == len(set(acked)) and set(acked) == in_db and total == len(in_db) \
        and not bad and not wrong
    print(f"\nledger: {len(in_db)} bets stored, {len(acked)} acknowledged over the websocket "
          f"({'the same ids' if set(acked) == in_db else 'DIFFERENT'}); "
          f"{total} bets in all; last shown FUN balance = ledger for "
          f"{len(last_tab) - len(wrong)}/{len(last_tab)} players; invariants: "
          + ("clean" if not bad else "; ".join(f"{f.check}: {f.violations} {f.examples}"
                                              for f in bad)))
    return ok


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--players", type=int, nargs="+", default=[200],
                   help="one scenario per value, run in this order on one app")
    p.add_argument("--bets", type=int, default=20, help="bets per player")
    p.add_argument("--noops", type=int, default=20, help="bare events per player")
    p.add_argument("--think", type=float, default=0.0,
                   help="mean seconds a player waits after each answer (0: closed loop)")
    p.add_argument("--warmup", type=int, default=1,
                   help="untimed bare events and bets per player first (still checked)")
    p.add_argument("--connect-concurrency", type=int, default=25)
    p.add_argument("--postgres", action="store_true")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder")
    a = p.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="hh-wsbench-"))
    cluster = None
    db_urls: dict[str, str] = {}
    if a.postgres:
        from tests.support.services import PgCluster

        cluster = PgCluster(fsync=True).start()
        db_urls = {"CASINO_IDENTITY_DB_URL": cluster.create_database("bench_id"),
                   "CASINO_LEDGER_DB_URL": cluster.create_database("bench_led")}
    port = free_port()
    env = app_env(tmp, port, db_urls)
    adopt_env(env)
    proc = None
    try:
        from casino_app.core.logging import configure_logging
        from casino_app.migrations import upgrade_all

        configure_logging("WARNING", True)
        upgrade_all()  # before the app starts, so the two never migrate at once
        t0 = time.perf_counter()
        accounts = create_players(max(a.players))
        print(f"database: {'postgres (fsync on)' if a.postgres else 'sqlite'}; "
              f"{len(accounts)} players registered, signed in and topped up in "
              f"{time.perf_counter() - t0:.0f} s")
        proc, url, boot = start_app(env, port, tmp / "app.log")
        results = []
        for n in a.players:
            r = asyncio.run(scenario(url, accounts[:n], boot, a))
            report(r, a.think)
            results.append(r)
        ok = verify(results) and not any(r.failures for r in results)
        with open("/proc/loadavg") as fh:
            print(f"load average at the end: {' '.join(fh.read().split()[:3])} "
                  f"({os.cpu_count()} cores, shared with other work)")
        if not ok:
            raise SystemExit("verification FAILED")
    finally:
        if proc is not None:
            stop_casino(proc)
        if cluster is not None:
            cluster.destroy()
        if not a.keep:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"kept {tmp}")


if __name__ == "__main__":
    main()
