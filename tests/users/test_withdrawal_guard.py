"""Account takeover and withdrawal protection (users/withdrawal_guard.py, users/risk.py,
payments/withdrawal_addresses.py), on SQLite and PostgreSQL: every withdrawal is
confirmed by a second factor (the code with 2FA; else the password or a mailed link that
confirms once and expires), each withdrawal is announced by mail, a new address cools
before it can be paid unless it is allow-listed (which takes a second factor), a
password or 2FA change locks withdrawals and tells the account's address, and the
account's risk asks for a stronger factor or holds withdrawals with staff alerted.
No Ethereum node is needed: requests only queue."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from sqlalchemy import select

from casino_app.core.db import identity_tx, ledger_tx
from casino_app.core.settings import reset_settings_cache
from casino_app.payments import ledger, withdrawals
from casino_app.payments.signer.seed import account_xpub
from casino_app.payments.withdrawal_addresses import AddressCooling
from casino_app.payments.withdrawal_models import Withdrawal
from casino_app.users import accounts, risk, withdrawal_guard
from casino_app.users.errors import ValidationFailed
from casino_app.users.models import RiskEvent
from casino_app.users.sessions import RequestContext
from casino_app.users.withdrawal_guard import StepUpRequired, WithdrawalsLocked
from tests.support.services import ANVIL_MNEMONIC
from tests.users.helpers import (
    CHROME_WINDOWS,
    NEW_PASSWORD,
    PASSWORD,
    SAFARI_IPHONE,
    WRONG_PASSWORD,
    audit_rows,
    body,
    code_at,
    enable_2fa,
    read_outbox,
    register,
    sign_in,
    user_row,
)

DEST = "0x52908400098527886E0F7030069857D2E4169EE7"
OTHER = "0xde709f2102306220921060314715629080e2fb77"
FEE = 50_000
HOME = RequestContext("10.77.1.5", CHROME_WINDOWS)
_keys = iter(range(10**6))


@pytest.fixture
def player(any_env: str, mail_settles, monkeypatch: pytest.MonkeyPatch
           ) -> dict[str, Any]:  # noqa: ANN001
    """Ethereum configured (no node), cooling and locks of one hour; a player signed
    up from HOME with 0.05 ETH."""
    monkeypatch.setenv("CASINO_ETH_RPC_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("CASINO_ETH_XPUB", account_xpub(ANVIL_MNEMONIC))
    monkeypatch.setenv("CASINO_ETH_WITHDRAW_MIN", "ETH:100000")
    monkeypatch.setenv("CASINO_ETH_WITHDRAW_MAX", "ETH:1000000000")
    monkeypatch.setenv("CASINO_ETH_WITHDRAW_FEE", f"ETH:{FEE}")
    monkeypatch.setenv("CASINO_WITHDRAW_COOLING_HOURS", "1")
    monkeypatch.setenv("CASINO_WITHDRAW_LOCK_HOURS", "1")
    monkeypatch.setenv("CASINO_SESSION_IDLE_MINUTES", "300")
    monkeypatch.setenv("CASINO_RATE_REAUTH_ACCOUNT", "1000/minute")
    reset_settings_cache()
    token, addr = register(ctx=HOME)
    pid = user_row(addr).player_id
    with ledger_tx() as s:
        ledger.transfer(s, f"test-deposit:{pid}", "deposit",
                        ledger.house_account(s, "ETH", "custody"),
                        ledger.player_account(s, pid, "ETH"), 50_000_000)
    return {"token": token, "email": addr, "pid": pid, "uid": user_row(addr).id}


def _key() -> str:
    return f"guard-test-key-{next(_keys):08d}"


def _withdraw(p: dict[str, Any], amount: str = "0.01", address: str = DEST, *,
              method: str = "password", password: str = PASSWORD, code: str | None = None,
              ctx: RequestContext = HOME, key: str | None = None) -> withdrawals.WithdrawalView:
    return withdrawal_guard.request(p["token"], ctx, method=method, code=code,
                                    password=password, currency_code="ETH", amount=amount,
                                    address=address, key=key or _key())


def _allow(p: dict[str, Any], address: str = DEST, allowed: bool = True, **kw: Any) -> Any:
    kw.setdefault("password", PASSWORD)
    return withdrawal_guard.change_allow_list(p["token"], HOME, currency_code="ETH",
                                              address=address, allowed=allowed, **kw)


def _reserved(pid: str) -> int:
    with ledger_tx(readonly=True) as s:
        return ledger.player_balances(s, pid)["ETH"].reserved


def _rows(pid: str) -> list[Withdrawal]:
    with ledger_tx(readonly=True) as s:
        rows = list(s.execute(select(Withdrawal).where(Withdrawal.player_id == pid)
                              .order_by(Withdrawal.id)).scalars())
        s.expunge_all()
        return rows


def _mails(subject: str, count: int = 1) -> list[Any]:
    """The outbox's mails with this subject, once there are ``count`` (mail goes out on
    a background thread)."""
    for _ in range(250):
        found = [m for m in read_outbox() if m["Subject"] == subject]
        if len(found) >= count:
            return found
        time.sleep(0.02)
    raise AssertionError(f"no mail {subject!r}: {[m['Subject'] for m in read_outbox()]}")


def _link(msg: Any) -> str:
    m = re.search(r"/withdrawal/confirm\?token=([A-Za-z0-9_\-]+)", body(msg))
    assert m, body(msg)
    return m.group(1)


def _allow_dest(p: dict[str, Any]) -> None:
    """Most tests withdraw to DEST: put it on the allow-list (no cooling)."""
    _allow(p)


# --- 1. a second factor for every withdrawal ---------------------------------------------------

def test_without_2fa_a_withdrawal_needs_the_players_password(player) -> None:  # noqa: ANN001
    _allow_dest(player)
    for method, password, field in (("password", WRONG_PASSWORD, "password"),
                                    ("password", "", "password"), ("sms", PASSWORD, "method"),
                                    (None, PASSWORD, "method")):
        with pytest.raises(ValidationFailed) as exc:
            _withdraw(player, method=method, password=password)  # type: ignore[arg-type]
        assert exc.value.field == field
    assert _rows(player["pid"]) == [] and _reserved(player["pid"]) == 0
    # the wrong password was audited (a staff-visible row) and counted as a risk signal
    [failed] = audit_rows("withdrawal.second_factor_failed")
    assert json.loads(failed.detail) == {"method": "password", "purpose": "withdrawal"}
    w = _withdraw(player)
    assert w.state == "queued" and _reserved(player["pid"]) == 10_000_000 + FEE
    [audit] = audit_rows("withdrawal.requested")
    assert json.loads(audit.detail)["method"] == "password"


def test_with_2fa_the_code_is_asked_and_the_password_is_not_enough(player, monkeypatch
                                                                    ) -> None:  # noqa: ANN001
    monkeypatch.setenv("CASINO_WITHDRAW_LOCK_HOURS", "0")  # (the lock after enabling: below)
    reset_settings_cache()
    _allow_dest(player)
    secret, _codes, player["token"] = enable_2fa(player["token"])
    with pytest.raises(ValidationFailed) as exc:   # no code: the password does not do
        _withdraw(player, method="password")
    assert exc.value.field == "code"
    with pytest.raises(ValidationFailed):          # nor a mailed link
        _withdraw(player, method="mail")
    assert _rows(player["pid"]) == []
    w = _withdraw(player, method="password", code=code_at(secret, datetime.now(UTC), 1))
    assert w.state == "queued"


def test_a_mailed_link_confirms_the_withdrawal_once(player) -> None:  # noqa: ANN001
    _allow_dest(player)
    w = _withdraw(player, method="mail", password="")
    # requested at once, reserved, waiting for the link (never batched meanwhile)
    assert w.state == "unconfirmed" and _reserved(player["pid"]) == 10_000_000 + FEE
    [msg] = _mails("Confirm your HashHouse withdrawal")
    assert msg["To"] == player["email"] and "0.01 ETH to " + DEST in body(msg)
    link = _link(msg)
    assert link not in repr(w)  # the token is in the mail only
    done = withdrawal_guard.confirm_link(link, HOME)
    assert (done.outcome, done.view.state) == ("confirmed", "queued")
    again = withdrawal_guard.confirm_link(link, HOME)   # opened twice: confirms once
    assert (again.outcome, again.view.state) == ("already", "queued")
    assert [r.state for r in _rows(player["pid"])] == ["queued"]
    assert _reserved(player["pid"]) == 10_000_000 + FEE
    assert [json.loads(a.detail)["outcome"] for a in audit_rows("withdrawal.confirmed")] == \
        ["confirmed"]
    for junk in ("", "x" * 43, None, 42, link[:-1] + ("A" if link[-1] != "A" else "B")):
        with pytest.raises(withdrawals.LinkInvalid):
            withdrawal_guard.confirm_link(junk, HOME)


def test_an_expired_link_cancels_the_withdrawal_and_frees_the_money(player) -> None:  # noqa: ANN001
    _allow_dest(player)
    start = datetime.now(UTC)
    first = _withdraw(player, method="mail")
    second = _withdraw(player, "0.02", method="mail")
    links = [_link(m) for m in _mails("Confirm your HashHouse withdrawal", 2)]
    assert _reserved(player["pid"]) == 30_000_000 + 2 * FEE
    with time_machine.travel(start + timedelta(minutes=31)):
        # opened late: cancelled at once
        late = withdrawal_guard.confirm_link(links[0], HOME)
        assert (late.outcome, late.view.state) == ("expired", "cancelled")
        # never opened: the job cancels it, and tells the player
        assert withdrawal_guard.send_notices() == {"expired": 1, "mailed": 2}
    assert {r.id: r.state for r in _rows(player["pid"])} == \
        {first.id: "cancelled", second.id: "cancelled"}
    assert _reserved(player["pid"]) == 0
    assert len(_mails("HashHouse withdrawal not paid", 2)) == 2
    assert withdrawal_guard.confirm_link(links[1], HOME).outcome == "cancelled"
    with ledger_tx(readonly=True) as s:
        assert ledger.check_invariants(s) == [] or all(
            f.violations == 0 for f in ledger.check_invariants(s))


# --- 2. each withdrawal announced by mail ---------------------------------------------------

def test_each_withdrawal_is_announced_when_requested_and_when_sent(player) -> None:  # noqa: ANN001
    _allow_dest(player)
    w = _withdraw(player)
    [msg] = _mails("HashHouse withdrawal requested")
    assert msg["To"] == player["email"] and "0.01 ETH to " + DEST in body(msg) \
        and "queued" in body(msg)
    assert withdrawal_guard.send_notices() == {}          # nothing new to tell
    with ledger_tx() as s:                                 # the batcher sends it
        s.get(Withdrawal, w.id).state = "batched"
    assert withdrawal_guard.send_notices() == {"mailed": 1}
    [sent] = _mails("HashHouse withdrawal sent")
    assert "0.01 ETH to " + DEST in body(sent)
    with ledger_tx() as s:                                 # confirmed: told once already
        s.get(Withdrawal, w.id).state = "confirmed"
    assert withdrawal_guard.send_notices() == {}
    assert len([m for m in read_outbox() if m["Subject"] == "HashHouse withdrawal sent"]) == 1


# --- 3. cooling of new addresses, the allow-list -----------------------------------------------

def test_a_new_address_cools_before_it_can_be_paid(player) -> None:  # noqa: ANN001
    start = datetime.now(UTC)
    with pytest.raises(AddressCooling) as exc:
        _withdraw(player)
    assert exc.value.fresh and "can be used from" in str(exc.value)
    usable = exc.value.usable_at
    assert timedelta(minutes=59) < usable - start.replace(tzinfo=None) <= timedelta(minutes=61)
    # the address is remembered (asking again does not restart the clock); the owner is told
    with pytest.raises(AddressCooling) as again:
        _withdraw(player)
    assert not again.value.fresh and again.value.usable_at == usable
    [msg] = _mails("New withdrawal address on your HashHouse account")
    assert DEST in body(msg)
    assert _rows(player["pid"]) == [] and _reserved(player["pid"]) == 0
    [shown] = withdrawal_guard.status(player["token"]).addresses
    assert (shown.address, shown.allowed, shown.usable_at) == (DEST, False, usable)
    with time_machine.travel(usable + timedelta(seconds=1)):
        assert _withdraw(player).state == "queued"


def test_the_allow_list_skips_cooling_and_takes_a_second_factor(player) -> None:  # noqa: ANN001
    with pytest.raises(ValidationFailed):
        _allow(player, password=WRONG_PASSWORD)
    with pytest.raises(ValueError):
        _allow(player, address="0x1234")
    assert withdrawal_guard.status(player["token"]).addresses == []
    view = _allow(player)
    assert view.allowed
    [msg] = _mails("Your HashHouse withdrawal allow-list changed")
    assert DEST in body(msg) and "added to" in body(msg)
    assert _withdraw(player).state == "queued"     # at once
    # taken off the list, an address named less than the cooling period ago cools again
    assert not _allow(player, allowed=False).allowed
    with pytest.raises(AddressCooling):
        _withdraw(player)
    with pytest.raises(LookupError):
        _allow(player, address=OTHER, allowed=False)
    assert [json.loads(a.detail)["allowed"] for a in
            audit_rows("withdrawal.allow_list_added") + audit_rows("withdrawal.allow_list_removed")
            ] == [True, False]


# --- 4. locks after a password or 2FA change ------------------------------------------------

def test_a_password_change_locks_withdrawals_and_tells_the_account_address(player) -> None:  # noqa: ANN001
    _allow_dest(player)
    pending = _withdraw(player, method="mail")
    link = _link(_mails("Confirm your HashHouse withdrawal")[0])
    start = datetime.now(UTC)
    player["token"] = accounts.change_password(player["token"], PASSWORD, NEW_PASSWORD, HOME)
    [msg] = _mails("Your HashHouse password was changed")
    assert msg["To"] == player["email"] and "withdrawals are locked until" in body(msg)
    lock = withdrawal_guard.status(player["token"]).lock
    assert lock is not None and lock.reason == "password_changed"
    with pytest.raises(WithdrawalsLocked) as exc:
        _withdraw(player, password=NEW_PASSWORD)
    assert f"{lock.until:%Y-%m-%d %H:%M} UTC" in str(exc.value)
    with pytest.raises(WithdrawalsLocked):                 # the allow-list waits too
        _allow(player, address=OTHER, password=NEW_PASSWORD)
    # a link mailed before the change no longer confirms: cancelled, money back
    c = withdrawal_guard.confirm_link(link, HOME)
    assert (c.outcome, c.view.id) == ("cancelled", pending.id)
    assert _reserved(player["pid"]) == 0
    with time_machine.travel(start + timedelta(minutes=61)):
        assert _withdraw(player, password=NEW_PASSWORD).state == "queued"


def test_turning_2fa_on_or_off_locks_withdrawals(player) -> None:  # noqa: ANN001
    _allow_dest(player)
    secret, _codes, player["token"] = enable_2fa(player["token"])
    _mails("Two-factor authentication was turned on for your HashHouse account")
    with pytest.raises(WithdrawalsLocked) as exc:
        _withdraw(player, code=code_at(secret, datetime.now(UTC), 1))
    assert "two-factor authentication was turned on" in str(exc.value)
    assert _rows(player["pid"]) == []


def test_a_reset_locks_withdrawals_and_a_withdrawal_then_holds_the_account(player) -> None:  # noqa: ANN001
    from tests.users.helpers import link_token

    _allow_dest(player)
    accounts.request_password_reset(player["email"], HOME)
    token = link_token(_mails("Reset your HashHouse password")[0], "reset")
    accounts.reset_password(token, NEW_PASSWORD, HOME)
    _mails("Your HashHouse password was reset")
    player["token"] = sign_in(player["email"], NEW_PASSWORD, ctx=HOME)
    with pytest.raises(WithdrawalsLocked) as exc:
        _withdraw(player, password=NEW_PASSWORD)
    # the attempt after the reset raised the risk: a hold, staff alerted
    assert "checked by our staff" in str(exc.value)
    [hold] = audit_rows("risk.hold")
    assert hold.target_user_id == player["uid"] and hold.actor_role == "system"
    assert json.loads(hold.detail)["signals"] == ["reset_then_withdrawal"]
    # once per reset
    with pytest.raises(WithdrawalsLocked):
        _withdraw(player, password=NEW_PASSWORD)
    assert len(audit_rows("risk.hold")) == 1


# --- 5. risk: step-up and holds ---------------------------------------------------------------

def test_a_sign_in_from_a_new_device_asks_for_more_than_the_password(player) -> None:  # noqa: ANN001
    _allow_dest(player)
    same = sign_in(player["email"], ctx=RequestContext("10.77.1.9", CHROME_WINDOWS))
    assert not withdrawal_guard.status(same).step_up          # same device and network
    phone = RequestContext("198.51.100.7", SAFARI_IPHONE)
    player["token"] = sign_in(player["email"], ctx=phone)
    with identity_tx(readonly=True) as s:
        kinds = sorted(e.kind for e in s.execute(select(RiskEvent)).scalars())
    assert kinds == ["new_device", "new_network"]
    assert withdrawal_guard.status(player["token"]).step_up
    with pytest.raises(StepUpRequired):
        _withdraw(player, ctx=phone)
    with pytest.raises(StepUpRequired):
        _allow(player, address=OTHER)
    assert _rows(player["pid"]) == []
    # the mailed link is the stronger factor: opening it settles the step-up
    _withdraw(player, method="mail", ctx=phone)
    link = _link(_mails("Confirm your HashHouse withdrawal")[0])
    assert withdrawal_guard.confirm_link(link, phone).outcome == "confirmed"
    assert not withdrawal_guard.status(player["token"]).step_up
    assert _withdraw(player, ctx=phone).state == "queued"


def test_too_many_wrong_second_factors_hold_withdrawals_and_alert_staff(player) -> None:  # noqa: ANN001
    from structlog.testing import capture_logs

    _allow_dest(player)
    with capture_logs() as logs:
        for _ in range(5):
            with pytest.raises(ValidationFailed):
                _withdraw(player, password=WRONG_PASSWORD)
    # the fifth wrong password placed a hold: even the right one waits now
    with pytest.raises(WithdrawalsLocked) as exc:
        _withdraw(player)
    assert "checked by our staff" in str(exc.value)
    [hold] = audit_rows("risk.hold")
    assert json.loads(hold.detail)["signals"] == ["second_factor_failures"]
    assert len(audit_rows("withdrawal.second_factor_failed")) == 5
    [line] = [e for e in logs if e["event"] == "risk_hold"]   # the security log line
    assert line["user_id"] == player["uid"] and line["signals"] == ["second_factor_failures"]
    with identity_tx(readonly=True) as s:
        lock = risk.active_lock(s, player["uid"])
    assert lock is not None and lock.reason == "risk"
    assert _rows(player["pid"]) == [] and _reserved(player["pid"]) == 0


def test_with_2fa_the_allow_list_takes_the_code(player, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("CASINO_WITHDRAW_LOCK_HOURS", "0")
    reset_settings_cache()
    secret, _codes, player["token"] = enable_2fa(player["token"])
    with pytest.raises(ValidationFailed) as exc:
        _allow(player)                              # the password is not the factor
    assert exc.value.field == "code"
    assert _allow(player, code=code_at(secret, datetime.now(UTC), 1)).allowed


def test_risk_signals_and_locks_long_over_are_purged(player) -> None:  # noqa: ANN001
    from casino_app.users.maintenance import purge_expired

    _allow_dest(player)
    with pytest.raises(ValidationFailed):
        _withdraw(player, password=WRONG_PASSWORD)
    player["token"] = accounts.change_password(player["token"], PASSWORD, NEW_PASSWORD, HOME)
    with time_machine.travel(datetime.now(UTC) + timedelta(days=100)):
        removed = purge_expired()
    assert (removed["risk_events"], removed["withdrawal_locks"]) == (1, 1)


def test_an_admin_lifts_a_risk_hold_with_a_note_support_cannot(player) -> None:  # noqa: ANN001
    from casino_app.users import staff_money
    from casino_app.users.errors import Forbidden, NotFound
    from casino_app.users.models import Role
    from tests.users.helpers import make_staff

    _allow_dest(player)
    for _ in range(5):
        with pytest.raises(ValidationFailed):
            _withdraw(player, password=WRONG_PASSWORD)
    admin, _, _ = make_staff(Role.admin)
    support, _, _ = make_staff(Role.support)
    [lock] = staff_money.player_money(admin, player["uid"], HOME).withdrawal_locks
    assert lock.reason == "risk" and lock.lifted_at is None
    with pytest.raises(Forbidden):
        staff_money.lift_withdrawal_lock(support, player["uid"], lock.id, "checked", HOME)
    with pytest.raises(ValidationFailed):
        staff_money.lift_withdrawal_lock(admin, player["uid"], lock.id, "", HOME)
    lifted = staff_money.lift_withdrawal_lock(admin, player["uid"], str(lock.id),
                                              "called the player", HOME)
    assert lifted.lifted_at is not None
    with pytest.raises(NotFound):        # once
        staff_money.lift_withdrawal_lock(admin, player["uid"], lock.id, "again", HOME)
    [row] = audit_rows("staff.withdrawal_lock_lifted")
    assert json.loads(row.detail) == {"lock_id": lock.id, "lock_reason": "risk",
                                      "note": "called the player"}
    assert _withdraw(player).state == "queued"
