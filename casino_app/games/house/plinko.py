"""Plinko: a ball falls through 8 to 16 rows of pegs into a bucket of the payout table.

Outcome: one float per row, ``direction = floor(f * 2)`` (0 left, 1 right); the bucket
is the number of rights (0..rows). Exactly half of the 2**32 floats go right, so the
bucket is binomial(rows, 1/2) exactly. The multiplier is the configured table value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

from casino_app.games.config import (
    PLINKO_RISKS,
    PLINKO_ROWS,
    Table,
    get_config,
    plinko_probabilities,
    table_rtp,
)
from casino_app.games.house.base import (
    Game,
    GameError,
    parse_choice,
    parse_int,
    reject_unknown,
    require,
)


@dataclass(frozen=True)
class PlinkoParams:
    rows: int
    risk: Literal["low", "medium", "high"]

    def to_json(self) -> dict[str, Any]:
        return {"rows": self.rows, "risk": self.risk}


def plinko_bucket(floats: Sequence[float]) -> int:
    """Number of rights: one float per row, right iff floor(f * 2) == 1."""
    return sum(int(f * 2) for f in floats)


def check_rows(rows: int, field: str = "rows") -> int:
    if rows not in PLINKO_ROWS:
        raise GameError(f"{field}: must be between {PLINKO_ROWS[0]} and {PLINKO_ROWS[-1]}")
    return rows


class Plinko(Game[PlinkoParams, int]):
    name = "plinko"
    title = "Plinko"
    category = "Instant"
    description = "Drop a ball through 8 to 16 rows of pegs; the bucket it lands in pays."

    def parse_params(self, raw: Mapping[str, Any]) -> PlinkoParams:
        reject_unknown(raw, ("rows", "risk"))
        rows = check_rows(parse_int(require(raw, "rows"), "rows"))
        risk = parse_choice(require(raw, "risk"), "risk", PLINKO_RISKS)
        return PlinkoParams(rows, risk)  # type: ignore[arg-type]

    def floats_needed(self, params: PlinkoParams) -> int:
        return params.rows

    def outcome_from_floats(self, floats: Sequence[float]) -> int:
        check_rows(len(floats), "floats")
        return plinko_bucket(floats)

    def table(self, params: PlinkoParams) -> Table:
        return get_config().plinko[params.risk][params.rows]

    def multiplier_e4(self, params: PlinkoParams, outcome: int) -> int:
        if isinstance(outcome, bool) or not isinstance(outcome, int) \
                or not 0 <= outcome <= params.rows:
            raise GameError(f"outcome: a plinko bucket is 0 to {params.rows}")
        return self.table(params)[outcome]

    def max_multiplier_e4(self, params: PlinkoParams) -> int:
        return max(self.table(params))

    def rtp(self, params: PlinkoParams) -> Fraction:
        return table_rtp(plinko_probabilities(params.rows), self.table(params))
