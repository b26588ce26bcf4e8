"""PostgreSQL advisory-lock leases on the private cluster."""

from __future__ import annotations

import asyncio
import time

import psycopg
import pytest
from sqlalchemy import text

from casino_app.core.db import databases
from casino_app.jobs.lease import (
    PostgresAdvisoryLease,
    advisory_key,
    lease_engine,
    lease_for,
)
from casino_app.jobs.runner import Job, JobRunner

pytestmark = pytest.mark.postgres


def admin_url() -> str:
    url = databases().ledger_engine.url
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def backend_pids(application_name: str = "casino-job-lease") -> list[int]:
    with psycopg.connect(admin_url(), autocommit=True) as c:
        return [r[0] for r in c.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s",
            (application_name,))]


def advisory_holders(key: int) -> list[int]:
    hi, lo = (key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF
    with psycopg.connect(admin_url(), autocommit=True) as c:
        return [r[0] for r in c.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND classid = %s::bigint::oid AND objid = %s::bigint::oid AND objsubid = 1",
            (hi, lo))]


def test_keys_are_stable_64_bit_hashes() -> None:
    assert advisory_key("identity-cleanup") == -5119985270640468741
    assert advisory_key("a") == 7963909987402813170
    assert len({advisory_key(f"job-{i}") for i in range(1000)}) == 1000


def test_lease_for_uses_advisory_locks_on_postgres(pg_env) -> None:
    lease = lease_for("t-kind")
    assert isinstance(lease, PostgresAdvisoryLease)
    # Lease connections are their own (unpooled) engine on the ledger database.
    assert lease._engine is not databases().ledger_engine
    assert lease._engine.url == databases().ledger_engine.url


@pytest.mark.parametrize("name", ["identity-cleanup", "a"])  # negative and positive keys
def test_only_one_of_two_connections_acquires(pg_env, name: str) -> None:
    engine = lease_engine(databases().ledger_engine)
    first, second = PostgresAdvisoryLease(name, engine), PostgresAdvisoryLease(name, engine)
    try:
        assert first.try_acquire()
        assert not second.try_acquire()
        assert first.still_held() and not second.still_held()
        assert first.try_acquire()  # asking again while holding: still ours, no recount
        assert len(advisory_holders(first.key)) == 1
        first.release()
        assert advisory_holders(first.key) == []
        assert second.try_acquire() and second.still_held()
    finally:
        first.release()
        second.release()


def _ours(before: set[int]) -> set[int]:
    """Lease backends opened since ``before`` (earlier tests' backends may still be
    exiting: the server ends a backend shortly after its client closed the socket)."""
    return set(backend_pids()) - before


def test_standby_keeps_no_connection(pg_env) -> None:
    engine = lease_engine(databases().ledger_engine)
    before = set(backend_pids())
    holder, standby = PostgresAdvisoryLease("t-idle", engine), PostgresAdvisoryLease(
        "t-idle", engine)
    try:
        assert holder.try_acquire()
        assert not standby.try_acquire()
        # Only the holder's connection stays open: the standby closed its own, and its
        # backend exits shortly after (the server notices the closed socket on its own).
        deadline = time.monotonic() + 10
        while len(_ours(before)) != 1:
            assert time.monotonic() < deadline, f"lease backends open: {_ours(before)}"
            time.sleep(0.05)
        assert advisory_holders(holder.key) == list(_ours(before))
    finally:
        holder.release()
    # released: the holder's connection is closed; its backend exits right after
    deadline = time.monotonic() + 10
    while _ours(before):
        assert time.monotonic() < deadline, f"lease backends left open: {_ours(before)}"
        time.sleep(0.05)


def test_the_other_acquires_when_the_holders_connection_closes(pg_env) -> None:
    engine = lease_engine(databases().ledger_engine)
    holder, other = PostgresAdvisoryLease("t-crash", engine), PostgresAdvisoryLease(
        "t-crash", engine)
    try:
        assert holder.try_acquire()
        assert not other.try_acquire()
        [pid] = advisory_holders(holder.key)
        # The holder's connection dies (as when its process is killed).
        with psycopg.connect(admin_url(), autocommit=True) as c:
            assert c.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]
        deadline = time.monotonic() + 10
        while not other.try_acquire():
            assert time.monotonic() < deadline, "lock not freed after the connection closed"
            time.sleep(0.05)
        # The old holder notices it lost the lease and does not get it back.
        assert not holder.still_held()
        assert not holder.try_acquire()
        assert other.still_held()
    finally:
        holder.release()
        other.release()


def test_holder_whose_database_restarts_stops_holding(pg_env) -> None:
    """A server restart drops every session: the holder must notice on its next check."""
    cluster = pg_env
    lease = PostgresAdvisoryLease("t-restart", lease_engine(databases().ledger_engine))
    try:
        assert lease.try_acquire()
        cluster.stop("immediate")
        cluster.start()
        assert not lease.still_held()
        assert lease.try_acquire()  # reconnects on the next attempt
    finally:
        lease.release()


async def test_two_runners_on_postgres_in_one_process(pg_env) -> None:
    runs: list[str] = []
    a = JobRunner([Job("t-pg-shared", 0.05, lambda: runs.append("a"))], holder="a",
                  renew_seconds=0.05)
    b = JobRunner([Job("t-pg-shared", 0.05, lambda: runs.append("b"))], holder="b",
                  renew_seconds=0.05)
    ta = asyncio.create_task(a.run())
    deadline = time.monotonic() + 10
    while "t-pg-shared" not in a.held:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    tb = asyncio.create_task(b.run())
    try:
        await asyncio.sleep(0.4)
        assert runs and set(runs) == {"a"}
        a.stop()
        await asyncio.wait_for(ta, 10)
        n = len(runs)
        while len(runs) < n + 2:
            assert time.monotonic() < deadline + 10
            await asyncio.sleep(0.02)
        assert set(runs[n:]) == {"b"}
    finally:
        a.stop()
        b.stop()
        await asyncio.wait_for(asyncio.gather(ta, tb), 10)
    assert advisory_holders(advisory_key("t-pg-shared")) == []
    with databases().ledger_engine.connect() as c:
        assert c.execute(text("SELECT holder, last_ok FROM job_state "
                              "WHERE name = 't-pg-shared'")).one() == ("b", True)
