"""Dice: roll 0.00 to 100.00, bet on over or under a target.

Outcome: ``roll = floor(f * 10001) / 100`` from one float (10001 possible rolls).
Stake's convention: "over T" wins iff roll > T with win chance 100 - T (in percent),
"under T" wins iff roll < T with win chance T. The multiplier is
``(1 - edge) * 100 / chance``, floored to 1/10000 (50.00 over at 1% edge: 1.98x).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

from casino_app.games.config import E4, get_config
from casino_app.games.house.base import (
    Game,
    GameError,
    e2_number,
    floor_e4,
    outcome_e2,
    parse_choice,
    parse_e2,
    reject_unknown,
    require,
)

ROLLS = 10_001  # 0.00 .. 100.00
MIN_CHANCE_E2 = 1  # 0.01 %
MAX_CHANCE_E2 = 9_800  # 98 %
DIRECTIONS = ("over", "under")
_TWO_POW_32 = 2**32


@dataclass(frozen=True)
class DiceParams:
    target_e2: int  # hundredths: 50.25 -> 5025
    direction: Literal["over", "under"]

    @property
    def chance_e2(self) -> int:
        """Win chance in hundredths of a percent (Stake's convention)."""
        return 10_000 - self.target_e2 if self.direction == "over" else self.target_e2

    def to_json(self) -> dict[str, Any]:
        return {"target": e2_number(self.target_e2), "direction": self.direction}


def dice_roll_e2(f: float) -> int:
    """The roll in hundredths (0..10000) from one float."""
    return math.floor(f * ROLLS)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def rolls_below(r_e2: int) -> int:
    """How many of the 2**32 possible floats give a roll below ``r_e2`` hundredths
    (f = k / 2**32 and f * 10001 is exact in a double, so the count is exact)."""
    return _ceil_div(r_e2 * _TWO_POW_32, ROLLS)


@functools.lru_cache(maxsize=4096)
def _win_multiplier_e4(edge: Fraction, chance_e2: int) -> int:
    """(1 - edge) / chance, floored to 1e-4 (exact Fractions: computed once per pair)."""
    return floor_e4((1 - edge) * 10_000 / Fraction(chance_e2))


class Dice(Game[DiceParams, float]):
    name = "dice"
    title = "Dice"
    category = "Instant"
    description = "Roll 0.00 to 100.00 and call over or under your target."

    def parse_params(self, raw: Mapping[str, Any]) -> DiceParams:
        reject_unknown(raw, ("target", "direction"))
        direction = parse_choice(require(raw, "direction"), "direction", DIRECTIONS)
        target = parse_e2(require(raw, "target"), "target")
        if direction == "over":
            lo, hi = 10_000 - MAX_CHANCE_E2, 10_000 - MIN_CHANCE_E2
        else:
            lo, hi = MIN_CHANCE_E2, MAX_CHANCE_E2
        if not lo <= target <= hi:
            raise GameError(f"target: for roll {direction} it must be between "
                            f"{lo / 100:.2f} and {hi / 100:.2f} (win chance 0.01% to 98%)")
        return DiceParams(target, direction)  # type: ignore[arg-type]

    def floats_needed(self, params: DiceParams) -> int:
        return 1

    def outcome_from_floats(self, floats: Sequence[float]) -> float:
        if len(floats) != 1:
            raise GameError("dice takes exactly one float")
        return e2_number(dice_roll_e2(floats[0]))

    def wins(self, params: DiceParams, roll_e2: int) -> bool:
        if params.direction == "over":
            return roll_e2 > params.target_e2
        return roll_e2 < params.target_e2

    def win_multiplier_e4(self, params: DiceParams) -> int:
        return _win_multiplier_e4(get_config().house_edge["dice"], params.chance_e2)

    def multiplier_e4(self, params: DiceParams, outcome: float) -> int:
        roll = outcome_e2(outcome)
        if roll > 10_000:
            raise GameError("outcome: a dice roll is at most 100.00")
        return self.win_multiplier_e4(params) if self.wins(params, roll) else 0

    def max_multiplier_e4(self, params: DiceParams) -> int:
        return self.win_multiplier_e4(params)

    def win_probability(self, params: DiceParams) -> Fraction:
        """Exact, over the 2**32 equally likely floats."""
        if params.direction == "over":  # rolls T+1 .. 10000
            wins = _TWO_POW_32 - rolls_below(params.target_e2 + 1)
        else:  # rolls 0 .. T-1
            wins = rolls_below(params.target_e2)
        return Fraction(wins, _TWO_POW_32)

    def rtp(self, params: DiceParams) -> Fraction:
        return self.win_probability(params) * self.win_multiplier_e4(params) / E4
