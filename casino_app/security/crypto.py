"""Encryption at rest: AES-256-GCM under a keyring from settings, with key rotation.

A sealed value is ``b"\\x01" | len(key_id) | key_id | nonce(12) | ciphertext+tag``.
The key id says which key opens it, so old values stay readable after a new key is put
first in ``CASINO_ENCRYPTION_KEYS``; ``casino keys rotate`` re-seals them under the new one.
Every value is bound to its context (associated data such as ``totp:42``) so a sealed
value copied to another row or purpose does not open.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from casino_app.core.settings import get_settings

_VERSION = 1


class DecryptionError(Exception):
    """The value is corrupt, was sealed for another context, or its key is gone."""


class Keyring:
    def __init__(self, keys: list[tuple[str, bytes]]):
        if not keys:
            raise ValueError("a keyring needs at least one key")
        self.active_id = keys[0][0]
        self._keys = dict(keys)

    def seal(self, plaintext: bytes, context: str) -> bytes:
        kid = self.active_id.encode()
        nonce = secrets.token_bytes(12)
        ct = AESGCM(self._keys[self.active_id]).encrypt(nonce, plaintext, context.encode())
        return bytes([_VERSION, len(kid)]) + kid + nonce + ct

    def open(self, blob: bytes, context: str) -> bytes:
        if len(blob) < 2 or blob[0] != _VERSION:
            raise DecryptionError("unknown format")
        kid = blob[2:2 + blob[1]].decode(errors="replace")
        key = self._keys.get(kid)
        if key is None:
            raise DecryptionError(f"key {kid!r} is not in the keyring")
        rest = blob[2 + blob[1]:]
        try:
            return AESGCM(key).decrypt(rest[:12], rest[12:], context.encode())
        except InvalidTag:
            raise DecryptionError("authentication failed") from None

    def key_id_of(self, blob: bytes) -> str:
        return blob[2:2 + blob[1]].decode(errors="replace")

    def needs_rotation(self, blob: bytes) -> bool:
        return self.key_id_of(blob) != self.active_id

    def reseal(self, blob: bytes, context: str) -> bytes:
        return self.seal(self.open(blob, context), context)


def keyring() -> Keyring:
    return Keyring(get_settings().keyring)


def token_hash(token: str) -> str:
    """Hash for high-entropy tokens (sessions, mailed links, recovery codes)."""
    return hashlib.sha256(token.encode()).hexdigest()


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
