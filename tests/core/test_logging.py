"""Logs are JSON lines with a timestamp, and no secret ever reaches one."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import structlog
import time_machine

from casino_app.core.logging import configure_logging, get_logger, new_request_id
from casino_app.users import accounts
from casino_app.users.errors import InvalidCredentials
from tests.users.helpers import (
    NEW_PASSWORD,
    PASSWORD,
    T0,
    code_at,
    link_token,
    new_ctx,
    register,
    wait_for_mail,
)

GUESS = "hunter2-wrong-guess"


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """Logging as the app configures it, with its handler's stream swapped for a buffer."""
    configure_logging("DEBUG", json=True)
    root = logging.getLogger()
    (handler,) = [h for h in root.handlers if getattr(h, "_casino", False)]
    buffer = io.StringIO()
    handler.setStream(buffer)  # type: ignore[attr-defined]
    yield buffer
    root.removeHandler(handler)
    root.setLevel(logging.WARNING)
    structlog.reset_defaults()


def _lines(buffer: io.StringIO) -> list[dict]:
    raw = [line for line in buffer.getvalue().splitlines() if line.strip()]
    parsed = [json.loads(line) for line in raw]  # every line is one JSON object
    for entry in parsed:
        datetime.fromisoformat(entry["timestamp"].replace("Z", "+00:00"))
        assert entry["event"] and entry["level"]
    return parsed


def test_no_secret_reaches_a_log_line(app_env: object,
                                      json_logs: io.StringIO) -> None:
    def now() -> datetime:
        return datetime.now(UTC)

    secrets: list[str] = [PASSWORD, NEW_PASSWORD]
    with time_machine.travel(T0 + timedelta(seconds=1), tick=False) as clock:
        new_request_id()
        token, addr = register()
        enrolment = accounts.start_totp(token, PASSWORD, None, new_ctx())
        first_code = code_at(enrolment.secret, now())
        codes, token2 = accounts.confirm_totp(token, first_code, new_ctx())
        clock.shift(timedelta(seconds=30))
        step = accounts.begin_login(email=addr, password=PASSWORD, ctx=new_ctx())
        second_code = code_at(enrolment.secret, now())
        session = accounts.complete_login_mfa(mfa_token=step.mfa_token, code=second_code,
                                              ctx=new_ctx())
        step2 = accounts.begin_login(email=addr, password=PASSWORD, ctx=new_ctx())
        session2 = accounts.complete_login_mfa(mfa_token=step2.mfa_token, code=codes[0],
                                               ctx=new_ctx())
        with pytest.raises(InvalidCredentials):
            accounts.begin_login(email=addr, password=GUESS, ctx=new_ctx())
        accounts.request_password_reset(addr, new_ctx())
        for _ in range(250):  # (the 2FA notice is in the outbox too)
            mails = [m for m in wait_for_mail(1) if "Reset" in m["Subject"]]
            if mails:
                break
            time.sleep(0.02)
        reset_token = link_token(mails[0], "reset")
        accounts.reset_password(reset_token, NEW_PASSWORD, new_ctx())
    secrets += [enrolment.secret, first_code, second_code, token, token2, session, session2,
                step.mfa_token, step2.mfa_token, reset_token, GUESS,
                *codes, *(c.replace("-", "") for c in codes)]

    lines = _lines(json_logs)
    text = json.dumps(lines)
    assert any(e.get("action") == "2fa.enabled" for e in lines)  # the flow was logged
    assert any(e.get("request_id") for e in lines)
    for secret in secrets:
        assert secret and secret not in text, secret


def test_secret_looking_fields_and_long_tokens_are_masked(
        json_logs: io.StringIO) -> None:
    token = "Zq3" * 15
    log = get_logger("casino.test")
    fields = {"password": "correct horse", "totp_code": "123456", "session_token": "abc",
              "nested": {"api_key": "k-123", "ok": "visible"},
              "note": f"cookie value {token} seen", "status_code": 200}
    log.info("signing in", **fields)
    logging.getLogger("thirdparty").warning("forwarded header had %s", token)
    try:
        raise ValueError(f"bad token {token}")
    except ValueError:
        log.exception("failed")
    lines = _lines(json_logs)
    text = json.dumps(lines)
    for secret in ("correct horse", "123456", "k-123", token):
        assert secret not in text
    first = lines[0]
    assert first["password"] == first["totp_code"] == first["session_token"] == "[redacted]"
    assert first["nested"] == {"api_key": "[redacted]", "ok": "visible"}
    assert first["status_code"] == 200
    assert lines[1]["logger"] == "thirdparty" and "[redacted]" in lines[1]["event"]
    assert "ValueError" in lines[2]["exception"]
