"""Statistical checks of every game over 10**6 bets each (FAIRNESS.md asks for a chi-square
at 99% confidence over at least a million draws, and a measured RTP near the theory).

The bets are real ones: a server seed, client seed "statistics", nonces 0..N-1, through
the engine's float stream and each game's outcome mapping; RTPs are measured by settling
every outcome with the game's own ``multiplier_e4``. Expected frequencies are exact (over
the 2**32 floats for dice, limbo and plinko; hypergeometric / uniform for keno and mines,
which are within 1e-8 of exact).

The server seeds are fixed (derived from the game's name) so that the suite is
reproducible: a check at 99% confidence fails 1 run in 100 by design, which a CI must not
see at random. ``HASHHOUSE_FRESH_SEEDS=1`` draws new seeds instead.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections import Counter
from collections.abc import Callable, Sequence
from fractions import Fraction
from itertools import chain
from typing import Any

import pytest

from casino_app.games import fairness
from casino_app.games.config import keno_probabilities, plinko_probabilities
from casino_app.games.house import (
    GAMES,
    MinesParams,
    dice_roll_e2,
    keno_hits,
    limbo_result_e2,
    mine_tiles,
    payout,
    plinko_bucket,
)
from casino_app.games.house.dice import ROLLS, rolls_below
from casino_app.games.house.limbo import floats_reaching
from casino_app.games.house.mines import safe_probability
from tests.games.stats import Z_99, chi2_critical, chi2_sf, pearson

N = 1_000_000
CLIENT = "statistics"
TWO_32 = 2**32
dice, limbo, plinko, keno, mines = (GAMES[n] for n in ("dice", "limbo", "plinko", "keno",
                                                        "mines"))


def server_seed(name: str) -> str:
    if os.environ.get("HASHHOUSE_FRESH_SEEDS"):
        return fairness.new_server_seed()
    return hashlib.sha256(f"hashhouse statistical test: {name}".encode()).hexdigest()


def draws(name: str, count: int, mapping: Callable[[list[float]], Any], n: int = N) -> Any:
    """Yield ``mapping(floats)`` for nonces 0..n-1 of a fixed seed."""
    source = fairness.FloatSource(server_seed(name))
    floats = source.floats
    return (mapping(floats(CLIENT, nonce, count)) for nonce in range(n))


def merge_small(observed: list[float], expected: list[float], least: float = 5.0
                ) -> tuple[list[float], list[float]]:
    """Merge neighbouring cells until every expected count is at least ``least``."""
    obs, exp = [], []
    o_acc = e_acc = 0.0
    for o, e in zip(observed, expected, strict=True):
        o_acc += o
        e_acc += e
        if e_acc >= least:
            obs.append(o_acc)
            exp.append(e_acc)
            o_acc = e_acc = 0.0
    if e_acc:
        obs[-1] += o_acc
        exp[-1] += e_acc
    return obs, exp


def check_chi_square(label: str, observed: Sequence[float], expected: Sequence[float],
                     scale: float = 1.0) -> None:
    """Pearson's statistic (times ``scale``) against the 99% critical value."""
    obs, exp = merge_small(list(observed), list(expected))
    assert abs(sum(obs) - sum(exp)) < 1e-6 * sum(exp)
    df = len(obs) - 1
    stat = pearson(obs, exp) * scale
    crit = chi2_critical(df)
    print(f"\n{label}: chi2 = {stat:.1f}, df = {df}, 99% critical = {crit:.1f}, "
          f"p = {chi2_sf(stat, df):.3f}")
    assert stat < crit, f"{label}: chi-square {stat:.1f} >= {crit:.1f} (df {df})"


def check_rtp(label: str, dist: dict[int, int], settle: Callable[[int], int],
              theory: Fraction, probabilities: dict[int, Fraction] | None = None) -> None:
    """Measured RTP (mean multiplier of ``dist``'s outcomes) within the 99% interval of the
    theoretical one; the interval uses the multiplier's exact variance."""
    n = sum(dist.values())
    measured = sum(c * settle(o) for o, c in dist.items()) / 10_000 / n
    if probabilities is None:
        second = None
    else:
        second = sum(float(p) * (settle(o) / 10_000) ** 2 for o, p in probabilities.items())
    var = (second if second is not None else measured**2) - float(theory) ** 2
    half = Z_99 * math.sqrt(max(var, 0.0) / n)
    print(f"\n{label}: RTP measured {measured:.5f}, theory {float(theory):.5f} "
          f"+- {half:.5f} (99%)")
    assert abs(measured - float(theory)) < half, label


