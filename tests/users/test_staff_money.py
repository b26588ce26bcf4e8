"""Staff money: a player's balances, bets and ledger lines; manual adjustments requested by
one staff member and approved (or rejected) by a different admin, posted as one balanced
entry and audited at each step. On SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from casino_app.core.db import ledger_tx
from casino_app.payments import ledger
from casino_app.payments.models import AdjustmentRequest, JournalEntry, Posting
from casino_app.users import staff_money
from casino_app.users.errors import Forbidden, NotAuthenticated, NotFound, ValidationFailed
from casino_app.users.models import Role
from tests.users.helpers import audit_rows, audited, make_staff, new_ctx, register, user_row

REQUESTED = "ledger.adjustment_requested"
APPROVED = "ledger.adjustment_approved"
REJECTED = "ledger.adjustment_rejected"
VIEWED = "staff.money_view"


def _player() -> tuple[str, int, str]:
    """A registered player: (session token, user id, player id)."""
    token, addr = register()
    u = user_row(addr)
    return token, u.id, u.player_id


def _balance(player_id: str, cur: str = "BTC") -> int:
    with ledger_tx(readonly=True) as s:
        b = ledger.player_balances(s, player_id).get(cur)
    return 0 if b is None else b.balance


def _violations() -> dict[str, int]:
    with ledger_tx(readonly=True) as s:
        return {f.check: f.violations for f in ledger.check_invariants(s) if f.violations}


def _request_row(request_id: int) -> AdjustmentRequest:
    with ledger_tx(readonly=True) as s:
        return s.get(AdjustmentRequest, request_id)


def _credit(admin: str, support: str, uid: int, amount: str = "0.5") -> None:
    a = staff_money.request_adjustment(support, uid, "BTC", amount, "goodwill", new_ctx())
    staff_money.approve_adjustment(admin, a.id, new_ctx())


def test_support_requests_and_another_admin_approves_one_balanced_entry(any_env: str) -> None:
    support, support_id, _ = make_staff(Role.support)
    admin, admin_id, _ = make_staff(Role.admin)
    _, uid, pid = _player()

    with audited({REQUESTED: 1}):
        req = staff_money.request_adjustment(support, uid, "btc", " +0.5 ", "  lost   deposit ",
                                             new_ctx())
    assert (req.state, req.amount, req.currency, req.user_id, req.player_id) == \
        ("pending", 50_000_000, "BTC", uid, pid)
    assert req.amount_text == "+0.50000000 BTC" and req.reason == "lost deposit"
    assert req.requested_by == support_id and req.decided_by is None
    assert _balance(pid) == 0, "a request alone moves no money"
    assert [p.id for p in staff_money.pending_adjustments(support)] == [req.id]
    assert staff_money.pending_adjustments(admin)[0].user_id == uid

    with audited({APPROVED: 1}):
        done = staff_money.approve_adjustment(admin, req.id, new_ctx())
    assert (done.state, done.decided_by, done.user_id) == ("approved", admin_id, uid)
    assert done.decided_at is not None
    assert _balance(pid) == 50_000_000
    assert staff_money.pending_adjustments(admin) == []

    # one entry, under the request's key, whose postings balance
    row = _request_row(req.id)
    with ledger_tx(readonly=True) as s:
        entries = s.scalars(select(JournalEntry).where(
            JournalEntry.key == f"adjustment:{req.id}")).all()
        assert len(entries) == 1 and entries[0].id == row.entry_id
        amounts = s.scalars(select(Posting.amount).where(
            Posting.entry_id == entries[0].id)).all()
        assert sorted(amounts) == [-50_000_000, 50_000_000]
        house = ledger.house_total(s, "BTC", "adjustment")
    assert house == -50_000_000
    assert _violations() == {}

    # both steps are in the audit log, naming who did what to whom
    asked, = audit_rows(REQUESTED)
    approved, = audit_rows(APPROVED)
    assert (asked.actor_user_id, asked.target_user_id) == (support_id, uid)
    assert (approved.actor_user_id, approved.target_user_id) == (admin_id, uid)
    assert f'"adjustment_id":{req.id}' in approved.detail
    assert f'"entry_id":{row.entry_id}' in approved.detail

    # a second approval of the same request moves nothing
    with pytest.raises(ValidationFailed, match="already approved"), audited({}):
        staff_money.approve_adjustment(admin, req.id, new_ctx())
    assert _balance(pid) == 50_000_000

    # the staff view shows the money (and is itself audited)
    with audited({VIEWED: 1}):
        money = staff_money.player_money(support, uid, new_ctx())
    assert money.balances["BTC"].balance == 50_000_000
    assert [e.amount for e in money.entries] == [50_000_000]
    assert money.entries[0].key == f"adjustment:{req.id}"
    assert [a.state for a in money.adjustments] == ["approved"]


def test_a_dot_amount_still_credits_exactly(any_env: str) -> None:
    support, _, _ = make_staff(Role.support)
    admin, _, _ = make_staff(Role.admin)
    _, uid, pid = _player()
    _credit(admin, support, uid, "0.05")
    assert _balance(pid) == 5_000_000
    _credit(admin, support, uid, "-.01")
    assert _balance(pid) == 4_000_000 and _violations() == {}


def test_a_debit_takes_money_back(any_env: str) -> None:
    support, _, _ = make_staff(Role.support)
    admin, _, _ = make_staff(Role.admin)
    _, uid, pid = _player()
    _credit(admin, support, uid, "0.5")
    debit = staff_money.request_adjustment(support, uid, "BTC", "-0.2", "chargeback",
                                           new_ctx())
    assert debit.amount == -20_000_000 and debit.amount_text == "−0.20000000 BTC"
    staff_money.approve_adjustment(admin, debit.id, new_ctx())
    assert _balance(pid) == 30_000_000
    assert _violations() == {}


def test_the_requester_cannot_approve_or_reject_their_own_request(any_env: str) -> None:
    admin, _, _ = make_staff(Role.admin)
    _, uid, pid = _player()
    req = staff_money.request_adjustment(admin, uid, "BTC", "1", "test", new_ctx())
    with pytest.raises(Forbidden, match="second staff member"), audited({}):
        staff_money.approve_adjustment(admin, req.id, new_ctx())
    with pytest.raises(Forbidden, match="second staff member"), audited({}):
        staff_money.reject_adjustment(admin, req.id, "changed my mind", new_ctx())
    assert _request_row(req.id).state == "pending"
    assert _balance(pid) == 0


def test_support_cannot_approve_or_reject(any_env: str) -> None:
    support, _, _ = make_staff(Role.support)
    other_support, _, _ = make_staff(Role.support)
    _, uid, pid = _player()
    req = staff_money.request_adjustment(support, uid, "BTC", "1", "test", new_ctx())
    with pytest.raises(Forbidden, match="admin"), audited({}):
        staff_money.approve_adjustment(other_support, req.id, new_ctx())
    with pytest.raises(Forbidden, match="admin"), audited({}):
        staff_money.reject_adjustment(other_support, req.id, "no", new_ctx())
    assert _request_row(req.id).state == "pending" and _balance(pid) == 0


def test_an_admin_rejects_with_a_reason(any_env: str) -> None:
    support, _, _ = make_staff(Role.support)
    admin, admin_id, _ = make_staff(Role.admin)
    _, uid, pid = _player()
    req = staff_money.request_adjustment(support, uid, "USDT", "25", "refund", new_ctx())
    with pytest.raises(ValidationFailed, match="why") as err, audited({}):
        staff_money.reject_adjustment(admin, req.id, "  ", new_ctx())
    assert err.value.field == "reason"
    with audited({REJECTED: 1}):
        done = staff_money.reject_adjustment(admin, req.id, "no ticket", new_ctx())
    assert (done.state, done.decided_by) == ("rejected", admin_id)
    assert '"reason":"no ticket"' in audit_rows(REJECTED)[0].detail
    with pytest.raises(ValidationFailed, match="already rejected"):
        staff_money.approve_adjustment(admin, req.id, new_ctx())
    assert _balance(pid, "USDT") == 0 and _request_row(req.id).entry_id is None


def test_a_debit_larger_than_the_balance_is_refused(any_env: str) -> None:
    support, _, _ = make_staff(Role.support)
    admin, _, _ = make_staff(Role.admin)
    _, uid, pid = _player()
    _credit(admin, support, uid, "0.1")
    req = staff_money.request_adjustment(support, uid, "BTC", "-0.10000001", "too much",
                                         new_ctx())
    with pytest.raises(ValidationFailed, match="smaller than this debit"), audited({}):
        staff_money.approve_adjustment(admin, req.id, new_ctx())
    assert _balance(pid) == 10_000_000
    assert _request_row(req.id).state == "pending"
    with ledger_tx(readonly=True) as s:
        assert s.scalars(select(JournalEntry).where(
            JournalEntry.key == f"adjustment:{req.id}")).all() == []
    assert _violations() == {}
    # with no BTC account at all, a debit is refused the same way
    _, uid2, _ = _player()
    req2 = staff_money.request_adjustment(support, uid2, "BTC", "-1", "nothing there",
                                          new_ctx())
    with pytest.raises(ValidationFailed, match="smaller than this debit"):
        staff_money.approve_adjustment(admin, req2.id, new_ctx())


def test_players_and_anonymous_callers_are_refused(any_env: str) -> None:
    support, _, _ = make_staff(Role.support)
    admin, _, _ = make_staff(Role.admin)
    player, uid, pid = _player()
    _, other_uid, _ = _player()
    req = staff_money.request_adjustment(support, uid, "BTC", "1", "test", new_ctx())
    for token, error in ((player, Forbidden), (None, NotAuthenticated),
                         ("", NotAuthenticated), ("forged-token", NotAuthenticated)):
        with audited({}):
            with pytest.raises(error):
                staff_money.player_money(token, uid, new_ctx())
            with pytest.raises(error):
                staff_money.request_adjustment(token, other_uid, "BTC", "5", "gift",
                                               new_ctx())
            with pytest.raises(error):
                staff_money.approve_adjustment(token, req.id, new_ctx())
            with pytest.raises(error):
                staff_money.reject_adjustment(token, req.id, "no", new_ctx())
            with pytest.raises(error):
                staff_money.pending_adjustments(token)
    # junk input from an anonymous caller is refused as anonymous, not judged as input
    with pytest.raises(NotAuthenticated):
        staff_money.request_adjustment(None, "x", "XXX", "junk", "", new_ctx())
    with pytest.raises(NotAuthenticated):
        staff_money.approve_adjustment(None, "x", new_ctx())
    assert _request_row(req.id).state == "pending" and _balance(pid) == 0
    with ledger_tx(readonly=True) as s:
        assert len(s.scalars(select(AdjustmentRequest)).all()) == 1


@pytest.mark.parametrize(("currency", "amount", "field", "message"), [
    ("BTC", "", "amount", "Enter an amount"),
    ("BTC", "0", "amount", "other than zero"),
    ("BTC", "-0", "amount", "other than zero"),
    ("BTC", "abc", "amount", "not an amount"),
    ("BTC", "0.000000001", "amount", "at most 8 decimals"),
    ("BTC", "--1", "amount", "not an amount"),
    ("BTC", "+-1", "amount", "not an amount"),
    # the pen-test finding: a comma read as a thousands separator made "0,05" 5 BTC
    ("BTC", "0,05", "amount", "Use a dot for decimals and no thousands separators"),
    ("BTC", "-0,05", "amount", "Use a dot for decimals and no thousands separators"),
    ("BTC", "1,000", "amount", "Use a dot for decimals and no thousands separators"),
    ("BTC", "1.000,50", "amount", "Use a dot for decimals and no thousands separators"),
    ("BTC", "1 000", "amount", "Use a dot for decimals and no thousands separators"),
    ("BTC", "1_000", "amount", "Use a dot for decimals and no thousands separators"),
    ("BTC", "- 0.5", "amount", "not a clear amount"),
    ("BTC", "1e400", "amount", "not an amount"),
    ("BTC", "99999999999999", "amount", "too large"),
    ("BTC", "NaN", "amount", "not an amount"),
    ("BTC", "Infinity", "amount", "not an amount"),
    ("BTC", "1e-3", "amount", "not an amount"),
    ("BTC", None, "amount", "Enter an amount"),
    ("BTC", 5, "amount", "Enter an amount"),
    ("DOGE", "1", "currency", "Unknown currency"),
    ("", "1", "currency", "Unknown currency"),
    ("FUN", "1", "currency", "Play money"),
])
def test_bad_amounts_and_currencies_are_refused_clearly(
        any_env: str, currency: object, amount: object, field: str, message: str) -> None:
    support, _, _ = make_staff(Role.support)
    _, uid, _ = _player()
    with pytest.raises(ValidationFailed, match=message) as err, audited({}):
        staff_money.request_adjustment(support, uid, currency, amount, "reason", new_ctx())
    assert err.value.field == field
    with ledger_tx(readonly=True) as s:
        assert s.scalars(select(AdjustmentRequest)).all() == []


def test_other_bad_requests(any_env: str) -> None:
    support, _, _ = make_staff(Role.support)
    admin, admin_id, _ = make_staff(Role.admin)
    _, uid, _ = _player()
    with pytest.raises(ValidationFailed, match="why"):
        staff_money.request_adjustment(support, uid, "BTC", "1", "", new_ctx())
    with pytest.raises(ValidationFailed, match="under 200"):
        staff_money.request_adjustment(support, uid, "BTC", "1", "x" * 201, new_ctx())
    with pytest.raises(ValidationFailed, match="Only player accounts"):
        staff_money.request_adjustment(support, admin_id, "BTC", "1", "me", new_ctx())
    with pytest.raises(NotFound):
        staff_money.request_adjustment(support, 999_999, "BTC", "1", "nobody", new_ctx())
    for junk in (0, -1, 2**40, True, "1", None, 1.0):
        with pytest.raises((NotFound, ValidationFailed)):
            staff_money.approve_adjustment(admin, junk, new_ctx())
        with pytest.raises((NotFound, ValidationFailed)):
            staff_money.player_money(support, junk, new_ctx())
    with pytest.raises(NotFound):
        staff_money.approve_adjustment(admin, 12345, new_ctx())
