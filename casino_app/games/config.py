"""House edges and payout tables of the house games.

The built-in values live in ``tables.json`` beside this module (Stake's published plinko
and keno tables, 1% edge for dice, limbo and mines). An operator may override any part
with the JSON file named by ``CASINO_GAMES_CONFIG_FILE``; it has the same shape and is
merged over the built-in values down to single tables::

    {
      "dice":   {"house_edge": 0.01},
      "limbo":  {"house_edge": 0.01},
      "mines":  {"house_edge": 0.02},
      "plinko": {"high": {"16": [1000, 130, 26, 9, 4, 2, 0.2, ...]}},
      "keno":   {"classic": {"3": [0, 1, 3.1, 10.4]}}
    }

Plinko tables are keyed by risk (low, medium, high) then rows (8..16) and hold rows + 1
multipliers, one per bucket (bucket = number of rights). Keno tables are keyed by risk
(classic, low, medium, high) then number of picks (1..10) and hold picks + 1
multipliers, indexed by the number of matches. Multipliers have at most 4 decimals.
Keys starting with ``_`` are comments and ignored.

Everything is checked when the file is loaded (``ConfigError`` names the bad key): house
edges between 0 and 10%, the right number of entries, no negative values, and every
table's theoretical return to player below 100%. Numbers are read as exact decimals, so
``0.01`` means exactly 1/100.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from functools import cache
from importlib import resources
from math import comb
from pathlib import Path
from typing import Any

from casino_app.core.settings import ConfigError

E4 = 10_000  # multipliers are integers in units of 1/10000
PLINKO_RISKS = ("low", "medium", "high")
PLINKO_ROWS = range(8, 17)
KENO_RISKS = ("classic", "low", "medium", "high")
KENO_PICKS = range(1, 11)
KENO_SQUARES = 40
KENO_DRAWN = 10
EDGE_GAMES = ("dice", "limbo", "mines")
MAX_EDGE = Fraction(1, 10)
# The published limbo formula multiplies by 0.99: its edge is part of the outcome.
LIMBO_EDGE = Fraction(1, 100)
MAX_TABLE_MULTIPLIER_E4 = 1_000_000 * E4

Table = tuple[int, ...]


@dataclass(frozen=True)
class GamesConfig:
    """Validated games configuration; multipliers in 1/10000 units."""

    house_edge: Mapping[str, Fraction]  # "dice", "limbo", "mines"
    plinko: Mapping[str, Mapping[int, Table]]  # risk -> rows -> multiplier per bucket
    keno: Mapping[str, Mapping[int, Table]]  # risk -> picks -> multiplier per matches
    source: str  # "built-in" or the override file's path


# -- probabilities shared with the games -------------------------------------------------

@cache
def plinko_probabilities(rows: int) -> tuple[Fraction, ...]:
    """P(bucket = k) for k = 0..rows: binomial(rows, 1/2)."""
    return tuple(Fraction(comb(rows, k), 2**rows) for k in range(rows + 1))


@cache
def keno_probabilities(picks: int) -> tuple[Fraction, ...]:
    """P(matches = k) for k = 0..picks: hypergeometric, 10 drawn from 40."""
    total = comb(KENO_SQUARES, KENO_DRAWN)
    return tuple(Fraction(comb(picks, k) * comb(KENO_SQUARES - picks, KENO_DRAWN - k), total)
                 for k in range(picks + 1))


def table_rtp(probabilities: tuple[Fraction, ...], table: Table) -> Fraction:
    return sum((p * m for p, m in zip(probabilities, table, strict=True)), Fraction(0)) / E4


# -- loading -----------------------------------------------------------------------------

def _read_json(text: str, where: str) -> dict[str, Any]:
    try:
        data = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: must be a JSON object")
    return data


def _decimal(value: Any, key: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise ConfigError(f"{key}: must be a number")
    try:
        d = Decimal(value) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise ConfigError(f"{key}: must be a number (got {value!r})") from None
    if not d.is_finite():
        raise ConfigError(f"{key}: must be a finite number")
    return d


def _edge(value: Any, key: str) -> Fraction:
    edge = Fraction(_decimal(value, key))
    if not 0 <= edge <= MAX_EDGE:
        raise ConfigError(f"{key}: must be between 0 and 0.10 (0% to 10%), got {value}")
    return edge


def _table(value: Any, key: str, length: int, probabilities: tuple[Fraction, ...]) -> Table:
    if not isinstance(value, list):
        raise ConfigError(f"{key}: must be a list of {length} multipliers")
    if len(value) != length:
        raise ConfigError(f"{key}: must have {length} multipliers, has {len(value)}")
    out = []
    for i, item in enumerate(value):
        d = _decimal(item, f"{key}[{i}]")
        if d < 0:
            raise ConfigError(f"{key}[{i}]: must not be negative, got {item}")
        e4 = d * E4
        if e4 != e4.to_integral_value():
            raise ConfigError(f"{key}[{i}]: at most 4 decimals, got {item}")
        if e4 > MAX_TABLE_MULTIPLIER_E4:
            raise ConfigError(f"{key}[{i}]: at most 1000000x, got {item}")
        out.append(int(e4))
    table = tuple(out)
    rtp = table_rtp(probabilities, table)
    if rtp >= 1:
        raise ConfigError(f"{key}: theoretical return to player is {float(rtp):.4%}, "
                          "it must be below 100%")
    return table


def _known(section: Mapping[str, Any], allowed: Any, where: str) -> list[str]:
    """Keys of ``section`` without comments; an unknown key is an error."""
    keys = [k for k in section if not k.startswith("_")]
    allowed_s = [str(a) for a in allowed]
    for k in keys:
        if k not in allowed_s:
            raise ConfigError(f"{where}{k}: unknown key (expected one of "
                              f"{', '.join(allowed_s)})")
    return keys


def _section(data: Mapping[str, Any], name: str, where: str) -> Mapping[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{where}{name}: must be a JSON object")
    return value


def _apply(raw: Mapping[str, Any], where: str, edges: dict[str, Fraction],
           plinko: dict[str, dict[int, Table]], keno: dict[str, dict[int, Table]]) -> None:
    """Validate ``raw`` and write what it sets into the three mappings."""
    _known(raw, (*EDGE_GAMES, "plinko", "keno"), where)
    for game in EDGE_GAMES:
        section = _section(raw, game, where)
        _known(section, ("house_edge",), f"{where}{game}.")
        if "house_edge" in section:
            key = f"{where}{game}.house_edge"
            edge = _edge(section["house_edge"], key)
            if game == "limbo" and edge != LIMBO_EDGE:
                raise ConfigError(f"{key}: must be 0.01: the published limbo formula "
                                  "(x 0.99) fixes the edge, another value would break "
                                  "third-party verification")
            edges[game] = edge
    for game, risks, sizes, probs, target in (
        ("plinko", PLINKO_RISKS, PLINKO_ROWS, plinko_probabilities, plinko),
        ("keno", KENO_RISKS, KENO_PICKS, keno_probabilities, keno),
    ):
        section = _section(raw, game, where)
        for risk in _known(section, risks, f"{where}{game}."):
            tables = _section(section, risk, f"{where}{game}.")
            for size in _known(tables, sizes, f"{where}{game}.{risk}."):
                n = int(size)
                key = f"{where}{game}.{risk}.{size}"
                target.setdefault(risk, {})[n] = _table(tables[size], key, n + 1, probs(n))


def _builtin_text() -> str:
    return resources.files("casino_app.games").joinpath("tables.json").read_text("utf-8")


def load_config(path: Path | None = None) -> GamesConfig:
    """The built-in tables, overridden by the JSON file at ``path`` if given."""
    edges: dict[str, Fraction] = {}
    plinko: dict[str, dict[int, Table]] = {}
    keno: dict[str, dict[int, Table]] = {}
    _apply(_read_json(_builtin_text(), "tables.json"), "", edges, plinko, keno)
    source = "built-in"
    if path is not None:
        where = f"games config {path}"
        try:
            text = Path(path).read_text("utf-8")
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read ({exc.strerror or exc})") from None
        _apply(_read_json(text, where), f"{where}: ", edges, plinko, keno)
        source = str(path)
    missing = [g for g in EDGE_GAMES if g not in edges]
    missing += [f"plinko.{r}.{n}" for r in PLINKO_RISKS for n in PLINKO_ROWS
                if n not in plinko.get(r, {})]
    missing += [f"keno.{r}.{n}" for r in KENO_RISKS for n in KENO_PICKS
                if n not in keno.get(r, {})]
    if missing:  # only possible if tables.json itself is incomplete
        raise ConfigError(f"games config: missing {', '.join(missing)}")
    return GamesConfig(house_edge=edges, plinko=plinko, keno=keno, source=source)


@cache
def get_config() -> GamesConfig:
    """The configuration in force (loaded once; ``reset_config()`` forgets it)."""
    from casino_app.core.settings import get_settings

    return load_config(get_settings().games_config_file)


def reset_config() -> None:
    get_config.cache_clear()
