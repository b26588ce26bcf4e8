"""Account use cases: sign up (form, then mailed link), log in (password then 2FA), log
out, lock and unlock, password reset and change, 2FA management. Each function is one
unit of work on the identity database and writes its audit rows in the same transaction.

Nothing reveals whether an email is registered: sign-up, sign-in and reset give the same
answer and do the same work (argon2 on every path: a dummy hash at sign-in, the real hash
at sign-up whether or not it is kept), and mail is queued in the background so that its
delivery time does not show.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from casino_app.core import mail
from casino_app.core.clock import utcnow
from casino_app.core.db import databases, identity_tx
from casino_app.core.logging import get_logger
from casino_app.core.metrics import LOGINS, REGISTRATIONS
from casino_app.core.settings import get_settings
from casino_app.payments.players import ensure_player
from casino_app.security import ratelimit
from casino_app.security.audit import SYSTEM, Actor, AuditAction, record
from casino_app.security.crypto import token_hash
from casino_app.security.sealed import email_index
from casino_app.users import passwords, risk, sessions, totp, validation
from casino_app.users.errors import (
    AccountLocked,
    InvalidCode,
    InvalidCredentials,
    InvalidToken,
    ValidationFailed,
)
from casino_app.users.models import (
    ActionToken,
    LoginAttempt,
    MfaChallenge,
    PendingRegistration,
    Role,
    TokenPurpose,
    User,
)
from casino_app.users.sessions import CurrentUser, RequestContext

log = get_logger("casino.users")
MFA_MAX_ATTEMPTS = 5
TERMS_VERSION = "2026-11"
AUTO_LOCK_REASON = "too many failed sign-ins"


@dataclass(frozen=True)
class LoginStep:
    """After the password: either a session token, or a 2FA challenge to answer."""

    session_token: str | None = None
    mfa_token: str | None = None


def _actor(user: User | CurrentUser | None, ctx: RequestContext) -> Actor:
    if user is None:
        return Actor(None, None, ctx.ip)
    uid = user.id if isinstance(user, User) else user.user_id
    role = user.role if isinstance(user, User) else user.role.value
    return Actor(uid, str(role), ctx.ip)


def _user_by_email(s: Session, index: str, *, lock: bool = False) -> User | None:
    """The account of an address, by its blind index (``sealed.email_index``, computed
    before the transaction opens)."""
    q = select(User).where(User.email_index == index)
    if lock:
        q = q.with_for_update()
    return s.execute(q).scalar_one_or_none()


def _user_for_update(s: Session, user_id: int) -> User:
    user = s.execute(select(User).where(User.id == user_id).with_for_update()
                     .execution_options(populate_existing=True)).scalar_one()
    return user


# Registration ----------------------------------------------------------------------------
# Sign-up answers the same way whether or not the address has an account: the form's
# fields are checked (their errors never depend on the address being taken), then the
# address gets a mail. A new address gets a link that creates the account; an address
# with an account gets a note that someone tried to sign up with it. No account exists
# before the link is followed, with the password chosen on the form, so nobody can hold
# an address they cannot read mail at, nor finish a sign-up someone else started.
MAX_CONFIRM_ATTEMPTS = 5
REGISTER_SUBJECT = "Finish creating your HashHouse account"
REGISTER_TAKEN_SUBJECT = "Someone tried to sign up with your address"
_LINK_DEAD = ("This sign-up link is invalid or has expired. Please sign up again: we will "
              "email you a new one.")


def _lifetime(minutes: int) -> str:
    if minutes % 60 == 0:
        hours = minutes // 60
        return "1 hour" if hours == 1 else f"{hours} hours"
    return f"{minutes} minutes"


def start_registration(*, email: object, password: object, display_name: object,
                       date_of_birth: object, accept_terms: object, ctx: RequestContext
                       ) -> None:
    """Check the sign-up form and mail the address; the account is created by
    ``confirm_registration`` with the mailed token. Raises ValidationFailed (a field's
    error) or RateLimited; otherwise answers nothing, the same for every address.

    Both outcomes cost the same: the argon2 hash is computed whether or not the address
    has an account, one audit row is written, and one mail is queued after the commit
    (none past CASINO_RATE_MAIL_ADDRESS for the address, whichever it is)."""
    st = get_settings()
    clean_email = validation.email(email)
    clean_pw = validation.password(password, email_addr=clean_email)
    name = validation.display_name(display_name)
    dob = validation.date_of_birth(date_of_birth, today=utcnow().date(),
                                   minimum_age=st.minimum_age)
    if accept_terms is not True:
        raise ValidationFailed("Please accept the terms to open an account.", "accept_terms")
    ratelimit.check_register(ctx.ip)
    pw_hash = passwords.hash_password(clean_pw)  # in both branches: the time tells nothing
    token = secrets.token_urlsafe(32)
    send = ratelimit.mail_allowed("register", clean_email)
    index = email_index(clean_email)
    message: mail.Mail | None
    with identity_tx() as s:
        now = utcnow()
        user = _user_by_email(s, index)
        if not send:  # this address got its mails for now: same answer, no mail
            message = None
        elif user is None:
            s.add(PendingRegistration(
                token_hash=token_hash(token), email=clean_email, email_index=index,
                display_name=name, date_of_birth=dob, password_hash=pw_hash,
                terms_accepted_at=now, created_at=now,
                expires_at=now + timedelta(minutes=st.register_token_minutes)))
            s.flush()
            message = _registration_mail(clean_email, token)
        else:
            message = _taken_mail(user)
        record(s, AuditAction.register_requested, Actor(None, None, ctx.ip),
               user.id if user else None, known=user is not None,
               **({} if send else {"mailed": False}))
    if message is not None:
        mail.send(message)
    REGISTRATIONS.labels("started" if send else "mail_limited").inc()


def _registration_mail(address: str, token: str) -> mail.Mail:
    # The name typed on the form is not repeated: whoever sent the form chose it, and the
    # mail goes to someone who may not have.
    st = get_settings()
    link = f"{st.public_url}/register/confirm?token={token}"
    return mail.Mail(
        address, REGISTER_SUBJECT,
        "Hello,\n\nTo finish creating your HashHouse account, open this link within "
        f"{_lifetime(st.register_token_minutes)} (it works once) and enter the password you "
        f"chose when you signed up:\n{link}\n\n"
        "If you did not sign up, ignore this mail: no account is created without it.\n")


def _taken_mail(user: User) -> mail.Mail:
    st = get_settings()
    return mail.Mail(
        user.email, REGISTER_TAKEN_SUBJECT,
        f"Hello {user.display_name},\n\nSomeone, perhaps you, tried to create a HashHouse "
        "account with this address. You already have one, so nothing was created and "
        f"your account is unchanged.\n\nSign in: {st.public_url}/login\n"
        f"Forgot your password? Choose a new one: {st.public_url}/forgot\n\n"
        "If it was not you, you can ignore this mail.\n")


def confirm_registration(token: object, password: object, ctx: RequestContext) -> str:
    """Create the account of a pending sign-up and sign it in; returns the session token.

    ``password`` must be the one chosen on the form: whoever follows the link must both
    read the mail and know it. Each token works once and expires
    (``CASINO_REGISTER_TOKEN_MINUTES``); after MAX_CONFIRM_ATTEMPTS wrong passwords it
    stops working. Raises InvalidToken (also when the address got an account meanwhile),
    or ValidationFailed (field ``password``)."""
    try:
        clean = validation.token(token)
    except ValidationFailed:
        raise InvalidToken(_LINK_DEAD) from None
    if not isinstance(password, str) or not password or len(password) > 1024:
        raise ValidationFailed("Enter the password you chose when you signed up.", "password")
    # The slow argon2 check runs outside the write transaction (as at sign-in); the
    # outcome is applied below only to the row it was checked against.
    with identity_tx(readonly=True) as s:
        stored = s.execute(select(PendingRegistration.password_hash).where(
            PendingRegistration.token_hash == token_hash(clean))).scalar_one_or_none()
    if stored is None:
        raise InvalidToken(_LINK_DEAD)
    ok, _ = passwords.verify(password, stored)
    player_id = str(uuid.uuid4())
    try:
        with identity_tx() as s:
            outcome = _confirm_step(s, clean, stored, ok, player_id, ctx)
    except IntegrityError:  # the same address confirmed at the same moment
        raise InvalidToken(_taken_meanwhile()) from None
    if isinstance(outcome, Exception):
        raise outcome
    ensure_player(player_id)
    REGISTRATIONS.labels("ok").inc()
    return outcome


def _taken_meanwhile() -> str:
    return ("This address already has an account. Sign in, or choose a new password from "
            "\"Forgot your password?\".")


def _confirm_step(s: Session, token: str, stored: str, ok: bool, player_id: str,
                  ctx: RequestContext) -> str | Exception:
    """One transaction that commits even when it refuses (a wrong password counts)."""
    now = utcnow()
    digest = token_hash(token)
    index = s.execute(select(PendingRegistration.email_index).where(
        PendingRegistration.token_hash == digest)).scalar_one_or_none()
    if index is None:
        return InvalidToken(_LINK_DEAD)
    # Lock every pending sign-up of the address, in id order: two links of one address
    # followed at the same moment queue here instead of deadlocking.
    pending = s.execute(select(PendingRegistration).where(
        PendingRegistration.email_index == index).order_by(PendingRegistration.id)
        .with_for_update().execution_options(populate_existing=True)).scalars().all()
    p = next((r for r in pending if r.token_hash == digest), None)
    if p is None or p.password_hash != stored:
        return InvalidToken(_LINK_DEAD)
    if p.expires_at <= now:
        s.delete(p)
        return InvalidToken(_LINK_DEAD)
    if not ok:
        p.attempts += 1
        if p.attempts >= MAX_CONFIRM_ATTEMPTS:
            s.delete(p)
            return InvalidToken("That was the wrong password too many times: this link no "
                                "longer works. Please sign up again.")
        return ValidationFailed("That is not the password you chose when you signed up.",
                                "password")
    # Every pending sign-up of the address ends here: one account per address.
    s.execute(delete(PendingRegistration).where(PendingRegistration.email_index == index))
    if _user_by_email(s, index) is not None:
        return InvalidToken(_taken_meanwhile())
    # player_id first: the sealed fields are bound to it.
    user = User(player_id=player_id, email=p.email, email_index=index,
                display_name=p.display_name,
                date_of_birth=p.date_of_birth, password_hash=p.password_hash,
                role=Role.player.value, created_at=now,
                terms_accepted_at=p.terms_accepted_at, password_changed_at=now,
                last_login_at=now, last_login_ip=ctx.ip, failures_since=now)
    s.add(user)
    s.flush()
    record(s, AuditAction.register, _actor(user, ctx), user.id, terms_version=TERMS_VERSION,
           role=Role.player.value)
    return sessions.create(s, user, ctx)


def date_today() -> date:
    return utcnow().date()


# Login -----------------------------------------------------------------------------------
def _failures(s: Session, user: User) -> int:
    st = get_settings()
    since = utcnow() - timedelta(minutes=st.lockout_window_minutes)
    if user.failures_since is not None and user.failures_since > since:
        since = user.failures_since
    return s.execute(select(func.count()).select_from(LoginAttempt).where(
        LoginAttempt.user_id == user.id, LoginAttempt.success.is_(False),
        LoginAttempt.at > since)).scalar_one()


def _record_failure(s: Session, user: User, ctx: RequestContext, action: AuditAction) -> None:
    s.add(LoginAttempt(user_id=user.id, ip=ctx.ip, success=False, at=utcnow()))
    s.flush()
    record(s, action, Actor(None, None, ctx.ip), user.id)
    if user.locked_at is None and _failures(s, user) >= get_settings().lockout_threshold:
        _lock(s, user, AUTO_LOCK_REASON, SYSTEM, AuditAction.lock)
        _send_unlock_mail(s, user)


def _lock(s: Session, user: User, reason: str, actor: Actor, action: AuditAction) -> None:
    user.locked_at = utcnow()
    user.lock_reason = reason[:200]
    record(s, action, actor, user.id, reason=reason[:200])


def locked_by_staff(user: User) -> bool:
    """The owner may lift only the automatic lock-out (mailed link, password reset);
    a lock placed by staff stays until staff lift it."""
    return user.locked_at is not None and user.lock_reason != AUTO_LOCK_REASON


def _unlock(s: Session, user: User, actor: Actor, action: AuditAction, how: str) -> None:
    user.locked_at = None
    user.lock_reason = None
    user.failures_since = utcnow()
    record(s, action, actor, user.id, how=how)


def _issue_token(s: Session, user: User, purpose: TokenPurpose, minutes: int) -> str:
    # A new link replaces any earlier unused link of the same kind.
    s.execute(update(ActionToken).where(
        ActionToken.user_id == user.id, ActionToken.purpose == purpose.value,
        ActionToken.used_at.is_(None)).values(used_at=utcnow()))
    token = secrets.token_urlsafe(32)
    s.add(ActionToken(user_id=user.id, purpose=purpose.value, token_hash=token_hash(token),
                      created_at=utcnow(), expires_at=utcnow() + timedelta(minutes=minutes)))
    s.flush()
    return token


def _end_challenges(s: Session, user_id: int) -> None:
    """A new password ends sign-ins waiting at the 2FA step (started with the old one)."""
    s.execute(update(MfaChallenge).where(
        MfaChallenge.user_id == user_id, MfaChallenge.used_at.is_(None))
        .values(used_at=utcnow()))


def _send_unlock_mail(s: Session, user: User) -> None:
    st = get_settings()
    token = _issue_token(s, user, TokenPurpose.unlock, st.unlock_token_minutes)
    link = f"{st.public_url}/unlock?token={token}"
    s.info.setdefault("after_commit_mail", []).append(mail.Mail(
        user.email, "Your HashHouse account was locked",
        f"Hello {user.display_name},\n\nWe locked your account after "
        f"{st.lockout_threshold} failed sign-in attempts.\n\nIf that was you, unlock it "
        f"here (valid for {st.unlock_token_minutes} minutes, once):\n{link}\n\n"
        "If it was not you, unlock it and consider turning on two-factor authentication. "
        "Your password was not revealed.\n"))


def _run_step(step, *args) -> object:  # type: ignore[no-untyped-def]
    """Run a login step in one transaction that commits even when the step refuses
    (the attempt, the audit row and any lock must stick); mail goes after the commit."""
    with identity_tx() as s:
        outcome = step(s, *args)
        queued = s.info.pop("after_commit_mail", [])
    for m in queued:
        mail.send(m)
    LOGINS.labels(_login_result(outcome)).inc()
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def _login_result(outcome: object) -> str:
    """The label of a sign-in step in /api/metrics."""
    if isinstance(outcome, LoginStep):
        return "mfa_required" if outcome.mfa_token else "ok"
    if isinstance(outcome, str):
        return "ok"
    return {AccountLocked: "locked", InvalidCredentials: "bad_credentials",
            InvalidCode: "bad_code", InvalidToken: "expired"}.get(type(outcome), "refused")


def begin_login(*, email: object, password: object, ctx: RequestContext) -> LoginStep:
    """Check email and password. Raises InvalidCredentials (also for a locked account,
    whatever the password) or RateLimited."""
    if not isinstance(password, str) or not password or len(password) > 1024:
        raise InvalidCredentials()
    try:
        clean_email = validation.email(email)
    except ValidationFailed:
        ratelimit.check_login(ctx.ip, "")  # the argon2 work below is not free either
        passwords.dummy_verify(password)
        raise InvalidCredentials() from None
    ratelimit.check_login(ctx.ip, clean_email)
    index = email_index(clean_email)
    # The slow argon2 check runs outside the write transaction, so that sign-ins of
    # different players never wait on each other; the outcome is applied below only if
    # the stored hash is still the one that was checked.
    with identity_tx(readonly=True) as s:
        stored = s.execute(select(User.password_hash).where(User.email_index == index)
                           ).scalar_one_or_none()
    if stored is None:
        passwords.dummy_verify(password)
        checked: tuple[str | None, bool, str | None] = (None, False, None)
    else:
        ok, new_hash = passwords.verify(password, stored)
        checked = (stored, ok, new_hash)
    result = _run_step(_password_step, index, checked, ctx)
    if not isinstance(result, LoginStep):
        raise RuntimeError("the password step answered no LoginStep")
    return result


def _password_step(s: Session, index: str, checked: tuple[str | None, bool, str | None],
                   ctx: RequestContext) -> LoginStep | Exception:
    stored, ok, new_hash = checked
    user = _user_by_email(s, index, lock=True)
    if user is None:
        s.add(LoginAttempt(user_id=None, ip=ctx.ip, success=False, at=utcnow()))
        record(s, AuditAction.login_failed, Actor(None, None, ctx.ip), None,
               reason="unknown email")
        return InvalidCredentials()
    if stored != user.password_hash:
        ok, new_hash = False, None  # the password changed meanwhile: check again later
    if not ok:
        _record_failure(s, user, ctx, AuditAction.login_failed)
        return InvalidCredentials()
    if new_hash:
        user.password_hash = new_hash  # argon2 parameters changed: upgrade the hash
    if user.locked_at is not None:
        # The same answer as a wrong password: saying "locked" only to the right password
        # would let a guesser carry on through the lock and learn when they are right.
        # The answer itself tells the owner that a lock may be why (and the mail has come).
        record(s, AuditAction.login_failed, Actor(None, None, ctx.ip), user.id,
               reason="locked")
        return InvalidCredentials()
    if user.totp_enabled:
        token = secrets.token_urlsafe(32)
        s.add(MfaChallenge(user_id=user.id, token_hash=token_hash(token), created_at=utcnow(),
                           expires_at=utcnow() + timedelta(
                               minutes=get_settings().mfa_challenge_minutes)))
        return LoginStep(mfa_token=token)
    return LoginStep(session_token=_complete(s, user, ctx, method="password"))


def _complete(s: Session, user: User, ctx: RequestContext, method: str) -> str:
    now = utcnow()
    s.add(LoginAttempt(user_id=user.id, ip=ctx.ip, success=True, at=now))
    previous = user.last_login_at
    user.previous_login_at, user.previous_login_ip = user.last_login_at, user.last_login_ip
    user.last_login_at = now
    user.last_login_ip = ctx.ip[:64]
    user.failures_since = now
    signals = risk.on_sign_in(s, user, ctx)
    record(s, AuditAction.login_ok, _actor(user, ctx), user.id, method=method,
           previous_login=previous.isoformat() if previous else None,
           **({"risk": signals} if signals else {}))
    return sessions.create(s, user, ctx)


def complete_login_mfa(*, mfa_token: object, code: object, ctx: RequestContext) -> str:
    """Answer the 2FA challenge with a TOTP or recovery code; returns the session token."""
    if not isinstance(mfa_token, str) or not mfa_token or len(mfa_token) > 128:
        raise InvalidToken("Your sign-in expired. Please enter your password again.")
    clean = validation.code(code)
    ratelimit.check_mfa(token_hash(mfa_token))
    result = _run_step(_mfa_step, mfa_token, clean, ctx)
    if not isinstance(result, str):
        raise RuntimeError("the 2FA step answered no session token")
    return result


def _mfa_step(s: Session, mfa_token: str, code: str, ctx: RequestContext) -> str | Exception:
    ch = s.execute(select(MfaChallenge).where(
        MfaChallenge.token_hash == token_hash(mfa_token)).with_for_update()
    ).scalar_one_or_none()
    now = utcnow()
    if ch is None or ch.used_at is not None or ch.expires_at <= now \
            or ch.attempts >= MFA_MAX_ATTEMPTS:
        return InvalidToken("Your sign-in expired. Please enter your password again.")
    user = _user_for_update(s, ch.user_id)
    if user.locked_at is not None:
        ch.used_at = now
        return AccountLocked()
    used = totp.check_code_or_recovery(s, user, code)
    if used is None:
        ch.attempts += 1
        _record_failure(s, user, ctx, AuditAction.login_mfa_failed)
        if user.locked_at is not None:
            ch.used_at = now
            return AccountLocked()
        return InvalidCode()
    ch.used_at = now
    method = "totp" if used == "totp" else "recovery"
    if method == "recovery":
        record(s, AuditAction.recovery_code_used, _actor(user, ctx), user.id,
               left=totp.recovery_codes_left(s, user.id))
    return _complete(s, user, ctx, method=method)


def logout(token: str | None, ctx: RequestContext) -> None:
    with identity_tx() as s:
        current = sessions.resolve(s, token, touch=False)
        if current is None:
            return
        sessions.revoke(s, current.user_id, current.session_id, "logout")
        record(s, AuditAction.logout, _actor(current, ctx), current.user_id)


def current_user(token: str | None, *, touch: bool = True) -> CurrentUser | None:
    """The signed-in user behind a token, as committed now (one raw read, no unit of
    work; a write only every 30 s of use). ``touch=False`` for a look that is not the
    player's use (a push to an open tab): it does not extend the session's idle time."""
    me = sessions.lookup(databases().identity_reader, token)
    if me is not None and touch and me.needs_touch:
        _touch(me)
    return me


def _touch(me: CurrentUser) -> None:
    with identity_tx() as s:
        sessions.touch(s, me.session_id)


async def current_user_async(token: str | None, *, touch: bool = True) -> CurrentUser | None:
    """``current_user`` for a websocket event, awaited without a worker thread
    (``sessions.lookup_async``). A due last_seen write is not awaited: it joins the
    loop's next batch of them (``_touch_soon``)."""
    me = await sessions.lookup_async(databases().identity_reader, token)
    if me is not None and touch and me.needs_touch:
        _touch_soon(me.session_id)
    return me


