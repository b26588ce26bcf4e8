"""Sessions: 256-bit random tokens held by the browser; only their SHA-256 is stored.

A session ends when it is revoked, when it has been idle longer than the idle timeout,
or when it reaches its absolute lifetime, whichever comes first.
"""

from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session
from user_agents import parse as parse_ua

from casino_app.core.clock import utcnow
from casino_app.core.settings import get_settings
from casino_app.security.crypto import token_hash
from casino_app.users.models import Role, User, UserSession

# Write last_seen at most this often: an event per click must not mean a write per click.
TOUCH_EVERY = timedelta(seconds=30)


@dataclass(frozen=True)
class RequestContext:
    """Where a request came from (for sessions, limits and the audit log)."""

    ip: str = ""
    user_agent: str = ""

    def __post_init__(self) -> None:
        # The columns that keep these hold 64 and 300 characters (Postgres refuses more).
        object.__setattr__(self, "ip", (self.ip or "")[:64])
        object.__setattr__(self, "user_agent", (self.user_agent or "")[:300])


@dataclass(frozen=True)
class CurrentUser:
    """The caller, resolved from a session token. Plain values only."""

    user_id: int
    player_id: str
    email: str
    display_name: str
    role: Role
    session_id: int
    totp_enabled: bool
    last_login_at: datetime | None
    last_login_ip: str | None
    previous_login_at: datetime | None
    previous_login_ip: str | None
    # True when last_seen is old enough to be written again (see TOUCH_EVERY).
    needs_touch: bool = False

    @property
    def is_staff(self) -> bool:
        return self.role.is_staff


@dataclass(frozen=True)
class SessionView:
    id: int
    device: str
    ip: str
    created_at: datetime
    last_seen_at: datetime
    current: bool


def new_token() -> str:
    return secrets.token_urlsafe(32)  # 32 bytes = 256 bits


def device_label(user_agent: str) -> str:
    if not user_agent:
        return "Unknown device"
    ua = parse_ua(user_agent[:300])
    browser = ua.browser.family or "Browser"
    os_name = ua.os.family or "unknown OS"
    kind = "phone" if ua.is_mobile else "tablet" if ua.is_tablet else "computer"
    return f"{browser} on {os_name} ({kind})"[:100]


def create(session: Session, user: User, ctx: RequestContext) -> str:
    """Open a new session for ``user``; returns the token (shown to nobody but the browser)."""
    s = get_settings()
    now = utcnow()
    token = new_token()
    session.add(UserSession(  # token_hash first: the sealed ip is bound to it
        token_hash=token_hash(token), user_id=user.id, created_at=now, last_seen_at=now,
        absolute_expires_at=now + timedelta(days=s.session_absolute_days),
        ip=ctx.ip[:64], user_agent=ctx.user_agent[:300], device=device_label(ctx.user_agent),
    ))
    session.flush()
    return token


def _is_live(revoked_at: datetime | None, expires_at: datetime, last_seen_at: datetime,
             now: datetime) -> bool:
    idle = timedelta(minutes=get_settings().session_idle_minutes)
    return revoked_at is None and now < expires_at and now - last_seen_at <= idle


def _live(row: Any, now: datetime) -> bool:
    return _is_live(row.revoked_at, row.absolute_expires_at, row.last_seen_at, now)


# One query for the check every authenticated event makes: the session and its user,
# only the columns a CurrentUser needs (no ORM objects: read fresh every time).
_LOOKUP = (
    select(UserSession.id, UserSession.revoked_at, UserSession.absolute_expires_at,
           UserSession.last_seen_at, User.id.label("user_id"), User.player_id,
           User.email_enc, User.display_name_enc, User.role,
           User.totp_secret_enc.is_not(None).label("totp"), User.last_login_at,
           User.last_login_ip_enc, User.previous_login_at, User.previous_login_ip_enc)
    .join(User, User.id == UserSession.user_id)
    .where(UserSession.token_hash == bindparam("token_hash")))


# The same lookup for the raw reader (core.db.RawReader): every websocket event of a
# signed-in tab makes it, so it skips the ORM. One text per parameter style.
_RAW_LOOKUP_PG = (
    "SELECT s.id, s.revoked_at, s.absolute_expires_at, s.last_seen_at, u.id, u.player_id,"
    " u.email_enc, u.display_name_enc, u.role, u.totp_secret_enc IS NOT NULL,"
    " u.last_login_at, u.last_login_ip_enc, u.previous_login_at, u.previous_login_ip_enc"
    " FROM user_sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = %s")
_RAW_LOOKUP = {"%s": _RAW_LOOKUP_PG, "?": _RAW_LOOKUP_PG.replace("%s", "?")}


def _when(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)  # SQLite keeps times as text


def _token_ok(token: str | None) -> bool:
    return bool(token) and isinstance(token, str) and len(token) <= 128


