"""What the wallet page shows of withdrawal protection, driven as the browser drives it:
the choice of second factor without 2FA (the mailed link), the address that cools with
the time it becomes usable, the allow-list card, the lock after a password change with
until when, and the confirmation link's page (confirmed once, then "used before")."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from casino_app.core.settings import reset_settings_cache
from casino_app.ui.state.withdraw import WithdrawConfirmState, WithdrawState
from casino_app.users import accounts
from tests.ui.test_deposits_state import _browser, _run
from tests.ui.test_state_security import _substate
from tests.ui.test_withdraw_state import DEST, KEY, _form, _reserved
from tests.ui.test_withdraw_state import env as _env  # noqa: F401 - the fixture
from tests.users.helpers import NEW_PASSWORD, PASSWORD, body, new_ctx, read_outbox


@pytest.fixture
def env(_env, mail_settles, monkeypatch):  # noqa: ANN001, ANN201, F811
    """test_withdraw_state's players, with the production cooling and lock (24 h)."""
    monkeypatch.setenv("CASINO_WITHDRAW_COOLING_HOURS", "24")
    monkeypatch.setenv("CASINO_WITHDRAW_LOCK_HOURS", "24")
    reset_settings_cache()
    return _env


def _tab(token: str, client: str = "tab-1") -> Any:
    from casino_app.ui.state.deposits import DepositsState

    root = _browser(token, client=client)
    _run(_substate(root, DepositsState), "on_open")
    state = _substate(root, WithdrawState)
    _run(state, "on_open")
    return state


def _allow(state: Any, address: str = DEST, action: str = "add", **kw: Any) -> None:
    _run(state, "change_allow_list", {"currency": "ETH", "address": address,
                                      "action": action, "password": PASSWORD, **kw})


def test_a_new_address_shows_when_it_becomes_usable_and_the_allow_list_skips_it(env
                                                                              ) -> None:  # noqa: ANN001
    (token, pid), _ = env
    state = _tab(token)
    assert not state.totp_on and state.method == "password" and state.lock == ""
    _run(state, "request", _form(), KEY)
    assert "can be used from" in state.errors["address"] and state.notice == ""
    [row] = state.addresses
    assert row.address == DEST and re.fullmatch(
        r"new: usable from \d{4}-\d\d-\d\d \d\d:\d\d UTC", row.note), row.note
    assert _reserved(pid) == 0
    # the allow-list card: a wrong password changes nothing, the right one lists it
    _allow(state, password="wrong password!")
    assert "not correct" in state.allow_errors["password"] and state.allow_notice == ""
    _allow(state)
    assert "is on your allow-list" in state.allow_notice
    assert [(r.note, r.allowed) for r in state.addresses] == [("on your allow-list", True)]
    _run(state, "request", _form(), KEY)
    assert "queued" in state.notice and _reserved(pid) == 10_000_000 + 50_000


def test_a_withdrawal_confirmed_by_mailed_link_on_its_page(env) -> None:  # noqa: ANN001
    (token, pid), _ = env
    state = _tab(token)
    _allow(state)
    _run(state, "choose_method", "mail")
    assert state.method == "mail"
    for junk in ("sms", None, ["mail"]):
        _run(state, "choose_method", junk)
        assert state.method == "mail"
    _run(state, "request", _form(method="mail", password=""), KEY)
    assert "open the link we mailed you" in state.notice
    [row] = state.rows
    assert (row.state, row.label) == ("unconfirmed", "confirm by mail")
    for _ in range(250):
        mails = [m for m in read_outbox() if m["Subject"] == "Confirm your HashHouse withdrawal"]
        if mails:
            break
        time.sleep(0.02)
    link = re.search(r"/withdrawal/confirm\?token=([A-Za-z0-9_\-]+)", body(mails[0])).group(1)
    # opened in another browser, signed out: the mailbox is the factor
    page = _substate(_browser("", url=f"http://localhost:3000/withdrawal/confirm?token={link}",
                              client="mail-tab"), WithdrawConfirmState)
    _run(page, "on_open")
    assert page.status == "done" and "is confirmed" in page.message
    _run(page, "on_open")
    assert page.status == "done" and "used before" in page.message
    bad = _substate(_browser("", url="http://localhost:3000/withdrawal/confirm?token=nope",
                             client="bad-tab"), WithdrawConfirmState)
    _run(bad, "on_open")
    assert bad.status == "failed" and "not valid" in bad.message
    _run(state, "on_open")
    assert [r.state for r in state.rows] == ["queued"]


def test_after_a_password_change_the_form_says_until_when_withdrawals_are_locked(env
                                                                                ) -> None:  # noqa: ANN001
    (token, pid), _ = env
    state = _tab(token)
    _allow(state)
    new_token = accounts.change_password(token, PASSWORD, NEW_PASSWORD, new_ctx())
    state = _tab(new_token, client="tab-2")
    assert re.fullmatch(r"Withdrawals are locked until \d{4}-\d\d-\d\d \d\d:\d\d UTC because "
                        r"your password was changed\.", state.lock), state.lock
    _run(state, "request", _form(password=NEW_PASSWORD), KEY)
    assert state.message == state.lock and _reserved(pid) == 0