# last_seen writes of websocket events, per event loop: one executemany every TOUCH_DELAY
# s for all the sessions used meanwhile. One transaction each (a commit, in a worker
# thread) made the first event of every tab wait for the others' when many tabs came due
# together: 200 tabs that started together came due every 30 s together, and their bets
# waited up to 0.5 s (bench/ws_bets.py, 2026-12-04).
TOUCH_DELAY = 0.5
_due: dict[asyncio.AbstractEventLoop, dict[int, Any]] = {}
_flushes: set[asyncio.Task] = set()


def _touch_soon(session_id: int) -> None:
    loop = asyncio.get_running_loop()
    due = _due.get(loop)
    if due is None:
        due = _due[loop] = {}
        task = loop.create_task(_flush_touches(loop))
        _flushes.add(task)
        task.add_done_callback(_flushes.discard)
    due.setdefault(session_id, utcnow())


async def _flush_touches(loop: asyncio.AbstractEventLoop) -> None:
    try:
        await asyncio.sleep(TOUCH_DELAY)
    except asyncio.CancelledError:  # the loop is ending: write them now, in it
        _write_touches(_due.pop(loop, {}))
        raise
    await asyncio.to_thread(_write_touches, _due.pop(loop, {}))


def _write_touches(due: dict[int, Any]) -> None:
    try:
        with identity_tx() as s:
            sessions.touch_many(s, due)
    except Exception:  # the next use writes it: a lost last_seen only shortens idle time
        log.exception("session_touch_failed", sessions=len(due))


