"""A privileged change that rotates the caller's session (password change, 2FA on or off)
must not hand out a fresh session when the caller's session was ended meanwhile: staff
locked the account, or the owner reset the password, between the moment the token was
read and the moment the account row was locked (PostgreSQL, READ COMMITTED)."""

from __future__ import annotations

import threading

import pytest

from casino_app.users import accounts, staff
from casino_app.users.errors import NotAuthenticated
from casino_app.users.models import Role
from tests.users.helpers import NEW_PASSWORD, PASSWORD, make_staff, new_ctx, register, whoami

pytestmark = pytest.mark.postgres


def _between_token_and_row_lock(monkeypatch: pytest.MonkeyPatch, action) -> None:  # noqa: ANN001
    """Run ``action`` in another connection right before the account row is locked."""
    real = accounts._user_for_update
    done = threading.Event()

    def patched(s, user_id):  # noqa: ANN001, ANN202
        if not done.is_set():
            done.set()
            t = threading.Thread(target=action)
            t.start()
            t.join(timeout=20)
            assert not t.is_alive()
        return real(s, user_id)

    monkeypatch.setattr(accounts, "_user_for_update", patched)


def test_a_staff_lock_during_a_password_change_leaves_no_live_session(
        pg_env, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    support, _, _ = make_staff(Role.support)
    token, addr = register()
    victim = whoami(token)
    assert victim is not None
    _between_token_and_row_lock(monkeypatch, lambda: staff.lock_player(
        support, victim.user_id, "fraud", new_ctx()))
    try:
        new_token = accounts.change_password(token, PASSWORD, NEW_PASSWORD, new_ctx())
    except NotAuthenticated:
        new_token = None
    assert new_token is None or whoami(new_token) is None
    assert whoami(token) is None


def test_a_staff_lock_during_2fa_set_up_leaves_no_live_session(
        pg_env, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    import pyotp

    support, _, _ = make_staff(Role.support)
    token, _ = register()
    victim = whoami(token)
    assert victim is not None
    enrolment = accounts.start_totp(token, PASSWORD, None, new_ctx())
    _between_token_and_row_lock(monkeypatch, lambda: staff.lock_player(
        support, victim.user_id, "fraud", new_ctx()))
    try:
        _, new_token = accounts.confirm_totp(token, pyotp.TOTP(enrolment.secret).now(),
                                             new_ctx())
    except NotAuthenticated:
        new_token = None
    assert new_token is None or whoami(new_token) is None
