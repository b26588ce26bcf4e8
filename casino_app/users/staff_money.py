"""Staff use cases on a player's money: see balances, bets and ledger entries; request a
manual adjustment and have a second staff member approve or reject it (four eyes).

Like users/staff.py, every function re-checks the caller's role from their session token
and writes an audit row. The adjustment itself lives in the ledger database
(``adjustment_requests``) and is posted as one balanced entry against the house
``adjustment`` account under the idempotency key ``adjustment:<id>``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from casino_app.core.clock import utcnow
from casino_app.core.db import identity_tx, ledger_tx
from casino_app.games import history
from casino_app.games.bets import BetResult
from casino_app.payments import holds, ledger
from casino_app.payments.currencies import currency
from casino_app.payments.deposit_models import ChainDeposit
from casino_app.payments.deposits import deposits_of
from casino_app.payments.models import AdjustmentRequest
from casino_app.security.audit import AuditAction, record
from casino_app.users import risk
from casino_app.users.errors import Forbidden, NotFound, ValidationFailed
from casino_app.users.models import Role, User
from casino_app.users.sessions import CurrentUser, RequestContext
from casino_app.users.staff import _actor, _reason, _target, reachable, require_role

APPROVERS = (Role.admin,)
HOLD_RELEASERS = (Role.admin,)


@dataclass(frozen=True)
class PlayerMoney:
    user_id: int
    player_id: str
    balances: dict[str, ledger.Balance]
    bets: list[BetResult]
    entries: list[ledger.EntryLine]
    adjustments: list[AdjustmentView]
    holds: list[holds.HoldView]              # open ones first
    deposits: list[ChainDeposit]             # chain deposits, newest first (detached rows)
    # withdrawal locks (security changes, risk holds), newest first
    withdrawal_locks: list[risk.Lock] = field(default_factory=list)


@dataclass(frozen=True)
class AdjustmentView:
    id: int
    user_id: int | None
    player_id: str
    currency: str
    amount: int
    amount_text: str
    reason: str
    requested_by: int
    requested_at: datetime
    state: str
    decided_by: int | None
    decided_at: datetime | None


def _view(a: AdjustmentRequest, user_id: int | None = None) -> AdjustmentView:
    cur = currency(a.currency)
    return AdjustmentView(a.id, user_id, a.player_id, a.currency, a.amount,
                          cur.text(a.amount, signed=True),  # as every page shows amounts
                          a.reason, a.requested_by, a.requested_at, a.state, a.decided_by,
                          a.decided_at)


def player_money(token: str | None, user_id: object, ctx: RequestContext) -> PlayerMoney:
    """A player's balances, last bets, ledger lines, adjustments, holds and chain deposits
    (the view is audited). Support may open player accounts only (PlayersOnly)."""
    with identity_tx() as s:
        me = require_role(s, token)
        u = _target(s, user_id)
        reachable(me, u)
        record(s, AuditAction.staff_money_view, _actor(me, ctx), u.id)
        uid, pid = u.id, u.player_id
        locks = risk.locks_of(s, uid)
    bets, _ = history.bets_page(pid, limit=20)
    with ledger_tx(readonly=True) as ls:
        balances = ledger.player_balances(ls, pid)
        entries = ledger.entries_of(ls, pid, limit=50)
        adjustments = [_view(a, uid) for a in ls.scalars(
            select(AdjustmentRequest).where(AdjustmentRequest.player_id == pid)
            .order_by(AdjustmentRequest.id.desc()).limit(20))]
        player_holds = holds.holds_of(ls, pid)
        deposits = deposits_of(ls, pid, limit=50)
    return PlayerMoney(uid, pid, balances, bets, entries, adjustments, player_holds, deposits,
                       locks)


def _hold_id(value: object) -> int:
    """A hold id from a form (a hidden field: decimal text) or an event (an int)."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 10:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**31:
        raise NotFound("No such hold.")
    return value


def _note(note: object) -> str:
    if not isinstance(note, str) or not note.strip():
        raise ValidationFailed("Write a note on why the hold is released (it goes into the "
                               "audit log).", "note")
    if len(note) > 200:
        raise ValidationFailed("Keep the note under 200 characters.", "note")
    return " ".join(note.split())


