"""The audit log: one row per action, hash-chained, append-only in the database, and
tampering is found and named."""

from __future__ import annotations

import argparse
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from casino_app.cli import cmd_ledger_fund
from casino_app.core.clock import utcnow
from casino_app.core.db import identity_tx, ledger_tx
from casino_app.payments.checks import run_check
from casino_app.payments.hold_models import PlayerHold
from casino_app.security.audit import (
    SYSTEM,
    Actor,
    AuditAction,
    compute_hash,
    record,
    verify,
)
from casino_app.security.models import GENESIS_HASH, AuditEvent
from casino_app.users import accounts, staff, staff_money
from casino_app.users.errors import InvalidCode, InvalidCredentials, ValidationFailed
from casino_app.users.models import Role
from tests.support.audit_tamper import exec_identity, open_tampering
from tests.users.helpers import (
    NEW_PASSWORD,
    PASSWORD,
    T0,
    WRONG_PASSWORD,
    audit_counts,
    audited,
    code_at,
    link_token,
    make_staff,
    new_ctx,
    register,
    rotated,
    sign_in,
    user_row,
    wait_for_mail,
)


def _verify():  # noqa: ANN202
    with identity_tx() as s:
        return verify(s)




def _some_history(n: int = 6) -> None:
    with identity_tx() as s:
        for i in range(n):
            record(s, AuditAction.staff_lookup, Actor(i + 1, "support", "10.0.0.1"), 100 + i,
                   note=f"row {i + 1}")


# Written only with a chain node: their rows are checked against anvil in
# tests/payments/eth/ (test_reconcile.py, test_staff_custody_node.py, test_safe_payments.py,
# test_sweeps.py) and tests/ui/test_withdraw_state.py (withdrawal.requested).
NEEDS_A_NODE = {"chain.reconcile_failed", "staff.reconcile_run", "withdrawal.requested",
                "withdrawal.safe_prepared", "withdrawal.approved", "withdrawal.rejected",
                "withdrawal.paid", "refill.requested", "refill.approved", "refill.cancelled",
                "refill.paid", "chain.hot_wallet_low", "chain.sweep_failing",
                # failure paths of Safe payments (payments/eth/safe_exec.py), checked in
                # test_safe_payments.py: a reverted execTransaction (owners used its Safe
                # nonce before it was mined), owners using a signed payment's nonce
                "safe.exec_reverted", "safe.payment_cancelled",
                # a rejected (cancelling) payment the owners executed anyway
                "safe.rejected_payment_executed",
                # Bitcoin's cold payments (payments/btc/cold_payments.py, cold_sender.py),
                # checked in tests/payments/btc/test_cold_payments.py on a bcoin node: a
                # PSBT prepared, one cancelled, a rejected one executed anyway, one whose
                # coins were spent elsewhere
                "withdrawal.psbt_prepared", "btc.cold_payment_cancelled",
                "btc.cold_rejected_payment_executed", "btc.cold_payment_failed"}


def _mail_about(subject: str) -> Any:
    """The newest mail whose subject holds ``subject`` (security notices of the account's
    changes arrive in the same outbox), once it is there."""
    for _ in range(250):
        found = [m for m in wait_for_mail(1) if subject in m["Subject"]]
        if found:
            return found[-1]
        time.sleep(0.02)
    raise AssertionError(f"no mail about {subject!r}")


# Written by capabilities whose own tests count their rows exactly, with the set-up they
# need (withdrawal protection with a chain configured, game providers and their rounds,
# loyalty periods, a proof of reserves): tests/users/test_withdrawal_guard.py (a mailed
# link opened, the allow-list changed), tests/users/test_staff_providers.py,
# tests/users/test_staff_loyalty.py and tests/games/test_loyalty.py,
# tests/payments/test_reserves.py.
ITS_OWN_MODULE = {"withdrawal.confirmed", "withdrawal.allow_list_added",
                  "withdrawal.allow_list_removed",
                  "staff.provider_disabled", "staff.provider_enabled",
                  "staff.provider_round_search", "staff.provider_round_view",
                  "loyalty.claimed", "staff.loyalty_approved", "staff.loyalty_rejected",
                  "reserves.below_liabilities"}


