"""Two-factor authentication: enrolment, sign-in with a code, replay and drift, recovery
codes, and changing or turning it off. The clock is frozen and moved in 30-s steps."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
import time_machine
from sqlalchemy import text

from casino_app.core.db import databases
from casino_app.users import accounts
from casino_app.users.errors import (
    AccountLocked,
    InvalidCode,
    InvalidCredentials,
    InvalidToken,
    NotAuthenticated,
    ValidationFailed,
)
from tests.users.helpers import (
    PASSWORD,
    T0,
    WRONG_PASSWORD,
    audited,
    code_at,
    enable_2fa,
    new_ctx,
    reconfigure,
    register,
    user_row,
    whoami,
)

STEP = timedelta(seconds=30)


@pytest.fixture
def clock(any_env: str) -> Iterator[time_machine.Coordinates]:
    with time_machine.travel(T0 + timedelta(seconds=1), tick=False) as traveller:
        yield traveller


def now() -> datetime:
    from datetime import UTC

    return datetime.now(UTC)


def _password_step(addr: str, password: str = PASSWORD) -> str:
    step = accounts.begin_login(email=addr, password=password, ctx=new_ctx())
    assert step.session_token is None and step.mfa_token
    return step.mfa_token


def _with_2fa() -> tuple[str, str, list[str], str]:
    """A player with 2FA on: (email, secret, recovery codes, session token)."""
    token, addr = register()
    secret, codes, token = enable_2fa(token, when=now())
    return addr, secret, codes, token


def test_enrolment_needs_the_password(clock: time_machine.Coordinates) -> None:
    token, addr = register()
    for bad in ("not my password", "", None, 12345678):
        with pytest.raises(ValidationFailed) as exc:
            accounts.start_totp(token, bad, None, new_ctx())
        assert exc.value.field == "current_password"
    with pytest.raises(NotAuthenticated):
        accounts.start_totp(None, PASSWORD, None, new_ctx())
    enrolment = accounts.start_totp(token, PASSWORD, None, new_ctx())
    assert re.fullmatch(r"[A-Z2-7]{32}", enrolment.secret)
    assert enrolment.uri.startswith("otpauth://totp/HashHouse:")
    assert enrolment.qr_svg_data_uri.startswith("data:image/svg+xml;base64,")
    assert not user_row(addr).totp_enabled  # pending until a code confirms it


def test_confirming_with_a_code_turns_2fa_on_gives_ten_recovery_codes_and_rotates_the_session(
        clock: time_machine.Coordinates) -> None:
    token, addr = register()
    enrolment = accounts.start_totp(token, PASSWORD, None, new_ctx())
    with audited({"2fa.enabled": 1}):
        codes, new_token = accounts.confirm_totp(token, code_at(enrolment.secret, now()),
                                                 new_ctx())
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(re.fullmatch(r"[A-Z2-9]{4}(-[A-Z2-9]{4}){3}", c) for c in codes)
    assert whoami(token) is None
    me = whoami(new_token)
    assert me is not None and me.totp_enabled
    assert accounts.recovery_codes_left(new_token) == 10


def test_a_wrong_code_does_not_turn_2fa_on(clock: time_machine.Coordinates) -> None:
    token, addr = register()
    enrolment = accounts.start_totp(token, PASSWORD, None, new_ctx())
    wrong = code_at(enrolment.secret, now(), steps=3)
    with audited({}), pytest.raises(ValidationFailed) as exc:
        accounts.confirm_totp(token, wrong, new_ctx())
    assert exc.value.field == "code"
    assert not user_row(addr).totp_enabled
    assert whoami(token) is not None  # the session was not rotated either
    with pytest.raises(ValidationFailed):  # nothing pending without a start
        other, _ = register()
        accounts.confirm_totp(other, "123456", new_ctx())


def test_signing_in_then_needs_a_code(clock: time_machine.Coordinates) -> None:
    addr, secret, _, _ = _with_2fa()
    clock.shift(STEP)
    with audited({}):
        mfa_token = _password_step(addr)
    with audited({"login.ok": 1}):
        token = accounts.complete_login_mfa(mfa_token=mfa_token, code=code_at(secret, now()),
                                            ctx=new_ctx())
    assert whoami(token) is not None
    # The challenge is spent once it has been answered.
    with pytest.raises(InvalidToken):
        accounts.complete_login_mfa(mfa_token=mfa_token, code=code_at(secret, now(), 1),
                                    ctx=new_ctx())


def test_same_totp_code_is_refused_the_second_time(clock: time_machine.Coordinates) -> None:
    addr, secret, _, _ = _with_2fa()
    # The code that turned 2FA on cannot be replayed to sign in within its step.
    with pytest.raises(InvalidCode):
        accounts.complete_login_mfa(mfa_token=_password_step(addr),
                                    code=code_at(secret, now()), ctx=new_ctx())
    clock.shift(STEP)
    code = code_at(secret, now())
    accounts.complete_login_mfa(mfa_token=_password_step(addr), code=code, ctx=new_ctx())
    with audited({"login.mfa_failed": 1}), pytest.raises(InvalidCode):
        accounts.complete_login_mfa(mfa_token=_password_step(addr), code=code, ctx=new_ctx())


def test_a_code_from_the_previous_step_is_accepted_but_not_from_two_steps_back(
        clock: time_machine.Coordinates) -> None:
    addr, secret, _, _ = _with_2fa()
    clock.shift(5 * STEP)
    mfa_token = _password_step(addr)
    with pytest.raises(InvalidCode):
        accounts.complete_login_mfa(mfa_token=mfa_token, code=code_at(secret, now(), -2),
                                    ctx=new_ctx())
    token = accounts.complete_login_mfa(mfa_token=mfa_token, code=code_at(secret, now(), -1),
                                        ctx=new_ctx())
    assert whoami(token) is not None


def test_a_code_from_the_next_step_is_accepted_but_not_from_two_steps_ahead(
        clock: time_machine.Coordinates) -> None:
    addr, secret, _, _ = _with_2fa()
    clock.shift(5 * STEP)
    mfa_token = _password_step(addr)
    with pytest.raises(InvalidCode):
        accounts.complete_login_mfa(mfa_token=mfa_token, code=code_at(secret, now(), 2),
                                    ctx=new_ctx())
    accounts.complete_login_mfa(mfa_token=mfa_token, code=code_at(secret, now(), 1),
                                ctx=new_ctx())
    # Having accepted the next step's code, the current one is now a replay.
    clock.shift(timedelta(seconds=1))
    with pytest.raises(InvalidCode):
        accounts.complete_login_mfa(mfa_token=_password_step(addr),
                                    code=code_at(secret, now()), ctx=new_ctx())


def test_a_recovery_code_works_once(clock: time_machine.Coordinates) -> None:
    addr, _, codes, token = _with_2fa()
    with audited({"2fa.recovery_used": 1, "login.ok": 1}):
        signed_in = accounts.complete_login_mfa(mfa_token=_password_step(addr),
                                                code=codes[0], ctx=new_ctx())
    assert accounts.recovery_codes_left(signed_in) == 9
    with pytest.raises(InvalidCode):
        accounts.complete_login_mfa(mfa_token=_password_step(addr), code=codes[0],
                                    ctx=new_ctx())
    # Typed in lower case without dashes, another code is still accepted.
    typed = codes[1].replace("-", " ").lower()
    accounts.complete_login_mfa(mfa_token=_password_step(addr), code=typed, ctx=new_ctx())
    assert accounts.recovery_codes_left(token) == 8


def test_five_wrong_codes_use_up_the_challenge(
        clock: time_machine.Coordinates, monkeypatch: pytest.MonkeyPatch) -> None:
    reconfigure(monkeypatch, LOCKOUT_THRESHOLD="50")
    addr, secret, _, _ = _with_2fa()
    clock.shift(STEP)
    mfa_token = _password_step(addr)
    for i in range(5):
        with pytest.raises(InvalidCode):
            accounts.complete_login_mfa(mfa_token=mfa_token, code=f"{i:06d}", ctx=new_ctx())
    with pytest.raises(InvalidToken):
        accounts.complete_login_mfa(mfa_token=mfa_token, code=code_at(secret, now()),
                                    ctx=new_ctx())
    # A fresh password step gives a fresh challenge.
    accounts.complete_login_mfa(mfa_token=_password_step(addr), code=code_at(secret, now()),
                                ctx=new_ctx())


def test_wrong_codes_count_toward_the_lock(clock: time_machine.Coordinates) -> None:

    addr, secret, _, _ = _with_2fa()
    clock.shift(STEP)
    for _ in range(2):
        with pytest.raises(InvalidCredentials):
            accounts.begin_login(email=addr, password=WRONG_PASSWORD, ctx=new_ctx())
    mfa_token = _password_step(addr)
    for _ in range(2):
        with pytest.raises(InvalidCode):
            accounts.complete_login_mfa(mfa_token=mfa_token, code="000000", ctx=new_ctx())
    with audited({"login.mfa_failed": 1, "account.lock": 1}), pytest.raises(AccountLocked):
        accounts.complete_login_mfa(mfa_token=mfa_token, code="000000", ctx=new_ctx())
    assert user_row(addr).locked_at is not None
    with pytest.raises(InvalidCredentials):
        accounts.begin_login(email=addr, password=PASSWORD, ctx=new_ctx())


def test_a_challenge_expires_after_five_minutes(clock: time_machine.Coordinates) -> None:
    addr, secret, _, _ = _with_2fa()
    mfa_token = _password_step(addr)
    clock.shift(timedelta(minutes=5, seconds=1))
    with pytest.raises(InvalidToken):
        accounts.complete_login_mfa(mfa_token=mfa_token, code=code_at(secret, now()),
                                    ctx=new_ctx())


def test_turning_2fa_off_needs_the_password_and_a_current_code(
        clock: time_machine.Coordinates) -> None:
    addr, secret, _, token = _with_2fa()
    clock.shift(STEP)
    good = code_at(secret, now())
    for password, code, field in ((None, good, "current_password"),
                                  (WRONG_PASSWORD, good, "current_password"),
                                  (PASSWORD, None, "current_code"),
                                  (PASSWORD, "", "current_code"),
                                  (PASSWORD, code_at(secret, now(), -3), "current_code")):
        with audited({}), pytest.raises(ValidationFailed) as exc:
            accounts.disable_totp(token, password, code, new_ctx())
        assert exc.value.field == field
    assert user_row(addr).totp_enabled
    with audited({"2fa.disabled": 1}):
        new_token = accounts.disable_totp(token, PASSWORD, good, new_ctx())
    assert whoami(token) is None and whoami(new_token) is not None
    assert not user_row(addr).totp_enabled
    step = accounts.begin_login(email=addr, password=PASSWORD, ctx=new_ctx())
    assert step.session_token and not step.mfa_token


def test_replacing_the_authenticator_needs_the_password_and_a_current_code(
        clock: time_machine.Coordinates) -> None:
    addr, old_secret, _, token = _with_2fa()
    clock.shift(STEP)
    with pytest.raises(ValidationFailed) as exc:
        accounts.start_totp(token, PASSWORD, None, new_ctx())
    assert exc.value.field == "current_code"
    with pytest.raises(ValidationFailed) as exc:
        accounts.start_totp(token, WRONG_PASSWORD, code_at(old_secret, now()), new_ctx())
    assert exc.value.field == "current_password"
    enrolment = accounts.start_totp(token, PASSWORD, code_at(old_secret, now()), new_ctx())
    clock.shift(STEP)
    with audited({"2fa.enabled": 1}):
        _, token = accounts.confirm_totp(token, code_at(enrolment.secret, now()), new_ctx())
    clock.shift(STEP)
    with pytest.raises(InvalidCode):
        accounts.complete_login_mfa(mfa_token=_password_step(addr),
                                    code=code_at(old_secret, now()), ctx=new_ctx())
    accounts.complete_login_mfa(mfa_token=_password_step(addr),
                                code=code_at(enrolment.secret, now()), ctx=new_ctx())


def test_new_recovery_codes_need_the_password_and_a_code_and_replace_the_old(
        clock: time_machine.Coordinates) -> None:
    addr, secret, old_codes, token = _with_2fa()
    clock.shift(STEP)
    with pytest.raises(ValidationFailed):
        accounts.regenerate_recovery_codes(token, PASSWORD, "000000", new_ctx())
    with audited({"2fa.recovery_regenerated": 1}):
        codes, token = accounts.regenerate_recovery_codes(token, PASSWORD,
                                                          code_at(secret, now()), new_ctx())
    assert len(codes) == 10 and not set(codes) & set(old_codes)
    with pytest.raises(InvalidCode):
        accounts.complete_login_mfa(mfa_token=_password_step(addr), code=old_codes[0],
                                    ctx=new_ctx())
    accounts.complete_login_mfa(mfa_token=_password_step(addr), code=codes[0], ctx=new_ctx())


def test_the_secret_is_stored_encrypted_and_recovery_codes_only_hashed(
        clock: time_machine.Coordinates) -> None:
    token, addr = register()
    enrolment = accounts.start_totp(token, PASSWORD, None, new_ctx())
    secret = enrolment.secret
    forms = [secret.encode(), secret.lower().encode(), base64.b32decode(secret)]

    def raw_identity_bytes() -> bytes:
        with databases().identity_engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT totp_secret_enc, totp_pending_enc FROM users")).all()
            codes = conn.execute(text("SELECT code_hash FROM recovery_codes")).all()
        out = b""
        for row in [*rows, *codes]:
            for v in row:
                if v is not None:
                    out += bytes(v) if not isinstance(v, str) else v.encode()
        return out

    pending = raw_identity_bytes()
    assert pending and not any(f in pending for f in forms)
    codes, _ = accounts.confirm_totp(token, code_at(secret, now()), new_ctx())
    stored = raw_identity_bytes()
    assert user_row(addr).totp_secret_enc
    assert not any(f in stored for f in forms)
    for c in codes:
        assert c.encode() not in stored and c.replace("-", "").encode() not in stored


def test_the_same_code_sent_twice_at_the_same_moment_is_accepted_once(
        clock: time_machine.Coordinates) -> None:
    import threading

    addr, secret, _, token = _with_2fa()
    clock.shift(STEP)
    code = code_at(secret, now())
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def regenerate() -> None:
        start.wait()
        try:
            accounts.regenerate_recovery_codes(token, PASSWORD, code, new_ctx())
            outcomes.append("ok")
        except (ValidationFailed, NotAuthenticated):  # the winner also rotated the session
            outcomes.append("refused")

    threads = [threading.Thread(target=regenerate) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["ok", "refused"]


def test_a_password_change_or_reset_ends_challenges_answered_later(
        clock: time_machine.Coordinates) -> None:
    """Someone who had the old password and is waiting at the code step (with a phished
    recovery code, say) must not get in after the owner changed or reset the password."""
    from tests.users.helpers import NEW_PASSWORD, link_token, read_outbox, wait_for_mail

    addr, _, codes, token = _with_2fa()
    pending = _password_step(addr)
    accounts.change_password(token, PASSWORD, NEW_PASSWORD, new_ctx())
    with pytest.raises(InvalidToken):
        accounts.complete_login_mfa(mfa_token=pending, code=codes[0], ctx=new_ctx())

    pending = _password_step(addr, NEW_PASSWORD)
    before = len(read_outbox())
    accounts.request_password_reset(addr, new_ctx())
    link = link_token(wait_for_mail(before + 1)[-1], "reset")
    accounts.reset_password(link, PASSWORD, new_ctx())
    with pytest.raises(InvalidToken):
        accounts.complete_login_mfa(mfa_token=pending, code=codes[1], ctx=new_ctx())
    # A challenge started after the reset works as usual.
    accounts.complete_login_mfa(mfa_token=_password_step(addr), code=codes[2], ctx=new_ctx())


# Securing the account ends every other session ---------------------------------------------
def _second_device(addr: str, secret: str | None = None) -> str:
    """Sign in from another device (with a code one step ahead when 2FA is on)."""
    step = accounts.begin_login(email=addr, password=PASSWORD, ctx=new_ctx())
    if step.session_token:
        return step.session_token
    assert secret is not None and step.mfa_token
    return accounts.complete_login_mfa(mfa_token=step.mfa_token,
                                       code=code_at(secret, now(), 1), ctx=new_ctx())


def _revoked_detail() -> int:
    import json

    from tests.users.helpers import audit_rows

    rows = [r for a in ("2fa.enabled", "2fa.disabled", "2fa.recovery_regenerated")
            for r in audit_rows(a)]
    newest = max(rows, key=lambda r: r.id)
    return json.loads(newest.detail)["sessions_revoked"]


def test_turning_2fa_on_signs_out_the_accounts_other_sessions(
        clock: time_machine.Coordinates) -> None:
    token, addr = register()
    stolen = _second_device(addr)
    bystander, _ = register()
    _, _, token = enable_2fa(token, when=now())
    assert whoami(stolen) is None  # the session a thief held ends
    assert whoami(token) is not None and whoami(token).totp_enabled  # type: ignore[union-attr]
    assert whoami(bystander) is not None  # other accounts are not touched
    assert _revoked_detail() == 1
    assert [v.current for v in accounts.my_sessions(token)] == [True]


def test_turning_2fa_off_signs_out_the_accounts_other_sessions(
        clock: time_machine.Coordinates) -> None:
    addr, secret, _, token = _with_2fa()
    clock.shift(STEP)
    stolen = _second_device(addr, secret)
    clock.shift(3 * STEP)
    token = accounts.disable_totp(token, PASSWORD, code_at(secret, now()), new_ctx())
    assert whoami(stolen) is None
    assert whoami(token) is not None and not whoami(token).totp_enabled  # type: ignore[union-attr]
    assert _revoked_detail() == 1


def test_a_new_authenticator_or_new_recovery_codes_sign_out_the_other_sessions(
        clock: time_machine.Coordinates) -> None:
    addr, secret, _, token = _with_2fa()
    clock.shift(STEP)
    stolen = _second_device(addr, secret)
    clock.shift(3 * STEP)
    enrolment = accounts.start_totp(token, PASSWORD, code_at(secret, now()), new_ctx())
    assert whoami(stolen) is not None  # starting a change changes nothing yet
    clock.shift(STEP)
    _, token = accounts.confirm_totp(token, code_at(enrolment.secret, now()), new_ctx())
    assert whoami(stolen) is None and whoami(token) is not None

    clock.shift(STEP)
    stolen = _second_device(addr, enrolment.secret)
    clock.shift(3 * STEP)
    old_token = token
    _, token = accounts.regenerate_recovery_codes(token, PASSWORD,
                                                  code_at(enrolment.secret, now()), new_ctx())
    assert whoami(stolen) is None
    assert whoami(old_token) is None and whoami(token) is not None  # this one is rotated
    assert _revoked_detail() == 1


def test_a_sign_in_waiting_at_the_code_step_ends_when_2fa_changes(
        clock: time_machine.Coordinates) -> None:
    """Someone with the password, waiting at the code step, does not get in with a code
    once the owner has changed their second factor."""
    addr, secret, _, token = _with_2fa()
    clock.shift(STEP)
    waiting = _password_step(addr)
    _, token = accounts.regenerate_recovery_codes(token, PASSWORD, code_at(secret, now()),
                                                  new_ctx())
    clock.shift(STEP)
    with pytest.raises(InvalidToken):
        accounts.complete_login_mfa(mfa_token=waiting, code=code_at(secret, now()),
                                    ctx=new_ctx())
