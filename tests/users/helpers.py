"""Helpers shared by the accounts and security service tests."""

from __future__ import annotations

import email
import email.policy
import itertools
import os
import re
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import func, select

from casino_app.core.db import identity_tx
from casino_app.core.settings import get_settings
from casino_app.security.models import AuditEvent
from casino_app.users import accounts, staff
from casino_app.users.models import Role, User
from casino_app.users.sessions import RequestContext
from tests.conftest import _reset_process_state
from tests.support.signup import sign_up

PASSWORD = "purple elephants dance quietly"
NEW_PASSWORD = "seven silver kettles humming"
WRONG_PASSWORD = "wrong password!"
CHROME_WINDOWS = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
                  "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36")
SAFARI_IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
                 "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1")

_ips = itertools.count(1)
_emails = itertools.count(1)


def new_ctx(user_agent: str = CHROME_WINDOWS) -> RequestContext:
    """A request from an address no other request in the session used (so that rate
    limits of one test step never touch another)."""
    n = next(_ips)
    return RequestContext(ip=f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}",
                          user_agent=user_agent)


def new_email(prefix: str = "player") -> str:
    return f"{prefix}{next(_emails)}@example.com"


def register(email_addr: str | None = None, password: str = PASSWORD,
             name: str = "Alice Player", dob: object = "1990-05-17",
             ctx: RequestContext | None = None) -> tuple[str, str]:
    """Sign a player up (the form, the mailed link, the password again; the sign-up mail
    is taken out of the outbox); returns (session token, email)."""
    email_addr = email_addr or new_email()
    token = sign_up(email_addr=email_addr, password=password, display_name=name,
                    date_of_birth=dob, ctx=ctx or new_ctx())
    return token, email_addr


def sign_in(email_addr: str, password: str = PASSWORD, ctx: RequestContext | None = None
            ) -> str:
    step = accounts.begin_login(email=email_addr, password=password, ctx=ctx or new_ctx())
    assert step.session_token and not step.mfa_token
    return step.session_token


def make_staff(role: Role, password: str = PASSWORD) -> tuple[str, int, str]:
    """Create a staff account as the CLI does, and sign it in: (token, user id, email)."""
    addr = new_email(role.value)
    uid = staff.create_staff(addr, password, role, f"{role.value.title()} Person")
    _, _, token = enable_2fa(sign_in(addr, password), password)  # staff need 2FA
    return token, uid, addr


def user_row(email_addr: str) -> User:
    from casino_app.security.sealed import email_index

    index = email_index(email_addr)
    with identity_tx() as s:
        return s.execute(select(User).where(User.email_index == index)).scalar_one()


def rotated(batch: int = 200) -> dict[str, int]:
    """``casino keys rotate`` without the printing: {column: values re-sealed}."""
    import casino_app.migrations  # noqa: F401  (every sealed column registers)
    from casino_app.security.sealed import rotate

    return {c.name: c.resealed for c in rotate(batch=batch)}


def user_count() -> int:
    with identity_tx() as s:
        return s.execute(select(func.count()).select_from(User)).scalar_one()


def whoami(token: str | None):  # noqa: ANN201
    return accounts.current_user(token)


# Audit -------------------------------------------------------------------------------------
def audit_counts() -> Counter[str]:
    with identity_tx() as s:
        rows = s.execute(select(AuditEvent.action, func.count())
                         .group_by(AuditEvent.action)).all()
    return Counter({a: n for a, n in rows})


def audit_rows(action: str) -> list[AuditEvent]:
    with identity_tx() as s:
        return list(s.execute(select(AuditEvent).where(AuditEvent.action == action)
                              .order_by(AuditEvent.id)).scalars())


@contextmanager
def audited(expected: dict[str, int]) -> Iterator[None]:
    """Assert the block writes exactly these audit rows (action -> count), no others."""
    before = audit_counts()
    yield
    after = audit_counts()
    after.subtract(before)
    assert {k: v for k, v in after.items() if v} == {str(k): v for k, v in expected.items()}


