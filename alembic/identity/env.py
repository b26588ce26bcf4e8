"""Alembic environment for the identity database (see casino_app.migrations)."""

from casino_app.migrations import run_env

run_env("identity")