# Unlock and reset by mailed link -------------------------------------------------------
def _redeem(s: Session, token: object, purpose: TokenPurpose) -> User:
    clean = validation.token(token)
    # populate_existing: the caller may hold this row from an unlocked read; without it the
    # locked read keeps those stale values and a link used twice at once works twice.
    row = s.execute(select(ActionToken).where(
        ActionToken.token_hash == token_hash(clean)).with_for_update()
        .execution_options(populate_existing=True)).scalar_one_or_none()
    if row is None or row.purpose != purpose.value or row.used_at is not None \
            or row.expires_at <= utcnow():
        raise InvalidToken()
    row.used_at = utcnow()
    return _user_for_update(s, row.user_id)


def unlock_with_token(token: object, ctx: RequestContext) -> None:
    with identity_tx() as s:
        user = _redeem(s, token, TokenPurpose.unlock)
        if locked_by_staff(user):
            raise AccountLocked()
        if user.locked_at is not None:
            _unlock(s, user, Actor(user.id, user.role, ctx.ip), AuditAction.unlock,
                    how="mailed link")


def request_password_reset(email: object, ctx: RequestContext) -> None:
    """Always answers the same way; mails a link only when the account exists."""
    try:
        clean = validation.email(email)
    except ValidationFailed:
        raise
    ratelimit.check_reset(ctx.ip, clean)
    st = get_settings()
    index = email_index(clean)
    with identity_tx() as s:
        user = _user_by_email(s, index, lock=True)
        if user is None:
            record(s, AuditAction.password_reset_requested, Actor(None, None, ctx.ip), None,
                   known=False)
            return
        if not ratelimit.mail_allowed("reset", clean):  # same answer, no mail
            record(s, AuditAction.password_reset_requested, Actor(None, None, ctx.ip),
                   user.id, known=True, mailed=False)
            return
        token = _issue_token(s, user, TokenPurpose.reset, st.reset_token_minutes)
        record(s, AuditAction.password_reset_requested, Actor(None, None, ctx.ip), user.id,
               known=True)
        link = f"{st.public_url}/reset?token={token}"
        message = mail.Mail(
            user.email, "Reset your HashHouse password",
            f"Hello {user.display_name},\n\nSomeone asked to reset the password of your "
            f"HashHouse account. To choose a new password, open this link within "
            f"{st.reset_token_minutes} minutes (it works once):\n{link}\n\n"
            "If you did not ask, ignore this mail: your password stays as it is.\n")
    mail.send(message)


