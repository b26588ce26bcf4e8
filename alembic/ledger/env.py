"""Alembic environment for the ledger database (see casino_app.migrations)."""

from casino_app.migrations import run_env

run_env("ledger")
