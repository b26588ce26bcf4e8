"""The job runner on the embedded default (SQLite ledger, in-process leases)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from casino_app.core.clock import utcnow
from casino_app.core.db import ledger_tx
from casino_app.jobs.lease import InProcessLease, in_process_holders, lease_for
from casino_app.jobs.models import JobState
from casino_app.jobs.runner import (
    Job,
    JobRunner,
    describe_error,
    record_start,
    register,
    registered,
    unregister,
)
from casino_app.jobs.worker import run_in_app


def state(name: str) -> JobState | None:
    with ledger_tx() as s:
        return s.execute(select(JobState).where(JobState.name == name)).scalar_one_or_none()


async def run_for(runner: JobRunner, seconds: float) -> None:
    task = asyncio.create_task(runner.run())
    await asyncio.sleep(seconds)
    runner.stop()
    await asyncio.wait_for(task, 10)


async def wait_until(cond: Callable[[], Any], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


# Jobs and the registry ------------------------------------------------------------------
def test_job_validation_and_registry() -> None:
    def noop() -> None:
        return None

    with pytest.raises(ValueError):
        Job("", 1, noop)
    with pytest.raises(ValueError):
        Job("x" * 65, 1, noop)
    with pytest.raises(ValueError):
        Job("bad-interval", 0, noop)
    job = register(Job("t-registry", 1, noop))
    register(job)  # the same job again: no-op
    with pytest.raises(ValueError, match="already registered"):
        register(Job("t-registry", 2, noop))
    register(Job("t-registry", 2, noop), replace=True)
    assert [(j.name, j.interval) for j in registered()] == [("t-registry", 2)]
    unregister("t-registry")
    assert registered() == []


def test_describe_error_masks_credentials() -> None:
    exc = RuntimeError("cannot reach postgresql+psycopg://casino:hunter2@db:5432/ledger "
                       "with token " + "A" * 40)
    text = describe_error(exc)
    assert text.startswith("RuntimeError: cannot reach postgresql+psycopg://***@db:5432")
    assert "hunter2" not in text and "A" * 40 not in text


# In-process lease ----------------------------------------------------------------------
def test_in_process_lease_is_exclusive_within_the_process(app_env) -> None:
    a, b = InProcessLease("t-lease"), InProcessLease("t-lease")
    assert isinstance(lease_for("t-lease"), InProcessLease)
    assert a.try_acquire() and a.try_acquire()  # re-entrant for its holder
    assert not b.try_acquire()
    assert a.still_held() and not b.still_held()
    b.release()  # not the holder: no effect
    assert a.still_held()
    a.release()
    assert not a.still_held()
    assert b.try_acquire() and b.still_held()
    assert InProcessLease("t-other").try_acquire()  # leases are per job name
    b.release()


def test_in_process_lease_under_threads() -> None:
    leases = [InProcessLease("t-race") for _ in range(16)]
    wins: list[InProcessLease] = []
    barrier = threading.Barrier(len(leases))

    def grab(lease: InProcessLease) -> None:
        barrier.wait()
        if lease.try_acquire():
            wins.append(lease)

    threads = [threading.Thread(target=grab, args=(x,)) for x in leases]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert len(wins) == 1
    wins[0].release()


# The runner ----------------------------------------------------------------------------
async def test_job_runs_on_its_interval_and_job_state_is_updated(app_env) -> None:
    calls: list[tuple[float, str]] = []

    def tick() -> None:
        calls.append((time.monotonic(), threading.current_thread().name))

    runner = JobRunner([Job("t-interval", 0.1, tick)], holder="host-a:1",
                       renew_seconds=0.05)
    before = utcnow()
    # Until five runs happened (not a fixed time: a loaded machine delays runs, which the
    # schedule allows, so a count over a fixed time failed under load).
    task = asyncio.create_task(runner.run())
    started = time.monotonic()
    await wait_until(lambda: len(calls) >= 5, timeout=60)
    runner.stop()
    await asyncio.wait_for(task, 10)
    elapsed = time.monotonic() - started
    assert len(calls) >= 5, calls
    # Runs keep to the schedule: a run delayed by a busy machine is followed by one on
    # time (a shorter gap), but on average they never come faster than the interval, so
    # n runs take at least (n - 1) intervals.
    gaps = [b[0] - a[0] for a, b in zip(calls, calls[1:], strict=False)]
    assert sum(gaps) / len(gaps) >= 0.09, gaps
    assert len(calls) <= elapsed / 0.1 + 2, (len(calls), elapsed)
    assert all(name.startswith("casino-job") for _, name in calls)  # sync jobs: a thread
    row = state("t-interval")
    assert row is not None
    assert row.runs == len(calls)
    assert row.holder == "host-a:1"
    assert row.last_ok is True and row.last_error is None
    assert before <= row.last_started_at <= row.last_finished_at <= utcnow()
    assert in_process_holders() == {}  # stopping released the lease


async def test_async_job_runs_on_the_loop(app_env) -> None:
    loop_thread = threading.current_thread()
    seen: list[threading.Thread] = []

    async def tick() -> None:
        await asyncio.sleep(0)
        seen.append(threading.current_thread())

    await run_for(JobRunner([Job("t-async", 0.05, tick)], renew_seconds=0.05), 0.3)
    assert len(seen) >= 3 and all(t is loop_thread for t in seen)
    assert state("t-async").runs == len(seen)


async def test_failing_job_is_recorded_and_runs_again(app_env) -> None:
    calls = 0

    def flaky() -> None:
        nonlocal calls
        calls += 1
        if calls <= 2:
            raise ValueError(f"boom {calls} at postgresql://u:secretpw@h/db")

    runner = JobRunner([Job("t-flaky", 0.1, flaky)], renew_seconds=0.05)
    task = asyncio.create_task(runner.run())
    try:
        await wait_until(lambda: calls >= 1 and (state("t-flaky") or JobState()).runs)
        row = state("t-flaky")
        assert row.last_ok is False
        assert row.last_error == "ValueError: boom 1 at postgresql://***@h/db"
        await wait_until(lambda: calls >= 3 and state("t-flaky").runs >= 3)
        assert not task.done()  # failures never stop the runner
    finally:
        runner.stop()
        await asyncio.wait_for(task, 10)
    row = state("t-flaky")
    assert row.runs == calls
    assert row.last_ok is True and row.last_error is None


async def test_only_one_runner_in_a_process_runs_a_job(app_env) -> None:
    holders: list[str] = []
    job_a = Job("t-shared", 0.05, lambda: holders.append("a"))
    job_b = Job("t-shared", 0.05, lambda: holders.append("b"))
    a = JobRunner([job_a], holder="a", renew_seconds=0.05)
    b = JobRunner([job_b], holder="b", renew_seconds=0.05)
    ta = asyncio.create_task(a.run())
    await wait_until(lambda: "t-shared" in a.held)
    tb = asyncio.create_task(b.run())
    try:
        await asyncio.sleep(0.3)
        assert set(holders) == {"a"} and b.held == set()
        a.stop()
        await asyncio.wait_for(ta, 10)
        n = len(holders)
        await wait_until(lambda: len(holders) > n + 1)  # b takes over
        assert set(holders[n:]) == {"b"}
        assert state("t-shared").holder == "b"
    finally:
        a.stop()
        b.stop()
        await asyncio.wait_for(asyncio.gather(ta, tb), 10)


async def test_a_lost_lease_stops_the_job(app_env) -> None:
    runs = 0

    def tick() -> None:
        nonlocal runs
        runs += 1

    runner = JobRunner([Job("t-lost", 0.05, tick)], renew_seconds=0.05)
    task = asyncio.create_task(runner.run())
    try:
        await wait_until(lambda: runs >= 1)
        thief = InProcessLease("t-lost")
        in_process_holders()["t-lost"].release()  # the runner's lease vanishes...
        assert thief.try_acquire()  # ...and someone else holds it now
        await wait_until(lambda: "t-lost" not in runner.held)
        n = runs
        await asyncio.sleep(0.3)
        assert runs == n  # never ran without the lease
        thief.release()
        await wait_until(lambda: runs > n)  # and comes back once it is free
    finally:
        runner.stop()
        await asyncio.wait_for(task, 10)


async def test_graceful_stop_lets_a_run_finish(app_env) -> None:
    started, finished = threading.Event(), threading.Event()

    def slow() -> None:
        started.set()
        time.sleep(0.3)
        finished.set()

    runner = JobRunner([Job("t-slow", 60, slow)], renew_seconds=0.05)
    task = asyncio.create_task(runner.run())
    await wait_until(started.is_set)
    runner.stop()
    await asyncio.wait_for(task, 10)
    assert finished.is_set()
    assert state("t-slow").last_ok is True
    assert in_process_holders() == {}


async def test_cancelled_during_a_sync_run_keeps_the_lease_until_it_ends(app_env) -> None:
    started, release = threading.Event(), threading.Event()

    def stuck() -> None:
        started.set()
        release.wait(10)

    runner = JobRunner([Job("t-stuck", 60, stuck)], renew_seconds=0.05, stop_grace=0.1)
    task = asyncio.create_task(runner.run())
    await wait_until(started.is_set)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 10)
    # The thread still runs the job: nobody else may take the lease yet.
    assert "t-stuck" in in_process_holders()
    assert not InProcessLease("t-stuck").try_acquire()
    release.set()
    await wait_until(lambda: "t-stuck" not in in_process_holders())
    row = state("t-stuck")
    assert row.runs == 1 and row.last_ok is True


async def test_an_hourly_job_is_not_rerun_right_after_a_restart(app_env) -> None:
    record_start("t-hourly", "previous-worker:1", utcnow())
    runs: list[int] = []
    runner = JobRunner([Job("t-hourly", 3600, lambda: runs.append(1))],
                       renew_seconds=0.05)
    await run_for(runner, 0.3)
    assert runs == []


BUILTIN = ("identity-cleanup", "audit-anchor", "ledger-check", "audit-outbox",
           "withdrawal-notices", "provider-checks", "loyalty-accrue", "reserves")


async def test_run_in_app_runs_builtin_jobs_and_releases_on_cancel(app_env, monkeypatch
                                                                    ) -> None:
    from casino_app.core.settings import reset_settings_cache

    monkeypatch.setenv("CASINO_LEASE_RENEW_SECONDS", "0.05")
    reset_settings_cache()
    task = asyncio.create_task(run_in_app())
    try:
        await wait_until(lambda: all((state(n) or JobState()).runs
                                     for n in BUILTIN), 10)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
    for name in BUILTIN:
        row = state(name)
        assert row.runs == 1 and row.last_ok is True, row.last_error
    assert [j.name for j in registered()] == list(BUILTIN)
    assert in_process_holders() == {}


async def test_run_in_app_does_nothing_when_disabled(app_env, monkeypatch) -> None:
    from casino_app.core.settings import reset_settings_cache

    monkeypatch.setenv("CASINO_RUN_JOBS_IN_APP", "false")
    reset_settings_cache()
    await asyncio.wait_for(run_in_app(), 5)
    assert registered() == []
    assert state("identity-cleanup") is None


async def test_runs_are_counted_in_prometheus(app_env) -> None:
    metrics = pytest.importorskip("casino_app.core.metrics")

    def value(result: str) -> float:
        return metrics.JOB_RUNS.labels(job="t-metrics", result=result)._value.get()

    ok0, err0 = value("ok"), value("error")
    calls = 0

    def sometimes() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("first run fails")

    await run_for(JobRunner([Job("t-metrics", 0.05, sometimes)], renew_seconds=0.05), 0.3)
    assert value("error") - err0 == 1
    assert value("ok") - ok0 == calls - 1 >= 1


def test_the_web_process_never_runs_the_signing_jobs_in_production(
        app_env, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """The web process holds public keys only: the jobs that sign with the hot wallet
    (eth-batch, eth-sweep, btc-batch, btc-sweep) and the signer's seed checks run where `casino
    worker` runs; the embedded default (one process, development) runs everything."""
    from casino_app.core.settings import reset_settings_cache
    from casino_app.jobs import worker as jobs_worker
    from casino_app.payments.signer import btc as signer_btc
    from casino_app.payments.signer import seed

    monkeypatch.setenv("CASINO_ETH_RPC_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("CASINO_BTC_RPC_URL", "http://127.0.0.1:9")
    reset_settings_cache()
    loaded: list[str] = []
    monkeypatch.setattr(seed, "prepare_hot_wallet", lambda: loaded.append("eth"))
    monkeypatch.setattr(signer_btc, "prepare_btc_wallet", lambda: loaded.append("btc"))
    signing = {"eth-batch", "eth-sweep", "btc-batch", "btc-sweep"}
    names = {j.name for j in jobs_worker._prepare(signing=False)}
    assert {"eth-watch", "eth-reconcile"} <= names
    assert not names & signing and loaded == []
    names = {j.name for j in jobs_worker._prepare(signing=True)}
    assert signing <= names and loaded == ["eth", "btc"]
