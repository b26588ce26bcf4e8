"""Housekeeping over the identity database: expired-row cleanup. (Key rotation covers
both databases: ``security/sealed.py``.)"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete

from casino_app.core.clock import utcnow
from casino_app.core.db import identity_tx
from casino_app.users.models import (
    ActionToken,
    LoginAttempt,
    MfaChallenge,
    PendingRegistration,
    RiskEvent,
    UserSession,
    WithdrawalLock,
)


def purge_expired(keep_days: int = 90) -> dict[str, int]:
    """Delete sessions, challenges and tokens long past use, old login attempts, risk
    signals and withdrawal locks long over, and sign-ups whose link has expired."""
    cutoff = utcnow() - timedelta(days=keep_days)
    now = utcnow()
    with identity_tx() as s:
        out = {
            "sessions": s.execute(delete(UserSession).where(
                UserSession.absolute_expires_at < cutoff)).rowcount,
            "mfa_challenges": s.execute(delete(MfaChallenge).where(
                MfaChallenge.expires_at < now - timedelta(days=1))).rowcount,
            "action_tokens": s.execute(delete(ActionToken).where(
                ActionToken.expires_at < cutoff)).rowcount,
            "login_attempts": s.execute(delete(LoginAttempt).where(
                LoginAttempt.at < cutoff)).rowcount,
            "risk_events": s.execute(delete(RiskEvent).where(
                RiskEvent.expires_at < cutoff)).rowcount,
            "withdrawal_locks": s.execute(delete(WithdrawalLock).where(
                WithdrawalLock.until < cutoff)).rowcount,
            # personal data of someone who never finished signing up: gone once expired
            "pending_registrations": s.execute(delete(PendingRegistration).where(
                PendingRegistration.expires_at <= now)).rowcount,
        }
    return out
