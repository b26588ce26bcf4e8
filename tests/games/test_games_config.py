"""Payout tables and house edges: built-in defaults, the override file, validation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from casino_app.core.settings import ConfigError, reset_settings_cache
from casino_app.games.config import get_config, load_config, reset_config
from casino_app.games.house import GAMES, MinesParams, mines_multiplier_e4


@pytest.fixture(autouse=True)
def fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("CASINO_GAMES_CONFIG_FILE", raising=False)
    reset_settings_cache()
    reset_config()
    yield
    reset_config()
    reset_settings_cache()


def _write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "games.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_builtin_defaults() -> None:
    c = get_config()
    assert c.source == "built-in"
    assert c.house_edge == {"dice": Fraction(1, 100), "limbo": Fraction(1, 100),
                            "mines": Fraction(1, 100)}
    assert c.plinko["high"][16][0] == 1000 * 10_000
    assert c.plinko["low"][8] == (56000, 21000, 11000, 10000, 5000, 10000, 11000, 21000,
                                  56000)
    assert c.keno["classic"][1] == (0, 39600)
    assert sorted(c.plinko) == ["high", "low", "medium"]
    assert sorted(c.keno) == ["classic", "high", "low", "medium"]
    assert all(len(c.plinko[r]) == 9 for r in c.plinko)
    assert all(len(c.keno[r]) == 10 for r in c.keno)
    assert get_config() is c  # cached


def test_override_file_from_settings_merges_over_the_defaults(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    table = [500, 100, 20, 9, 4, 2, 0.2, 0.2, 0.2, 0.2, 0.2, 2, 4, 9, 20, 100, 500]
    path = _write(tmp_path, {"_comment": "ours", "dice": {"house_edge": "0.02"},
                             "mines": {"house_edge": 0}, "plinko": {"high": {"16": table}}})
    monkeypatch.setenv("CASINO_GAMES_CONFIG_FILE", str(path))
    reset_settings_cache()
    reset_config()
    c = get_config()
    assert c.source == str(path)
    assert c.house_edge["dice"] == Fraction(2, 100)
    assert c.house_edge["mines"] == 0 and c.house_edge["limbo"] == Fraction(1, 100)
    assert c.plinko["high"][16][0] == 500 * 10_000
    assert c.plinko["high"][15][0] == 620 * 10_000  # untouched default
    dice = GAMES["dice"]
    assert dice.max_multiplier_e4(dice.parse_params({"target": 50, "direction": "over"})) \
        == 19600
    assert mines_multiplier_e4(24, 1) == 250000
    assert GAMES["mines"].rtp(MinesParams(24)) == 1  # a 0% edge is allowed
    assert GAMES["plinko"].max_multiplier_e4(
        GAMES["plinko"].parse_params({"rows": 16, "risk": "high"})) == 5_000_000


@pytest.mark.parametrize("data, message", [
    ({"plinko": {"low": {"8": [1, 1, 1]}}}, "plinko.low.8: must have 9 multipliers, has 3"),
    ({"plinko": {"low": {"8": [5.6, 2.1, 1.1, 1, -0.5, 1, 1.1, 2.1, 5.6]}}},
     r"plinko.low.8\[4\]: must not be negative"),
    ({"plinko": {"low": {"8": [29, 2.1, 1.1, 1, 0.5, 1, 1.1, 2.1, 29]}}},
     r"plinko.low.8: theoretical return to player is 117.2656%, it must be below 100%"),
    ({"plinko": {"low": {"17": [1] * 18}}}, "plinko.low.17: unknown key"),
    ({"plinko": {"extreme": {}}}, "plinko.extreme: unknown key"),
    ({"plinko": {"low": {"8": "5.6, 2.1"}}}, "plinko.low.8: must be a list of 9"),
    ({"plinko": {"low": {"8": [5.6, 2.1, 1.1, 1, 0.55555, 1, 1.1, 2.1, 5.6]}}},
     r"plinko.low.8\[4\]: at most 4 decimals"),
    ({"plinko": {"low": {"8": [5.6, 2.1, 1.1, 1, "x", 1, 1.1, 2.1, 5.6]}}},
     r"plinko.low.8\[4\]: must be a number"),
    ({"keno": {"classic": {"1": [0, 4]}}}, "keno.classic.1: theoretical return to player is 100"),
    ({"keno": {"classic": {"2": [0, 1.9]}}}, "keno.classic.2: must have 3 multipliers"),
    ({"keno": {"classic": {"11": [0] * 12}}}, "keno.classic.11: unknown key"),
    ({"dice": {"house_edge": 0.11}}, "dice.house_edge: must be between 0 and 0.10"),
    ({"dice": {"house_edge": -0.01}}, "dice.house_edge: must be between 0 and 0.10"),
    ({"dice": {"house_edge": True}}, "dice.house_edge: must be a number"),
    ({"dice": {"edge": 0.01}}, "dice.edge: unknown key"),
    ({"mines": 0.01}, "mines: must be a JSON object"),
    ({"limbo": {"house_edge": 0.02}}, "limbo.house_edge: must be 0.01"),
    ({"roulette": {}}, "roulette: unknown key"),
    ("[1, 2]", "must be a JSON object"),
    ("{not json", "not valid JSON"),
])
def test_bad_override_files_are_refused_naming_the_key(tmp_path: Path, data: Any,
                                                       message: str) -> None:
    path = _write(tmp_path, data)
    with pytest.raises(ConfigError, match=message) as exc:
        load_config(path)
    assert str(path) in str(exc.value)


def test_missing_override_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.json")


def test_a_bad_file_named_in_the_environment_fails_when_the_games_load(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASINO_GAMES_CONFIG_FILE",
                       str(_write(tmp_path, {"dice": {"house_edge": 1}})))
    reset_settings_cache()
    with pytest.raises(ConfigError, match="dice.house_edge"):
        get_config()
