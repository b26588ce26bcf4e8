"""Leases: the guarantee that a background job runs in one process at a time.

A lease is held per job name. Two kinds, chosen by the ledger database's dialect:

* ``InProcessLease``: the embedded default (SQLite) is one process, so a process-wide
  registry keyed by job name is enough.
* ``PostgresAdvisoryLease``: production. A dedicated connection holds a session-level
  ``pg_try_advisory_lock(key)``; key is a stable 64-bit hash of the job name. When the
  holder process dies its connection closes and PostgreSQL frees the lock, so a worker
  that is still alive takes the job over at its next attempt. ``still_held`` asks the
  server whether our backend still holds the lock, so a holder that lost its connection
  stops running the job.

The lease connections do not come from the ledger engine's pool (``NullPool`` engine on
the same URL): a lock never goes back into a pool, and leases never starve requests.
A worker that fails to get a lease closes its connection, so standby workers hold none.
"""

from __future__ import annotations

import fcntl
import hashlib
import threading
from pathlib import Path
from typing import IO, Protocol, runtime_checkable

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.pool import NullPool

from casino_app.core.logging import get_logger

log = get_logger("casino.jobs.lease")


@runtime_checkable
class Lease(Protocol):
    """Exclusive right to run one job. Methods are blocking and thread-safe."""

    name: str

    def try_acquire(self) -> bool:
        """Take the lease if it is free (or already ours); never waits for it."""
        ...

    def still_held(self) -> bool:
        """True while the lease is provably ours; False once it may have been lost."""
        ...

    def release(self) -> None:
        """Give the lease up (no-op when not held)."""
        ...


# In-process ---------------------------------------------------------------------------
_registry_lock = threading.Lock()
_registry: dict[str, InProcessLease] = {}


class InProcessLease:
    """A process-wide lease keyed by job name: one holder per name in this process.

    With ``lock_dir`` (the embedded SQLite default) it also holds an exclusive lock on a
    file there, so that ``casino run`` and a ``casino worker`` started beside it on the
    same machine never run one job twice; the OS drops the lock when a holder dies.
    """

    def __init__(self, name: str, lock_dir: Path | None = None) -> None:
        self.name = name
        self.lock_dir = lock_dir
        self._fh: IO[bytes] | None = None

    def _lock_file(self) -> bool:
        if self.lock_dir is None or self._fh is not None:
            return True
        self.lock_dir.mkdir(parents=True, exist_ok=True)
        fh = open(self.lock_dir / f"{advisory_key(self.name) & 0xFFFFFFFF:08x}.lock", "ab")  # noqa: SIM115
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            return False
        self._fh = fh
        return True

    def _unlock_file(self) -> None:
        if self._fh is not None:
            try:
                fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            finally:
                self._fh.close()
                self._fh = None

    def try_acquire(self) -> bool:
        with _registry_lock:
            holder = _registry.get(self.name)
            if holder is not None:
                return holder is self
            if not self._lock_file():
                return False
            _registry[self.name] = self
            return True

    def still_held(self) -> bool:
        with _registry_lock:
            return _registry.get(self.name) is self

    def release(self) -> None:
        with _registry_lock:
            if _registry.get(self.name) is self:
                del _registry[self.name]
                self._unlock_file()

    def __repr__(self) -> str:
        return f"InProcessLease({self.name!r})"


def in_process_holders() -> dict[str, InProcessLease]:
    """A copy of the in-process registry (for tests and diagnostics)."""
    with _registry_lock:
        return dict(_registry)


