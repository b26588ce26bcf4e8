"""A signed-in session cannot brute-force the password or the 2FA code through the
re-authentication forms (turn 2FA off, new recovery codes, change password)."""

from __future__ import annotations

import pytest

from casino_app.security.ratelimit import RateLimited
from casino_app.users import accounts
from casino_app.users.errors import ValidationFailed
from casino_app.users.sessions import RequestContext
from tests.support.signup import sign_up


def test_reauthentication_attempts_are_rate_limited_per_account(app_env, monkeypatch) -> None:  # noqa: ANN001
    ctx = RequestContext("10.9.9.9", "pytest")
    token = sign_up(email_addr="re@example.com", password="reauth pass phrase",
                    display_name="Re", date_of_birth="1990-01-01", ctx=ctx)
    for _ in range(10):
        with pytest.raises(ValidationFailed):
            accounts.change_password(token, "wrong guess here", "a new pass phrase", ctx)
    with pytest.raises(RateLimited):
        accounts.change_password(token, "reauth pass phrase", "a new pass phrase", ctx)
    with pytest.raises(RateLimited):
        accounts.start_totp(token, "reauth pass phrase", None, ctx)
