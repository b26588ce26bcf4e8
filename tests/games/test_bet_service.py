"""The bet service as a player meets it, on SQLite and on Postgres: money moves once per
bet, refusals change nothing, fairness can be checked afterwards, Mines rounds persist."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select

from casino_app.core.db import ledger_tx, reset_databases
from casino_app.core.settings import reset_settings_cache
from casino_app.games import bets, history, seeds
from casino_app.games.config import E4
from casino_app.games.house import GAMES, mines_multiplier_e4, verify
from casino_app.games.models import Bet, SeedPair
from casino_app.payments import ledger
from casino_app.payments.models import JournalEntry, Posting
from casino_app.security.ratelimit import reset_limiter

DICE = {"target": 50, "direction": "over"}


@pytest.fixture
def player(any_env: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh player id; bets are not rate-limited unless a test says so."""
    monkeypatch.setenv("CASINO_RATE_BETS_PLAYER", "100000/second")
    reset_settings_cache()
    reset_limiter()
    yield "p-" + uuid.uuid4().hex[:12]


def _fund(player_id: str, cur: str, amount: int) -> None:
    """Test-only credit: play money from the faucet, real money from custody."""
    with ledger_tx() as s:
        p = ledger.player_account(s, player_id, cur)
        src = ledger.house_account(s, cur, "faucet" if cur == "FUN" else "custody")
        ledger.transfer(s, f"test-credit:{uuid.uuid4().hex}", "deposit", src, p, amount)


def _fund_bankroll(cur: str, amount: int) -> None:
    with ledger_tx() as s:
        ledger.transfer(s, f"test-bankroll:{uuid.uuid4().hex}", "capital",
                        ledger.house_account(s, cur, "custody"),
                        ledger.house_account(s, cur, "bankroll"), amount)
    bets.reset_bankroll_cache()


def _key() -> str:
    return "k" + uuid.uuid4().hex[:15]


@dataclass(frozen=True)
class Snapshot:
    balances: dict[str, tuple[int, int]]
    nonce: int
    bets: int
    entries: int
    bankroll: int


def _snapshot(player_id: str) -> Snapshot:
    nonce = seeds.current(player_id).nonce
    with ledger_tx(readonly=True) as s:
        bals = {c: (b.balance, b.reserved)
                for c, b in ledger.player_balances(s, player_id).items()}
        n_bets = s.scalar(select(func.count()).select_from(Bet)
                          .where(Bet.player_id == player_id))
        n_entries = s.scalar(select(func.count()).select_from(JournalEntry))
        bank = sum(ledger.house_total(s, c, "bankroll") for c in ("FUN", "BTC"))
    return Snapshot(bals, nonce, n_bets, n_entries, bank)


def _balance(player_id: str, cur: str = "FUN") -> int:
    with ledger_tx(readonly=True) as s:
        return ledger.player_balances(s, player_id)[cur].balance


def _violations() -> dict[str, int]:
    with ledger_tx(readonly=True) as s:
        return {f.check: f.violations for f in ledger.check_invariants(s) if f.violations}


def _row(bet_id: int) -> Bet:
    with ledger_tx(readonly=True) as s:
        return s.get(Bet, bet_id)


def _active_server_seed(player_id: str) -> str:
    """White-box: unseal the active server seed the service keeps hidden."""
    with ledger_tx(readonly=True) as s:
        p = s.execute(select(SeedPair).where(SeedPair.player_id == player_id,
                                             SeedPair.state == "active")).scalar_one()
        return seeds._open(player_id, p.server_seed_hash, p.server_seed_sealed)


SINGLE_STEP = [
    ("dice", DICE),
    ("limbo", {"target": "2.5"}),
    ("plinko", {"rows": 12, "risk": "medium"}),
    ("keno", {"picks": [3, 17, 22, 40], "risk": "high"}),
]