# -- dice ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dice_rolls() -> Counter[int]:
    return Counter(draws("dice", 1, lambda fl: dice_roll_e2(fl[0])))


def roll_probability(r: int) -> Fraction:
    return Fraction(rolls_below(r + 1) - rolls_below(r), TWO_32)


@pytest.mark.slow
def test_dice_rolls_are_uniform(dice_rolls: Counter[int]) -> None:
    assert sum(dice_rolls.values()) == N and set(dice_rolls) <= set(range(ROLLS))
    expected = [N * roll_probability(r) for r in range(ROLLS)]
    check_chi_square("dice, each of the 10001 rolls", [dice_rolls[r] for r in range(ROLLS)],
                     [float(e) for e in expected])
    # and 101 coarse cells: 0.00-0.99, 1.00-1.99, ..., 99.00-99.99, 100.00
    cells = [range(a, min(a + 100, ROLLS)) for a in range(0, ROLLS, 100)]
    check_chi_square("dice, rolls by whole number",
                     [sum(dice_rolls[r] for r in c) for c in cells],
                     [float(sum(expected[r] for r in c)) for c in cells])


@pytest.mark.slow
@pytest.mark.parametrize("target, direction", [("50", "over"), ("10", "under"),
                                               ("75.5", "over")])
def test_dice_measured_rtp(dice_rolls: Counter[int], target: str, direction: str) -> None:
    p = dice.parse_params({"target": target, "direction": direction})
    check_rtp(f"dice {direction} {target}", dice_rolls,
              lambda r: dice.multiplier_e4(p, r / 100), dice.rtp(p),
              {r: roll_probability(r) for r in range(ROLLS)})


# -- limbo ---------------------------------------------------------------------------------

LIMBO_EDGES = ["1.00", "1.01", "1.1", "1.25", "1.5", "2", "3", "5", "10", "20", "50", "100",
               "1000"]


@pytest.fixture(scope="module")
def limbo_results() -> Counter[int]:
    return Counter(draws("limbo", 1, lambda fl: limbo_result_e2(fl[0])))


def reach(t_e2: int) -> Fraction:
    """P(result >= t), exact."""
    return Fraction(floats_reaching(t_e2), TWO_32)


@pytest.mark.slow
def test_limbo_results_follow_the_formula(limbo_results: Counter[int]) -> None:
    edges = [round(float(e) * 100) for e in LIMBO_EDGES] + [None]
    observed, expected = [], []
    for lo, hi in zip(edges, edges[1:], strict=False):
        observed.append(sum(c for r, c in limbo_results.items()
                            if r >= lo and (hi is None or r < hi)))
        p = reach(lo) - (reach(hi) if hi is not None else 0)
        expected.append(float(N * p))
    assert limbo_results and min(limbo_results) >= 100
    check_chi_square("limbo, results in 13 ranges from 1.00 to 1000+", observed, expected)


@pytest.mark.slow
@pytest.mark.parametrize("target", ["1.5", "2", "10"])
def test_limbo_measured_rtp(limbo_results: Counter[int], target: str) -> None:
    p = limbo.parse_params({"target": target})
    win = limbo.win_probability(p)
    check_rtp(f"limbo target {target}", limbo_results,
              lambda r: limbo.multiplier_e4(p, r / 100), limbo.rtp(p),
              {p.target_e2: win, 100: 1 - win})


# -- plinko --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def plinko_buckets() -> Counter[int]:
    return Counter(draws("plinko", 16, plinko_bucket))


@pytest.mark.slow
def test_plinko_buckets_are_binomial(plinko_buckets: Counter[int]) -> None:
    probs = plinko_probabilities(16)
    check_chi_square("plinko 16 rows, buckets", [plinko_buckets[b] for b in range(17)],
                     [float(N * p) for p in probs])


@pytest.mark.slow
@pytest.mark.parametrize("risk", ["low", "medium"])
def test_plinko_measured_rtp(plinko_buckets: Counter[int], risk: str) -> None:
    """High risk (1000x at 1 in 65536 on each side) is left out: about 15 hits per side
    in 10**6 drops is too few for the normal approximation the interval relies on."""
    p = plinko.parse_params({"rows": 16, "risk": risk})
    check_rtp(f"plinko 16 rows {risk}", plinko_buckets,
              lambda b: plinko.multiplier_e4(p, b), plinko.rtp(p),
              dict(enumerate(plinko_probabilities(16))))