def reset_link_usable(token: object) -> bool:
    """Whether a mailed reset link still works (unused, not expired), read only: the page
    says at once when it does not, instead of showing a form that cannot succeed."""
    try:
        clean = validation.token(token)
    except ValidationFailed:
        return False
    with identity_tx(readonly=True) as s:
        row = s.execute(select(ActionToken).where(
            ActionToken.token_hash == token_hash(clean))).scalar_one_or_none()
        return row is not None and row.purpose == TokenPurpose.reset.value \
            and row.used_at is None and row.expires_at > utcnow()


def reset_password(token: object, new_password: object, ctx: RequestContext) -> None:
    with identity_tx() as s:
        clean_token = validation.token(token)
        # Validate the token first (without using it) so a bad password keeps the link.
        row = s.execute(select(ActionToken).where(
            ActionToken.token_hash == token_hash(clean_token))).scalar_one_or_none()
        if row is None or row.purpose != TokenPurpose.reset.value or row.used_at is not None \
                or row.expires_at <= utcnow():
            raise InvalidToken()
        user = s.get(User, row.user_id)
        if user is None:
            raise InvalidToken()
        pw = validation.password(new_password, email_addr=user.email, field="new_password")
        user = _redeem(s, clean_token, TokenPurpose.reset)
        user.password_hash = passwords.hash_password(pw)
        user.password_changed_at = utcnow()
        revoked = sessions.revoke_all(s, user.id, "password reset")
        _end_challenges(s, user.id)
        until, message = _security_change(s, user, "password_reset")
        record(s, AuditAction.password_reset, Actor(user.id, user.role, ctx.ip), user.id,
               sessions_revoked=revoked, withdrawals_locked_until=until)
        if user.locked_at is not None and not locked_by_staff(user):
            _unlock(s, user, Actor(user.id, user.role, ctx.ip), AuditAction.unlock,
                    how="password reset")
        else:
            user.failures_since = utcnow()
    mail.send(message)