def test_every_action_writes_exactly_one_row_of_its_kind(any_env: str) -> None:
    def now() -> datetime:
        return datetime.now(UTC)

    with time_machine.travel(T0 + timedelta(seconds=1), tick=False) as clock:
        with audited({"account.register_requested": 1, "account.register": 1}):
            token, addr = register()  # the sign-up form, then its mailed link
        with audited({"login.ok": 1}):
            sign_in(addr)
        with audited({"login.failed": 1}), pytest.raises(InvalidCredentials):
            accounts.begin_login(email=addr, password=WRONG_PASSWORD, ctx=new_ctx())
        with audited({"login.failed": 1}), pytest.raises(InvalidCredentials):
            accounts.begin_login(email="nobody@example.com", password=PASSWORD,
                                 ctx=new_ctx())
        with audited({}):
            enrolment = accounts.start_totp(token, PASSWORD, None, new_ctx())
        with audited({"2fa.enabled": 1}):
            codes, token = accounts.confirm_totp(token, code_at(enrolment.secret, now()),
                                                 new_ctx())
        clock.shift(timedelta(seconds=30))
        with audited({}):
            mfa = accounts.begin_login(email=addr, password=PASSWORD, ctx=new_ctx()).mfa_token
        with audited({"login.mfa_failed": 1}), pytest.raises(InvalidCode):
            accounts.complete_login_mfa(mfa_token=mfa, code="000000", ctx=new_ctx())
        with audited({"2fa.recovery_used": 1, "login.ok": 1}):
            third = accounts.complete_login_mfa(mfa_token=mfa, code=codes[0], ctx=new_ctx())
        third_id = next(v.id for v in accounts.my_sessions(third) if v.current)
        with audited({"session.revoke": 1}):
            accounts.revoke_my_session(token, third_id, new_ctx())
        with audited({"session.revoke_others": 1}):
            accounts.revoke_my_other_sessions(token, new_ctx())
        with audited({"2fa.recovery_regenerated": 1}):
            _, token = accounts.regenerate_recovery_codes(
                token, PASSWORD, code_at(enrolment.secret, now()), new_ctx())
        with audited({"logout": 1}):
            accounts.logout(token, new_ctx())
        clock.shift(timedelta(seconds=30))
        token = accounts.complete_login_mfa(
            mfa_token=accounts.begin_login(email=addr, password=PASSWORD,
                                           ctx=new_ctx()).mfa_token,
            code=code_at(enrolment.secret, now()), ctx=new_ctx())
        clock.shift(timedelta(seconds=30))
        with audited({"2fa.disabled": 1}):
            token = accounts.disable_totp(token, PASSWORD, code_at(enrolment.secret, now()),
                                          new_ctx())
        with audited({"password.changed": 1}):
            token = accounts.change_password(token, PASSWORD, NEW_PASSWORD, new_ctx())
        clock.shift(timedelta(seconds=30))
        with audited({"login.failed": 5, "account.lock": 1}):
            for _ in range(5):
                with pytest.raises(InvalidCredentials):
                    accounts.begin_login(email=addr, password=WRONG_PASSWORD, ctx=new_ctx())
        with audited({"account.unlock": 1}):
            accounts.unlock_with_token(link_token(_mail_about("was locked"), "unlock"),
                                       new_ctx())
        with audited({"password.reset_requested": 1}):
            accounts.request_password_reset(addr, new_ctx())
        reset = link_token(_mail_about("Reset"), "reset")
        with audited({"password.reset": 1}):
            accounts.reset_password(reset, PASSWORD, new_ctx())

        with audited({"staff.created": 1, "login.ok": 1, "2fa.enabled": 1}):
            admin, _, _ = make_staff(Role.admin)
        target = user_row(addr).id
        player = sign_in(addr)
        player_session = next(v.id for v in accounts.my_sessions(player) if v.current)
        sign_in(addr)
        for action, call in [
            ("staff.lookup", lambda: staff.player_detail(admin, target, new_ctx())),
            ("staff.revoke_session",
             lambda: staff.revoke_player_session(admin, target, player_session, new_ctx())),
            ("staff.revoke_sessions", lambda: staff.revoke_player_sessions(admin, target,
                                                                           new_ctx())),
            ("staff.lock", lambda: staff.lock_player(admin, target, "check", new_ctx())),
            ("staff.unlock", lambda: staff.unlock_player(admin, target, "ok", new_ctx())),
            ("keys.rotated", rotated),
        ]:
            with audited({action: 1}):
                call()
        with audited({"staff.search": 1}):
            staff.find_players(admin, addr)
        second, _, _ = make_staff(Role.admin)
        with audited({"staff.role_requested": 1}):
            req = staff.set_role(admin, target, "support", new_ctx(), reason="helpdesk")
        with audited({"staff.role_rejected": 1}):
            staff.reject_role_request(second, req.id, "not yet", new_ctx())
        with audited({"staff.role_requested": 1}):
            req = staff.set_role(admin, target, "support", new_ctx(), reason="helpdesk")
        with audited({"staff.role_approved": 1}):
            staff.approve_role_request(second, req.id, new_ctx())
        with audited({"staff.role_changed": 1}):
            staff.set_role(admin, target, "player", new_ctx())
        with audited({}):
            staff.audit_page(admin)
            staff.verify_audit(admin)

        # money: staff views and four-eyes adjustments, operator funding, ledger check
        _, payee_addr = register()
        payee = user_row(payee_addr).id
        with audited({"staff.money_view": 1}):
            staff_money.player_money(admin, payee, new_ctx())
        with audited({"ledger.adjustment_requested": 1}):
            req = staff_money.request_adjustment(admin, payee, "BTC", "0.5", "goodwill",
                                                 new_ctx())
        with audited({"ledger.adjustment_approved": 1}):
            staff_money.approve_adjustment(second, req.id, new_ctx())
        with audited({"ledger.adjustment_requested": 1}):
            req = staff_money.request_adjustment(admin, payee, "BTC", "-0.1", "typo",
                                                 new_ctx())
        with audited({"ledger.adjustment_rejected": 1}):
            staff_money.reject_adjustment(second, req.id, "not needed", new_ctx())
        with ledger_tx() as s:
            hold = PlayerHold(player_id=user_row(payee_addr).player_id, reason="test",
                              detail="", created_at=utcnow())
            s.add(hold)
            s.flush()
        with audited({"staff.hold_released": 1}):
            staff_money.release_hold(second, payee, hold.id, "checked", new_ctx())
        # withdrawal protection: wrong second factors, then a risk hold an admin lifts
        from casino_app.users import withdrawal_guard

        payee_token = sign_in(payee_addr)
        for n in range(5):
            with audited({"withdrawal.second_factor_failed": 1}
                         | ({"risk.hold": 1} if n == 4 else {})), \
                    pytest.raises(ValidationFailed):
                withdrawal_guard.request(payee_token, new_ctx(), method="password",
                                         password=WRONG_PASSWORD, currency_code="ETH",
                                         amount="0.01", address="0x" + "1" * 40,
                                         key=f"audit-{n}-0123456789")
        [lock] = staff_money.player_money(second, payee, new_ctx()).withdrawal_locks
        with audited({"staff.withdrawal_lock_lifted": 1}):
            staff_money.lift_withdrawal_lock(second, payee, lock.id, "checked", new_ctx())
        with audited({"ledger.bankroll_funded": 1}):
            assert cmd_ledger_fund(argparse.Namespace(currency="ETH", amount="1",
                                                      reference="tx-1")) == 0
        with audited({"ledger.check_failed": 1}):
            with ledger_tx() as s:
                s.execute(text("UPDATE ledger_accounts SET balance = balance + 1 "
                               "WHERE kind = 'bankroll'"))
            run_check()

    assert set(audit_counts()) == {str(a) for a in AuditAction} - NEEDS_A_NODE - ITS_OWN_MODULE
    result = _verify()
    assert result.ok and result.rows == sum(audit_counts().values())


