"""The sim's state folder: its keys and secrets, created on the first start and reused.

- ``hub88_private.pem`` / ``hub88_public.pem``: the aggregator's RSA 2048 key pair;
- ``bgaming_secret``: the shared auth token (32 random bytes as hex), the HMAC key;
- ``casino_id``: the operator id the casino must send (a decimal number, so it is a valid
  Hub88 ``operator_id`` and BGaming ``casino_id`` alike);
- ``casino_public.pem``: written by the casino, read at each request (it may come later).
"""

from __future__ import annotations

import os
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

HUB88_PRIVATE = "hub88_private.pem"
HUB88_PUBLIC = "hub88_public.pem"
BGAMING_SECRET = "bgaming_secret"  # noqa: S105 - the file's name, not a secret
CASINO_ID = "casino_id"
CASINO_PUBLIC = "casino_public.pem"


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


@dataclass
class SimState:
    folder: Path
    hub88_key: rsa.RSAPrivateKey
    bgaming_secret: str
    casino_id: str
    _casino_key: tuple[float, rsa.RSAPublicKey | None] | None = field(default=None,
                                                                       repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def hub88_public_file(self) -> Path:
        return self.folder / HUB88_PUBLIC

    @property
    def bgaming_secret_file(self) -> Path:
        return self.folder / BGAMING_SECRET

    def casino_public_key(self) -> rsa.RSAPublicKey | None:
        """The casino's public key, read again whenever the file changes; None while the
        casino has not written it (or it is not an RSA public key)."""
        path = self.folder / CASINO_PUBLIC
        try:
            mtime = path.stat().st_mtime_ns
        except FileNotFoundError:
            return None
        with self._lock:
            if self._casino_key is not None and self._casino_key[0] == mtime:
                return self._casino_key[1]
            try:
                key = serialization.load_pem_public_key(path.read_bytes())
            except (ValueError, OSError):
                key = None
            if not isinstance(key, rsa.RSAPublicKey):
                key = None
            self._casino_key = (mtime, key)
            return key


def load_or_create(folder: Path) -> SimState:
    """Open the state folder, creating what is missing."""
    folder.mkdir(parents=True, exist_ok=True)
    private = folder / HUB88_PRIVATE
    if not private.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _write_private(private, key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        (folder / HUB88_PUBLIC).write_bytes(key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    loaded = serialization.load_pem_private_key(private.read_bytes(), password=None)
    if not isinstance(loaded, rsa.RSAPrivateKey):
        raise ValueError(f"{private} is not an RSA private key")
    if not (folder / HUB88_PUBLIC).exists():
        (folder / HUB88_PUBLIC).write_bytes(loaded.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    secret_file = folder / BGAMING_SECRET
    if not secret_file.exists():
        _write_private(secret_file, secrets.token_hex(32).encode())
    secret = secret_file.read_text().strip()
    if not secret:
        raise ValueError(f"{secret_file} is empty")
    id_file = folder / CASINO_ID
    if not id_file.exists():
        id_file.write_text(str(100000 + secrets.randbelow(900000)))
    casino_id = id_file.read_text().strip()
    if not casino_id:
        raise ValueError(f"{id_file} is empty")
    return SimState(folder, loaded, secret, casino_id)
