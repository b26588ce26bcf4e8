"""Password hashing: argon2id through passlib, with OWASP parameters from settings.

``verify`` also reports whether the stored hash should be upgraded (parameters changed),
and ``dummy_verify`` spends the same time when there is no account, so that response
time never tells whether an email is registered.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

from passlib.context import CryptContext

from casino_app.core.settings import get_settings


@lru_cache(maxsize=1)
def _context() -> CryptContext:
    s = get_settings()
    return CryptContext(
        schemes=["argon2"],
        argon2__type="ID",
        argon2__memory_cost=s.argon2_memory_kib,
        argon2__rounds=s.argon2_time_cost,
        argon2__parallelism=s.argon2_parallelism,
    )


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _context().hash("not-a-real-password-used-only-for-timing")


def reset_password_context() -> None:
    _context.cache_clear()
    _dummy_hash.cache_clear()


def _nfc(password: str) -> str:
    # The same characters typed on another keyboard may arrive decomposed (NFD).
    return unicodedata.normalize("NFC", password)


def hash_password(password: str) -> str:
    return _context().hash(_nfc(password))


def verify(password: str, stored_hash: str) -> tuple[bool, str | None]:
    """(matches, new_hash_if_parameters_changed)."""
    try:
        return _context().verify_and_update(_nfc(password), stored_hash)
    except (ValueError, TypeError):
        return False, None


def dummy_verify(password: str) -> None:
    _context().verify(_nfc(password), _dummy_hash())
