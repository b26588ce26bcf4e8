"""The background-job runner: every registered job, each under its own lease.

For each job the runner tries to take the job's lease every ``lease_renew_seconds``.
While it holds the lease it runs the job every ``interval`` seconds, checking
``still_held()`` before each run (and at least every ``lease_renew_seconds``). Every run
is recorded in ``job_state`` (ledger database). A failing run is logged, recorded and
tried again at the next interval; it never stops the runner.

The entry points that register the built-in jobs and run them (``casino worker``, the
Reflex lifespan task) are in ``jobs/worker.py``; this module knows no job.

Adding a job: ``register(Job("name", interval_seconds, func))`` from a module that
``casino_app.jobs.builtin.register_builtin_jobs`` imports (see that module). ``func`` may
be ``async def`` (runs on the event loop: it must not block) or a plain function (runs
in a thread). Jobs must be idempotent: a run cut short by a crash is simply run again.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import os
import re
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from casino_app.core.clock import utcnow
from casino_app.core.logging import get_logger
from casino_app.jobs.lease import Lease, lease_for
from casino_app.jobs.models import JobState

log = get_logger("casino.jobs")

NAME_MAX = 64  # job_state.name
HOLDER_MAX = 100  # job_state.holder
ERROR_MAX = 2000


@dataclass(frozen=True)
class Job:
    """A named piece of background work run every ``interval`` seconds."""

    name: str
    interval: float
    func: Callable[[], Any] = field(compare=False)

    def __post_init__(self) -> None:
        if not self.name or len(self.name) > NAME_MAX:
            raise ValueError(f"job name must be 1..{NAME_MAX} characters")
        if not self.interval > 0:
            raise ValueError("job interval must be positive")
        if not callable(self.func):
            raise TypeError("job func must be callable")

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.func)


# Registry ------------------------------------------------------------------------------
_registry_lock = threading.Lock()
_registry: dict[str, Job] = {}


def register(job: Job, *, replace: bool = False) -> Job:
    """Add a job to the process-wide registry; a second job with the same name is an
    error unless ``replace`` (registering the very same job again is a no-op)."""
    with _registry_lock:
        old = _registry.get(job.name)
        if old is not None and old is not job and not replace:
            raise ValueError(f"a job named {job.name!r} is already registered")
        _registry[job.name] = job
    return job


def unregister(name: str) -> None:
    with _registry_lock:
        _registry.pop(name, None)


def registered() -> list[Job]:
    with _registry_lock:
        return list(_registry.values())


# Bookkeeping ---------------------------------------------------------------------------
def worker_id() -> str:
    """This process's name in ``job_state.holder``: ``hostname:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"[-HOLDER_MAX:]


_URL_CREDENTIALS = re.compile(r"(\w+://)[^/\s@]+@")
_OPAQUE = re.compile(r"\b[A-Za-z0-9_\-+/=]{32,}")


def describe_error(exc: BaseException) -> str:
    """``Type: message`` with URL credentials and long opaque strings masked."""
    message = str(exc)
    message = _URL_CREDENTIALS.sub(r"\1***@", message)
    message = _OPAQUE.sub("[redacted]", message)
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return text[:ERROR_MAX]


def _ensure_row(session: Any, name: str) -> None:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    session.execute(insert(JobState).values(name=name, holder="", runs=0)
                    .on_conflict_do_nothing(index_elements=["name"]))


def record_start(name: str, holder: str, started: datetime) -> None:
    from casino_app.core.db import ledger_tx

    with ledger_tx() as s:
        _ensure_row(s, name)
        s.execute(update(JobState).where(JobState.name == name)
                  .values(holder=holder, last_started_at=started))


def record_finish(name: str, holder: str, finished: datetime, ok: bool,
                  error: str | None) -> None:
    from casino_app.core.db import ledger_tx

    with ledger_tx() as s:
        _ensure_row(s, name)
        s.execute(update(JobState).where(JobState.name == name)
                  .values(holder=holder, last_finished_at=finished, last_ok=ok,
                          last_error=error, runs=JobState.runs + 1))


def last_started(name: str) -> datetime | None:
    from casino_app.core.db import ledger_tx

    with ledger_tx(readonly=True) as s:
        return s.execute(select(JobState.last_started_at)
                         .where(JobState.name == name)).scalar_one_or_none()


