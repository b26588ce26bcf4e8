"""The ``casino`` command, in-process through ``casino_app.cli.main`` and once as a real
subprocess: exit status 0 on success, 2 on bad input or configuration, 1 when the audit
log is broken."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from casino_app.cli import main
from casino_app.core.db import databases
from casino_app.core.settings import parse_keyring
from casino_app.users.models import Role
from tests.conftest import _reset_process_state
from tests.support.cli_logging import forget_cli_logging  # noqa: F401 (autouse fixture)
from tests.users.helpers import PASSWORD, is_role, sign_in, user_count

CASINO = Path(sys.executable).with_name("casino")



def _stdin(monkeypatch: pytest.MonkeyPatch, text_in: str) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(text_in))


def test_migrate_works_and_can_be_run_again(base_env: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    for _ in range(2):
        assert main(["migrate"]) == 0
        out = capsys.readouterr().out
        assert re.search(r"databases at head: identity=\w+, ledger=\w+", out), out
    assert (base_env / "data" / "identity.db").exists()
    assert (base_env / "data" / "ledger.db").exists()


def test_admin_create_reads_the_password_from_stdin_and_the_admin_can_sign_in(
        app_env: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    _stdin(monkeypatch, PASSWORD + "\n")
    assert main(["admin", "create", "--email", " Boss@Example.com "]) == 0
    assert "created admin account #1 for boss@example.com" in capsys.readouterr().out
    assert is_role(sign_in("boss@example.com"), Role.admin)

    _stdin(monkeypatch, PASSWORD + "\n")
    assert main(["admin", "create", "--email", "help@example.com", "--role", "support",
                 "--name", "Help Desk"]) == 0
    assert is_role(sign_in("help@example.com"), Role.support)


@pytest.mark.parametrize(("password", "why"), [
    ("password", "too common"), ("short", "at least 8"), ("", "at least 8"),
    ("boss@example.com", "email address")])
def test_admin_create_refuses_a_weak_password_with_status_2_and_no_account(
        app_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        password: str, why: str) -> None:
    _stdin(monkeypatch, password + "\n")
    assert main(["admin", "create", "--email", "boss@example.com"]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]  # (log lines come first)
    assert last.startswith("casino: ") and why in last
    assert user_count() == 0


def test_admin_create_refuses_a_taken_email(app_env: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    for expected in (0, 2):
        _stdin(monkeypatch, PASSWORD + "\n")
        assert main(["admin", "create", "--email", "boss@example.com"]) == expected
    assert "already exists" in capsys.readouterr().err
    assert user_count() == 1


def test_audit_verify_passes_then_fails_naming_the_row_after_tampering(
        app_env: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    for i in range(3):
        _stdin(monkeypatch, PASSWORD + "\n")
        main(["admin", "create", "--email", f"boss{i}@example.com"])
    capsys.readouterr()
    assert main(["audit", "verify"]) == 0
    assert "audit log intact: 3 rows" in capsys.readouterr().out
    with databases().identity_engine.begin() as conn:
        conn.execute(text("DROP TRIGGER audit_log_no_update"))
        conn.execute(text("UPDATE audit_log SET detail = '{}' WHERE id = 3"))
    assert main(["audit", "verify"]) == 1
    assert "BROKEN at row 3" in capsys.readouterr().out


def test_a_configuration_error_exits_2_naming_the_variable(
        app_env: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CASINO_SESSION_IDLE_MINUTES", "abc")
    _reset_process_state()
    for command in (["migrate"], ["config", "check"], ["audit", "verify"], ["keys", "rotate"]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert err.startswith("casino: configuration error: CASINO_SESSION_IDLE_MINUTES:"), err
        assert len(err.strip().splitlines()) == 1


def test_config_check_shows_settings_but_not_secrets(
        base_env: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CASINO_IDENTITY_DB_URL", "postgresql://casino:db-pass-123@db/identity")
    monkeypatch.setenv("CASINO_SMTP_PASSWORD", "smtp-pass-456")
    _reset_process_state()
    assert main(["config", "check"]) == 0
    out = capsys.readouterr().out
    assert "session_idle_minutes = 30" in out
    assert "encryption_keys = (set)" in out and "smtp_password = (set)" in out
    for secret in ("db-pass-123", "smtp-pass-456", os.environ["CASINO_ENCRYPTION_KEYS"][3:]):
        assert secret not in out


@pytest.mark.parametrize(("name", "value", "text"), [
    ("CASINO_RATES_FIXED", "ETH:USD:three", "CASINO_RATES_FIXED: 'three' is not a decimal"),
    ("CASINO_ETH_WITHDRAW_FEE", "ETH:0.5", "CASINO_ETH_WITHDRAW_FEE: 'ETH:0.5' is not"),
    ("CASINO_ETH_HOT_BAND", "ETH:9:1", "CASINO_ETH_HOT_BAND: ETH minimum is above"),
    ("CASINO_ETH_TOKENS", "USDT:0x12", "CASINO_ETH_TOKENS: 'USDT:0x12' is not"),
    ("CASINO_ETH_SAFE_ADDRESS", "0x52908400098527886e0f7030069857d2e4169ee7",
     "CASINO_ETH_SAFE_ADDRESS: '0x5290"),
    ("CASINO_BET_LIMITS", "ETH:5", "CASINO_BET_LIMITS: 'ETH:5' is not CUR:min:max"),
])
def test_a_malformed_payment_list_is_refused_before_anything_starts(
        base_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        name: str, value: str, text: str) -> None:
    """A list setting ("CUR:amount,...") that would fail later in a job or a page (or
    silently drop a display rate) stops config check, run and worker, naming it."""
    import casino_app.jobs.worker as worker

    monkeypatch.setenv(name, value)
    _reset_process_state()
    assert main(["config", "check"]) == 2
    assert text in capsys.readouterr().err
    started = []
    monkeypatch.setattr(worker, "run_worker", lambda: started.append(1))
    assert main(["worker"]) == 2 and started == []
    err = capsys.readouterr().err
    assert err.startswith("casino: configuration error: ") and text in err
    monkeypatch.setattr("os.execve", lambda *a: started.append(a))
    assert main(["run"]) == 2 and started == []


def _build_is(monkeypatch: pytest.MonkeyPatch, current: bool) -> list[bool]:
    """The checkout's front-end build taken as current (or stale) by ``casino run`` and
    ``casino build``; the builds they ask for are recorded (their ``force``), not made."""
    from casino_app import webbuild

    state = {"current": current}
    built: list[bool] = []

    def status(*_a: object, **_k: object) -> webbuild.BuildStatus:
        return webbuild.BuildStatus(state["current"], "the front-end build is current"
                                    if state["current"] else "the front-end build is stale: "
                                    "the app's Python source (casino_app/) changed")

    def build(*_a: object, force: bool = False, **_k: object) -> webbuild.BuildStatus:
        built.append(force)
        state["current"] = True
        return status()

    monkeypatch.setattr(webbuild, "status", status)
    monkeypatch.setattr(webbuild, "build", build)
    return built


def _run_command(monkeypatch: pytest.MonkeyPatch, *args: str) -> list[str] | None:
    """The command line ``casino run`` would replace itself with (None: it stopped), with
    the front-end build current."""
    _build_is(monkeypatch, current=True)
    return _exec_of_run(monkeypatch, *args)


def _exec_of_run(monkeypatch: pytest.MonkeyPatch, *args: str) -> list[str] | None:
    started: list[list[str]] = []
    monkeypatch.chdir(os.getcwd())  # casino run changes into the project: undone after
    monkeypatch.setattr("os.execve", lambda _exe, cmd, _env: started.append(cmd))
    code = main(["run", *args])
    return started[0] if code == 0 and started else None


def _listens_on(cmd: list[str] | None) -> str | None:
    if cmd is None:
        return None
    return cmd[cmd.index("--host" if "casino_app.api.server" in cmd else "--backend-host") + 1]


def test_casino_run_listens_on_127_0_0_1_by_default(
        app_env: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Reflex's own default is every interface (0.0.0.0); ours is this machine only, in
    production mode (one port: pages, socket, /api) and in --env dev (its backend)."""
    cmd = _run_command(monkeypatch)
    # production: the one-port server of the built front end (casino_app/api/server.py)
    assert _listens_on(cmd) == "127.0.0.1" and cmd[1:3] == ["-m", "casino_app.api.server"]
    assert cmd[cmd.index("--port") + 1] == "3000"
    assert _listens_on(_run_command(monkeypatch, "--env", "dev")) == "127.0.0.1"
    monkeypatch.setenv("CASINO_BIND_HOST", "0.0.0.0")  # noqa: S104 - what an operator may set
    _reset_process_state()
    assert _listens_on(_run_command(monkeypatch)) == "0.0.0.0"  # noqa: S104
    assert _listens_on(_run_command(monkeypatch, "--host", "127.0.0.1")) == "127.0.0.1"
    capsys.readouterr()
    assert _run_command(monkeypatch, "--host", "example.com") is None
    assert "casino: --host: 'example.com' is not an IP address" in capsys.readouterr().err
    monkeypatch.setenv("CASINO_BIND_HOST", "all")
    _reset_process_state()
    assert _run_command(monkeypatch) is None
    assert capsys.readouterr().err.startswith(
        "casino: configuration error: CASINO_BIND_HOST: 'all' is not an IP address")


