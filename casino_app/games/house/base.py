"""What every house game shares: the Game interface, errors, input parsing, payouts.

Money is integers only. A multiplier is an integer in units of 1/10000 (``mult_e4``:
1.98x = 19800) and a payout is ``stake * mult_e4 // 10000``, rounded down. Floats come
only from the fairness stream and only choose outcomes.
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any, ClassVar, Generic, TypeVar

from casino_app.games import fairness
from casino_app.games.config import E4

P = TypeVar("P")
O = TypeVar("O")  # noqa: E741 - the outcome type


class GameError(ValueError):
    """Bad game input; the message names the field."""


def payout(stake: int, mult_e4: int) -> int:
    """What a bet of ``stake`` base units returns at ``mult_e4``: rounded down."""
    for name, v in (("stake", stake), ("multiplier", mult_e4)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise GameError(f"{name}: must be a whole number >= 0")
    return stake * mult_e4 // E4


def floor_e4(value: Fraction) -> int:
    """A multiplier given exactly, floored to 1/10000."""
    return math.floor(value * E4)


class Game(ABC, Generic[P, O]):
    """One house game. Subclasses set the class attributes and the maths.

    ``draw`` is the whole provably fair computation: ``floats_needed(params)`` floats
    from the seed pair and nonce, mapped by ``outcome_from_floats`` (which depends only
    on the floats: their number carries the rows of plinko or the mines of mines).
    """

    name: ClassVar[str]
    title: ClassVar[str]
    category: ClassVar[str]
    description: ClassVar[str]
    # True when a round takes several player actions (mines): multiplier_e4 is not used.
    multi_step: ClassVar[bool] = False

    @abstractmethod
    def parse_params(self, raw: Mapping[str, Any]) -> P:
        """Validate browser or CLI input; GameError names the bad field."""

    @abstractmethod
    def floats_needed(self, params: P) -> int: ...

    @abstractmethod
    def outcome_from_floats(self, floats: Sequence[float]) -> O: ...

    def draw(self, server_seed: str, client_seed: str, nonce: int, params: P) -> O:
        fl = fairness.floats(server_seed, client_seed, nonce, self.floats_needed(params))
        return self.outcome_from_floats(fl)

    @abstractmethod
    def multiplier_e4(self, params: P, outcome: O) -> int:
        """Payout multiplier of a finished single-step round, 0 on a loss."""

    @abstractmethod
    def max_multiplier_e4(self, params: P) -> int:
        """The largest multiplier a bet with these params could pay."""

    @abstractmethod
    def rtp(self, params: P) -> Fraction:
        """Exact theoretical return to player for these params."""

    def __repr__(self) -> str:
        return f"<Game {self.name}>"


# -- input parsing -------------------------------------------------------------------------

_DECIMAL_RE = re.compile(r"\d+(\.\d*)?|\.\d+")


def reject_unknown(raw: Mapping[str, Any], allowed: Sequence[str]) -> None:
    if not isinstance(raw, Mapping):
        raise GameError("parameters: must be an object of named values")
    for key in raw:
        if key not in allowed:
            raise GameError(f"{key}: unknown parameter (expected {', '.join(allowed)})")


def require(raw: Mapping[str, Any], key: str) -> Any:
    if key not in raw or raw[key] is None or raw[key] == "":
        raise GameError(f"{key}: required")
    return raw[key]


def parse_e2(value: Any, field: str) -> int:
    """A non-negative number with at most 2 decimals, as integer hundredths. Accepts an
    int, a float (read as its shortest decimal form) or a string like "50.5"."""
    if isinstance(value, bool):
        raise GameError(f"{field}: must be a number")
    if isinstance(value, int):
        d = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise GameError(f"{field}: must be a finite number")
        d = Decimal(repr(value))
    elif isinstance(value, str) and _DECIMAL_RE.fullmatch(value.strip()):
        d = Decimal(value.strip())
    elif isinstance(value, Decimal) and value.is_finite():
        d = value
    else:
        raise GameError(f"{field}: must be a number like 50.25")
    try:
        e2 = d * 100
    except InvalidOperation:  # pragma: no cover - finite decimals only
        raise GameError(f"{field}: must be a number") from None
    if e2 < 0:
        raise GameError(f"{field}: must not be negative")
    if e2 != e2.to_integral_value():
        raise GameError(f"{field}: at most 2 decimals (got {value})")
    return int(e2)


def parse_int(value: Any, field: str) -> int:
    if isinstance(value, bool):
        raise GameError(f"{field}: must be a whole number")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value.strip())
    raise GameError(f"{field}: must be a whole number")


def parse_choice(value: Any, field: str, choices: Sequence[str]) -> str:
    if isinstance(value, str) and value.strip().lower() in choices:
        return value.strip().lower()
    raise GameError(f"{field}: must be one of {', '.join(choices)}")


def outcome_e2(outcome: Any, field: str = "outcome") -> int:
    """A 2-decimal outcome (dice roll, limbo result) back as integer hundredths."""
    return parse_e2(outcome, field)


def e2_number(e2: int) -> float:
    """Integer hundredths as the JSON number players see (50.37): the double nearest
    to the 2-decimal value, exactly what the published ``floor(...) / 100`` gives."""
    return e2 / 100


def draw_without_repeats(floats: Sequence[float], size: int) -> list[int]:
    """Positions 0..size-1 drawn without repeats: from the list 0..size-1, the i-th float
    picks index ``floor(f * (size - i))`` and removes it (keno, mines)."""
    if len(floats) > size:
        raise GameError(f"at most {size} floats for a draw from {size}")
    pool = list(range(size))
    return [pool.pop(int(f * (size - i))) for i, f in enumerate(floats)]
