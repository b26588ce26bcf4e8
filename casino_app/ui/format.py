"""How numbers read on every page, in one place (pure functions, no Reflex).

- Amounts: ``money`` (``Currency.text``: the currency's display places, never rounded
  away, with its code).
- Multipliers: ``mult``, exact to the 1/10000 the games compute in, at least two decimals,
  with the multiplication sign: ``1.98×``, ``1.4785×``, ``0.25×``.
- Board positions: players count from 1 (``position``); the games count tiles and
  buckets from 0 internally and in ``casino verify``.
- A round's result: ``result_label`` (won only when the payout exceeds the stake).
"""

from __future__ import annotations

from casino_app.payments.currencies import currency

E4 = 10_000

# A round's result as a player reads it (``result_key`` -> label). A round is won only
# when it paid more than the stake; a payout below the stake is a partial return (Keno's
# 0.25×, Plinko's 0.2×), one equal to it gives the stake back.
RESULT_LABELS = {"won": "won", "partial": "partial return", "even": "stake back",
                 "lost": "lost", "open": "open", "void": "void"}


def mult(mult_e4: int) -> str:
    """A multiplier in 1/10000 units: ``19800`` -> ``1.98×``, ``14785`` -> ``1.4785×``."""
    whole, frac = divmod(max(0, int(mult_e4)), E4)
    decimals = f"{frac:04d}".rstrip("0").ljust(2, "0")
    return f"{whole:,}.{decimals}×"


def money(code: str, amount: int, signed: bool = False) -> str:
    """``amount`` base units of ``code`` with its code: ``1.50 FUN``, ``+0.250000 ETH``."""
    try:
        return currency(code).text(amount, signed=signed)
    except ValueError:
        return f"{amount} {code}"


def position(index: int) -> int:
    """A tile or bucket as players count it (from 1)."""
    return int(index) + 1


def result_key(state: str, stake: int, payout: int) -> str:
    """won / partial / even / lost for a settled round; open and void as they are."""
    if state in ("open", "void"):
        return state
    if payout > stake:
        return "won"
    if payout == stake:
        return "even"
    return "partial" if payout > 0 else "lost"


def result_label(state: str, stake: int, payout: int) -> str:
    return RESULT_LABELS[result_key(state, stake, payout)]
