"""Alembic environment for the identity database (see casino_app.core.migrations)."""

from casino_app.core.migrations import run_env

run_env("identity")
