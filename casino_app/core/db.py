"""Database engines for the two databases and the unit of work that owns a transaction.

identity: personal data and credentials.   ledger: pseudonymous player ids and money.
A unit of work commits only when its block ends cleanly; an exception rolls it back.
On SQLite every transaction starts with BEGIN IMMEDIATE so writers are serialized.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from sqlalchemy import Engine, create_engine, event
from sqlalchemy import exc as exc_mod
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from casino_app.core.settings import get_settings


class IdentityBase(DeclarativeBase):
    """Tables of the identity database (people, credentials, audit)."""


class LedgerBase(DeclarativeBase):
    """Tables of the ledger database (pseudonymous ids, money, jobs)."""


IDLE_PING_SECONDS = 2.0


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            from pathlib import Path

            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=8, max_overflow=8, pool_pre_ping=False,
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA synchronous=FULL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn):  # type: ignore[no-untyped-def]
            # Writers take the write lock up front (no upgrade deadlocks); readers don't.
            if conn.get_execution_options().get("readonly"):
                conn.exec_driver_sql("BEGIN")
            else:
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    # No ping per checkout (it was one round trip of the ~5 a bet needs): a connection is
    # pinged only after it sat idle in the pool for IDLE_PING_SECONDS, when it may have
    # been dropped (server restart, idle timeout). A connection that breaks while in
    # use fails its transaction (never a false success) and SQLAlchemy then replaces
    # every pooled connection opened before the failure.
    engine = create_engine(url, pool_pre_ping=False, pool_size=10, max_overflow=20,
                           pool_recycle=1800)

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_conn, record):  # type: ignore[no-untyped-def]
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_conn, record, _proxy):  # type: ignore[no-untyped-def]
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < IDLE_PING_SECONDS:
            return
        try:
            dbapi_conn.execute("SELECT 1")
            dbapi_conn.rollback()
        except Exception as exc:  # the pool retries with a new connection
            raise exc_mod.DisconnectionError(str(exc)) from exc

    return engine


def dbapi_url(url: Any) -> str:
    """A PostgreSQL engine's URL as psycopg's own ``connect`` takes it."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class RawReader:
    """Read-only DBAPI connections in autocommit for the one read every websocket event
    makes (the session check): no ORM session, no pool checkout, no BEGIN/COMMIT, a
    prepared statement. One connection per thread for ``one``; on PostgreSQL, one
    asyncio connection per event loop for ``one_async``, so an event awaits the round
    trip without a worker thread. CPU per lookup on PostgreSQL (2026-12-04): 0.16 ms
    awaited here, 0.30 ms through ``asyncio.to_thread`` and an ORM unit of work.

    Each read sees what is committed at that moment. A connection that broke (server
    restart, terminated backend) is replaced and the read tried once more. Queries use
    positional parameters in the driver's style, ``param`` (``?`` or ``%s``)."""

    def __init__(self, engine: Engine) -> None:
        self.url = engine.url
        self.sqlite = engine.dialect.name == "sqlite"
        self.param = "?" if self.sqlite else "%s"
        self._local = threading.local()
        self._loops: dict[int, tuple[Any, Any]] = {}  # id(loop) -> (loop, connection)
        self._pending: dict[int, tuple[Any, asyncio.Future]] = {}  # being made, per loop
        self._all: list[Any] = []
        self._lock = threading.Lock()
        self._closed = False

    def _dsn(self) -> str:
        return dbapi_url(self.url)

    _PG_OPTIONS = "-c default_transaction_read_only=on -c statement_timeout=5000"

    def _keep(self, conn: Any) -> Any:
        with self._lock:
            if self._closed:
                conn.close()
                raise RuntimeError("the database reader was closed")
            self._all.append(conn)
        return conn

    def _forget(self, conn: Any) -> None:
        with self._lock:
            if conn in self._all:
                self._all.remove(conn)

    def _open(self) -> Any:
        if self.sqlite:
            conn: Any = sqlite3.connect(self.url.database or ":memory:", timeout=5,
                                        isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA query_only = ON")
        else:
            conn = psycopg.connect(self._dsn(), autocommit=True, connect_timeout=5,
                                   application_name="casino-reader", options=self._PG_OPTIONS)
        self._local.conn = self._keep(conn)
        return conn

    def one(self, sql: str, params: tuple) -> tuple | None:
        """The first row of ``sql`` or None, in this thread."""
        for attempt in (1, 2):
            conn = getattr(self._local, "conn", None) or self._open()
            try:
                if self.sqlite:
                    return conn.execute(sql, params).fetchone()
                return conn.execute(sql, params, prepare=True).fetchone()
            except (psycopg.OperationalError, sqlite3.OperationalError):
                self._local.conn = None
                self._forget(conn)
                _close_quietly(conn)
                if attempt == 2:
                    raise
        return None  # pragma: no cover

    async def one_async(self, sql: str, params: tuple) -> tuple | None:
        """``one`` for a coroutine: SQLite (a local file, ~0.01 ms) reads in the event
        loop's thread; PostgreSQL awaits the round trip on the loop's own connection."""
        if self.sqlite:
            return self.one(sql, params)
        loop = asyncio.get_running_loop()
        for attempt in (1, 2):
            held = self._loops.get(id(loop))
            conn = (held[1] if held is not None and held[0] is loop
                    else await self._connect_for(loop))
            try:
                cur = await conn.execute(sql, params, prepare=True)
                return await cur.fetchone()
            except psycopg.OperationalError:
                held = self._loops.get(id(loop))
                if held is not None and held[1] is conn:  # not one made since by another
                    self._loops.pop(id(loop), None)
                self._forget(conn)
                await conn.close()
                if attempt == 2:
                    raise
        return None  # pragma: no cover

    async def _connect_for(self, loop: asyncio.AbstractEventLoop) -> Any:
        """The loop's connection, made once: events arriving while it is being made wait
        for the same one."""
        key = id(loop)
        pending = self._pending.get(key)
        if pending is not None and pending[0] is loop:
            return await asyncio.shield(pending[1])
        made: asyncio.Future = loop.create_future()
        self._pending[key] = (loop, made)
        try:
            self._drop_closed_loops()
            conn = self._keep(await psycopg.AsyncConnection.connect(
                self._dsn(), autocommit=True, connect_timeout=5,
                application_name="casino-reader", options=self._PG_OPTIONS))
            self._loops[key] = (loop, conn)
            made.set_result(conn)
            return conn
        except BaseException as exc:
            made.set_exception(exc)
            made.exception()  # read: the waiting events get it, nobody else need
            raise
        finally:
            self._pending.pop(key, None)

    def _drop_closed_loops(self) -> None:
        """Connections of event loops that ended (a test's ``asyncio.run``)."""
        for key, (loop, conn) in list(self._loops.items()):
            if loop.is_closed():
                self._loops.pop(key, None)
                self._forget(conn)
                _close_quietly(conn.pgconn)

    def close(self) -> None:
        with self._lock:
            conns, self._all, self._closed = self._all, [], True
            self._loops = {}
        for conn in conns:
            if isinstance(conn, psycopg.AsyncConnection):
                # its loop may be gone or elsewhere: close the socket underneath
                _close_quietly(conn.pgconn)
            else:
                _close_quietly(conn)


def _close_quietly(conn: Any) -> None:
    try:
        (conn.finish if hasattr(conn, "finish") else conn.close)()
    except Exception:  # noqa: BLE001, S110 - it is broken or closed already
        pass


@dataclass
class Databases:
    identity_engine: Engine
    ledger_engine: Engine
    identity_reader: RawReader = field(init=False)

    def __post_init__(self) -> None:
        self.identity_reader = RawReader(self.identity_engine)
        self._identity = sessionmaker(self.identity_engine, expire_on_commit=False)
        self._ledger = sessionmaker(self.ledger_engine, expire_on_commit=False)
        self._identity_ro = sessionmaker(self.identity_engine.execution_options(readonly=True),
                                         expire_on_commit=False)
        self._ledger_ro = sessionmaker(self.ledger_engine.execution_options(readonly=True),
                                       expire_on_commit=False)

    @contextmanager
    def identity(self, readonly: bool = False) -> Iterator[Session]:
        """A unit of work; ``readonly`` ones must not write (SQLite: no write lock)."""
        with (self._identity_ro if readonly else self._identity)() as session, \
                session.begin():
            yield session

    @contextmanager
    def ledger(self, readonly: bool = False) -> Iterator[Session]:
        with (self._ledger_ro if readonly else self._ledger)() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.identity_reader.close()
        self.identity_engine.dispose()
        self.ledger_engine.dispose()


_lock = threading.Lock()
_dbs: Databases | None = None


def databases() -> Databases:
    """The process-wide engines, built from settings on first use."""
    global _dbs
    if _dbs is None:
        with _lock:
            if _dbs is None:
                s = get_settings()
                _dbs = Databases(make_engine(s.identity_url), make_engine(s.ledger_url))
    return _dbs


def reset_databases() -> None:
    """Forget the engines (tests and settings changes)."""
    global _dbs
    with _lock:
        if _dbs is not None:
            _dbs.dispose()
        _dbs = None


@contextmanager
def identity_tx(readonly: bool = False) -> Iterator[Session]:
    with databases().identity(readonly) as s:
        yield s


@contextmanager
def ledger_tx(readonly: bool = False) -> Iterator[Session]:
    with databases().ledger(readonly) as s:
        yield s
