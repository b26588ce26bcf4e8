"""The house games: dice, limbo, plinko, keno and mines (pure maths, no money posting).

``GAMES[name]`` is the game; each has ``parse_params``, ``draw``, ``multiplier_e4``,
``max_multiplier_e4`` and ``rtp`` (see ``base.Game``). Multipliers are integers in
1/10000 units and ``payout(stake, mult_e4)`` rounds down. ``verify`` recomputes an
outcome from a revealed seed pair, as ``casino verify`` prints it. docs/GAMES.md has the
rules, bounds, outcome mappings and RTP figures.
"""

from __future__ import annotations

from typing import Any

from casino_app.games import fairness
from casino_app.games.house.base import Game, GameError, draw_without_repeats, payout
from casino_app.games.house.dice import Dice, DiceParams, dice_roll_e2
from casino_app.games.house.keno import Keno, KenoParams, keno_hits
from casino_app.games.house.limbo import Limbo, LimboParams, limbo_result_e2
from casino_app.games.house.mines import (
    Mines,
    MinesParams,
    check_mines,
    mine_tiles,
    mines_cashout_e4,
    mines_multiplier_e4,
)
from casino_app.games.house.plinko import Plinko, PlinkoParams, check_rows, plinko_bucket

GAMES: dict[str, Game[Any, Any]] = {g.name: g for g in (Dice(), Limbo(), Plinko(), Keno(),
                                                        Mines())}

__all__ = [
    "GAMES", "Dice", "DiceParams", "Game", "GameError", "Keno", "KenoParams", "Limbo",
    "LimboParams", "Mines", "MinesParams", "Plinko", "PlinkoParams", "dice_roll_e2",
    "draw_without_repeats", "get_game", "keno_hits", "limbo_result_e2", "mine_tiles",
    "mines_cashout_e4", "mines_multiplier_e4", "payout", "plinko_bucket", "verify",
]


def get_game(name: str) -> Game[Any, Any]:
    try:
        return GAMES[name]
    except (KeyError, TypeError):
        raise GameError(f"game: must be one of {', '.join(GAMES)}") from None


def verify(game: str, server_seed: str, client_seed: str, nonce: int, *,
           rows: int | None = None, mines: int | None = None) -> dict[str, Any]:
    """Recompute a bet's outcome from its (revealed) seeds, with the working shown.

    Only plinko needs ``rows`` (8..16) and only mines needs ``mines`` (1..24): no other
    parameter changes an outcome. The client seed is any text, taken exactly as given
    (a Stake-compatible casino's seeds may be empty or any Unicode). Raises GameError or
    FairnessError (both ValueError).
    """
    g = get_game(game)
    fairness.check_server_seed(server_seed)
    client = fairness.check_any_client_seed(client_seed)
    fairness.check_nonce(nonce)
    if rows is not None and game != "plinko":
        raise GameError("rows: only plinko takes rows")
    if mines is not None and game != "mines":
        raise GameError("mines: only mines takes a number of mines")
    out: dict[str, Any] = {"game": game,
                           "server_seed_hash": fairness.hash_server_seed(server_seed),
                           "client_seed": client, "nonce": nonce}
    if game == "plinko":
        if rows is None:
            raise GameError("rows: required for plinko (8 to 16)")
        count = out["rows"] = check_rows(rows)
    elif game == "mines":
        if mines is None:
            raise GameError("mines: required for mines (1 to 24)")
        count = out["mines"] = check_mines(mines)
    else:
        count = 10 if game == "keno" else 1
    fl = fairness.floats(server_seed, client, nonce, count)
    out["rounds"] = [
        {"round": r, "message": f"{client}:{nonce}:{r}",
         "hmac_sha256": fairness.round_bytes(server_seed, client, nonce, r).hex()}
        for r in range(fairness.rounds_needed(count))]
    out["floats"] = fl
    out["outcome"] = g.outcome_from_floats(fl)
    return out
