"""Signing in: answers that reveal nothing, lock-out after repeated failures, unlock."""

from __future__ import annotations

import statistics
import time
from datetime import timedelta

import pytest
import time_machine

from casino_app.users import accounts
from casino_app.users.errors import InvalidCredentials, InvalidToken
from tests.users.helpers import (
    PASSWORD,
    T0,
    audit_rows,
    audited,
    body,
    link_token,
    new_ctx,
    read_outbox,
    reconfigure,
    register,
    sign_in,
    user_row,
    wait_for_mail,
    whoami,
)

WRONG = "definitely not it"


def _fail(addr: str, password: str = WRONG) -> None:
    with pytest.raises(InvalidCredentials):
        accounts.begin_login(email=addr, password=password, ctx=new_ctx())


def _lock(addr: str) -> None:
    for _ in range(5):
        _fail(addr)


def test_sign_in_with_the_right_password_opens_a_session(any_env: str) -> None:
    _, addr = register()
    with audited({"login.ok": 1}):
        token = sign_in(addr)
    me = whoami(token)
    assert me is not None and me.email == addr


def test_wrong_password_and_unknown_email_get_the_same_answer(any_env: str) -> None:
    _, addr = register()
    answers = []
    for email_addr, password in ((addr, WRONG), ("nobody@example.com", WRONG),
                                 ("nobody@example.com", PASSWORD), ("not an email", WRONG),
                                 (addr.upper(), WRONG)):
        with pytest.raises(InvalidCredentials) as exc:
            accounts.begin_login(email=email_addr, password=password, ctx=new_ctx())
        answers.append((type(exc.value), str(exc.value)))
    assert len(set(answers)) == 1
    assert "incorrect" in answers[0][1]


@pytest.mark.parametrize("password", [None, "", 12345678, "x" * 5000])
def test_malformed_passwords_get_the_same_answer_as_wrong_ones(
        app_env: object, password: object) -> None:
    _, addr = register()
    with pytest.raises(InvalidCredentials):
        accounts.begin_login(email=addr, password=password, ctx=new_ctx())
    sign_in(addr)  # and they do not count toward a lock in a way that matters here


def test_an_unknown_email_takes_about_as_long_as_a_wrong_password(app_env: object) -> None:
    _, addr = register()

    def timed(email_addr: str) -> float:
        start = time.perf_counter()
        with pytest.raises(InvalidCredentials):
            accounts.begin_login(email=email_addr, password=WRONG, ctx=new_ctx())
        return time.perf_counter() - start

    timed("warm.up@example.com")
    timed(addr)
    known, unknown = [], []
    for i in range(7):
        known.append(timed(addr))
        unknown.append(timed(f"ghost{i}@example.com"))
    ratio = statistics.median(unknown) / statistics.median(known)
    assert 0.5 < ratio < 2.0, (known, unknown)


def test_five_failures_lock_the_account_and_mail_an_unlock_link(any_env: str) -> None:
    _, addr = register()
    with audited({"login.failed": 4}):
        for _ in range(4):
            _fail(addr)
    assert user_row(addr).locked_at is None
    with audited({"login.failed": 1, "account.lock": 1}):
        _fail(addr)
    assert user_row(addr).locked_at is not None

    # While locked even the right password gets the answer a wrong one gets (which
    # mentions the lock), so a guesser cannot carry on and learn when they are right.
    with audited({"login.failed": 1}), pytest.raises(InvalidCredentials) as right:
        accounts.begin_login(email=addr, password=PASSWORD, ctx=new_ctx())
    with pytest.raises(InvalidCredentials) as wrong:
        accounts.begin_login(email=addr, password="not the password", ctx=new_ctx())
    assert str(right.value) == str(wrong.value) and "locked" in str(right.value)

    (mail,) = wait_for_mail(1)
    assert mail["To"] == addr
    assert "locked" in mail["Subject"]
    assert "5 failed sign-in attempts" in body(mail)
    assert PASSWORD not in body(mail) and WRONG not in body(mail)
    assert link_token(mail, "unlock")
    assert audit_rows("account.lock")[0].target_user_id == user_row(addr).id


def test_failures_spread_over_more_than_the_window_do_not_lock(any_env: str) -> None:
    with time_machine.travel(T0) as traveller:
        _, addr = register()
        for _ in range(8):
            _fail(addr)
            traveller.shift(timedelta(minutes=4))  # never 5 within 15 minutes
        assert user_row(addr).locked_at is None
        sign_in(addr)


