"""The game and wallet states: amounts in base units, refusals that change nothing, the
header balance after a bet, Mines rounds restored on load, favourites."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.ui.test_state_security import _call, _fresh_root, _substate


def _fingerprint() -> str:
    """Every row of both databases except seed pairs (the bet service may set up a
    player's first seed pair before it refuses a bet: that is no money)."""
    import hashlib

    from sqlalchemy import inspect, text

    from casino_app.core.db import databases

    h = hashlib.sha256()
    dbs = databases()
    for engine in (dbs.identity_engine, dbs.ledger_engine):
        with engine.connect() as conn:
            for table in sorted(inspect(conn).get_table_names()):
                if table == "seed_pairs":
                    continue
                rows = conn.execute(text(f'SELECT * FROM "{table}"')).fetchall()  # noqa: S608
                h.update(table.encode() + repr(sorted(map(repr, rows))).encode())
    return h.hexdigest()


def _cur(code: str):  # noqa: ANN202
    from casino_app.payments.currencies import currency

    return currency(code)


# --- pure helpers -------------------------------------------------------------------------

@pytest.mark.parametrize(("code", "units", "text"), [
    ("FUN", 100, "1.00"), ("FUN", 5, "0.05"), ("FUN", 123456789, "1234567.89"),
    ("BTC", 1, "0.00000001"), ("BTC", 10_000, "0.0001"), ("BTC", 100_000_000, "1.00"),
    ("ETH", 500_000_000, "0.50"), ("ETH", 1, "0.000000001"), ("USDT", 10_000, "0.01"),
])
def test_amount_text_is_exact_and_readable(app_env, code: str, units: int, text: str) -> None:  # noqa: ANN001
    from casino_app.ui.state.games import amount_text

    assert amount_text(_cur(code), units) == text
    assert _cur(code).parse(text) == units  # what the box shows reads back exactly


def test_halving_and_doubling_use_integer_base_units(app_env) -> None:  # noqa: ANN001
    from casino_app.ui.state.games import scale_amount

    fun, btc = _cur("FUN"), _cur("BTC")
    assert scale_amount(fun, "1.00", "half") == "0.50"
    assert scale_amount(fun, "0.03", "half") == "0.01"        # 3 // 2 = 1 cent, no float
    assert scale_amount(fun, "0.01", "half") == "0.01"        # never below the smallest bet
    assert scale_amount(fun, "1000.05", "double") == "2000.10"
    assert scale_amount(fun, "90000", "double") == "100000.00"  # capped at the largest bet
    assert scale_amount(btc, "0.00000301", "half") == "0.0000015"
    assert scale_amount(btc, "0.1", "double") == "0.20"
    # every base unit counts (a float would lose the last gwei here)
    assert scale_amount(_cur("ETH"), "4.123456789", "double") == "8.246913578"
    assert scale_amount(_cur("ETH"), "4.123456789", "half") == "2.061728394"
    for junk in ["", "abc", "-1", "1e999", "NaN", None, "0.001", "0,05", "1,000.05"]:
        assert scale_amount(fun, junk, "double") == "0.01"     # unreadable: smallest bet


def test_small_formatters(app_env) -> None:  # noqa: ANN001
    from casino_app.ui.state.games import e2_text, mult_text, parse_int_in, signed_amount

    assert mult_text(19_800) == "1.98×" and mult_text(10_000) == "1.00×"
    # exact, as in My bets and on the staff pages (one format): never 1.4785x there and
    # 1.47x here
    assert mult_text(0) == "0.00×" and mult_text(19_899) == "1.9899×"
    assert mult_text(14_785) == "1.4785×" and mult_text(2_500) == "0.25×"
    assert mult_text(10_000_000_000) == "1,000,000.00×"
    assert signed_amount(_cur("FUN"), 98) == "+0.98"
    assert signed_amount(_cur("FUN"), -100) == "−1.00"
    assert e2_text("50", 0, 10_000) == "50.00" and e2_text(" 49.5 ", 0, 10_000) == "49.50"
    assert e2_text(12.25, 0, 10_000) == "12.25"
    for junk in ["50.123", "-1", "101", "inf", "nan", "", None, [], "1" * 50, True, "1,5",
                 "49,5", "1 0", "1_0", "1e1"]:
        assert e2_text(junk, 0, 10_000) is None, junk
    assert parse_int_in("16", 8, 16) == 16 and parse_int_in(8, 8, 16) == 8
    for junk in ["17", "x", True, 7, 8.5, "١٢", None, "00009"]:
        assert parse_int_in(junk, 8, 16) is None, junk


def test_dice_and_limbo_figures_follow_the_game_rules(app_env) -> None:  # noqa: ANN001
    from casino_app.ui.state.games import GameState

    g = _substate(_fresh_root(), GameState)
    assert (g.dice_chance, g.dice_multiplier) == ("50.00%", "1.98×")
    _run(g, "choose_direction", ["under"])     # flipping keeps the win chance
    assert (g.dice_direction, g.dice_target, g.dice_chance) == ("under", "50.00", "50.00%")
    _run(g, "edit_dice_target", "25.5")
    _run(g, "choose_direction", "over")
    assert (g.dice_target, g.dice_chance) == ("74.50", "25.50%")
    _run(g, "edit_dice_target", "1.00")           # a number, but outside the game's bounds
    assert g.dice_chance == "—"              # shown as unknown, said at once, no bet
    assert g.target_error == "Roll over takes a target from 2.00 to 99.99."
    assert g.dice_target == "74.50" and not g.can_bet
    _run(g, "edit_dice_target", "abc")
    assert g.dice_target == "74.50" and g.dice_target_text == "abc"
    _run(g, "set_dice_slider", [33.0])
    assert (g.dice_target, g.dice_target_text, g.target_error) == ("33.00", "33.00", "")
    _run(g, "edit_limbo_target", "2")
    assert (g.limbo_target, g.limbo_chance) == ("2.00", "49.5%")


def test_keno_picks_are_checked_in_the_tab(app_env) -> None:  # noqa: ANN001
    from casino_app.ui.state.games import GameState

    g = _substate(_fresh_root(), GameState)
    for n in [*range(1, 12), 0, 41, "x7", True, None, 2.5]:
        _run(g, "keno_toggle", n)
    assert g.keno_picks == list(range(1, 11))
    assert "at most 10" in g.error
    _run(g, "keno_toggle", 3)
    assert 3 not in g.keno_picks and len(g.keno_picks) == 9
    assert [c.kind for c in g.keno_cells][:4] == ["picked", "picked", "", "picked"]


# --- with a signed-in player --------------------------------------------------------------

def _player(email: str = "gamer@example.com") -> tuple[str, str]:
    from casino_app.users import accounts
    from casino_app.users.sessions import RequestContext
    from tests.support.signup import sign_up

    token = sign_up(email_addr=email, password="gamer pass phrase", display_name="Gamer",
                    date_of_birth="1990-01-01", ctx=RequestContext("10.0.0.5", "pytest"))
    me = accounts.current_user(token)
    assert me is not None
    return token, me.player_id


def _tab(token: str) -> Any:
    from casino_app.ui.state.session import SessionState

    root = _fresh_root()
    _substate(root, SessionState).token = token
    return root


def _run(state: Any, name: str, *args: Any) -> list[Any]:
    return asyncio.run(_call(state, type(state).event_handlers[name], list(args)))


def choose(state: Any, select: str, value: str) -> None:
    """What the header's select ("currency" or "display") does when the player picks
    ``value``: each event of its on_change, in order, as the page sends them (the wallet
    first, then the states that follow it)."""
    from casino_app.ui import layout

    root = state
    while root.parent_state is not None:
        root = root.parent_state
    comp = (layout.currency_select("Currency", "currency") if select == "currency"
            else layout.display_select())
    for spec in comp.event_triggers["on_change"].events:
        handler = spec.handler
        target = root.get_substate(handler.state_full_name.split(".")[1:])
        asyncio.run(_call(target, handler, [value]))


def _states(root: Any) -> tuple[Any, Any]:
    from casino_app.ui.state.games import GameState
    from casino_app.ui.state.wallet import WalletState

    return _substate(root, GameState), _substate(root, WalletState)


def test_a_new_player_starts_in_play_money_and_can_top_up(app_env) -> None:  # noqa: ANN001
    token, pid = _player()
    game, wallet = _states(_tab(token))
    _run(wallet, "load")
    assert (wallet.code, wallet.balance, wallet.fun_low) == ("FUN", "0.00", True)
    _run(wallet, "top_up", "topup-key-0001")
    assert wallet.balance == "1,000.00" and not wallet.fun_low
    _run(wallet, "top_up", "topup-key-0002")   # not low any more: refused, nothing moves
    assert "runs low" in wallet.message and wallet.balance == "1,000.00"


def test_a_bet_updates_result_history_and_header_balance(app_env) -> None:  # noqa: ANN001
    from casino_app.payments import demo

    token, pid = _player()
    demo.top_up_fun(pid, "topup-key-0001")
    game, wallet = _states(_tab(token))
    _run(wallet, "load")
    _run(game, "open_game", "dice")
    assert game.amount == "1.00" and game.game == "dice"
    _run(game, "bet", "bet-key-00000001")
    assert game.error == "" and game.has_result
    assert game.result_text.startswith("Rolled ")
    assert game.result_profit in ("+0.98 FUN", "−1.00 FUN")
    assert wallet.balance == ("1,000.98" if game.result_won else "999.00")
    assert demo.fun_balance(pid) == (100_098 if game.result_won else 99_900)
    assert [r.id for r in game.game_rows] == [game.result_id]
    assert game.game_rows[0].href == f"/bets/bet?id={game.result_id}"
    # the same key again (a resent event): the first bet, nothing moves twice
    before = demo.fun_balance(pid)
    _run(game, "bet", "bet-key-00000001")
    assert demo.fun_balance(pid) == before and len(game.game_rows) == 1


@pytest.mark.parametrize(("amount", "setup", "message"), [
    ("5000", None, "Insufficient balance"),
    ("abc", None, "not an amount"),
    ("0.001", None, "at most 2 decimals"),
    ("", None, "Enter an amount"),
    ("200000", None, "largest bet"),
    # the pen-test finding: "0,05" was a bet of 5.00 FUN
    ("0,05", None, "Use a dot for decimals and no thousands separators, e.g. 1234.56."),
    ("1,000", None, "Use a dot for decimals and no thousands separators"),
    ("1.000,50", None, "Use a dot for decimals and no thousands separators"),
    ("1 000", None, "Use a dot for decimals and no thousands separators"),
    ("1_000", None, "Use a dot for decimals and no thousands separators"),
    ("1", {"dice_target": "1.00"}, "target"),
    ("1", {"dice_direction": "sideways"}, "direction"),
])
def test_refused_bets_show_why_and_change_nothing(app_env, amount: str, setup: Any,  # noqa: ANN001
                                                  message: str) -> None:
    from casino_app.payments import demo

    token, pid = _player()
    demo.top_up_fun(pid, "topup-key-0001")
    game, wallet = _states(_tab(token))
    _run(wallet, "load")
    _run(game, "open_game", "dice")
    _run(game, "edit_amount", amount)
    for k, v in (setup or {}).items():
        setattr(game, k, v)
    before = _fingerprint()
    _run(game, "bet", "bet-key-00000002")
    assert message.lower() in game.error.lower()
    assert _fingerprint() == before
    assert wallet.balance == "1,000.00" and not game.has_result and game._rows == ()


def test_an_amount_with_a_comma_is_said_while_typing_and_a_dot_bets_it(app_env) -> None:  # noqa: ANN001
    """"0,05" is refused the moment it is typed (the Bet button is off, the reason shown
    under the box); nothing is bet. "0.05" then bets 5 FUN cents, exactly."""
    from casino_app.payments import demo

    token, pid = _player()
    demo.top_up_fun(pid, "topup-key-0001")
    game, wallet = _states(_tab(token))
    _run(wallet, "load")
    _run(game, "open_game", "dice")
    before = _fingerprint()
    _run(game, "edit_amount", "0,05")
    assert "Use a dot for decimals" in game.amount_error and not game.amount_ok
    _run(game, "bet", "bet-key-00000010")   # a forged click is refused the same way
    assert "Use a dot for decimals" in game.error and not game.has_result
    assert _fingerprint() == before and demo.fun_balance(pid) == 100_000
    _run(game, "edit_amount", "0.05")
    assert game.amount_error == "" and game.amount_ok
    _run(game, "bet", "bet-key-00000011")
    assert game.error == "" and game.has_result
    assert demo.fun_balance(pid) in (100_000 - 5, 100_000 - 5 + 9)  # 0.05 at 1.98x
    _run(game, "edit_amount", "0.001")            # said while typing too: FUN has cents
    assert "at most 2 decimals" in game.amount_error
    choose(wallet, "currency", "BTC")
    _run(game, "half_amount")                      # a new currency: a fresh, good amount
    assert game.amount_error == "" and game.amount_ok


def test_a_target_with_a_comma_is_refused_as_it_is_typed(app_env) -> None:  # noqa: ANN001
    from casino_app.ui.state.games import TARGET_FORMAT, GameState

    g = _substate(_fresh_root(), GameState)
    _run(g, "edit_limbo_target", "1,5")     # was read as 15x
    assert g.limbo_target == "2.00" and g.target_error.startswith(TARGET_FORMAT)
    assert "1.01× to 1,000,000.00×" in g.target_error and not g.can_bet
    _run(g, "edit_limbo_target", "1.5")
    assert g.limbo_target == "1.50" and g.target_error == "" and g.can_bet
    _run(g, "edit_dice_target", "49,5")
    assert g.dice_target == "50.00" and g.target_error.startswith(TARGET_FORMAT)


@pytest.mark.parametrize(("game", "box", "typed", "said"), [
    ("dice", "edit_dice_target", "abc", "Enter a target from 2.00 to 99.99."),
    ("dice", "edit_dice_target", "150", "Roll over takes a target from 2.00 to 99.99."),
    ("dice", "edit_dice_target", "-1", "Enter a target from 2.00 to 99.99."),
    ("dice", "edit_dice_target", "", "Enter a target from 2.00 to 99.99."),
    ("dice", "edit_dice_target", "50.123", "at most 2 decimals"),
    ("limbo", "edit_limbo_target", "0.5", "Limbo takes a target from 1.01× to"),
    ("limbo", "edit_limbo_target", "1", "Limbo takes a target"),
])
def test_a_refused_target_is_said_at_once_never_bet_and_gone_at_the_next_visit(
        app_env, game: str, box: str, typed: str, said: str) -> None:  # noqa: ANN001
    """The issue's cases: "abc", 150 or -1 stayed in the dice box while a bet silently
    used the previous target; Limbo 0.5x was taken with no message until Bet; and the
    invalid value came back at a later visit."""
    from casino_app.payments import demo

    token, pid = _player()
    demo.top_up_fun(pid, "topup-key-0001")
    g, wallet = _states(_tab(token))
    _run(wallet, "load")
    _run(g, "open_game", game)
    kept = g.dice_target if game == "dice" else g.limbo_target
    _run(g, box, typed)
    assert said in g.target_error and not g.can_bet      # said while typing, Bet off
    shown = g.dice_target_text if game == "dice" else g.limbo_target_text
    assert shown == typed                                 # the box keeps what was typed
    before = _fingerprint()
    _run(g, "bet", "bet-key-00000021")                   # a forged click: refused too
    assert said in g.error and not g.has_result and _fingerprint() == before
    _run(g, "open_game", game)                            # a later visit
    shown = g.dice_target_text if game == "dice" else g.limbo_target_text
    assert (shown, g.target_error, g.can_bet) == (kept, "", True)


def test_dice_under_99_99_is_refused_while_typing_and_flipping_checks_again(app_env) -> None:  # noqa: ANN001
    from casino_app.ui.state.games import GameState

    g = _substate(_fresh_root(), GameState)
    _run(g, "choose_direction", "under")
    assert g.dice_range == "0.01 to 98.00"
    _run(g, "edit_dice_target", "99.99")
    assert g.target_error == "Roll under takes a target from 0.01 to 98.00."
    _run(g, "choose_direction", "over")                   # 99.99 is a target for over
    assert (g.target_error, g.dice_target, g.dice_chance) == ("", "99.99", "0.01%")
    _run(g, "edit_dice_target", "60")
    _run(g, "tidy_targets")                               # leaving the box tidies it
    assert g.dice_target_text == "60.00"


def test_a_changed_currency_never_reinterprets_the_typed_amount(app_env) -> None:  # noqa: ANN001
    from casino_app.payments import demo

    token, pid = _player()
    demo.top_up_fun(pid, "topup-key-0001")
    game, wallet = _states(_tab(token))
    _run(wallet, "load")
    _run(game, "open_game", "limbo")
    _run(game, "edit_amount", "500")
    choose(wallet, "currency", "BTC")
    assert wallet.code == "BTC" and game.amount == "0.000001"  # BTC's smallest bet
    choose(wallet, "currency", "NOPE")
    assert wallet.code == "BTC"
    # another tab (or a forged localStorage value) switched the currency under us
    _run(game, "edit_amount", "500")
    wallet.currency = "FUN"
    before = _fingerprint()
    _run(game, "bet", "bet-key-00000003")
    assert "currency is now FUN" in game.error and game.amount == "1.00"
    assert _fingerprint() == before
    wallet.currency = "<script>"
    assert wallet.code == "FUN"   # junk from the browser reads as play money


def test_mines_round_starts_reveals_cashes_out_and_survives_a_new_tab(app_env) -> None:  # noqa: ANN001
    from casino_app.payments import demo

    token, pid = _player()
    demo.top_up_fun(pid, "topup-key-0001")
    game, wallet = _states(_tab(token))
    _run(wallet, "load")
    _run(game, "open_game", "mines")
    _run(game, "choose_mines", "1")
    _run(game, "bet", "bet-key-00000004")
    assert game.mines_open and game.round_id > 0 and wallet.balance == "999.00"
    _run(game, "bet", "bet-key-00000005")       # one round at a time
    assert "open round" in game.error
    _run(game, "choose_mines", "5")              # settings are locked during a round
    assert game.mines_count == 1
    # a reload (a fresh tab state) finds the open round
    game2, wallet2 = _states(_tab(token))
    _run(wallet2, "load")
    _run(game2, "open_game", "mines")
    assert game2.round_id == game.round_id and game2.mines_count == 1
    _run(game2, "reveal", 99)
    assert game2.error and game2.mines_revealed == []
    _run(game2, "cash_out")
    assert "at least one tile" in game2.error
    for tile in range(25):
        _run(game2, "reveal", tile)
        if not game2.mines_open:
            break
        if tile == 0:
            _run(game2, "cash_out")
            break
    assert not game2.mines_open and game2.mines_at  # the mine is shown once it is over
    assert game2._rows and game2._rows[0][0].id == game.round_id
    expected = demo.fun_balance(pid)
    assert wallet2.balance == f"{expected // 100:,}.{expected % 100:02d}"


def test_anonymous_callers_are_sent_to_sign_in_with_the_game_as_next(app_env) -> None:  # noqa: ANN001
    from casino_app.ui.state.games import GameState

    g = _substate(_fresh_root(), GameState)
    out = _run(g, "open_game", "keno")
    assert "/login?next=/games/keno" in repr(out)


def test_favourites_and_recent_games_in_the_lobby(app_env) -> None:  # noqa: ANN001
    from casino_app.games import history
    from casino_app.payments import demo
    from casino_app.ui.state.games import LobbyState

    token, pid = _player()
    demo.top_up_fun(pid, "topup-key-0001")
    root = _tab(token)
    lobby = _substate(root, LobbyState)
    game, _ = _states(root)
    _run(game, "open_game", "limbo")
    _run(game, "bet", "bet-key-00000006")
    _run(lobby, "load")
    assert [t.name for t in lobby.recent_tiles] == ["limbo"]
    _run(lobby, "toggle_favourite", "keno")
    _run(lobby, "toggle_favourite", "nope")
    assert [t.name for t in lobby.favourite_tiles] == ["keno"]
    assert history.favourites(pid) == ["keno"]
    _run(lobby, "toggle_favourite", "keno")
    assert history.favourites(pid) == [] and lobby.favourite_tiles == []
    _run(lobby, "choose_category", "Lottery")
    assert [t.name for t in lobby.tiles] == ["keno"]
    _run(lobby, "choose_category", "All")
    _run(lobby, "search_games", "  LIM ")
    assert [t.name for t in lobby.tiles] == ["limbo"]


def test_junk_from_a_signed_in_browser_never_breaks_a_handler(app_env) -> None:  # noqa: ANN001
    """Any argument a browser can send: refused or ignored, never an exception, and no
    money moves without a well-formed bet."""
    from casino_app.payments import demo
    from casino_app.ui.state.games import GameState, LobbyState
    from casino_app.ui.state.wallet import WalletState

    token, pid = _player()
    demo.top_up_fun(pid, "topup-key-0001")
    junk: list[Any] = [None, 42, -1, 2**70, 1.5, True, [], [1], {}, {"a": 1}, "",
                       "x" * 5000, "<script>", "\u202e\u0000😀", "mines", "FUN"]
    for cls in (GameState, WalletState, LobbyState):
        for name in cls.event_handlers:
            if name.startswith("_") or name in ("setvar", "top_up"):
                continue
            for value in junk:
                root = _tab(token)
                state = _substate(root, cls)
                _run(_substate(root, GameState), "open_game", "dice")
                n_args = cls.event_handlers[name].fn.__code__.co_argcount - 1
                _run(state, name, *([value] * n_args))
    assert demo.fun_balance(pid) == 100_000


def test_a_refusal_goes_once_what_caused_it_changes(app_env) -> None:  # noqa: ANN001
    """ "Insufficient balance" stayed under the top-up notice after the top-up worked."""
    token, pid = _player()
    game, wallet = _states(_tab(token))
    _run(wallet, "load")
    _run(game, "open_game", "dice")
    _run(game, "bet", "bet-key-00000031")
    assert "Insufficient balance" in game.error
    # the top-up button: the wallet's top-up, then the game follows (as the page sends it)
    _run(wallet, "top_up", "topup-key-0031")
    _run(game, "follow_currency", "")
    assert game.error == "" and wallet.balance == "1,000.00"
    _run(game, "edit_amount", "5000")
    _run(game, "bet", "bet-key-00000032")
    assert "Insufficient balance" in game.error
    _run(game, "edit_amount", "5")                       # a new amount: the refusal goes
    assert game.error == ""
    _run(game, "bet", "bet-key-00000033")
    assert game.error == "" and game.has_result