def test_an_intact_chain_verifies(any_env: str) -> None:
    assert _verify().ok and _verify().rows == 0
    _some_history(6)
    result = _verify()
    assert (result.ok, result.rows, result.first_broken_id) == (True, 6, None)
    with identity_tx() as s:
        rows = list(s.execute(text("SELECT id, prev_hash, row_hash FROM audit_log ORDER BY id")))
    assert rows[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.row_hash for a, b in zip(rows, rows[1:], strict=False))


@pytest.mark.parametrize("sql", [
    "UPDATE audit_log SET detail = '{}' WHERE id = 3",
    "UPDATE audit_log SET actor_user_id = NULL",
    "DELETE FROM audit_log WHERE id = 3",
    "DELETE FROM audit_log",
])
def test_the_database_refuses_to_change_or_remove_audit_rows(any_env: str, sql: str) -> None:
    _some_history(4)
    with pytest.raises(DBAPIError) as exc:
        exec_identity(sql)
    assert "append-only" in str(exc.value)
    assert _verify().ok and _verify().rows == 4


@pytest.mark.postgres
def test_the_database_refuses_to_empty_the_audit_log(pg_env: object) -> None:
    _some_history(2)
    with pytest.raises(DBAPIError):
        exec_identity("TRUNCATE audit_log")
    assert _verify().rows == 2


