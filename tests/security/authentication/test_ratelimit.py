"""Rate limits on sign-in, registration and reset: they slow an attacker down, and
cannot be used to keep someone else out."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pytest
import time_machine

from casino_app.security.ratelimit import RateLimited
from casino_app.users import accounts
from casino_app.users.errors import InvalidCredentials
from casino_app.users.sessions import RequestContext
from tests.users.helpers import (
    PASSWORD,
    T0,
    WRONG_PASSWORD,
    audited,
    new_ctx,
    new_email,
    reconfigure,
    register,
    sign_in,
    user_count,
)


def _login(addr: str, ctx: RequestContext, password: str | None = None) -> None:
    accounts.begin_login(email=addr, password=password or WRONG_PASSWORD, ctx=ctx)


def test_sign_in_attempts_are_limited_per_address(
        app_env: object, monkeypatch: pytest.MonkeyPatch) -> None:
    reconfigure(monkeypatch, RATE_LOGIN_IP="3/minute")
    with time_machine.travel(T0) as traveller:
        _, owner = register()
        attacker = new_ctx()
        for _ in range(3):
            with pytest.raises(InvalidCredentials):
                _login(new_email("sprayed"), attacker)
        with audited({}), pytest.raises(RateLimited) as exc:
            _login(owner, attacker, PASSWORD)  # even the right password waits
        assert 1 <= exc.value.retry_after <= 61
        assert "try again" in str(exc.value)
        sign_in(owner)  # from anywhere else: fine
        traveller.shift(timedelta(seconds=61))
        sign_in(owner, ctx=attacker)


def test_malformed_emails_count_toward_the_sign_in_limit(
        app_env: object, monkeypatch: pytest.MonkeyPatch) -> None:
    # Each refusal costs an argon2 verification; an address must not get them for free.
    reconfigure(monkeypatch, RATE_LOGIN_IP="3/minute")
    attacker = new_ctx()
    for bad in ("not-an-email", "x" * 300, "a@b"):
        with pytest.raises(InvalidCredentials):
            _login(bad, attacker)
    with pytest.raises(RateLimited):
        _login("still-not-an-email", attacker)


def test_sign_in_attempts_are_limited_per_account_and_address(any_env: str,
                                                              monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    # Lock-out is a separate mechanism; raise its threshold to see the limit alone.
    reconfigure(monkeypatch, LOCKOUT_THRESHOLD="100")
    _, owner = register()
    attacker = new_ctx()
    for _ in range(10):  # default: 10 per minute for one account from one address
        with pytest.raises(InvalidCredentials):
            _login(owner, attacker)
    with pytest.raises(RateLimited):
        _login(owner, attacker, PASSWORD)
    # The flood does not keep the owner out: they sign in from their own network.
    sign_in(owner, ctx=new_ctx())
    # and the attacker's address may still try other accounts
    with pytest.raises(InvalidCredentials):
        _login(new_email(), attacker)


def test_registration_is_limited_per_address(app_env: object) -> None:
    ctx = new_ctx()
    for _ in range(5):  # default: 5 per minute
        register(ctx=ctx)
    with pytest.raises(RateLimited):
        register(ctx=ctx)
    assert user_count() == 5
    register(ctx=new_ctx())
    assert user_count() == 6


def test_reset_requests_are_limited_the_same_way_for_known_and_unknown_emails(
        app_env: object) -> None:
    _, known = register()
    ctx = new_ctx()
    for addr in (known, "unknown@example.com"):
        other_ctx = new_ctx()
        for _ in range(3):  # default: 3 per 15 minutes for one account from one address
            accounts.request_password_reset(addr, other_ctx)
        with pytest.raises(RateLimited):
            accounts.request_password_reset(addr, other_ctx)
    accounts.request_password_reset(known, ctx)  # another address is not affected


def test_reset_requests_are_limited_per_address(app_env: object) -> None:
    ctx = new_ctx()
    for i in range(5):  # default: 5 per minute
        accounts.request_password_reset(f"someone{i}@example.com", ctx)
    with pytest.raises(RateLimited):
        accounts.request_password_reset("someone-else@example.com", ctx)


@pytest.mark.redis
def test_with_redis_every_process_shares_the_same_counts(
        app_env: object, redis_env: object, monkeypatch: pytest.MonkeyPatch) -> None:
    reconfigure(monkeypatch, RATE_REGISTER_IP="2/minute")
    ctx = RequestContext(ip="192.0.2.77")
    register(ctx=ctx)
    register(ctx=ctx)
    with pytest.raises(RateLimited):
        register(ctx=ctx)

    probe = ("import sys\n"
             "from casino_app.security import ratelimit\n"
             "try:\n"
             "    ratelimit.check_register(sys.argv[1])\n"
             "except ratelimit.RateLimited:\n"
             "    sys.exit(3)\n")
    env = dict(os.environ)

    def other_process(ip: str) -> int:
        return subprocess.run([sys.executable, "-c", probe, ip], env=env,  # noqa: S603
                              timeout=60, capture_output=True).returncode

    assert other_process("192.0.2.77") == 3  # the budget spent here is spent there too
    assert other_process("192.0.2.78") == 0


def test_without_redis_each_process_counts_alone(app_env: object,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # (The embedded default: memory storage. Documented so the Redis test means something.)
    from casino_app.security import ratelimit

    reconfigure(monkeypatch, RATE_REGISTER_IP="1/minute")
    ratelimit.check_register("192.0.2.1")
    with pytest.raises(RateLimited):
        ratelimit.check_register("192.0.2.1")
    ratelimit._state = None  # what a second process would start with
    ratelimit.check_register("192.0.2.1")


def test_memory_windows_move_count_all_or_nothing_and_forget_idle_keys() -> None:
    """The embedded limiter (this process's memory): a moving window per key; a refused
    hit counts under none of the spec's limits; keys idle past their window are dropped."""
    from limits import parse_many

    from casino_app.security.ratelimit import MemoryWindows

    w = MemoryWindows()
    per_minute = parse_many("3/minute")
    with time_machine.travel(T0, tick=False) as traveller:
        for _ in range(3):
            assert w.hit(per_minute, "bet", "alice") is None
            traveller.shift(timedelta(seconds=10))
        assert w.hit(per_minute, "bet", "alice") == 31   # the first hit leaves at T0 + 60
        assert w.hit(per_minute, "bet", "bob") is None    # another key has its own budget
        traveller.shift(timedelta(seconds=30, microseconds=1))
        assert w.hit(per_minute, "bet", "alice") is None  # moved: one left the window
        assert w.hit(per_minute, "bet", "alice") == 10   # until T0 + 70

        both = parse_many("2/second;3/minute")
        assert w.hit(both, "mfa", "x") is None and w.hit(both, "mfa", "x") is None
        assert w.hit(both, "mfa", "x") == 2               # the second's limit
        traveller.shift(timedelta(seconds=1, microseconds=1))
        assert w.hit(both, "mfa", "x") is None            # the refused one counted nowhere
        assert w.hit(both, "mfa", "x") == 59              # now the minute's

        traveller.shift(timedelta(hours=1))
        for i in range(MemoryWindows.SWEEP_EVERY):
            w.hit(parse_many("1000/second"), "sweep", str(i % 7))
        assert set(w._hits) == {(1000, 1.0, "sweep", str(i)) for i in range(7)}