# -- keno ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def keno_stats() -> dict[str, Counter[Any]]:
    squares: Counter[int] = Counter()
    pairs: Counter[tuple[int, int]] = Counter()
    low: Counter[frozenset[int]] = Counter()  # hits among squares 1..10
    ten = frozenset(range(1, 11))
    chunk: list[list[int]] = []
    for hits in draws("keno", 10, keno_hits):
        chunk.append(hits)
        if len(chunk) == 50_000:
            squares.update(chain.from_iterable(chunk))
            pairs.update((h[0], h[1]) for h in chunk)
            low.update(ten.intersection(h) for h in chunk)
            chunk = []
    squares.update(chain.from_iterable(chunk))
    pairs.update((h[0], h[1]) for h in chunk)
    low.update(ten.intersection(h) for h in chunk)
    return {"squares": squares, "pairs": pairs, "low": low}


def matches_with_first(low: Counter[frozenset[int]], picks: int) -> Counter[int]:
    """Distribution of matches for the picks 1..picks."""
    out: Counter[int] = Counter()
    for hits, count in low.items():
        out[sum(1 for h in hits if h <= picks)] += count
    return out


@pytest.mark.slow
def test_keno_draws_are_uniform(keno_stats: dict[str, Counter[Any]]) -> None:
    squares, pairs = keno_stats["squares"], keno_stats["pairs"]
    assert sum(squares.values()) == 10 * N and set(squares) == set(range(1, 41))
    # Each draw holds 10 distinct squares, so counts are not multinomial: Pearson's
    # statistic over the 40 squares is (40 - 10) / (40 - 1) times a chi-square with 39
    # degrees of freedom.
    check_chi_square("keno, how often each square is drawn",
                     [squares[s] for s in range(1, 41)], [N / 4] * 40, scale=39 / 30)
    cells = [(a, b) for a in range(1, 41) for b in range(1, 41) if a != b]
    check_chi_square("keno, ordered (first, second) square", [pairs[c] for c in cells],
                     [N / len(cells)] * len(cells))


@pytest.mark.slow
def test_keno_matches_are_hypergeometric(keno_stats: dict[str, Counter[Any]]) -> None:
    for picks in (3, 10):
        dist = matches_with_first(keno_stats["low"], picks)
        check_chi_square(f"keno, matches of {picks} picks",
                         [dist[k] for k in range(picks + 1)],
                         [float(N * p) for p in keno_probabilities(picks)])


@pytest.mark.slow
@pytest.mark.parametrize("risk, picks", [("classic", 10), ("classic", 5), ("low", 2),
                                         ("medium", 4), ("high", 8)])
def test_keno_measured_rtp(keno_stats: dict[str, Counter[Any]], risk: str,
                           picks: int) -> None:
    p = keno.parse_params({"picks": list(range(1, picks + 1)), "risk": risk})
    table = keno.table(p)
    check_rtp(f"keno {risk} {picks} picks", matches_with_first(keno_stats["low"], picks),
              lambda k: table[k], keno.rtp(p), dict(enumerate(keno_probabilities(picks))))


# -- mines ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def mines3_stats() -> dict[str, Counter[Any]]:
    tiles: Counter[int] = Counter()
    pairs: Counter[tuple[int, int]] = Counter()
    lowest: Counter[int] = Counter()
    chunk: list[list[int]] = []
    for board in chain(draws("mines", 3, mine_tiles), [None]):
        if board is not None:
            chunk.append(board)
        if len(chunk) == 50_000 or (board is None and chunk):
            tiles.update(chain.from_iterable(chunk))
            pairs.update((b[0], b[1]) for b in chunk)
            lowest.update(map(min, chunk))
            chunk = []
    return {"tiles": tiles, "pairs": pairs, "lowest": lowest}