_CHANGE_SUBJECTS = {
    "password_changed": "Your HashHouse password was changed",
    "password_reset": "Your HashHouse password was reset",
    "2fa_enabled": "Two-factor authentication was turned on for your HashHouse account",
    "2fa_disabled": "Two-factor authentication was turned off for your HashHouse account",
}


def _security_change(s: Session, user: User, reason: str) -> tuple[str | None, mail.Mail]:
    """After a change to how the account is secured: withdrawals wait
    CASINO_WITHDRAW_LOCK_HOURS (users/risk.py), and the account's address is told, so
    that an owner who did not make the change hears of it before money can leave.
    Returns (until when, ISO; the mail to send after the commit). There is no change of
    email address in this app; were there one, the old address would get this mail."""
    st = get_settings()
    until = risk.lock_withdrawals(s, user.id, reason, st.withdraw_lock_hours)
    subject = _CHANGE_SUBJECTS[reason]
    locked = (f"For your safety, withdrawals are locked until {until:%Y-%m-%d %H:%M} UTC.\n\n"
              if until else "")
    message = mail.Mail(
        user.email, subject,
        f"Hello {user.display_name},\n\nThis is to tell you that {subject[0].lower()}"
        f"{subject[1:]} on {utcnow():%Y-%m-%d %H:%M} UTC. {locked}"
        "If this was you, there is nothing to do.\n\nIf it was not you, choose a new "
        f"password at once ({st.public_url}/forgot) and contact support: someone may have "
        "access to your account. Other devices were signed out.\n")
    return (until.isoformat() if until else None), message


