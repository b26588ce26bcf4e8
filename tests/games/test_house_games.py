"""The five house games: input bounds, outcome mappings, multipliers, payouts, exact RTP."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from fractions import Fraction
from math import comb
from typing import Any

import pytest

from casino_app.games import fairness
from casino_app.games.config import KENO_PICKS, KENO_RISKS, PLINKO_RISKS, PLINKO_ROWS
from casino_app.games.house import (
    GAMES,
    GameError,
    MinesParams,
    get_game,
    limbo_result_e2,
    mines_cashout_e4,
    mines_multiplier_e4,
    payout,
    verify,
)
from tests.games import reference
from tests.games.test_fairness import SEED

dice, limbo, plinko, keno, mines = (GAMES[n] for n in ("dice", "limbo", "plinko", "keno",
                                                        "mines"))


@pytest.fixture(autouse=True)
def builtin_config(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from casino_app.core.settings import reset_settings_cache
    from casino_app.games.config import reset_config

    monkeypatch.delenv("CASINO_GAMES_CONFIG_FILE", raising=False)
    reset_settings_cache()
    reset_config()
    yield
    reset_config()
    reset_settings_cache()


def test_registry_names_titles_and_categories() -> None:
    assert list(GAMES) == ["dice", "limbo", "plinko", "keno", "mines"]
    for name, game in GAMES.items():
        assert game.name == name and game.title and game.category and game.description
        assert game.multi_step is (name == "mines")
    assert dice.category == "Instant"
    with pytest.raises(GameError, match="game: must be one of dice"):
        get_game("roulette")


# -- pinned outcomes (same vectors as the reference implementation and the JS) ------------

VECTORS = [
    ("lucky-7", 0, 20.63, 4.79, 6, 10, [9, 29, 18, 34, 35, 23, 26, 32, 16, 36], [5, 18, 10],
     [5, 18, 10, 21, 20, 13, 15, 19, 8, 22, 12, 2, 0, 16, 3, 14, 1, 9, 24, 6, 7, 23, 11, 4]),
    ("lucky-7", 1, 16.51, 5.99, 1, 5, [7, 4, 11, 5, 29, 10, 6, 3, 38, 36], [4, 1, 6],
     [4, 1, 6, 3, 18, 7, 2, 5, 23, 22, 0, 11, 21, 10, 19, 9, 12, 13, 20, 16, 14, 17, 8, 24]),
    ("HashHouse", 42, 0.53, 185.61, 2, 8, [1, 16, 2, 37, 8, 22, 13, 29, 36, 33], [0, 9, 1],
     [0, 9, 1, 23, 5, 13, 8, 18, 22, 19, 21, 16, 10, 15, 4, 12, 24, 17, 2, 6, 20, 3, 11, 14]),
    ("x", 999999, 74.18, 1.33, 6, 11, [30, 3, 26, 33, 19, 25, 24, 32, 34, 35], [18, 1, 15],
     [18, 1, 15, 20, 10, 14, 13, 21, 19, 17, 2, 11, 0, 22, 5, 12, 4, 8, 9, 3, 6, 16, 7, 24]),
]


@pytest.mark.parametrize("client, nonce, roll, result, b8, b16, hits, m3, m24", VECTORS)
def test_pinned_outcomes_of_all_five_games(client: str, nonce: int, roll: float,
                                           result: float, b8: int, b16: int,
                                           hits: list[int], m3: list[int],
                                           m24: list[int]) -> None:
    p = {"dice": dice.parse_params({"target": 50, "direction": "over"}),
         "limbo": limbo.parse_params({"target": 2}),
         "keno": keno.parse_params({"picks": [1, 2, 3], "risk": "classic"})}
    assert dice.draw(SEED, client, nonce, p["dice"]) == roll
    assert limbo.draw(SEED, client, nonce, p["limbo"]) == result
    assert plinko.draw(SEED, client, nonce, plinko.parse_params({"rows": 8, "risk": "low"})) == b8
    assert plinko.draw(SEED, client, nonce,
                       plinko.parse_params({"rows": 16, "risk": "high"})) == b16
    assert keno.draw(SEED, client, nonce, p["keno"]) == hits
    assert mines.draw(SEED, client, nonce, MinesParams(3)) == m3
    assert mines.draw(SEED, client, nonce, MinesParams(24)) == m24
    assert m24[:3] == m3  # the first mines of a bigger board are the same draw
    assert json.loads(json.dumps(roll)) == roll and round(roll * 100) / 100 == roll


def test_outcomes_match_the_naive_reference_for_random_inputs() -> None:
    rng = random.Random(11)
    over50 = dice.parse_params({"target": 50, "direction": "over"})
    to2 = limbo.parse_params({"target": 2})
    for _ in range(300):
        seed = fairness.new_server_seed()
        client = fairness.new_client_seed()
        nonce = rng.randrange(10**9)
        fl = reference.floats(seed, client, nonce, 24)
        assert dice.draw(seed, client, nonce, over50) == reference.dice(fl[0])
        assert limbo.draw(seed, client, nonce, to2) == reference.limbo(fl[0])
        rows = rng.choice(PLINKO_ROWS)
        assert plinko.draw(seed, client, nonce, plinko.parse_params(
            {"rows": rows, "risk": "low"})) == reference.plinko(fl[:rows])
        assert keno.outcome_from_floats(fl[:10]) == reference.keno(fl[:10])
        m = rng.randint(1, 24)
        assert mines.draw(seed, client, nonce, MinesParams(m)) == reference.mines(fl[:m])


def test_extreme_floats() -> None:
    top = 1 - 2**-32
    assert dice.outcome_from_floats([0.0]) == 0.0
    assert dice.outcome_from_floats([top]) == 100.0
    # f = 0 divides by zero in the published formula: read as the smallest float 2**-32
    assert limbo.outcome_from_floats([0.0]) == 4252017623.04 == reference.limbo(0.0)
    assert limbo_result_e2(2**-32) == 425201762304
    assert limbo.outcome_from_floats([top]) == 1.0
    assert limbo.outcome_from_floats([0.99 / 1.5]) in (1.49, 1.5)
    assert plinko.outcome_from_floats([0.5 - 2**-32] * 8) == 0
    assert plinko.outcome_from_floats([0.5] * 16) == 16
    assert keno.outcome_from_floats([top] * 10) == list(range(40, 30, -1))
    assert keno.outcome_from_floats([0.0] * 10) == list(range(1, 11))
    assert mines.outcome_from_floats([top] * 24) == list(range(24, 0, -1))
    for game, fl in ((dice, [0.1, 0.2]), (keno, [0.1] * 9), (plinko, [0.1] * 7),
                     (mines, [0.1] * 25)):
        with pytest.raises(GameError):
            game.outcome_from_floats(fl)


def test_verify_needs_rows_for_plinko_and_mines_for_mines_only() -> None:
    v = verify("plinko", SEED, "lucky-7", 0, rows=16)
    assert v["outcome"] == 10 and v["client_seed"] == "lucky-7" and len(v["rounds"]) == 2
    # another casino's seed is taken exactly as given, spaces included
    assert verify("plinko", SEED, " lucky-7 ", 0, rows=16)["client_seed"] == " lucky-7 "
    assert v["server_seed_hash"] == fairness.hash_server_seed(SEED)
    assert len(v["floats"]) == 16
    assert len(verify("mines", SEED, "lucky-7", 0, mines=24)["rounds"]) == 3
    assert len(verify("keno", SEED, "lucky-7", 0)["rounds"]) == 2
    with pytest.raises(GameError, match="rows: required for plinko"):
        verify("plinko", SEED, "c", 0)
    with pytest.raises(GameError, match="rows: must be between 8 and 16"):
        verify("plinko", SEED, "c", 0, rows=17)
    with pytest.raises(GameError, match="rows: only plinko"):
        verify("dice", SEED, "c", 0, rows=8)
    with pytest.raises(GameError, match="mines: required"):
        verify("mines", SEED, "c", 0)
    with pytest.raises(GameError, match="mines: must be between 1 and 24"):
        verify("mines", SEED, "c", 0, mines=25)
    with pytest.raises(fairness.FairnessError, match="client seed: not valid Unicode"):
        verify("dice", SEED, "a\ud800b", 0)


# -- parameters --------------------------------------------------------------------------

@pytest.mark.parametrize("raw, target_e2, direction", [
    ({"target": "50", "direction": "over"}, 5000, "over"),
    ({"target": 50.5, "direction": "UNDER "}, 5050, "under"),
    ({"target": " 2.00", "direction": "over"}, 200, "over"),
    ({"target": 99.99, "direction": "over"}, 9999, "over"),
    ({"target": "0.01", "direction": "under"}, 1, "under"),
    ({"target": 98, "direction": "under"}, 9800, "under"),
])
def test_dice_params_accept_two_decimals_within_the_win_chance_bounds(
        raw: dict[str, Any], target_e2: int, direction: str) -> None:
    p = dice.parse_params(raw)
    assert (p.target_e2, p.direction) == (target_e2, direction)
    assert dice.parse_params(p.to_json()) == p


@pytest.mark.parametrize("raw, message", [
    ({"target": "1.99", "direction": "over"}, "between 2.00 and 99.99"),
    ({"target": 100, "direction": "over"}, "between 2.00 and 99.99"),
    ({"target": 98.01, "direction": "under"}, "between 0.01 and 98.00"),
    ({"target": 0, "direction": "under"}, "between 0.01 and 98.00"),
    ({"target": "50.123", "direction": "over"}, "target: at most 2 decimals"),
    ({"target": 0.1 + 0.2, "direction": "under"}, "target: at most 2 decimals"),
    ({"target": "abc", "direction": "over"}, "target: must be a number"),
    ({"target": "-5", "direction": "over"}, "target: must be a number"),
    ({"target": float("nan"), "direction": "over"}, "target: must be a finite number"),
    ({"target": True, "direction": "over"}, "target: must be a number"),
    ({"target": 50, "direction": "sideways"}, "direction: must be one of over, under"),
    ({"direction": "over"}, "target: required"),
    ({"target": 50, "direction": "over", "amount": 5}, "amount: unknown parameter"),
])
def test_dice_params_refuse_bad_input_naming_the_field(raw: dict[str, Any],
                                                       message: str) -> None:
    with pytest.raises(GameError, match=message):
        dice.parse_params(raw)


def test_limbo_params() -> None:
    assert limbo.parse_params({"target": "1.01"}).target_e2 == 101
    assert limbo.parse_params({"target": 1000000}).target_e2 == 100_000_000
    assert limbo.parse_params({"target": "2.5"}).to_json() == {"target": 2.5}
    for bad in ("1.00", "1000000.01", 0, "1.005"):
        with pytest.raises(GameError, match="target"):
            limbo.parse_params({"target": bad})


def test_plinko_params() -> None:
    p = plinko.parse_params({"rows": "12", "risk": "Medium"})
    assert (p.rows, p.risk) == (12, "medium") and plinko.parse_params(p.to_json()) == p
    for raw, msg in (({"rows": 7, "risk": "low"}, "rows: must be between 8 and 16"),
                     ({"rows": 17, "risk": "low"}, "rows: must be between 8 and 16"),
                     ({"rows": 12.5, "risk": "low"}, "rows: must be a whole number"),
                     ({"rows": 12, "risk": "extreme"}, "risk: must be one of low, medium")):
        with pytest.raises(GameError, match=msg):
            plinko.parse_params(raw)


def test_keno_params() -> None:
    p = keno.parse_params({"picks": [40, "3", 17], "risk": "classic"})
    assert p.picks == (3, 17, 40) and keno.parse_params(p.to_json()) == p
    assert keno.parse_params({"picks": "5, 1,2", "risk": "high"}).picks == (1, 2, 5)
    for picks, msg in (([], "choose 1 to 10"), (list(range(1, 12)), "choose 1 to 10"),
                       ([0, 5], "numbered 1 to 40"), ([41], "numbered 1 to 40"),
                       ([3, 3], "at most once"), (7, "must be a list"),
                       (["x"], "must be a whole number")):
        with pytest.raises(GameError, match=f"picks: .*{msg}"):
            keno.parse_params({"picks": picks, "risk": "classic"})
    with pytest.raises(GameError, match="risk: must be one of classic, low, medium, high"):
        keno.parse_params({"picks": [1], "risk": "wild"})


def test_mines_params() -> None:
    assert mines.parse_params({"mines": "3"}) == MinesParams(3)
    assert mines.parse_params({"mines": 24}).to_json() == {"mines": 24}
    for bad in (0, 25, "x", None):
        with pytest.raises(GameError, match="mines"):
            mines.parse_params({"mines": bad})


# -- multipliers and payouts ---------------------------------------------------------------

def test_dice_multiplier_follows_stakes_convention() -> None:
    over50 = dice.parse_params({"target": 50, "direction": "over"})
    assert dice.multiplier_e4(over50, 50.01) == 19800
    assert dice.multiplier_e4(over50, 50.0) == 0  # strictly over
    under50 = dice.parse_params({"target": 50, "direction": "under"})
    assert dice.multiplier_e4(under50, 49.99) == 19800
    assert dice.multiplier_e4(under50, 50.0) == 0  # strictly under
    # 0.99 * 100 / 33.33 = 2.970297... floored to 1e-4
    assert dice.multiplier_e4(dice.parse_params({"target": 33.33, "direction": "under"}),
                              1.0) == 29702
    assert dice.max_multiplier_e4(dice.parse_params({"target": 2, "direction": "over"})) \
        == 10102
    assert dice.max_multiplier_e4(dice.parse_params({"target": 99.99,
                                                     "direction": "over"})) == 99_000_000
    with pytest.raises(GameError, match="outcome"):
        dice.multiplier_e4(over50, 100.01)


def test_limbo_wins_when_the_result_reaches_the_target() -> None:
    p = limbo.parse_params({"target": 2})
    assert limbo.multiplier_e4(p, 2.0) == 20000
    assert limbo.multiplier_e4(p, 1.99) == 0
    assert limbo.multiplier_e4(p, 4252017623.04) == 20000
    assert limbo.max_multiplier_e4(p) == 20000


def test_plinko_and_keno_pay_the_table() -> None:
    p = plinko.parse_params({"rows": 16, "risk": "high"})
    assert [plinko.multiplier_e4(p, b) for b in (0, 8, 16)] == [10_000_000, 2000, 10_000_000]
    assert plinko.max_multiplier_e4(p) == 10_000_000
    k = keno.parse_params({"picks": [1, 2, 3], "risk": "classic"})
    hits = [1, 2, 30, 31, 32, 33, 34, 35, 36, 37]
    assert keno.multiplier_e4(k, hits) == 31000  # 2 of 3 on classic: 3.1x
    assert keno.multiplier_e4(k, [3, *hits[1:]]) == 31000
    assert keno.multiplier_e4(k, [4, 5, *hits[2:]]) == 0
    assert keno.max_multiplier_e4(k) == 104000
    with pytest.raises(GameError, match="outcome"):
        keno.multiplier_e4(k, [1, 1, 2, 3, 4, 5, 6, 7, 8, 9])


def test_mines_multipliers() -> None:
    assert mines_multiplier_e4(1, 1) == 10312  # 0.99 * 25/24 = 1.03125
    assert mines_multiplier_e4(3, 0) == 10000  # no reveal: no cash out (1x)
    assert mines_multiplier_e4(24, 1) == 247500  # 0.99 * 25
    assert mines_multiplier_e4(3, 22) == 99 * comb(25, 22) * 100  # exact: 0.99 * 2300
    for m in range(1, 25):
        mults = [mines_multiplier_e4(m, k) for k in range(1, 26 - m)]
        assert mults == sorted(mults) and len(set(mults)) == len(mults)
        assert mines.max_multiplier_e4(MinesParams(m)) == mults[-1]
    with pytest.raises(GameError, match="revealed: must be between 0 and 22"):
        mines_multiplier_e4(3, 23)
    with pytest.raises(GameError, match="must be settled step by step|step by step"):
        mines.multiplier_e4(MinesParams(3), [0, 1, 2])


def test_mines_cash_out() -> None:
    board = [5, 18, 10]
    assert mines_cashout_e4(3, board, [0, 1]) == mines_multiplier_e4(3, 2)
    assert mines_cashout_e4(3, board, [0, 18]) == 0
    assert mines_cashout_e4(3, board, []) == 10000
    with pytest.raises(GameError, match="revealed: distinct"):
        mines_cashout_e4(3, board, [0, 0])
    with pytest.raises(GameError, match="outcome"):
        mines_cashout_e4(3, [5, 5, 10], [0])


def test_payout_rounds_down_and_refuses_non_integers() -> None:
    assert payout(1000, 19800) == 1980
    assert payout(1, 19800) == 1  # 1.98 rounded down
    assert payout(3, 3333) == 0
    assert payout(10**18, 99_000_000) == 99 * 10**20
    for bad in ((1.5, 10000), (10, 1.5), (-1, 10000), (True, 10000)):
        with pytest.raises(GameError):
            payout(*bad)  # type: ignore[arg-type]


# -- exact RTP -------------------------------------------------------------------------------

def test_dice_rtp_is_exact_over_the_2_to_the_32_floats() -> None:
    p = dice.parse_params({"target": 50, "direction": "over"})
    # rolls 50.01..100.00 are 5000 of the 10001 (nearly) equally likely rolls
    assert abs(dice.rtp(p) - Fraction(5000, 10001) * Fraction(198, 100)) < Fraction(1, 10**8)
    exact = sum(1 for k in range(0, 2**32, 2**16) if (k * 10001) >> 32 > 5000)
    assert abs(float(dice.win_probability(p)) - exact / 2**16) < 1e-4
    for target in ("2", "25.5", "50", "75", "99.99"):
        for direction in ("over", "under"):
            try:
                q = dice.parse_params({"target": target, "direction": direction})
            except GameError:
                continue
            assert Fraction(97, 100) < dice.rtp(q) < Fraction(99, 100)


def test_limbo_rtp_counts_the_winning_floats_exactly() -> None:
    for target in ("1.01", "1.5", "2", "10", "100", "1000", "1000000"):
        p = limbo.parse_params({"target": target})
        k = limbo.win_probability(p) * 2**32
        assert k.denominator == 1
        k = int(k)
        # the boundary float wins and the next one loses
        assert limbo_result_e2((k - 1) / 2**32) >= p.target_e2 > limbo_result_e2(k / 2**32)
        assert Fraction(985, 1000) < limbo.rtp(p) < Fraction(995, 1000)


def test_every_default_table_and_param_set_has_an_rtp_between_97_and_99_5_percent() -> None:
    lo, hi = Fraction(97, 100), Fraction(995, 1000)
    for risk in PLINKO_RISKS:
        for rows in PLINKO_ROWS:
            assert lo < plinko.rtp(plinko.parse_params({"rows": rows, "risk": risk})) < hi
    for risk in KENO_RISKS:
        for n in KENO_PICKS:
            p = keno.parse_params({"picks": list(range(1, n + 1)), "risk": risk})
            assert lo < keno.rtp(p) < hi
    for m in range(1, 25):
        by_k = mines.rtp_by_reveals(MinesParams(m))
        assert len(by_k) == 25 - m
        assert all(lo < r <= Fraction(99, 100) for r in by_k.values())
        assert mines.rtp(MinesParams(m)) == min(by_k.values())
