"""My bets, bet recall, fairness, verifier and staff money handlers, driven as the browser
drives them (a State tree, a session token in SessionState) against real databases with
real bets placed through the bet service."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from reflex.istate.data import ReflexURL, RouterData

from casino_app.games import bets, seeds
from casino_app.payments import demo
from casino_app.ui.state import bets as bets_ui
from casino_app.ui.state.bets import (
    bet_id_from_query,
    fmt_amount,
    fmt_mult,
    outcome_text,
    params_text,
    verify_link,
)
from casino_app.ui.state.fairness import query_values
from tests.ui.test_state_security import _call, _fresh_root, _substate

DICE = {"target": 50, "direction": "over"}


# --- formatting ------------------------------------------------------------------------------

def test_amounts_and_multipliers_are_formatted_from_ints() -> None:
    assert fmt_amount("BTC", 150_000_000) == "1.50000000"
    assert fmt_amount("FUN", 12_345) == "123.45"
    assert fmt_amount("FUN", -5, signed=True) == "−0.05"  # the minus sign, as in the games
    assert fmt_amount("FUN", 5, signed=True) == "+0.05"
    assert fmt_amount("FUN", 0, signed=True) == "+0.00"
    # never rounded away: digits beyond the display places show when they are not zero
    assert fmt_amount("USDT", 1_999_999) == "1.999999"
    assert fmt_amount("ETH", 250_000_000) == "0.250000"
    assert fmt_amount("ETH", 100_000_000) == "0.100000"   # was "0.1" on the wallet page
    assert fmt_amount("ETH", 0) == "0.000000"             # was "0" there
    assert fmt_amount("ETH", 1) == "0.000000001"          # was "0.000000" in the limits
    assert fmt_mult(19_800) == "1.98×"
    assert fmt_mult(0) == "0.00×"
    assert fmt_mult(10_000) == "1.00×"
    assert fmt_mult(12_345) == "1.2345×"
    assert fmt_mult(1_000_000_000) == "100,000.00×"


def test_outcomes_and_params_read_like_the_game() -> None:
    assert outcome_text("dice", 50.37) == "rolled 50.37"
    assert outcome_text("dice", 7.0) == "rolled 7.00"
    assert outcome_text("limbo", 2.5) == "2.50×"
    # players count from 1: the first bucket is bucket 1, the last tile is tile 25
    assert outcome_text("plinko", 7) == "bucket 8"
    assert outcome_text("plinko", 0) == "bucket 1"
    assert outcome_text("keno", [3, 17, 40]) == "drawn 3, 17, 40"
    assert outcome_text("mines", [0, 24]) == "mines on tiles 1, 25"
    assert outcome_text("mines", None) == "hidden until the round ends"
    assert params_text({"target": 50.5, "direction": "over"}) == "direction over · target 50.50"
    assert params_text({"target_e2": 5050}) == "target 50.50"
    assert params_text({"picks": [1, 2, 3], "risk": "low"}) == "picks 1, 2, 3 · risk low"


def test_verify_links_carry_what_the_verifier_needs() -> None:
    seed = "ab" * 32
    link = verify_link("plinko", seed, "my seed", 4, {"rows": 12, "risk": "high"}, "cd" * 32)
    assert link.startswith("/verify?game=plinko&server_seed=" + seed)
    assert "client_seed=my+seed" in link and "nonce=4" in link and "rows=12" in link
    assert "risk=high" in link and "hash=" + "cd" * 32 in link
    assert "picks=1%2C2%2C3" in verify_link("keno", seed, "c", 0, {"picks": [1, 2, 3]})
    assert "server_seed" not in verify_link("dice", None, "c", 0)
    values = query_values({"game": "plinko", "server_seed": seed, "rows": "12",
                           "nonce": "4", "evil": "x", "client_seed": "a\x00b" + "z" * 500})
    assert values["game"] == "plinko" and values["rows"] == "12" and "evil" not in values
    assert values["client_seed"] == "ab" + "z" * 198
    assert query_values({"game": "roulette"})["game"] == "dice"
    assert query_values({})["nonce"] == "0"


@pytest.mark.parametrize(("raw", "expected"), [
    ("42", 42), ("0", 0), ("-1", 0), ("", 0), ("x", 0), ("²", 0), ("1e3", 0),
    (str(2**62), 0), (str(2**62 - 1), 2**62 - 1), ("9" * 40, 0), (None, 0),
])
def test_bet_ids_from_the_url(raw: Any, expected: int) -> None:
    assert bet_id_from_query(raw) == expected


# --- handlers against real bets --------------------------------------------------------------

def _run(state: Any, name: str, *args: Any) -> list[Any]:
    return asyncio.run(_call(state, type(state).event_handlers[name], list(args)))


def _browser(token: str, url: str = "http://localhost:3000/") -> Any:
    from casino_app.ui.state.session import SessionState

    root = _fresh_root()
    root.router = RouterData(url=ReflexURL(url))
    _substate(root, SessionState).token = token
    return root


def _key() -> str:
    return "k" + uuid.uuid4().hex[:15]


@pytest.fixture
def players(app_env, monkeypatch):  # noqa: ANN001, ANN201
    """Two players with play money; the first has placed 5 dice and 3 limbo bets."""
    from tests.users.helpers import reconfigure, register, user_row

    reconfigure(monkeypatch, rate_bets_player="100000/second")
    out = []
    for _ in range(2):
        token, addr = register()
        pid = user_row(addr).player_id
        demo.top_up_fun(pid, _key())
        out.append((token, pid))
    (_, pid), _ = out
    placed = [bets.place_bet(pid, "dice", "FUN", 100 + i, DICE, _key()) for i in range(5)]
    placed += [bets.place_bet(pid, "limbo", "FUN", 200, {"target": 2}, _key())
               for _ in range(3)]
    return out, placed


def test_my_bets_pages_filters_stats_and_chart(players, monkeypatch) -> None:  # noqa: ANN001
    from casino_app.ui.state.bets import BetsState

    (token, pid), _ = players[0]
    placed = players[1]
    monkeypatch.setattr(bets_ui, "PAGE", 3)
    state = _substate(_browser(token), BetsState)
    assert _run(state, "on_open") == [None]
    assert [r.id for r in state.rows] == [b.bet_id for b in placed[::-1][:3]]
    assert state.more
    assert state.rows[0].link == f"/bets/bet?id={placed[-1].bet_id}"
    assert state.rows[0].game == "Limbo" and state.rows[0].stake == "2.00"
    _run(state, "older")
    _run(state, "older")
    assert [r.id for r in state.rows] == [b.bet_id for b in placed[::-1]]
    assert not state.more

    _run(state, "apply_filters", {"game": "dice", "currency": "FUN", "result": ""})
    assert {r.game for r in state.rows} == {"Dice"} and state.game == "dice"
    _run(state, "apply_filters", {"game": "no-such-game", "result": "won"})
    assert state.game == "" and {r.result for r in state.rows} <= {"won"}
    wins = [b for b in placed if b.payout > b.stake]
    assert len(state.rows) == min(3, len(wins))

    st, = state.stats
    assert (st.currency, st.bets) == ("FUN", 8)
    assert st.wagered == fmt_amount("FUN", sum(b.stake for b in placed))
    assert st.profit == fmt_amount("FUN", sum(b.profit for b in placed), signed=True)
    # in FUN, as the stats beside it (it was "FUN (cent)")
    assert state.chart_currency == "FUN" and state.chart_unit == "FUN"
    assert [p["bet"] for p in state.chart] == [0] + [b.bet_id for b in placed]
    assert state.chart[0]["profit"] == 0
    assert state.chart[-1]["profit"] == sum(b.profit for b in placed) / 100
    _run(state, "show_chart", "BTC")
    assert state.chart == []
    _run(state, "show_chart", "<script>")
    assert state.chart_currency == "" and state.chart == []


def test_bet_recall_shows_only_own_bets_and_the_seed_once_revealed(players) -> None:  # noqa: ANN001
    from casino_app.ui.state.bets import BetState

    (token, pid), (other_token, _) = players[0]
    first = players[1][0]
    url = f"http://localhost:3000/bets/bet?id={first.bet_id}"
    state = _substate(_browser(token, url), BetState)
    _run(state, "on_open")
    b = state.bet
    assert b is not None and b.id == first.bet_id and b.game == "dice"
    assert b.outcome == outcome_text("dice", first.outcome)
    assert b.stake == "1.00" and b.server_seed == "" and b.verify == ""
    assert b.server_seed_hash == first.server_seed_hash and b.nonce == 0
    assert b.balance_before == fmt_amount("FUN", first.balance_before)

    # another player asking for it sees "not found"
    theirs = _substate(_browser(other_token, url), BetState)
    _run(theirs, "on_open")
    assert theirs.bet is None and theirs.loaded
    for junk in ("abc", "-1", str(2**70), ""):
        s = _substate(_browser(token, f"http://localhost:3000/bets/bet?id={junk}"), BetState)
        _run(s, "on_open")
        assert s.bet is None and s.loaded

    # after a rotation the server seed is shown, with a prefilled verifier link
    revealed = seeds.rotate(pid)
    _run(state, "on_open")
    assert state.bet.server_seed == revealed.server_seed
    link = state.bet.verify
    assert link.startswith("/verify?game=dice&server_seed=" + revealed.server_seed)
    assert f"client_seed={first.client_seed}" in link and "nonce=0" in link


def test_fairness_rotation_reveals_the_old_seed_only(players) -> None:  # noqa: ANN001
    from casino_app.ui.state.fairness import FairnessState

    (token, pid), _ = players[0]
    placed = players[1]
    state = _substate(_browser(token), FairnessState)
    _run(state, "on_open")
    active, nxt = state.server_seed_hash, state.next_server_seed_hash
    assert state.nonce == len(placed) and state.revealed == []
    assert active == placed[0].server_seed_hash and nxt and nxt != active

    _run(state, "save_client_seed", {"client_seed": "has space"})
    assert "client seed" in state.error and state.server_seed_hash == active
    _run(state, "save_client_seed", {"client_seed": "  "})
    assert state.error and state.server_seed_hash == active

    _run(state, "save_client_seed", {"client_seed": "lucky-7"})
    assert state.error == "" and state.client_seed == "lucky-7" and state.nonce == 0
    assert state.server_seed_hash == nxt, "the committed next seed becomes active"
    row, = state.revealed
    assert row.server_seed_hash == active and row.bets == len(placed)
    assert row.server_seed in state.notice
    assert row.verify.startswith("/verify?game=dice&server_seed=" + row.server_seed)
    assert row.first_bet == f"/bets/bet?id={placed[0].bet_id}"
    # nothing in the state holds the active (unrevealed) server seed
    assert all(r.server_seed_hash != state.server_seed_hash for r in state.revealed)

    _run(state, "rotate")
    assert len(state.revealed) == 2 and state.revealed[0].bets == 0
    assert state.revealed[0].verify == "" and state.client_seed != "lucky-7"


def test_the_verifier_state_holds_form_values_from_the_url() -> None:
    from casino_app.ui.state.fairness import VerifyState

    root = _fresh_root()
    root.router = RouterData(url=ReflexURL(
        "http://localhost:3000/verify?game=mines&server_seed=ab&mines=3&nonce=7"))
    state = _substate(root, VerifyState)
    _run(state, "on_open")
    assert state.loaded and state.values["game"] == "mines"
    assert state.values["mines"] == "3" and state.values["nonce"] == "7"


# --- staff money -----------------------------------------------------------------------------

def test_staff_money_section_and_approvals(app_env) -> None:  # noqa: ANN001
    from casino_app.ui.state.staff_money import StaffAdjustmentsState, StaffMoneyState
    from casino_app.users.models import Role
    from tests.users.helpers import make_staff, register, user_row

    support, _, _ = make_staff(Role.support)
    admin, _, _ = make_staff(Role.admin)
    _, addr = register()
    uid = user_row(addr).id
    url = f"http://localhost:3000/admin/player?id={uid}"

    money = _substate(_browser(support, url), StaffMoneyState)
    assert _run(money, "on_open") == [None]
    assert money.loaded and money.balances == [] and "FUN" not in money.currencies
    _run(money, "request", {"currency": "BTC", "amount": "--1", "reason": "x"})
    assert "amount" in money.errors
    _run(money, "request", {"currency": "FUN", "amount": "1", "reason": "x"})
    assert "currency" in money.errors
    _run(money, "request", {"currency": "BTC", "amount": "0.25", "reason": "goodwill"})
    assert money.errors == {} and "+0.25000000 BTC" in money.notice
    req_id = money.adjustments[0].id

    # support cannot approve, and says so on the page (no redirect)
    pending = _substate(_browser(support), StaffAdjustmentsState)
    _run(pending, "on_open")
    assert [r.id for r in pending.rows] == [req_id]
    assert _run(pending, "approve", req_id) == [None]
    assert "Only an admin" in pending.message and len(pending.rows) == 1

    # an admin approves; the player's balance shows it
    boss = _substate(_browser(admin), StaffAdjustmentsState)
    _run(boss, "on_open")
    _run(boss, "approve", req_id)
    assert boss.message == "" and "Approved #" in boss.notice and boss.rows == []
    _run(money, "on_open")
    assert [(b.currency, b.balance) for b in money.balances] == [("BTC", "0.25000000")]
    assert money.entries[0].amount == "+0.25000000 BTC"

    # the admin's own request needs someone else: the refusal is shown
    mine = _substate(_browser(admin, url), StaffMoneyState)
    _run(mine, "on_open")
    _run(mine, "request", {"currency": "BTC", "amount": "-0.1", "reason": "fix"})
    own = mine.adjustments[0].id
    _run(boss, "on_open")
    assert _run(boss, "approve", own) == [None]
    assert "second staff member" in boss.message
    _run(boss, "reject", {"request_id": str(own), "reason": "no"})
    assert "second staff member" in boss.message and [r.id for r in boss.rows] == [own]

    # a player who finds the page is sent away
    player_token, _ = register()
    sent = _run(_substate(_browser(player_token), StaffAdjustmentsState), "approve", own)
    assert "/account" in repr(sent)


def test_fairness_page_refuses_to_rotate_during_an_open_mines_round(players) -> None:  # noqa: ANN001
    """Issue 10: Rotate and Save-and-rotate say why they are refused while a Mines round
    is open, and no var of the page or of the round's recall holds its server seed."""
    from casino_app.core.db import ledger_tx
    from casino_app.games.models import Bet, SeedPair
    from casino_app.ui.state.bets import BetState
    from casino_app.ui.state.fairness import FairnessState

    (token, pid), _ = players[0]
    start = bets.place_bet(pid, "mines", "FUN", 100, {"mines": 24}, "k" + uuid.uuid4().hex)
    with ledger_tx(readonly=True) as s:
        pair = s.get(SeedPair, s.get(Bet, start.bet_id).seed_pair_id)
        secret = seeds._open(pid, pair.server_seed_hash, bytes(pair.server_seed_sealed))
    state = _substate(_browser(token), FairnessState)
    _run(state, "on_open")
    assert state.in_use
    active, revealed = state.server_seed_hash, list(state.revealed)
    _run(state, "rotate")
    assert "Finish your open Mines round" in state.message
    _run(state, "save_client_seed", {"client_seed": "lucky-8"})
    assert "Finish your open Mines round" in state.message
    assert state.server_seed_hash == active and state.revealed == revealed
    assert state.client_seed != "lucky-8" and state.in_use
    recall = _substate(_browser(token, f"http://localhost:3000/bets/bet?id={start.bet_id}"),
                       BetState)
    _run(recall, "on_open")
    assert recall.bet is not None and recall.bet.server_seed == "" and recall.bet.verify == ""
    assert secret not in repr(state.dict()) and secret not in repr(recall.dict())

    bets.reveal_tile(pid, start.bet_id, 0)  # 24 mines: the one tile ends the round
    _run(state, "rotate")
    assert state.message == "" and not state.in_use and secret in state.notice