@pytest.mark.parametrize(("column", "value"), [
    ("detail", "'{\"note\":\"nothing to see\"}'"),
    ("action", "'staff.unlock'"),
    ("actor_user_id", "999"),
    ("target_user_id", "NULL"),
    ("ip", "'127.0.0.1'"),
])
def test_an_edited_row_is_named(any_env: str, column: str, value: str) -> None:
    _some_history(6)
    open_tampering(any_env)
    exec_identity(f"UPDATE audit_log SET {column} = {value} WHERE id = 3")  # noqa: S608
    result = _verify()
    assert (result.ok, result.first_broken_id) == (False, 3)
    assert "row content" in result.reason


def test_an_edited_and_rehashed_row_breaks_the_next_link(any_env: str) -> None:
    _some_history(6)
    open_tampering(any_env)
    with identity_tx() as s:
        row = s.get(AuditEvent, 3)
        assert row is not None
        row.detail = json.dumps({"note": "rewritten"})
        row.row_hash = compute_hash(row)
    result = _verify()
    assert (result.ok, result.first_broken_id) == (False, 4)


def test_a_deleted_row_is_named(any_env: str) -> None:
    _some_history(6)
    open_tampering(any_env)
    exec_identity("DELETE FROM audit_log WHERE id = 3")
    result = _verify()
    assert (result.ok, result.first_broken_id) == (False, 3)
    assert "missing" in result.reason


def test_deleting_the_newest_rows_is_noticed(any_env: str) -> None:
    _some_history(6)
    open_tampering(any_env)
    exec_identity("DELETE FROM audit_log WHERE id >= 5")
    result = _verify()
    assert (result.ok, result.first_broken_id) == (False, 5)


def test_concurrent_appends_keep_one_linear_chain(any_env: str) -> None:
    threads, per_thread = 8, 12
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def worker(n: int) -> None:
        try:
            start.wait()
            for i in range(per_thread):
                with identity_tx() as s:
                    record(s, AuditAction.staff_lookup, Actor(n, "support", ""), i)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(60)
    assert not errors, errors
    result = _verify()
    assert result.ok and result.rows == threads * per_thread
    with identity_tx() as s:
        ids = [r[0] for r in s.execute(text("SELECT id FROM audit_log ORDER BY id"))]
    assert ids == list(range(1, threads * per_thread + 1))


def test_a_failed_action_leaves_no_audit_row(any_env: str) -> None:
    with audited({}), pytest.raises(RuntimeError):
        with identity_tx() as s:
            record(s, AuditAction.keys_rotated, SYSTEM, None)
            raise RuntimeError("the action failed after recording")
    assert _verify().ok
