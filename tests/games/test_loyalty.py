"""The loyalty programme as a player and an admin meet it, on SQLite and PostgreSQL: VIP
tiers by USD volume, rakeback worked out exactly once per period and currency, claims
that pay once however often (and however concurrently) they are sent, the level-up
bonus once per tier, provider wagers at the declared edge, rakeback farming flagged and
its claims held for staff, and the ledger's invariants after all of it."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import timedelta
from fractions import Fraction

import pytest
from sqlalchemy import func, select

from casino_app.core.clock import utcnow
from casino_app.core.db import ledger_tx
from casino_app.core.settings import parse_loyalty_tiers, reset_settings_cache
from casino_app.games import bets
from casino_app.games.house import GAMES
from casino_app.games.loyalty import accrual, rewards, tiers
from casino_app.games.loyalty.models import LoyaltyAccrual, LoyaltyFlag, LoyaltyReward
from casino_app.games.models import Bet
from casino_app.games.providers.models import ProviderGame, ProviderRound
from casino_app.payments import ledger
from casino_app.payments.models import JournalEntry
from casino_app.security.ratelimit import reset_limiter
from tests.support import provider_setup as ps

TIERS = "Bronze:0:10:0,Silver:1000:20:5,Gold:10000:30:50"
BTC_USD = 90_000  # CASINO_RATES_FIXED's default
DICE_OVER = {"target": 50, "direction": "over"}
DICE_UNDER = {"target": 50, "direction": "under"}


@pytest.fixture
def loyal(any_env: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("CASINO_RATE_BETS_PLAYER", "100000/second")
    monkeypatch.setenv("CASINO_LOYALTY_TIERS", TIERS)
    monkeypatch.setenv("CASINO_LOYALTY_PERIOD_HOURS", "1")
    monkeypatch.setenv("CASINO_LOYALTY_GRACE_SECONDS", "0")
    monkeypatch.setenv("CASINO_LOYALTY_HEDGE_MIN_USD", "1")
    reset_settings_cache()
    reset_limiter()
    with ledger_tx() as s:
        ledger.transfer(s, f"test-bankroll:{uuid.uuid4().hex}", "capital",
                        ledger.house_account(s, "BTC", "custody"),
                        ledger.house_account(s, "BTC", "bankroll"), 10 * 10**8)
        ledger.transfer(s, f"test-bankroll:{uuid.uuid4().hex}", "capital",
                        ledger.house_account(s, "ETH", "custody"),
                        ledger.house_account(s, "ETH", "bankroll"), 100 * 10**9)
    bets.reset_bankroll_cache()
    return any_env


def _player(**balances: int) -> ps.TestPlayer:
    return ps.new_player(fun=1_000_000, **balances)


def _bet(p: ps.TestPlayer, game: str, cur: str, stake: int, params: dict) -> bets.BetResult:
    return bets.place_bet(p.player_id, game, cur, stake, params, "k" + uuid.uuid4().hex[:15])


def _age(hours: float) -> None:
    """Time machine: every bet and provider round so far happened ``hours`` earlier."""
    delta = timedelta(hours=hours)
    with ledger_tx() as s:
        for b in s.scalars(select(Bet)):
            b.created_at -= delta
            if b.settled_at is not None:
                b.settled_at -= delta
        for r in s.scalars(select(ProviderRound)):
            r.opened_at -= delta
            if r.closed_at is not None:
                r.closed_at -= delta


def _accrue_past(hours_ago: float = 0) -> dict[str, int]:
    """Accrue what happened before now, or ``hours_ago`` (the grace is 0 in these tests)."""
    return accrual.accrue(now=utcnow() - timedelta(hours=hours_ago))


def _balance(p: ps.TestPlayer, cur: str) -> int:
    return ps.balance(p.player_id, cur)


def _rewards(p: ps.TestPlayer) -> list[LoyaltyReward]:
    with ledger_tx(readonly=True) as s:
        return list(s.scalars(select(LoyaltyReward).where(
            LoyaltyReward.player_id == p.player_id).order_by(LoyaltyReward.id)))


def _expected(placed: list[tuple[str, dict, int]], bps: int) -> int:
    """floor(sum(stake x (1 - RTP of the game and parameters)) x bps / 10000)."""
    total = Fraction(0)
    for game, params, stake in placed:
        g = GAMES[game]
        total += stake * (1 - g.rtp(g.parse_params(params)))
    value = total * bps / 10_000
    return value.numerator // value.denominator


# --- tiers ---------------------------------------------------------------------------------

def test_tier_maths() -> None:
    table = parse_loyalty_tiers(TIERS)
    assert [t.threshold_e2 for t in table] == [0, 100_000, 1_000_000]
    assert [t.rakeback_bps for t in table] == [1_000, 2_000, 3_000]
    assert [tiers.tier_index(v, table) for v in (0, 99_999, 100_000, 999_999, 1_000_000,
                                                 10**12)] \
        == [0, 0, 1, 1, 2, 2]
    half = tiers.progress(550_000, table)  # $5500: halfway from Silver to Gold
    assert (half.tier.name, half.next.name, half.bps, half.to_next_e2) == \
        ("Silver", "Gold", 5_000, 450_000)
    top = tiers.progress(10**9, table)
    assert (top.tier.name, top.next, top.bps, top.to_next_e2) == ("Gold", None, 10_000, 0)
    # USD values: integer cents, rounded down; the level-up bonus back in base units
    assert tiers.usd_e2(111_112, 8, tiers.Decimal(BTC_USD)) == 10_000  # $100.0008
    assert tiers.from_usd_e2(500, 8, tiers.Decimal(BTC_USD)) == 5_555  # $5 in satoshi
    assert tiers.provider_edge(960_000) == Fraction(4, 100)
    assert tiers.provider_edge(0) == 0             # no declared RTP: no rakeback
    assert tiers.provider_edge(500_000) == Fraction(1, 10)  # capped at 10%
    for bad in ("", "Silver:100:5:0", "Bronze:0:5:0,Silver:0:6:1", "Bronze:0:101:0",
                "Bronze:0:5", "Bronze:0:5:0,bronze:10:5:0", "Bronze:0:5,5:0",
                "Bronze:0:5.123:0"):
        with pytest.raises(ValueError):
            parse_loyalty_tiers(bad)


# --- rakeback -------------------------------------------------------------------------------

def test_rakeback_is_exact_per_period_and_currency(loyal: str) -> None:
    p = _player(BTC=10**8, ETH=10**10)
    placed = {"BTC": [("dice", DICE_OVER, 123_457), ("limbo", {"target": "2.5"}, 100_003),
                      ("plinko", {"rows": 12, "risk": "medium"}, 77_777),
                      ("keno", {"picks": [3, 17, 22, 40], "risk": "classic"}, 55_555)],
              "ETH": [("dice", {"target": 33.33, "direction": "under"}, 1_234_567)]}
    for cur, rows in placed.items():
        for game, params, stake in rows:
            _bet(p, game, cur, stake, params)
    _bet(p, "dice", "FUN", 50_000, DICE_OVER)  # play money: counts for nothing
    _age(3)
    assert _accrue_past()["accruals"] == 2
    with ledger_tx(readonly=True) as s:
        acc = {a.currency: a for a in s.scalars(select(LoyaltyAccrual).where(
            LoyaltyAccrual.player_id == p.player_id))}
    assert set(acc) == {"BTC", "ETH"}
    for cur, rows in placed.items():
        assert acc[cur].house_wagered == sum(r[2] for r in rows)
        assert acc[cur].tier == "Bronze" and acc[cur].rakeback_bps == 1_000
        assert acc[cur].rakeback == _expected(rows, 1_000) > 0
    # the BTC volume at the fixed rate, in cents rounded down
    assert acc["BTC"].usd_e2 == 356_792 * BTC_USD * 100 // 10**8
    found = {r.currency: r for r in _rewards(p)}
    assert {c: (r.amount, r.state) for c, r in found.items()} == {
        c: (acc[c].rakeback, "available") for c in ("BTC", "ETH")}
    # accruing again finds nothing new: each period is accrued once
    assert _accrue_past() == {}
    assert len(_rewards(p)) == 2
    assert ps.invariants_hold() == []


def test_provider_wagers_count_at_the_declared_edge(loyal: str) -> None:
    p = _player(BTC=10**8)
    provider = ps.add_bgaming("loyal-bg", b"s" * 32)
    with ledger_tx() as s:
        s.add(ProviderGame(provider_id=provider.id, game_code="hh-slot", name="Slot",
                           rtp_e4=960_000))
        s.add(ProviderGame(provider_id=provider.id, game_code="no-rtp", name="Unknown",
                           rtp_e4=0))
    token = ps.token(provider, p, code="BTC")
    ps.play_round(provider, p, token, 1_000_000, 300_000, code="BTC")
    ps.play_round(provider, p, ps.token(provider, p, game="no-rtp", code="BTC"), 200_000, 0,
                  game="no-rtp", code="BTC")
    _bet(p, "dice", "BTC", 100_000, DICE_OVER)
    _age(3)
    _accrue_past()
    with ledger_tx(readonly=True) as s:
        a = s.scalars(select(LoyaltyAccrual).where(
            LoyaltyAccrual.player_id == p.player_id)).one()
    assert (a.provider_wagered, a.house_wagered) == (1_200_000, 100_000)
    # 1,000,000 x 4% (declared 96%) + the dice bet's edge; the no-RTP game counts for
    # volume only; all at Bronze's 10%
    dice = 100_000 * (1 - GAMES["dice"].rtp(GAMES["dice"].parse_params(DICE_OVER)))
    value = (Fraction(40_000) + dice) * 1_000 / 10_000
    assert a.rakeback == value.numerator // value.denominator
    assert a.usd_e2 == 1_300_000 * BTC_USD * 100 // 10**8
    assert ps.invariants_hold() == []


# --- claims -----------------------------------------------------------------------------------

def _claimable(p: ps.TestPlayer) -> int:
    _bet(p, "dice", "BTC", 500_000, DICE_OVER)
    _age(3)
    _accrue_past()
    (r,) = [r for r in _rewards(p) if r.kind == "rakeback"]
    return r.amount


def test_a_claim_twice_pays_once(loyal: str) -> None:
    p = _player(BTC=10**8)
    amount = _claimable(p)
    before = _balance(p, "BTC")
    first = rewards.claim(p.player_id)
    assert [(r.kind, r.amount, r.state) for r in first.paid] == [("rakeback", amount, "paid")]
    assert _balance(p, "BTC") == before + amount
    again = rewards.claim(p.player_id)
    assert again.paid == [] and again.held == []
    with pytest.raises(rewards.LoyaltyRefused):
        rewards.claim(p.player_id, first.paid[0].id)
    assert _balance(p, "BTC") == before + amount
    with ledger_tx(readonly=True) as s:
        keys = s.scalars(select(JournalEntry.key).where(
            JournalEntry.key.like(f"loyalty:rakeback:{p.player_id}:%"))).all()
        loyalty = ledger.house_total(s, "BTC", "loyalty")
    assert len(keys) == 1 and keys[0].endswith(tiers.period_label(first.paid[0].window_start))
    assert loyalty == -amount  # the house's expense
    assert ps.invariants_hold() == []


def test_two_concurrent_claims_pay_once(loyal: str) -> None:
    p = _player(BTC=10**8)
    amount = _claimable(p)
    before = _balance(p, "BTC")
    go = threading.Barrier(4)
    results: list[rewards.ClaimResult] = []
    errors: list[BaseException] = []

    def claim() -> None:
        go.wait()
        try:
            results.append(rewards.claim(p.player_id))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert sorted(len(r.paid) for r in results) == [0, 0, 0, 1]
    assert _balance(p, "BTC") == before + amount
    assert ps.invariants_hold() == []


def test_the_level_up_bonus_is_paid_once_per_tier(loyal: str) -> None:
    p = _player(BTC=10**8)
    _bet(p, "dice", "BTC", 1_200_000, DICE_OVER)  # $1080: Silver ($1000) is reached
    _age(6)
    _accrue_past(hours_ago=4)
    levelups = [r for r in _rewards(p) if r.kind == "levelup"]
    assert [(r.tier, r.currency, r.amount) for r in levelups] == [("Silver", "BTC", 5_555)]
    # the next period, at Silver's rakeback, brings no second Silver bonus
    _bet(p, "dice", "BTC", 100_000, DICE_OVER)
    _age(3)
    _accrue_past()
    assert [r.tier for r in _rewards(p) if r.kind == "levelup"] == ["Silver"]
    with ledger_tx(readonly=True) as s:
        tiers_seen = s.scalars(select(LoyaltyAccrual.tier).where(
            LoyaltyAccrual.player_id == p.player_id).order_by(LoyaltyAccrual.id)).all()
    assert tiers_seen == ["Bronze", "Silver"]
    before = _balance(p, "BTC")
    paid = rewards.claim(p.player_id).paid
    assert sorted(r.kind for r in paid) == ["levelup", "rakeback", "rakeback"]
    assert _balance(p, "BTC") == before + sum(r.amount for r in paid)
    assert rewards.claim(p.player_id).paid == []
    with ledger_tx(readonly=True) as s:
        assert s.scalar(select(func.count()).select_from(JournalEntry).where(
            JournalEntry.key == accrual.levelup_key(p.player_id, "Silver"))) == 1
    view = rewards.status(p.player_id)
    assert (view.tier, view.next_tier, view.accrued_e2) == ("Silver", "Gold", 117_000)
    assert ps.invariants_hold() == []


def test_play_money_earns_nothing(loyal: str) -> None:
    p = _player()
    for _ in range(3):
        _bet(p, "dice", "FUN", 100_000, DICE_OVER)
    _age(3)
    _accrue_past()
    assert _rewards(p) == []
    view = rewards.status(p.player_id)
    assert (view.tier, view.accrued_e2, view.pending_e2, view.fun_only) == \
        ("Bronze", 0, 0, True)


def test_the_account_card_counts_the_open_period_as_an_estimate(loyal: str) -> None:
    p = _player(BTC=10**8)
    _bet(p, "dice", "BTC", 100_000, DICE_OVER)
    _age(3)
    _accrue_past()
    _bet(p, "dice", "BTC", 50_000, DICE_OVER)  # this period: not accrued yet
    view = rewards.status(p.player_id)
    assert (view.accrued_e2, view.pending_e2) == (9_000, 4_500)
    assert view.progress_bps == 1_350  # $135 of the $1000 to Silver
    assert view.tier == "Bronze"   # the tier changes only when a period is accrued
    _bet(p, "dice", "BTC", 1_200_000, DICE_OVER)  # past Silver, still in this period
    view = rewards.status(p.player_id)
    assert (view.tier, view.next_tier, view.progress_bps, view.to_next_e2) == \
        ("Bronze", "Silver", 10_000, 0)


# --- abuse ------------------------------------------------------------------------------------

def test_both_sides_of_near_even_dice_are_flagged_and_hold_the_claim(loyal: str) -> None:
    farmer, honest = _player(BTC=10**8), _player(BTC=10**8)
    for _ in range(3):
        _bet(farmer, "dice", "BTC", 100_000, DICE_OVER)
        _bet(farmer, "dice", "BTC", 100_000, DICE_UNDER)
        _bet(honest, "dice", "BTC", 100_000, DICE_OVER)
        _bet(honest, "dice", "BTC", 100_000, {"target": 90, "direction": "under"})
    _age(3)
    assert _accrue_past()["flags"] == 1
    with ledger_tx(readonly=True) as s:
        flags = s.scalars(select(LoyaltyFlag)).all()
    assert [(f.player_id, f.hedged, f.wagered) for f in flags] == \
        [(farmer.player_id, 600_000, 600_000)]
    before = _balance(farmer, "BTC")
    out = rewards.claim(farmer.player_id)
    assert out.paid == [] and [r.state for r in out.held] == ["held"]
    assert _balance(farmer, "BTC") == before
    assert rewards.claim(farmer.player_id).held == []  # held once, not again
    assert rewards.status(farmer.player_id).flagged is True
    # the honest player's claim pays at once
    assert len(rewards.claim(honest.player_id).paid) == 1
    (held,) = rewards.held_claims()
    assert held.reward.player_id == farmer.player_id and "over and under" in \
        held.flags[0].detail
    # an admin approves it: paid once, under the reward's key
    paid = rewards.decide(held.reward.id, True, staff_user_id=1)
    assert paid.state == "paid" and _balance(farmer, "BTC") == before + paid.amount
    with pytest.raises(rewards.LoyaltyRefused):
        rewards.decide(held.reward.id, True, staff_user_id=1)
    assert _balance(farmer, "BTC") == before + paid.amount
    assert rewards.held_claims() == []
    assert ps.invariants_hold() == []


def test_a_rejected_claim_never_pays(loyal: str) -> None:
    farmer = _player(BTC=10**8)
    _bet(farmer, "dice", "BTC", 300_000, DICE_OVER)
    _bet(farmer, "dice", "BTC", 300_000, {"target": 55, "direction": "under"})
    _age(3)
    _accrue_past()
    before = _balance(farmer, "BTC")
    (held,) = rewards.claim(farmer.player_id).held
    done = rewards.decide(held.id, False, staff_user_id=1, note="hedging")
    assert (done.state, done.note) == ("rejected", "hedging")
    assert rewards.claim(farmer.player_id).paid == []
    with pytest.raises(rewards.LoyaltyRefused):
        rewards.decide(held.id, True, staff_user_id=1)
    assert _balance(farmer, "BTC") == before
    assert ps.invariants_hold() == []


def test_a_period_without_rates_waits(loyal: str, monkeypatch: pytest.MonkeyPatch) -> None:
    p = _player(BTC=10**8)
    _bet(p, "dice", "BTC", 100_000, DICE_OVER)
    _age(3)
    monkeypatch.setenv("CASINO_RATES_FIXED", "ETH:USD:3000")
    reset_settings_cache()
    from casino_app.payments import rates

    rates._forget()
    with pytest.raises(accrual.RatesMissing):
        _accrue_past()
    assert _rewards(p) == []
    monkeypatch.delenv("CASINO_RATES_FIXED")
    reset_settings_cache()
    rates._forget()
    assert _accrue_past()["accruals"] == 1


def test_params_json_of_stored_bets_parse_back(loyal: str) -> None:
    """The edge is read from the stored params: every game's stored form parses again."""
    p = _player(BTC=10**8)
    for game, params in (("dice", DICE_OVER), ("limbo", {"target": "2.5"}),
                         ("plinko", {"rows": 8, "risk": "low"}),
                         ("keno", {"picks": [1, 2], "risk": "classic"})):
        r = _bet(p, game, "BTC", 10_000, params)
        with ledger_tx(readonly=True) as s:
            stored = s.get(Bet, r.bet_id).params
        assert 0 < tiers.house_edge(game, stored) < Fraction(1, 10), (game, stored)
        assert json.loads(stored)


def test_claims_of_two_players_in_two_currencies_run_together(loyal: str) -> None:
    """Claims lock the house's loyalty accounts in one order (by currency), so two
    players claiming BTC and ETH rewards at once never deadlock."""
    from tests.support import loyalty as lt

    a, b = _player(), _player()
    for days in range(2, 7):
        lt.reward(a.player_id, 1_000, "BTC", days)
        lt.reward(b.player_id, 2_000, "ETH", days)
        lt.reward(a.player_id, 3_000, "ETH", days)
        lt.reward(b.player_id, 4_000, "BTC", days)
    go = threading.Barrier(2)
    errors: list[BaseException] = []

    def claim(p: ps.TestPlayer) -> None:
        go.wait()
        try:
            rewards.claim(p.player_id)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=claim, args=(p,)) for p in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert (_balance(a, "BTC"), _balance(a, "ETH")) == (5_000, 15_000)
    assert (_balance(b, "BTC"), _balance(b, "ETH")) == (20_000, 10_000)
    assert ps.invariants_hold() == []
