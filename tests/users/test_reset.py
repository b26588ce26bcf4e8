"""Password reset by mailed link: says nothing about who is registered, single use,
short-lived, and it ends every session and lifts a lock-out."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
import time_machine

from casino_app.users import accounts
from casino_app.users.errors import (
    InvalidCredentials,
    InvalidToken,
    ValidationFailed,
)
from tests.users.helpers import (
    NEW_PASSWORD,
    PASSWORD,
    T0,
    WRONG_PASSWORD,
    audit_rows,
    audited,
    body,
    link_token,
    new_ctx,
    read_outbox,
    register,
    sign_in,
    smtp_server,
    user_row,
    wait_for_mail,
    whoami,
)


def _reset_link(addr: str) -> str:
    before = len(read_outbox())
    accounts.request_password_reset(addr, new_ctx())
    mails = [m for m in wait_for_mail(before + 1) if "Reset" in m["Subject"]]
    return link_token(mails[-1], "reset")


def test_a_request_for_an_unknown_email_answers_normally_and_sends_nothing(
        any_env: str) -> None:
    register()
    with audited({"password.reset_requested": 1}):
        assert accounts.request_password_reset("nobody@example.com", new_ctx()) is None
    time.sleep(0.2)
    assert read_outbox() == []
    assert audit_rows("password.reset_requested")[0].target_user_id is None


def test_a_request_for_a_known_email_mails_a_link(any_env: str) -> None:
    _, addr = register(name="Reset Me")
    with audited({"password.reset_requested": 1}):
        assert accounts.request_password_reset(addr.upper(), new_ctx()) is None
    (mail,) = wait_for_mail(1)
    assert mail["To"] == addr
    assert "Reset" in mail["Subject"]
    assert "Hello Reset Me" in body(mail)
    assert "15 minutes" in body(mail)
    assert len(link_token(mail, "reset")) == 43


def test_reset_requests_cannot_flood_an_address_with_mail(any_env: str) -> None:
    """From many IPs (each under its own limits), one address gets at most three reset
    mails an hour (CASINO_RATE_MAIL_ADDRESS); past that the answer is the same and the
    audit row says the mail was held back."""
    _, addr = register(name="Flood Target")
    for _ in range(5):
        assert accounts.request_password_reset(addr, new_ctx()) is None
    assert len(wait_for_mail(3)) == 3
    time.sleep(0.5)  # the mail thread: nothing more comes
    assert len(read_outbox()) == 3
    rows = [json.loads(r.detail) for r in audit_rows("password.reset_requested")]
    assert [d.get("mailed", True) for d in rows] == [True] * 3 + [False] * 2


def test_the_reset_link_sets_a_new_password_once(any_env: str) -> None:
    _, addr = register()
    token = _reset_link(addr)
    with audited({"password.reset": 1}):
        accounts.reset_password(token, NEW_PASSWORD, new_ctx())
    sign_in(addr, NEW_PASSWORD)
    with pytest.raises(InvalidCredentials):
        accounts.begin_login(email=addr, password=PASSWORD, ctx=new_ctx())
    with audited({}), pytest.raises(InvalidToken):
        accounts.reset_password(token, "yet another passphrase", new_ctx())
    sign_in(addr, NEW_PASSWORD)


def test_the_reset_link_expires_after_15_minutes(any_env: str) -> None:
    with time_machine.travel(T0) as traveller:
        _, addr = register()
        token = _reset_link(addr)
        traveller.shift(timedelta(minutes=15, seconds=1))
        with pytest.raises(InvalidToken):
            accounts.reset_password(token, NEW_PASSWORD, new_ctx())
        sign_in(addr, PASSWORD)


def test_a_link_still_works_just_before_it_expires(app_env: object) -> None:
    with time_machine.travel(T0) as traveller:
        _, addr = register()
        token = _reset_link(addr)
        traveller.shift(timedelta(minutes=14, seconds=50))
        accounts.reset_password(token, NEW_PASSWORD, new_ctx())


def test_a_weak_new_password_is_refused_and_the_link_still_works(any_env: str) -> None:
    _, addr = register()
    token = _reset_link(addr)
    for weak in ("short", "password1", "", None, addr):
        with audited({}), pytest.raises(ValidationFailed) as exc:
            accounts.reset_password(token, weak, new_ctx())
        assert exc.value.field == "new_password"
    accounts.reset_password(token, NEW_PASSWORD, new_ctx())
    sign_in(addr, NEW_PASSWORD)


def test_a_new_link_replaces_the_previous_one(app_env: object) -> None:
    _, addr = register()
    first = _reset_link(addr)
    second = _reset_link(addr)
    with pytest.raises(InvalidToken):
        accounts.reset_password(first, NEW_PASSWORD, new_ctx())
    accounts.reset_password(second, NEW_PASSWORD, new_ctx())


def test_resetting_ends_every_session(any_env: str) -> None:
    token, addr = register()
    other = sign_in(addr)
    link = _reset_link(addr)
    accounts.reset_password(link, NEW_PASSWORD, new_ctx())
    assert whoami(token) is None and whoami(other) is None
    [row] = [json.loads(r.detail) for r in audit_rows("password.reset")]
    assert row["sessions_revoked"] == 2 and row["withdrawals_locked_until"]  # 24 h


def test_resetting_lifts_a_lock_out(any_env: str) -> None:
    _, addr = register()
    for _ in range(5):
        with pytest.raises(InvalidCredentials):
            accounts.begin_login(email=addr, password=WRONG_PASSWORD, ctx=new_ctx())
    wait_for_mail(1)  # the unlock mail
    with pytest.raises(InvalidCredentials):
        accounts.begin_login(email=addr, password=PASSWORD, ctx=new_ctx())
    link = _reset_link(addr)
    with audited({"password.reset": 1, "account.unlock": 1}):
        accounts.reset_password(link, NEW_PASSWORD, new_ctx())
    assert user_row(addr).locked_at is None
    sign_in(addr, NEW_PASSWORD)
    # and the old failures no longer count toward the next lock
    with pytest.raises(InvalidCredentials):
        accounts.begin_login(email=addr, password=WRONG_PASSWORD, ctx=new_ctx())
    assert user_row(addr).locked_at is None


@pytest.mark.parametrize("email", ["", None, 5, "not-an-email", "x" * 1000])
def test_a_malformed_reset_request_is_refused_on_the_email_field(
        app_env: object, email: object) -> None:
    with audited({}), pytest.raises(ValidationFailed) as exc:
        accounts.request_password_reset(email, new_ctx())
    assert exc.value.field == "email"


def test_the_reset_mail_goes_out_over_smtp(app_env: object,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    _, addr = register()
    with smtp_server(monkeypatch) as inbox:
        accounts.request_password_reset(addr, new_ctx())
        (message,) = inbox.wait(1)
        assert inbox.envelopes[0].rcpt_tos == [addr]  # type: ignore[attr-defined]
    assert read_outbox() == []  # nothing fell back to the folder
    assert message["To"] == addr
    assert message["From"] == "HashHouse <no-reply@localhost>"
    token = link_token(message, "reset")
    accounts.reset_password(token, NEW_PASSWORD, new_ctx())
    sign_in(addr, NEW_PASSWORD)


def test_a_reset_link_sent_twice_at_the_same_moment_works_once(any_env: str) -> None:
    import threading

    _, addr = register()
    link = _reset_link(addr)
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def use(password: str) -> None:
        start.wait()
        try:
            accounts.reset_password(link, password, new_ctx())
            outcomes.append("ok")
        except InvalidToken:
            outcomes.append("refused")

    threads = [threading.Thread(target=use, args=(pw,))
               for pw in (NEW_PASSWORD, "an entirely different passphrase")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["ok", "refused"]
    assert len(audit_rows("password.reset")) == 1