@pytest.mark.slow
def test_mines_boards_are_uniform(mines3_stats: dict[str, Counter[Any]]) -> None:
    tiles, pairs = mines3_stats["tiles"], mines3_stats["pairs"]
    assert sum(tiles.values()) == 3 * N and set(tiles) == set(range(25))
    # 3 distinct tiles a board: Pearson's statistic is (25 - 3) / (25 - 1) chi-square(24)
    check_chi_square("mines (3), how often each tile is a mine",
                     [tiles[t] for t in range(25)], [3 * N / 25] * 25, scale=24 / 22)
    cells = [(a, b) for a in range(25) for b in range(25) if a != b]
    check_chi_square("mines (3), ordered (first, second) mine", [pairs[c] for c in cells],
                     [N / len(cells)] * len(cells))
    # the lowest mine tile decides how far a player opening 0, 1, 2, ... gets
    lowest = mines3_stats["lowest"]
    check_chi_square("mines (3), lowest mine tile", [lowest[k] for k in range(23)],
                     [float(N * (safe_probability(3, k) - safe_probability(3, k + 1)))
                      for k in range(23)])


@pytest.mark.slow
@pytest.mark.parametrize("reveals", [1, 3, 8])
def test_mines_measured_rtp(mines3_stats: dict[str, Counter[Any]], reveals: int) -> None:
    """A player opens tiles 0, 1, ... and cashes out after ``reveals`` safe ones: the
    round pays iff the lowest mine tile is at least ``reveals``."""
    from casino_app.games.house import mines_multiplier_e4

    mult = mines_multiplier_e4(3, reveals)
    dist = Counter({1: sum(c for k, c in mines3_stats["lowest"].items() if k >= reveals)})
    dist[0] = N - dist[1]
    win = safe_probability(3, reveals)
    check_rtp(f"mines 3, cash out after {reveals}", dist, lambda w: mult * w,
              mines.rtp_by_reveals(MinesParams(3))[reveals], {1: win, 0: 1 - win})


@pytest.mark.slow
def test_mines_24_leaves_a_uniform_safe_tile() -> None:
    """24 mines take three HMAC rounds; the one safe tile is uniform (10**5 boards)."""
    n = 100_000
    safe = Counter(draws("mines24", 24, lambda fl: 300 - sum(mine_tiles(fl)), n))
    check_chi_square("mines (24), the safe tile", [safe[t] for t in range(25)], [n / 25] * 25)


# -- the whole path, small: draw, settle, pay ---------------------------------------------

def multiplier_distribution(name: str, params: Any) -> dict[int, Fraction]:
    """P(multiplier = m) for a single-step game."""
    game = GAMES[name]
    if name in ("dice", "limbo"):
        win = game.win_probability(params)
        return {game.max_multiplier_e4(params): win, 0: 1 - win}
    probs = plinko_probabilities(params.rows) if name == "plinko" \
        else keno_probabilities(len(params.picks))
    out: dict[int, Fraction] = Counter()  # type: ignore[assignment]
    for m, p in zip(game.table(params), probs, strict=True):
        out[m] += p
    return out


@pytest.mark.parametrize("name, raw", [
    ("dice", {"target": "50", "direction": "over"}),
    ("limbo", {"target": "2"}),
    ("plinko", {"rows": 8, "risk": "low"}),
    ("keno", {"picks": [1, 2, 3, 4, 5], "risk": "classic"}),
])
def test_bets_through_draw_and_payout_return_about_the_rtp(name: str,
                                                           raw: dict[str, Any]) -> None:
    """20000 bets each through parse_params, draw, multiplier_e4 and payout."""
    game = GAMES[name]
    params = game.parse_params(raw)
    seed, n, stake = server_seed(f"path {name}"), 20_000, 10**8
    paid = sum(payout(stake, game.multiplier_e4(params, game.draw(seed, CLIENT, i, params)))
               for i in range(n))
    dist = multiplier_distribution(name, params)
    mean = sum(p * m for m, p in dist.items()) / 10_000
    assert mean == game.rtp(params)
    var = float(sum(p * (Fraction(m, 10_000) - mean) ** 2 for m, p in dist.items()))
    measured = paid / stake / n
    print(f"\n{name} {raw}: {n} bets paid {measured:.4f} per unit staked, "
          f"RTP {float(mean):.4f}")
    assert abs(measured - float(mean)) < Z_99 * math.sqrt(var / n)


def test_mines_through_draw_and_cash_out() -> None:
    from casino_app.games.house import mines_cashout_e4

    seed, n, params = server_seed("path mines"), 20_000, MinesParams(5)
    wins = sum(mines_cashout_e4(5, mines.draw(seed, CLIENT, i, params), [0, 6, 12]) > 0
               for i in range(n))
    p = float(safe_probability(5, 3))
    assert abs(wins / n - p) < Z_99 * math.sqrt(p * (1 - p) / n)
