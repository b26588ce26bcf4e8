"""Converted values for views: the display currency a player picked (a browser value,
checked here on every use), the rates to convert with, and the texts shown beside amounts.

Conversion is for display only (payments.rates): amounts stay ints in their own currency,
and nothing here is ever handed back to a service. Imports nothing else from ``ui``.
"""

from __future__ import annotations

import asyncio

from casino_app.payments import rates
from casino_app.payments.currencies import currency
from casino_app.payments.rates import RateTable

STORAGE_KEY = "hh_display"
NONE = "NONE"  # the player wants no converted values
DEFAULT = "USD"
CHOICES: tuple[str, ...] = (*rates.QUOTES, NONE)
LABELS = {NONE: "off"}


def quote(value: object) -> str:
    """The display currency ``value`` names (USD, EUR, BTC, ETH or NONE); anything else a
    browser sends (a forged localStorage value, junk) reads as the default."""
    if isinstance(value, str) and value.strip().upper() in CHOICES:
        return value.strip().upper()
    return DEFAULT


def valid(value: object) -> bool:
    return isinstance(value, str) and value in CHOICES


async def table() -> RateTable:
    """The current rates: this process's copy if recent, else read in a thread (the table
    lives in the database; the event loop must not block on it)."""
    return rates.cached(rates.CACHE_SECONDS) or await asyncio.to_thread(rates.snapshot)


def last_table() -> RateTable:
    """The rates read last, whatever their age, with no I/O (for synchronous view code)."""
    return rates.cached() or RateTable()


def amount_fx(code: str, amount: int | None, quote_code: str, rates_: RateTable,
              signed: bool = False) -> str:
    """The converted value beside an amount in a row: ``≈ $1.20``; empty for play money,
    no display currency, the same currency or no rate (rows stay compact)."""
    if amount is None or quote_code == NONE:
        return ""
    try:
        if not currency(code).real_money:
            return ""
    except ValueError:
        return ""
    return rates.display(amount, code, quote_code, rates_, signed=signed)


def balance_fx(code: str, amount: int, quote_code: str, rates_: RateTable) -> str:
    """The converted balance in the header: ``≈ 11.40 €``, or ``play money`` for FUN."""
    if quote_code == NONE:
        return ""
    return rates.display(amount, code, quote_code, rates_)


def note(quote_code: str, rates_: RateTable) -> str:
    """``rates from settings, not live`` / ``rates 2 h old`` where converted values show."""
    return "" if quote_code == NONE else rates.note(rates_)
