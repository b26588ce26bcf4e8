"""Alembic for both databases: ``alembic/identity`` and ``alembic/ledger``.

``upgrade_all`` is what ``casino migrate`` runs; ``pending`` tells /api/readyz whether a
database is behind; ``require_databases`` is what every other ``casino`` command that
reads data asks first, so that a fresh checkout says "no database yet: run `casino
migrate`" instead of printing a raw SQL error. No alembic.ini: the configuration is built
here from settings.

This module also holds the table registry: it imports every layer's table modules, so
that each Base's metadata is complete when alembic compares it with a database
(``alembic/*/env.py`` -> ``run_env``; tests/core/test_models_match_migrations.py). It
sits beside ``cli.py`` at the top of the package, not in ``core``: core knows no layer
(tests/test_architecture.py). A new table module is added to the list below.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from types import ModuleType

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import DBAPIError

# After core.db, the table registry: every module that declares tables on IdentityBase or
# LedgerBase (imported for their effect on the metadata).
from casino_app.core.db import databases
from casino_app.core.logging import get_logger
from casino_app.games import models as _games  # noqa: F401
from casino_app.games.loyalty import models as _loyalty  # noqa: F401
from casino_app.games.providers import models as _providers  # noqa: F401
from casino_app.jobs import models as _jobs  # noqa: F401
from casino_app.payments import address_models as _addresses  # noqa: F401
from casino_app.payments import band_models as _bands  # noqa: F401
from casino_app.payments import deposit_models as _deposits  # noqa: F401
from casino_app.payments import hold_models as _holds  # noqa: F401
from casino_app.payments import models as _payments  # noqa: F401
from casino_app.payments import rate_models as _rates  # noqa: F401
from casino_app.payments import reconcile_models as _reconcile  # noqa: F401
from casino_app.payments import reserve_models as _reserves  # noqa: F401
from casino_app.payments import withdrawal_models as _withdrawals  # noqa: F401
from casino_app.payments.btc import models as _btc  # noqa: F401
from casino_app.payments.eth import safe_models as _eth_safe  # noqa: F401
from casino_app.payments.eth import sweep_models as _eth_sweep  # noqa: F401
from casino_app.security import anchor_models as _anchors  # noqa: F401
from casino_app.security import models as _security  # noqa: F401
from casino_app.security import outbox_models as _outbox  # noqa: F401
from casino_app.users import models as _users  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
log = get_logger("casino.migrations")
DATABASES = ("identity", "ledger")


def earlier_revision(migration_file: str, filename: str) -> ModuleType:
    """The revision file ``filename`` beside ``migration_file``, loaded as a module: for a
    revision that builds on an earlier one's SQL (alembic's version folders are not
    packages, so it cannot be imported)."""
    import importlib.util

    path = Path(migration_file).with_name(filename)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"{filename} cannot be loaded")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def replaced_once(sql: str, changes: dict[str, str], source: str) -> str:
    """``sql`` with each fragment of ``changes`` replaced; each must be there exactly once,
    so an edited earlier revision fails loudly instead of being changed wrongly."""
    for old, new in changes.items():
        if sql.count(old) != 1:
            raise RuntimeError(f"{source}'s SQL is not the one this revision changes")
        sql = sql.replace(old, new)
    return sql


def alembic_config(name: str, engine: Engine | None = None) -> Config:
    if name not in DATABASES:
        raise ValueError(f"unknown database {name!r}")
    cfg = Config()
    cfg.set_main_option("script_location", str(ROOT / "alembic" / name))
    cfg.set_main_option("path_separator", "os")
    eng = engine or _engine(name)
    cfg.set_main_option("sqlalchemy.url", eng.url.render_as_string(hide_password=False)
                        .replace("%", "%%"))
    cfg.attributes["engine"] = eng
    cfg.attributes["database"] = name
    return cfg


def _engine(name: str) -> Engine:
    dbs = databases()
    return dbs.identity_engine if name == "identity" else dbs.ledger_engine


# Alembic's own lines (its plugins, "Context impl", "Running upgrade ..." per revision: 29
# on a fresh install) are not what an operator starting the app needs: one line per
# database that moved is (``database_migrated``).
_ALEMBIC_CHATTER = ("alembic.runtime.migration", "alembic.runtime.plugins")


def upgrade_all() -> dict[str, str]:
    """Bring both databases to head; returns {database: head revision}. Logs one line per
    database that moved (from, to), nothing for one already at head."""
    chatter = [logging.getLogger(n) for n in _ALEMBIC_CHATTER]
    levels = [c.level for c in chatter]
    for c in chatter:
        c.setLevel(logging.WARNING)
    out = {}
    try:
        for name in DATABASES:
            before = current(name)
            command.upgrade(alembic_config(name), "head")
            out[name] = head(name)
            if before != out[name]:
                log.info("database_migrated", database=name, before=before or "empty",
                         now=out[name])
    finally:
        for c, level in zip(chatter, levels, strict=True):
            c.setLevel(level)
    return out


@lru_cache(maxsize=len(DATABASES))
def head(name: str) -> str:
    """The newest revision shipped for a database. The scripts do not change while the
    process runs, so they are read once (readyz asks on every probe)."""
    if name not in DATABASES:
        raise ValueError(f"unknown database {name!r}")
    cfg = Config()
    cfg.set_main_option("script_location", str(ROOT / "alembic" / name))
    cfg.set_main_option("path_separator", "os")
    return ScriptDirectory.from_config(cfg).get_current_head() or ""


def current(name: str, engine: Engine | None = None) -> str:
    eng = engine or _engine(name)
    with eng.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision() or ""


def pending(name: str) -> bool:
    """True when the database is not at the newest migration."""
    return current(name) != head(name)


class DatabaseNotReady(Exception):
    """A database is missing, unreachable or not at the newest migration; the message
    says so in one line (no SQL, no password) and what to do."""


def _where(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def _stored_revision(engine: Engine) -> str:
    """The revision recorded in ``alembic_version`` ("" when there is none), read-only
    (no write lock on SQLite) and without alembic's start-up log lines."""
    with engine.execution_options(readonly=True).connect() as conn:
        if not sa_inspect(conn).has_table("alembic_version"):
            return ""
        return ",".join(conn.execute(text("SELECT version_num FROM alembic_version"))
                        .scalars())


