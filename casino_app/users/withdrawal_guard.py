"""A player's withdrawals and withdrawal allow-list, guarded: the second factor, the
account's withdrawal lock and risk, the cooling period of new addresses, and the mails.

Every withdrawal is confirmed by a second factor, with or without 2FA:

- with 2FA on: the authenticator's code (or a recovery code), spent once; recommended;
- without: the player chooses their password, or a link mailed to them. With the link
  the withdrawal is requested at once, reserved, ``unconfirmed``; opening the
  link (:func:`confirm_link`, no sign-in needed: the mailbox is the factor) queues it;
  the link expires after CASINO_WITHDRAW_CONFIRM_MINUTES and then the withdrawal is
  cancelled (the money is back); opened twice it confirms once.

While the account's risk asks for a step-up (users/risk.py) the password is refused: the
code or the mailed link is asked, and answering either settles the signals. A wrong
password or code is audited (``withdrawal.second_factor_failed``) and counted as a risk
signal; that refusal commits. While a withdrawal lock is in force (a password or 2FA
change, a risk hold) withdrawals and allow-list changes are refused with the time it
ends, and a withdrawal tried soon after a password reset is itself a signal.

A new address is refused until its cooling period ends (the form says when; the owner is
mailed) unless it is on the player's allow-list (payments/withdrawal_addresses.py);
changing the allow-list takes the code, or the password when no step-up is asked.

The identity transaction holds the account row locked from the first check to the
audit row, so two requests cannot spend one code; the action commits in the ledger
database and stages its audit row there (security/outbox.py): the spent code and the
audit row then commit together in the identity database, and a crash between the two
commits loses neither (the ``audit-outbox`` job delivers the row and spends the code). Each withdrawal is announced by mail: here right after the request (or its
confirmation link), later by the ``withdrawal-notices`` job (:func:`send_notices`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from casino_app.core import mail
from casino_app.core.db import identity_tx
from casino_app.core.logging import get_logger
from casino_app.core.settings import get_settings
from casino_app.payments import adapters, withdrawal_addresses, withdrawal_notices, withdrawals
from casino_app.payments.withdrawal_addresses import AddressCooling, AddressView
from casino_app.payments.withdrawals import Confirmation, WithdrawalRefused, WithdrawalView
from casino_app.security import outbox, ratelimit
from casino_app.security.audit import Actor, AuditAction, record
from casino_app.users import passwords, risk, totp, validation
from casino_app.users.accounts import _actor, _require_for_update
from casino_app.users.errors import ValidationFailed
from casino_app.users.models import User
from casino_app.users.sessions import CurrentUser, RequestContext

log = get_logger("casino.users.withdrawals")
T = TypeVar("T")
METHODS = ("totp", "password", "mail")
USED_ONCE = "That code is not valid. Codes can be used only once."


class WithdrawalsLocked(WithdrawalRefused):
    def __init__(self, lock: risk.Lock) -> None:
        self.lock = lock
        super().__init__(lock.text)


class StepUpRequired(ValidationFailed):
    def __init__(self) -> None:
        super().__init__("For your safety after unusual activity (such as a sign-in from a "
                         "new device or network), confirm with the link we mail you, or "
                         "with your authenticator code: your password alone is not enough "
                         "for now.", "method")


@dataclass(frozen=True)
class Contact:
    email: str
    name: str


@dataclass(frozen=True)
class Status:
    """What the withdraw form shows about the guard."""

    totp: bool
    step_up: bool
    lock: risk.Lock | None
    addresses: list[AddressView]


def status(token: str | None) -> Status:
    """The caller's 2FA, step-up and lock, and their withdrawal addresses."""
    with identity_tx(readonly=True) as s:
        me, user = _me(s, token)
        out = (user.totp_enabled, risk.step_up(s, user.id), risk.active_lock(s, user.id),
               me.player_id)
    return Status(out[0], out[1], out[2], withdrawal_addresses.addresses_of(out[3]))


def _me(s: Session, token: str | None) -> tuple[CurrentUser, User]:
    from casino_app.users.accounts import _require

    me = _require(s, token)
    user = s.get(User, me.user_id)
    if user is None:
        from casino_app.users.errors import NotAuthenticated

        raise NotAuthenticated()
    return me, user


def _failed(s: Session, user: User, me: CurrentUser, ctx: RequestContext, method: str,
            purpose: str) -> None:
    record(s, AuditAction.withdrawal_factor_failed, _actor(me, ctx), user.id, method=method,
           purpose=purpose)
    risk.second_factor_failed(s, user)


