"""``casino verify``: one JSON object on stdout; bad input is a message and exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from casino_app.cli import main
from casino_app.games import fairness
from tests.games.test_fairness import SEED
from tests.games.test_house_games import VECTORS

CASINO = Path(sys.executable).with_name("casino")
BASE = ["verify", "--server-seed", SEED, "--client-seed", "lucky-7", "--nonce", "0"]


def _run(capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, dict, str]:
    code = main([*BASE, *extra])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out else {}), err


@pytest.mark.parametrize("game, extra, outcome", [
    ("dice", [], VECTORS[0][2]),
    ("limbo", [], VECTORS[0][3]),
    ("plinko", ["--rows", "8"], VECTORS[0][4]),
    ("plinko", ["--rows", "16"], VECTORS[0][5]),
    ("keno", [], VECTORS[0][6]),
    ("mines", ["--mines", "3"], VECTORS[0][7]),
    ("mines", ["--mines", "24"], VECTORS[0][8]),
])
def test_verify_prints_the_outcome_as_json(capsys: pytest.CaptureFixture[str], game: str,
                                          extra: list[str], outcome: object) -> None:
    code, out, err = _run(capsys, "--game", game, *extra)
    assert (code, err) == (0, "")
    assert out["outcome"] == outcome
    assert out["game"] == game
    assert out["server_seed_hash"] == fairness.hash_server_seed(SEED)
    assert out["client_seed"] == "lucky-7" and out["nonce"] == 0
    assert out["floats"] == fairness.floats(SEED, "lucky-7", 0, len(out["floats"]))
    assert out["rounds"][0]["message"] == "lucky-7:0:0"


def test_dice_and_limbo_outcomes_print_as_two_decimal_numbers(
        capsys: pytest.CaptureFixture[str]) -> None:
    main([*BASE, "--game", "dice"])
    assert '"outcome": 20.63' in capsys.readouterr().out
    main([*BASE, "--game", "limbo"])
    assert '"outcome": 4.79' in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--game", "roulette"], "game: must be one of dice, limbo, plinko, keno, mines"),
    (["--game", "plinko"], "rows: required for plinko (8 to 16)"),
    (["--game", "plinko", "--rows", "7"], "rows: must be between 8 and 16"),
    (["--game", "plinko", "--rows", "ten"], "--rows: must be a whole number"),
    (["--game", "mines"], "mines: required for mines (1 to 24)"),
    (["--game", "mines", "--mines", "25"], "mines: must be between 1 and 24"),
    (["--game", "dice", "--rows", "8"], "rows: only plinko takes rows"),
    (["--game", "keno", "--mines", "3"], "mines: only mines takes a number of mines"),
])
def test_bad_game_parameters_exit_2_with_a_message(capsys: pytest.CaptureFixture[str],
                                                   args: list[str], message: str) -> None:
    code, out, err = _run(capsys, *args)
    assert code == 2 and out == {}
    assert err.strip() == f"casino: {message}"


@pytest.mark.parametrize("argv, message", [
    (["verify", "--game", "dice", "--server-seed", "ABC", "--client-seed", "c",
      "--nonce", "0"], "server seed: must be 64 lowercase hexadecimal characters"),
    # a byte that is not UTF-8 on the command line (Python gives it as a lone surrogate)
    (["verify", "--game", "dice", "--server-seed", SEED, "--client-seed", "a\udcff",
      "--nonce", "0"], "client seed: not valid Unicode text"),
    (["verify", "--game", "dice", "--server-seed", SEED, "--client-seed", "c",
      "--nonce", "-1"], "--nonce: must be a whole number"),
    (["verify", "--game", "dice", "--server-seed", SEED, "--client-seed", "c",
      "--nonce", str(2**63)], "nonce: must be between 0 and"),
    (["verify", "--game", "dice"], "missing --server-seed, --client-seed, --nonce"),
])
def test_bad_seeds_exit_2_with_a_message(capsys: pytest.CaptureFixture[str],
                                         argv: list[str], message: str) -> None:
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"casino: {message}")


def test_verify_as_a_real_command() -> None:
    ok = subprocess.run([str(CASINO), *BASE, "--game", "keno"], capture_output=True,
                        text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["outcome"] == VECTORS[0][6]
    bad = subprocess.run([str(CASINO), *BASE, "--game", "mines", "--mines", "0"],
                         capture_output=True, text=True, timeout=60)
    assert (bad.returncode, bad.stdout) == (2, "")
    assert bad.stderr.strip() == "casino: mines: must be between 1 and 24"
    unknown = subprocess.run([str(CASINO), *BASE, "--game", "dice", "--colour", "red"],
                             capture_output=True, text=True, timeout=60)
    assert (unknown.returncode, unknown.stdout) == (2, "")
    assert "unrecognized arguments: --colour red" in unknown.stderr


@pytest.mark.parametrize("client", ["", "a b", "  ", "héllo", "🎲 seed", "日本"])
def test_any_client_seed_is_verified_as_given(capsys: pytest.CaptureFixture[str],
                                              client: str) -> None:
    """A Stake-compatible casino's seeds may be empty or any Unicode: the verifier takes
    them exactly as given (UTF-8), while seeds players set here keep their own rule."""
    assert main(["verify", "--game", "dice", "--server-seed", SEED, "--client-seed", client,
                 "--nonce", "3"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["client_seed"] == client
    assert out["rounds"][0]["message"] == f"{client}:3:0"
