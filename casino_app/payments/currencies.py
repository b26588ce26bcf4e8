"""The currency registry. Every amount is a Python int in its currency's base unit.

A currency never mixes with another inside the ledger: a journal entry balances per
currency, and FUN (play money for demo mode) has no custody account and no way in or out.

Every amount a person types anywhere (bets, withdrawals, Safe refills, staff adjustments,
``casino ledger fund``, the games' targets) is read by ``parse_decimal`` (through
``Currency.parse`` for money): a dot for decimals, no thousands separators, so "0,05" is
refused with a message instead of becoming 5.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from functools import lru_cache

from casino_app.core.settings import get_settings

# Amounts are stored in signed 64-bit columns on SQLite and Postgres.
MAX_AMOUNT = 2**62
MAX_TEXT = 40

# What a person may type as an amount (see ``parse_decimal``): ASCII digits with at most
# one dot for decimals, nothing else. The HTML patterns say the same to the browser (a
# hint before sending; the server decides), with spaces around allowed as the server does.
_PLAIN = re.compile(r"[0-9]+(\.[0-9]*)?|\.[0-9]+")
AMOUNT_PATTERN = r"\s*([0-9]+(\.[0-9]*)?|\.[0-9]+)\s*"
SIGNED_AMOUNT_PATTERN = r"\s*(\+|-)?([0-9]+(\.[0-9]*)?|\.[0-9]+)\s*"
AMOUNT_FORMAT = "Use a dot for decimals and no thousands separators, e.g. 1234.56."
# Characters people write inside numbers as thousands or decimal separators: any comma,
# apostrophes (1'000), underscores (1_000) and any space (1 000, also no-break and thin).
_SEPARATORS = re.compile(r"[,'\u2019\u02bc_]|\s")


class AmountError(ValueError):
    """An amount typed by a person was refused; the message says why and is safe to show."""


def parse_decimal(text: object, *, signed: bool = False) -> Decimal:
    """THE parser for every amount a person types (bets, withdrawals, refills, staff
    adjustments, ``casino ledger fund``, the games' targets): one reading that cannot be
    mistaken, or ``AmountError`` with a message to show.

    Accepted: ASCII digits with at most one dot as the decimal separator ("1234.56",
    "0.05", ".5", "5."), spaces around it (a paste) and, with ``signed=True`` only, one
    "+" or "-" directly before the digits. A Python ``int`` counts as whole units.

    Refused, so that "0,05" can never become 5 (a comma read as a thousands separator) or
    "1.000,50" 1000.50: any comma, spaces, underscores or apostrophes inside the number
    ("1 000", "1_000", "1'000"), a second dot ("1.000.000"), an exponent ("1e3"), a sign
    where none is expected, NaN, infinity, hex and digits other than ASCII 0-9. "1.000"
    is one with three decimals (the currency then checks its decimals).
    """
    if isinstance(text, bool) or not isinstance(text, (str, int)):
        raise AmountError("Enter an amount.")
    raw = str(text).strip()
    if not raw:
        raise AmountError("Enter an amount.")
    if len(raw) > MAX_TEXT:
        raise AmountError(f"That is not an amount. {AMOUNT_FORMAT}")
    sign, body = (raw[0], raw[1:]) if raw[0] in "+-" else ("", raw)
    if _PLAIN.fullmatch(body):
        if sign and not signed:
            raise AmountError("Enter a positive amount." if sign == "-" else
                              f"'{raw}' is not an amount: write it without a sign, "
                              "e.g. 1234.56.")
        value = Decimal(body)
        return -value if sign == "-" else value
    shown = raw[:20]
    if _SEPARATORS.search(body) or body.count(".") > 1:
        raise AmountError(f"'{shown}' is not a clear amount. {AMOUNT_FORMAT}")
    raise AmountError(f"'{shown}' is not an amount. {AMOUNT_FORMAT}")


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
        """``amount`` base units as text, THE format of an amount on every page: the
        currency's display places (0.250000 ETH, 0.00 FUN, 1,234.50 USDT), with thousands
        separators, and never rounded: the digits beyond the display places show when they
        are not zero (0.000000001 ETH, 1.999999 USDT), so no amount reads as less or more
        than it is. With ``places``, rounded down to exactly that many (staff exports)."""
        if places is None:
            places = self.display_places
            while places < self.decimals and amount % 10 ** (self.decimals - places):
                places += 1
        value = (Decimal(amount) / self.scale).quantize(Decimal(1).scaleb(-places),
                                                         rounding=ROUND_DOWN)
        return f"{value:,.{places}f}"

    def text(self, amount: int, *, signed: bool = False) -> str:
        """An amount with its code, as every page shows it: ``1.50 FUN``; ``signed``:
        ``+1.50 FUN`` / ``−1.50 FUN`` (a profit; the minus sign U+2212, read as "minus")."""
        sign = ("−" if amount < 0 else "+") if signed else ("−" if amount < 0 else "")
        return f"{sign}{self.format(abs(amount))} {self.code}"

    def parse(self, text: object, *, signed: bool = False) -> int:
        """An amount typed by a person (``parse_decimal``'s rules) in base units; refuses
        more decimals than the currency has. Zero passes: callers that need a positive
        amount say so themselves."""
        value = parse_decimal(text, signed=signed)
        units = value * self.scale
        if units != units.to_integral_value():
            raise AmountError(f"{self.code} has at most {self.decimals} decimals.")
        amount = int(units)
        if abs(amount) > MAX_AMOUNT:
            raise AmountError("That amount is too large.")
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
