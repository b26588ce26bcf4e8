"""Account risk and withdrawal locks: the signals that an account may be in someone
else's hands, and what they do to withdrawals.

Signals (``risk_events``, each worth points for CASINO_RISK_WINDOW_HOURS):

- ``new_device`` / ``new_network`` (1 point each): a sign-in from a device (browser and
  system, as the sessions page names it) or a network (IPv4 /24, IPv6 /48) none of the
  account's last sessions used;
- ``second_factor_failures`` (3): CASINO_RISK_FACTOR_FAILURES wrong second factors
  (password or code, confirming a withdrawal or an allow-list change) within an hour;
- ``reset_then_withdrawal`` (3): a withdrawal tried within the window after a password
  reset (whoever reset it may have taken the mailbox too).

Responses, by the points that count: from CASINO_RISK_STEP_UP the second factor is asked
again in a stronger form (the password alone no longer confirms a withdrawal or an
allow-list change: the authenticator's code or the mailed link does, and answering one
settles the signals); from CASINO_RISK_HOLD a temporary hold: withdrawals are locked for
CASINO_RISK_HOLD_HOURS, staff are alerted by a ``risk.hold`` audit row (the audit page,
the player's page) and a ``risk_hold`` line in the security log, and the signals are
settled by the hold. An admin may lift a lock early from the player's staff page
(users/staff_money.py, audited).

Withdrawal locks (``withdrawal_locks``) also follow every password change or reset and
every 2FA change, for CASINO_WITHDRAW_LOCK_HOURS (users/accounts.py).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from casino_app.core.clock import utcnow
from casino_app.core.logging import get_logger, security_logger
from casino_app.core.settings import get_settings
from casino_app.security.audit import SYSTEM, AuditAction, record
from casino_app.users.models import RiskEvent, User, UserSession, WithdrawalLock
from casino_app.users.sessions import RequestContext, device_label

log = get_logger("casino.users.risk")

POINTS = {"new_device": 1, "new_network": 1, "second_factor_failures": 3,
          "reset_then_withdrawal": 3, "second_factor_failed": 0}
LOCK_REASONS = {
    "password_changed": "your password was changed",
    "password_reset": "your password was reset",
    "2fa_enabled": "two-factor authentication was turned on or replaced",
    "2fa_disabled": "two-factor authentication was turned off",
    "risk": "unusual activity on your account is being checked by our staff",
}
KNOWN_SESSIONS = 50


@dataclass(frozen=True)
class Lock:
    until: datetime
    reason: str
    id: int = 0
    created_at: datetime | None = None
    lifted_at: datetime | None = None
    lifted_by: int | None = None

    @property
    def text(self) -> str:
        return (f"Withdrawals are locked until {self.until:%Y-%m-%d %H:%M} UTC because "
                f"{LOCK_REASONS.get(self.reason, self.reason)}.")


def network_of(ip: str) -> str:
    """The network an address belongs to, for "new network": IPv4 /24, IPv6 /48."""
    try:
        addr = ipaddress.ip_address(ip.strip())
    except ValueError:
        return ip.strip()[:64]
    prefix = 24 if addr.version == 4 else 48
    return str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False))


# --- locks --------------------------------------------------------------------------------

def lock_withdrawals(s: Session, user_id: int, reason: str, hours: float) -> datetime | None:
    """Lock the account's withdrawals for ``hours`` (none when 0); returns until when."""
    if hours <= 0:
        return None
    now = utcnow()
    until = now + timedelta(hours=hours)
    s.add(WithdrawalLock(user_id=user_id, reason=reason, created_at=now, until=until))
    s.flush()
    return until


def _lock(r: WithdrawalLock) -> Lock:
    return Lock(r.until, r.reason, r.id, r.created_at, r.lifted_at, r.lifted_by)


def active_lock(s: Session, user_id: int) -> Lock | None:
    """The lock that ends last among those in force (not lifted), or None."""
    row = s.execute(select(WithdrawalLock).where(
        WithdrawalLock.user_id == user_id, WithdrawalLock.until > utcnow(),
        WithdrawalLock.lifted_at.is_(None))
        .order_by(WithdrawalLock.until.desc()).limit(1)).scalar_one_or_none()
    return _lock(row) if row is not None else None


def locks_of(s: Session, user_id: int, limit: int = 10) -> list[Lock]:
    """The account's withdrawal locks, newest first (for staff)."""
    rows = s.execute(select(WithdrawalLock).where(WithdrawalLock.user_id == user_id)
                     .order_by(WithdrawalLock.id.desc()).limit(limit)).scalars()
    return [_lock(r) for r in rows]


def lift(s: Session, user_id: int, lock_id: int, staff_user_id: int) -> Lock | None:
    """Lift a lock in force early (row locked); None when there is no such lock in force."""
    row = s.execute(select(WithdrawalLock).where(
        WithdrawalLock.id == lock_id, WithdrawalLock.user_id == user_id).with_for_update()
        .execution_options(populate_existing=True)).scalar_one_or_none()
    if row is None or row.lifted_at is not None or row.until <= utcnow():
        return None
    row.lifted_at, row.lifted_by = utcnow(), staff_user_id
    s.flush()
    return _lock(row)


# --- signals ------------------------------------------------------------------------------

