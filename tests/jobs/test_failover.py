"""Failover between two real worker processes on the private PostgreSQL cluster.

Two ``casino worker`` processes (with a test-only probe job, see failover_worker.py)
share one ledger database. Exactly one runs the probe; after ``kill -9`` of that one
the other takes over within seconds; and no two processes ever run it at once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.jobs.failover_worker import PROBE_JOB, TABLE_DDL

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
RENEW_SECONDS = 0.5
PROBE_INTERVAL = 0.2


def wait_for(cond: Callable[[], Any], timeout: float, what: str,
             procs: list[tuple[subprocess.Popen[bytes], Path]]) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- worker {p.pid} (rc={p.poll()}):\n"
                             f"{log.read_text()[-3000:]}" for p, log in procs)
            raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{logs}")
        time.sleep(0.05)


def test_job_moves_to_the_surviving_worker(pg_env, tmp_path: Path) -> None:
    url = os.environ["CASINO_LEDGER_DB_URL"].replace("postgresql+psycopg://", "postgresql://")
    db = psycopg.connect(url, autocommit=True)
    db.execute(TABLE_DDL)

    def rows() -> list[tuple[int, int, datetime, datetime | None]]:
        return db.execute("SELECT id, pid, started_at, finished_at FROM test_job_runs"
                          " ORDER BY id").fetchall()

    def db_now() -> datetime:
        return db.execute("SELECT clock_timestamp()").fetchone()[0]

    env = {**os.environ, "CASINO_LEASE_RENEW_SECONDS": str(RENEW_SECONDS),
           "TEST_PROBE_INTERVAL": str(PROBE_INTERVAL), "CASINO_LOG_LEVEL": "INFO",
           "PYTHONUNBUFFERED": "1"}
    procs: list[tuple[subprocess.Popen[bytes], Path]] = []
    try:
        for i in range(2):
            log = tmp_path / f"worker{i}.log"
            with log.open("wb") as fh:
                proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                    [sys.executable, "-m", "tests.jobs.failover_worker"], cwd=ROOT,
                    env=env, stdout=fh, stderr=subprocess.STDOUT)
            procs.append((proc, log))
        by_pid = {p.pid: p for p, _ in procs}

        # Both workers are up and competing; exactly one of them runs the probe.
        wait_for(lambda: all("job_runner_started" in log.read_text() for _, log in procs),
                 20, "both workers to start", procs)
        wait_for(lambda: len(rows()) >= 1, 10, "the first probe run", procs)
        time.sleep(1.5)
        first = rows()
        holders = {r[1] for r in first}
        assert len(holders) == 1, f"more than one worker ran the job: {holders}"
        [holder_pid] = holders
        assert holder_pid in by_pid
        assert len(first) >= 5  # ran about every 0.2 s
        survivor = next(p for pid, p in by_pid.items() if pid != holder_pid)
        assert survivor.poll() is None

        # kill -9 the holder: no clean-up code runs, only the OS closes its socket.
        by_pid[holder_pid].send_signal(signal.SIGKILL)
        by_pid[holder_pid].wait(10)
        killed_at = db_now()
        t_kill = time.monotonic()
        taken = wait_for(lambda: [r for r in rows() if r[1] == survivor.pid], 10,
                         "the survivor to take the job over", procs)
        failover = (taken[0][2] - killed_at).total_seconds()
        print(f"failover: first run on the survivor {failover:.3f}s after kill -9 "
              f"(observed by the test after {time.monotonic() - t_kill:.3f}s)")
        assert failover < 5

        time.sleep(1.0)
        # A graceful stop of the survivor: it finishes, releases and exits 0.
        survivor.send_signal(signal.SIGTERM)
        assert survivor.wait(15) == 0
        end = db_now()

        all_rows = rows()
        after = [r for r in all_rows if r[0] > first[-1][0]]
        assert {r[1] for r in all_rows} == {holder_pid, survivor.pid}
        assert len([r for r in after if r[1] == survivor.pid]) >= 4
        # Holder switches once; runs never overlap (a killed run ends at the kill).
        pids_in_order = [r[1] for r in all_rows]
        switches = sum(1 for a, b in zip(pids_in_order, pids_in_order[1:], strict=False)
                       if a != b)
        assert switches == 1, pids_in_order
        spans = sorted(
            (start, finished or (killed_at if pid == holder_pid else end), pid)
            for _, pid, start, finished in all_rows)
        for (s1, e1, p1), (s2, _e2, p2) in zip(spans, spans[1:], strict=False):
            assert e1 <= s2, f"runs overlap: {p1} {s1}..{e1} and {p2} from {s2}"
        assert all(r[3] is not None for r in all_rows if r[1] == survivor.pid)

        # The survivor's clean stop released its advisory locks.
        assert db.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                          ).fetchone()[0] == 0
        holder_row = db.execute("SELECT holder, last_ok, runs FROM job_state"
                                " WHERE name = %s", (PROBE_JOB,)).fetchone()
        assert holder_row[0].endswith(f":{survivor.pid}") and holder_row[1] is True
        completed = sum(1 for r in all_rows if r[3] is not None)
        # A worker killed between its probe's end and its job_state write loses one count.
        assert completed - 1 <= holder_row[2] <= completed
    finally:
        for proc, _ in procs:
            if proc.poll() is None:
                proc.kill()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        db.close()