def database_problem(name: str, *, schema: bool = True) -> str | None:
    """What stops a command from using database ``name`` (None: nothing). With
    ``schema=False`` only whether it can be reached (``casino migrate`` creates the rest).
    Never creates anything: a missing SQLite file is reported, not made."""
    engine = _engine(name)
    path = engine.url.database if engine.url.get_backend_name() == "sqlite" else None
    if path and path != ":memory:" and not Path(path).exists():
        return None if not schema else \
            f"no database yet: run `casino migrate` (the {name} database {path} does not exist)"
    try:
        revision = _stored_revision(engine)
    except DBAPIError as exc:
        reason = (str(exc.orig).strip().splitlines() or [type(exc.orig).__name__])[0]
        return f"cannot reach the {name} database ({_where(engine)}): {reason}"
    if not schema:
        return None
    if not revision:
        return f"no database yet: run `casino migrate` (the {name} database at " \
               f"{_where(engine)} was never migrated)"
    if revision != head(name):
        return f"the {name} database is not at this version's schema (it is at " \
               f"{revision}, this version needs {head(name)}): run `casino migrate`"
    return None


def require_databases(*, schema: bool = True) -> None:
    """Raise ``DatabaseNotReady`` naming the first database a command cannot use."""
    for name in DATABASES:
        problem = database_problem(name, schema=schema)
        if problem:
            raise DatabaseNotReady(problem)


def run_env(name: str) -> None:
    """Body of alembic/<name>/env.py (online mode only)."""
    from alembic import context

    from casino_app.core.db import IdentityBase, LedgerBase

    target = IdentityBase.metadata if name == "identity" else LedgerBase.metadata
    cfg = context.config
    engine: Engine | None = cfg.attributes.get("engine")
    if engine is None:
        from sqlalchemy import create_engine

        engine = create_engine(cfg.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # A batch migration re-creates a table (copy, DROP, rename): with foreign keys
            # on, dropping a parent table (users) would delete its children through ON
            # DELETE CASCADE. SQLite's procedure: foreign keys off (only outside a
            # transaction, so before the first one), then foreign_key_check before COMMIT.
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
        try:
            context.configure(connection=connection, target_metadata=target,
                              render_as_batch=sqlite, compare_type=True)
            with context.begin_transaction():
                context.run_migrations()
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                    if broken:
                        raise RuntimeError(f"the migration broke foreign keys: {broken[:5]}")
            connection.commit()
        finally:
            if sqlite:
                if connection.in_transaction():
                    connection.rollback()
                connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")