def test_casino_run_starts_from_a_current_build_without_building(
        app_env: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    built = _build_is(monkeypatch, current=True)
    cmd = _exec_of_run(monkeypatch, "--port", "4123")
    assert cmd is not None and cmd[cmd.index("--port") + 1] == "4123"
    assert built == []
    assert "casino: the front-end build is current" in capsys.readouterr().err


def test_casino_run_builds_a_stale_front_end_first_saying_why(
        app_env: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    built = _build_is(monkeypatch, current=False)
    assert _exec_of_run(monkeypatch) is not None
    assert built == [False]
    err = capsys.readouterr().err
    assert "casino: the front-end build is stale: the app's Python source (casino_app/) " \
           "changed; building the front end" in err


def test_casino_run_no_build_stops_on_a_stale_build_naming_casino_build(
        app_env: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    built = _build_is(monkeypatch, current=False)
    assert _exec_of_run(monkeypatch, "--no-build") is None
    assert built == []
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "casino: the front-end build is stale: the app's Python source (casino_app/) "
        "changed: run `casino build` first")


@pytest.mark.parametrize(("error", "said"), [
    ("export", "casino: `reflex export` failed (exit status 1):\nno Node.js"),
    ("read-only", "casino: cannot build the front end in "),
])
def test_a_failed_front_end_build_stops_casino_run(
        app_env: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], error: str, said: str) -> None:
    from casino_app import webbuild

    _build_is(monkeypatch, current=False)

    def fail(*_a: object, **_k: object) -> webbuild.BuildStatus:
        if error == "read-only":
            raise PermissionError(13, "Permission denied")
        raise webbuild.BuildFailed("`reflex export` failed (exit status 1):\nno Node.js")

    monkeypatch.setattr(webbuild, "build", fail)
    assert _exec_of_run(monkeypatch) is None
    assert said in capsys.readouterr().err


@pytest.mark.parametrize("port", ["0", "70000", "-1"])
def test_casino_run_refuses_a_port_that_is_not_one(
        app_env: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], port: str) -> None:
    assert _run_command(monkeypatch, f"--port={port}") is None
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"casino: --port: {port} is not a port (1 to 65535)")


