"""Converted values in the views: the header balance, My bets rows and stats, the game
page's recent rows. The display currency is a browser value: a forged one is ignored.
Conversion is display only: nothing here changes the ledger."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest

from tests.ui.test_games_state import _player, _run, _states, _tab, choose
from tests.ui.test_state_security import _substate

DICE = {"target": "50.50", "direction": "over"}


def _fund(player_id: str, cur: str, amount: int) -> None:
    """Test-only credit from custody, and a bankroll so that real-money bets are taken."""
    from casino_app.core.db import ledger_tx
    from casino_app.games import bets
    from casino_app.payments import ledger

    with ledger_tx() as s:
        ledger.transfer(s, f"test-credit:{uuid.uuid4().hex}", "deposit",
                        ledger.house_account(s, cur, "custody"),
                        ledger.player_account(s, player_id, cur), amount)
        ledger.transfer(s, f"test-bankroll:{uuid.uuid4().hex}", "capital",
                        ledger.house_account(s, cur, "custody"),
                        ledger.house_account(s, cur, "bankroll"), 10**12)
    bets.reset_bankroll_cache()


@pytest.fixture
def usdt_player(app_env, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:  # noqa: ANN001
    import casino_app.ui.pages  # noqa: F401  (every state, before a tab is made)
    from tests.users.helpers import reconfigure

    reconfigure(monkeypatch, rate_bets_player="100000/second")
    token, pid = _player()
    _fund(pid, "USDT", 5_000_000)  # 5 USDT
    return token, pid


def test_the_header_shows_the_balance_converted_and_ignores_forged_choices(
        usdt_player: tuple[str, str]) -> None:
    token, _ = usdt_player
    _, wallet = _states(_tab(token))
    _run(wallet, "load")
    assert wallet.display_code == "USD"
    assert wallet.balance_fx == "play money"  # FUN is never converted
    assert wallet.fx_note == "rates from settings, not live"
    choose(wallet, "currency", "USDT")
    assert (wallet.balance, wallet.balance_fx) == ("5.00", "≈ $5.00")
    choose(wallet, "display", "EUR")
    assert (wallet.display, wallet.balance_fx) == ("EUR", "≈ 4.60 €")
    choose(wallet, "display", "BTC")
    assert wallet.balance_fx == "≈ 0.00005556 BTC"  # USDT -> USD -> BTC, rounded
    # what a browser may send instead of a choice: ignored, nothing changes
    for junk in ("GBP", "usd ", "<script>", "", None, 42, ["EUR"], {"x": 1}):
        choose(wallet, "display", junk)
        assert wallet.display == "BTC"
    # a forged localStorage value is read as the default and reset on the next load
    wallet.display = "EUR\"><img src=x onerror=alert(1)>"
    assert wallet.display_code == "USD"
    _run(wallet, "load")
    assert wallet.display == "USD" and wallet.balance_fx == "≈ $5.00"
    choose(wallet, "display", "NONE")
    assert (wallet.balance_fx, wallet.fx_note) == ("", "")


def test_bet_rows_stats_and_game_rows_show_converted_values(
        usdt_player: tuple[str, str]) -> None:
    from casino_app.games import bets, history
    from casino_app.payments import demo
    from casino_app.payments.rates import format_value
    from casino_app.ui.state.bets import BetsState

    token, pid = usdt_player
    demo.top_up_fun(pid, "topup-fx-0001")
    fun_bet = bets.place_bet(pid, "dice", "FUN", 100, DICE, "fx-bet-fun-1")
    root = _tab(token)
    game, wallet = _states(root)
    _run(wallet, "load")
    choose(wallet, "display", "EUR")
    choose(wallet, "currency", "USDT")
    _run(game, "open_game", "dice")
    game.amount = "1"
    _run(game, "bet", "fx-bet-usdt-1")
    assert game.error == ""
    row = game.game_rows[0]
    usdt_bet = history.bet(pid, row.id)
    assert usdt_bet is not None and usdt_bet.currency == "USDT"
    profit = usdt_bet.profit
    expected = format_value(Decimal(profit).scaleb(-6) * Decimal("0.92"), "EUR", signed=True)
    assert expected.startswith("≈ +" if profit > 0 else "≈ -")
    assert row.fx_profit == expected
    # the header follows the bet's balance
    assert wallet.balance_fx == format_value(
        Decimal(5_000_000 + profit).scaleb(-6) * Decimal("0.92"), "EUR")

    page = _substate(root, BetsState)
    _run(page, "on_open")
    by_id = {r.id: r for r in page.rows}
    assert by_id[usdt_bet.bet_id].fx_stake == "≈ 0.92 €"
    assert by_id[usdt_bet.bet_id].fx_profit == expected
    assert (by_id[fun_bet.bet_id].fx_stake, by_id[fun_bet.bet_id].fx_profit) == ("", "")
    stats = {s.currency: s for s in page.stats}
    assert stats["USDT"].fx_wagered == "≈ 0.92 €" and stats["FUN"].fx_wagered == ""
    assert page.fx_caption == ("≈ values in EUR at current rates "
                               "(rates from settings, not live)")
    # switching the display currency converts the open lists again
    choose(wallet, "display", "USD")
    assert {r.id: r.fx_stake for r in page.rows}[usdt_bet.bet_id] == "≈ $1.00"
    assert {s.currency: s.fx_wagered for s in page.stats}["USDT"] == "≈ $1.00"
    assert game.game_rows[0].fx_profit.startswith("≈ +$" if profit > 0 else "≈ -$")
    choose(wallet, "display", "NONE")
    assert all(r.fx_stake == r.fx_profit == "" for r in page.rows)
    assert page.fx_caption == "" and game.game_rows[0].fx_profit == ""


def test_old_live_rates_say_how_old_they_are(usdt_player: tuple[str, str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from casino_app.core.clock import utcnow
    from casino_app.core.settings import reset_settings_cache
    from casino_app.payments import rates

    token, _ = usdt_player
    # the web process only reads what the worker's job stored: no fetch happens here
    monkeypatch.setenv("CASINO_RATES_URL", "https://rates.example.com/api/v3")
    reset_settings_cache()
    rates.store({("USDT", "USD"): Decimal("1.25")}, "rates.example.com",
                utcnow() - timedelta(hours=2, minutes=5))
    _, wallet = _states(_tab(token))
    _run(wallet, "load")
    choose(wallet, "currency", "USDT")
    assert wallet.balance_fx == "≈ $6.25"
    assert wallet.fx_note == "rates 2 h old"
    choose(wallet, "display", "EUR")  # no EUR rate stored: nothing rather than a guess
    assert wallet.balance_fx == ""


def test_converting_changes_no_data(usdt_player: tuple[str, str]) -> None:
    from tests.ui.test_games_state import _fingerprint

    token, _ = usdt_player
    _, wallet = _states(_tab(token))
    _run(wallet, "load")
    before = _fingerprint()
    for code in ("EUR", "BTC", "ETH", "NONE", "USD", "junk"):
        choose(wallet, "display", code)
    assert _fingerprint() == before
