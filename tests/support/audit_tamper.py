"""What an attacker with write access to the identity database does first: switch off the
append-only triggers of the audit log (so tests can prove verification still notices)."""

from __future__ import annotations

from sqlalchemy import text

from casino_app.core.db import databases


def exec_identity(sql: str) -> None:
    with databases().identity_engine.begin() as conn:
        conn.execute(text(sql))


def open_tampering(env: str) -> None:
    if env == "postgres":
        exec_identity("ALTER TABLE audit_log DISABLE TRIGGER USER")
    else:
        exec_identity("DROP TRIGGER audit_log_no_update")
        exec_identity("DROP TRIGGER audit_log_no_delete")
