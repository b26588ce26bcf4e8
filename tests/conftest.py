"""Shared fixtures.

``app_env`` points settings at fresh, migrated SQLite files (the embedded default) in a
temporary folder; ``pg_env`` does the same on a private PostgreSQL cluster (both from
tests/support/fast_env.py: migrated once per session, copied or restored per test).
Service tests that must hold on both take ``any_env`` (parametrised over the two).
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.services import PgCluster, RedisServer

TEST_KEY = "t1:" + base64.b64encode(secrets.token_bytes(32)).decode()


def _reset_process_state() -> None:
    from casino_app.core.db import reset_databases
    from casino_app.core.settings import reset_settings_cache
    from casino_app.payments.currencies import reset_currencies
    from casino_app.security.ratelimit import reset_limiter
    from casino_app.users.passwords import reset_password_context

    try:
        from casino_app.payments.settlement import reset as reset_settlement
    except ImportError:
        pass
    else:
        reset_settlement()  # its thread writes to the databases being forgotten
    reset_databases()
    reset_settings_cache()
    reset_limiter()
    reset_password_context()
    reset_currencies()
    try:
        from casino_app.games.bets import reset_bankroll_cache
        from casino_app.games.config import reset_config
    except ImportError:  # the games package is being built
        return
    reset_bankroll_cache()
    reset_config()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    cluster = PgCluster().start()
    yield cluster
    cluster.destroy()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
def base_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Environment shared by every configuration: data folder, key, fast argon2 is NOT
    used (tests run the production parameters)."""
    for key in list(os.environ):
        if key.startswith("CASINO_") or key == "REFLEX_REDIS_URL":
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("CASINO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CASINO_ENCRYPTION_KEYS", TEST_KEY)
    monkeypatch.setenv("CASINO_LOG_JSON", "true")
    # New accounts start with no play money here: the tests of the layers count every
    # unit from zero (the welcome has its own tests in tests/payments/test_players.py)
    monkeypatch.setenv("CASINO_FUN_WELCOME", "0")
    # `casino run` in a test starts no development game provider unless the test says so
    monkeypatch.setenv("CASINO_DEV_PROVIDERS", "false")
    _reset_process_state()
    return tmp_path


# Every layer's databases: two migrated SQLite files copied from a session-wide template,
# or a PostgreSQL pair put back to its migrated state (tests/support/fast_env.py).
from tests.support.fast_env import (  # noqa: E402, F401
    app_env,
    mail_settles,
    pg_env,
    pg_pair,
    sqlite_template,
)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_env(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run the test on the embedded SQLite default and on PostgreSQL."""
    if request.param == "sqlite":
        request.getfixturevalue("app_env")
    else:
        request.getfixturevalue("pg_env")
    yield request.param


@pytest.fixture
def bets_env(any_env: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """``any_env`` with the per-player bet rate limit out of the way (tests that place
    many bets quickly)."""
    from casino_app.core.settings import reset_settings_cache
    from casino_app.security.ratelimit import reset_limiter

    monkeypatch.setenv("CASINO_RATE_BETS_PLAYER", "100000/second")
    reset_settings_cache()
    reset_limiter()
    yield any_env


@pytest.fixture
def redis_env(redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> RedisServer:
    """Rate limits (and anything else Redis-backed) on the private Redis server."""
    import redis

    redis.Redis.from_url(redis_server.url).flushall()
    monkeypatch.setenv("REFLEX_REDIS_URL", redis_server.url)
    _reset_process_state()
    return redis_server


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Browser tests last: the fast layers report first, and Playwright's event loop
    (alive while a browser is open) never overlaps tests that run their own loop. Among
    them, those on the shared app (``live_app``) first, together."""
    items.sort(key=lambda item: ("/tests/e2e/" in str(item.path),
                                 "live_app" not in getattr(item, "fixturenames", ())))
