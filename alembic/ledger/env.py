"""Alembic environment for the ledger database (see casino_app.core.migrations)."""

from casino_app.core.migrations import run_env

run_env("ledger")
