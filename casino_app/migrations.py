"""Alembic for both databases: ``alembic/identity`` and ``alembic/ledger``.

``upgrade_all`` is what ``casino migrate`` runs; ``pending`` tells /api/readyz whether a
database is behind. No alembic.ini: the configuration is built here from settings.

This module also holds the table registry: it imports every layer's table modules, so
that each Base's metadata is complete when alembic compares it with a database
(``alembic/*/env.py`` -> ``run_env``; tests/core/test_models_match_migrations.py). It
sits beside ``cli.py`` at the top of the package, not in ``core``: core knows no layer
(tests/test_architecture.py). A new table module is added to the list below.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

# After core.db, the table registry: every module that declares tables on IdentityBase or
# LedgerBase (imported for their effect on the metadata).
from casino_app.core.db import databases
from casino_app.games import models as _games  # noqa: F401
from casino_app.jobs import models as _jobs  # noqa: F401
from casino_app.payments import address_models as _addresses  # noqa: F401
from casino_app.payments import deposit_models as _deposits  # noqa: F401
from casino_app.payments import hold_models as _holds  # noqa: F401
from casino_app.payments import models as _payments  # noqa: F401
from casino_app.payments import rate_models as _rates  # noqa: F401
from casino_app.payments import reconcile_models as _reconcile  # noqa: F401
from casino_app.payments import withdrawal_models as _withdrawals  # noqa: F401
from casino_app.payments.eth import safe_models as _eth_safe  # noqa: F401
from casino_app.payments.eth import sweep_models as _eth_sweep  # noqa: F401
from casino_app.security import anchor_models as _anchors  # noqa: F401
from casino_app.security import models as _security  # noqa: F401
from casino_app.security import outbox_models as _outbox  # noqa: F401
from casino_app.users import models as _users  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
DATABASES = ("identity", "ledger")


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


def upgrade_all() -> dict[str, str]:
    """Bring both databases to head; returns {database: head revision}."""
    out = {}
    for name in DATABASES:
        cfg = alembic_config(name)
        command.upgrade(cfg, "head")
        out[name] = head(name)
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
        context.configure(connection=connection, target_metadata=target,
                          render_as_batch=connection.dialect.name == "sqlite",
                          compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