def score(s: Session, user_id: int) -> int:
    return s.execute(select(func.coalesce(func.sum(RiskEvent.points), 0)).where(
        RiskEvent.user_id == user_id, RiskEvent.resolved_at.is_(None),
        RiskEvent.expires_at > utcnow())).scalar_one()


def step_up(s: Session, user_id: int) -> bool:
    """The password alone no longer confirms a withdrawal (a stronger factor is asked)."""
    return score(s, user_id) >= get_settings().risk_step_up


def settle(s: Session, user_id: int) -> None:
    """A strong second factor was answered: the signals so far are settled."""
    s.execute(update(RiskEvent).where(RiskEvent.user_id == user_id,
                                      RiskEvent.resolved_at.is_(None),
                                      RiskEvent.points > 0).values(resolved_at=utcnow()))


def signal(s: Session, user: User, kind: str, detail: str = "") -> bool:
    """Record a signal; place a hold when the points reach CASINO_RISK_HOLD. True when
    a hold was placed."""
    st = get_settings()
    now = utcnow()
    s.add(RiskEvent(user_id=user.id, kind=kind, points=POINTS[kind], detail=detail[:200],
                    at=now, expires_at=now + timedelta(hours=st.risk_window_hours)))
    s.flush()
    if POINTS[kind] == 0:
        return False
    points = score(s, user.id)
    security_logger().info("risk_signal", user_id=user.id, signal=kind, score=points)
    if points < st.risk_hold:
        return False
    kinds = sorted(set(s.execute(select(RiskEvent.kind).where(
        RiskEvent.user_id == user.id, RiskEvent.resolved_at.is_(None), RiskEvent.points > 0,
        RiskEvent.expires_at > now)).scalars()))
    until = lock_withdrawals(s, user.id, "risk", st.risk_hold_hours)
    settle(s, user.id)
    record(s, AuditAction.risk_hold, SYSTEM, user.id, signals=kinds, score=points,
           until=until.isoformat() if until else None)
    security_logger().warning("risk_hold", user_id=user.id, signals=kinds, score=points,
                              until=until.isoformat() if until else None)
    return True


def second_factor_failed(s: Session, user: User) -> bool:
    """Count a wrong second factor; past CASINO_RISK_FACTOR_FAILURES within an hour it is
    a signal. True when a hold was placed."""
    signal(s, user, "second_factor_failed")
    since = utcnow() - timedelta(hours=1)
    failures = s.execute(select(func.count()).select_from(RiskEvent).where(
        RiskEvent.user_id == user.id, RiskEvent.kind == "second_factor_failed",
        RiskEvent.at > since, RiskEvent.resolved_at.is_(None))).scalar_one()
    if failures < get_settings().risk_factor_failures:
        return False
    s.execute(update(RiskEvent).where(  # counted: the next signal needs as many again
        RiskEvent.user_id == user.id, RiskEvent.kind == "second_factor_failed",
        RiskEvent.resolved_at.is_(None)).values(resolved_at=utcnow()))
    return signal(s, user, "second_factor_failures", f"{failures} in an hour")


def withdrawal_after_reset(s: Session, user: User) -> bool:
    """A withdrawal is tried: within the window after a password reset that is a signal
    (once per reset). True when a hold was placed."""
    since = utcnow() - timedelta(hours=get_settings().risk_window_hours)
    reset_at = s.execute(select(func.max(WithdrawalLock.created_at)).where(
        WithdrawalLock.user_id == user.id, WithdrawalLock.reason == "password_reset",
        WithdrawalLock.created_at > since)).scalar_one()
    if reset_at is None:
        return False
    told = s.execute(select(RiskEvent.id).where(
        RiskEvent.user_id == user.id, RiskEvent.kind == "reset_then_withdrawal",
        RiskEvent.at >= reset_at).limit(1)).first()
    if told is not None:
        return False
    return signal(s, user, "reset_then_withdrawal")


def on_sign_in(s: Session, user: User, ctx: RequestContext) -> list[str]:
    """Before a sign-in's session is created: a device or network none of the account's
    last sessions used is a signal. An account with no session yet has nothing to
    compare with. Returns the signals raised."""
    rows = s.execute(select(UserSession).where(UserSession.user_id == user.id)
                     .order_by(UserSession.id.desc()).limit(KNOWN_SESSIONS)).scalars().all()
    if not rows:
        return []
    raised = []
    device = device_label(ctx.user_agent)
    if device not in {r.device for r in rows}:
        raised.append("new_device")
    networks = set()
    for r in rows:
        try:
            networks.add(network_of(r.ip))
        except Exception:  # noqa: BLE001, S112 - a value sealed under a retired key: not known
            continue
    if network_of(ctx.ip) not in networks:
        raised.append("new_network")
    # Sign-in signals do not stack: one of each kind counts until settled or expired, so
    # a player who travels is asked for a stronger factor, never held for it alone.
    standing = set(s.execute(select(RiskEvent.kind).where(
        RiskEvent.user_id == user.id, RiskEvent.resolved_at.is_(None),
        RiskEvent.expires_at > utcnow(), RiskEvent.kind.in_(raised))).scalars())
    for kind in raised:
        if kind not in standing:
            signal(s, user, kind, device if kind == "new_device" else "")
    return raised