def _factor(s: Session, me: CurrentUser, user: User, method: object, code: object,
            password: object, ctx: RequestContext, entry: outbox.Entry | None, purpose: str, *,
            mail_ok: bool) -> tuple[str, Exception | None]:
    """Check the second factor; (the method used, the refusal to raise after the commit
    or None). Rate-limited (raises RateLimited: nothing commits)."""
    if user.totp_enabled:
        ratelimit.check_reauth(user.id)
        try:
            clean = validation.code(code, field="code")
        except ValidationFailed as exc:
            return "totp", exc
        used = totp.check_code_or_recovery(s, user, clean)
        if used is None:
            _failed(s, user, me, ctx, "totp", purpose)
            return "totp", ValidationFailed(USED_ONCE, "code")
        if entry is not None:
            if used == "totp":
                entry.totp_step = user.totp_last_step
            else:
                entry.recovery_code_id = used  # type: ignore[assignment]
        return "totp", None
    if method == "mail" and mail_ok:
        ratelimit.check_reauth(user.id)  # each one mails the player: not a mail cannon
        return "mail", None
    if method != "password":
        return "?", ValidationFailed("Choose how to confirm: your password, or a link we "
                                     "mail you.", "method")
    if risk.step_up(s, user.id):
        return "password", StepUpRequired()
    ratelimit.check_reauth(user.id)
    if not isinstance(password, str) or not password or len(password) > 1024:
        return "password", ValidationFailed("Enter your password.", "password")
    ok, _ = passwords.verify(password, user.password_hash)
    if not ok:
        _failed(s, user, me, ctx, "password", purpose)
        return "password", ValidationFailed("Your password is not correct.", "password")
    return "password", None


def _guarded(token: str | None, ctx: RequestContext, method: object, code: object,
             password: object,
             audit: AuditAction, detail: Callable[[Any], dict[str, Any]], purpose: str,
             action: Callable[[CurrentUser, User, str, outbox.Entry], T], *,
             mail_ok: bool) -> tuple[T, Contact]:
    """The second factor, then the lock, then ``action`` in the account row's lock; its
    staged audit row delivered with the spent code. Refusals that must stick (a wrong
    factor, a risk signal) commit before they are raised."""
    refusal: Exception | None = None
    with identity_tx() as s:
        me, user = _require_for_update(s, token)
        entry = outbox.Entry(audit, _actor(me, ctx), user.id, detail)
        used, refusal = _factor(s, me, user, method, code, password, ctx, entry, purpose,
                                mail_ok=mail_ok)
        if refusal is None:
            if purpose == "withdrawal":
                risk.withdrawal_after_reset(s, user)
            lock = risk.active_lock(s, user.id)
            if lock is not None:
                refusal = WithdrawalsLocked(lock)
        if refusal is None:
            result = action(me, user, used, entry)
            if used == "totp":
                risk.settle(s, user.id)  # the stronger factor was answered
            audit_id = outbox.deliver(s, entry)
            contact = Contact(user.email, user.display_name)
    if refusal is not None:
        raise refusal
    try:
        outbox.mark_delivered({entry.outbox_id: audit_id})  # type: ignore[dict-item]
    except Exception as exc:  # noqa: BLE001 - the audit-outbox job marks it later
        log.warning("audit_outbox_mark_failed", error=type(exc).__name__)
    return result, contact


def _send(to: Contact, subject: str, text: str) -> None:
    mail.send(mail.Mail(to.email, subject, f"Hello {to.name},\n\n{text}"))


def _new_address_mail(user_email: str, name: str, exc: AddressCooling) -> None:
    url = get_settings().public_url
    mail.send(mail.Mail(
        user_email, "New withdrawal address on your HashHouse account",
        f"Hello {name},\n\nA withdrawal to an address your account had not used was asked "
        f"for:\n{exc.address}\nFor your safety it can be used from "
        f"{withdrawal_addresses.fmt_time(exc.usable_at)}.\n\nIf this was not you, change "
        f"your password at once ({url}/account/security) and contact support.\n"))


def request(token: str | None, ctx: RequestContext, *, method: object, code: object = None,
            password: object = None, currency_code: str, amount: str, address: str,
            key: str) -> WithdrawalView:
    """Request a withdrawal of the signed-in player: with 2FA on confirmed by ``code``
    (whatever ``method`` says); else by ``method`` password (``password``) or mail.
    Raises ValidationFailed (field code, password or method), WithdrawalsLocked,
    AddressCooling, a WithdrawalRefused, RateLimited or NotAuthenticated."""
    st = get_settings()
    cooling = timedelta(hours=st.withdraw_cooling_hours)
    fresh: list[tuple[AddressCooling, str, str]] = []

    def act(me: CurrentUser, user: User, used: str, entry: outbox.Entry) -> WithdrawalView:
        try:
            return withdrawals.request_withdrawal(
                me.player_id, currency_code, amount, address, key, audit=entry,
                cooling=cooling,
                confirm_minutes=st.withdraw_confirm_minutes if used == "mail" else None)
        except AddressCooling as exc:
            if exc.fresh:
                fresh.append((exc, user.email, user.display_name))
            raise

    def detail(w: WithdrawalView) -> dict[str, Any]:
        return {"withdrawal_id": w.id, "currency": w.currency, "amount": w.amount,
                "fee": w.fee, "address": w.address, "state": w.state,
                "replayed": w.replayed, "method": method if method in METHODS else None}

    try:
        view, user = _guarded(token, ctx, method, code, password,
                              AuditAction.withdrawal_requested,
                              detail, "withdrawal", act, mail_ok=True)
    except AddressCooling:
        for exc, to, name in fresh:
            _new_address_mail(to, name, exc)
        raise
    if not view.replayed:
        subject, text = withdrawal_notices.requested(view, st.public_url)
        _send(user, subject, text)
    return view