def test_a_bet_moves_stake_and_payout_as_one_entry_with_verifiable_fairness(
        player: str) -> None:
    _fund(player, "FUN", 100_000)
    view = seeds.current(player)
    placed = []
    for i, (game, params) in enumerate(SINGLE_STEP * 2):
        before = _balance(player)
        r = bets.place_bet(player, game, "FUN", 1_000 + i, params, _key())
        placed.append(r)
        assert (r.stake, r.state, r.replayed) == (1_000 + i, "won" if r.payout else "lost",
                                                  False)
        assert r.payout == r.stake * r.mult_e4 // E4
        assert (r.balance_before, r.balance_after) == (before, before - r.stake + r.payout)
        assert _balance(player) == r.balance_after
        # the fairness inputs: the committed hash, the client seed, the next nonce
        assert (r.server_seed_hash, r.client_seed, r.nonce) == (
            view.server_seed_hash, view.client_seed, i)
        assert r.server_seed is None
        with ledger_tx(readonly=True) as s:
            entry = s.execute(select(JournalEntry).where(
                JournalEntry.key == f"bet:{player}:{r.bet_key}")).scalar_one()
            lines = s.execute(select(Posting.account_id, Posting.amount)
                              .where(Posting.entry_id == entry.id)).all()
            mine = ledger.player_account(s, player, "FUN")
        assert entry.kind == "bet"
        assert sum(a for _, a in lines) == 0
        assert sum(a for acc, a in lines if acc == mine) == r.payout - r.stake
    assert seeds.current(player).nonce == len(placed)

    revealed = seeds.rotate(player, "my-own-seed")
    assert revealed.server_seed_hash == view.server_seed_hash
    assert revealed.bets == len(placed)
    after = seeds.current(player)
    assert (after.server_seed_hash, after.client_seed, after.nonce) == (
        view.next_server_seed_hash, "my-own-seed", 0)
    for r in placed:
        again = history.bet(player, r.bet_id)
        assert again is not None and again.server_seed == revealed.server_seed
        game = GAMES[r.game]
        parsed = game.parse_params(r.params)
        outcome = game.draw(revealed.server_seed, r.client_seed, r.nonce, parsed)
        assert outcome == r.outcome
        assert game.multiplier_e4(parsed, outcome) == r.mult_e4
        extra = {"rows": r.params["rows"]} if r.game == "plinko" else {}
        assert verify(r.game, revealed.server_seed, r.client_seed, r.nonce,
                      **extra)["outcome"] == r.outcome
    # the next bet uses the new pair from nonce 0
    nxt = bets.place_bet(player, "dice", "FUN", 100, DICE, _key())
    assert (nxt.server_seed_hash, nxt.client_seed, nxt.nonce) == (
        view.next_server_seed_hash, "my-own-seed", 0)
    assert _violations() == {}


def test_a_repeated_bet_key_returns_the_same_bet_and_moves_nothing(player: str) -> None:
    _fund(player, "FUN", 10_000)
    key = _key()
    first = bets.place_bet(player, "limbo", "FUN", 500, {"target": 3}, key)
    snap = _snapshot(player)
    again = bets.place_bet(player, "limbo", "FUN", 500, {"target": "3.00"}, key)
    assert again.replayed and not first.replayed
    assert (again.bet_id, again.payout, again.outcome, again.nonce, again.balance_after) == (
        first.bet_id, first.payout, first.outcome, first.nonce, first.balance_after)
    assert _snapshot(player) == snap
    for game, cur, stake, params in (("limbo", "FUN", 501, {"target": 3}),
                                     ("limbo", "FUN", 500, {"target": 4}),
                                     ("dice", "FUN", 500, DICE)):
        with pytest.raises(bets.InvalidBet, match="already used for another bet"):
            bets.place_bet(player, game, cur, stake, params, key)
    assert _snapshot(player) == snap
    # another player may use the same key: keys are the player's own
    other = "p-" + uuid.uuid4().hex[:12]
    _fund(other, "FUN", 1_000)
    assert bets.place_bet(other, "limbo", "FUN", 500, {"target": 3}, key).bet_id != first.bet_id
    assert _violations() == {}


