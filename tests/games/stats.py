"""Chi-square statistics without scipy: the regularized incomplete gamma function
(Numerical Recipes' series and continued fraction) gives exact tail probabilities."""

from __future__ import annotations

import math
from collections.abc import Sequence

Z_99 = 2.5758293035489004  # two-sided 99% normal quantile


def _gamma_p_series(a: float, x: float) -> float:
    term = total = 1.0 / a
    ap = a
    for _ in range(100_000):
        ap += 1
        term *= x / ap
        total += term
        if abs(term) < abs(total) * 1e-15:
            break
    return total * math.exp(-x + a * math.log(x) - math.lgamma(a))


def _gamma_q_fraction(a: float, x: float) -> float:
    tiny = 1e-300
    b = x + 1 - a
    c = 1 / tiny
    d = 1 / b
    h = d
    for i in range(1, 100_000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-15:
            break
    return math.exp(-x + a * math.log(x) - math.lgamma(a)) * h


def chi2_sf(x: float, df: int) -> float:
    """P(chi-square with df degrees of freedom > x)."""
    if x <= 0:
        return 1.0
    a, half = df / 2, x / 2
    if half < a + 1:
        return 1.0 - _gamma_p_series(a, half)
    return _gamma_q_fraction(a, half)


def chi2_critical(df: int, alpha: float = 0.01) -> float:
    """The value exceeded with probability alpha (bisection on chi2_sf)."""
    lo, hi = 0.0, df + 50 * math.sqrt(2 * df) + 50
    for _ in range(200):
        mid = (lo + hi) / 2
        if chi2_sf(mid, df) > alpha:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def pearson(observed: Sequence[float], expected: Sequence[float]) -> float:
    assert len(observed) == len(expected)
    return sum((o - e) ** 2 / e for o, e in zip(observed, expected, strict=True))