def test_a_round_is_won_only_when_it_pays_more_than_the_stake() -> None:
    """Keno and Plinko rounds paying 0.25x or 0.2x were labelled "won" in My bets and on
    the staff page: they lost money. A payout below the stake is a partial return."""
    from types import SimpleNamespace

    from casino_app.ui import format as fmt
    from casino_app.ui.state.bets import bet_row

    def bet(stake: int, payout: int, state: str = "won"):  # noqa: ANN202
        return bet_row(SimpleNamespace(  # type: ignore[arg-type]
            bet_id=1, game="keno", currency="FUN", stake=stake, payout=payout,
            mult_e4=payout * 10_000 // stake, state=state, created_at=None,
            profit=payout - stake))

    assert (bet(100, 25).result, bet(100, 25).result_key) == ("partial return", "partial")
    assert not bet(100, 25).won and bet(100, 25).mult == "0.25×"
    assert bet(100, 20).profit == "−0.80"
    assert bet(100, 198).result == "won" and bet(100, 198).won
    assert bet(100, 100).result == "stake back"
    assert bet(100, 0, "lost").result == "lost"
    assert bet(100, 0, "open").result == "open"
    assert fmt.result_label("void", 100, 100) == "void"


def test_no_usd_caption_where_nothing_is_converted() -> None:
    """ "≈ values in USD" was shown over play-money rows, which convert to nothing."""
    from casino_app.payments.rates import RateTable
    from casino_app.ui.state.bets import BetRow, fx_caption

    fun = BetRow(1, "/bets/bet?id=1", "", "Dice", "FUN", "1.00", "1.98×", "1.98", "+0.98",
                 "won", True)
    eth = BetRow(2, "/bets/bet?id=2", "", "Dice", "ETH", "0.010000", "1.98×", "0.019800",
                 "+0.009800", "won", True, fx_profit="≈ +$30.00")
    assert fx_caption("USD", RateTable(), [fun]) == ""
    assert fx_caption("USD", RateTable(), [fun, eth]).startswith("≈ values in USD")
    assert fx_caption("NONE", RateTable(), [eth]) == ""
