"""Provably fair randomness, byte-compatible with the widely copied Stake scheme.

See ``shared/reference/FAIRNESS.md`` and ``docs/GAMES.md``. In short:

- the server seed is 32 CSPRNG bytes written as 64 lowercase hex characters; players see
  ``sha256(server_seed)`` (of the hex string's UTF-8 bytes) before they bet with it;
- ``HMAC_SHA256(key=server_seed hex string, msg=f"{client_seed}:{nonce}:{round}")`` gives
  32 bytes per round (round = 0, 1, 2, ...);
- every 4 bytes make a float ``b0/256 + b1/256**2 + b2/256**3 + b3/256**4`` in [0, 1),
  which is exactly ``uint32_big_endian / 2**32``.

Floats choose outcomes only; no float ever touches money (see ``house.py``).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import struct
from collections.abc import Iterator

SERVER_SEED_RE = re.compile(r"[0-9a-f]{64}")
CLIENT_SEED_MAX = 64
# Nonces are counters stored in a 64-bit column.
NONCE_MAX = 2**63 - 1
FLOATS_PER_ROUND = 8
_EIGHT_WORDS = struct.Struct(">8I")
_TWO_POW_MINUS_32 = 2.0**-32
_IPAD = bytes(b ^ 0x36 for b in range(256))  # byte -> byte XOR 0x36, for bytes.translate
_OPAD = bytes(b ^ 0x5C for b in range(256))


class FairnessError(ValueError):
    """A seed or nonce is malformed; the message says which and why."""


def new_server_seed() -> str:
    """32 bytes from the OS CSPRNG as 64 lowercase hex characters."""
    return secrets.token_hex(32)


def hash_server_seed(server_seed: str) -> str:
    """The commitment shown to the player: sha256 of the hex string (UTF-8), as hex."""
    check_server_seed(server_seed)
    return hashlib.sha256(server_seed.encode("utf-8")).hexdigest()


def new_client_seed() -> str:
    """A random default client seed: 16 URL-safe characters."""
    return secrets.token_urlsafe(12)


def validate_client_seed(raw: str) -> str:
    """Strip a player's client seed and check it: 1 to 64 printable ASCII characters, no
    spaces. Returns the stripped seed or raises FairnessError."""
    if not isinstance(raw, str):
        raise FairnessError("client seed: must be text")
    seed = raw.strip()
    if not seed:
        raise FairnessError("client seed: must not be empty")
    if len(seed) > CLIENT_SEED_MAX:
        raise FairnessError(f"client seed: at most {CLIENT_SEED_MAX} characters "
                            f"(got {len(seed)})")
    bad = [c for c in seed if not 0x21 <= ord(c) <= 0x7E]
    if bad:
        raise FairnessError("client seed: only printable ASCII letters, digits and "
                            f"symbols, without spaces (found {bad[0]!r})")
    return seed


VERIFY_CLIENT_SEED_MAX = 10_000


def check_any_client_seed(client_seed: object) -> str:
    """A client seed as another casino may have used it, for the verifiers: any text,
    the empty string too, taken exactly as given (no stripping) and encoded as UTF-8.
    Refused: what is not text, text that is not valid Unicode (a lone surrogate has no
    UTF-8), and more than VERIFY_CLIENT_SEED_MAX characters. (Seeds players set here
    still follow ``validate_client_seed``.)"""
    if not isinstance(client_seed, str):
        raise FairnessError("client seed: must be text")
    if len(client_seed) > VERIFY_CLIENT_SEED_MAX:
        raise FairnessError(f"client seed: at most {VERIFY_CLIENT_SEED_MAX} characters")
    try:
        client_seed.encode("utf-8")
    except UnicodeEncodeError:
        raise FairnessError("client seed: not valid Unicode text") from None
    return client_seed


def check_server_seed(server_seed: str) -> None:
    if not isinstance(server_seed, str) or not SERVER_SEED_RE.fullmatch(server_seed):
        raise FairnessError("server seed: must be 64 lowercase hexadecimal characters")


def check_nonce(nonce: int) -> None:
    if isinstance(nonce, bool) or not isinstance(nonce, int):
        raise FairnessError("nonce: must be a whole number")
    if not 0 <= nonce <= NONCE_MAX:
        raise FairnessError(f"nonce: must be between 0 and {NONCE_MAX}")


def _check(server_seed: str, client_seed: str, nonce: int) -> None:
    check_server_seed(server_seed)
    check_any_client_seed(client_seed)
    check_nonce(nonce)


class FloatSource:
    """One server seed's HMAC-SHA256 key, prepared once (RFC 2104: the key is the 64
    bytes of the hex string, exactly one SHA-256 block, so the inner and outer hashes
    start from ``key XOR 0x36..`` and ``key XOR 0x5c..``). ``floats()`` makes one per
    call; replaying many nonces of one seed (statistical tests, a revealed seed's bets)
    keeps one and saves the key set-up and the argument checks of the seed.
    """

    __slots__ = ("_inner", "_outer")

    def __init__(self, server_seed: str) -> None:
        check_server_seed(server_seed)
        key = server_seed.encode("utf-8")  # 64 bytes: no hashing or padding needed
        self._inner = hashlib.sha256(key.translate(_IPAD))
        self._outer = hashlib.sha256(key.translate(_OPAD))

    def round_bytes(self, client_seed: str, nonce: int, round_: int) -> bytes:
        """HMAC_SHA256(server seed, f"{client_seed}:{nonce}:{round_}"), 32 bytes."""
        inner = self._inner.copy()
        inner.update(f"{client_seed}:{nonce}:{round_}".encode())
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()

    def floats(self, client_seed: str, nonce: int, count: int) -> list[float]:
        """The first ``count`` floats of (client seed, nonce), 8 per round."""
        if not isinstance(client_seed, str):
            raise FairnessError("client seed: must be text")
        check_nonce(nonce)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise FairnessError("count: must be a whole number >= 0")
        if count <= FLOATS_PER_ROUND:
            words = _EIGHT_WORDS.unpack(self.round_bytes(client_seed, nonce, 0))
            return [w * _TWO_POW_MINUS_32 for w in words[:count]]
        out: list[float] = []
        for round_ in range(rounds_needed(count)):
            words = _EIGHT_WORDS.unpack(self.round_bytes(client_seed, nonce, round_))
            out.extend([w * _TWO_POW_MINUS_32 for w in words])
        del out[count:]
        return out


def round_bytes(server_seed: str, client_seed: str, nonce: int, round_: int) -> bytes:
    """The 32 bytes of one HMAC round."""
    _check(server_seed, client_seed, nonce)
    return FloatSource(server_seed).round_bytes(client_seed, nonce, round_)


def byte_stream(server_seed: str, client_seed: str, nonce: int) -> Iterator[int]:
    """Yield the bytes of round 0, then round 1, ... without end."""
    _check(server_seed, client_seed, nonce)
    source = FloatSource(server_seed)
    round_ = 0
    while True:
        yield from source.round_bytes(client_seed, nonce, round_)
        round_ += 1


def floats(server_seed: str, client_seed: str, nonce: int, count: int) -> list[float]:
    """The first ``count`` floats in [0, 1) of the stream, 8 per HMAC round.

    Each float is ``b0/256 + b1/256**2 + b2/256**3 + b3/256**4``; every term and every
    partial sum is exact in a double, so this equals ``uint32 / 2**32`` exactly.
    """
    return FloatSource(server_seed).floats(client_seed, nonce, count)


def rounds_needed(count: int) -> int:
    """How many HMAC rounds ``count`` floats take."""
    return -(-count // FLOATS_PER_ROUND)
