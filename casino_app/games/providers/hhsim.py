"""The fairness scheme "hhsim-1" of the reference provider (``casino provider-sim``).

Published and pure: no I/O, no randomness, nothing else from ``casino_app``. The
provider uses it to play, the casino's verifier (and anyone) to check a round once its
seed is revealed.

- Before a round the provider draws a secret 32-byte seed ``S`` (64 lowercase hex) and
  publishes ``H = sha256(bytes.fromhex(S)).hexdigest()``; after the round it reveals ``S``.
- The k-th draw of a round (k = 0, 1, ...) is ``X / 2**52`` with
  ``X = int(HMAC-SHA256(key=bytes.fromhex(S), msg=f"{round_id}:{k}").hexdigest()[:13], 16)``.
  Outcomes compare ``X`` with integer thresholds: every probability below is a multiple of
  ``2**-16``, so each game's RTP is an exact fraction.
- ``hh-slot``: one spin = one draw (k = 0) = one bet and one win. The draw falls in the
  first row of the paytable whose cumulative weight exceeds ``X >> 36`` (0 .. 65535).
- ``hh-ladder``: up to five steps, each a bet of the same stake; step k (0-based) uses
  draw k and wins ``mult`` when ``X >> 36 < weight`` (a 1/2, 1/4, ... chance). Every step
  returns 97% on its own, so the round does whatever the player stops at.
- A win is ``stake * mult // 100`` (``mult`` in hundredths); stakes that are multiples of
  100 base units make every win exact.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

SCHEME = "hhsim-1"
DRAW_BITS = 52
WEIGHT_BITS = 16
WEIGHT_TOTAL = 1 << WEIGHT_BITS  # 65536: every probability is weight / WEIGHT_TOTAL
_HEX64 = re.compile(r"[0-9a-f]{64}")


class SchemeError(ValueError):
    """A seed, round id, game or list of bets the scheme cannot use."""


@dataclass(frozen=True)
class Row:
    """``weight`` out of 65536 chances, paying ``mult`` hundredths of the stake."""

    weight: int
    mult: int


@dataclass(frozen=True)
class SlotTable:
    """Rows tried in order; the weights of all rows sum to 65536."""

    rows: tuple[Row, ...]

    def rtp(self) -> Fraction:
        return Fraction(sum(r.weight * r.mult for r in self.rows), WEIGHT_TOTAL * 100)

    def check(self) -> None:
        if sum(r.weight for r in self.rows) != WEIGHT_TOTAL:
            raise SchemeError("slot weights must sum to 65536")


@dataclass(frozen=True)
class LadderTable:
    """One row a step: the chance to win that step and what it pays."""

    steps: tuple[Row, ...]

    def step_rtp(self, step: int) -> Fraction:
        row = self.steps[step]
        return Fraction(row.weight * row.mult, WEIGHT_TOTAL * 100)

    def rtp(self) -> Fraction:
        """The RTP of any round: every step returns the same (checked), so it does not
        depend on where the player stops."""
        rates = {self.step_rtp(i) for i in range(len(self.steps))}
        if len(rates) != 1:
            raise SchemeError("every ladder step must have the same RTP")
        return rates.pop()


# The declared paytables. 50x, 10x, 5x, 2x, 1.28x, else nothing: RTP exactly 96.00%.
SLOT = SlotTable((Row(256, 5000), Row(1024, 1000), Row(2048, 500), Row(6144, 200),
                  Row(13552, 128), Row(42512, 0)))
# Step 1: 1/2 for 1.94x, step 2: 1/4 for 3.88x ... step 5: 1/32 for 31.04x; 97.00% each.
LADDER = LadderTable(tuple(Row(WEIGHT_TOTAL >> (i + 1), 194 << i) for i in range(5)))

GAMES: dict[str, SlotTable | LadderTable] = {"hh-slot": SLOT, "hh-ladder": LADDER}
DECLARED_RTP: dict[str, Fraction] = {"hh-slot": Fraction(96, 100),
                                     "hh-ladder": Fraction(97, 100)}


def rtp_text(game: str) -> str:
    """The declared RTP as the game lists print it: "96.00" (hundredths of a percent)."""
    basis_points = DECLARED_RTP[game] * 10000
    if basis_points.denominator != 1:
        raise SchemeError("a declared RTP is a whole number of hundredths of a percent")
    bp = basis_points.numerator
    return f"{bp // 100}.{bp % 100:02d}"


def _seed_bytes(seed: str) -> bytes:
    if not isinstance(seed, str) or not _HEX64.fullmatch(seed):
        raise SchemeError("a seed is 64 lowercase hex characters")
    return bytes.fromhex(seed)


def commitment(seed: str) -> str:
    """The seed hash published before the round: sha256 of the seed's 32 bytes, hex."""
    return hashlib.sha256(_seed_bytes(seed)).hexdigest()


