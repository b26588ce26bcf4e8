"""Benchmark (not a test): durable house bets per second through the public settlement call.

  .venv/bin/python bench/bets.py [--bets 20000] [--concurrency 64] [--players 1000]
                                 [--currency FUN] [--seconds 10] [--warm 30000]

Starts a private PostgreSQL cluster with fsync and synchronous_commit on (the production
setting), migrates the databases, funds ``--players`` players, and brings the process and
the server to the state of one that has been running (``--warm`` untimed bets, then a
CHECKPOINT, so the WAL segments are recycled as on a server in service rather than made
and zero-filled, 16 MB each, ~50 ms each, every few seconds at these rates; then the
start-up heap is frozen, as ``casino run`` does: core/heap.py). Then:

1. saturation: ``--concurrency`` callers each place dice bets through
   ``bets.place_bet_async`` (validation, rate limit, the settlement writer: one batch, one
   round trip, one commit for all bets waiting) until ``--bets`` are settled; bets/s,
   latency, and this process's CPU per bet;
2. ``pgbench -N -M prepared`` at the same concurrency against the same server;
3. open loop: bets arriving at a fixed rate of 70% of the saturated rate for
   ``--seconds``; the p99 of settle latency measured from each bet's planned start (no
   coordinated omission).

The last line is ``bets_per_s=<n> pgbench_tps=<n> ratio=<x.xx> p99_ms_at_70pct=<n>``.
The cluster is destroyed at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DICE = {"target": 50, "direction": "over"}


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def fund(players: list[str], currency: str, amount: int) -> None:
    from casino_app.core.db import ledger_tx
    from casino_app.games import seeds
    from casino_app.payments import ledger

    source = "faucet" if currency == "FUN" else "custody"
    with ledger_tx() as s:
        for p in players:
            ledger.transfer(s, f"fund:{p}", "deposit", ledger.house_account(s, currency, source),
                            ledger.player_account(s, p, currency), amount)
    for p in players:
        seeds.ensure(p)


async def saturate(total: int, concurrency: int, players: list[str], currency: str,
                   stake: int, tag: str) -> tuple[float, list[float], int, float]:
    """(bets/s, latencies, refusals, CPU ms per bet) of ``concurrency`` closed-loop callers."""
    from casino_app.games import bets

    latencies: list[float] = []
    refused = 0
    counter = iter(range(total))

    async def caller(c: int) -> None:
        nonlocal refused
        for n in counter:
            t = time.perf_counter()
            try:
                await bets.place_bet_async(players[n % len(players)], "dice", currency,
                                           stake, DICE, f"{tag}-{n:08d}")
            except bets.BetRefused:
                refused += 1
            latencies.append(time.perf_counter() - t)

    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(caller(c) for c in range(concurrency)))
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return total / elapsed, latencies, refused, cpu / total * 1e3


async def open_loop(rate: float, seconds: float, players: list[str], currency: str,
                    stake: int, tag: str) -> tuple[list[float], int, float]:
    """Bets arriving every 1/rate s; (latencies from the planned start, refusals, the
    achieved rate)."""
    from casino_app.games import bets

    latencies: list[float] = []
    refused = 0
    # Tasks in flight only: a list of every task of the run grows the heap by ~30,000
    # objects, and each full garbage collection then walks it (~100 ms pauses every
    # ~2.5 s, measured: they were this bench's p99, not the settlement's).
    tasks: set[asyncio.Task] = set()

    async def one(n: int, planned: float) -> None:
        nonlocal refused
        try:
            await bets.place_bet_async(players[n % len(players)], "dice", currency, stake,
                                       DICE, f"{tag}-{n:08d}")
        except bets.BetRefused:
            refused += 1
        latencies.append(time.perf_counter() - planned)

    start = time.perf_counter()
    n = 0
    while True:
        planned = start + n / rate
        if planned - start >= seconds:
            break
        delay = planned - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(n, planned))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        n += 1
    while tasks:
        await asyncio.gather(*list(tasks))
    return latencies, refused, n / (time.perf_counter() - start)


def pgbench(cluster, db: str, clients: int, seconds: int) -> float:  # noqa: ANN001
    exe = str(cluster.bindir / "pgbench")
    conn = ["-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres"]
    out = subprocess.run([exe, *conn, "-N", "-c", str(clients), "-j", "2", "-M", "prepared",
                          "-T", str(seconds), db], check=True, capture_output=True, text=True)
    m = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out.stdout)
    if m is None:
        raise RuntimeError(f"pgbench said: {out.stdout}\n{out.stderr}")
    return float(m.group(1))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--bets", type=int, default=20_000)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--players", type=int, default=1_000)
    p.add_argument("--currency", default="FUN", choices=["FUN", "BTC", "ETH"])
    p.add_argument("--seconds", type=int, default=10)
    p.add_argument("--warm", type=int, default=30_000, help="untimed bets first")
    a = p.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="hh-bench-"))
    os.environ["CASINO_DATA_DIR"] = str(tmp)
    os.environ["CASINO_ENCRYPTION_KEYS"] = "b1:" + base64.b64encode(
        secrets.token_bytes(32)).decode()
    # per player, above what one bench player bets (the limiter keeps every hit of the
    # window: a limit of a million a second would measure the limiter)
    os.environ["CASINO_RATE_BETS_PLAYER"] = "200/second"
    from tests.support.services import PgCluster

    # min_wal_size: the checkpoints keep the segments they recycle
    cluster = PgCluster(fsync=True, conf={"min_wal_size": "1GB"}).start()
    cluster.recycle_wal()
    try:
        os.environ["CASINO_IDENTITY_DB_URL"] = cluster.create_database("bench_id")
        os.environ["CASINO_LEDGER_DB_URL"] = cluster.create_database("bench_led")
        from casino_app.core.db import ledger_tx
        from casino_app.core.logging import configure_logging
        from casino_app.migrations import upgrade_all
        from casino_app.payments import ledger, settlement
        from casino_app.payments.currencies import currency

        configure_logging("WARNING", True)
        upgrade_all()
        cur = currency(a.currency)
        stake = cur.min_bet
        if cur.real_money:  # a bankroll far above any win: the exposure cap never refuses
            with ledger_tx() as s:
                ledger.transfer(s, "bench-capital", "capital",
                                ledger.house_account(s, cur.code, "custody"),
                                ledger.house_account(s, cur.code, "bankroll"), 10**15)
        players = [f"bench-{i:05d}" for i in range(a.players)]
        fund(players, cur.code, stake * (a.bets + 100_000) * 2)
        asyncio.run(saturate(a.warm, a.concurrency, players, cur.code, stake, "warm"))
        import psycopg

        from casino_app.core.heap import freeze_startup_objects

        with psycopg.connect(cluster.url("bench_led", driver=False), autocommit=True) as c:
            c.execute("CHECKPOINT")
        freeze_startup_objects()

        print(f"postgres {cluster.bindir.parent.name} (fsync on, synchronous_commit on), "
              f"{os.cpu_count()} cpus; dice bets of {cur.format(stake)} {cur.code} through "
              f"bets.place_bet_async, {a.players} players, {a.concurrency} callers")
        w = settlement.writer()
        b0, s0 = w.batches, w.settled
        rate, lat, refused, cpu_ms = asyncio.run(
            saturate(a.bets, a.concurrency, players, cur.code, stake, "sat"))
        per_batch = (w.settled - s0) / max(1, w.batches - b0)
        print(f"  saturation: {rate:6.0f} bets/s   p50 {statistics.median(lat) * 1e3:6.2f} ms"
              f"   p99 {pct(lat, 0.99) * 1e3:6.2f} ms   ({len(lat)} bets, {refused} refused, "
              f"{per_batch:.0f} bets per batch, {cpu_ms:.2f} ms CPU per bet in this process)")

        cluster.create_database("pgbench")
        subprocess.run([str(cluster.bindir / "pgbench"), "-h", "127.0.0.1", "-p",
                        str(cluster.port), "-U", "postgres", "-i", "-s", "10", "-q",
                        "pgbench"], check=True, capture_output=True)
        tps = pgbench(cluster, "pgbench", a.concurrency, a.seconds)
        print(f"  pgbench -N -M prepared -c {a.concurrency} -j 2 -T {a.seconds}: {tps:7.0f} TPS")

        with psycopg.connect(cluster.url("bench_led", driver=False), autocommit=True) as c:
            c.execute("CHECKPOINT")  # pgbench's WAL too: recycled, as in service
        target = rate * 0.7
        lat70, refused70, achieved = asyncio.run(
            open_loop(target, a.seconds, players, cur.code, stake, "open"))
        p99 = pct(lat70, 0.99) * 1e3
        print(f"  open loop at 70% ({target:.0f} bets/s planned, {achieved:.0f} achieved): "
              f"p50 {statistics.median(lat70) * 1e3:6.2f} ms   p99 {p99:6.2f} ms   "
              f"({len(lat70)} bets, {refused70} refused)")
        with ledger_tx(readonly=True) as s:
            bad = [f.check for f in ledger.check_invariants(s) if f.violations]
        print(f"  ledger invariants after the run: {'clean' if not bad else bad}")
        settlement.reset()
        print(f"bets_per_s={rate:.0f} pgbench_tps={tps:.0f} ratio={rate / tps:.2f} "
              f"p99_ms_at_70pct={p99:.0f}")
    finally:
        try:
            from casino_app.payments import settlement

            settlement.reset()
        finally:
            cluster.destroy()


if __name__ == "__main__":
    main()
