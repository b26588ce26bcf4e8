"""The ``app_env`` and ``pg_env`` fixtures of every layer (tests/conftest.py imports them).

Running every migration for every test (and creating two PostgreSQL databases, ~0.3 s
each) was most of the suite's time. These give each test the same thing, two databases
exactly as the migrations leave them, but build that state once per session:

* SQLite: the two migrated files are copied into the test's data folder.
* PostgreSQL: one migrated database pair is snapshotted (rows of every table, sequence
  values, trigger and column layout) and put back before each test: other connections
  are ended, disabled triggers re-enabled, every table truncated and refilled from the
  snapshot. If a test changed the schema (dropped a trigger, say), the pair is rebuilt.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from alembic import command

from tests.support.services import PgCluster


def _reset_process_state() -> None:
    from tests.conftest import _reset_process_state as reset

    reset()


def _migrate_engines(identity_url: str, ledger_url: str) -> None:
    from casino_app.core.db import make_engine
    from casino_app.migrations import alembic_config

    for name, url in (("identity", identity_url), ("ledger", ledger_url)):
        engine = make_engine(url)
        try:
            command.upgrade(alembic_config(name, engine), "head")
        finally:
            engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("sqlite-template")
    _migrate_engines(f"sqlite:///{folder / 'identity.db'}", f"sqlite:///{folder / 'ledger.db'}")
    return folder


@pytest.fixture
def app_env(base_env: Path, sqlite_template: Path) -> Iterator[Path]:
    """Two fresh, migrated SQLite files (copies of a session-wide migrated pair)."""
    data = base_env / "data"
    data.mkdir(parents=True, exist_ok=True)
    for f in sqlite_template.iterdir():
        shutil.copy(f, data / f.name)
    _reset_process_state()
    yield base_env
    _reset_process_state()


_LAYOUT_SQL = """
    SELECT 'trigger', c.relname || '.' || t.tgname, ''
      FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
     WHERE NOT t.tgisinternal
    UNION ALL
    SELECT 'column', table_name || '.' || column_name, data_type
      FROM information_schema.columns WHERE table_schema = 'public'
    ORDER BY 1, 2"""


@dataclass
class _Snapshot:
    name: str
    layout: list[tuple] = field(default_factory=list)
    tables: dict[str, bytes] = field(default_factory=dict)
    sequences: list[tuple[str, int | None, int]] = field(default_factory=list)


class _PgPair:
    """One identity/ledger database pair that is put back to its migrated state."""

    def __init__(self, cluster: PgCluster):
        self.cluster = cluster
        self.build()

    def _conn(self, db: str) -> psycopg.Connection:
        return psycopg.connect(self.cluster.url(db, driver=False), autocommit=True)

    def build(self) -> None:
        tag = uuid.uuid4().hex[:8]
        ident, ledger = f"id_{tag}", f"led_{tag}"
        _migrate_engines(self.cluster.create_database(ident), self.cluster.create_database(ledger))
        self.snapshots = [self._snapshot(ident), self._snapshot(ledger)]

    def _snapshot(self, db: str) -> _Snapshot:
        snap = _Snapshot(db)
        with self._conn(db) as c:
            snap.layout = c.execute(_LAYOUT_SQL).fetchall()
            tables = [r[0] for r in c.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'alembic_version' ORDER BY 1")]
            for t in tables:
                with c.cursor().copy(f'COPY "{t}" TO STDOUT') as cp:
                    snap.tables[t] = b"".join(bytes(chunk) for chunk in cp)
            snap.sequences = c.execute(
                "SELECT quote_ident(schemaname) || '.' || quote_ident(sequencename), "
                "last_value, start_value FROM pg_sequences").fetchall()
        return snap

    def _restore(self, snap: _Snapshot) -> bool:
        with self._conn(snap.name) as c:
            c.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE datname = current_database() AND pid <> pg_backend_pid()")
            for rel, trig in c.execute(
                    "SELECT tgrelid::regclass::text, tgname FROM pg_trigger "
                    "WHERE NOT tgisinternal AND tgenabled = 'D'").fetchall():
                c.execute(f'ALTER TABLE {rel} ENABLE TRIGGER "{trig}"')
            if c.execute(_LAYOUT_SQL).fetchall() != snap.layout:
                return False
            with c.transaction():
                c.execute("SET LOCAL session_replication_role = replica")
                names = ", ".join(f'"{t}"' for t in snap.tables)
                c.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
                for t, data in snap.tables.items():
                    if data:
                        with c.cursor().copy(f'COPY "{t}" FROM STDIN') as cp:
                            cp.write(data)
                for seq, last, start in snap.sequences:
                    if last is None:
                        c.execute("SELECT setval(%s, %s, false)", (seq, start))
                    else:
                        c.execute("SELECT setval(%s, %s, true)", (seq, last))
        return True

    def fresh(self) -> tuple[str, str]:
        """URLs of the pair, as the migrations left it."""
        if not all(self._restore(s) for s in self.snapshots):
            self.build()
        return tuple(self.cluster.url(s.name) for s in self.snapshots)  # type: ignore[return-value]


@pytest.fixture(scope="session")
def pg_pair(pg_cluster: PgCluster) -> _PgPair:
    return _PgPair(pg_cluster)


@pytest.fixture
def pg_env(base_env: Path, pg_cluster: PgCluster, pg_pair: _PgPair,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[PgCluster]:
    """Both databases on the private PostgreSQL cluster, as the migrations left them."""
    _reset_process_state()
    identity_url, ledger_url = pg_pair.fresh()
    monkeypatch.setenv("CASINO_IDENTITY_DB_URL", identity_url)
    monkeypatch.setenv("CASINO_LEDGER_DB_URL", ledger_url)
    _reset_process_state()
    yield pg_cluster
    _reset_process_state()


@pytest.fixture(autouse=True)
def mail_settles(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Wait for mail queued by a test before the next test starts: the mail thread reads
    the settings when it delivers, and must not drop a late message into another test's
    outbox."""
    from casino_app.core import mail

    futures = []
    real_send = mail.send

    def send(message: mail.Mail):  # noqa: ANN202
        future = real_send(message)
        futures.append(future)
        return future

    monkeypatch.setattr(mail, "send", send)
    yield
    for future in futures:
        try:
            future.result(timeout=20)
        except Exception:  # noqa: BLE001, S110 - a test about failures has seen it already
            pass