REFUSALS = [  # (what changes from a good bet, the refusal, words of its message)
    (dict(stake="balance + 1"), bets.InsufficientBalance, "Insufficient balance"),
    (dict(currency="BTC", stake=100), bets.InsufficientBalance, "Insufficient balance"),
    (dict(currency="BTC", stake=99), bets.InvalidBet, "smallest bet is 0.00000100 BTC"),
    (dict(stake=10_000_001), bets.InvalidBet, "largest bet is 100,000.00 FUN"),
    (dict(stake=0), bets.InvalidBet, "smallest bet"),
    (dict(stake=-5), bets.InvalidBet, "smallest bet"),
    (dict(stake=1.5), bets.InvalidBet, "Enter a bet amount"),
    (dict(stake=True), bets.InvalidBet, "Enter a bet amount"),
    (dict(stake="100"), bets.InvalidBet, "Enter a bet amount"),
    (dict(params={"target": 1.5, "direction": "over"}), bets.InvalidBet, "win chance"),
    (dict(params={"target": "50.123", "direction": "over"}), bets.InvalidBet,
     "at most 2 decimals"),
    (dict(params={"target": 50}), bets.InvalidBet, "direction"),
    (dict(params={"target": 50, "direction": "over", "x": 1}), bets.InvalidBet,
     "unknown parameter"),
    (dict(params="50 over"), bets.InvalidBet, "Bad game settings"),
    (dict(game="mines", params={"mines": 25}), bets.InvalidBet, "mines"),
    (dict(game="keno", params={"picks": [1, 1], "risk": "low"}), bets.InvalidBet, "picks"),
    (dict(game="roulette"), bets.InvalidBet, "Unknown game"),
    (dict(game=None), bets.InvalidBet, "Unknown game"),
    (dict(currency="DOGE"), bets.InvalidBet, "Unknown currency"),
    (dict(key="short"), bets.InvalidBet, "Bad bet id"),
    (dict(key="a" * 65), bets.InvalidBet, "Bad bet id"),
    (dict(key="bad key/../x"), bets.InvalidBet, "Bad bet id"),
    # real money needs a bankroll behind it: ETH has none in this test, and the player
    # reads that real-money play is not open yet (not "could win more than 0.000000 ETH")
    (dict(currency="ETH", stake=10_000), bets.OverExposure,
     "Real-money play in ETH is not open yet"),
]


def test_a_refused_bet_says_why_and_changes_nothing(player: str) -> None:
    _fund(player, "FUN", 10_000)
    _fund_bankroll("BTC", 10**12)
    bets.place_bet(player, "dice", "FUN", 100, DICE, _key())
    snap = _snapshot(player)
    for change, error, message in REFUSALS:
        bet = dict(game="dice", currency="FUN", stake=100, params=DICE, key=_key()) | change
        if bet["stake"] == "balance + 1":
            bet["stake"] = _balance(player) + 1
        with pytest.raises(error, match=message) as caught:
            bets.place_bet(player, bet["game"], bet["currency"], bet["stake"],
                           bet["params"], bet["key"])
        assert isinstance(caught.value, bets.BetRefused)
        assert "Traceback" not in str(caught.value) and len(str(caught.value)) < 200
        assert _snapshot(player) == snap, change
    assert _violations() == {}