# Mail --------------------------------------------------------------------------------------
def outbox() -> Path:
    return get_settings().outbox_dir


def read_outbox() -> list[EmailMessage]:
    folder = outbox()
    if not folder.exists():
        return []
    return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
            for p in sorted(folder.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns)]  # type: ignore[misc]


def wait_for_mail(count: int = 1, timeout: float = 5.0) -> list[EmailMessage]:
    """Poll the outbox (mail goes out on a background thread). Counts sleeps rather than
    reading the clock, which the tests move."""
    for _ in range(int(timeout / 0.02)):
        msgs = read_outbox()
        if len(msgs) >= count:
            return msgs
        time.sleep(0.02)
    raise AssertionError(f"expected {count} mail(s), found {len(read_outbox())}")


def body(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert part is not None
    return part.get_content()


def link_token(msg: EmailMessage, path: str) -> str:
    m = re.search(rf"/{path}\?token=([A-Za-z0-9_\-]+)", body(msg))
    assert m, body(msg)
    return m.group(1)


# Time and TOTP -------------------------------------------------------------------------------
# A moment at the start of a 30-second TOTP step. It is in the past: create accounts
# inside the travel, or their failures_since/created_at lie in T0's future.
T0 = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)


def code_at(secret: str, when: datetime, steps: int = 0) -> str:
    """The TOTP code of the step ``steps`` away from the one containing ``when``."""
    step = int(when.timestamp() // 30) + steps
    return pyotp.TOTP(secret).at(step * 30)


def reconfigure(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    """Set CASINO_<NAME> variables and forget cached settings, engines and limiters."""
    for key, value in env.items():
        monkeypatch.setenv(f"CASINO_{key.upper()}", value)
    _reset_process_state()


def enable_2fa(token: str, password: str = PASSWORD, when: datetime | None = None
               ) -> tuple[str, list[str], str]:
    """Turn on 2FA for the session's user: (secret, recovery codes, new session token).
    ``when`` is the (frozen) current time, so the code is the current one."""
    ctx = new_ctx()
    enrolment = accounts.start_totp(token, password, None, ctx)
    now = when or datetime.now(UTC)
    codes, new_token = accounts.confirm_totp(token, code_at(enrolment.secret, now), ctx)
    return enrolment.secret, codes, new_token


def is_role(token: str, role: Role) -> bool:
    me = whoami(token)
    return me is not None and me.role is role


# A real SMTP server ------------------------------------------------------------------------
class SmtpInbox:
    """aiosmtpd handler that keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[object] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        raw = envelope.original_content or envelope.content  # type: ignore[attr-defined]
        self.envelopes.append(envelope)
        self.messages.append(email.message_from_bytes(raw, policy=email.policy.default))  # type: ignore[arg-type]
        return "250 OK"

    def wait(self, count: int = 1, timeout: float = 10.0) -> list[EmailMessage]:
        for _ in range(int(timeout / 0.02)):
            if len(self.messages) >= count:
                return self.messages
            time.sleep(0.02)
        raise AssertionError(f"expected {count} message(s), got {len(self.messages)}")


@contextmanager
def smtp_server(monkeypatch: pytest.MonkeyPatch, **controller_kwargs: object
                ) -> Iterator[SmtpInbox]:
    """Run aiosmtpd on a free port and point CASINO_SMTP_* at it (no STARTTLS unless the
    caller sets CASINO_SMTP_STARTTLS itself)."""
    from aiosmtpd.controller import Controller

    from tests.support.services import free_port

    inbox = SmtpInbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **controller_kwargs)
    controller.start()
    try:
        monkeypatch.setenv("CASINO_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("CASINO_SMTP_PORT", str(port))
        if "CASINO_SMTP_STARTTLS" not in os.environ:
            monkeypatch.setenv("CASINO_SMTP_STARTTLS", "false")
        _reset_process_state()
        yield inbox
    finally:
        controller.stop()
