"""Double-spend races on a private Postgres (TRUST.md): many bets and a withdrawal
reservation released together against one balance that cannot cover them all."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from casino_app.core.db import ledger_tx
from casino_app.core.settings import reset_settings_cache
from casino_app.games import bets, seeds
from casino_app.games.config import E4
from casino_app.games.models import Bet
from casino_app.payments import ledger
from casino_app.payments.models import JournalEntry, LedgerAccount, Posting
from casino_app.security.ratelimit import reset_limiter
from tests.support.services import PgCluster

pytestmark = pytest.mark.postgres

# Limbo at 1,000,000x: a win has odds of about one in a million, so stakes dominate (the
# accounting below still holds if one wins). Real money, so the exposure cap applies: the
# bankroll is large enough that it never refuses.
GAME, PARAMS, CUR, STAKE = "limbo", {"target": 1_000_000}, "BTC", 100
BETS = 200
INITIAL = 10_050          # covers about 100 bets
RESERVE = 2_500           # a withdrawal request, taken together with the bets


@pytest.fixture
def race_env(pg_env: PgCluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[PgCluster]:
    monkeypatch.setenv("CASINO_RATE_BETS_PLAYER", "100000/second")
    reset_settings_cache()
    reset_limiter()
    with ledger_tx() as s:
        ledger.transfer(s, "capital-1", "capital", ledger.house_account(s, CUR, "custody"),
                        ledger.house_account(s, CUR, "bankroll"), 10**13)
    bets.reset_bankroll_cache()
    yield pg_env


def _credit(player: str, amount: int) -> tuple[int, int]:
    """The test-only credit path (custody -> player); returns (player, custody) ids."""
    with ledger_tx() as s:
        p = ledger.player_account(s, player, CUR)
        custody = ledger.house_account(s, CUR, "custody")
        ledger.transfer(s, f"credit:{player}", "deposit", custody, p, amount)
    return p, custody


def _together(jobs: list[Callable[[], Any]]) -> list[Any]:
    """Run every job in its own thread, all released at once; results or exceptions."""
    barrier = threading.Barrier(len(jobs))
    out: list[Any] = [None] * len(jobs)

    def run(i: int) -> None:
        barrier.wait()
        try:
            out[i] = jobs[i]()
        except Exception as exc:  # noqa: BLE001 - collected and checked by the test
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    return out


def _violations() -> dict[str, list[str]]:
    with ledger_tx(readonly=True) as s:
        return {f.check: f.examples for f in ledger.check_invariants(s) if f.violations}


def test_bets_and_a_withdrawal_racing_for_one_balance_never_overdraw(
        race_env: PgCluster) -> None:
    player = "race-player"
    account, custody = _credit(player, INITIAL)
    keys = [f"race-{i:04d}" for i in range(BETS)]

    def reserve() -> ledger.PendingResult:
        with ledger_tx() as s:
            return ledger.reserve(s, "wd-race", "withdrawal", account, custody, RESERVE)

    def bet(key: str) -> Callable[[], bets.BetResult]:
        return lambda: bets.place_bet(player, GAME, CUR, STAKE, PARAMS, key)

    results = _together([reserve, *[bet(k) for k in keys]])
    reservation, answers = results[0], results[1:]
    placed = [r for r in answers if isinstance(r, bets.BetResult)]
    refused = [(k, r) for k, r in zip(keys, answers, strict=True)
               if not isinstance(r, bets.BetResult)]
    # every refusal is the honest one: the money was not there
    assert all(isinstance(r, bets.InsufficientBalance) for _, r in refused), refused[:3]
    won_any = any(r.payout for r in placed)  # about one run in 5,000 has a win
    assert placed and (refused or won_any), "the balance must cover some bets and not all"
    reserved = RESERVE if isinstance(reservation, ledger.PendingResult) else 0
    if not reserved:
        assert isinstance(reservation, ledger.InsufficientFunds), reservation

    # the bets form one chain, each covered by the balance it found
    chain = sorted(placed, key=lambda r: r.nonce)
    assert [r.nonce for r in chain] == list(range(len(chain)))
    assert chain[0].balance_before == INITIAL
    for prev, cur in zip(chain, chain[1:], strict=False):
        assert cur.balance_before == prev.balance_after
    for r in chain:
        assert r.balance_before >= r.stake
        assert r.balance_after == r.balance_before - r.stake + r.payout
        assert r.payout == r.stake * r.mult_e4 // E4
    won = sum(r.payout - r.stake for r in chain)

    with ledger_tx(readonly=True) as s:
        bal = ledger.player_balances(s, player)[CUR]
        posted = s.scalar(select(func.coalesce(func.sum(Posting.amount), 0))
                          .where(Posting.account_id == account))
        bet_rows = s.execute(select(Bet.bet_key, Bet.id).where(Bet.player_id == player)).all()
        entry_keys = set(s.scalars(select(JournalEntry.key).where(
            JournalEntry.key.like(f"bet:{player}:%"))))
    # the final state is exactly the accepted operations
    assert bal.balance == INITIAL + won == chain[-1].balance_after == posted
    assert bal.reserved == reserved
    assert bal.available >= 0
    if refused and not won_any:
        assert bal.available < STAKE  # nothing was refused that the balance could cover
    # refused bets left no trace; accepted ones are recorded once
    assert sorted(k for k, _ in bet_rows) == sorted(r.bet_key for r in placed)
    assert {i for _, i in bet_rows} == {r.bet_id for r in placed}
    assert entry_keys == {f"bet:{player}:{r.bet_key}" for r in placed}
    assert seeds.current(player).nonce == len(placed)
    assert _violations() == {}


def test_the_same_bet_sent_ten_times_at_once_is_placed_once(race_env: PgCluster) -> None:
    player = "resend-player"
    _credit(player, 10_000)
    seeds.ensure(player)

    answers = _together([lambda: bets.place_bet(player, "dice", CUR, 1_000,
                                                {"target": 50, "direction": "under"},
                                                "resent-key-1")] * 10)
    assert all(isinstance(r, bets.BetResult) for r in answers), answers
    first = [r for r in answers if not r.replayed]
    assert len(first) == 1
    for r in answers:
        assert (r.bet_id, r.nonce, r.payout, r.outcome, r.balance_after) == (
            first[0].bet_id, 0, first[0].payout, first[0].outcome, first[0].balance_after)
    with ledger_tx(readonly=True) as s:
        assert s.scalar(select(func.count()).select_from(Bet)
                        .where(Bet.player_id == player)) == 1
        assert s.scalar(select(func.count()).select_from(JournalEntry)
                        .where(JournalEntry.key.like(f"bet:{player}:%"))) == 1
        assert ledger.player_balances(s, player)[CUR].balance == (
            10_000 - 1_000 + first[0].payout)
    assert seeds.current(player).nonce == 1
    assert _violations() == {}


def test_no_bet_key_or_entry_key_is_stored_twice(race_env: PgCluster) -> None:
    """Many players racing through the bet path at once: every key once, books balanced."""
    players = [f"many-{i}" for i in range(8)]
    for p in players:
        _credit(p, 1_000)
    jobs = [lambda p=p, i=i: bets.place_bet(p, GAME, CUR, STAKE, PARAMS, f"key-{i % 12:04d}")
            for p in players for i in range(15)]  # keys 0..2 sent twice per player
    answers = _together(jobs)
    assert all(isinstance(r, bets.BetResult | bets.InsufficientBalance) for r in answers), [
        repr(r) for r in answers if not isinstance(r, bets.BetResult | bets.InsufficientBalance)][:3]
    with ledger_tx(readonly=True) as s:
        dup_bets = s.execute(select(Bet.player_id, Bet.bet_key).group_by(
            Bet.player_id, Bet.bet_key).having(func.count() > 1)).all()
        dup_entries = s.execute(select(JournalEntry.key).group_by(JournalEntry.key)
                                .having(func.count() > 1)).all()
        n_bets = s.scalar(select(func.count()).select_from(Bet))
        balances = s.execute(select(LedgerAccount.owner, LedgerAccount.balance).where(
            LedgerAccount.owner.in_(players))).all()
    assert dup_bets == [] and dup_entries == []
    if not any(isinstance(r, bets.BetResult) and r.payout for r in answers):  # no rare win
        assert n_bets == 10 * len(players)  # 1,000 covers 10 bets of 100
        assert all(b == 0 for _, b in balances)
    assert _violations() == {}


def test_many_mines_reveals_at_once_do_not_exhaust_the_connection_pool(
        race_env: PgCluster) -> None:
    """A reveal checks the exposure cap inside its transaction: reading the bankroll
    there, not through a second pooled connection, so 40 at once cannot starve the pool."""
    players = [f"miner-{i}" for i in range(40)]
    rounds = {}
    for p in players:
        _credit(p, 10_000)
        rounds[p] = bets.place_bet(p, "mines", CUR, 1_000, {"mines": 1}, f"round-{p}")
        with ledger_tx(readonly=True) as s:  # white-box: pick a safe tile
            mines = json.loads(s.get(Bet, rounds[p].bet_id).outcome)
        rounds[p] = (rounds[p].bet_id, next(t for t in range(25) if t not in mines))
    bets.reset_bankroll_cache()  # every reveal must read the bankroll
    answers = _together([lambda p=p: bets.reveal_tile(p, *rounds[p]) for p in players])
    assert all(isinstance(r, bets.BetResult) and r.state == "open" for r in answers), [
        repr(r) for r in answers if not isinstance(r, bets.BetResult)][:3]
    assert _violations() == {}
