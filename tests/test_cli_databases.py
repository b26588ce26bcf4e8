"""Every ``casino`` command that reads data, run before `casino migrate` (a fresh checkout:
no SQLite files; a fresh, empty PostgreSQL database), says so in one line and exits 2,
never a raw SQL error, and creates nothing. A database behind this version's schema and
one that cannot be reached are said the same way."""

from __future__ import annotations

import io
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from alembic import command

from casino_app.cli import main
from tests.conftest import _reset_process_state
from tests.support.cli_logging import forget_cli_logging  # noqa: F401 (autouse fixture)
from tests.support.services import PgCluster

FRESH = "no database yet: run `casino migrate`"

# Every command that reads or writes data, with what it needs to get that far.
DATA_COMMANDS = [
    ["ledger", "check"],
    ["ledger", "fund", "--currency", "BTC", "--amount", "0.5", "--reference", "tx-1"],
    ["audit", "verify"],
    ["keys", "rotate"],
    ["admin", "create", "--email", "boss@example.com"],
    ["reconcile"],
    ["worker"],
]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh(request: pytest.FixtureRequest, base_env: Path, monkeypatch: pytest.MonkeyPatch
          ) -> Iterator[str]:
    """Settings as on a fresh install: SQLite files that do not exist yet, or two new,
    empty PostgreSQL databases. Never migrated."""
    monkeypatch.setenv("CASINO_ETH_RPC_URL", "http://127.0.0.1:1")  # reconcile gets past it
    if request.param == "postgres":
        cluster: PgCluster = request.getfixturevalue("pg_cluster")
        tag = uuid.uuid4().hex[:8]
        monkeypatch.setenv("CASINO_IDENTITY_DB_URL", cluster.create_database(f"fid_{tag}"))
        monkeypatch.setenv("CASINO_LEDGER_DB_URL", cluster.create_database(f"fled_{tag}"))
    _reset_process_state()
    yield request.param
    _reset_process_state()


def _tables(url_var: str) -> list[str]:
    url = os.environ.get(url_var, "")
    if not url:
        return []
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as c:
        return [r[0] for r in c.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]


@pytest.mark.parametrize("args", DATA_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_a_command_before_migrate_says_run_migrate_and_creates_nothing(
        fresh: str, base_env: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("a good long pass phrase\n"))
    assert main(args) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("casino:")]
    assert lines and lines[0].startswith(f"casino: {FRESH}"), err
    assert "SQL" not in err and "Traceback" not in err and "sqlalche.me" not in err
    # nothing was made on the way: no SQLite file, no table in the empty databases
    data = base_env / "data"
    assert not (data / "identity.db").exists() and not (data / "ledger.db").exists()
    for var in ("CASINO_IDENTITY_DB_URL", "CASINO_LEDGER_DB_URL"):
        assert _tables(var) == []


def test_after_migrate_the_same_commands_work(fresh: str, capsys: pytest.CaptureFixture[str]
                                              ) -> None:
    assert main(["migrate"]) == 0
    assert main(["ledger", "check"]) == 0
    assert "ledger: all invariants hold" in capsys.readouterr().out
    assert main(["audit", "verify"]) == 0


def test_a_database_behind_this_version_says_run_migrate(
        fresh: str, capsys: pytest.CaptureFixture[str]) -> None:
    from casino_app.migrations import alembic_config, head

    assert main(["migrate"]) == 0
    capsys.readouterr()
    ledger_head = head("ledger")
    cfg = alembic_config("ledger")
    command.stamp(cfg, "led0001")  # as if this code were newer than the database
    _reset_process_state()
    assert main(["ledger", "check"]) == 2
    err = capsys.readouterr().err
    assert "the ledger database is not at this version's schema" in err
    assert f"this version needs {ledger_head}): run `casino migrate`" in err


def test_an_unreachable_database_is_named_without_its_password(
        base_env: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from tests.support.services import free_port

    port = free_port()  # nothing listens there
    for name in ("identity", "ledger"):
        monkeypatch.setenv(f"CASINO_{name.upper()}_DB_URL",
                           f"postgresql://casino:db-pass-123@127.0.0.1:{port}/{name}")
    _reset_process_state()
    for args in (["ledger", "check"], ["migrate"]):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert f"casino: cannot reach the identity database (postgresql+psycopg://casino:" \
               f"***@127.0.0.1:{port}/identity): connection failed" in err, err
        assert "db-pass-123" not in err and "Traceback" not in err


def test_migrate_and_admin_create_say_what_an_operator_needs(
        fresh: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A fresh install printed 29 lines of alembic ("setup plugin ...", "Running upgrade
    ...") before the one useful line; now one line per database that moved, none when
    nothing did, and `admin create`'s line on stdout alone."""
    assert main(["migrate"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("databases at head: identity=")
    assert "Running upgrade" not in err and "setup plugin" not in err
    moved = [line for line in err.splitlines() if "database_migrated" in line]
    assert len(moved) == 2, err
    assert len(err.splitlines()) <= 4, err       # the two moves (and a dev key warning)
    _reset_process_state()
    assert main(["migrate"]) == 0                  # already at head: nothing to say
    assert "database_migrated" not in capsys.readouterr().err
    monkeypatch.setattr(sys, "stdin", io.StringIO("a good long pass phrase\n"))
    assert main(["admin", "create", "--email", "Boss@Example.com"]) == 0
    out, err = capsys.readouterr()
    assert out == "created admin account #1 for boss@example.com\n"
    assert "alembic" not in err
