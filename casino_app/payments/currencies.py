"""The currency registry. Every amount is a Python int in its currency's base unit.

A currency never mixes with another inside the ledger: a journal entry balances per
currency, and FUN (play money for demo mode) has no custody account and no way in or out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from functools import lru_cache

from casino_app.core.settings import get_settings

# Amounts are stored in signed 64-bit columns on SQLite and Postgres.
MAX_AMOUNT = 2**62
# What a person types: digits with an optional decimal part (no sign, exponent, NaN, ...).
_PLAIN = re.compile(r"[0-9]+(\.[0-9]*)?|\.[0-9]+")


@dataclass(frozen=True)
class Currency:
    code: str
    name: str
    unit: str            # the base unit amounts are counted in
    decimals: int        # base units per whole coin = 10**decimals
    display_places: int  # how many decimals the UI shows
    min_bet: int
    max_bet: int
    real_money: bool = True

    @property
    def scale(self) -> int:
        return 10**self.decimals

    def format(self, amount: int, places: int | None = None) -> str:
        """``amount`` base units as a decimal string, rounded down to ``places``."""
        places = self.display_places if places is None else places
        value = (Decimal(amount) / self.scale).quantize(Decimal(1).scaleb(-places),
                                                         rounding=ROUND_DOWN)
        return f"{value:,.{places}f}"

    def parse(self, text: object) -> int:
        """A decimal amount typed by a person into base units; refuses extra decimals."""
        if isinstance(text, bool) or not isinstance(text, (str, int)):
            raise ValueError("Enter an amount.")
        raw = str(text).strip().replace(",", "").replace("_", "")
        if not raw or len(raw) > 40:
            raise ValueError("Enter an amount.")
        if raw.startswith("-") and _PLAIN.fullmatch(raw[1:]):
            raise ValueError("Enter a positive amount.")
        if not _PLAIN.fullmatch(raw):
            raise ValueError(f"'{raw[:20]}' is not an amount.")
        value = Decimal(raw)
        units = value * self.scale
        if units != units.to_integral_value():
            raise ValueError(f"{self.code} has at most {self.decimals} decimals.")
        amount = int(units)
        if amount > MAX_AMOUNT:
            raise ValueError("That amount is too large.")
        return amount


_DEFAULTS = (
    # code, name, unit, decimals, display places, min bet, max bet, real money
    Currency("BTC", "Bitcoin", "satoshi", 8, 8, 100, 100_000_000),
    Currency("ETH", "Ether", "gwei", 9, 6, 10_000, 10_000_000_000),
    Currency("USDT", "Tether USD", "micro-USDT", 6, 2, 10_000, 10_000_000_000),
    Currency("USDC", "USD Coin", "micro-USDC", 6, 2, 10_000, 10_000_000_000),
    Currency("FUN", "Play money", "cent", 2, 2, 1, 10_000_000, real_money=False),
)


def _limits(spec: str) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        try:
            code, lo, hi = part.split(":")
            out[code.strip().upper()] = (int(lo), int(hi))
        except ValueError:
            raise ValueError(f"CASINO_BET_LIMITS: '{part}' is not CUR:min:max") from None
    return out


@lru_cache(maxsize=1)
def _registry() -> dict[str, Currency]:
    overrides = _limits(get_settings().bet_limits)
    known = {c.code for c in _DEFAULTS}
    unknown = set(overrides) - known
    if unknown:
        raise ValueError(f"CASINO_BET_LIMITS names unknown currencies: {sorted(unknown)}")
    out = {}
    for c in _DEFAULTS:
        lo, hi = overrides.get(c.code, (c.min_bet, c.max_bet))
        if not 1 <= lo <= hi <= MAX_AMOUNT:
            raise ValueError(f"CASINO_BET_LIMITS: {c.code} needs 1 <= min <= max")
        out[c.code] = Currency(c.code, c.name, c.unit, c.decimals, c.display_places, lo, hi,
                               c.real_money)
    return out


def reset_currencies() -> None:
    _registry.cache_clear()


def all_currencies() -> list[Currency]:
    return list(_registry().values())


def currency(code: object) -> Currency:
    """The registered currency ``code``; ValueError with a clear message otherwise."""
    c = _registry().get(str(code).strip().upper()) if isinstance(code, str) else None
    if c is None:
        raise ValueError(f"Unknown currency. Choose one of {', '.join(_registry())}.")
    return c
