"""Keno: pick 1 to 10 of 40 squares; 10 squares are drawn; the matches pay.

Outcome: 10 floats (two HMAC rounds). From the list 1..40 the i-th float (i = 0..9)
picks index ``floor(f * (40 - i))`` and removes it; the hits are listed in draw order.
The multiplier is the configured table value for (risk, picks, matches).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

from casino_app.games.config import (
    KENO_DRAWN,
    KENO_PICKS,
    KENO_RISKS,
    KENO_SQUARES,
    Table,
    get_config,
    keno_probabilities,
    table_rtp,
)
from casino_app.games.house.base import (
    Game,
    GameError,
    draw_without_repeats,
    parse_choice,
    parse_int,
    reject_unknown,
    require,
)


@dataclass(frozen=True)
class KenoParams:
    picks: tuple[int, ...]  # distinct squares 1..40, ascending
    risk: Literal["classic", "low", "medium", "high"]

    def to_json(self) -> dict[str, Any]:
        return {"picks": list(self.picks), "risk": self.risk}


def keno_hits(floats: Sequence[float]) -> list[int]:
    """The squares (1..40) drawn by the floats, in draw order."""
    return [i + 1 for i in draw_without_repeats(floats, KENO_SQUARES)]


def _parse_picks(value: Any) -> tuple[int, ...]:
    if isinstance(value, str):
        value = [v for v in value.replace(" ", ",").split(",") if v]
    if not isinstance(value, list | tuple):
        raise GameError("picks: must be a list of squares 1 to 40")
    picks = [parse_int(v, "picks") for v in value]
    if not KENO_PICKS[0] <= len(picks) <= KENO_PICKS[-1]:
        raise GameError(f"picks: choose {KENO_PICKS[0]} to {KENO_PICKS[-1]} squares "
                        f"(got {len(picks)})")
    if any(not 1 <= p <= KENO_SQUARES for p in picks):
        raise GameError(f"picks: squares are numbered 1 to {KENO_SQUARES}")
    if len(set(picks)) != len(picks):
        raise GameError("picks: each square at most once")
    return tuple(sorted(picks))


class Keno(Game[KenoParams, list[int]]):
    name = "keno"
    title = "Keno"
    category = "Lottery"
    description = "Pick up to 10 of 40 squares; 10 are drawn and your matches pay."

    def parse_params(self, raw: Mapping[str, Any]) -> KenoParams:
        reject_unknown(raw, ("picks", "risk"))
        picks = _parse_picks(require(raw, "picks"))
        risk = parse_choice(require(raw, "risk"), "risk", KENO_RISKS)
        return KenoParams(picks, risk)  # type: ignore[arg-type]

    def floats_needed(self, params: KenoParams) -> int:
        return KENO_DRAWN

    def outcome_from_floats(self, floats: Sequence[float]) -> list[int]:
        if len(floats) != KENO_DRAWN:
            raise GameError(f"keno takes exactly {KENO_DRAWN} floats")
        return keno_hits(floats)

    def table(self, params: KenoParams) -> Table:
        return get_config().keno[params.risk][len(params.picks)]

    def matches(self, params: KenoParams, outcome: Sequence[int]) -> int:
        hits = set(outcome)
        if len(outcome) != KENO_DRAWN or len(hits) != KENO_DRAWN \
                or any(isinstance(h, bool) or not isinstance(h, int)
                       or not 1 <= h <= KENO_SQUARES for h in hits):
            raise GameError(f"outcome: {KENO_DRAWN} distinct squares 1 to {KENO_SQUARES}")
        return len(hits.intersection(params.picks))

    def multiplier_e4(self, params: KenoParams, outcome: list[int]) -> int:
        return self.table(params)[self.matches(params, outcome)]

    def max_multiplier_e4(self, params: KenoParams) -> int:
        return max(self.table(params))

    def rtp(self, params: KenoParams) -> Fraction:
        """Hypergeometric. (The draw maps 2**32 floats onto 40 - i indexes, so each
        index's probability differs from 1/(40 - i) by less than 1e-8 relative.)"""
        return table_rtp(keno_probabilities(len(params.picks)), self.table(params))
