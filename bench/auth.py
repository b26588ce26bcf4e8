"""Benchmark (not a test): the costs a player feels on every sign-in and every click.

  .venv/bin/python bench/auth.py [--logins 40] [--resolves 2000] [--pg]

Prints p50/p99 of a password sign-in (argon2id at the configured parameters), the rate
of session-token checks (done on every authenticated event), and the argon2 memory.
Runs on fresh SQLite files by default; --pg uses a private PostgreSQL cluster.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--logins", type=int, default=40)
    p.add_argument("--resolves", type=int, default=2000)
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--pg", action="store_true")
    a = p.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="hh-bench-"))
    os.environ["CASINO_DATA_DIR"] = str(tmp)
    os.environ["CASINO_ENCRYPTION_KEYS"] = "b1:" + base64.b64encode(secrets.token_bytes(32)).decode()
    os.environ["CASINO_RATE_LOGIN_IP"] = "100000/minute"
    os.environ["CASINO_RATE_LOGIN_ACCOUNT"] = "100000/minute"
    os.environ["CASINO_RATE_REGISTER_IP"] = "100000/minute"
    cluster = None
    if a.pg:
        from tests.support.services import PgCluster

        cluster = PgCluster(fsync=True).start()
        os.environ["CASINO_IDENTITY_DB_URL"] = cluster.create_database("bench_id")
        os.environ["CASINO_LEDGER_DB_URL"] = cluster.create_database("bench_led")
    try:
        from casino_app.core.logging import configure_logging
        from casino_app.core.settings import get_settings
        from casino_app.migrations import upgrade_all
        from casino_app.users import accounts
        from casino_app.users.sessions import RequestContext
        from tests.support.signup import sign_up

        configure_logging("WARNING", True)
        upgrade_all()
        s = get_settings()
        ctx = RequestContext("127.0.0.1", "bench")
        token = sign_up(email_addr="bench@example.com", password="bench pass phrase",
                        display_name="Bench", date_of_birth="1990-01-01", ctx=ctx)

        def login(_: int) -> float:
            t = time.perf_counter()
            accounts.begin_login(email="bench@example.com", password="bench pass phrase",
                                 ctx=ctx)
            return time.perf_counter() - t

        lat = [login(i) for i in range(a.logins)]
        t0 = time.perf_counter()
        with ThreadPoolExecutor(a.threads) as pool:
            conc = list(pool.map(login, range(a.logins)))
        conc_rate = a.logins / (time.perf_counter() - t0)

        t0 = time.perf_counter()
        for _ in range(a.resolves):
            accounts.current_user(token)
        resolve_rate = a.resolves / (time.perf_counter() - t0)

        db = "postgres (fsync on)" if a.pg else "sqlite"
        print(f"database: {db}; argon2id m={s.argon2_memory_kib} KiB t={s.argon2_time_cost} "
              f"p={s.argon2_parallelism}")
        print(f"password sign-in, 1 at a time: p50 {statistics.median(lat) * 1000:.1f} ms, "
              f"p99 {pct(lat, 0.99) * 1000:.1f} ms")
        print(f"password sign-in, {a.threads} threads: {conc_rate:.1f} sign-ins/s, "
              f"p99 {pct(conc, 0.99) * 1000:.1f} ms")
        print(f"session check (every authenticated event): {resolve_rate:.0f}/s")
    finally:
        if cluster is not None:
            cluster.destroy()


if __name__ == "__main__":
    main()