def release_hold(token: str | None, user_id: object, hold_id: object, note: object,
                 ctx: RequestContext) -> holds.HoldView:
    """An admin lifts a hold on a player (betting and withdrawals resume), with a note
    for the audit log. The ledger row keeps only the admin's user id; the note (free text
    that may name a person) stays in the identity database's audit log."""
    with identity_tx() as s:
        me = require_role(s, token)
        if me.role not in HOLD_RELEASERS:
            raise Forbidden("Only an admin can release a hold.")
        why = _note(note)
        hid = _hold_id(hold_id)
        u = _target(s, user_id)
        with ledger_tx() as ls:
            try:
                view = holds.release(ls, hid, me.user_id, u.player_id)
            except holds.HoldNotFound:
                raise NotFound("No such hold on this player.") from None
            except holds.HoldAlreadyReleased:
                raise ValidationFailed("This hold was already released.", "hold_id") from None
            # written before the ledger commits: a failed audit write releases nothing
            record(s, AuditAction.hold_released, _actor(me, ctx), u.id, hold_id=hid,
                   hold_reason=view.reason, note=why)
    return view




def lift_withdrawal_lock(token: str | None, user_id: object, lock_id: object, note: object,
                         ctx: RequestContext) -> risk.Lock:
    """An admin lifts a player's withdrawal lock early (a risk hold checked, or a security
    change the player confirmed with support), with a note for the audit log."""
    with identity_tx() as s:
        me = require_role(s, token)
        if me.role not in HOLD_RELEASERS:
            raise Forbidden("Only an admin can lift a withdrawal lock.")
        why = _note(note)
        lid = _hold_id(lock_id)
        u = _target(s, user_id)
        lock = risk.lift(s, u.id, lid, me.user_id)
        if lock is None:
            raise NotFound("No such withdrawal lock in force on this player.")
        record(s, AuditAction.withdrawal_lock_lifted, _actor(me, ctx), u.id, lock_id=lid,
               lock_reason=lock.reason, note=why)
    return lock


def _amount(currency_code: object, amount_text: object) -> tuple[str, int]:
    """A signed decimal amount (``"0.5"``, ``"+0.5"``, ``"-0.5"``) in base units, read by
    the one amount parser (``payments.currencies.parse_decimal``: a dot for decimals, no
    thousands separators, one sign directly before the digits)."""
    try:
        cur = currency(currency_code)
    except ValueError as exc:
        raise ValidationFailed(str(exc), "currency") from None
    if not cur.real_money:
        raise ValidationFailed("Play money is not adjusted by staff.", "currency")
    if not isinstance(amount_text, str) or not amount_text.strip():
        raise ValidationFailed("Enter an amount, e.g. 0.5 to credit or -0.5 to debit.",
                               "amount")
    try:
        units = cur.parse(amount_text, signed=True)
    except ValueError as exc:
        raise ValidationFailed(str(exc), "amount") from None
    if units == 0:
        raise ValidationFailed("Enter an amount other than zero (use - to debit).", "amount")
    return cur.code, units


def request_adjustment(token: str | None, user_id: object, currency_code: object,
                       amount_text: object, reason: object, ctx: RequestContext
                       ) -> AdjustmentView:
    """Ask for a manual credit (``"0.5"``) or debit (``"-0.5"``) of a player's balance."""
    with identity_tx() as s:
        me = require_role(s, token)  # the caller first: input is judged for staff only
        why = _reason(reason)
        code, amount = _amount(currency_code, amount_text)
        u = _target(s, user_id)
        if u.role != Role.player.value:
            raise ValidationFailed("Only player accounts hold balances.", "user_id")
        with ledger_tx() as ls:
            a = AdjustmentRequest(player_id=u.player_id, currency=code, amount=amount,
                                  reason=why, requested_by=me.user_id, state="pending",
                                  requested_at=utcnow())
            ls.add(a)
            ls.flush()
            view = _view(a, u.id)
            # recorded before the ledger commits: a failed audit write leaves no request
            record(s, AuditAction.adjustment_requested, _actor(me, ctx), u.id,
                   adjustment_id=view.id, currency=code, amount=amount, reason=why)
    return view