def test_casino_build_check_says_whether_the_build_is_current(
        base_env: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    built = _build_is(monkeypatch, current=False)
    assert main(["build", "--check"]) == 1
    assert capsys.readouterr().out.strip() == (
        "the front-end build is stale: the app's Python source (casino_app/) changed: "
        "run `casino build`")
    assert built == []
    assert main(["build"]) == 0 and built == [False]
    assert "built the front end: the front-end build is current" in capsys.readouterr().out
    assert main(["build", "--check"]) == 0
    assert main(["build"]) == 0 and built == [False]  # current: nothing to do
    assert main(["build", "--force"]) == 0 and built == [False, True]


def test_production_without_a_metrics_token_does_not_start(
        base_env: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """/api/metrics is never served open in production: run, worker and config check stop
    naming the variable, like for any other missing secret."""
    import casino_app.jobs.worker as worker

    for name, value in (("ENV", "production"), ("SMTP_HOST", "smtp.example.com"),
                        ("PUBLIC_URL", "https://casino.example.com"),
                        ("IDENTITY_DB_URL", "postgresql://casino:pw@db/identity"),
                        ("LEDGER_DB_URL", "postgresql://casino:pw@db/ledger")):
        monkeypatch.setenv(f"CASINO_{name}", value)
    monkeypatch.setenv("REFLEX_REDIS_URL", "redis://redis:6379/0")
    _reset_process_state()
    started: list[object] = []
    monkeypatch.setattr(worker, "run_worker", lambda: started.append("worker"))
    monkeypatch.setattr("os.execve", lambda *a: started.append(a))
    for command in (["config", "check"], ["worker"], ["run"]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert err.startswith("casino: configuration error: configuration: production needs: "
                              "CASINO_METRICS_TOKEN (or CASINO_METRICS_TOKEN_FILE"), err
    assert started == []


def test_keys_generate_prints_a_usable_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "generate"]) == 0
    (kid, key), = parse_keyring(capsys.readouterr().out.strip())
    assert len(key) == 32 and kid.startswith("k")


def test_keys_rotate_reseals_under_the_first_key(
        app_env: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from casino_app.security.crypto import keyring
    from casino_app.users import accounts
    from tests.conftest import TEST_KEY
    from tests.users.helpers import new_ctx, register, user_row

    token, addr = register()
    accounts.start_totp(token, PASSWORD, None, new_ctx())
    capsys.readouterr()
    monkeypatch.setenv("CASINO_ENCRYPTION_KEYS", f"{main_key()},{TEST_KEY}")
    _reset_process_state()
    assert main(["keys", "rotate"]) == 0
    out = capsys.readouterr().out
    assert "users.totp_pending_enc: 1 re-encrypted" in out
    assert "users.email_enc: 1 re-encrypted" in out and "under the active key 'n1'" in out
    assert keyring().key_id_of(user_row(addr).totp_pending_enc) == "n1"


def main_key() -> str:
    import base64

    return "n1:" + base64.b64encode(os.urandom(32)).decode()


def test_the_installed_command_creates_an_admin_from_piped_input(app_env: Path) -> None:
    env = {k: v for k, v in os.environ.items()}
    done = subprocess.run([str(CASINO), "admin", "create", "--email", "ops@example.com",  # noqa: S603
                           "--role", "support"], input=PASSWORD + "\n", env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "created support account #1 for ops@example.com" in done.stdout
    _reset_process_state()
    assert is_role(sign_in("ops@example.com"), Role.support)

    bad = subprocess.run([str(CASINO), "config", "check"], capture_output=True, text=True,  # noqa: S603
                         env={**env, "CASINO_PUBLIC_URL": "ftp://x"}, timeout=120)
    assert bad.returncode == 2
    assert "CASINO_PUBLIC_URL" in bad.stderr


@pytest.mark.parametrize("email", ["ops+admin@example.com", "a@example.com",
                                   "first.last@example.com"])
def test_admin_create_without_a_name_works_for_any_valid_email(
        app_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        email: str) -> None:
    _stdin(monkeypatch, PASSWORD + "\n")
    assert main(["admin", "create", "--email", email]) == 0, capsys.readouterr().err
    assert is_role(sign_in(email), Role.admin)
