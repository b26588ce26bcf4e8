"""Sessions: what the browser holds, what the server keeps, and when a session ends."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import text

from casino_app.core.db import databases
from casino_app.users import accounts
from casino_app.users.errors import NotAuthenticated, ValidationFailed
from tests.users.helpers import (
    CHROME_WINDOWS,
    NEW_PASSWORD,
    PASSWORD,
    SAFARI_IPHONE,
    T0,
    audited,
    new_ctx,
    reconfigure,
    register,
    sign_in,
    whoami,
)


def test_the_token_has_256_random_bits_and_only_its_hash_is_stored(any_env: str) -> None:
    tokens = [register()[0] for _ in range(3)]
    tokens.append(sign_in(register()[1]))
    for token in tokens:
        assert re.fullmatch(r"[A-Za-z0-9_\-]{43}", token)  # 32 bytes, url-safe base64
    assert len(set(tokens)) == len(tokens)
    with databases().identity_engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM user_sessions")).all()
    dump = repr(rows)
    assert len(rows) == 5
    for token in tokens:
        assert token not in dump
        assert token[:16] not in dump


def test_an_idle_session_ends_after_30_minutes(any_env: str) -> None:
    with time_machine.travel(T0) as traveller:
        used, addr = register()
        unused = sign_in(addr)
        traveller.shift(timedelta(minutes=29))
        assert whoami(used) is not None
        traveller.shift(timedelta(minutes=2))  # 31 minutes after sign-in
        assert whoami(unused) is None
        assert whoami(used) is not None  # used 2 minutes ago
        traveller.shift(timedelta(minutes=31))
        assert whoami(used) is None
        assert whoami(used) is None  # asking again does not revive it


def test_activity_every_20_minutes_keeps_a_session_alive(any_env: str) -> None:
    with time_machine.travel(T0) as traveller:
        token, _ = register()
        for _ in range(12):  # four hours
            traveller.shift(timedelta(minutes=20))
            assert whoami(token) is not None
        traveller.shift(timedelta(minutes=31))
        assert whoami(token) is None


def test_activity_within_30_seconds_of_the_last_recorded_does_not_extend_the_session(
        app_env: object) -> None:
    # last_seen is written at most every 30 s: a click 10 s in does not move the deadline.
    with time_machine.travel(T0) as traveller:
        token, _ = register()
        traveller.shift(timedelta(seconds=10))
        assert whoami(token) is not None
        traveller.shift(timedelta(minutes=29, seconds=55))  # 30:05 after the last write
        assert whoami(token) is None


def test_a_session_ends_after_7_days_even_with_activity(
        any_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # A long idle timeout lets twice-daily activity keep the session busy; the absolute
    # lifetime (default 7 days) ends it anyway.
    reconfigure(monkeypatch, SESSION_IDLE_MINUTES="1440")
    with time_machine.travel(T0) as traveller:
        token, _ = register()
        for _ in range(13):
            traveller.shift(timedelta(hours=12))
            assert whoami(token) is not None
        traveller.shift(timedelta(hours=11, minutes=59))
        assert whoami(token) is not None
        traveller.shift(timedelta(minutes=1, seconds=1))
        assert whoami(token) is None


def test_a_session_with_activity_every_20_minutes_still_ends_after_7_days(
        app_env: object) -> None:
    with time_machine.travel(T0) as traveller:
        token, _ = register()
        elapsed = timedelta(0)
        while elapsed < timedelta(days=7) - timedelta(minutes=20):
            traveller.shift(timedelta(minutes=20))
            elapsed += timedelta(minutes=20)
            assert whoami(token) is not None, elapsed
        traveller.shift(timedelta(days=7) - elapsed + timedelta(seconds=1))
        assert whoami(token) is None


def test_both_timeouts_follow_the_settings(app_env: object,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    reconfigure(monkeypatch, SESSION_IDLE_MINUTES="5", SESSION_ABSOLUTE_DAYS="1")
    with time_machine.travel(T0) as traveller:
        idle, _ = register()
        busy, _ = register()
        traveller.shift(timedelta(minutes=4))
        assert whoami(idle) is not None and whoami(busy) is not None
        traveller.shift(timedelta(minutes=4))
        assert whoami(busy) is not None
        traveller.shift(timedelta(minutes=2))  # idle: 6 minutes since its last use
        assert whoami(idle) is None
        elapsed = timedelta(minutes=10)
        while elapsed < timedelta(days=1) - timedelta(minutes=4):
            assert whoami(busy) is not None, elapsed
            traveller.shift(timedelta(minutes=4))
            elapsed += timedelta(minutes=4)
        assert whoami(busy) is not None
        traveller.shift(timedelta(days=1) - elapsed + timedelta(seconds=1))
        assert whoami(busy) is None


def test_sessions_list_shows_device_and_address(any_env: str) -> None:
    laptop = new_ctx(CHROME_WINDOWS)
    phone = new_ctx(SAFARI_IPHONE)
    token, addr = register(ctx=laptop)
    sign_in(addr, ctx=phone)
    views = accounts.my_sessions(token)
    assert len(views) == 2
    by_ip = {v.ip: v for v in views}
    assert by_ip[laptop.ip].device == "Chrome on Windows (computer)"
    assert by_ip[laptop.ip].current
    assert by_ip[phone.ip].device == "Mobile Safari on iOS (phone)"
    assert not by_ip[phone.ip].current
    with pytest.raises(NotAuthenticated):
        accounts.my_sessions(None)


def test_revoking_one_session_ends_only_that_one(any_env: str) -> None:
    token, addr = register()
    other = sign_in(addr)
    third = sign_in(addr)
    other_id = next(v.id for v in accounts.my_sessions(other) if v.current)
    with audited({"session.revoke": 1}):
        assert accounts.revoke_my_session(token, other_id, new_ctx())
    assert whoami(other) is None
    assert whoami(token) is not None and whoami(third) is not None
    with audited({}):
        assert not accounts.revoke_my_session(token, other_id, new_ctx())  # already gone


def test_nobody_can_revoke_someone_elses_session(any_env: str) -> None:
    victim, _ = register()
    victim_session = accounts.my_sessions(victim)[0].id
    attacker, _ = register()
    with audited({}):
        assert not accounts.revoke_my_session(attacker, victim_session, new_ctx())
    assert whoami(victim) is not None
    for bad in (None, "1", 0, -1, True, 1.0, 2**31, 2**70):  # too big for the column
        with pytest.raises(ValidationFailed):
            accounts.revoke_my_session(attacker, bad, new_ctx())


def test_signing_out_everywhere_else_keeps_the_current_session(any_env: str) -> None:
    token, addr = register()
    others = [sign_in(addr) for _ in range(3)]
    bystander, _ = register()
    with audited({"session.revoke_others": 1}):
        assert accounts.revoke_my_other_sessions(token, new_ctx()) == 3
    assert whoami(token) is not None
    assert all(whoami(t) is None for t in others)
    assert whoami(bystander) is not None
    assert [v.current for v in accounts.my_sessions(token)] == [True]


def test_logout_ends_the_session(any_env: str) -> None:
    token, addr = register()
    other = sign_in(addr)
    with audited({"logout": 1}):
        accounts.logout(token, new_ctx())
    assert whoami(token) is None
    assert whoami(other) is not None
    with audited({}):
        accounts.logout(token, new_ctx())  # twice is harmless
        accounts.logout(None, new_ctx())
        accounts.logout("made-up-token", new_ctx())


def test_changing_the_password_ends_other_sessions_and_renews_this_one(any_env: str) -> None:
    token, addr = register()
    other = sign_in(addr)
    with pytest.raises(ValidationFailed) as exc:
        accounts.change_password(token, "wrong password!", NEW_PASSWORD, new_ctx())
    assert exc.value.field == "current_password"
    with pytest.raises(ValidationFailed) as exc:
        accounts.change_password(token, PASSWORD, "password", new_ctx())
    assert exc.value.field == "new_password"
    with audited({"password.changed": 1}):
        renewed = accounts.change_password(token, PASSWORD, NEW_PASSWORD, new_ctx())
    assert whoami(token) is None and whoami(other) is None
    assert whoami(renewed) is not None
    sign_in(addr, NEW_PASSWORD)


@pytest.mark.parametrize("token", [None, "", "x", "a" * 43, "a" * 5000, 42, b"bytes"])
def test_made_up_tokens_resolve_to_nobody(app_env: object, token: object) -> None:
    register()
    assert whoami(token) is None  # type: ignore[arg-type]


def test_websocket_uses_extend_sessions_in_one_write_and_never_revive_one(
        any_env: str) -> None:
    """Many tabs used at once (websocket events: ``current_user_async``) extend their
    sessions' idle time with one write for all of them, a moment later, without making
    the event wait for it; a session signed out meanwhile stays signed out."""
    import asyncio

    from sqlalchemy import event

    statements: list[tuple[str, bool]] = []

    def seen(_conn, _cursor, statement, _params, _context, executemany):  # noqa: ANN001, ANN202
        if statement.lstrip().upper().startswith("UPDATE USER_SESSIONS"):
            statements.append((statement, executemany))

    engine = databases().identity_engine
    with time_machine.travel(T0) as traveller:
        tokens = [register()[0] for _ in range(5)]
        traveller.shift(timedelta(minutes=29))
        event.listen(engine, "before_cursor_execute", seen)
        try:
            async def uses() -> None:
                for token in tokens:
                    assert await accounts.current_user_async(token) is not None
                assert statements == []  # not written yet: the events did not wait
                accounts.logout(tokens[0], new_ctx())
                await asyncio.sleep(accounts.TOUCH_DELAY + 0.5)

            asyncio.run(uses())
        finally:
            event.remove(engine, "before_cursor_execute", seen)
        assert [many for _s, many in statements if "last_seen_at" in _s] == [True]
        traveller.shift(timedelta(minutes=29))  # 58 minutes after sign-in, 29 after use
        assert whoami(tokens[0]) is None
        assert all(whoami(t) is not None for t in tokens[1:])
