"""A session that ends is refused on the tab's very next event, however it ended.

Every event of a signed-in tab checks its session with one raw read of what is committed
at that moment (``accounts.current_user_async``: no unit of work, no cache that a
revocation would have to reach). So whichever path ends a session (sign-out in another
tab, the owner's or staff's revoke, a password change or reset, a lock, a role change,
turning 2FA on, the idle or absolute timeout) and whichever process commits it (this
one, another web worker, the CLI), the next bet of a tab holding it is answered with the
sign-in page, and nothing is bet. Driven as Reflex drives a tab, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from sqlalchemy import func, select

from casino_app.core.clock import utcnow
from casino_app.core.db import ledger_tx
from casino_app.core.settings import get_settings
from casino_app.games.models import Bet
from casino_app.payments import demo
from casino_app.users import accounts, staff
from casino_app.users.models import Role
from tests.ui.test_games_state import _run, _states, _tab
from tests.ui.test_state_security import _redirects_to_login
from tests.users.helpers import (
    NEW_PASSWORD,
    PASSWORD,
    enable_2fa,
    make_staff,
    new_ctx,
    register,
    sign_in,
)


def _bets(player_id: str) -> int:
    with ledger_tx(readonly=True) as s:
        return s.execute(select(func.count()).select_from(Bet)
                         .where(Bet.player_id == player_id)).scalar_one()


class Player:
    """A player signed in twice: tab A (the one that keeps betting) and session B."""

    def __init__(self) -> None:
        self.token_a, self.email = register()
        self.token_b = sign_in(self.email)
        me = accounts.current_user(self.token_a)
        assert me is not None
        self.user_id, self.player_id, self.session_a = me.user_id, me.player_id, me.session_id
        demo.top_up_fun(self.player_id, "revocation-topup-1")
        self.game, self.wallet = _states(_tab(self.token_a))
        _run(self.wallet, "load")
        _run(self.game, "open_game", "dice")
        self.n = 0

    def bet(self) -> list[Any]:
        self.n += 1
        return _run(self.game, "bet", f"revocation-bet-{self.n:06d}")


def _sign_out_in_another_tab(p: Player) -> None:
    accounts.logout(p.token_a, new_ctx())  # the same session, signed out elsewhere


def _owner_ends_other_sessions(p: Player) -> None:
    assert accounts.revoke_my_other_sessions(p.token_b, new_ctx()) == 1


def _owner_ends_this_one_session(p: Player) -> None:
    assert accounts.revoke_my_session(p.token_b, p.session_a, new_ctx())


def _password_changed_elsewhere(p: Player) -> None:
    accounts.change_password(p.token_b, PASSWORD, NEW_PASSWORD, new_ctx())


def _password_reset_by_mail(p: Player) -> None:
    from tests.users.test_reset import _reset_link

    accounts.reset_password(_reset_link(p.email), NEW_PASSWORD, new_ctx())


def _two_factor_turned_on_elsewhere(p: Player) -> None:
    enable_2fa(p.token_b)


def _staff_ends_all_sessions(p: Player) -> None:
    support, _, _ = make_staff(Role.support)
    assert staff.revoke_player_sessions(support, p.user_id, new_ctx()) >= 1


def _staff_ends_one_session(p: Player) -> None:
    support, _, _ = make_staff(Role.support)
    assert staff.revoke_player_session(support, p.user_id, p.session_a, new_ctx())


def _staff_locks_the_account(p: Player) -> None:
    support, _, _ = make_staff(Role.support)
    staff.lock_player(support, p.user_id, "chargeback investigation", new_ctx())


def _role_changed_by_two_admins(p: Player) -> None:
    asks, _, _ = make_staff(Role.admin)
    approves, _, _ = make_staff(Role.admin)
    request = staff.set_role(asks, p.user_id, "support", new_ctx(), "joins support")
    assert request is not None
    staff.approve_role_request(approves, request.id, new_ctx())


def _another_process_ends_it(p: Player) -> None:
    """The CLI, a job or another web worker: nothing of this process hears of it."""
    code = ("import sys; from casino_app.users import accounts; "
            "from casino_app.users.sessions import RequestContext; "
            "print(accounts.revoke_my_other_sessions(sys.argv[1], RequestContext('10.0.0.9')))")
    out = subprocess.run([sys.executable, "-c", code, p.token_b], env=dict(os.environ),
                         capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip().splitlines()[-1] == "1", out.stderr


ENDINGS: list[Callable[[Player], None]] = [
    _sign_out_in_another_tab, _owner_ends_other_sessions, _owner_ends_this_one_session,
    _password_changed_elsewhere, _password_reset_by_mail, _two_factor_turned_on_elsewhere,
    _staff_ends_all_sessions, _staff_ends_one_session, _staff_locks_the_account,
    _role_changed_by_two_admins, _another_process_ends_it,
]


@pytest.mark.parametrize("ending", ENDINGS, ids=lambda f: f.__name__.strip("_"))
def test_the_next_bet_after_a_session_ends_is_refused(any_env: str,
                                                      ending: Callable[[Player], None]) -> None:
    p = Player()
    assert p.bet() == [None] and p.game.error == "" and _bets(p.player_id) == 1
    ending(p)
    assert _redirects_to_login(p.bet())  # the very next event
    assert _bets(p.player_id) == 1


@pytest.mark.parametrize("timeout", ["idle", "absolute"])
def test_the_next_bet_after_a_session_times_out_is_refused(
        any_env: str, timeout: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from casino_app.core.settings import reset_settings_cache

    if timeout == "absolute":  # no idle timeout on the way there
        monkeypatch.setenv("CASINO_SESSION_IDLE_MINUTES", str(24 * 60))
        monkeypatch.setenv("CASINO_SESSION_ABSOLUTE_DAYS", "1")
        reset_settings_cache()
    s = get_settings()
    with time_machine.travel(utcnow(), tick=True) as traveller:
        p = Player()
        assert p.bet() == [None] and _bets(p.player_id) == 1
        if timeout == "idle":
            traveller.shift(timedelta(minutes=s.session_idle_minutes - 1))
            assert p.bet() == [None] and _bets(p.player_id) == 2  # still within: it counts
            # ... and it was a use: the idle time runs again from that bet
            traveller.shift(timedelta(minutes=s.session_idle_minutes - 1))
            assert p.bet() == [None] and _bets(p.player_id) == 3
            traveller.shift(timedelta(minutes=s.session_idle_minutes, seconds=1))
        else:
            traveller.shift(timedelta(hours=23))
            assert p.bet() == [None] and _bets(p.player_id) == 2
            traveller.shift(timedelta(hours=1, seconds=1))  # a day since the sign-in
        assert _redirects_to_login(p.bet())
    assert _bets(p.player_id) == 2 + (timeout == "idle")