def test_the_exposure_cap_refuses_a_real_money_bet_that_could_win_too_much(
        player: str) -> None:
    _fund(player, "BTC", 1_000_000)
    _fund_bankroll("BTC", 1_000_000)          # cap: 1% of the bankroll = 10,000 sat of win
    assert bets.max_win(bets.currency("BTC")) == 10_000
    ok = bets.place_bet(player, "limbo", "BTC", 10_000, {"target": 2}, _key())  # wins 10,000
    assert ok.stake == 10_000
    bets.reset_bankroll_cache()
    cap = bets.max_win(bets.currency("BTC"))  # 1% of the bankroll after that bet
    assert cap == (1_000_000 + ok.stake - ok.payout) // 100 and type(cap) is int
    snap = _snapshot(player)
    with pytest.raises(bets.OverExposure, match=rf"\({bets.currency('BTC').format(cap)} BTC\)"):
        bets.place_bet(player, "limbo", "BTC", cap + 1, {"target": 2}, _key())
    with pytest.raises(bets.OverExposure):
        bets.place_bet(player, "mines", "BTC", 100_000, {"mines": 24}, _key())
    assert _snapshot(player) == snap
    # play money has no cap (and no bankroll to protect)
    _fund(player, "FUN", 1_000)
    assert bets.max_win(bets.currency("FUN")) is None
    bets.place_bet(player, "limbo", "FUN", 100, {"target": 1_000_000}, _key())
    assert _violations() == {}