def _from_row(row: Any) -> CurrentUser | None:
    """The caller from a row of ``_LOOKUP`` or ``_RAW_LOOKUP`` (the same columns in the
    same order), or None when its session has ended. The sealed fields are opened only
    for a live session."""
    if row is None:
        return None
    (sid, revoked_at, expires_at, last_seen_at, user_id, player_id, email, name, role,
     totp, last_login_at, last_login_ip, previous_login_at, previous_login_ip) = row
    expires_at, last_seen_at = _when(expires_at), _when(last_seen_at)
    now = utcnow()
    if not _is_live(revoked_at, expires_at, last_seen_at, now):
        return None
    return CurrentUser(
        user_id=user_id, player_id=player_id, email=User.email.open_for(email, player_id),
        display_name=User.display_name.open_for(name, player_id),
        role=Role(role), session_id=sid, totp_enabled=bool(totp),
        last_login_at=_when(last_login_at),
        last_login_ip=User.last_login_ip.open_for(last_login_ip, player_id),
        previous_login_at=_when(previous_login_at),
        previous_login_ip=User.previous_login_ip.open_for(previous_login_ip, player_id),
        needs_touch=now - last_seen_at >= TOUCH_EVERY)


def lookup(reader: Any, token: str | None) -> CurrentUser | None:
    """``resolve`` without a unit of work: one read through ``reader`` (a
    core.db.RawReader) of what is committed now, so a session revoked, expired or
    changed a moment ago, by this process or any other, is refused or shown as it is
    now. It never writes: ``needs_touch`` says when last_seen is due (``touch``)."""
    if not _token_ok(token):
        return None
    return _from_row(reader.one(_RAW_LOOKUP[reader.param], (token_hash(token),)))


async def lookup_async(reader: Any, token: str | None) -> CurrentUser | None:
    """``lookup`` awaited in the event loop (``RawReader.one_async``)."""
    if not _token_ok(token):
        return None
    return _from_row(await reader.one_async(_RAW_LOOKUP[reader.param],
                                            (token_hash(token),)))


def resolve(session: Session, token: str | None, *, touch: bool = True) -> CurrentUser | None:
    """The user behind a live token, or None, read from the database (a revocation
    committed meanwhile is seen). Touching extends the idle timeout."""
    if not _token_ok(token):
        return None
    me = _from_row(session.execute(_LOOKUP, {"token_hash": token_hash(token)}).one_or_none())
    if me is not None and touch and me.needs_touch:
        _touch(session, me.session_id)
        me = dataclasses.replace(me, needs_touch=False)
    return me


def touch(session: Session, session_id: int) -> None:
    """Extend the idle timeout (only a session that is still live)."""
    _touch(session, session_id)


def _touch(session: Session, session_id: int) -> None:  # resolve() has a ``touch`` flag
    touch_many(session, {session_id: utcnow()})


_sessions = UserSession.__table__
_TOUCH_AT = (update(_sessions)  # the table's: an executemany, not the ORM's bulk update
             .where(_sessions.c.id == bindparam("sid"), _sessions.c.revoked_at.is_(None),
                    _sessions.c.last_seen_at < bindparam("at"))
             .values(last_seen_at=bindparam("at")))


def touch_many(session: Session, used: dict[int, datetime]) -> None:
    """Write each session's last use (session id -> when), in one executemany: only live
    sessions, and never back in time (another process may have written a later use)."""
    if used:
        session.execute(_TOUCH_AT, [{"sid": sid, "at": at}
                                    for sid, at in sorted(used.items())])


def revoke(session: Session, user_id: int, session_id: int, reason: str) -> bool:
    result = session.execute(
        update(UserSession)
        .where(UserSession.id == session_id, UserSession.user_id == user_id,
               UserSession.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason[:50]))
    return bool(result.rowcount)


def revoke_all(session: Session, user_id: int, reason: str, *,
               except_session_id: int | None = None) -> int:
    q = (update(UserSession)
         .where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None)))
    if except_session_id is not None:
        q = q.where(UserSession.id != except_session_id)
    return session.execute(q.values(revoked_at=utcnow(), revoked_reason=reason[:50])).rowcount


def rotate(session: Session, current: CurrentUser, ctx: RequestContext) -> str:
    """Replace the caller's session with a fresh token (after a privilege change)."""
    revoke(session, current.user_id, current.session_id, "rotated")
    user = session.get(User, current.user_id)
    if user is None:
        raise RuntimeError(f"session of user {current.user_id}, who does not exist")
    return create(session, user, ctx)


def list_live(session: Session, user_id: int, current_session_id: int | None = None
              ) -> list[SessionView]:
    now = utcnow()
    rows = session.execute(select(UserSession).where(
        UserSession.user_id == user_id, UserSession.revoked_at.is_(None))
        .order_by(UserSession.last_seen_at.desc())).scalars()
    return [SessionView(r.id, r.device, r.ip, r.created_at, r.last_seen_at,
                        r.id == current_session_id) for r in rows if _live(r, now)]