def change_password(token: str | None, current_password: object, new_password: object,
                    ctx: RequestContext) -> str:
    """Change the password; other sessions end and this one gets a new token.
    Withdrawals are locked for a while and the account's address is told."""
    with identity_tx() as s:
        me, user = _require_for_update(s, token)
        _check_password(user, current_password)
        pw = validation.password(new_password, email_addr=user.email, field="new_password")
        user.password_hash = passwords.hash_password(pw)
        user.password_changed_at = utcnow()
        revoked = _secure(s, me, "password changed")
        until, message = _security_change(s, user, "password_changed")
        record(s, AuditAction.password_changed, _actor(me, ctx), user.id,
               sessions_revoked=revoked, withdrawals_locked_until=until)
        new_token = sessions.rotate(s, me, ctx)
    mail.send(message)
    return new_token


def _secure(s: Session, me: CurrentUser, reason: str) -> int:
    """After a change to how the account is secured (password, 2FA, recovery codes): end
    every other session of the account and every sign-in waiting at the 2FA step, so that
    whoever held a stolen session or password does not outlive the owner securing the
    account. The caller then rotates its own session. Returns the sessions ended."""
    revoked = sessions.revoke_all(s, me.user_id, reason, except_session_id=me.session_id)
    _end_challenges(s, me.user_id)
    return revoked


