"""Benchmark (not a test): settled house bets per second through the full service path.

  .venv/bin/python bench/bets.py [--bets 5000] [--threads 1,8,32] [--processes 2x8,4x8]
                                 [--currency FUN] [--pgbench-seconds 10] [--profile 500]

Starts a private PostgreSQL cluster with fsync on (the production setting), migrates the
databases, gives every worker thread its own funded players (a player's bets queue on
their seed-pair row, as they must), and settles ``--bets`` dice bets through
``bets.place_bet`` at each concurrency (threads of one process, then several processes,
as a deployment with several workers). Prints bets/s and p50/p99 latency, then pgbench's
simple-update TPS (``pgbench -N -M prepared``) against the same server and the ratio of
the two, and last the bet's own SQL run by pgbench (no Python: the ceiling of any service
path) with the house bankroll over 1, 8 and ``ledger.BANKROLL_SHARDS`` shards.
``--profile N`` also prints the top costs of N bets from one thread (cProfile).
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import io
import multiprocessing
import os
import pstats
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PLAYERS_PER_WORKER = 2
DICE = {"target": 50, "direction": "over"}


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def run_bets(total: int, workers: int, currency: str, stake: int, tag: str,
             profile: cProfile.Profile | None = None, ready: Callable[[], object] | None = None
             ) -> tuple[float, list[float], list[str]]:
    """Settle ``total`` bets from ``workers`` threads; (bets/s, latencies, refusals).
    ``ready`` is called once the players are set up, just before the bets start."""
    from casino_app.core.db import ledger_tx
    from casino_app.games import bets, seeds
    from casino_app.payments import ledger

    players = [[f"bench-{tag}-{w}-{i}" for i in range(PLAYERS_PER_WORKER)]
               for w in range(workers)]
    source = "faucet" if currency == "FUN" else "custody"
    for group in players:
        for p in group:
            with ledger_tx() as s:
                ledger.transfer(s, f"fund:{p}", "deposit",
                                ledger.house_account(s, currency, source),
                                ledger.player_account(s, p, currency), stake * total * 2)
            seeds.ensure(p)
    share = [total // workers + (1 if w < total % workers else 0) for w in range(workers)]
    latencies: list[list[float]] = [[] for _ in range(workers)]
    refused: list[str] = []
    barrier = threading.Barrier(workers + 1)

    def bet_loop(w: int) -> None:
        group, lat = players[w], latencies[w]
        for n in range(share[w]):
            t = time.perf_counter()
            try:
                bets.place_bet(group[n % len(group)], "dice", currency, stake, DICE,
                               f"bench-{tag}-{w:03d}-{n:06d}")
            except bets.BetRefused as exc:
                refused.append(f"{type(exc).__name__}: {exc}")
            lat.append(time.perf_counter() - t)

    if profile is not None:  # one worker, in this thread, so cProfile sees it
        profile.enable()
        bet_loop(0)
        profile.disable()
        return 0.0, latencies[0], refused

    def worker(w: int) -> None:
        barrier.wait()
        bet_loop(w)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    if ready is not None:
        ready()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    return total / elapsed, [x for lat in latencies for x in lat], refused


def _process(total: int, workers: int, currency: str, stake: int, tag: str,
             start: Any, results: Any) -> None:  # noqa: ANN401 - multiprocessing objects
    from casino_app.core.logging import configure_logging

    configure_logging("WARNING", True)
    _, lat, refused = run_bets(total, workers, currency, stake, tag, ready=start.wait)
    results.put((lat, refused))


def run_processes(total: int, processes: int, workers: int, currency: str, stake: int
                  ) -> tuple[float, list[float], list[str]]:
    """As run_bets, from ``processes`` processes of ``workers`` threads each (a deployment
    runs several worker processes: the GIL is per process)."""
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Barrier(processes + 1), ctx.Queue()
    procs = [ctx.Process(target=_process, args=(total // processes, workers, currency,
                                                stake, f"p{processes}x{workers}-{i}", start,
                                                results))
             for i in range(processes)]
    for pr in procs:
        pr.start()
    start.wait()
    t0 = time.perf_counter()
    got = [results.get() for _ in procs]
    elapsed = time.perf_counter() - t0
    for pr in procs:
        pr.join()
    done = total // processes * processes
    return (done / elapsed, [x for lat, _ in got for x in lat],
            [r for _, refused in got for r in refused])


def pgbench(cluster, db: str, clients: int, seconds: int) -> float:  # noqa: ANN001
    exe = str(cluster.bindir / "pgbench")
    conn = ["-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres"]
    out = subprocess.run([exe, *conn, "-N", "-c", str(clients), "-j", "2", "-M", "prepared", "-T",
                          str(seconds), db], check=True, capture_output=True, text=True)
    m = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out.stdout)
    if m is None:
        raise RuntimeError(f"pgbench said: {out.stdout}\n{out.stderr}")
    return float(m.group(1))


def sql_ceiling(cluster, db: str, clients: int, seconds: int, currency: str,  # noqa: ANN001
                shards: int) -> float:
    """The bet path's own SQL (BEGIN, _FIND_OR_DRAW, the settle statement, COMMIT) run by
    pgbench, without Python: the TPS no service path that writes these rows can pass."""
    from casino_app.core.db import ledger_tx
    from casino_app.games import bets, seeds
    from casino_app.payments import ledger

    for c in range(clients):
        with ledger_tx() as s:
            ledger.transfer(s, f"fund:sqlp-{c}", "deposit",
                            ledger.house_account(s, currency, "faucet" if currency == "FUN"
                                                 else "custody"),
                            ledger.player_account(s, f"sqlp-{c}", currency), 10**12)
        seeds.ensure(f"sqlp-{c}")
    with ledger_tx() as s:
        for shard in range(shards):
            ledger.house_account(s, currency, "bankroll", shard)
    player = "('sqlp-' || :client_id)"
    key = "('k' || :client_id || '-' || :k)"
    acct = ("(SELECT id FROM ledger_accounts WHERE owner = {o} AND currency = '{c}' "
            "AND kind = '{k}' AND shard = {s})")
    pl = acct.format(o=player, c=currency, k="player", s=0)
    bk = acct.format(o=f"'{ledger.HOUSE}'", c=currency, k="bankroll", s=":shard")
    values = {
        "p_player": player, "p_key": key, "p_entry_key": f"('bet:' || {player} || ':' || {key})",
        "p_fingerprint": "repeat('f', 64)", "p_memo": f"('dice bet ' || {key})",
        "p_now": "now()", "p_player_acct": pl, "p_bank_acct": bk,
        "p_accounts": f"ARRAY[{pl}, {bk}]", "p_amounts": "ARRAY[-1, 1]", "p_cur": f"'{currency}'",
        "p_game": "'dice'", "p_stake": "1", "p_payout": "0", "p_mult": "0", "p_state": "'lost'",
        "p_params": "'{\"direction\":\"over\",\"target\":50}'", "p_outcome": "'12.34'",
        "p_pair": ":pair", "p_nonce": "(:nonce - 1)", "p_client_seed": ":client_seed",
        "p_seed_hash": ":seed_hash", "p_settled": "now()"}

    def sub(sql: str) -> str:
        return re.sub(r"%\((\w+)\)s", lambda m: values[m.group(1)], sql).strip()

    select = ("SELECT EXISTS (SELECT 1 FROM found), EXISTS (SELECT 1 FROM held), drawn.id,\n"
              "       drawn.server_seed_sealed, drawn.server_seed_hash, drawn.client_seed, "
              "drawn.nonce")
    assert select in bets._FIND_OR_DRAW, "bets._FIND_OR_DRAW changed: update this bench"
    draw = sub(bets._FIND_OR_DRAW).replace(
        select, "SELECT drawn.id AS pair, drawn.server_seed_hash AS seed_hash, "
                "drawn.client_seed AS client_seed, drawn.nonce AS nonce")
    script = Path(tempfile.mkdtemp(prefix="hh-sql-")) / "bet.sql"
    script.write_text("\\set k random(1, 1000000000000)\n"
                      f"\\set shard random(0, {shards - 1})\nBEGIN;\n" + draw + " \\gset\n"
                      + sub(bets._SETTLE_SQL[(True, True)]) + ";\nCOMMIT;\n")
    exe = str(cluster.bindir / "pgbench")
    conn = ["-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres"]
    out = subprocess.run([exe, *conn, "-n", "-M", "prepared", "-f", str(script), "-c", str(clients), "-j", "2",
                          "-T", str(seconds), db], capture_output=True, text=True)
    m = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out.stdout)
    if out.returncode or m is None:
        raise RuntimeError(f"pgbench said: {out.stdout}\n{out.stderr}\n{script.read_text()}")
    return float(m.group(1))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--bets", type=int, default=5000)
    p.add_argument("--threads", default="1,8,32")
    p.add_argument("--processes", default="2x8,4x8", metavar="PxT,...",
                   help="also run from P processes of T threads each")
    p.add_argument("--currency", default="FUN", choices=["FUN", "BTC"])
    p.add_argument("--pgbench-seconds", type=int, default=10)
    p.add_argument("--profile", type=int, default=0, metavar="N")
    a = p.parse_args()
    levels = [int(x) for x in a.threads.split(",")]

    tmp = Path(tempfile.mkdtemp(prefix="hh-bench-"))
    os.environ["CASINO_DATA_DIR"] = str(tmp)
    os.environ["CASINO_ENCRYPTION_KEYS"] = "b1:" + base64.b64encode(secrets.token_bytes(32)).decode()
    os.environ["CASINO_RATE_BETS_PLAYER"] = "1000000/second"
    from tests.support.services import PgCluster

    cluster = PgCluster(fsync=True).start()
    try:
        os.environ["CASINO_IDENTITY_DB_URL"] = cluster.create_database("bench_id")
        os.environ["CASINO_LEDGER_DB_URL"] = cluster.create_database("bench_led")
        from casino_app.core.db import ledger_tx
        from casino_app.core.logging import configure_logging
        from casino_app.migrations import upgrade_all
        from casino_app.payments import ledger
        from casino_app.payments.currencies import currency

        configure_logging("WARNING", True)
        upgrade_all()
        cur = currency(a.currency)
        stake = cur.min_bet
        if cur.real_money:  # a bankroll far above any win, so the exposure cap never refuses
            with ledger_tx() as s:
                ledger.transfer(s, "bench-capital", "capital",
                                ledger.house_account(s, cur.code, "custody"),
                                ledger.house_account(s, cur.code, "bankroll"), 10**15)
        run_bets(200, 4, cur.code, stake, "warm")

        print(f"postgres {cluster.bindir.parent.name} (fsync on, synchronous_commit on), "
              f"{os.cpu_count()} cpus; dice bets of {cur.format(stake)} {cur.code} through "
              f"bets.place_bet, {PLAYERS_PER_WORKER} players per worker")
        best = 0.0

        def show(label: str, rate: float, lat: list[float], refused: list[str]) -> None:
            print(f"  {label:>17}: {rate:6.0f} bets/s   p50 {statistics.median(lat) * 1e3:6.2f} ms"
                  f"   p99 {pct(lat, 0.99) * 1e3:6.2f} ms   ({len(lat)} bets, "
                  f"{len(refused)} refused{': ' + refused[0] if refused else ''})")

        for n in levels:
            rate, lat, refused = run_bets(a.bets, n, cur.code, stake, f"c{n}")
            best = max(best, rate)
            show(f"{n} threads", rate, lat, refused)
        for spec in filter(None, a.processes.split(",")):
            procs, threads = (int(x) for x in spec.split("x"))
            rate, lat, refused = run_processes(a.bets, procs, threads, cur.code, stake)
            best = max(best, rate)
            show(f"{procs} procs x {threads} thr", rate, lat, refused)

        with ledger_tx(readonly=True) as s:
            bad = [f.check for f in ledger.check_invariants(s) if f.violations]
        print(f"  ledger invariants after the run: {'clean' if not bad else bad}")

        cluster.create_database("pgbench")
        subprocess.run([str(cluster.bindir / "pgbench"), "-h", "127.0.0.1", "-p",
                        str(cluster.port), "-U", "postgres", "-i", "-s", "10", "-q",
                        "pgbench"], check=True, capture_output=True)
        tps = {c: pgbench(cluster, "pgbench", c, a.pgbench_seconds) for c in (1, 8, 32)}
        for c, v in tps.items():
            print(f"pgbench -N -c {c} -j 2 -T {a.pgbench_seconds}: {v:7.0f} TPS")
        ref = max(tps.values())
        print(f"best bets/s {best:.0f} / best pgbench TPS {ref:.0f} = {best / ref:.2f}")
        led_db = os.environ["CASINO_LEDGER_DB_URL"].rsplit("/", 1)[1]
        for shards in sorted({1, 8, ledger.BANKROLL_SHARDS}):
            v = sql_ceiling(cluster, led_db, 8, a.pgbench_seconds, cur.code, shards)
            print(f"the bet's own SQL under pgbench, -c 8, bankroll over {shards:2d} shards: "
                  f"{v:7.0f} TPS = {v / ref:.2f} x pgbench -N")

        if a.profile:
            prof = cProfile.Profile()
            run_bets(a.profile, 1, cur.code, stake, "prof", prof)
            out = io.StringIO()
            st = pstats.Stats(prof, stream=out)
            st.sort_stats("cumulative").print_stats(r"casino_app|limits|hmac|crypto", 30)
            st.sort_stats("tottime").print_stats(15)
            print(f"\ncProfile of {a.profile} bets from one thread:")
            print(out.getvalue())
    finally:
        cluster.destroy()


if __name__ == "__main__":
    main()