def test_lockout_threshold_and_window_follow_the_settings(
        app_env: object, monkeypatch: pytest.MonkeyPatch) -> None:
    reconfigure(monkeypatch, LOCKOUT_THRESHOLD="3", LOCKOUT_WINDOW_MINUTES="60")
    with time_machine.travel(T0) as traveller:
        _, addr = register()
        for _ in range(3):
            _fail(addr)
            traveller.shift(timedelta(minutes=25))
    assert user_row(addr).locked_at is not None


def test_a_successful_sign_in_resets_the_failure_count(any_env: str) -> None:
    _, addr = register()
    for _ in range(4):
        _fail(addr)
    sign_in(addr)
    for _ in range(4):
        _fail(addr)
    assert user_row(addr).locked_at is None
    sign_in(addr)


def test_the_unlock_link_works_once(any_env: str) -> None:
    _, addr = register()
    _lock(addr)
    token = link_token(wait_for_mail(1)[0], "unlock")
    with audited({"account.unlock": 1}):
        accounts.unlock_with_token(token, new_ctx())
    assert user_row(addr).locked_at is None
    sign_in(addr)
    with pytest.raises(InvalidToken):
        accounts.unlock_with_token(token, new_ctx())
    # Unlocking also forgets the failures that caused the lock.
    _fail(addr)
    assert user_row(addr).locked_at is None


def test_an_expired_unlock_link_does_not_unlock(any_env: str) -> None:
    with time_machine.travel(T0) as traveller:
        _, addr = register()
        _lock(addr)
        token = link_token(wait_for_mail(1)[0], "unlock")
        traveller.shift(timedelta(minutes=61))
        with audited({}), pytest.raises(InvalidToken):
            accounts.unlock_with_token(token, new_ctx())
        assert user_row(addr).locked_at is not None
        with pytest.raises(InvalidCredentials):
            accounts.begin_login(email=addr, password=PASSWORD, ctx=new_ctx())


def test_an_unlock_link_is_not_a_password_reset_link(app_env: object) -> None:
    _, addr = register()
    _lock(addr)
    token = link_token(wait_for_mail(1)[0], "unlock")
    with pytest.raises(InvalidToken):
        accounts.reset_password(token, "a brand new passphrase", new_ctx())
    accounts.unlock_with_token(token, new_ctx())  # still good for what it is for


@pytest.mark.parametrize("token", [None, "", 5, "short", "x" * 500, "a" * 43 + "'--",
                                   "a" * 43])
def test_made_up_unlock_links_are_refused(app_env: object, token: object) -> None:
    from casino_app.users.errors import ValidationFailed

    with pytest.raises((InvalidToken, ValidationFailed)):
        accounts.unlock_with_token(token, new_ctx())


def test_a_locked_account_is_not_locked_again_by_more_failures(app_env: object) -> None:
    _, addr = register()
    _lock(addr)
    with audited({"login.failed": 3}):
        for _ in range(3):
            _fail(addr)
    wait_for_mail(1)
    time.sleep(0.1)
    assert len(read_outbox()) == 1  # one unlock mail, not one per failure


def test_sign_in_records_where_and_when(any_env: str) -> None:
    _, addr = register()
    ctx = new_ctx()
    token = sign_in(addr, ctx=ctx)
    me = whoami(token)
    assert me is not None and me.last_login_ip == ctx.ip and me.last_login_at is not None


def test_a_very_long_client_address_does_not_break_sign_in(any_env: str) -> None:
    from casino_app.users.sessions import RequestContext

    ctx = RequestContext(ip="2001:db8::1, " * 20, user_agent="x" * 1000)
    token, addr = register(ctx=ctx)
    _fail_ctx = RequestContext(ip=ctx.ip, user_agent=ctx.user_agent)
    with pytest.raises(InvalidCredentials):
        accounts.begin_login(email=addr, password=WRONG, ctx=_fail_ctx)
    assert whoami(sign_in(addr, ctx=ctx)) is not None
    assert whoami(token) is not None


def test_failures_arriving_together_lock_once_and_send_one_mail(any_env: str) -> None:
    import threading

    _, addr = register()
    start = threading.Barrier(8)
    outcomes: list[str] = []

    def guess() -> None:
        ctx = new_ctx()
        start.wait()
        try:
            accounts.begin_login(email=addr, password=WRONG, ctx=ctx)
        except InvalidCredentials:
            outcomes.append("refused")

    with audited({"login.failed": 8, "account.lock": 1}):
        threads = [threading.Thread(target=guess) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert outcomes == ["refused"] * 8
    wait_for_mail(1)
    time.sleep(0.2)
    assert len(read_outbox()) == 1
