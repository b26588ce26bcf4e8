"""Staff use cases: find a player, see their sessions and lock state, lock/unlock,
revoke sessions, change roles. Every function re-checks the caller's role from their
session token (deny by default) and writes an audit row for what it did."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, false, select
from sqlalchemy.orm import Session

from casino_app.core.clock import utcnow
from casino_app.core.db import identity_tx
from casino_app.core.settings import get_settings
from casino_app.security.audit import Actor, AuditAction, AuditEvent, recent, record
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
from casino_app.users.models import Role, User
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
    """By account number (``42`` or ``#42``), pseudonymous player id (a UUID), or email
    (any part of it). The search itself is audited: it reads personal data."""
    q = _query(query)
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
                like = q.lower().replace("\\", "\\\\").replace("%", "\\%") \
                    .replace("_", "\\_")
                cond = User.email.like(f"%{like}%", escape="\\")
                kind = "email"
        if me.role is not Role.admin:
            cond = and_(cond, User.role == Role.player.value)  # support: players only
        rows = list(s.execute(select(User).where(cond).order_by(User.id).limit(limit))
                    .scalars())
        record(s, AuditAction.staff_search, _actor(me, ctx or RequestContext()), None,
               kind=kind, query=q[:100], results=len(rows))
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


def set_role(token: str | None, user_id: object, role: object, ctx: RequestContext) -> None:
    """Admins only. The caller's own role cannot be changed (no accidental lock-out)."""
    if not isinstance(role, str) or role not in {r.value for r in Role}:
        raise ValidationFailed("Choose player, support or admin.", "role")
    with identity_tx() as s:
        me = require_role(s, token, (Role.admin,))
        u = _target(s, user_id, lock=True)
        if u.id == me.user_id:
            raise ValidationFailed("You cannot change your own role.", "role")
        if u.role == role:
            return
        old = u.role
        u.role = role
        sessions.revoke_all(s, u.id, "role changed")
        record(s, AuditAction.staff_role_changed, _actor(me, ctx), u.id, old=old, new=role)


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
    with identity_tx() as s:
        existing = s.execute(select(User).where(User.email == clean_email)).scalar_one_or_none()
        if existing is not None:
            raise ValidationFailed("An account with that email already exists.", "email")
        now = utcnow()
        u = User(player_id=str(uuid.uuid4()), email=clean_email, display_name=name,
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
