"""Encryption at rest: AES-256-GCM under a keyring from settings, with key rotation.

A sealed value is ``b"\\x01" | len(key_id) | key_id | nonce(12) | ciphertext+tag``.
The key id says which key opens it, so old values stay readable after a new key is put
first in ``CASINO_ENCRYPTION_KEYS``; ``casino keys rotate`` re-seals them under the new one.
Every value is bound to its context (associated data such as ``totp:42``) so a sealed
value copied to another row or purpose does not open.

``blind_index`` is the keyed lookup for a sealed value that is searched by equality (an
email): HMAC-SHA256 of the normalised value under a key that is itself sealed in the
identity database (``security/sealed.py``), so it outlives key rotations.
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
        self._keys = {kid: AESGCM(key) for kid, key in keys}

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def seal(self, plaintext: bytes, context: str) -> bytes:
        kid = self.active_id.encode()
        nonce = secrets.token_bytes(12)
        ct = self._keys[self.active_id].encrypt(nonce, plaintext, context.encode())
        return bytes([_VERSION, len(kid)]) + kid + nonce + ct

    def open(self, blob: bytes, context: str) -> bytes:
        if not isinstance(blob, bytes | bytearray | memoryview):
            raise DecryptionError("not a sealed value")
        blob = bytes(blob)
        if len(blob) < 2 or blob[0] != _VERSION or len(blob) < 2 + blob[1] + 12 + 16:
            raise DecryptionError("unknown format or truncated value")
        kid = blob[2:2 + blob[1]].decode(errors="replace")
        key = self._keys.get(kid)
        if key is None:
            raise DecryptionError(f"key {kid!r} is not in the keyring")
        rest = blob[2 + blob[1]:]
        try:
            return key.decrypt(rest[:12], rest[12:], context.encode())
        except InvalidTag:
            raise DecryptionError(f"authentication failed (wrong key {kid!r}, a damaged "
                                  "value, or a value sealed for another row)") from None

    def key_id_of(self, blob: bytes) -> str:
        blob = bytes(blob)
        return blob[2:2 + blob[1]].decode(errors="replace")

    def needs_rotation(self, blob: bytes) -> bool:
        return self.key_id_of(blob) != self.active_id

    def reseal(self, blob: bytes, context: str) -> bytes:
        return self.seal(self.open(blob, context), context)


_cached: tuple[object, Keyring] | None = None


def keyring() -> Keyring:
    """The keyring of the current settings (built once per settings object)."""
    global _cached
    settings = get_settings()
    cached = _cached
    if cached is not None and cached[0] is settings:
        return cached[1]
    ring = Keyring(settings.keyring)
    _cached = (settings, ring)
    return ring


def normalise_email(value: str) -> str:
    """The form an email is indexed under: trimmed, lower-case (as validation keeps it)."""
    return value.strip().lower()


def blind_index(key: bytes, value: str) -> str:
    """HMAC-SHA256 (hex) of ``value`` under ``key``: equal inputs give equal indexes, and
    without the key the index says nothing about the value."""
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def token_hash(token: str) -> str:
    """Hash for high-entropy tokens (sessions, mailed links, recovery codes)."""
    return hashlib.sha256(token.encode()).hexdigest()


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
