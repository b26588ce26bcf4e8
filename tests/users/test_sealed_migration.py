"""Migration ide0005 on a database with people in it: upgrade seals every personal field
and indexes the emails (sign-in by email works after it), downgrade gives the plaintext
back, and upgrading again works; on SQLite and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text

from casino_app.core.db import make_engine
from casino_app.migrations import alembic_config
from tests.support.services import PgCluster

ROWS = [
    "INSERT INTO users (id, player_id, email, display_name, date_of_birth, password_hash, "
    "role, created_at, password_changed_at, last_login_ip, previous_login_ip) VALUES (1, "
    "'p-1', 'ann.old@example.com', 'Ann Oldtimer', '1990-01-02', 'h', 'player', "
    "'2026-01-01', '2026-01-01', '192.0.2.1', NULL)",
    "INSERT INTO users (id, player_id, email, display_name, date_of_birth, password_hash, "
    "role, created_at, password_changed_at) VALUES (2, 'p-2', 'staff.old@example.com', "
    "'Staff Oldtimer', NULL, 'h', 'admin', '2026-01-01', '2026-01-01')",
    "INSERT INTO user_sessions (id, user_id, token_hash, created_at, last_seen_at, "
    "absolute_expires_at, ip, user_agent, device) VALUES (1, 1, 'th', '2026-01-01', "
    "'2026-01-01', '2026-01-02', '192.0.2.2', 'ua', 'd')",
    "INSERT INTO login_attempts (id, user_id, at, ip, success) VALUES (1, NULL, "
    "'2026-01-01', '192.0.2.3', false)",
    "INSERT INTO pending_registrations (id, email, display_name, date_of_birth, "
    "password_hash, token_hash, terms_accepted_at, created_at, expires_at, attempts) VALUES "
    "(1, 'bob.pending@example.com', 'Bob Pending', '1980-05-06', 'h', 'tk', '2026-01-01', "
    "'2026-01-01', '2026-01-02', 0)",
]
CLEAR = ("ann.old@example.com", "Ann Oldtimer", "1990-01-02", "192.0.2.1", "192.0.2.2",
         "192.0.2.3", "bob.pending@example.com", "Bob Pending", "staff.old@example.com")


def _round_trip(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy.orm import Session

    from casino_app.security.sealed import email_index, reset_index_key_cache
    from casino_app.users.models import PendingRegistration, User, UserSession
    from tests.conftest import _reset_process_state

    monkeypatch.setenv("CASINO_IDENTITY_DB_URL", url)  # email_index reads its key there
    _reset_process_state()
    engine = make_engine(url)
    try:
        cfg = alembic_config("identity", engine)
        command.upgrade(cfg, "ide0004")
        with engine.begin() as c:
            for sql in ROWS:
                c.execute(text(sql))
        for _ in range(2):  # upgrade, downgrade, upgrade again
            command.upgrade(cfg, "head")
            reset_index_key_cache()  # a new index key each time (downgrade drops it)
            with engine.connect() as c:
                dump = repr([c.execute(text(f"SELECT * FROM {t}")).all() for t in  # noqa: S608
                             ("users", "user_sessions", "login_attempts",
                              "pending_registrations")])
            for value in CLEAR:
                assert value not in dump
            with Session(engine) as s:
                ann = s.query(User).filter_by(email_index=email_index("ANN.old@example.com")
                                              ).one()
                assert (ann.email, ann.display_name, str(ann.date_of_birth),
                        ann.last_login_ip, ann.previous_login_ip) == \
                    ("ann.old@example.com", "Ann Oldtimer", "1990-01-02", "192.0.2.1", None)
                assert s.get(UserSession, 1).ip == "192.0.2.2"
                assert s.get(PendingRegistration, 1).email == "bob.pending@example.com"
            command.downgrade(cfg, "ide0004")
            with engine.connect() as c:
                assert c.execute(text(
                    "SELECT email, display_name, date_of_birth, last_login_ip FROM users "
                    "ORDER BY id")).all()[0][:2] == ("ann.old@example.com", "Ann Oldtimer")
                assert c.execute(text("SELECT ip FROM login_attempts")).scalar() == \
                    "192.0.2.3"
                assert c.execute(text("SELECT email FROM pending_registrations")).scalar() \
                    == "bob.pending@example.com"
    finally:
        engine.dispose()


def test_the_migration_seals_existing_people_and_gives_them_back_on_sqlite(
        base_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _round_trip(f"sqlite:///{base_env / 'identity-old.db'}", monkeypatch)


@pytest.mark.postgres
def test_the_migration_seals_existing_people_and_gives_them_back_on_postgres(
        base_env: Path, pg_cluster: PgCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    _round_trip(pg_cluster.create_database("ide0005_round_trip"), monkeypatch)
