"""Staff use cases on withdrawals: the queue (every staff member), and for admins the
approval of large withdrawals (Ethereum: their Safe owner signature; Bitcoin: their
cosigner's signature on the PSBT, uploaded), rejection, and hot-wallet refills from the
cold wallets (the Safe; the Bitcoin 2-of-3 multisig).

Like users/staff_money.py, every function re-checks the caller's role from their session
token (before any call to a node) and writes its audit row in the same call: the Safe's
before the ledger commits (a failed audit write changes nothing); Bitcoin's staged in the
ledger transaction of the action (security/outbox.py) and written to the audit log right
after it, in the caller's identity transaction (a crash in between leaves it to the
audit-outbox job, exactly once). The money rules live in payments/eth/safe_payments.py,
payments/btc/cold_payments.py and payments/withdrawals.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from casino_app.core.db import identity_tx, ledger_tx
from casino_app.core.logging import get_logger
from casino_app.core.settings import get_settings
from casino_app.payments import withdrawals
from casino_app.payments.btc import cold_payments
from casino_app.payments.btc.cold_payments import ColdPaymentView, Signed
from casino_app.payments.eth import safe_payments
from casino_app.payments.eth.safe_payments import SafePaymentView
from casino_app.payments.withdrawals import StaffWithdrawalView
from casino_app.security import outbox
from casino_app.security.audit import AuditAction, record
from casino_app.users import validation
from casino_app.users.errors import Forbidden, NotFound, ValidationFailed
from casino_app.users.models import Role, User
from casino_app.users.sessions import CurrentUser, RequestContext
from casino_app.users.staff import _actor, _reason, require_role

log = get_logger("casino.staff")

APPROVERS = (Role.admin,)
# Characters of a pasted or file-read PSBT: a cold payment's signed PSBT is a few (at most
# some tens of) kilobytes, and one websocket message carries at most 1 MB (Reflex's
# REFLEX_SOCKET_MAX_HTTP_BUFFER_SIZE); psbt.check_signed refuses more than 1 MB itself.
MAX_PSBT_TEXT = 500_000


@dataclass(frozen=True)
class QueueItem:
    withdrawal: StaffWithdrawalView
    user_id: int | None                 # the player's account number
    payment: SafePaymentView | None     # its Safe payment (large Ethereum withdrawals)
    cold: ColdPaymentView | None = None  # its cold payment by PSBT (large Bitcoin ones)


@dataclass(frozen=True)
class Queue:
    items: list[QueueItem]              # open ones oldest first, then recent final ones
    refills: list[SafePaymentView]      # newest first
    safe: str                           # CASINO_ETH_SAFE_ADDRESS ("" when not set)
    chain_id: int                       # CASINO_ETH_CHAIN_ID
    btc_refills: list[ColdPaymentView] = ()  # type: ignore[assignment]  # newest first
    cold_wallet: str = ""               # "2 of 3: fp, fp, fp" ("" when not configured)


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
            cold = cold_payments.payments_for(
                {r.view.id for r in rows if r.view.currency == cold_payments.CURRENCY},
                session=ls)
            btc_refills = cold_payments.refills(limit=30, session=ls)
        found = _users(s, {r.player_id for r in rows})
    if me.role is not Role.admin:
        rows = [r for r in rows
                if found.get(r.player_id, (None, Role.player.value))[1] == Role.player.value]
    users = {pid: uid for pid, (uid, _role) in found.items()}
    st = get_settings()
    return Queue([QueueItem(r, users.get(r.player_id), pays.get(r.view.id),
                            cold.get(r.view.id)) for r in rows],
                 refills, st.eth_safe_address, st.eth_chain_id, btc_refills,
                 _cold_wallet_text())


def _cold_wallet_text() -> str:
    try:
        w = cold_payments.wallet()
    except cold_payments.ColdRefused:
        return ""
    return f"{w.threshold} of {len(w.cosigners)}: " + ", ".join(w.fingerprints)


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


# --- Bitcoin: cold payments by PSBT -----------------------------------------------------------

def _payment_ref(value: object) -> int:
    return validation.row_id(value, "payment_id", "No such cold payment.")


def _cold_refused(exc: Exception, field: str) -> ValidationFailed:
    return ValidationFailed(str(exc), field)


def _player_of(s, withdrawal_id: int | None) -> int | None:  # noqa: ANN001
    """The account number of a withdrawal's player (None for a refill)."""
    if withdrawal_id is None:
        return None
    from casino_app.payments.withdrawal_models import Withdrawal

    with ledger_tx(readonly=True) as ls:
        w = ls.get(Withdrawal, withdrawal_id)
        player = None if w is None else w.player_id
    return None if player is None else _users(s, {player}).get(player, (None,))[0]


def _cold_action(token: str | None, ctx: RequestContext, action: AuditAction,
                 withdrawal_id: int | None, field: str,
                 run: Callable[[int, outbox.Entry], Any],
                 detail: Callable[[Any], dict[str, Any]]) -> Any:
    """``run(staff id, audit entry)`` for an admin, in its own ledger transaction (it
    stages the audit row there); the row is then written to the audit log in this
    identity transaction."""
    with identity_tx() as s:
        me = _approver(s, token)
        entry = outbox.Entry(action, _actor(me, ctx), _player_of(s, withdrawal_id), detail)
        try:
            result = run(me.user_id, entry)
        except cold_payments.PaymentNotFound:
            raise NotFound("No such cold payment.") from None
        except cold_payments.ColdRefused as exc:
            raise _cold_refused(exc, field) from None
        audit_id = outbox.deliver(s, entry) if entry.outbox_id is not None else None
    outbox.mark_after_commit(entry, audit_id)
    return result