def test_betting_too_fast_is_refused_with_a_wait(player: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASINO_RATE_BETS_PLAYER", "3/minute")
    reset_settings_cache()
    reset_limiter()
    _fund(player, "FUN", 10_000)
    placed = [bets.place_bet(player, "dice", "FUN", 100, DICE, _key()) for _ in range(3)]
    snap = _snapshot(player)
    with pytest.raises(bets.TooFast, match=r"Try again in \d+ s"):
        bets.place_bet(player, "dice", "FUN", 100, DICE, _key())
    assert _snapshot(player) == snap
    # a resent bet is not a new one: it is answered even now
    again = bets.place_bet(player, "dice", "FUN", 100, DICE, placed[0].bet_key)
    assert again.replayed and again.bet_id == placed[0].bet_id
    # another player is not slowed down by this one
    other = "p-" + uuid.uuid4().hex[:12]
    _fund(other, "FUN", 1_000)
    bets.place_bet(other, "dice", "FUN", 100, DICE, _key())


def _mines_of(bet_id: int) -> list[int]:
    """White-box: the hidden mine tiles of a round (the browser never sees them)."""
    return json.loads(_row(bet_id).outcome)


def test_mines_pays_stake_times_multiplier_on_cash_out(player: str) -> None:
    _fund(player, "FUN", 10_000)
    start = bets.place_bet(player, "mines", "FUN", 1_000, {"mines": 5}, _key())
    assert (start.state, start.payout, start.outcome, start.revealed) == ("open", 0, None, [])
    assert _balance(player) == 9_000 == start.balance_after
    with pytest.raises(bets.InvalidBet, match="at least one tile"):
        bets.cash_out(player, start.bet_id)
    mines = _mines_of(start.bet_id)
    safe = [t for t in range(25) if t not in mines][:3]
    r = start
    for n, tile in enumerate(safe, 1):
        r = bets.reveal_tile(player, start.bet_id, tile)
        assert (r.state, r.revealed, r.outcome) == ("open", safe[:n], None)
        assert r.next_mult_e4 == mines_multiplier_e4(5, n)
    assert bets.reveal_tile(player, start.bet_id, safe[0]).revealed == safe  # no-op
    assert _balance(player) == 9_000
    done = bets.cash_out(player, start.bet_id)
    mult = mines_multiplier_e4(5, 3)
    assert (done.state, done.mult_e4, done.payout) == ("won", mult, 1_000 * mult // E4)
    assert done.outcome == mines and done.balance_after == 9_000 + done.payout
    assert _balance(player) == 9_000 + done.payout
    assert bets.open_mines(player) is None
    # cashing out twice pays once; revealing after the end changes nothing
    assert bets.cash_out(player, start.bet_id).replayed
    assert bets.reveal_tile(player, start.bet_id, mines[0]).state == "won"
    assert _balance(player) == 9_000 + done.payout
    # the mines follow from the seeds, as for every other game
    pair = seeds.rotate(player)
    assert GAMES["mines"].draw(pair.server_seed, done.client_seed, done.nonce,
                               GAMES["mines"].parse_params({"mines": 5})) == mines
    assert verify("mines", pair.server_seed, done.client_seed, done.nonce,
                  mines=5)["outcome"] == mines
    assert _violations() == {}


def test_mines_hitting_a_mine_loses_the_stake(player: str) -> None:
    _fund(player, "FUN", 10_000)
    start = bets.place_bet(player, "mines", "FUN", 1_000, {"mines": 3}, _key())
    mines = _mines_of(start.bet_id)
    safe = next(t for t in range(25) if t not in mines)
    bets.reveal_tile(player, start.bet_id, safe)
    lost = bets.reveal_tile(player, start.bet_id, mines[1])
    assert (lost.state, lost.payout, lost.mult_e4) == ("lost", 0, 0)
    assert lost.outcome == mines and lost.revealed == [safe, mines[1]]
    assert _balance(player) == 9_000 == lost.balance_after
    with pytest.raises(bets.InvalidBet):
        bets.reveal_tile(player, start.bet_id, 25)
    assert bets.cash_out(player, start.bet_id).payout == 0
    assert bets.open_mines(player) is None and _balance(player) == 9_000
    assert _violations() == {}


def test_one_open_mines_round_at_a_time_and_it_survives_a_restart(player: str) -> None:
    _fund(player, "FUN", 10_000)
    start = bets.place_bet(player, "mines", "FUN", 1_000, {"mines": 2}, _key())
    snap = _snapshot(player)
    with pytest.raises(bets.InvalidBet, match="Finish your open Mines round"):
        bets.place_bet(player, "mines", "FUN", 1_000, {"mines": 2}, _key())
    assert _snapshot(player) == snap
    # other games may be played meanwhile
    bets.place_bet(player, "dice", "FUN", 100, DICE, _key())
    safe = next(t for t in range(25) if t not in _mines_of(start.bet_id))
    bets.reveal_tile(player, start.bet_id, safe)

    reset_databases()  # a restart: new engines, nothing kept in memory
    found = bets.open_mines(player)
    assert found is not None and (found.bet_id, found.revealed, found.outcome) == (
        start.bet_id, [safe], None)
    # another player cannot touch it
    with pytest.raises(bets.InvalidBet, match="No such round"):
        bets.cash_out("p-intruder", start.bet_id)
    assert bets.cash_out(player, start.bet_id).state == "won"
    assert bets.place_bet(player, "mines", "FUN", 1_000, {"mines": 2}, _key()).state == "open"
    assert _violations() == {}


def test_stats_add_up_to_the_bets(player: str) -> None:
    _fund(player, "FUN", 100_000)
    _fund(player, "BTC", 100_000)
    _fund_bankroll("BTC", 100_000_000)
    for i in range(12):
        game, params = SINGLE_STEP[i % len(SINGLE_STEP)]
        bets.place_bet(player, game, "FUN" if i % 3 else "BTC", 100 + i, params, _key())
    start = bets.place_bet(player, "mines", "FUN", 300, {"mines": 1}, _key())
    bets.reveal_tile(player, start.bet_id, next(t for t in range(25)
                                                if t not in _mines_of(start.bet_id)))
    bets.cash_out(player, start.bet_id)
    bets.place_bet(player, "mines", "FUN", 300, {"mines": 1}, _key())  # still open

    rows, more = history.bets_page(player, limit=100)
    assert not more and len(rows) == 14
    stats = {st.currency: st for st in history.stats(player)}
    assert set(stats) == {"FUN", "BTC"}
    for cur, st in stats.items():
        settled = [b for b in rows if b.currency == cur and b.state != "open"]
        assert st.bets == len(settled)
        assert st.wagered == sum(b.stake for b in settled)
        assert st.paid == sum(b.payout for b in settled)
        assert st.best_mult_e4 == max(b.mult_e4 for b in settled)
        assert history.profit_series(player, cur)[-1][1] == st.profit
    with ledger_tx(readonly=True) as s:
        bals = ledger.player_balances(s, player)
    assert bals["BTC"].balance == 100_000 + stats["BTC"].profit
    assert bals["FUN"].balance == 100_000 + stats["FUN"].profit - 300  # the open round
    assert _violations() == {}


def test_the_active_server_seed_is_never_shown_before_rotation(player: str) -> None:
    _fund(player, "FUN", 10_000)
    view = seeds.current(player)
    secret = _active_server_seed(player)
    shown: list[object] = [view]
    for game, params in SINGLE_STEP:
        shown.append(bets.place_bet(player, game, "FUN", 100, params, _key()))
    start = bets.place_bet(player, "mines", "FUN", 100, {"mines": 1}, _key())
    shown += [start, bets.open_mines(player), seeds.current(player)]
    shown.append(bets.reveal_tile(player, start.bet_id, next(
        t for t in range(25) if t not in _mines_of(start.bet_id))))
    shown.append(bets.cash_out(player, start.bet_id))
    shown += history.bets_page(player)[0]
    shown += [history.bet(player, r.bet_id) for r in shown[1:5]]  # type: ignore[union-attr]
    shown += seeds.revealed(player)
    for item in shown:
        assert secret not in repr(item)
        if isinstance(item, bets.BetResult):
            assert item.server_seed is None and item.server_seed_hash == view.server_seed_hash
    revealed = seeds.rotate(player)
    assert revealed.server_seed == secret
    assert all(b.server_seed == secret for b in history.bets_page(player)[0])


def test_a_player_on_hold_cannot_bet_until_staff_release_it(player: str) -> None:
    """A hold (payments.holds: e.g. a reversed deposit left the player owing) refuses new
    bets on both paths and changes nothing; a released hold lets the player bet again."""
    from casino_app.core.clock import utcnow
    from casino_app.payments.hold_models import PlayerHold

    _fund(player, "FUN", 10_000)
    first = str(uuid.uuid4())
    bets.place_bet(player, "dice", "FUN", 100, DICE, first)
    with ledger_tx() as s:
        s.add(PlayerHold(player_id=player, reason="deposit_reversed", detail="test",
                         created_at=utcnow()))
    with pytest.raises(bets.OnHold, match="under review"):
        bets.place_bet(player, "dice", "FUN", 100, DICE, str(uuid.uuid4()))
    # the same bet id again still answers with the bet already placed
    assert bets.place_bet(player, "dice", "FUN", 100, DICE, first).replayed
    with ledger_tx(readonly=True) as s:
        assert s.query(Bet).filter_by(player_id=player).count() == 1
        assert s.query(SeedPair).filter_by(player_id=player, state="active").one().nonce == 1
    with ledger_tx() as s:
        s.query(PlayerHold).filter_by(player_id=player).update({"released_at": utcnow()})
    assert bets.place_bet(player, "dice", "FUN", 100, DICE, str(uuid.uuid4())).nonce == 1


def test_an_empty_bankroll_says_real_money_is_not_open_and_tells_the_operator(
        player: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A fresh devnet refused a real-money bet with "could win more than the house allows
    per bet (0.000000 ETH)"."""
    _fund(player, "ETH", 10**9)
    bets._EMPTY_LOGGED.discard("ETH")
    snap = _snapshot(player)
    for _ in range(2):
        with pytest.raises(bets.OverExposure) as caught:
            bets.place_bet(player, "dice", "ETH", 10_000, DICE, _key())
        said = str(caught.value)
        assert "not open yet" in said and "0.000000" not in said and "FUN" in said
    assert _snapshot(player) == snap
    logged = capsys.readouterr()
    out = logged.out + logged.err
    assert out.count("bankroll_empty") == 1                  # once per currency
    assert "casino ledger fund --currency ETH" in out
