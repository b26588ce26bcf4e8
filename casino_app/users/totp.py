"""TOTP two-factor authentication (RFC 6238 through pyotp) and recovery codes.

A code is accepted at most once: the highest accepted time step is stored, and a code
from that step or an earlier one is refused. One step of clock drift either way is
allowed. Secrets are stored AES-GCM encrypted, recovery codes only as SHA-256 hashes.
"""

from __future__ import annotations

import io
import secrets
from dataclasses import dataclass

import pyotp
import segno
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from casino_app.core.clock import utcnow
from casino_app.security.crypto import keyring, token_hash
from casino_app.users.models import RecoveryCode, User

ISSUER = "HashHouse"
STEP = 30
DRIFT_STEPS = 1
RECOVERY_CODE_COUNT = 10
_RECOVERY_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I


@dataclass(frozen=True)
class Enrolment:
    secret: str
    uri: str
    qr_svg_data_uri: str


def _ctx(user_id: int, pending: bool = False) -> str:
    return f"totp{'-pending' if pending else ''}:{user_id}"


def secret_of(user: User) -> str | None:
    if user.totp_secret_enc is None:
        return None
    return keyring().open(user.totp_secret_enc, _ctx(user.id)).decode()


def start_enrolment(user: User) -> Enrolment:
    """Create a pending secret; it becomes active only when a code confirms it."""
    secret = pyotp.random_base32(length=32)
    user.totp_pending_enc = keyring().seal(secret.encode(), _ctx(user.id, pending=True))
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)
    buf = io.BytesIO()
    segno.make(uri, error="m").save(buf, kind="svg", scale=5, border=2, dark="#111111")
    import base64

    data_uri = "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode()
    return Enrolment(secret, uri, data_uri)


def matching_step(secret: str, code: str, at_time: float) -> int | None:
    """The time step (within drift) whose code equals ``code``, newest first."""
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    now_step = int(at_time // STEP)
    for step in (now_step, now_step - 1, now_step + 1)[: 1 + 2 * DRIFT_STEPS]:
        if secrets.compare_digest(totp.at(step * STEP), code):
            return step
    return None


def check_code(user: User, code: str) -> bool:
    """Accept a current code once; records its step so a replay is refused."""
    secret = secret_of(user)
    if secret is None:
        return False
    step = matching_step(secret, code, utcnow_ts())
    if step is None or (user.totp_last_step is not None and step <= user.totp_last_step):
        return False
    user.totp_last_step = step
    return True


def confirm_enrolment(session: Session, user: User, code: str) -> list[str] | None:
    """Activate the pending secret if ``code`` matches it; returns new recovery codes."""
    if user.totp_pending_enc is None:
        return None
    secret = keyring().open(user.totp_pending_enc, _ctx(user.id, pending=True)).decode()
    step = matching_step(secret, code, utcnow_ts())
    if step is None:
        return None
    user.totp_secret_enc = keyring().seal(secret.encode(), _ctx(user.id))
    user.totp_pending_enc = None
    user.totp_enabled_at = utcnow()
    user.totp_last_step = step
    return new_recovery_codes(session, user)


def disable(session: Session, user: User) -> None:
    user.totp_secret_enc = None
    user.totp_pending_enc = None
    user.totp_enabled_at = None
    user.totp_last_step = None
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))


def _recovery_code() -> str:
    raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(16))  # 80 bits
    return "-".join(raw[i:i + 4] for i in range(0, 16, 4))


def _normalise(code: str) -> str:
    return code.replace("-", "").replace(" ", "").upper()


def new_recovery_codes(session: Session, user: User) -> list[str]:
    """Replace all recovery codes; the plain codes are returned once and never stored."""
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = [_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
    for c in codes:
        session.add(RecoveryCode(user_id=user.id, code_hash=token_hash(_normalise(c))))
    session.flush()
    return codes


def use_recovery_code(session: Session, user: User, code: str) -> int | None:
    """Spend an unused recovery code; its row id, None when it does not match."""
    row = session.execute(select(RecoveryCode).where(
        RecoveryCode.user_id == user.id,
        RecoveryCode.code_hash == token_hash(_normalise(code)),
        RecoveryCode.used_at.is_(None))).scalar_one_or_none()
    if row is None:
        return None
    row.used_at = utcnow()
    return row.id


def check_code_or_recovery(session: Session, user: User, code: str) -> str | int | None:
    """'totp' when a current code is accepted, the recovery code's row id when a
    recovery code is, else None."""
    if len(code) == 6 and code.isdigit():
        return "totp" if check_code(user, code) else None
    return use_recovery_code(session, user, code)


def recovery_codes_left(session: Session, user_id: int) -> int:
    return len(session.execute(select(RecoveryCode.id).where(
        RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))).all())




def utcnow_ts() -> float:
    from datetime import UTC

    return utcnow().replace(tzinfo=UTC).timestamp()
