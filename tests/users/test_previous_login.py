"""A returning player sees when and from where they signed in before this session."""

from __future__ import annotations

import time_machine

from casino_app.users import accounts
from casino_app.users.sessions import RequestContext
from tests.support.signup import sign_up


def test_the_previous_sign_in_is_shown_not_the_current_one(any_env) -> None:  # noqa: ANN001
    home, cafe = RequestContext("10.1.1.1", "home"), RequestContext("10.2.2.2", "cafe")
    with time_machine.travel("2026-03-01 09:00:00", tick=False):
        sign_up(email_addr="back@example.com", password="coming back soon",
                display_name="Back", date_of_birth="1990-01-01", ctx=home)
    with time_machine.travel("2026-03-02 18:30:00", tick=False):
        accounts.begin_login(email="back@example.com", password="coming back soon",
                             ctx=home)
    with time_machine.travel("2026-03-03 08:15:00", tick=False):
        second = accounts.begin_login(email="back@example.com", password="coming back soon",
                                      ctx=cafe).session_token
        me = accounts.current_user(second)
        assert me is not None
        assert me.previous_login_ip == "10.1.1.1"
        assert me.previous_login_at is not None
        assert me.previous_login_at.isoformat().startswith("2026-03-02T18:30")
        assert me.last_login_ip == "10.2.2.2"
