"""Tiers, periods and house edges of the loyalty programme: pure maths, no I/O.

Amounts stay exact: rakeback is ``floor(sum(stake x edge) x tier bps / 10000)`` over one
period and currency, with every edge an exact Fraction (``edge_of``), so it is rounded
down once per period and currency (the house keeps less than one base unit), never per
bet. USD values are integer cents (``usd_e2``), rounded down.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal, localcontext
from fractions import Fraction
from functools import lru_cache

from casino_app.core.logging import get_logger
from casino_app.core.settings import LoyaltyTier, get_settings, parse_loyalty_tiers
from casino_app.games.config import MAX_EDGE
from casino_app.games.house import GAMES, GameError

log = get_logger("casino.loyalty")

BPS = 10_000
RTP_ONE = 1_000_000          # provider_games.rtp_e4: 96.00% is 960000
_EPOCH = datetime(1970, 1, 1)
_PRECISION = 60  # Decimal digits: amount (up to 2**62) x rate stays exact
# Dice bets whose win chance is within this band (hundredths of a percent) count as the
# near-even bets of rakeback farming when a player takes both sides.
NEAR_EVEN_E2 = (4_000, 6_000)


def tiers() -> tuple[LoyaltyTier, ...]:
    return _tiers(get_settings().loyalty_tiers)


@lru_cache(maxsize=4)
def _tiers(spec: str) -> tuple[LoyaltyTier, ...]:
    return parse_loyalty_tiers(spec)


def tier_index(usd_e2: int, table: tuple[LoyaltyTier, ...] | None = None) -> int:
    """The index of the highest tier whose threshold ``usd_e2`` has reached."""
    table = table or tiers()
    found = 0
    for i, t in enumerate(table):
        if usd_e2 >= t.threshold_e2:
            found = i
    return found


@dataclass(frozen=True)
class Progress:
    tier: LoyaltyTier
    next: LoyaltyTier | None
    bps: int        # progress from this tier's threshold to the next's (0..10000)
    to_next_e2: int  # USD cents still to wager (0 at the top)


def progress(usd_e2: int, table: tuple[LoyaltyTier, ...] | None = None) -> Progress:
    table = table or tiers()
    i = tier_index(usd_e2, table)
    here = table[i]
    if i + 1 >= len(table):
        return Progress(here, None, BPS, 0)
    nxt = table[i + 1]
    span = nxt.threshold_e2 - here.threshold_e2
    done = min(max(usd_e2 - here.threshold_e2, 0), span)
    return Progress(here, nxt, done * BPS // span, nxt.threshold_e2 - usd_e2)


# --- periods ---

def period_seconds() -> int:
    return get_settings().loyalty_period_hours * 3600


def align(t: datetime, seconds: int | None = None) -> datetime:
    """The start of the period holding ``t`` (periods are aligned on 1970-01-01 UTC)."""
    seconds = seconds or period_seconds()
    offset = int((t - _EPOCH).total_seconds()) // seconds * seconds
    return _EPOCH + timedelta(seconds=offset)


def period_label(start: datetime) -> str:
    """A period's start in ledger keys: ``20261205T0000``."""
    return start.strftime("%Y%m%dT%H%M")


def epoch_seconds(t: datetime) -> int:
    return int(t.replace(tzinfo=UTC).timestamp())


# --- edges ---

@lru_cache(maxsize=8192)
def _house_edge(game: str, params_json: str, config_key: int) -> Fraction:
    del config_key  # part of the cache key only: a new games config computes again
    g = GAMES.get(game)
    if g is None:
        return Fraction(0)
    try:
        rtp = g.rtp(g.parse_params(json.loads(params_json)))
    except (GameError, ValueError, TypeError, KeyError):
        log.warning("loyalty_edge_unknown", game=game, params=params_json[:100])
        return Fraction(0)
    return min(max(1 - rtp, Fraction(0)), MAX_EDGE)


def house_edge(game: str, params_json: str) -> Fraction:
    """A house bet's edge: 1 - the exact RTP of its game and parameters (games/house,
    from the games configuration in force), between 0 and 10%."""
    from casino_app.games.config import get_config

    return _house_edge(game, params_json, id(get_config()))


def provider_edge(rtp_e4: int | None) -> Fraction:
    """A provider game's edge: 1 - its declared RTP, at most 10% (a provider cannot
    inflate rakeback by declaring a low RTP); none when it declared no RTP (0)."""
    if not rtp_e4 or rtp_e4 <= 0 or rtp_e4 >= RTP_ONE:
        return Fraction(0)
    return min(Fraction(RTP_ONE - rtp_e4, RTP_ONE), MAX_EDGE)


def rakeback(edge_volume: Fraction, rakeback_bps: int) -> int:
    """``floor(sum(stake x edge) x bps / 10000)``: base units."""
    value = edge_volume * rakeback_bps / BPS
    return value.numerator // value.denominator


def usd_e2(amount: int, decimals: int, usd_rate: Decimal) -> int:
    """``amount`` base units at ``usd_rate`` USD per coin, in whole US cents (down)."""
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        cents = Decimal(amount).scaleb(-decimals) * usd_rate * 100
        return int(cents.to_integral_value(rounding=ROUND_FLOOR))


def from_usd_e2(cents: int, decimals: int, usd_rate: Decimal) -> int:
    """``cents`` US cents in base units of a coin worth ``usd_rate`` USD (down)."""
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        units = (Decimal(cents) / 100 / usd_rate).scaleb(decimals)
        return int(units.to_integral_value(rounding=ROUND_FLOOR))


def dice_side(params_json: str) -> str | None:
    """"over" or "under" for a near-even dice bet (win chance within NEAR_EVEN_E2)."""
    g = GAMES["dice"]
    try:
        p = g.parse_params(json.loads(params_json))
    except (GameError, ValueError, TypeError, KeyError):
        return None
    lo, hi = NEAR_EVEN_E2
    return p.direction if lo <= p.chance_e2 <= hi else None