# 2FA management ----------------------------------------------------------------------------
def _require(s: Session, token: str | None) -> CurrentUser:
    from casino_app.users.errors import NotAuthenticated

    me = sessions.resolve(s, token)
    if me is None:
        raise NotAuthenticated()
    return me


def _require_for_update(s: Session, token: str | None) -> tuple[CurrentUser, User]:
    """The caller and their account row, locked. The session is checked again once the
    row is locked: staff may have locked the account (or a reset ended every session)
    after the token was first read, and a rotated session must not outlive that."""
    me = _require(s, token)
    user = _user_for_update(s, me.user_id)
    again = sessions.resolve(s, token, touch=False)
    if again is None or again.session_id != me.session_id:
        from casino_app.users.errors import NotAuthenticated

        raise NotAuthenticated()
    return again, user


def _check_password(user: User, password: object) -> None:
    ratelimit.check_reauth(user.id)
    if not isinstance(password, str) or not password or len(password) > 1024:
        raise ValidationFailed("Enter your current password.", "current_password")
    ok, _ = passwords.verify(password, user.password_hash)
    if not ok:
        raise ValidationFailed("Your current password is not correct.", "current_password")


def _check_current_code(s: Session, user: User, code: object) -> str | int:
    """Spend the caller's current code: "totp", or the id of the recovery code used."""
    clean = validation.code(code, field="current_code")
    used = totp.check_code_or_recovery(s, user, clean)
    if used is None:
        raise ValidationFailed("That code is not valid. Codes can be used only once.",
                               "current_code")
    return used


