"""The hot wallet's seed sealed with a passphrase (``casino keys seal-seed``).

A sealed seed is one line of JSON::

    {"format": "hashhouse-sealed-seed/1", "kdf": "scrypt", "n": 131072, "r": 8, "p": 1,
     "salt": "<base64>", "nonce": "<base64>", "ciphertext": "<base64>"}

The key is scrypt(passphrase, salt, n, r, p) (128 MiB and about half a second at the
default cost: a guesser pays that for every try); the mnemonic is sealed with AES-256-GCM
under it, with the format and KDF parameters as associated data, so a file whose
parameters were edited does not open. The passphrase comes from
``CASINO_SEED_PASSPHRASE_FILE`` (a file: a systemd credential, ``/dev/fd/3``), else
``CASINO_SEED_PASSPHRASE``, else the terminal when there is one.
"""

from __future__ import annotations

import base64
import getpass
import json
import secrets
import sys
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from casino_app.core.settings import ConfigError, get_settings

FORMAT = "hashhouse-sealed-seed/1"
DEFAULT_COST = 2 ** 17
MIN_COST, MAX_COST = 2 ** 14, 2 ** 20  # below: too cheap to guess at; above: 1 GiB
MIN_PASSPHRASE = 12


class SealedSeedError(ValueError):
    """The sealed seed does not open (wrong passphrase, damaged or unknown file); the
    message names no part of the seed."""


def is_sealed(text: str) -> bool:
    return text.lstrip().startswith("{")


def _aad(n: int, r: int, p: int) -> bytes:
    return f"{FORMAT}|scrypt|{n}|{r}|{p}".encode()


def _key(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode())


def seal(words: str, passphrase: str, *, cost: int = DEFAULT_COST) -> str:
    """The sealed form of ``words`` (checked by the caller) under ``passphrase``."""
    if len(passphrase) < MIN_PASSPHRASE:
        raise SealedSeedError(f"the passphrase must have at least {MIN_PASSPHRASE} "
                              "characters")
    if cost & (cost - 1) or not MIN_COST <= cost <= MAX_COST:
        raise SealedSeedError(f"the scrypt cost must be a power of two from {MIN_COST} to "
                              f"{MAX_COST}")
    r, p = 8, 1
    salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
    ct = AESGCM(_key(passphrase, salt, cost, r, p)).encrypt(nonce, words.encode(),
                                                            _aad(cost, r, p))
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return json.dumps({"format": FORMAT, "kdf": "scrypt", "n": cost, "r": r, "p": p,
                       "salt": b64(salt), "nonce": b64(nonce), "ciphertext": b64(ct)}) + "\n"


def open_sealed(text: str, passphrase: str) -> str:
    """The mnemonic sealed in ``text``; SealedSeedError when it does not open."""
    try:
        doc: Any = json.loads(text)
        if not isinstance(doc, dict) or doc.get("format") != FORMAT \
                or doc.get("kdf") != "scrypt":
            raise SealedSeedError("not a sealed seed this version reads "
                                  f"(expected format {FORMAT!r})")
        n, r, p = int(doc["n"]), int(doc["r"]), int(doc["p"])
        salt, nonce, ct = (base64.b64decode(doc[k], validate=True)
                           for k in ("salt", "nonce", "ciphertext"))
    except SealedSeedError:
        raise
    except (ValueError, KeyError, TypeError):
        raise SealedSeedError("the sealed seed is damaged (not the JSON that "
                              "`casino keys seal-seed` writes)") from None
    if n & (n - 1) or not MIN_COST <= n <= MAX_COST or not (1 <= r <= 32 and 1 <= p <= 16) \
            or len(nonce) != 12 or len(salt) < 16:
        raise SealedSeedError("the sealed seed's parameters are out of range (damaged?)")
    try:
        plain = AESGCM(_key(passphrase, salt, n, r, p)).decrypt(nonce, ct, _aad(n, r, p))
    except InvalidTag:
        raise SealedSeedError("the passphrase does not open this sealed seed (a wrong "
                              "passphrase, or a damaged file)") from None
    return plain.decode()


def passphrase(*, confirm: bool = False) -> str:
    """The passphrase from the settings, or typed at the terminal (twice with
    ``confirm``). ConfigError when there is no source."""
    st = get_settings()
    if st.seed_passphrase_file is not None:
        try:
            with open(st.seed_passphrase_file, encoding="utf-8") as fh:  # noqa: PTH123 (fd paths)
                value = fh.read()
        except OSError as exc:
            raise ConfigError(f"CASINO_SEED_PASSPHRASE_FILE: cannot read "
                              f"{st.seed_passphrase_file}: {exc.strerror or exc}") from None
        value = value.removesuffix("\n").removesuffix("\r")
        if not value:
            raise ConfigError("CASINO_SEED_PASSPHRASE_FILE: the file is empty")
        return value
    if st.seed_passphrase:
        return st.seed_passphrase
    if sys.stdin is not None and sys.stdin.isatty():
        first = getpass.getpass("Hot wallet seed passphrase: ")
        if confirm and getpass.getpass("The same passphrase again: ") != first:
            raise ConfigError("the two passphrases differ")
        return first
    raise ConfigError("the hot wallet seed is sealed: give its passphrase with "
                      "CASINO_SEED_PASSPHRASE_FILE (preferred) or CASINO_SEED_PASSPHRASE, "
                      "or start the signer at a terminal")
