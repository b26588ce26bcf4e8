"""A deliberately naive second implementation of FAIRNESS.md, written from the text and
sharing no code with ``casino_app.games``: the stdlib ``hmac`` module instead of the
engine's prepared key, the literal byte formula instead of ``uint32 / 2**32``, and the
outcome formulas exactly as published."""

from __future__ import annotations

import hashlib
import hmac
import math


def hmac_rounds(server_seed: str, client_seed: str, nonce: int, rounds: int) -> list[bytes]:
    return [hmac.new(server_seed.encode(), f"{client_seed}:{nonce}:{r}".encode(),
                     hashlib.sha256).digest() for r in range(rounds)]


def floats(server_seed: str, client_seed: str, nonce: int, count: int) -> list[float]:
    data = b"".join(hmac_rounds(server_seed, client_seed, nonce, (count + 7) // 8))
    out = []
    for i in range(count):
        chunk = data[4 * i: 4 * i + 4]
        f = 0.0
        for j, b in enumerate(chunk):
            f += b / 256 ** (j + 1)
        out.append(f)
    return out


def dice(f: float) -> float:
    return math.floor(f * 10001) / 100


def limbo(f: float) -> float:
    if f == 0:  # the published formula divides by zero; we read it as 2**-32
        f = 2.0**-32
    return max(math.floor((1e8 / (f * 1e8)) * 0.99 * 100) / 100, 1.00)


def plinko(fs: list[float]) -> int:
    return sum(math.floor(f * 2) for f in fs)


def _without_repeats(fs: list[float], items: list[int]) -> list[int]:
    """From the list, the i-th float picks index floor(f * (size - i)) and removes it."""
    size = len(items)
    items = list(items)
    return [items.pop(math.floor(f * (size - i))) for i, f in enumerate(fs)]


def keno(fs: list[float]) -> list[int]:
    return _without_repeats(fs, list(range(1, 41)))


def mines(fs: list[float]) -> list[int]:
    return _without_repeats(fs, list(range(25)))