def verify(seed: str, seed_hash: str) -> bool:
    """Does the revealed ``seed`` match the hash published before the round?"""
    try:
        expected = commitment(seed)
    except SchemeError:
        return False
    return isinstance(seed_hash, str) and hmac.compare_digest(expected, seed_hash.lower())


def draw_bits(seed: str, round_id: str, k: int) -> int:
    """The k-th draw of a round as an integer X in [0, 2**52)."""
    if not isinstance(round_id, str) or not round_id:
        raise SchemeError("a round id is a non-empty string")
    if not isinstance(k, int) or k < 0:
        raise SchemeError("a draw index is an integer >= 0")
    digest = hmac.new(_seed_bytes(seed), f"{round_id}:{k}".encode(), hashlib.sha256)
    return int(digest.hexdigest()[:13], 16)


def draw(seed: str, round_id: str, k: int) -> float:
    """The k-th draw of a round in [0, 1): X / 2**52, exact as a float."""
    return draw_bits(seed, round_id, k) / 2**DRAW_BITS


def _chance(seed: str, round_id: str, k: int) -> int:
    """The draw's top 16 bits, 0 .. 65535, compared with the weights."""
    return draw_bits(seed, round_id, k) >> (DRAW_BITS - WEIGHT_BITS)


def slot_multiplier(seed: str, round_id: str, table: SlotTable = SLOT) -> int:
    u = _chance(seed, round_id, 0)
    cumulative = 0
    for row in table.rows:
        cumulative += row.weight
        if u < cumulative:
            return row.mult
    return 0


def ladder_multiplier(seed: str, round_id: str, step: int, table: LadderTable = LADDER) -> int:
    if not 0 <= step < len(table.steps):
        raise SchemeError(f"the ladder has {len(table.steps)} steps")
    row = table.steps[step]
    return row.mult if _chance(seed, round_id, step) < row.weight else 0


def multipliers(game: str, seed: str, round_id: str, n_bets: int, *,
                table: SlotTable | LadderTable | None = None) -> list[int]:
    """The multiplier (hundredths) of each bet of a round, in order."""
    chosen = table if table is not None else GAMES.get(game)
    if isinstance(chosen, SlotTable):
        if n_bets != 1:
            raise SchemeError("a slot round is one bet")
        return [slot_multiplier(seed, round_id, chosen)]
    if isinstance(chosen, LadderTable):
        if not 1 <= n_bets <= len(chosen.steps):
            raise SchemeError(f"a ladder round is 1 to {len(chosen.steps)} bets")
        return [ladder_multiplier(seed, round_id, i, chosen) for i in range(n_bets)]
    raise SchemeError(f"unknown game {game!r}")


def payouts(game: str, seed: str, round_id: str, bets: Sequence[int], *,
            table: SlotTable | LadderTable | None = None) -> list[int]:
    """The win of each bet, in the bets' unit: ``stake * mult // 100``. ``table``
    replaces the declared paytable (only to show what a dishonest one would pay)."""
    for stake in bets:
        if not isinstance(stake, int) or isinstance(stake, bool) or stake < 0:
            raise SchemeError("bets are integers >= 0")
    mults = multipliers(game, seed, round_id, len(bets), table=table)
    return [stake * mult // 100 for stake, mult in zip(bets, mults, strict=True)]
