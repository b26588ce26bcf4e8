"""Display rates: what a crypto amount is worth in USD, EUR, BTC or ETH, shown as text.

Conversion is for display only. The ledger never sees a rate: amounts stay ints in their
own currency's base unit, and a converted value is only ever a string ("≈ $12.34").

Where rates come from (``RateSource``):

* ``CoinGeckoSource(url)``: any CoinGecko-compatible API (``CASINO_RATES_URL``), asked
  ``GET {url}/simple/price?ids=...&vs_currencies=usd,eur,btc,eth`` with httpx. The answer
  is checked strictly (every coin and quote present, numbers only, each > 0 and finite);
  a bad answer is an error, never a zero rate.
* ``FixedSource(spec)``: the fixed rates of ``CASINO_RATES_FIXED``, used when no URL is
  set (the embedded default). Views say so ("rates from settings, not live").

The ``rates-refresh`` job (``refresh``) fetches from the configured source every
``CASINO_RATES_SECONDS`` and replaces the rows of ``display_rates`` (ledger database, not a
money table), so every web process and worker reads the same rates. A failed fetch keeps
the last rates; they count as stale once older than ``CASINO_RATES_STALE_SECONDS``.
Readers use ``snapshot()`` (cached in the process for a short while) or, where no I/O may
happen (the event loop), ``cached()``.

Every number here is a ``Decimal``, parsed from JSON and settings as text.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation, localcontext
from typing import NamedTuple, Protocol

import httpx
from sqlalchemy import delete, select
from sqlalchemy.exc import SQLAlchemyError

from casino_app.core.clock import utcnow
from casino_app.core.db import ledger_tx
from casino_app.core.logging import get_logger
from casino_app.core.settings import get_settings
from casino_app.payments.currencies import currency
from casino_app.payments.rate_models import DisplayRate

log = get_logger("casino.rates")

# Our currency codes and their CoinGecko ids.
COINS: dict[str, str] = {"BTC": "bitcoin", "ETH": "ethereum", "USDT": "tether",
                         "USDC": "usd-coin"}
# What a player may show amounts in.
QUOTES: tuple[str, ...] = ("USD", "EUR", "BTC", "ETH")
FIAT = ("USD", "EUR")
# Decimal places a converted value is shown with (crypto: trailing zeros dropped).
QUOTE_PLACES = {"USD": 2, "EUR": 2, "BTC": 8, "ETH": 6}
FIXED_SOURCE_NAME = "settings"
TIMEOUT_SECONDS = 5.0
MAX_ANSWER_BYTES = 64 * 1024
MAX_RATE = Decimal(10) ** 12
# How long a process reuses the rates it read before reading the table again.
CACHE_SECONDS = 30.0
# Enough digits that amount (up to 2**62 base units) x rate is exact.
_PRECISION = 60
_PLAIN = re.compile(r"[0-9]+(\.[0-9]+)?")

Pair = tuple[str, str]


class RatesError(Exception):
    """A source gave no usable rates (network error, bad status, bad answer)."""


class RateSource(Protocol):
    """Where rates come from: ``fetch()`` returns a rate per (currency, quote) pair."""

    name: str
    fixed: bool

    def fetch(self) -> dict[Pair, Decimal]: ...


# --- sources ------------------------------------------------------------------------------

def _positive(value: object, where: str) -> Decimal:
    """A rate from an answer: a finite Decimal in (0, MAX_RATE]; anything else refused."""
    if not isinstance(value, Decimal) or not value.is_finite():
        raise RatesError(f"{where}: not a number")
    if not Decimal(0) < value <= MAX_RATE:
        raise RatesError(f"{where}: {value} is not a rate above 0 and up to 10^12")
    return value


def _no_constants(name: str) -> Decimal:
    raise RatesError(f"answer holds {name}")


class CoinGeckoSource:
    """A CoinGecko-compatible ``/simple/price`` endpoint, read with httpx."""

    fixed = False

    def __init__(self, url: str, timeout: float = TIMEOUT_SECONDS,
                 transport: httpx.BaseTransport | None = None) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError("CASINO_RATES_URL must be an http:// or https:// URL")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._transport = transport
        # What views and logs show: the host only (a URL may carry an API key).
        self.name = httpx.URL(self.url).host or "rates source"

    def request_url(self) -> str:
        ids = ",".join(COINS.values())
        vs = ",".join(q.lower() for q in QUOTES)
        return f"{self.url}/simple/price?ids={ids}&vs_currencies={vs}"

    def fetch(self) -> dict[Pair, Decimal]:
        try:
            with httpx.Client(timeout=self.timeout, follow_redirects=False,
                              transport=self._transport,
                              headers={"Accept": "application/json"}) as client, \
                    client.stream("GET", self.request_url()) as resp:
                if resp.status_code != 200:
                    raise RatesError(f"{self.name} answered HTTP {resp.status_code}")
                body = b""
                for chunk in resp.iter_bytes():
                    body += chunk
                    if len(body) > MAX_ANSWER_BYTES:
                        raise RatesError(f"{self.name} answered more than "
                                         f"{MAX_ANSWER_BYTES} bytes")
        except httpx.HTTPError as exc:
            raise RatesError(f"{self.name}: {type(exc).__name__}") from None
        return self.parse(body)

    def parse(self, body: bytes) -> dict[Pair, Decimal]:
        """Check an answer strictly and return its rates (see the module docstring)."""
        try:
            data = json.loads(body, parse_float=Decimal, parse_int=Decimal,
                              parse_constant=_no_constants)
        except RatesError as exc:
            raise RatesError(f"{self.name}: {exc}") from None
        except (ValueError, RecursionError):
            raise RatesError(f"{self.name} answered something that is not JSON") from None
        if not isinstance(data, dict):
            raise RatesError(f"{self.name} answered no object")
        ids = {cg: code for code, cg in COINS.items()}
        unknown = set(data) - set(ids)
        missing = set(ids) - set(data)
        if unknown or missing:
            raise RatesError(f"{self.name}: unknown coins {sorted(unknown)[:4]}, "
                             f"missing {sorted(missing)}")
        out: dict[Pair, Decimal] = {}
        for cg, prices in data.items():
            if not isinstance(prices, dict):
                raise RatesError(f"{self.name}: {cg} has no prices")
            wanted = {q.lower() for q in QUOTES}
            if set(prices) != wanted:
                raise RatesError(f"{self.name}: {cg} quotes {sorted(prices)[:6]}, "
                                 f"expected {sorted(wanted)}")
            for vs, value in prices.items():
                out[(ids[cg], vs.upper())] = _positive(value, f"{self.name}: {cg}/{vs}")
        return out


class FixedSource:
    """Rates from settings: ``"ETH:USD:3000,ETH:EUR:2750,..."`` (decimal strings)."""

    fixed = True
    name = FIXED_SOURCE_NAME

    def __init__(self, spec: str) -> None:
        self.rates = self.parse(spec)

    @staticmethod
    def parse(spec: str) -> dict[Pair, Decimal]:
        out: dict[Pair, Decimal] = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            bits = [b.strip() for b in part.split(":")]
            if len(bits) != 3:
                raise ValueError(f"CASINO_RATES_FIXED: '{part}' is not CUR:QUOTE:rate")
            code, quote, text = bits[0].upper(), bits[1].upper(), bits[2]
            if code not in COINS:
                raise ValueError(f"CASINO_RATES_FIXED: '{bits[0]}' is not one of "
                                 f"{', '.join(COINS)}")
            if quote not in QUOTES:
                raise ValueError(f"CASINO_RATES_FIXED: '{bits[1]}' is not one of "
                                 f"{', '.join(QUOTES)}")
            if not _PLAIN.fullmatch(text):
                raise ValueError(f"CASINO_RATES_FIXED: '{text}' is not a decimal number")
            rate = Decimal(text)
            if not Decimal(0) < rate <= MAX_RATE:
                raise ValueError(f"CASINO_RATES_FIXED: {code}:{quote} must be above 0")
            if (code, quote) in out:
                raise ValueError(f"CASINO_RATES_FIXED: {code}:{quote} appears twice")
            out[(code, quote)] = rate
        return out

    def fetch(self) -> dict[Pair, Decimal]:
        return dict(self.rates)


def configured_source() -> RateSource:
    """The source the settings name: CoinGecko-compatible URL, else the fixed rates."""
    st = get_settings()
    return CoinGeckoSource(st.rates_url) if st.rates_url else FixedSource(st.rates_fixed)


# --- a set of rates and what it converts --------------------------------------------------

class RateStatus(NamedTuple):
    source: str
    fetched_at: datetime | None
    stale: bool
    fixed: bool


@dataclass(frozen=True)
class RateTable:
    """The rates a view converts with, and where and when they came from."""

    rates: Mapping[Pair, Decimal] = field(default_factory=dict)
    source: str = ""
    fetched_at: datetime | None = None
    fixed: bool = False
    stale_seconds: float = 0.0

    def rate(self, code: str, quote: str) -> Decimal | None:
        """Units of ``quote`` per whole ``code``: the direct pair, else through USD."""
        if code == quote:
            return Decimal(1)
        direct = self.rates.get((code, quote))
        if direct is not None:
            return direct
        in_usd = self.rates.get((code, "USD"))
        if in_usd is None or quote == "USD":
            return None
        with localcontext() as ctx:
            ctx.prec = _PRECISION
            if quote in COINS:  # a coin: its own USD price
                quote_usd = self.rates.get((quote, "USD"))
                return in_usd / quote_usd if quote_usd else None
            # a fiat currency: USD -> quote from any coin priced in both
            for ref in COINS:
                ref_usd, ref_quote = self.rates.get((ref, "USD")), self.rates.get((ref, quote))
                if ref_usd and ref_quote:
                    return in_usd * ref_quote / ref_usd
        return None

    def age_seconds(self, now: datetime | None = None) -> float | None:
        if self.fetched_at is None:
            return None
        return max(0.0, ((now or utcnow()) - self.fetched_at).total_seconds())

    def status(self, now: datetime | None = None) -> RateStatus:
        if self.fixed:
            return RateStatus(self.source, None, False, True)
        age = self.age_seconds(now)
        return RateStatus(self.source, self.fetched_at, age is None or age > self.stale_seconds,
                          False)


def _fixed_table() -> RateTable:
    st = get_settings()
    return RateTable(FixedSource(st.rates_fixed).fetch(), FIXED_SOURCE_NAME, None, True,
                     st.rates_stale_seconds)


def load() -> RateTable:
    """The rates stored by the last successful refresh (empty if there was none yet)."""
    st = get_settings()
    name = CoinGeckoSource(st.rates_url).name if st.rates_url else ""
    with ledger_tx(readonly=True) as s:
        rows = s.execute(select(DisplayRate)).scalars().all()
    rates = {(r.currency, r.quote): Decimal(r.rate) for r in rows}
    fetched = min((r.fetched_at for r in rows), default=None)
    source = rows[0].source if rows else name
    return RateTable(rates, source, fetched, False, st.rates_stale_seconds)


def store(rates: Mapping[Pair, Decimal], source: str, fetched_at: datetime | None = None
          ) -> None:
    """Replace the stored rates with ``rates`` (one transaction: readers see one set)."""
    when = fetched_at or utcnow()
    with ledger_tx() as s:
        s.execute(delete(DisplayRate))
        s.add_all(DisplayRate(currency=code, quote=quote, rate=str(rate), source=source[:100],
                              fetched_at=when)
                  for (code, quote), rate in sorted(rates.items()))
    _forget()


def refresh(source: RateSource | None = None) -> dict[str, int]:
    """The ``rates-refresh`` job: fetch from the configured source and store the rates.
    A failure raises (the runner records it) and leaves the last rates in place."""
    src = source or configured_source()
    if src.fixed and source is None:
        return {"fixed": 1}  # nothing to fetch: views read the settings directly
    try:
        rates = src.fetch()
    except RatesError as exc:
        log.warning("rates_refresh_failed", source=src.name, error=str(exc)[:300])
        raise
    store(rates, src.name)
    log.info("rates_refreshed", source=src.name, pairs=len(rates))
    return {"pairs": len(rates)}


# --- the process's copy -------------------------------------------------------------------

_cache_lock = threading.Lock()
_cache: tuple[tuple[object, ...], float, RateTable] | None = None


def _key() -> tuple[object, ...]:
    st = get_settings()
    return (st.rates_url, st.rates_fixed, st.ledger_url, st.rates_stale_seconds)


def _forget() -> None:
    global _cache
    with _cache_lock:
        _cache = None


def snapshot() -> RateTable:
    """The current rates; reads the table at most every ``CACHE_SECONDS`` (blocking I/O:
    call it in a thread from async code). Never raises: a broken source shows nothing."""
    global _cache
    key = _key()
    with _cache_lock:
        if _cache is not None and _cache[0] == key and time.monotonic() - _cache[1] < \
                CACHE_SECONDS:
            return _cache[2]
    try:
        table = _fixed_table() if not get_settings().rates_url else load()
    except (ValueError, SQLAlchemyError) as exc:
        log.warning("rates_unavailable", error=str(exc)[:300])
        table = RateTable(source="none")
    with _cache_lock:
        _cache = (key, time.monotonic(), table)
    return table


def cached(max_age: float | None = None) -> RateTable | None:
    """The rates this process read last, without any I/O: None before the first
    ``snapshot()``, after the settings changed, or when read more than ``max_age``
    seconds ago (default: any age)."""
    with _cache_lock:
        if _cache is not None and _cache[0] == _key() and (
                max_age is None or time.monotonic() - _cache[1] < max_age):
            return _cache[2]
    return None


def status(rates: RateTable | None = None) -> RateStatus:
    """(source name, fetched_at, stale, fixed) of the current rates."""
    return (rates or snapshot()).status()


# --- converting and showing ---------------------------------------------------------------

def convert(amount: int, code: str, quote: str, rates: RateTable | None = None
            ) -> Decimal | None:
    """``amount`` base units of ``code`` in ``quote`` (exact Decimal), or None when there
    is nothing to convert: play money, an unknown currency or quote, no rate."""
    try:
        cur = currency(code)
    except ValueError:
        return None
    if not cur.real_money or quote not in QUOTES or isinstance(amount, bool) \
            or not isinstance(amount, int):
        return None
    rate = (rates or snapshot()).rate(cur.code, quote)
    if rate is None:
        return None
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        return Decimal(amount).scaleb(-cur.decimals) * rate


def format_value(value: Decimal, quote: str, signed: bool = False) -> str:
    """``≈ $12.34``, ``≈ 11.40 €``, ``≈ 0.00012 BTC`` (``signed``: ``≈ +$1.00``)."""
    places = QUOTE_PLACES[quote]
    try:
        shown = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
    except InvalidOperation:
        return ""
    sign = "-" if shown < 0 else ("+" if signed and shown > 0 else "")
    text = f"{abs(shown):,.{places}f}"
    if quote not in FIAT:
        text = text.rstrip("0").rstrip(".")
    if quote == "USD":
        return f"≈ {sign}${text}"
    if quote == "EUR":
        return f"≈ {sign}{text} €"
    return f"≈ {sign}{text} {quote}"


def display(amount: int, code: str, quote: str, rates: RateTable | None = None,
            signed: bool = False) -> str:
    """``amount`` of ``code`` as a converted value for a view: ``"≈ $12.34"``;
    ``"play money"`` for FUN; ``""`` when there is nothing to show (same currency, no
    quote chosen, no rate)."""
    try:
        cur = currency(code)
    except ValueError:
        return ""
    if not cur.real_money:
        return "play money"
    if quote not in QUOTES or quote == cur.code:
        return ""
    value = convert(amount, cur.code, quote, rates)
    return "" if value is None else format_value(value, quote, signed)


def age_text(seconds: float) -> str:
    """A rough age: ``40 s``, ``5 min``, ``2 h``, ``3 d``."""
    if seconds < 60:
        return f"{int(seconds)} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h"
    return f"{int(seconds // 86400)} d"


def note(rates: RateTable, now: datetime | None = None) -> str:
    """What a view says beside converted values when they are not live and fresh."""
    st = rates.status(now)
    if st.fixed:
        return "rates from settings, not live"
    if not rates.rates:
        return "no rates yet"
    if st.stale:
        return f"rates {age_text(rates.age_seconds(now) or 0)} old"
    return ""