def _count_run(name: str, ok: bool) -> None:
    """Count the run in ``casino_job_runs_total`` (``casino_app.core.metrics.JOB_RUNS``).
    Imported lazily and optional, so metrics can never break a job."""
    try:
        from casino_app.core.metrics import JOB_RUNS

        JOB_RUNS.labels(job=name, result="ok" if ok else "error").inc()
    except Exception:  # noqa: S110 - ImportError while metrics.py is absent, or a bad label
        pass


# Runner --------------------------------------------------------------------------------
@dataclass
class _Slot:
    """One job inside a runner: its lease and the blocking call now in a thread."""

    job: Job
    lease: Lease
    inflight: concurrent.futures.Future[Any] | None = None
    inflight_is_run: bool = False


class JobRunner:
    """Runs jobs under leases until ``stop()``; one asyncio task per job."""

    def __init__(
        self,
        jobs: Iterable[Job] | None = None,
        *,
        holder: str | None = None,
        renew_seconds: float | None = None,
        lease_factory: Callable[[str], Lease] = lease_for,
        stop_grace: float = 8.0,
    ) -> None:
        if renew_seconds is None:
            from casino_app.core.settings import get_settings

            renew_seconds = get_settings().lease_renew_seconds
        self.jobs = list(registered() if jobs is None else jobs)
        names = [j.name for j in self.jobs]
        if len(set(names)) != len(names):
            raise ValueError("two jobs share a name")
        self.holder = (holder or worker_id())[:HOLDER_MAX]
        self.renew_seconds = renew_seconds
        self.lease_factory = lease_factory
        self.stop_grace = stop_grace
        self.held: set[str] = set()  # names of the jobs whose lease we hold now
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested = False
        # Lease calls, job_state writes and sync jobs: at most one at a time per job.
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=len(self.jobs) + 2, thread_name_prefix="casino-job")

    # control ----------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the runner to stop (safe from signal handlers and other threads)."""
        self._stop_requested = True
        if self._stop is not None and self._loop is not None:
            try:
                self._loop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:  # loop already closed
                pass

    async def run(self) -> None:
        """Run until ``stop()`` or cancellation; releases every lease on the way out."""
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        if self._stop_requested:
            self._stop.set()
        log.info("job_runner_started", holder=self.holder,
                 jobs=[j.name for j in self.jobs], renew_seconds=self.renew_seconds)
        tasks = [asyncio.create_task(self._job_loop(job), name=f"job:{job.name}")
                 for job in self.jobs]
        try:
            await self._stop.wait()
        finally:
            self._stop.set()
            await self._wind_down(tasks)
            self._executor.shutdown(wait=False)
            log.info("job_runner_stopped", holder=self.holder)

    async def _wind_down(self, tasks: list[asyncio.Task[None]]) -> None:
        """Let runs in progress finish for ``stop_grace`` seconds, then cancel them."""
        if not tasks:
            return
        try:
            _, pending = await asyncio.wait(tasks, timeout=self.stop_grace)
        except asyncio.CancelledError:  # cancelled again while winding down
            pending = {t for t in tasks if not t.done()}
        for t in pending:
            t.cancel()
        if pending:
            await asyncio.wait(pending, timeout=2)

    # one job ----------------------------------------------------------------------
    async def _in_thread(self, slot: _Slot, fn: Callable[..., Any], *args: Any,
                         is_run: bool = False) -> Any:
        """Run a blocking call in the runner's threads, remembered as the slot's
        in-flight call so that a cancelled loop knows a thread still works for it."""
        cf = self._executor.submit(fn, *args)
        slot.inflight, slot.inflight_is_run = cf, is_run
        result = await asyncio.wrap_future(cf)  # cancelling cancels cf if not started
        slot.inflight = None
        return result

    async def _lease_call(self, slot: _Slot, fn: Callable[[], bool]) -> bool:
        try:
            return bool(await self._in_thread(slot, fn))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("lease_error", job=slot.job.name, error=describe_error(exc))
            return False

    async def _sleep(self, seconds: float) -> None:
        if self._stop is None:
            raise RuntimeError("the job runner is not running")
        if seconds <= 0:
            return
        try:
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)
        except TimeoutError:
            pass

    async def _job_loop(self, job: Job) -> None:
        if self._stop is None:
            raise RuntimeError("the job runner is not running")
        slot = _Slot(job, self.lease_factory(job.name))
        lease = slot.lease
        held = False
        next_run = 0.0
        try:
            while not self._stop.is_set():
                if not held:
                    held = await self._lease_call(slot, lease.try_acquire)
                    if not held:
                        await self._sleep(self.renew_seconds)
                        continue
                    self.held.add(job.name)
                    next_run = time.monotonic() + await self._due_in(slot)
                    log.info("lease_acquired", job=job.name, holder=self.holder)
                if not await self._lease_call(slot, lease.still_held):
                    log.warning("lease_lost", job=job.name, holder=self.holder)
                    held = False
                    self.held.discard(job.name)
                    await self._lease_call(slot, lambda: _released(lease))
                    continue
                if self._stop.is_set():
                    break
                if time.monotonic() >= next_run:
                    started = time.monotonic()
                    await self._run_once(slot)
                    next_run = started + job.interval
                await self._sleep(min(self.renew_seconds, next_run - time.monotonic()))
        finally:
            self.held.discard(job.name)
            self._release(slot)

    def _release(self, slot: _Slot) -> None:
        """Free the lease now, or, when a thread still works for this job (a sync run,
        or a lease call that may yet acquire), as soon as that thread is done: another
        worker must not start the job while it still runs here."""
        cf = slot.inflight
        if cf is not None and not cf.done():
            log.warning("job_left_running", job=slot.job.name, run=slot.inflight_is_run)
            cf.add_done_callback(lambda f: self._finish_orphan(slot, f))
            return
        slot.lease.release()
        log.info("lease_released", job=slot.job.name, holder=self.holder)

    def _finish_orphan(self, slot: _Slot, cf: concurrent.futures.Future[Any]) -> None:
        """In the job's thread, after the loop was cancelled: record, then release."""
        try:
            if slot.inflight_is_run and not cf.cancelled():
                exc = cf.exception()
                self._record(slot.job, exc is None, describe_error(exc) if exc else None)
        finally:
            slot.lease.release()
            log.info("lease_released", job=slot.job.name, holder=self.holder, late=True)

    async def _due_in(self, slot: _Slot) -> float:
        """Seconds until the job is due, from the last start that any worker recorded,
        so a restart or a failover does not run an hourly job again at once."""
        job = slot.job
        try:
            last = await self._in_thread(slot, last_started, job.name)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("job_state_read_failed", job=job.name, error=describe_error(exc))
            return 0.0
        if last is None:
            return 0.0
        wait = (last + timedelta(seconds=job.interval) - utcnow()).total_seconds()
        return min(max(wait, 0.0), job.interval)

    async def _run_once(self, slot: _Slot) -> None:
        """Run the job once and record the run in ``job_state``."""
        job = slot.job
        try:
            await self._in_thread(slot, record_start, job.name, self.holder, utcnow())
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("job_state_write_failed", job=job.name, error=describe_error(exc))
        ok, error = True, None
        t0 = time.monotonic()
        try:
            if job.is_async:
                await job.func()
            else:
                result = await self._in_thread(slot, job.func, is_run=True)
                if inspect.isawaitable(result):  # e.g. an object with async __call__
                    await result
        except asyncio.CancelledError:
            if slot.inflight is None or slot.inflight.done():  # else the thread records
                self._record(job, False, "Cancelled: the runner stopped during the run")
            raise
        except Exception as exc:
            ok, error = False, describe_error(exc)
            log.error("job_failed", job=job.name, error=error,
                      traceback="".join(traceback.format_tb(exc.__traceback__)))
        else:
            log.info("job_finished", job=job.name, seconds=round(time.monotonic() - t0, 3))
        await self._in_thread(slot, self._record, job, ok, error)

    def _record(self, job: Job, ok: bool, error: str | None) -> None:
        _count_run(job.name, ok)
        try:
            record_finish(job.name, self.holder, utcnow(), ok, error)
        except Exception as exc:
            log.warning("job_state_write_failed", job=job.name, error=describe_error(exc))


def _released(lease: Lease) -> bool:
    lease.release()
    return True
