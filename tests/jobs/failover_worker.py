"""TEST-ONLY worker process: ``python -m tests.jobs.failover_worker``.

Registers a fast probe job that writes one row per run (its pid and the database
clock at start and end) into ``test_job_runs`` in the ledger database, then runs the
real ``casino worker`` command. The failover test starts two of these.
"""

from __future__ import annotations

import os
import sys
import time

from sqlalchemy import text

PROBE_JOB = "test-failover-probe"
TABLE_DDL = ("CREATE TABLE IF NOT EXISTS test_job_runs (id bigserial PRIMARY KEY,"
             " pid integer NOT NULL, started_at timestamptz NOT NULL,"
             " finished_at timestamptz)")


def probe() -> None:
    from casino_app.core.db import ledger_tx

    with ledger_tx() as s:
        run_id = s.execute(text(
            "INSERT INTO test_job_runs (pid, started_at) VALUES (:pid, clock_timestamp())"
            " RETURNING id"), {"pid": os.getpid()}).scalar_one()
    time.sleep(float(os.environ.get("TEST_PROBE_SECONDS", "0.05")))
    with ledger_tx() as s:
        s.execute(text("UPDATE test_job_runs SET finished_at = clock_timestamp()"
                       " WHERE id = :id"), {"id": run_id})


def main() -> int:
    from casino_app.cli import main as casino
    from casino_app.jobs.runner import Job, register

    register(Job(PROBE_JOB, float(os.environ.get("TEST_PROBE_INTERVAL", "0.2")), probe))
    return casino(["worker"])


if __name__ == "__main__":
    sys.exit(main())