# PostgreSQL advisory lock ---------------------------------------------------------------
def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for a job name (same on every host and Python run)."""
    digest = hashlib.blake2b(f"casino-job:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


# libpq settings so a dead network is noticed in seconds rather than minutes.
_CONNECT_ARGS = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 10_000,
    "application_name": "casino-job-lease",
}
_engines_lock = threading.Lock()
_lease_engines: dict[str, Engine] = {}


def lease_engine(ledger_engine: Engine) -> Engine:
    """An unpooled engine on the ledger database's URL, for lease connections only."""
    url = ledger_engine.url.render_as_string(hide_password=False)
    with _engines_lock:
        eng = _lease_engines.get(url)
        if eng is None:
            eng = create_engine(ledger_engine.url, poolclass=NullPool,
                                connect_args=dict(_CONNECT_ARGS))
            _lease_engines[url] = eng
        return eng


_HELD_SQL = text(
    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'"
    " AND pid = pg_backend_pid() AND granted"
    " AND classid = CAST(CAST(:hi AS bigint) AS oid)"
    " AND objid = CAST(CAST(:lo AS bigint) AS oid) AND objsubid = 1)"
)


class PostgresAdvisoryLease:
    """A session-level advisory lock on a dedicated connection to the ledger database."""

    def __init__(self, name: str, engine: Engine | None = None) -> None:
        self.name = name
        self.key = advisory_key(name)
        self._hi = (self.key >> 32) & 0xFFFFFFFF
        self._lo = self.key & 0xFFFFFFFF
        if engine is None:
            from casino_app.core.db import databases

            engine = lease_engine(databases().ledger_engine)
        self._engine = engine
        self._conn: Connection | None = None
        self._held = False
        self._lock = threading.Lock()  # one operation at a time on the connection

    def try_acquire(self) -> bool:
        with self._lock:
            if self._held:
                return self._check_locked()
            try:
                if self._conn is None:
                    self._conn = self._engine.connect().execution_options(
                        isolation_level="AUTOCOMMIT")
                got = bool(self._conn.execute(
                    text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar())
            except Exception as exc:  # noqa: BLE001 - any failure means "not acquired"
                log.warning("lease_acquire_failed", job=self.name,
                            error=type(exc).__name__)
                self._drop_connection()
                return False
            if got:
                self._held = True
            else:
                self._drop_connection()  # standby workers keep no idle connection
            return got

    def still_held(self) -> bool:
        with self._lock:
            return self._held and self._check_locked()

    def _check_locked(self) -> bool:
        """Ask the server; on any doubt, drop the connection (which frees the lock)."""
        if self._conn is None:
            return False
        try:
            ok = bool(self._conn.execute(_HELD_SQL, {"hi": self._hi, "lo": self._lo})
                      .scalar())
        except Exception as exc:  # noqa: BLE001 - a broken connection means "lost"
            log.warning("lease_check_failed", job=self.name, error=type(exc).__name__)
            ok = False
        if not ok:
            self._held = False
            self._drop_connection()
        return ok

    def release(self) -> None:
        with self._lock:
            if self._conn is not None and self._held:
                try:
                    self._conn.execute(text("SELECT pg_advisory_unlock(:k)"),
                                       {"k": self.key})
                except Exception as exc:  # noqa: BLE001 - closing frees it anyway
                    log.warning("lease_unlock_failed", job=self.name,
                                error=type(exc).__name__)
            self._held = False
            self._drop_connection()

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.invalidate()  # closes the DBAPI connection: the server frees our locks
        except Exception:  # noqa: BLE001, S110 - already broken
            pass
        try:
            conn.close()
        except Exception:  # noqa: BLE001, S110 - already closed
            pass

    def __repr__(self) -> str:
        return f"PostgresAdvisoryLease({self.name!r}, key={self.key})"


def lease_for(job_name: str) -> Lease:
    """The lease kind that fits the configured ledger database."""
    from casino_app.core.db import databases

    engine = databases().ledger_engine
    if engine.dialect.name == "postgresql":
        return PostgresAdvisoryLease(job_name, lease_engine(engine))
    db_file = engine.url.database
    lock_dir = Path(db_file).resolve().parent / "job-locks" if db_file and \
        db_file != ":memory:" else None
    return InProcessLease(job_name, lock_dir)