def _pending(ls, request_id: object) -> AdjustmentRequest:  # noqa: ANN001
    if isinstance(request_id, bool) or not isinstance(request_id, int) \
            or not 0 < request_id < 2**31:
        raise NotFound("No such adjustment request.")
    a = ls.execute(select(AdjustmentRequest).where(AdjustmentRequest.id == request_id)
                   .with_for_update()).scalar_one_or_none()
    if a is None:
        raise NotFound("No such adjustment request.")
    if a.state != "pending":
        raise ValidationFailed(f"This request was already {a.state}.", "request_id")
    return a


def _player_user(s, player_id: str) -> int | None:  # noqa: ANN001
    return s.execute(select(User.id).where(User.player_id == player_id)).scalar_one_or_none()


def _approver(s, token: str | None) -> CurrentUser:  # noqa: ANN001
    me = require_role(s, token)
    if me.role not in APPROVERS:
        raise Forbidden("Only an admin can approve or reject an adjustment.")
    return me


def approve_adjustment(token: str | None, request_id: object, ctx: RequestContext
                       ) -> AdjustmentView:
    """A second staff member (an admin who did not ask for it) applies the adjustment."""
    with identity_tx() as s:
        me = _approver(s, token)
        with ledger_tx() as ls:
            a = _pending(ls, request_id)
            if a.requested_by == me.user_id:
                raise Forbidden("A second staff member must approve your own request.")
            player = ledger.player_account(ls, a.player_id, a.currency)
            house = ledger.house_account(ls, a.currency, "adjustment")
            debit, credit = (house, player) if a.amount > 0 else (player, house)
            try:
                entry = ledger.transfer(ls, f"adjustment:{a.id}", "adjustment", debit, credit,
                                        abs(a.amount), memo=f"adjustment #{a.id}: {a.reason}")
            except ledger.InsufficientFunds:
                raise ValidationFailed("The player's available balance is smaller than this "
                                       "debit.", "request_id") from None
            a.state, a.decided_by, a.decided_at = "approved", me.user_id, utcnow()
            a.entry_id = entry.entry_id
            ls.flush()
            view = _view(a, _player_user(s, a.player_id))
            # written before the ledger commits, so a failed audit write moves no money;
            # the identity database commits just after the ledger (two databases: a crash
            # between the two commits leaves the entry, whose request row names both staff)
            record(s, AuditAction.adjustment_approved, _actor(me, ctx), view.user_id,
                   adjustment_id=view.id, currency=view.currency, amount=view.amount,
                   requested_by=view.requested_by, entry_id=entry.entry_id)
    return view


def reject_adjustment(token: str | None, request_id: object, reason: object,
                      ctx: RequestContext) -> AdjustmentView:
    with identity_tx() as s:
        me = _approver(s, token)
        why = _reason(reason)
        with ledger_tx() as ls:
            a = _pending(ls, request_id)
            if a.requested_by == me.user_id:
                raise Forbidden("A second staff member must decide on your own request.")
            a.state, a.decided_by, a.decided_at = "rejected", me.user_id, utcnow()
            ls.flush()
            view = _view(a, _player_user(s, a.player_id))
            record(s, AuditAction.adjustment_rejected, _actor(me, ctx), view.user_id,
                   adjustment_id=view.id, reason=why)
    return view


def pending_adjustments(token: str | None) -> list[AdjustmentView]:
    with identity_tx() as s:
        require_role(s, token)
        with ledger_tx(readonly=True) as ls:
            rows = ls.scalars(select(AdjustmentRequest)
                              .where(AdjustmentRequest.state == "pending")
                              .order_by(AdjustmentRequest.id)).all()
        users = dict(s.execute(select(User.player_id, User.id).where(
            User.player_id.in_({a.player_id for a in rows}))).all()) if rows else {}
    return [_view(a, users.get(a.player_id)) for a in rows]