def confirm_link(token: object, ctx: RequestContext) -> Confirmation:
    """Open a mailed confirmation link (whoever opens it: the mailbox is the factor).
    Raises withdrawals.LinkInvalid."""
    found = withdrawals.pending_confirmation(token)
    if found is None:
        raise withdrawals.LinkInvalid()
    _, player_id = found
    with identity_tx(readonly=True) as s:
        user = s.execute(select(User).where(User.player_id == player_id)).scalar_one_or_none()
        if user is None:
            raise withdrawals.LinkInvalid()
        lock = risk.active_lock(s, user.id)
        actor = Actor(user.id, user.role, ctx.ip)
        uid = user.id

    def detail(d: dict[str, Any]) -> dict[str, Any]:
        v: WithdrawalView = d["view"]
        return {"withdrawal_id": v.id, "outcome": d["outcome"], "state": v.state,
                "method": "mail"}

    entry = outbox.Entry(AuditAction.withdrawal_confirmed, actor, uid, detail)
    result = withdrawals.confirm_by_link(token, locked=lock.text if lock else None,
                                         audit=entry)
    outbox.deliver_now([entry])
    if result.outcome == "confirmed":
        with identity_tx() as s:
            risk.settle(s, uid)  # the mailed link is the stronger factor
    return result


def change_allow_list(token: str | None, ctx: RequestContext, *, code: object = None,
                      password: object = None, currency_code: object, address: object,
                      allowed: bool) -> AddressView:
    """Put an address on the caller's allow-list (usable at once) or take it off, with
    the code (2FA on) or the password (none while a step-up is asked). Raises like
    :func:`request`, ValueError for an address the chain refuses, LookupError when
    removing one that is not listed, withdrawal_addresses.AllowListFull."""
    st = get_settings()
    code_name = currency_code.strip().upper() if isinstance(currency_code, str) else ""
    chain = adapters.for_currency(code_name) if code_name else None
    if chain is None:
        raise ValueError("Choose one of the currencies shown.")
    target = chain.check_address(address)  # ValueError: its text says what is wrong
    cooling = timedelta(hours=st.withdraw_cooling_hours)

    def act(me: CurrentUser, user: User, used: str, entry: outbox.Entry) -> AddressView:
        return withdrawal_addresses.set_allowed(me.player_id, chain.name, target, allowed,
                                                cooling, audit=entry)

    def detail(v: AddressView) -> dict[str, Any]:
        return {"chain": v.chain, "address": v.address, "allowed": v.allowed}

    view, user = _guarded(token, ctx, "password", code, password,
                          AuditAction.allow_list_added if allowed
                          else AuditAction.allow_list_removed,
                          detail, "allow_list", act, mail_ok=False)
    url = st.public_url
    _send(user, "Your HashHouse withdrawal allow-list changed",
          f"This address was {'added to' if allowed else 'removed from'} your withdrawal "
          f"allow-list:\n{view.address} ({view.chain})\n\n"
          + ("Withdrawals to it need no cooling period now.\n\n" if allowed else "")
          + f"If this was not you, change your password at once ({url}/account/security) "
          "and contact support.\n")
    return view


# --- the withdrawal-notices job -------------------------------------------------------------

def send_notices() -> dict[str, int]:
    """Cancel withdrawals whose confirmation link expired, then mail each player whose
    withdrawal was sent or ended since they were last told."""
    expired = withdrawals.expire_confirmations()
    url = get_settings().public_url
    notices = withdrawal_notices.due(url)
    if notices:
        ids = {n.player_id for n in notices}
        with identity_tx(readonly=True) as s:
            contacts = {u.player_id: (u.email, u.display_name) for u in s.execute(
                select(User).where(User.player_id.in_(ids))).scalars()}
        for n in notices:
            to = contacts.get(n.player_id)
            if to is not None:
                mail.send(mail.Mail(to[0], n.subject, f"Hello {to[1]},\n\n{n.text}"))
            withdrawal_notices.mark(n.withdrawal_id, n.kind)
    return {k: v for k, v in (("expired", expired), ("mailed", len(notices))) if v}

