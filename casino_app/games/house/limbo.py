"""Limbo: pick a target multiplier; win it if the result reaches it.

Outcome (published formula, in this order of double operations)::

    result = max(floor((1e8 / (f * 1e8)) * 0.99 * 100) / 100, 1.00)

kept as integer hundredths. The 0.99 is the 1% house edge, fixed by the formula. The one
float ``f = 0`` (probability 2**-32) would divide by zero (JavaScript gives Infinity); it
is read as the smallest float 2**-32, which gives 4252017623.04: either way a win for
every target.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from typing import Any

from casino_app.games.config import E4
from casino_app.games.house.base import (
    Game,
    GameError,
    e2_number,
    outcome_e2,
    parse_e2,
    reject_unknown,
    require,
)

MIN_TARGET_E2 = 101  # 1.01x
MAX_TARGET_E2 = 100_000_000  # 1,000,000x
_TWO_POW_32 = 2**32
_SMALLEST_FLOAT = 2.0**-32


@dataclass(frozen=True)
class LimboParams:
    target_e2: int  # hundredths: 2.00x -> 200

    def to_json(self) -> dict[str, Any]:
        return {"target": e2_number(self.target_e2)}


def limbo_result_e2(f: float) -> int:
    """The result in hundredths (>= 100) from one float, exactly as the formula."""
    if f == 0.0:
        f = _SMALLEST_FLOAT
    return max(math.floor(1e8 / (f * 1e8) * 0.99 * 100), 100)


@cache
def floats_reaching(target_e2: int) -> int:
    """How many of the 2**32 floats k / 2**32 give a result >= ``target_e2``.

    Every double operation in the formula is monotonic, so the result never rises as k
    rises: the winners are k = 0 .. K-1, and K is found by bisection (exact).
    """
    lo, hi = 0, _TWO_POW_32  # result(k) >= target for k < lo; not for k >= hi
    while lo < hi:
        mid = (lo + hi) // 2
        if limbo_result_e2(mid / _TWO_POW_32) >= target_e2:
            lo = mid + 1
        else:
            hi = mid
    return lo


class Limbo(Game[LimboParams, float]):
    name = "limbo"
    title = "Limbo"
    category = "Instant"
    description = "Set a target multiplier and win it if the result reaches it."

    def parse_params(self, raw: Mapping[str, Any]) -> LimboParams:
        reject_unknown(raw, ("target",))
        target = parse_e2(require(raw, "target"), "target")
        if not MIN_TARGET_E2 <= target <= MAX_TARGET_E2:
            raise GameError("target: must be between 1.01 and 1000000.00")
        return LimboParams(target)

    def floats_needed(self, params: LimboParams) -> int:
        return 1

    def outcome_from_floats(self, floats: Sequence[float]) -> float:
        if len(floats) != 1:
            raise GameError("limbo takes exactly one float")
        return e2_number(limbo_result_e2(floats[0]))

    def multiplier_e4(self, params: LimboParams, outcome: float) -> int:
        result = outcome_e2(outcome)
        if result < 100:
            raise GameError("outcome: a limbo result is at least 1.00")
        return params.target_e2 * 100 if result >= params.target_e2 else 0

    def max_multiplier_e4(self, params: LimboParams) -> int:
        return params.target_e2 * 100

    def win_probability(self, params: LimboParams) -> Fraction:
        return Fraction(floats_reaching(params.target_e2), _TWO_POW_32)

    def rtp(self, params: LimboParams) -> Fraction:
        return self.win_probability(params) * (params.target_e2 * 100) / E4
