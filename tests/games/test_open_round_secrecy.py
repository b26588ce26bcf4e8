"""No server seed is revealed while a bet drawn from it is unsettled (issue 10).

The penetration test's attack: start a Mines round with 24 mines, rotate the seeds (or
save a new client seed, which rotates), read the round's recall for the server seed,
compute the mines and reveal the one safe tile: every round won. Rotation is now refused
while a round of the active pair is open; every reader withholds a seed whose pair has an
open bet; a round left open on a revealed pair (data from before the rule) is voided with
its stake returned instead of being played on; a player on hold cannot play a round on.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import select, update

from casino_app.core.clock import utcnow
from casino_app.core.db import ledger_tx
from casino_app.core.settings import reset_settings_cache
from casino_app.games import bets, history, seeds
from casino_app.games.config import E4
from casino_app.games.house import verify
from casino_app.games.models import Bet, SeedPair
from casino_app.payments import ledger
from casino_app.security.ratelimit import reset_limiter

MINES_24 = {"mines": 24}


@pytest.fixture
def player(any_env: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("CASINO_RATE_BETS_PLAYER", "100000/second")
    reset_settings_cache()
    reset_limiter()
    yield "p-" + uuid.uuid4().hex[:12]


def _fund(player_id: str, amount: int) -> None:
    with ledger_tx() as s:
        ledger.transfer(s, f"test-credit:{uuid.uuid4().hex}", "deposit",
                        ledger.house_account(s, "FUN", "faucet"),
                        ledger.player_account(s, player_id, "FUN"), amount)


def _balance(player_id: str) -> int:
    with ledger_tx(readonly=True) as s:
        return ledger.player_balances(s, player_id)["FUN"].balance


def _key() -> str:
    return "k" + uuid.uuid4().hex[:15]


def _violations() -> dict[str, int]:
    with ledger_tx(readonly=True) as s:
        return {f.check: f.violations for f in ledger.check_invariants(s) if f.violations}


def _mines_of(bet_id: int) -> list[int]:
    with ledger_tx(readonly=True) as s:
        import json

        return json.loads(s.get(Bet, bet_id).outcome)


def _sealed_seed(pair_id: int, player_id: str) -> str:
    """The server seed of a pair, read by the test the way only the bet path may."""
    with ledger_tx(readonly=True) as s:
        p = s.get(SeedPair, pair_id)
        return seeds._open(player_id, p.server_seed_hash, bytes(p.server_seed_sealed))


def _pair_of(bet_id: int) -> int:
    with ledger_tx(readonly=True) as s:
        return s.get(Bet, bet_id).seed_pair_id


def _everything_shown(player_id: str, bet_id: int) -> str:
    """What every reader of bets and seeds hands out for the player, as one text
    (``bets.open_mines`` aside: it voids a round left on a revealed pair)."""
    shown: list[object] = [seeds.current(player_id), seeds.revealed(player_id),
                           history.bet(player_id, bet_id), history.bets_page(player_id)]
    return repr(shown)


def test_the_rotation_attack_is_refused_while_a_mines_round_is_open(player: str) -> None:
    """Issue 10's reproduction: rotate (or change the client seed) during a 24-mine
    round, then read the recall. Both changes are refused with a clear message, nothing
    anywhere shows the seed, and the round plays on normally."""
    _fund(player, 100_000)
    start = bets.place_bet(player, "mines", "FUN", 1_000, MINES_24, _key())
    secret = _sealed_seed(_pair_of(start.bet_id), player)
    before = seeds.current(player)
    assert before.in_use
    for attempt in (lambda: seeds.rotate(player), lambda: seeds.rotate(player, "mine-now")):
        with pytest.raises(seeds.SeedsInUse, match="Finish your open Mines round"):
            attempt()
    after = seeds.current(player)
    assert (after.server_seed_hash, after.client_seed, after.nonce,
            after.next_server_seed_hash) == (before.server_seed_hash, before.client_seed,
                                             before.nonce, before.next_server_seed_hash)
    assert seeds.revealed(player) == []
    assert secret not in _everything_shown(player, start.bet_id)
    assert secret not in repr(bets.open_mines(player))
    assert history.bet(player, start.bet_id).server_seed is None
    assert _balance(player) == 99_000

    # the round goes on as any other: one tile, then the seeds can change and verify it
    end = bets.reveal_tile(player, start.bet_id, 0)
    assert end.state in ("won", "lost")
    assert not seeds.current(player).in_use
    pair = seeds.rotate(player, "after-the-round")
    assert pair.server_seed == secret
    assert verify("mines", secret, end.client_seed, end.nonce, mines=24)["outcome"] \
        == end.outcome
    assert history.bet(player, start.bet_id).server_seed == secret
    assert _violations() == {}


@pytest.mark.postgres
def test_a_round_started_during_a_rotation_never_has_its_seed_revealed(
        pg_env, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """Rotation and the start of a round race on PostgreSQL: whichever wins, no open
    round ever sits on a revealed pair."""
    monkeypatch.setenv("CASINO_RATE_BETS_PLAYER", "100000/second")
    reset_settings_cache()
    reset_limiter()
    player = "p-" + uuid.uuid4().hex[:12]
    _fund(player, 10_000_000)
    refused = started = 0

    def start(barrier: threading.Barrier, out: dict[str, object]) -> None:
        barrier.wait()
        out["bet"] = bets.place_bet(player, "mines", "FUN", 100, MINES_24, _key())

    def rotate(barrier: threading.Barrier, out: dict[str, object]) -> None:
        barrier.wait()
        try:
            out["pair"] = seeds.rotate(player)
        except seeds.SeedsInUse:
            out["pair"] = None

    for _ in range(25):
        barrier = threading.Barrier(2)
        out: dict[str, object] = {}
        threads = [threading.Thread(target=f, args=(barrier, out)) for f in (start, rotate)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        b = out["bet"]
        assert isinstance(b, bets.BetResult) and b.state == "open"
        started += 1
        refused += out["pair"] is None
        with ledger_tx(readonly=True) as s:
            state = s.execute(select(SeedPair.state).join(Bet, Bet.seed_pair_id == SeedPair.id)
                              .where(Bet.id == b.bet_id)).scalar_one()
        assert state == "active"
        assert history.bet(player, b.bet_id).server_seed is None
        bets.reveal_tile(player, b.bet_id, 0)  # ends the round (24 mines, one tile)
    assert started == 25
    assert _violations() == {}


@pytest.mark.postgres
def test_a_first_bet_racing_the_first_rotation_is_never_refused(
        pg_env, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """A new player's first bet and first rotation at once (two tabs): both make the
    player's seed pairs, and the rotation can take the pair the bet's draw waited for.
    The bet draws from the next pair instead of refusing ("seeds being set up")."""
    monkeypatch.setenv("CASINO_RATE_BETS_PLAYER", "100000/second")
    reset_settings_cache()
    reset_limiter()
    for _ in range(15):
        player = "p-" + uuid.uuid4().hex[:12]  # no seed pairs yet
        _fund(player, 1_000_000)
        barrier = threading.Barrier(2)
        out: dict[str, object] = {}

        def bet(player: str = player, barrier: threading.Barrier = barrier,
                out: dict[str, object] = out) -> None:
            barrier.wait()
            try:
                out["bet"] = bets.place_bet(player, "dice", "FUN", 100,
                                            {"target": 50, "direction": "over"}, _key())
            except bets.BetRefused as exc:
                out["bet"] = exc

        def rotate(player: str = player, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            seeds.rotate(player)

        threads = [threading.Thread(target=bet), threading.Thread(target=rotate)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert isinstance(out["bet"], bets.BetResult), out["bet"]
    assert _violations() == {}


def _reveal_behind_the_rules(pair_id: int, player_id: str) -> str:
    """What an operator's manual fix or data from before the rule could leave: the pair of
    an open round rotated out, its seed stored as revealed."""
    secret = _sealed_seed(pair_id, player_id)
    with ledger_tx() as s:
        s.execute(update(SeedPair).where(SeedPair.id == pair_id).values(
            state="revealed", revealed_seed=secret, revealed_at=utcnow()))
    seeds.ensure(player_id)
    return secret


@pytest.mark.parametrize("step", ["reveal", "cash_out", "open_mines"])
def test_a_round_left_open_on_a_revealed_pair_is_voided_and_its_stake_returned(
        player: str, step: str) -> None:
    _fund(player, 10_000)
    start = bets.place_bet(player, "mines", "FUN", 1_000, {"mines": 3}, _key())
    safe = next(t for t in range(25) if t not in _mines_of(start.bet_id))
    bets.reveal_tile(player, start.bet_id, safe)
    secret = _reveal_behind_the_rules(_pair_of(start.bet_id), player)
    # withheld while the round is open, whatever reads it
    assert secret not in _everything_shown(player, start.bet_id)
    assert history.bet(player, start.bet_id).server_seed is None
    shown = seeds.revealed(player)
    assert [(r.withheld, r.server_seed) for r in shown] == [(True, "")]

    if step == "reveal":
        r = bets.reveal_tile(player, start.bet_id, next(
            t for t in range(25) if t not in _mines_of(start.bet_id) and t != safe))
    elif step == "cash_out":
        r = bets.cash_out(player, start.bet_id)
    else:
        r = bets.open_mines(player)
    assert r is not None
    assert (r.state, r.payout, r.mult_e4) == ("void", 1_000, E4)
    assert r.revealed == [safe]  # the tile asked for was not opened
    assert _balance(player) == 10_000 == r.balance_after
    assert bets.open_mines(player) is None
    # ended: every later step answers with the void round and moves nothing
    assert bets.cash_out(player, start.bet_id).state == "void"
    assert bets.reveal_tile(player, start.bet_id, safe).state == "void"
    assert _balance(player) == 10_000
    assert history.bet(player, start.bet_id).server_seed == secret
    assert [r.withheld for r in seeds.revealed(player)] == [False]
    stats = history.stats(player)
    assert stats == []  # a void round counts as no bet
    assert _violations() == {}
    # and the player can play again
    again = bets.place_bet(player, "mines", "FUN", 1_000, {"mines": 3}, _key())
    assert again.state == "open"


def test_a_player_on_hold_can_neither_reveal_nor_cash_out_until_released(
        player: str) -> None:
    from casino_app.payments.hold_models import PlayerHold

    _fund(player, 10_000)
    start = bets.place_bet(player, "mines", "FUN", 1_000, {"mines": 3}, _key())
    mines = _mines_of(start.bet_id)
    safe = [t for t in range(25) if t not in mines]
    bets.reveal_tile(player, start.bet_id, safe[0])
    with ledger_tx() as s:
        hold = PlayerHold(player_id=player, reason="deposit_reversed", detail="test",
                          created_at=utcnow())
        s.add(hold)
        s.flush()
        hold_id = hold.id
    with pytest.raises(bets.OnHold, match="under review"):
        bets.reveal_tile(player, start.bet_id, safe[1])
    with pytest.raises(bets.OnHold, match="under review"):
        bets.cash_out(player, start.bet_id)
    r = bets.open_mines(player)
    assert r is not None and (r.state, r.revealed) == ("open", [safe[0]])
    assert _balance(player) == 9_000
    with ledger_tx() as s:
        s.execute(update(PlayerHold).where(PlayerHold.id == hold_id)
                  .values(released_at=utcnow(), released_by=1))
    done = bets.cash_out(player, start.bet_id)
    assert done.state == "won" and _balance(player) == 9_000 + done.payout
    assert _violations() == {}
