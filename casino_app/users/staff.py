"""Staff use cases: find a player, see their sessions and lock state, lock/unlock,
revoke sessions, change roles. Every function re-checks the caller's role from their
session token (deny by default) and writes an audit row for what it did."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, false, select
from sqlalchemy.orm import Session

from casino_app.core.clock import utcnow
from casino_app.core.db import identity_tx
from casino_app.core.settings import get_settings
from casino_app.security.audit import Actor, AuditAction, AuditEvent, recent, record
from casino_app.security.sealed import email_index
from casino_app.users import passwords, sessions, validation
from casino_app.users.accounts import locked_by_staff
from casino_app.users.errors import (
    Forbidden,
    NotAuthenticated,
    NotFound,
    PlayersOnly,
    StaffNeeds2FA,
    ValidationFailed,
)
from casino_app.users.models import Role, RoleRequest, User
from casino_app.users.sessions import CurrentUser, RequestContext, SessionView

STAFF = (Role.support, Role.admin)


@dataclass(frozen=True)
class PlayerSummary:
    user_id: int
    player_id: str
    email: str
    display_name: str
    role: str
    locked: bool
    created_at: datetime


@dataclass(frozen=True)
class PlayerDetail:
    summary: PlayerSummary
    lock_reason: str | None
    locked_at: datetime | None
    totp_enabled: bool
    last_login_at: datetime | None
    last_login_ip: str | None
    sessions: list[SessionView]
    audit: list[AuditEvent]


def require_role(s: Session, token: str | None, roles: tuple[Role, ...] = STAFF
                 ) -> CurrentUser:
    me = sessions.resolve(s, token)
    if me is None:
        raise NotAuthenticated()
    if me.role not in roles:
        raise Forbidden()
    if get_settings().staff_require_2fa and not me.totp_enabled:
        raise StaffNeeds2FA()
    return me


def _actor(me: CurrentUser, ctx: RequestContext) -> Actor:
    return Actor(me.user_id, me.role.value, ctx.ip)


def _summary(u: User) -> PlayerSummary:
    return PlayerSummary(u.id, u.player_id, u.email, u.display_name, u.role,
                         u.locked_at is not None, u.created_at)


def _query(value: object) -> str:
    if not isinstance(value, str):
        raise ValidationFailed("Enter an email, a player id or an account number.", "query")
    q = value.strip()
    if not q:
        raise ValidationFailed("Enter an email, a player id or an account number.", "query")
    if len(q) > 254:
        raise ValidationFailed("That search is too long.", "query")
    return q


def find_players(token: str | None, query: object, ctx: RequestContext | None = None,
                 limit: int = 25) -> list[PlayerSummary]:
    """By account number (``42`` or ``#42``), pseudonymous player id (a UUID), or the
    whole email (any case: emails are sealed, found by their blind index, so a part of
    one finds nothing). The search itself is audited (an email by the start of its
    index, never in clear): it reads personal data."""
    q = _query(query)
    index = email_index(q) if "@" in q else None  # before the transaction (sealed.py)
    with identity_tx() as s:
        me = require_role(s, token)
        number = q.removeprefix("#")
        if number.isascii() and number.isdigit():
            account = validation.account_number(q)
            cond = User.id == account if account is not None else false()
            kind = "account"
        else:
            try:
                cond = User.player_id == str(uuid.UUID(q))
                kind = "player_id"
            except ValueError:
                cond = User.email_index == index if index is not None else false()
                kind = "email"
        if me.role is not Role.admin:
            cond = and_(cond, User.role == Role.player.value)  # support: players only
        rows = list(s.execute(select(User).where(cond).order_by(User.id).limit(limit))
                    .scalars())
        shown = f"index:{index[:16]}" if kind == "email" and index else q[:100]
        record(s, AuditAction.staff_search, _actor(me, ctx or RequestContext()), None,
               kind=kind, query=shown, results=len(rows))
        return [_summary(u) for u in rows]


def _target(s: Session, user_id: object, *, lock: bool = False) -> User:
    user_id = validation.row_id(user_id, "user_id", "Unknown account.")
    q = select(User).where(User.id == user_id)
    if lock:
        q = q.with_for_update()
    user = s.execute(q).scalar_one_or_none()
    if user is None:
        raise NotFound("No such account.")
    return user


def reachable(me: CurrentUser, u: User) -> None:
    """Support works on player accounts only; a staff account (its sessions, IP
    addresses, lock state, money) is for admins. Raises PlayersOnly."""
    if u.role != Role.player.value and me.role is not Role.admin:
        raise PlayersOnly()


def _history(s: Session, me: CurrentUser, u: User) -> list[AuditEvent]:
    """The account's recent audit rows. Support does not see staff members' IP
    addresses in them (an admin's look at the account, say): the rows are detached
    first, so the blanked copies are never written back."""
    events = recent(s, 50, target_user_id=u.id)
    if me.role is not Role.admin:
        for e in events:
            s.expunge(e)
            if e.actor_role in STAFF_ROLES:
                e.ip = ""
    return events


STAFF_ROLES = {r.value for r in STAFF}


def player_detail(token: str | None, user_id: object, ctx: RequestContext) -> PlayerDetail:
    """Everything support needs on one screen; the view itself is audited. Support may
    open player accounts only (PlayersOnly)."""
    with identity_tx() as s:
        me = require_role(s, token)
        u = _target(s, user_id)
        reachable(me, u)
        record(s, AuditAction.staff_lookup, _actor(me, ctx), u.id)
        return PlayerDetail(
            summary=_summary(u), lock_reason=u.lock_reason, locked_at=u.locked_at,
            totp_enabled=u.totp_enabled, last_login_at=u.last_login_at,
            last_login_ip=u.last_login_ip, sessions=sessions.list_live(s, u.id),
            audit=_history(s, me, u))


def _reason(reason: object) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise ValidationFailed("Say why (it goes into the audit log).", "reason")
    if len(reason) > 200:
        raise ValidationFailed("Keep the reason under 200 characters.", "reason")
    return " ".join(reason.split())


def lock_player(token: str | None, user_id: object, reason: object, ctx: RequestContext
                ) -> None:
    why = _reason(reason)
    with identity_tx() as s:
        me = require_role(s, token)
        u = _target(s, user_id, lock=True)
        if u.id == me.user_id:
            raise ValidationFailed("You cannot lock your own account.", "user_id")
        reachable(me, u)
        if u.locked_at is not None and locked_by_staff(u):
            return  # an automatic lock-out becomes a staff lock (its owner could lift it)
        u.locked_at = utcnow()
        u.lock_reason = f"staff: {why}"[:200]
        n = sessions.revoke_all(s, u.id, "locked by staff")
        record(s, AuditAction.staff_lock, _actor(me, ctx), u.id, reason=why,
               sessions_revoked=n)


def unlock_player(token: str | None, user_id: object, reason: object, ctx: RequestContext
                  ) -> None:
    why = _reason(reason)
    with identity_tx() as s:
        me = require_role(s, token)
        u = _target(s, user_id, lock=True)
        reachable(me, u)
        if u.locked_at is None:
            return
        u.locked_at = None
        u.lock_reason = None
        u.failures_since = utcnow()
        record(s, AuditAction.staff_unlock, _actor(me, ctx), u.id, reason=why)


def revoke_player_sessions(token: str | None, user_id: object, ctx: RequestContext) -> int:
    with identity_tx() as s:
        me = require_role(s, token)
        u = _target(s, user_id)
        reachable(me, u)
        n = sessions.revoke_all(s, u.id, "revoked by staff",
                                except_session_id=me.session_id if u.id == me.user_id else None)
        record(s, AuditAction.staff_revoke_sessions, _actor(me, ctx), u.id, count=n)
        return n


def revoke_player_session(token: str | None, user_id: object, session_id: object,
                          ctx: RequestContext) -> bool:
    session_id = validation.row_id(session_id, "session_id", "Unknown session.")
    with identity_tx() as s:
        me = require_role(s, token)
        u = _target(s, user_id)
        reachable(me, u)
        done = sessions.revoke(s, u.id, session_id, "revoked by staff")
        if done:
            record(s, AuditAction.staff_revoke_session, _actor(me, ctx), u.id,
                   session_id=session_id)
        return done


# Roles: taking one away is one admin's call; giving one takes two -----------------------------
_RANK = {Role.player.value: 0, Role.support.value: 1, Role.admin.value: 2}


# A role request not approved within this long cannot be approved any more: a grant
# decided on today's facts, not on a request someone forgot weeks ago. Another admin
# rejects it (closing it), and the admin who still wants the grant asks again.
ROLE_REQUEST_TTL = timedelta(hours=48)


def _expired(r: RoleRequest) -> bool:
    return r.state == "pending" and utcnow() - r.requested_at > ROLE_REQUEST_TTL


@dataclass(frozen=True)
class RoleRequestView:
    id: int
    user_id: int
    email: str
    current_role: str
    role: str                  # the role asked for
    reason: str
    requested_by: int
    requested_at: datetime
    state: str                 # pending, approved, rejected
    decided_by: int | None
    decided_at: datetime | None
    decision_reason: str | None
    by_caller: bool = False    # asked by the admin reading it (who may not decide on it)
    expired: bool = False      # pending past ROLE_REQUEST_TTL: can only be rejected


def _role_view(r: RoleRequest, u: User, me: CurrentUser | None = None) -> RoleRequestView:
    return RoleRequestView(r.id, r.user_id, u.email, u.role, r.role, r.reason, r.requested_by,
                           r.requested_at, r.state, r.decided_by, r.decided_at,
                           r.decision_reason, me is not None and r.requested_by == me.user_id,
                           _expired(r))


def _role(role: object) -> str:
    if not isinstance(role, str) or role not in _RANK:
        raise ValidationFailed("Choose player, support or admin.", "role")
    return role


def set_role(token: str | None, user_id: object, role: object, ctx: RequestContext,
             reason: object = None) -> RoleRequestView | None:
    """Admins only; the caller's own role cannot be changed (no accidental lock-out).

    Taking a role away (admin to support or player, support to player) happens at once and
    ends the account's sessions; returns None. Giving a staff role (player to support or
    admin, support to admin) only records a request, with ``reason``, that a different
    admin must approve (``approve_role_request``); returns it. Support counts: support
    staff ask for the adjustments admins approve, so one admin with a support account of
    their own would be both pairs of eyes."""
    new = _role(role)
    with identity_tx() as s:
        me = require_role(s, token, (Role.admin,))
        u = _target(s, user_id, lock=True)
        if u.id == me.user_id:
            raise ValidationFailed("You cannot change your own role.", "role")
        if u.role == new:
            return None
        if _RANK[new] > _RANK[u.role]:
            return _request_role(s, me, u, new, _reason(reason), ctx)
        old = u.role
        u.role = new
        n = sessions.revoke_all(s, u.id, "role changed")
        detail = {"reason": _reason(reason)} if reason is not None else {}
        record(s, AuditAction.staff_role_changed, _actor(me, ctx), u.id, old=old, new=new,
               sessions_revoked=n, **detail)
        return None


def _request_role(s: Session, me: CurrentUser, u: User, role: str, why: str,
                  ctx: RequestContext) -> RoleRequestView:
    waiting = s.execute(select(RoleRequest).where(
        RoleRequest.user_id == u.id, RoleRequest.state == "pending")).scalar_one_or_none()
    if waiting is not None and _expired(waiting):
        raise ValidationFailed(f"Role request #{waiting.id} for this account expired "
                               "unanswered: another admin rejects it, then ask again.", "role")
    if waiting is not None:
        raise ValidationFailed(f"Role request #{waiting.id} for this account is already "
                               "waiting for a second admin.", "role")
    r = RoleRequest(user_id=u.id, role=role, reason=why, requested_by=me.user_id,
                    requested_at=utcnow(), state="pending")
    s.add(r)
    s.flush()  # UNIQUE (one pending request per account) also holds against a race
    record(s, AuditAction.role_requested, _actor(me, ctx), u.id, request_id=r.id,
           old=u.role, new=role, reason=why)
    return _role_view(r, u)


def _request_id(value: object) -> int:
    """A role request id from a form (decimal text) or an event (an int)."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 10:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**31:
        raise NotFound("No such role request.")
    return value


def _pending_role(s: Session, me: CurrentUser, request_id: object) -> tuple[RoleRequest, User]:
    """The pending request, and its account, both locked (the account first, as every
    role change does); refuses a decision by the requester or on one's own account."""
    rid = _request_id(request_id)
    target = s.execute(select(RoleRequest.user_id).where(RoleRequest.id == rid)
                       ).scalar_one_or_none()
    if target is None:
        raise NotFound("No such role request.")
    u = _target(s, target, lock=True)
    r = s.execute(select(RoleRequest).where(RoleRequest.id == rid).with_for_update()
                  .execution_options(populate_existing=True)).scalar_one()
    if r.state != "pending":
        raise ValidationFailed(f"This request was already {r.state}.", "request_id")
    if r.requested_by == me.user_id:
        raise Forbidden("A second admin must decide on your own request.")
    if r.user_id == me.user_id:
        raise Forbidden("You cannot decide on a role for your own account.")
    return r, u


def approve_role_request(token: str | None, request_id: object, ctx: RequestContext
                         ) -> RoleRequestView:
    """A second admin (not the one who asked, not the account itself) grants the role;
    the account's sessions end, so it signs in again with the new role."""
    with identity_tx() as s:
        me = require_role(s, token, (Role.admin,))
        r, u = _pending_role(s, me, request_id)
        if _expired(r):
            hours = int(ROLE_REQUEST_TTL.total_seconds() // 3600)
            raise ValidationFailed(f"This request is more than {hours} hours old: reject it; "
                                   "the admin who asked can ask again.", "request_id")
        if _RANK[r.role] <= _RANK[u.role]:
            raise ValidationFailed(f"This account is already {u.role}: reject the request.",
                                   "request_id")
        asker = s.execute(select(User.role).where(User.id == r.requested_by)).scalar_one()
        if asker != Role.admin.value:
            raise ValidationFailed("The admin who asked is no longer an admin: reject the "
                                   "request.", "request_id")
        old = u.role
        u.role = r.role
        n = sessions.revoke_all(s, u.id, "role changed")
        r.state, r.decided_by, r.decided_at = "approved", me.user_id, utcnow()
        s.flush()
        record(s, AuditAction.role_approved, _actor(me, ctx), u.id, request_id=r.id,
               old=old, new=r.role, requested_by=r.requested_by, sessions_revoked=n)
        return _role_view(r, u)


def reject_role_request(token: str | None, request_id: object, reason: object,
                        ctx: RequestContext) -> RoleRequestView:
    """A second admin turns the request down, saying why; the role stays as it is."""
    why = _reason(reason)
    with identity_tx() as s:
        me = require_role(s, token, (Role.admin,))
        r, u = _pending_role(s, me, request_id)
        r.state, r.decided_by, r.decided_at = "rejected", me.user_id, utcnow()
        r.decision_reason = why
        s.flush()
        record(s, AuditAction.role_rejected, _actor(me, ctx), u.id, request_id=r.id,
               role=r.role, requested_by=r.requested_by, reason=why)
        return _role_view(r, u)


def role_requests(token: str | None, user_id: object = None) -> list[RoleRequestView]:
    """Pending role requests, oldest first (of one account when ``user_id`` is given).
    Only admins decide on them, so support gets an empty list."""
    with identity_tx() as s:
        me = require_role(s, token)
        if me.role is not Role.admin:
            return []
        q = (select(RoleRequest, User).join(User, User.id == RoleRequest.user_id)
             .where(RoleRequest.state == "pending").order_by(RoleRequest.id))
        if user_id is not None:
            q = q.where(RoleRequest.user_id == validation.row_id(user_id, "user_id",
                                                                 "Unknown account."))
        return [_role_view(r, u, me) for r, u in s.execute(q).all()]


def audit_page(token: str | None, before_id: int | None = None, limit: int = 50
               ) -> list[AuditEvent]:
    if before_id is not None:
        before_id = validation.row_id(before_id, "before_id", "Bad page.")
    with identity_tx() as s:
        require_role(s, token, (Role.admin,))
        return recent(s, min(max(limit, 1), 200), before_id=before_id)


def create_staff(email: object, password: object, role: Role, display_name: str | None = None
                 ) -> int:
    """Bootstrap a staff account from the command line (no session needed: local shell)."""
    if role not in STAFF:
        raise ValidationFailed("Staff accounts are support or admin.", "role")
    clean_email = validation.email(email)
    pw = validation.password(password, email_addr=clean_email)
    # Without --name, the email's local part, keeping only what a display name allows.
    local = " ".join(re.sub(r"[^\w.'\-]", " ", clean_email.split("@")[0]).split())[:40]
    name = validation.display_name(display_name or (local if len(local) >= 2 else "Staff"))
    index = email_index(clean_email)
    with identity_tx() as s:
        existing = s.execute(select(User).where(User.email_index == index)
                             ).scalar_one_or_none()
        if existing is not None:
            raise ValidationFailed("An account with that email already exists.", "email")
        now = utcnow()
        u = User(player_id=str(uuid.uuid4()), email=clean_email, email_index=index,
                 display_name=name,
                 password_hash=passwords.hash_password(pw), role=role.value, created_at=now,
                 password_changed_at=now, failures_since=now)
        s.add(u)
        s.flush()
        record(s, AuditAction.staff_created, Actor(None, "system", "cli"), u.id,
               role=role.value)
        return u.id


def verify_audit(token: str | None):  # noqa: ANN201 - returns security.audit.VerifyResult
    """Recompute the audit chain and check it against the anchors in the ledger
    database (admins only). An anchor that no longer matches makes the result not ok,
    naming the anchored row ("anchor at row N does not match...")."""
    from casino_app.core.db import ledger_tx
    from casino_app.security.anchors import verify_with_anchors

    with identity_tx() as s:
        require_role(s, token, (Role.admin,))
        with ledger_tx(readonly=True) as led:
            return verify_with_anchors(s, led)


def player_id_by_email(email: str) -> str | None:
    """The pseudonymous id of the account with this whole address (operator commands:
    `casino provider launch`; no staff session, the operator runs the machine)."""
    if not isinstance(email, str) or "@" not in email or len(email) > 320:
        return None
    index = email_index(email.strip())
    with identity_tx(readonly=True) as s:
        return s.execute(select(User.player_id).where(User.email_index == index)
                         ).scalar_one_or_none()
