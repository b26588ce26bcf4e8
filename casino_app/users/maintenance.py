"""Housekeeping over the identity database: key rotation, expired-row cleanup."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, select

from casino_app.core.clock import utcnow
from casino_app.core.db import identity_tx
from casino_app.security.audit import SYSTEM, AuditAction, record
from casino_app.security.crypto import keyring
from casino_app.users.models import (
    ActionToken,
    LoginAttempt,
    MfaChallenge,
    PendingRegistration,
    User,
    UserSession,
)


def rotate_encryption(batch: int = 500) -> int:
    """Re-seal every encrypted value whose key is not the active one; returns the count."""
    ring = keyring()
    done = 0
    last_id = 0
    while True:
        with identity_tx() as s:
            users = s.execute(select(User).where(User.id > last_id).order_by(User.id)
                              .limit(batch).with_for_update()).scalars().all()
            if not users:
                break
            for u in users:
                last_id = u.id
                if u.totp_secret_enc and ring.needs_rotation(u.totp_secret_enc):
                    u.totp_secret_enc = ring.reseal(u.totp_secret_enc, f"totp:{u.id}")
                    done += 1
                if u.totp_pending_enc and ring.needs_rotation(u.totp_pending_enc):
                    u.totp_pending_enc = ring.reseal(u.totp_pending_enc,
                                                     f"totp-pending:{u.id}")
                    done += 1
    with identity_tx() as s:
        record(s, AuditAction.keys_rotated, SYSTEM, None, values=done, key_id=ring.active_id)
    return done


def purge_expired(keep_days: int = 90) -> dict[str, int]:
    """Delete sessions, challenges and tokens long past use, old login attempts, and
    sign-ups whose link has expired."""
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
            # personal data of someone who never finished signing up: gone once expired
            "pending_registrations": s.execute(delete(PendingRegistration).where(
                PendingRegistration.expires_at <= now)).rowcount,
        }
    return out