def _prepared(v: ColdPaymentView) -> dict[str, Any]:
    return {"chain": "bitcoin", "payment_id": v.id, "withdrawal_id": v.withdrawal_id,
            "currency": "BTC", "amount": v.amount, "txid": v.txid, "inputs": v.inputs,
            "fee": v.fee, "fee_rate": v.fee_rate}


def _prepare_cold(token: str | None, ctx: RequestContext, action: AuditAction,
                  withdrawal_id: int | None, field: str,
                  plan: Callable[[], cold_payments.Planned]) -> ColdPaymentView:
    _check_admin(token)  # the role first: no node call for other callers
    for _ in range(3):
        try:
            planned = plan()  # reads the node: outside any database transaction
        except cold_payments.ColdRefused as exc:
            raise _cold_refused(exc, field) from None
        try:
            return _cold_action(
                token, ctx, action, withdrawal_id, field,
                lambda staff_id, entry, planned=planned: cold_payments.record_plan(
                    planned, staff_id, audit=entry)[0], _prepared)
        except cold_payments.Stale:
            continue
    raise ValidationFailed("Other cold payments are being prepared at the same time. Try "
                           "again.", field)


def prepare_psbt(token: str | None, withdrawal_id: object, ctx: RequestContext
                 ) -> ColdPaymentView:
    """Build (once) the PSBT paying a large Bitcoin withdrawal from the cold wallet: the
    file each approving admin signs with their cosigner's device."""
    wid = _withdrawal_id(withdrawal_id)
    return _prepare_cold(token, ctx, AuditAction.withdrawal_psbt_prepared, wid,
                         "withdrawal_id", lambda: cold_payments.plan_withdrawal(wid))


def request_btc_refill(token: str | None, amount_text: object, ctx: RequestContext
                       ) -> ColdPaymentView:
    """A refill of the Bitcoin hot wallet from cold (amount in BTC): a PSBT two admins
    sign, like a large withdrawal."""
    if not isinstance(amount_text, str) or not amount_text.strip() or len(amount_text) > 40:
        raise ValidationFailed("Enter an amount in BTC, e.g. 0.5.", "btc_amount")
    return _prepare_cold(token, ctx, AuditAction.refill_requested, None, "btc_amount",
                         lambda: cold_payments.plan_refill(amount_text.strip()))


def _signed(result: Signed) -> dict[str, Any]:
    v = result.view
    return {"chain": "bitcoin", "payment_id": v.id, "withdrawal_id": v.withdrawal_id,
            "currency": "BTC", "amount": v.amount, "txid": v.txid, "cosigner": result.cosigner,
            "not_counted": list(result.not_counted), "approvals": len(v.signatures),
            "required": v.required, "recorded": result.recorded is not None}


def upload_psbt(token: str | None, payment_id: object, psbt_text: object,
                ctx: RequestContext) -> Signed:
    """An admin's approval of a cold payment: the PSBT their cosigner's device signed
    (base64 or hex text; a file is read into that text by the page). Checked strictly; a
    refused upload changes nothing. With the approvals of two different admins (each a
    different cosigner) the transaction is recorded and broadcast."""
    pid = _payment_ref(payment_id)
    if not isinstance(psbt_text, str) or not psbt_text.strip():
        raise ValidationFailed("Choose the signed .psbt file or paste its base64 text.",
                               "psbt")
    if len(psbt_text) > MAX_PSBT_TEXT:
        raise ValidationFailed(f"This upload is too large (more than {MAX_PSBT_TEXT} "
                               "characters): a signed PSBT of a cold payment is far smaller.",
                               "psbt")
    _check_admin(token)
    found = cold_payments.get_payment(pid)
    if found is None:
        raise NotFound("No such cold payment.")
    action = AuditAction.withdrawal_approved if found.kind == "withdrawal" \
        else AuditAction.refill_approved
    result: Signed = _cold_action(
        token, ctx, action, found.withdrawal_id, "psbt",
        lambda staff_id, entry: cold_payments.add_signature(pid, staff_id, psbt_text,
                                                            audit=entry), _signed)
    if result.recorded is not None:
        cold_payments.broadcast(result.recorded)  # a failure is retried by the job
    return result


def cancel_btc_refill(token: str | None, payment_id: object, reason: object,
                      ctx: RequestContext) -> ColdPaymentView:
    """Take back a refill from cold that is not approved yet."""
    pid = _payment_ref(payment_id)
    with identity_tx() as s:
        _approver(s, token)
    why = _reason(reason)

    def detail(v: ColdPaymentView) -> dict[str, Any]:
        return {"chain": "bitcoin", "payment_id": v.id, "currency": "BTC",
                "amount": v.amount, "txid": v.txid, "reason": why, "state": v.state}

    return _cold_action(token, ctx, AuditAction.refill_cancelled, None, "payment_id",
                        lambda staff_id, entry: cold_payments.cancel_refill(
                            pid, staff_id, why, audit=entry), detail)
