"""The two dialects' signatures, over the exact raw body.

Hub88: ``X-Hub88-Signature`` = base64 of RSA-SHA256 (PKCS#1 v1.5).
BGaming: ``X-REQUEST-SIGN`` = lowercase hex HMAC-SHA256, keyed with the auth token's text.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

HUB88_HEADER = "X-Hub88-Signature"
BGAMING_HEADER = "X-REQUEST-SIGN"


def rsa_sign(key: rsa.RSAPrivateKey, body: bytes) -> str:
    return base64.b64encode(key.sign(body, padding.PKCS1v15(), hashes.SHA256())).decode()


def rsa_verify(key: rsa.RSAPublicKey | None, body: bytes, signature: str | None) -> bool:
    if key is None or not signature:
        return False
    try:
        raw = base64.b64decode(signature, validate=True)
        key.verify(raw, body, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def hmac_sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def hmac_verify(secret: str, body: bytes, signature: str | None) -> bool:
    if not signature:
        return False
    return hmac.compare_digest(hmac_sign(secret, body), signature.strip().lower())


def spoiled(signature: str) -> str:
    """The same signature with its first byte changed: the "bad-signature" misbehaviour.
    Same length and encoding, so only a real check notices."""
    if len(signature) == 64 and all(c in "0123456789abcdef" for c in signature):
        return ("1" if signature[0] == "0" else "0") + signature[1:]
    raw = bytearray(base64.b64decode(signature))
    raw[0] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()
