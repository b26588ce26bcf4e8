"""The ledger and the bet path against a simple in-memory model (TRUST.md), on SQLite and
on Postgres.

A hypothesis ``RuleBasedStateMachine`` drives deposits, bets with every game (new, replayed
and conflicting bet keys, refusals of every kind), Mines rounds, pending withdrawals
(reserve, post, void, each repeated), direct withdrawals, replayed entry keys and seed
rotations. After every step the model's balances must equal the ledger's,
``check_invariants`` must find nothing and no available balance may be negative.

All examples of a run share one database: each example uses its own player ids and keys
and compares only the accounts it touched; the shared house accounts are compared by
their change since the example began.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select

from casino_app.core.db import ledger_tx
from casino_app.core.settings import get_settings, reset_settings_cache
from casino_app.games import bets, history, seeds
from casino_app.games.config import E4
from casino_app.games.house import GAMES, mines_multiplier_e4
from casino_app.payments import ledger
from casino_app.payments.currencies import currency
from casino_app.payments.models import LedgerAccount
from casino_app.security.ratelimit import reset_limiter

CURRENCIES = ("FUN", "BTC")
# where the test-only credit path takes money from: play money from the faucet, real
# money from the custody mirror (as a confirmed deposit would)
SOURCE = {"FUN": "faucet", "BTC": "custody"}
PLAYERS = 2
AMOUNTS = (1, 99, 1_000, 25_000, 400_000)
# withdrawals and reservations take a share of the available balance (percent; 101: all
# of it and one unit more), so overdrafts and "balance covers it, available does not"
# both come up often
SHARES = (1, 50, 100, 101)
FUNDING = (1_000, 100_000, 10_000_000)
STAKES = (100, 250, 1_000, 5_000, 20_000)   # within the limits of FUN and BTC
BANKROLL = (10_000, 1_000_000, 100_000_000)
BETS: list[tuple[str, Any, bool]] = [  # game, params, valid (the refused ones last)
    ("dice", {"target": 50, "direction": "over"}, True),
    ("dice", {"target": 2, "direction": "over"}, True),
    ("limbo", {"target": 2}, True),
    ("limbo", {"target": "1000"}, True),
    ("plinko", {"rows": 8, "risk": "low"}, True),
    ("plinko", {"rows": 16, "risk": "high"}, True),
    ("keno", {"picks": [1, 2, 3, 4, 5], "risk": "classic"}, True),
    ("mines", {"mines": 1}, True),
    ("mines", {"mines": 3}, True),
    ("mines", {"mines": 24}, True),
    ("dice", {"target": 99.5, "direction": "under"}, False),  # 99.5% chance: too high
    ("limbo", {"target": 1}, False),
    ("mines", {"mines": 0}, False),
    ("blackjack", {}, False),
]
VALID = sum(valid for _, _, valid in BETS)
MINES = [i for i, (game, _, valid) in enumerate(BETS) if game == "mines" and valid]
TILES = st.integers(0, 24)
# Choices among earlier keys, rounds and bets are drawn as a plain number: the outcomes
# of bets are random (fresh server seeds), so what exists differs between runs of the
# same example, and hypothesis needs every run to draw the same kinds of values.
PICK = st.integers(0, 2**16)


def _pick(items: list, n: int) -> Any:  # noqa: ANN401
    return items[n % len(items)]


def _credit(player: str, cur: str, key: str, amount: int) -> ledger.EntryResult:
    """The test-only credit path: a transfer from the house source account to the
    player (standing in for a confirmed deposit; FUN has no deposits, only the faucet)."""
    with ledger_tx() as s:
        return ledger.transfer(s, key, "deposit", ledger.house_account(s, cur, SOURCE[cur]),
                               ledger.player_account(s, player, cur), amount)


@dataclass
class Placed:
    player: str
    key: str
    game: str
    cur: str
    stake: int
    params_id: int
    result: bets.BetResult


@dataclass
class Round:
    """An open Mines round as the model sees it (the mines stay unknown)."""

    bet_id: int
    key: str
    cur: str
    stake: int
    mines: int
    revealed: list[int] = field(default_factory=list)


@dataclass
class Pending:
    player: str
    cur: str
    amount: int
    state: str


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tag = uuid.uuid4().hex[:10]
        self.players = [f"m-{self.tag}-{i}" for i in range(PLAYERS)]
        self.seq = 0
        self.bal: dict[tuple[str, str], list[int]] = {
            (p, c): [0, 0] for p in self.players for c in CURRENCIES}  # balance, reserved
        self.base = self._house_now()
        self.house = dict.fromkeys(self.base, 0)       # expected change since the start
        self.deposits: dict[str, tuple[str, str, int, int]] = {}  # key: player, cur, amt, id
        self.bet_keys: list[str] = []
        self.placed: dict[tuple[str, str], Placed] = {}
        self.nonce = dict.fromkeys(self.players, 0)
        self.pair_bets: dict[str, list[int]] = {p: [] for p in self.players}
        self.open: dict[str, Round] = {}
        self.finished: list[tuple[str, bets.BetResult]] = []
        self.pending: dict[str, Pending] = {}
        self.pending_keys: list[str] = []

    # --- helpers ---

    def _key(self, prefix: str) -> str:
        self.seq += 1
        return f"{prefix}{self.seq:04d}{self.tag}"

    def _house_now(self) -> dict[tuple[str, str], int]:
        with ledger_tx(readonly=True) as s:
            return {(c, k): ledger.house_total(s, c, k)
                    for c in CURRENCIES for k in (SOURCE[c], "bankroll")}

    def _move(self, player: str, cur: str, amount: int, house_kind: str) -> None:
        """``amount`` from the house account ``house_kind`` to the player (negative: back)."""
        self.bal[player, cur][0] += amount
        self.house[cur, house_kind] -= amount

    def _available(self, player: str, cur: str) -> int:
        balance, reserved = self.bal[player, cur]
        return balance - reserved

    def _cap(self, cur: str) -> int | None:
        if not currency(cur).real_money:
            return None
        bankroll = self.base[cur, "bankroll"] + self.house[cur, "bankroll"]
        return max(0, bankroll) * get_settings().exposure_cap_bps // E4

    def _over_cap(self, cur: str, stake: int, mult_e4: int) -> bool:
        cap = self._cap(cur)
        return cap is not None and stake * mult_e4 // E4 - stake > cap

    def _finish(self, player: str, r: bets.BetResult) -> None:
        """A Mines round ended: the revealed safe tiles were not mines."""
        rnd = self.open.pop(player)
        assert r.state in ("won", "lost") and r.outcome is not None
        safe = r.revealed[:-1] if r.state == "lost" else r.revealed
        assert not set(safe) & set(r.outcome) and len(r.outcome) == rnd.mines
        if r.state == "lost":
            assert r.revealed[-1] in r.outcome and r.payout == 0
        self.finished.append((player, r))

    # --- money in and out ---

    @initialize(fun=st.sampled_from(FUNDING), btc=st.sampled_from(FUNDING),
                bankroll=st.sampled_from(BANKROLL))
    def start_with_money(self, fun: int, btc: int, bankroll: int) -> None:
        for p in range(PLAYERS):
            self.deposit(p, "FUN", fun)
            self.deposit(p, "BTC", btc)
        self.fund_bankroll(bankroll)

    @rule(p=st.integers(0, PLAYERS - 1), cur=st.sampled_from(CURRENCIES),
          amount=st.sampled_from(AMOUNTS))
    def deposit(self, p: int, cur: str, amount: int) -> None:
        player, key = self.players[p], self._key("dep:")
        r = _credit(player, cur, key, amount)
        assert not r.replayed and r.balances[ledger_id(player, cur)] == (
            self.bal[player, cur][0] + amount)
        self._move(player, cur, amount, SOURCE[cur])
        self.deposits[key] = (player, cur, amount, r.entry_id)

    @rule(pick=PICK, same=st.booleans())
    def deposit_again(self, pick: int, same: bool) -> None:
        """A duplicate delivery: the same key moves nothing; other movements are refused."""
        key = _pick(list(self.deposits), pick)  # start_with_money made some
        player, cur, amount, entry_id = self.deposits[key]
        if same:
            r = _credit(player, cur, key, amount)
            assert r.replayed and r.entry_id == entry_id
        else:
            with pytest.raises(ledger.IdempotencyConflict):
                _credit(player, cur, key, amount + 1)

    def _share(self, player: str, cur: str, share: int) -> int:
        available = self._available(player, cur)
        return available + 1 if share > 100 else max(1, available * share // 100)

    @rule(p=st.integers(0, PLAYERS - 1), cur=st.sampled_from(CURRENCIES),
          share=st.sampled_from(SHARES))
    def withdraw_now(self, p: int, cur: str, share: int) -> None:
        player = self.players[p]
        amount = self._share(player, cur, share)

        def go() -> None:
            with ledger_tx() as s:
                ledger.transfer(s, self._key("wd:"), "withdrawal",
                                ledger.player_account(s, player, cur),
                                ledger.house_account(s, cur, SOURCE[cur]), amount)

        if self._available(player, cur) < amount:
            with pytest.raises(ledger.InsufficientFunds):
                go()
        else:
            go()
            self._move(player, cur, -amount, SOURCE[cur])

    @rule(amount=st.sampled_from(BANKROLL))
    def fund_bankroll(self, amount: int) -> None:
        with ledger_tx() as s:
            ledger.transfer(s, self._key("bank:"), "capital",
                            ledger.house_account(s, "BTC", "custody"),
                            ledger.house_account(s, "BTC", "bankroll"), amount)
        self.house["BTC", "custody"] -= amount
        self.house["BTC", "bankroll"] += amount

    # --- two-phase withdrawals ---

    def _reserve(self, key: str, player: str, cur: str, amount: int) -> ledger.PendingResult:
        with ledger_tx() as s:
            return ledger.reserve(s, key, "withdrawal", ledger.player_account(s, player, cur),
                                  ledger.house_account(s, cur, SOURCE[cur]), amount)

    @rule(pick=PICK, p=st.integers(0, PLAYERS - 1), cur=st.sampled_from(CURRENCIES),
          share=st.sampled_from(SHARES),
          key_choice=st.sampled_from(("new", "new", "replay", "any")))
    def reserve(self, pick: int, p: int, cur: str, share: int, key_choice: str) -> None:
        player = self.players[p]
        amount = self._share(player, cur, share)
        if key_choice == "replay" and self.pending:  # the same reservation again
            key = _pick(list(self.pending), pick)
            player, cur, amount = (self.pending[key].player, self.pending[key].cur,
                                   self.pending[key].amount)
        elif key_choice == "any" and self.pending_keys:  # a key seen, other fields
            key = _pick(self.pending_keys, pick)
        else:
            key = self._key("res:")
            self.pending_keys.append(key)
        known = self.pending.get(key)
        event(f"reserve: {key_choice}")
        if known is not None:
            if (known.player, known.cur, known.amount) == (player, cur, amount):
                r = self._reserve(key, player, cur, amount)
                assert r.replayed and r.state == known.state
            else:
                with pytest.raises(ledger.IdempotencyConflict):
                    self._reserve(key, player, cur, amount)
        elif self._available(player, cur) < amount:
            with pytest.raises(ledger.InsufficientFunds):
                self._reserve(key, player, cur, amount)
        else:
            r = self._reserve(key, player, cur, amount)
            assert (r.state, r.amount, r.replayed) == ("pending", amount, False)
            self.pending[key] = Pending(player, cur, amount, "pending")
            self.bal[player, cur][1] += amount

    @rule(pick=PICK, post=st.booleans(), unknown=st.integers(0, 9))
    def resolve(self, pick: int, post: bool, unknown: int) -> None:
        """Post or void a reservation; twice, unknown and the other way round too."""
        if not unknown or not self.pending_keys:
            key = self._key("nope:")
        else:
            key = _pick(self.pending_keys, pick)
        to = "posted" if post else "voided"

        def go() -> ledger.PendingResult:
            with ledger_tx() as s:
                return (ledger.post_pending if post else ledger.void_pending)(s, key)

        p = self.pending.get(key)
        event(f"resolve: {'unknown' if p is None else p.state} -> {to}")
        if p is None:
            with pytest.raises(ledger.UnknownTransfer):
                go()
        elif p.state == "pending":
            r = go()
            assert (r.state, r.replayed, r.amount) == (to, False, p.amount)
            assert (r.entry_id is not None) == post
            p.state = to
            self.bal[p.player, p.cur][1] -= p.amount
            if post:
                self._move(p.player, p.cur, -p.amount, SOURCE[p.cur])
        elif p.state == to:
            r = go()
            assert r.replayed and r.state == to
        else:
            with pytest.raises(ledger.TransferNotPending):
                go()

    # --- bets ---

    @rule(pick=PICK, p=st.integers(0, PLAYERS - 1), cur=st.sampled_from(CURRENCIES),
          which=st.integers(0, len(BETS) - 1), stake=st.sampled_from(STAKES),
          bad=st.integers(0, 2))
    def bad_bet(self, pick: int, p: int, cur: str, which: int, stake: int,
                bad: int) -> None:
        """Bets with bad params or a stake out of limits (new or used keys): refused."""
        if BETS[which][2]:
            c = currency(cur)
            stake = (0, c.min_bet - 1, c.max_bet + 1)[bad]
        self.bet(pick, p, cur, which, stake, "any")

    @rule(pick=PICK, p=st.integers(0, PLAYERS - 1), cur=st.sampled_from(CURRENCIES),
          which=st.integers(0, VALID - 1), stake=st.sampled_from(STAKES),
          key_choice=st.sampled_from(("new", "new", "new", "replay", "tweak", "any")))
    def bet(self, pick: int, p: int, cur: str, which: int, stake: int,
            key_choice: str) -> None:
        player = self.players[p]
        mine = [pl for (owner, _), pl in self.placed.items() if owner == player]
        if key_choice == "replay" and mine:  # the very same bet again
            pl = _pick(mine, pick)
            key, cur, which, stake = pl.key, pl.cur, pl.params_id, pl.stake
        elif key_choice == "tweak" and mine:  # the same bet with one field changed
            pl = _pick(mine, pick)
            key, cur, which, stake = pl.key, pl.cur, pl.params_id, pl.stake
            field = pick % 3
            if field == 0:  # other params of the same game, if it has more
                which = next((i for i in range(VALID) if i != which
                              and BETS[i][0] == pl.game), which)
            if field == 1 or which == pl.params_id and field == 0:
                stake = STAKES[(STAKES.index(stake) + 1) % len(STAKES)]
            if field == 2:
                cur = CURRENCIES[(CURRENCIES.index(cur) + 1) % len(CURRENCIES)]
        elif key_choice == "any" and self.bet_keys:  # any key seen, with these fields
            key = _pick(self.bet_keys, pick)
        else:
            key = self._key("b")
            self.bet_keys.append(key)
        game, params, valid = BETS[which]
        c = currency(cur)
        bets.reset_bankroll_cache()  # the cap reads the bankroll as the model knows it

        def go() -> bets.BetResult:
            return bets.place_bet(player, game, cur, stake, params, key)

        if not valid or not c.min_bet <= stake <= c.max_bet:
            event("bet: invalid")
            with pytest.raises(bets.InvalidBet):
                go()
            return
        known = self.placed.get((player, key))
        if known is not None:
            if (known.game, known.cur, known.stake, known.params_id) == (
                    game, cur, stake, which):
                event("bet: replayed")
                r = go()
                k = known.result
                assert r.replayed and (r.bet_id, r.nonce, r.stake) == (
                    k.bet_id, k.nonce, k.stake)
                if game != "mines":  # a Mines round answers with its current state
                    assert (r.payout, r.outcome, r.balance_after) == (
                        k.payout, k.outcome, k.balance_after)
            else:
                event("bet: key reused for another bet")
                with pytest.raises(bets.InvalidBet, match="already used"):
                    go()
            return
        parsed = GAMES[game].parse_params(params)
        mult = (mines_multiplier_e4(parsed.mines, 1) if game == "mines"
                else GAMES[game].max_multiplier_e4(parsed))
        if self._over_cap(cur, stake, mult):
            event("bet: over the exposure cap")
            with pytest.raises(bets.OverExposure):
                go()
            return
        if self._available(player, cur) < stake:
            event("bet: insufficient balance")
            with pytest.raises(bets.InsufficientBalance):
                go()
            return
        if game == "mines" and player in self.open:
            event("bet: second Mines round")
            with pytest.raises(bets.InvalidBet, match="open Mines round"):
                go()
            return
        before = self.bal[player, cur][0]
        r = go()
        event(f"bet: placed ({'won' if r.payout > r.stake else 'lost'})")
        assert not r.replayed and (r.game, r.currency, r.stake) == (game, cur, stake)
        assert r.nonce == self.nonce[player]
        assert r.payout == stake * r.mult_e4 // E4
        if game == "mines":
            assert (r.state, r.payout, r.outcome) == ("open", 0, None)
            self.open[player] = Round(r.bet_id, key, cur, stake, parsed.mines)
        else:
            assert r.mult_e4 == GAMES[game].multiplier_e4(parsed, r.outcome)
            assert r.state == ("won" if r.payout else "lost")
        assert (r.balance_before, r.balance_after) == (before, before - stake + r.payout)
        self._move(player, cur, r.payout - stake, "bankroll")
        self.nonce[player] += 1
        self.pair_bets[player].append(r.bet_id)
        self.placed[player, key] = Placed(player, key, game, cur, stake, which, r)

    @rule(p=st.integers(0, PLAYERS - 1), cur=st.sampled_from(CURRENCIES),
          mines=st.sampled_from(MINES), stake=st.sampled_from(STAKES),
          tiles=st.lists(TILES, max_size=4), cash=st.booleans())
    def mines_round(self, p: int, cur: str, mines: int, stake: int, tiles: list[int],
                    cash: bool) -> None:
        """A Mines round in one step: start, reveal a few tiles, maybe cash out. (The
        other rules interleave single reveals and cash-outs with everything else.)"""
        player = self.players[p]
        self.bet(0, p, cur, mines, stake, "new")
        for tile in tiles:
            if player in self.open:
                self._reveal(player, tile)
        if cash and player in self.open:
            self._cash_out(player)

    @rule(p=st.integers(0, PLAYERS - 1), tile=TILES)
    def reveal(self, p: int, tile: int) -> None:
        if self.open:
            self._reveal(_pick(sorted(self.open), p), tile)

    @rule(p=st.integers(0, PLAYERS - 1))
    def cash_out(self, p: int) -> None:
        if self.open:
            self._cash_out(_pick(sorted(self.open), p))

    def _reveal(self, player: str, tile: int) -> None:
        rnd = self.open[player]
        bets.reset_bankroll_cache()
        if tile in rnd.revealed:
            r = bets.reveal_tile(player, rnd.bet_id, tile)
            assert (r.state, r.revealed) == ("open", rnd.revealed)
            return
        if self._over_cap(rnd.cur, rnd.stake,
                          mines_multiplier_e4(rnd.mines, len(rnd.revealed) + 1)):
            with pytest.raises(bets.OverExposure):
                bets.reveal_tile(player, rnd.bet_id, tile)
            return
        r = bets.reveal_tile(player, rnd.bet_id, tile)
        assert r.revealed == [*rnd.revealed, tile]
        if r.state == "open":
            rnd.revealed.append(tile)
            assert r.next_mult_e4 == mines_multiplier_e4(rnd.mines, len(rnd.revealed))
            return
        if r.state == "won":  # the last safe tile pays at once
            assert len(r.revealed) == 25 - rnd.mines
            assert r.payout == rnd.stake * mines_multiplier_e4(rnd.mines,
                                                               25 - rnd.mines) // E4
            self._move(player, rnd.cur, r.payout, "bankroll")
        event(f"mines: reveal ended the round ({r.state})")
        self._finish(player, r)

    def _cash_out(self, player: str) -> None:
        rnd = self.open[player]
        if not rnd.revealed:
            with pytest.raises(bets.InvalidBet, match="at least one tile"):
                bets.cash_out(player, rnd.bet_id)
            return
        event("mines: cashed out")
        r = bets.cash_out(player, rnd.bet_id)
        mult = mines_multiplier_e4(rnd.mines, len(rnd.revealed))
        assert (r.state, r.mult_e4, r.payout, r.revealed) == (
            "won", mult, rnd.stake * mult // E4, rnd.revealed)
        self._move(player, rnd.cur, r.payout, "bankroll")
        assert r.balance_after == self.bal[player, rnd.cur][0]
        self._finish(player, r)

    @rule(pick=PICK, tile=TILES)
    def play_a_finished_round(self, pick: int, tile: int) -> None:
        """Cashing out or revealing again after the end answers the end, moves nothing."""
        if not self.finished:
            return
        player, done = _pick(self.finished, pick)
        again = bets.cash_out(player, done.bet_id)
        assert (again.state, again.payout, again.outcome) == (
            done.state, done.payout, done.outcome)
        assert bets.reveal_tile(player, done.bet_id, tile).payout == done.payout

    @rule(p=st.integers(0, PLAYERS - 1))
    def rotate_seeds(self, p: int) -> None:
        """Reveal the server seed: every bet made with it can be recomputed. Refused, with
        nothing revealed, while a Mines round of the pair is open (issue 10)."""
        player = self.players[p]
        if player in self.open:
            event("rotate: refused, a Mines round is open")
            before = (seeds.current(player), seeds.revealed(player, limit=1000))
            with pytest.raises(seeds.SeedsInUse):
                seeds.rotate(player)
            assert (seeds.current(player), seeds.revealed(player, limit=1000)) == before
            for bet_id in self.pair_bets[player]:
                b = history.bet(player, bet_id)
                assert b is not None and b.server_seed is None
            return
        pair = seeds.rotate(player)
        assert pair.bets == self.nonce[player]
        for bet_id in self.pair_bets[player]:
            b = history.bet(player, bet_id)
            assert b is not None and b.server_seed == pair.server_seed
            if b.state != "open":
                game = GAMES[b.game]
                assert game.draw(pair.server_seed, b.client_seed, b.nonce,
                                 game.parse_params(b.params)) == b.outcome
        self.nonce[player] = 0
        self.pair_bets[player] = []
        assert seeds.current(player).nonce == 0

    # --- after every step ---

    @invariant()
    def ledger_matches_the_model(self) -> None:
        owners = [*self.players, ledger.HOUSE]
        with ledger_tx(readonly=True) as s:
            rows = s.execute(select(
                LedgerAccount.owner, LedgerAccount.currency, LedgerAccount.kind,
                func.sum(LedgerAccount.balance), func.sum(LedgerAccount.reserved))
                .where(LedgerAccount.owner.in_(owners))
                .group_by(LedgerAccount.owner, LedgerAccount.currency, LedgerAccount.kind))
            found = {(o, c, k): (int(b), int(r)) for o, c, k, b, r in rows}
            bad = {f.check: f.examples for f in ledger.check_invariants(s) if f.violations}
        assert bad == {}
        for (player, cur), (balance, reserved) in self.bal.items():
            assert found.get((player, cur, "player"), (0, 0)) == (balance, reserved), (
                player, cur)
            assert balance - reserved >= 0
        for (cur, kind), change in self.house.items():
            assert found.get((ledger.HOUSE, cur, kind), (0, 0))[0] == (
                self.base[cur, kind] + change), (cur, kind)


def ledger_id(player: str, cur: str) -> int:
    with ledger_tx(readonly=True) as s:
        return ledger.player_account(s, player, cur)


def test_ledger_and_bets_follow_the_model(any_env: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASINO_RATE_BETS_PLAYER", "1000000/second")
    reset_settings_cache()
    reset_limiter()
    # No shrinking: outcomes come from fresh random server seeds, so a shorter replay of a
    # failing run need not fail the same way; the failing run's steps are printed.
    run_state_machine_as_test(LedgerMachine, settings=settings(
        max_examples=15, stateful_step_count=100, deadline=None, database=None,
        phases=[Phase.explicit, Phase.generate], print_blob=False,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))


class _Abort(Exception):
    pass


def test_an_account_created_in_a_rolled_back_transaction_is_not_remembered(
        any_env: str) -> None:
    with pytest.raises(_Abort), ledger_tx() as s:
        ledger.house_account(s, "BTC", "bankroll", 5)
        raise _Abort
    with ledger_tx() as s:  # SQLite hands the freed id to the next account
        player = ledger.player_account(s, "p-rollback", "BTC")
    with ledger_tx() as s:
        bank = ledger.house_account(s, "BTC", "bankroll", 5)
        ledger.transfer(s, "fund-5", "capital", ledger.house_account(s, "BTC", "custody"),
                        bank, 100)
    assert bank != player
    with ledger_tx(readonly=True) as s:
        assert ledger.player_balances(s, "p-rollback")["BTC"].balance == 0
        assert ledger.info(s, bank).kind == "bankroll"
        assert [f.check for f in ledger.check_invariants(s) if f.violations] == []
