"""Encryption at rest: AES-256-GCM bound to its purpose, and key rotation that keeps
every stored TOTP secret readable."""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from casino_app.security.crypto import DecryptionError, Keyring, keyring, token_hash
from casino_app.users import accounts
from tests.conftest import TEST_KEY
from tests.users.helpers import (
    PASSWORD,
    T0,
    audited,
    code_at,
    enable_2fa,
    new_ctx,
    reconfigure,
    register,
    rotated,
    user_row,
)


def _key(kid: str) -> tuple[str, bytes]:
    return kid, secrets.token_bytes(32)


def _spec(kid: str, key: bytes) -> str:
    return f"{kid}:{base64.b64encode(key).decode()}"


def test_a_sealed_value_opens_only_for_its_own_context() -> None:
    ring = Keyring([_key("a1")])
    blob = ring.seal(b"JBSWY3DPEHPK3PXP", "totp:1")
    assert ring.open(blob, "totp:1") == b"JBSWY3DPEHPK3PXP"
    assert b"JBSWY3DPEHPK3PXP" not in blob
    assert ring.seal(b"JBSWY3DPEHPK3PXP", "totp:1") != blob  # fresh nonce each time
    for wrong in ("totp:2", "totp-pending:1", ""):
        with pytest.raises(DecryptionError):
            ring.open(blob, wrong)


@pytest.mark.parametrize("damage", ["flip", "truncate", "version", "empty", "unknown key"])
def test_a_damaged_value_does_not_open(damage: str) -> None:
    ring = Keyring([_key("a1")])
    blob = bytearray(ring.seal(b"secret", "ctx"))
    if damage == "flip":
        blob[-1] ^= 1
    elif damage == "truncate":
        blob = blob[:-5]
    elif damage == "version":
        blob[0] = 9
    elif damage == "empty":
        blob = bytearray()
    else:
        blob = bytearray(Keyring([_key("zz")]).seal(b"secret", "ctx"))
    with pytest.raises(DecryptionError):
        ring.open(bytes(blob), "ctx")


def test_a_value_sealed_under_another_key_with_the_same_id_does_not_open() -> None:
    blob = Keyring([_key("a1")]).seal(b"secret", "ctx")
    with pytest.raises(DecryptionError):
        Keyring([_key("a1")]).open(blob, "ctx")


def test_the_first_key_encrypts_and_every_key_decrypts() -> None:
    old, new = _key("old"), _key("new")
    sealed_old = Keyring([old]).seal(b"x", "c")
    ring = Keyring([new, old])
    assert ring.active_id == "new"
    assert ring.open(sealed_old, "c") == b"x"
    assert ring.needs_rotation(sealed_old)
    resealed = ring.reseal(sealed_old, "c")
    assert ring.key_id_of(resealed) == "new" and not ring.needs_rotation(resealed)
    assert Keyring([new]).open(resealed, "c") == b"x"


def test_token_hash_is_sha256_hex() -> None:
    assert token_hash("abc") == hashlib.sha256(b"abc").hexdigest()


def test_key_rotation_keeps_every_totp_secret_readable(
        app_env: object, monkeypatch: pytest.MonkeyPatch) -> None:
    def now() -> datetime:
        return datetime.now(UTC)

    def sign_in_with_code(addr: str, secret: str) -> None:
        step = accounts.begin_login(email=addr, password=PASSWORD, ctx=new_ctx())
        accounts.complete_login_mfa(mfa_token=step.mfa_token, code=code_at(secret, now()),
                                    ctx=new_ctx())

    with time_machine.travel(T0 + timedelta(seconds=1), tick=False) as clock:
        token, addr = register()
        secret, _, _ = enable_2fa(token, when=now())
        pending_token, pending_addr = register()
        pending = accounts.start_totp(pending_token, PASSWORD, None, new_ctx())
        assert keyring().key_id_of(user_row(addr).totp_secret_enc) == "t1"

        new_key = _spec("k2", secrets.token_bytes(32))
        reconfigure(monkeypatch, ENCRYPTION_KEYS=f"{new_key},{TEST_KEY}")
        clock.shift(timedelta(seconds=30))
        sign_in_with_code(addr, secret)  # old secrets still open under the old key

        with audited({"keys.rotated": 1}):
            counts = rotated()  # one active, one pending secret
        assert counts["users.totp_secret_enc"] == 1 and counts["users.totp_pending_enc"] == 1
        assert keyring().key_id_of(user_row(addr).totp_secret_enc) == "k2"
        assert keyring().key_id_of(user_row(pending_addr).totp_pending_enc) == "k2"
        assert sum(rotated().values()) == 0

        reconfigure(monkeypatch, ENCRYPTION_KEYS=new_key)  # the old key is gone
        clock.shift(timedelta(seconds=30))
        sign_in_with_code(addr, secret)
        accounts.confirm_totp(pending_token, code_at(pending.secret, now()), new_ctx())
