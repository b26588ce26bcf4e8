"""Settings: a bad value stops start-up with a message that names the variable."""

from __future__ import annotations

import base64
import os
import secrets
import stat
from pathlib import Path

import pytest

from casino_app.core.settings import ConfigError, load_settings, parse_keyring
from tests.conftest import TEST_KEY


def _key(kid: str = "p1") -> str:
    return f"{kid}:{base64.b64encode(secrets.token_bytes(32)).decode()}"


@pytest.mark.parametrize(("var", "value"), [
    ("CASINO_SESSION_IDLE_MINUTES", "abc"),
    ("CASINO_SESSION_IDLE_MINUTES", "0"),
    ("CASINO_SESSION_ABSOLUTE_DAYS", "365"),
    ("CASINO_PUBLIC_URL", "ftp://x"),
    ("CASINO_PUBLIC_URL", "casino.example.com"),
    ("CASINO_ENCRYPTION_KEYS", "garbage"),
    ("CASINO_ENCRYPTION_KEYS", "k1:not base64!"),
    ("CASINO_ENCRYPTION_KEYS", "k1:" + base64.b64encode(b"too short").decode()),
    ("CASINO_ENCRYPTION_KEYS", f"{_key('dup')},{_key('dup')}"),
    ("CASINO_RATE_LOGIN_IP", "lots"),
    ("CASINO_RATE_REGISTER_IP", "5/fortnight"),
    ("CASINO_PORT", "70000"),
    ("CASINO_LOG_LEVEL", "LOUD"),
    ("CASINO_IDENTITY_DB_URL", "mysql://db/casino"),
    ("CASINO_ARGON2_MEMORY_KIB", "4096"),
    ("CASINO_ARGON2_TIME_COST", "1"),
    ("CASINO_MINIMUM_AGE", "16"),
    ("CASINO_LOCKOUT_THRESHOLD", "0"),
    ("CASINO_SMTP_STARTTLS", "maybe"),
    ("CASINO_ENV", "staging"),
    ("CASINO_BIND_HOST", "everywhere"),
    ("CASINO_BIND_HOST", "0.0.0.0:3000"),
    ("CASINO_BIND_HOST", ""),
])
def test_a_bad_value_is_refused_naming_the_variable(
        base_env: Path, monkeypatch: pytest.MonkeyPatch, var: str, value: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as exc:
        load_settings()
    assert str(exc.value).startswith(var + ":"), str(exc.value)


def test_a_bad_key_is_not_repeated_in_the_message(base_env: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    material = base64.b64encode(secrets.token_bytes(16)).decode()
    monkeypatch.setenv("CASINO_ENCRYPTION_KEYS", f"k1:{material}")
    with pytest.raises(ConfigError) as exc:
        load_settings()
    assert material not in str(exc.value) and "32 bytes" in str(exc.value)


def test_production_without_secrets_names_each_missing_variable(
        base_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CASINO_ENCRYPTION_KEYS")
    monkeypatch.setenv("CASINO_ENV", "production")
    with pytest.raises(ConfigError) as exc:
        load_settings()
    message = str(exc.value)
    for var in ("CASINO_IDENTITY_DB_URL", "CASINO_LEDGER_DB_URL", "REFLEX_REDIS_URL",
                "CASINO_ENCRYPTION_KEYS", "CASINO_SMTP_HOST", "CASINO_PUBLIC_URL",
                "CASINO_METRICS_TOKEN"):
        assert var in message, message


def _production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASINO_ENV", "production")
    monkeypatch.setenv("CASINO_IDENTITY_DB_URL", "postgresql://casino:pw@db/identity")
    monkeypatch.setenv("CASINO_LEDGER_DB_URL", "postgres://casino:pw@db/ledger")
    monkeypatch.setenv("REFLEX_REDIS_URL", "redis://redis:6379/0")
    monkeypatch.setenv("CASINO_SMTP_HOST", "smtp.example.com")
    monkeypatch.setenv("CASINO_PUBLIC_URL", "https://casino.example.com/")
    monkeypatch.setenv("CASINO_METRICS_TOKEN", "0123456789abcdef" * 2)


def test_production_requires_a_long_metrics_token_like_any_other_secret(
        base_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """/api/metrics shows sign-in outcomes and invariant counters: production does not
    start with it open, nor with a guessable token; a file works like for other secrets."""
    _production(monkeypatch)
    for value in ("", "short-token"):
        monkeypatch.setenv("CASINO_METRICS_TOKEN", value)
        with pytest.raises(ConfigError) as exc:
            load_settings()
        assert str(exc.value) == ("configuration: production needs: CASINO_METRICS_TOKEN (or "
                                  "CASINO_METRICS_TOKEN_FILE; at least 32 characters, e.g. "
                                  "from `openssl rand -hex 32`)"), str(exc.value)
    monkeypatch.delenv("CASINO_METRICS_TOKEN")
    token_file = tmp_path / "metrics-token"
    token_file.write_text("f" * 64 + "\n")
    monkeypatch.setenv("CASINO_METRICS_TOKEN_FILE", str(token_file))
    assert load_settings().metrics_token == "f" * 64
    monkeypatch.delenv("CASINO_METRICS_TOKEN_FILE")
    monkeypatch.setenv("CASINO_ENV", "development")   # development: open unless set
    assert load_settings().metrics_token == ""


def test_a_complete_production_configuration_is_accepted(
        base_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _production(monkeypatch)
    s = load_settings()
    assert s.is_production
    assert s.identity_url == "postgresql+psycopg://casino:pw@db/identity"
    assert s.ledger_url == "postgresql+psycopg://casino:pw@db/ledger"
    assert s.public_url == "https://casino.example.com"


def test_production_needs_two_different_databases_and_https(
        base_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _production(monkeypatch)
    monkeypatch.setenv("CASINO_LEDGER_DB_URL", "postgresql://casino:pw@db/identity")
    monkeypatch.setenv("CASINO_PUBLIC_URL", "http://casino.example.com")
    with pytest.raises(ConfigError) as exc:
        load_settings()
    assert "CASINO_LEDGER_DB_URL (must differ" in str(exc.value)
    assert "CASINO_PUBLIC_URL (must be https://" in str(exc.value)


def test_the_key_can_come_from_a_file(base_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = _key("f1")
    path = base_env / "keys.txt"
    path.write_text(key + "\n")
    monkeypatch.delenv("CASINO_ENCRYPTION_KEYS")
    monkeypatch.setenv("CASINO_ENCRYPTION_KEYS_FILE", str(path))
    s = load_settings()
    assert s.keyring == parse_keyring(key)
    smtp = base_env / "smtp.txt"
    smtp.write_text("mail-secret\n")
    monkeypatch.setenv("CASINO_SMTP_PASSWORD_FILE", str(smtp))
    assert load_settings().smtp_password == "mail-secret"


def test_an_unreadable_key_file_is_named(base_env: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASINO_ENCRYPTION_KEYS_FILE", str(base_env / "missing.txt"))
    with pytest.raises(ConfigError) as exc:
        load_settings()
    assert str(exc.value).startswith("CASINO_ENCRYPTION_KEYS_FILE:")


def test_a_bad_key_in_a_key_file_is_refused(base_env: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    path = base_env / "keys.txt"
    path.write_text("garbage")
    monkeypatch.setenv("CASINO_ENCRYPTION_KEYS_FILE", str(path))
    with pytest.raises(ConfigError) as exc:
        load_settings()
    assert "CASINO_ENCRYPTION_KEYS" in str(exc.value)


def test_development_creates_one_private_key_and_keeps_it(
        base_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CASINO_ENCRYPTION_KEYS")
    first = load_settings().keyring
    assert load_settings().keyring == first
    path = base_env / "data" / "dev-secrets.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_casino_run_listens_on_this_machine_only_unless_told_otherwise(
        base_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().bind_host == "127.0.0.1"          # development
    _production(monkeypatch)
    assert load_settings().bind_host == "127.0.0.1"          # production too
    monkeypatch.setenv("CASINO_BIND_HOST", " 0.0.0.0 ")      # a container: every interface
    assert load_settings().bind_host == "0.0.0.0"
    monkeypatch.setenv("CASINO_BIND_HOST", "::")
    assert load_settings().bind_host == "::"


def test_the_defaults_are_the_documented_ones(base_env: Path) -> None:
    s = load_settings()
    assert (s.session_idle_minutes, s.session_absolute_days) == (30, 7)
    assert (s.lockout_threshold, s.lockout_window_minutes) == (5, 15)
    assert (s.reset_token_minutes, s.unlock_token_minutes, s.minimum_age) == (15, 60, 18)
    assert (s.argon2_memory_kib, s.argon2_time_cost) == (19456, 2)
    assert s.keyring == parse_keyring(TEST_KEY)
    assert s.identity_url.startswith("sqlite:///") and s.identity_url.endswith("identity.db")
    assert s.identity_url != s.ledger_url
