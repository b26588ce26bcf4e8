"""Mines: 1 to 24 mines hidden on a 5x5 grid; reveal safe tiles, cash out any time.

Outcome: one float per mine, drawn without repeats over the 25 tiles (numbered 0..24 row
by row): from the list 0..24 the i-th float picks ``floor(f * (25 - i))`` and removes it.
The mine tiles are listed in draw order (three HMAC rounds for 24 mines).

Settlement is step by step, so ``multiplier_e4(params, outcome)`` is not used: after
``k`` safe tiles the player may cash out at ``mines_multiplier_e4(mines, k)`` =
``floor(10000 * (1 - edge) * C(25, k) / C(25 - mines, k))`` (k = 0 is 1x: no cash out
before the first reveal); revealing a mine pays 0. ``mines_cashout_e4`` does both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from math import comb
from typing import Any

from casino_app.games.config import E4, get_config
from casino_app.games.house.base import (
    Game,
    GameError,
    draw_without_repeats,
    floor_e4,
    parse_int,
    reject_unknown,
    require,
)

TILES = 25
MIN_MINES, MAX_MINES = 1, 24


@dataclass(frozen=True)
class MinesParams:
    mines: int

    @property
    def safe_tiles(self) -> int:
        return TILES - self.mines

    def to_json(self) -> dict[str, Any]:
        return {"mines": self.mines}


def mine_tiles(floats: Sequence[float]) -> list[int]:
    """The mine tiles (0..24) drawn by the floats, one per float, in draw order."""
    return draw_without_repeats(floats, TILES)


def check_mines(mines: int, field: str = "mines") -> int:
    if isinstance(mines, bool) or not isinstance(mines, int) \
            or not MIN_MINES <= mines <= MAX_MINES:
        raise GameError(f"{field}: must be between {MIN_MINES} and {MAX_MINES}")
    return mines


def safe_probability(mines: int, revealed: int) -> Fraction:
    """P(the first ``revealed`` tiles a player opens are all safe)."""
    return Fraction(comb(TILES - mines, revealed), comb(TILES, revealed))


def mines_multiplier_e4(mines: int, safe_revealed: int) -> int:
    """Cash-out multiplier after ``safe_revealed`` safe tiles, floored to 1/10000."""
    check_mines(mines)
    if isinstance(safe_revealed, bool) or not isinstance(safe_revealed, int) \
            or not 0 <= safe_revealed <= TILES - mines:
        raise GameError(f"revealed: must be between 0 and {TILES - mines} "
                        f"with {mines} mines")
    if safe_revealed == 0:
        return E4
    edge = get_config().house_edge["mines"]
    return floor_e4((1 - edge) / safe_probability(mines, safe_revealed))


def mines_cashout_e4(mines: int, outcome: Sequence[int], revealed: Sequence[int]) -> int:
    """Settle a round: 0 if a revealed tile is a mine, else the multiplier for the
    number of revealed tiles. ``outcome`` is the drawn list of mine tiles."""
    check_mines(mines)
    if len(outcome) != mines or len(set(outcome)) != mines \
            or any(not isinstance(t, int) or not 0 <= t < TILES for t in outcome):
        raise GameError(f"outcome: {mines} distinct tiles 0 to {TILES - 1}")
    tiles = [parse_int(t, "revealed") for t in revealed]
    if len(set(tiles)) != len(tiles) or any(not 0 <= t < TILES for t in tiles):
        raise GameError(f"revealed: distinct tiles 0 to {TILES - 1}")
    if set(tiles) & set(outcome):
        return 0
    return mines_multiplier_e4(mines, len(tiles))


class Mines(Game[MinesParams, list[int]]):
    name = "mines"
    title = "Mines"
    category = "Multi-step"
    description = "Find the safe tiles among hidden mines and cash out before you hit one."
    multi_step = True

    def parse_params(self, raw: Mapping[str, Any]) -> MinesParams:
        reject_unknown(raw, ("mines",))
        return MinesParams(check_mines(parse_int(require(raw, "mines"), "mines")))

    def floats_needed(self, params: MinesParams) -> int:
        return params.mines

    def outcome_from_floats(self, floats: Sequence[float]) -> list[int]:
        check_mines(len(floats), "floats")
        return mine_tiles(floats)

    def multiplier_e4(self, params: MinesParams, outcome: list[int]) -> int:
        raise GameError("mines is settled step by step: use mines_cashout_e4(mines, "
                        "outcome, revealed) or mines_multiplier_e4(mines, revealed)")

    def max_multiplier_e4(self, params: MinesParams) -> int:
        return mines_multiplier_e4(params.mines, params.safe_tiles)

    def rtp_by_reveals(self, params: MinesParams) -> dict[int, Fraction]:
        """Return to player of cashing out after exactly k safe reveals, k = 1..safe."""
        return {k: safe_probability(params.mines, k)
                * mines_multiplier_e4(params.mines, k) / E4
                for k in range(1, params.safe_tiles + 1)}

    def rtp(self, params: MinesParams) -> Fraction:
        """The lowest return over every cash-out point (each is 1 - edge less the
        flooring to 1/10000; ``rtp_by_reveals`` gives them all)."""
        return min(self.rtp_by_reveals(params).values())
