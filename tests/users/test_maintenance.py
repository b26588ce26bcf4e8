"""Housekeeping: expired rows go, live ones and the audit log stay."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine

from casino_app.users import accounts
from casino_app.users.errors import InvalidCredentials
from casino_app.users.maintenance import purge_expired
from tests.users.helpers import (
    T0,
    WRONG_PASSWORD,
    audit_counts,
    new_ctx,
    register,
    sign_in,
    whoami,
)


def test_purge_removes_long_expired_rows_and_keeps_live_ones_and_the_audit_log(
        any_env: str) -> None:
    with time_machine.travel(T0) as traveller:
        _, addr = register()
        with pytest.raises(InvalidCredentials):
            accounts.begin_login(email=addr, password=WRONG_PASSWORD, ctx=new_ctx())
        accounts.request_password_reset(addr, new_ctx())
        traveller.shift(timedelta(days=100))
        fresh = sign_in(addr)
        audit_before = audit_counts()
        removed = purge_expired()
        assert removed == {"sessions": 1, "mfa_challenges": 0, "action_tokens": 1,
                           "login_attempts": 1, "risk_events": 0, "withdrawal_locks": 0,
                           "pending_registrations": 0}
        # (the sign-up session, reset link, failure)
        assert whoami(fresh) is not None
        assert audit_counts() == audit_before
        assert purge_expired() == {"sessions": 0, "mfa_challenges": 0, "action_tokens": 0,
                                   "login_attempts": 0, "risk_events": 0,
                                   "withdrawal_locks": 0, "pending_registrations": 0}


def test_a_sign_up_never_finished_is_purged_as_soon_as_its_link_expires(any_env: str) -> None:
    """It holds the name, birth date and password hash of someone who is not a customer."""
    from tests.support.signup import confirmation_token

    with time_machine.travel(T0) as traveller:
        for addr in ("late@example.com", "later@example.com"):
            accounts.start_registration(email=addr, password="a long pass phrase",
                                        display_name="Late", date_of_birth="1990-01-01",
                                        accept_terms=True, ctx=new_ctx())
            confirmation_token(addr)
            traveller.shift(timedelta(hours=1))
        traveller.shift(timedelta(hours=22, minutes=30))  # the first is 24.5 h old
        assert purge_expired()["pending_registrations"] == 1
        traveller.shift(timedelta(hours=1))
        assert purge_expired()["pending_registrations"] == 1
