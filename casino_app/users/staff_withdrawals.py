"""Staff use cases on withdrawals: the queue (every staff member), and for admins the
approval of large withdrawals with their Safe owner signature, rejection, and hot-wallet
refills from the Safe.

Like users/staff_money.py, every function re-checks the caller's role from their session
token (before any call to the Ethereum node) and writes its audit row in the same call,
before the ledger commits: a failed audit write changes nothing. The money rules live in
payments/eth/safe_payments.py and payments/withdrawals.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from casino_app.core.db import identity_tx, ledger_tx
from casino_app.core.settings import get_settings
from casino_app.payments import withdrawals
from casino_app.payments.eth import safe_payments
from casino_app.payments.eth.safe_payments import SafePaymentView
from casino_app.payments.withdrawals import StaffWithdrawalView
from casino_app.security.audit import AuditAction, record
from casino_app.users import validation
from casino_app.users.errors import Forbidden, NotFound, ValidationFailed
from casino_app.users.models import Role, User
from casino_app.users.sessions import CurrentUser, RequestContext
from casino_app.users.staff import _actor, _reason, require_role

APPROVERS = (Role.admin,)


@dataclass(frozen=True)
class QueueItem:
    withdrawal: StaffWithdrawalView
    user_id: int | None                 # the player's account number
    payment: SafePaymentView | None     # its Safe payment (large withdrawals)


@dataclass(frozen=True)
class Queue:
    items: list[QueueItem]              # open ones oldest first, then recent final ones
    refills: list[SafePaymentView]      # newest first
    safe: str                           # CASINO_ETH_SAFE_ADDRESS ("" when not set)
    chain_id: int                       # CASINO_ETH_CHAIN_ID


def _approver(s, token: str | None) -> CurrentUser:  # noqa: ANN001
    me = require_role(s, token)
    if me.role not in APPROVERS:
        raise Forbidden("Only an admin can approve, sign, reject or refill.")
    return me


def _check_admin(token: str | None) -> None:
    """The role first, in its own short transaction: no chain call for other callers."""
    with identity_tx() as s:
        _approver(s, token)


def _refused(exc: Exception, field: str = "") -> ValidationFailed:
    return ValidationFailed(str(exc), field or None)


def _info() -> safe_payments.SafeInfo:
    try:
        return safe_payments.safe_info()
    except safe_payments.SafeRefused as exc:
        raise _refused(exc) from None


def _users(s, player_ids: set[str]) -> dict[str, tuple[int, str]]:  # noqa: ANN001
    """player id -> (user id, role) of the accounts behind ``player_ids``."""
    if not player_ids:
        return {}
    return {pid: (uid, role) for pid, uid, role in s.execute(
        select(User.player_id, User.id, User.role).where(User.player_id.in_(player_ids)))}


def withdrawal_queue(token: str | None) -> Queue:
    """The withdrawal queue and the refills (support and admins; reading, not audited).
    Support sees players' withdrawals only: a staff member's (account, amount, address) is
    for admins, as their account pages are (users/staff.reachable)."""
    with identity_tx() as s:
        me = require_role(s, token)
        with ledger_tx(readonly=True) as ls:
            rows = withdrawals.staff_queue(session=ls)
            pays = safe_payments.payments_for({r.view.id for r in rows}, session=ls)
            refills = [p for p in safe_payments.payments(limit=200, session=ls)
                       if p.kind == "refill"][:30]
        found = _users(s, {r.player_id for r in rows})
    if me.role is not Role.admin:
        rows = [r for r in rows
                if found.get(r.player_id, (None, Role.player.value))[1] == Role.player.value]
    users = {pid: uid for pid, (uid, _role) in found.items()}
    st = get_settings()
    return Queue([QueueItem(r, users.get(r.player_id), pays.get(r.view.id)) for r in rows],
                 refills, st.eth_safe_address, st.eth_chain_id)


def _withdrawal_id(value: object) -> int:
    return validation.row_id(value, "withdrawal_id", "No such withdrawal.")


def _payment_id(value: object) -> int:
    return validation.row_id(value, "payment_id", "No such Safe payment.")


def _player_user(s, ls, withdrawal_id: int | None) -> int | None:  # noqa: ANN001
    if withdrawal_id is None:
        return None
    from casino_app.payments.withdrawal_models import Withdrawal

    w = ls.get(Withdrawal, withdrawal_id)
    return None if w is None else _users(s, {w.player_id}).get(w.player_id, (None,))[0]


def prepare_withdrawal(token: str | None, withdrawal_id: object, ctx: RequestContext
                       ) -> SafePaymentView:
    """Build (once) the Safe transaction paying a large withdrawal; its hash is what the
    owners sign."""
    wid = _withdrawal_id(withdrawal_id)
    _check_admin(token)
    info = _info()
    with identity_tx() as s:
        me = _approver(s, token)
        with ledger_tx() as ls:
            try:
                view = safe_payments.prepare_withdrawal(wid, me.user_id, session=ls, info=info)
            except safe_payments.SafeRefused as exc:
                raise _refused(exc, "withdrawal_id") from None
            record(s, AuditAction.withdrawal_prepared, _actor(me, ctx),
                   _player_user(s, ls, wid), withdrawal_id=wid, payment_id=view.id,
                   safe_nonce=view.safe_nonce, safe_tx_hash=view.safe_tx_hash)
    return view


def sign_payment(token: str | None, payment_id: object, signature: object,
                 ctx: RequestContext) -> SafePaymentView:
    """An admin's approval: their Safe owner signature of the payment's hash. Two admins
    (different people, different owners) make a payment ready to be sent."""
    pid = _payment_id(payment_id)
    if not isinstance(signature, str) or not signature.strip() or len(signature) > 200:
        raise ValidationFailed("Paste your owner signature (0x followed by 130 hex "
                               "characters).", "signature")
    _check_admin(token)
    info = _info()
    with identity_tx() as s:
        me = _approver(s, token)
        with ledger_tx() as ls:
            try:
                view = safe_payments.add_signature(pid, me.user_id, signature, session=ls,
                                                   info=info)
            except safe_payments.PaymentNotFound:
                raise NotFound("No such Safe payment.") from None
            except safe_payments.SafeRefused as exc:
                raise _refused(exc, "signature") from None
            mine = next(x for x in view.signatures if x.staff_id == me.user_id)
            action = AuditAction.withdrawal_approved if view.kind == "withdrawal" \
                else AuditAction.refill_approved
            record(s, action, _actor(me, ctx), _player_user(s, ls, view.withdrawal_id),
                   payment_id=view.id, withdrawal_id=view.withdrawal_id, owner=mine.owner,
                   signatures=len(view.signatures), required=view.required,
                   safe_tx_hash=view.safe_tx_hash, currency=view.currency,
                   amount=view.amount)
    return view


def reject_withdrawal(token: str | None, withdrawal_id: object, reason: object,
                      ctx: RequestContext) -> withdrawals.WithdrawalView:
    """Refuse a large withdrawal (its reservation is voided, its Safe payment cancelled;
    a fully signed payment is ``cancelling`` and the money stays reserved until the Safe
    uses its nonce: withdrawals.reject_withdrawal)."""
    wid = _withdrawal_id(withdrawal_id)
    with identity_tx() as s:
        me = _approver(s, token)
        why = _reason(reason)
        with ledger_tx() as ls:
            try:
                view = withdrawals.reject_withdrawal(wid, me.user_id, why, session=ls)
            except withdrawals.WithdrawalRefused as exc:
                raise _refused(exc, "withdrawal_id") from None
            record(s, AuditAction.withdrawal_rejected, _actor(me, ctx),
                   _player_user(s, ls, wid), withdrawal_id=wid, currency=view.currency,
                   amount=view.amount, reason=why, state=view.state)
    return view


def request_refill(token: str | None, currency_code: object, amount_text: object,
                   ctx: RequestContext) -> SafePaymentView:
    """Ask for a payment from the Safe to the hot wallet (signed like a withdrawal)."""
    if not isinstance(currency_code, str) or not currency_code.strip() \
            or len(currency_code) > 8:
        raise ValidationFailed("Choose a currency.", "currency")
    if not isinstance(amount_text, str) or not amount_text.strip() or len(amount_text) > 40:
        raise ValidationFailed("Enter an amount, e.g. 2.5.", "amount")
    _check_admin(token)
    info = _info()
    with identity_tx() as s:
        me = _approver(s, token)
        with ledger_tx() as ls:
            try:
                view = safe_payments.request_refill(currency_code, amount_text, me.user_id,
                                                    session=ls, info=info)
            except safe_payments.SafeRefused as exc:
                raise _refused(exc, "amount") from None
            record(s, AuditAction.refill_requested, _actor(me, ctx), None,
                   payment_id=view.id, currency=view.currency, amount=view.amount,
                   safe_nonce=view.safe_nonce, safe_tx_hash=view.safe_tx_hash)
    return view


def cancel_refill(token: str | None, payment_id: object, reason: object,
                  ctx: RequestContext) -> SafePaymentView:
    pid = _payment_id(payment_id)
    with identity_tx() as s:
        me = _approver(s, token)
        why = _reason(reason)
        with ledger_tx() as ls:
            try:
                view = safe_payments.cancel_payment(pid, me.user_id, why, session=ls)
            except safe_payments.PaymentNotFound:
                raise NotFound("No such Safe payment.") from None
            except safe_payments.SafeRefused as exc:
                raise _refused(exc, "payment_id") from None
            record(s, AuditAction.refill_cancelled, _actor(me, ctx), None,
                   payment_id=view.id, currency=view.currency, amount=view.amount,
                   reason=why, state=view.state)
    return view