def start_totp(token: str | None, password: object, current_code: object,
               ctx: RequestContext) -> totp.Enrolment:
    """Begin enrolment (or replacing the authenticator): needs the password, and the
    current code when 2FA is already on."""
    with identity_tx() as s:
        me, user = _require_for_update(s, token)
        _check_password(user, password)
        if user.totp_enabled:
            _check_current_code(s, user, current_code)
        return totp.start_enrolment(user)


def confirm_totp(token: str | None, code: object, ctx: RequestContext
                 ) -> tuple[list[str], str]:
    """Activate the pending secret (turning 2FA on, or replacing the authenticator); the
    account's other sessions end. Returns (recovery codes, rotated session token)."""
    clean = validation.code(code)
    with identity_tx() as s:
        me, user = _require_for_update(s, token)
        if user.totp_pending_enc is None:
            raise ValidationFailed("Start the set-up again.", "code")
        replacing = user.totp_enabled
        codes = totp.confirm_enrolment(s, user, clean)
        if codes is None:
            raise ValidationFailed("That code does not match. Check the time on your phone "
                                   "and try the newest code.", "code")
        revoked = _secure(s, me, "2fa enabled")
        until, message = _security_change(s, user, "2fa_enabled")
        record(s, AuditAction.totp_enabled, _actor(me, ctx), user.id, replaced=replacing,
               sessions_revoked=revoked, withdrawals_locked_until=until)
        new_token = sessions.rotate(s, me, ctx)
    mail.send(message)
    return codes, new_token


def disable_totp(token: str | None, password: object, code: object,
                 ctx: RequestContext) -> str:
    with identity_tx() as s:
        me, user = _require_for_update(s, token)
        if not user.totp_enabled:
            raise ValidationFailed("Two-factor authentication is not on.", "code")
        _check_password(user, password)
        _check_current_code(s, user, code)
        totp.disable(s, user)
        revoked = _secure(s, me, "2fa disabled")
        until, message = _security_change(s, user, "2fa_disabled")
        record(s, AuditAction.totp_disabled, _actor(me, ctx), user.id,
               sessions_revoked=revoked, withdrawals_locked_until=until)
        new_token = sessions.rotate(s, me, ctx)
    mail.send(message)
    return new_token


def regenerate_recovery_codes(token: str | None, password: object, code: object,
                              ctx: RequestContext) -> tuple[list[str], str]:
    """New recovery codes (the old ones stop working); returns (codes, rotated session
    token). Someone who asks for new codes may fear the old ones leaked, so the account's
    other sessions end too."""
    with identity_tx() as s:
        me, user = _require_for_update(s, token)
        if not user.totp_enabled:
            raise ValidationFailed("Turn on two-factor authentication first.", "code")
        _check_password(user, password)
        _check_current_code(s, user, code)
        codes = totp.new_recovery_codes(s, user)
        revoked = _secure(s, me, "recovery codes regenerated")
        record(s, AuditAction.recovery_codes_regenerated, _actor(me, ctx), user.id,
               sessions_revoked=revoked)
        return codes, sessions.rotate(s, me, ctx)


# Own sessions --------------------------------------------------------------------------------
def my_sessions(token: str | None) -> list[sessions.SessionView]:
    with identity_tx() as s:
        me = _require(s, token)
        return sessions.list_live(s, me.user_id, me.session_id)


def revoke_my_session(token: str | None, session_id: object, ctx: RequestContext) -> bool:
    session_id = validation.row_id(session_id, "session_id", "Unknown session.")
    with identity_tx() as s:
        me = _require(s, token)
        done = sessions.revoke(s, me.user_id, session_id, "revoked by owner")
        if done:
            record(s, AuditAction.session_revoke, _actor(me, ctx), me.user_id,
                   session_id=session_id)
        return done


def revoke_my_other_sessions(token: str | None, ctx: RequestContext) -> int:
    with identity_tx() as s:
        me = _require(s, token)
        n = sessions.revoke_all(s, me.user_id, "revoked by owner",
                                except_session_id=me.session_id)
        record(s, AuditAction.sessions_revoke_others, _actor(me, ctx), me.user_id, count=n)
        return n


def recovery_codes_left(token: str | None) -> int:
    with identity_tx() as s:
        me = _require(s, token)
        return totp.recovery_codes_left(s, me.user_id)
