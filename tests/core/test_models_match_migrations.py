"""Both databases, migrated to head, hold exactly what the models declare (a model changed
without its migration, or the reverse, shows here)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import casino_app.migrations  # noqa: F401  (the table registry: every table module)
from casino_app.core.db import IdentityBase, LedgerBase, databases


def test_migrations_build_what_the_models_declare(any_env: str) -> None:
    dbs = databases()
    for engine, base in ((dbs.ledger_engine, LedgerBase), (dbs.identity_engine, IdentityBase)):
        with engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn), base.metadata)
        assert diffs == [], f"{engine.url.database}: {diffs}"
