"""The settlement writer (payments/settlement.py) on both databases: bets that wait
together settle in one batch with one bankroll update, a duplicate key inside a batch is
settled once, a refused bet never fails its batch, a poisoned order is isolated, a full
queue answers "busy", and a process killed after the commit loses no bet and doubles none.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from concurrent.futures import Future
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from casino_app.core.db import ledger_tx
from casino_app.games import bets, seeds
from casino_app.games.models import Bet
from casino_app.payments import ledger, settlement
from casino_app.payments.models import JournalEntry, LedgerAccount, Posting

DICE = {"target": 50, "direction": "over"}
ROOT = Path(__file__).resolve().parents[2]


def _player(fun: int = 1_000_000) -> str:
    player = "p-" + uuid.uuid4().hex[:12]
    with ledger_tx() as s:
        ledger.house_account(s, "FUN", "bankroll")  # made by the first bet that needs it
    if fun:
        with ledger_tx() as s:
            ledger.transfer(s, f"credit:{player}", "deposit",
                            ledger.house_account(s, "FUN", "faucet"),
                            ledger.player_account(s, player, "FUN"), fun)
    seeds.ensure(player)
    return player


class _Paused:
    """Holds the writer on a job, so that what is submitted meanwhile waits together and
    is taken as one batch when it is released."""

    def __enter__(self) -> _Paused:
        self.gate, self.inside = threading.Event(), threading.Event()

        def hold() -> None:
            self.inside.set()
            self.gate.wait(30)

        self.job = settlement.writer().run(hold)
        assert self.inside.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.gate.set()
        self.job.result(10)


def _submit(player: str, key: str, stake: int = 1_000, params: dict | None = None,
            currency: str = "FUN") -> Future:
    """A bet placed from its own thread (place_bet waits for the writer's answer)."""
    out: Future = Future()

    def go() -> None:
        try:
            out.set_result(bets.place_bet(player, "dice", currency, stake, params or DICE,
                                          key))
        except Exception as exc:  # noqa: BLE001 - the test looks at it
            out.set_exception(exc)

    threading.Thread(target=go, daemon=True).start()
    return out


def _queued(n: int) -> None:
    """Wait until ``n`` orders wait in the writer's queue."""
    w = settlement.writer()
    for _ in range(1000):
        with w._cv:
            if sum(isinstance(i, settlement._Pending) for i in w._queue) >= n:
                return
        threading.Event().wait(0.01)
    raise AssertionError("the bets did not reach the writer")


def _clean() -> None:
    with ledger_tx(readonly=True) as s:
        assert not [f for f in ledger.check_invariants(s) if f.violations]


def _bankroll_postings(entry_ids: list[int]) -> int:
    with ledger_tx(readonly=True) as s:
        bank = ledger.house_account(s, "FUN", "bankroll")
        return s.execute(select(func.count()).select_from(Posting).where(
            Posting.account_id == bank, Posting.entry_id.in_(entry_ids))).scalar_one()


def test_bets_waiting_together_settle_in_one_batch(bets_env: str) -> None:
    players = [_player() for _ in range(5)]
    w = settlement.writer()
    with _Paused():
        before = w.batches
        futures = []
        for i in range(4):
            for p in players:
                futures.append(_submit(p, f"batch-{i:03d}-{p}"))
                _queued(len(futures))  # in this order
    answers = [f.result(30) for f in futures]
    assert w.batches == before + 1
    assert all(not a.replayed for a in answers)
    for p in players:  # each player's nonces in order, balances chained
        mine = [a for a in answers if a.bet_key.endswith(p)]
        assert [a.nonce for a in mine] == [0, 1, 2, 3]
        assert all(x.balance_after == y.balance_before for x, y in zip(mine, mine[1:], strict=False))
    with ledger_tx(readonly=True) as s:
        bank = s.get(LedgerAccount, ledger.house_account(s, "FUN", "bankroll"))
        assert bank is not None
        assert bank.balance == sum(a.stake - a.payout for a in answers)
        assert s.execute(select(func.count()).select_from(Bet)).scalar_one() == 20
    _clean()


def test_one_bet_each_of_many_players_goes_out_as_two_batches(
        bets_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Players who each wait for their answer before they bet again: a batch takes at
    most half of the orders out, so the other half goes out at once as a second batch
    (on PostgreSQL both are in the server together) and, at a steady load, the two
    halves take turns between the server and Python instead of one batch that leaves
    each idle in turn."""
    players = [_player() for _ in range(10)]
    sent: list[int] = []
    execute = settlement.SettlementWriter._execute

    def spy(self: settlement.SettlementWriter, orders: list) -> object:
        sent.append(len(orders))
        return execute(self, orders)

    monkeypatch.setattr(settlement.SettlementWriter, "_execute", spy)
    with _Paused():
        futures = []
        for p in players:
            futures.append(_submit(p, f"half-{p}"))
            _queued(len(futures))
    assert len({f.result(30).bet_id for f in futures}) == 10
    assert sent == [5, 5]
    _clean()


def test_a_key_twice_in_one_batch_is_settled_once(bets_env: str) -> None:
    player = _player()
    with _Paused():
        first = _submit(player, "twice-0001")
        _queued(1)
        again = _submit(player, "twice-0001")
        _queued(2)
        other = _submit(player, "twice-0001", stake=2_000)  # same key, another bet
        _queued(3)
    a, b = first.result(30), again.result(30)
    assert a.bet_id == b.bet_id and not a.replayed and b.replayed
    with pytest.raises(bets.InvalidBet, match="already used"):
        other.result(30)
    with ledger_tx(readonly=True) as s:
        assert s.execute(select(func.count()).select_from(JournalEntry).where(
            JournalEntry.kind == "bet")).scalar_one() == 1
    _clean()


def test_a_refused_bet_amid_accepted_ones_fails_alone(bets_env: str) -> None:
    rich, poor = _player(), _player(fun=1_500)
    with _Paused():
        futures = []
        for who, key, stake in ((rich, "mix-0001", 1_000), (poor, "mix-0002", 1_000),
                                (poor, "mix-0003", 1_000),  # after a refused one: redrawn
                                (rich, "mix-0004", 1_000), (poor, "mix-0005", 100)):
            futures.append(_submit(who, key, stake))
            _queued(len(futures))
    assert futures[0].result(30).nonce == 0 and futures[3].result(30).nonce == 1
    poor_answers = []
    for f in futures[1:3]:
        try:
            poor_answers.append(f.result(30))
        except bets.InsufficientBalance:
            poor_answers.append(None)
    # 1,500 covers one bet of 1,000 (a win covers the second too): never more, no gaps
    placed = [a for a in poor_answers if a is not None]
    small = futures[4].result(30)
    assert [a.nonce for a in placed] + [small.nonce] == list(range(len(placed) + 1))
    assert small.balance_before >= 100
    _clean()


def _hold_first_batch(monkeypatch: pytest.MonkeyPatch
                      ) -> tuple[threading.Event, threading.Event]:
    """The first batch sent waits in its database thread until ``gate`` is set;
    ``inside`` is set once it waits there."""
    gate, inside = threading.Event(), threading.Event()

    def hold() -> None:
        if not inside.is_set():
            inside.set()
            gate.wait(30)

    monkeypatch.setitem(settlement.FAULTS, "before_batch", hold)
    return gate, inside


def test_the_next_batch_is_drawn_while_one_is_in_flight(
        bets_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """While the database settles a batch, the writer draws the next one and hands it
    over. It leaves out the players of the batch in flight (their next nonce is known only
    from its answers), so a player's bets keep their order and nonces have no gap."""
    a, b = _player(), _player()
    sent: list[list[tuple[str, int]]] = []
    execute = settlement.SettlementWriter._execute

    def spy(self: settlement.SettlementWriter, orders: list) -> object:
        sent.append([(o.player_id, o.nonce) for o in orders])
        return execute(self, orders)

    monkeypatch.setattr(settlement.SettlementWriter, "_execute", spy)
    gate, inside = _hold_first_batch(monkeypatch)
    first = _submit(a, "flight-a-0000")
    assert inside.wait(10)
    then_a = _submit(a, "flight-a-0001")
    _queued(1)
    then_b = _submit(b, "flight-b-0000")
    w = settlement.writer()
    for _ in range(1000):  # b's bet is taken and drawn; a's waits for the first answers
        with w._cv:
            waiting = [i.order.bet_key for i in w._queue]
        if waiting == ["flight-a-0001"]:
            break
        threading.Event().wait(0.01)
    assert waiting == ["flight-a-0001"]
    gate.set()
    assert (first.result(30).nonce, then_a.result(30).nonce, then_b.result(30).nonce) \
        == (0, 1, 0)
    assert sent == [[(a, 0)], [(b, 0)], [(a, 1)]]
    _clean()


def _poison(order: settlement.BetOrder) -> settlement.BetOrder:
    """An order whose bet row the database refuses (a negative payout breaks the bets
    table's CHECK), as an unexpected error in one request of a batch."""
    draw = order.draw

    def bad(pair: settlement.SeedInputs, nonce: int) -> settlement.Drawn:
        d = draw(pair, nonce)
        return settlement.Drawn(d.outcome_json, d.mult_e4, -1, d.state)

    order.draw = bad
    return order


def test_a_poisoned_order_is_isolated_and_the_others_commit(bets_env: str) -> None:
    players = [_player() for _ in range(6)]
    order = _poison(bets._prepare(players[2], "dice", "FUN", 1_000, DICE, "poison-0001")[0])
    with _Paused():
        futures = []
        for p in players:
            futures.append(_submit(p, f"good-{p}"))
            _queued(len(futures))
        poisoned = settlement.writer().submit(order)
        more = []
        for p in players:
            more.append(_submit(p, f"more-{p}"))
            _queued(7 + len(more))
    assert poisoned.result(30).status == "error"
    answers = [f.result(30) for f in futures + more]
    assert len({a.bet_id for a in answers}) == 12
    # the poisoned order took no nonce: the player's next bets continue without a gap
    assert [a.nonce for a in answers if a.bet_key.endswith(players[2])] == [0, 1]
    with ledger_tx(readonly=True) as s:
        assert s.execute(select(Bet).where(Bet.bet_key == "poison-0001")).first() is None
    _clean()


def test_a_full_queue_answers_busy_at_once(bets_env: str, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    player = _player()
    monkeypatch.setattr(settlement, "QUEUE_CAP", 3)
    with _Paused():
        waiting = []
        for i in range(3):
            waiting.append(_submit(player, f"busy-{i:04d}"))
            _queued(i + 1)
        with pytest.raises(bets.Busy, match="Try again"):
            bets.place_bet(player, "dice", "FUN", 1_000, DICE, "busy-9999")
    assert len({f.result(30).bet_id for f in waiting}) == 3
    with ledger_tx(readonly=True) as s:
        assert s.execute(select(Bet).where(Bet.bet_key == "busy-9999")).first() is None
    _clean()


def test_a_rotation_between_draw_and_batch_is_drawn_again(bets_env: str) -> None:
    """The writer keeps a player's pair in memory: a rotation makes it stale, and the bet
    is drawn again from the new pair, never settled on the revealed one."""
    player = _player()
    first = bets.place_bet(player, "dice", "FUN", 1_000, DICE, "rot-00001")
    revealed = seeds.rotate(player)
    assert revealed.server_seed_hash == first.server_seed_hash
    second = bets.place_bet(player, "dice", "FUN", 1_000, DICE, "rot-00002")
    assert second.server_seed_hash != first.server_seed_hash and second.nonce == 0
    _clean()


@pytest.fixture
def pg_bets_env(pg_env: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL only, with the per-player bet rate limit out of the way."""
    from casino_app.core.settings import reset_settings_cache
    from casino_app.security.ratelimit import reset_limiter

    monkeypatch.setenv("CASINO_RATE_BETS_PLAYER", "100000/second")
    reset_settings_cache()
    reset_limiter()


@pytest.mark.postgres
def test_two_batches_are_in_the_server_at_once(pg_bets_env: None,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """On PostgreSQL a second batch (other players) runs on a second connection while
    the first is still in the server, and commits and answers first; the books balance."""
    a, b = _player(), _player()
    gate, inside = _hold_first_batch(monkeypatch)
    first = _submit(a, "two-a-0000")
    assert inside.wait(10)
    second = _submit(b, "two-b-0000")
    try:
        assert second.result(30).nonce == 0  # answered while the first one is held
        assert not first.done()
    finally:
        gate.set()
    assert first.result(30).nonce == 0
    _clean()


def _bankroll_lock_waiters() -> int:
    with ledger_tx(readonly=True) as s:
        return s.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name ="
            " 'casino-settlement' AND wait_event_type = 'Lock'")).scalar_one()


@pytest.mark.postgres
@pytest.mark.parametrize("move", [-600_000, 600_000])
def test_a_bankroll_moved_by_a_commit_under_a_batch_decides_its_caps_afresh(
        pg_bets_env: None, move: int) -> None:
    """A batch reads the bankroll without a lock and writes it last. Here another entry
    holds the bankroll row while the batch decides a bet at the exposure cap (1% of
    1,000,000), and commits when the batch waits for the row. A loss to the house
    (-600,000) leaves a cap of 4,000: the batch is sent again and the bet is refused
    with that cap, nothing written; a gain keeps the bet. The books balance either way."""
    player = "p-" + uuid.uuid4().hex[:12]
    with ledger_tx() as s:
        custody, bank = (ledger.house_account(s, "BTC", k) for k in ("custody", "bankroll"))
        ledger.transfer(s, f"fund:{player}", "deposit", custody,
                        ledger.player_account(s, player, "BTC"), 100_000)
        ledger.transfer(s, "bank:0", "capital", custody, bank, 1_000_000)
    seeds.ensure(player)
    bets.reset_bankroll_cache()
    src, dst = (bank, custody) if move < 0 else (custody, bank)
    holding, release, done = threading.Event(), threading.Event(), threading.Event()

    def other_entry() -> None:  # holds the bankroll row until released, then commits
        with ledger_tx() as s:
            ledger.transfer(s, "bank:move", "capital", src, dst, abs(move))
            holding.set()
            release.wait(30)
        done.set()

    threading.Thread(target=other_entry, daemon=True).start()
    assert holding.wait(10)
    bet = _submit(player, "moved-0001", 10_000, currency="BTC")
    try:
        for _ in range(1000):
            if _bankroll_lock_waiters():
                break
            threading.Event().wait(0.01)
        assert _bankroll_lock_waiters() == 1  # the batch waits for the bankroll, last
    finally:
        release.set()
    assert done.wait(10)
    if move < 0:
        with pytest.raises(bets.OverExposure, match=r"\(0\.00004000 BTC\)"):
            bet.result(30)
        with ledger_tx(readonly=True) as s:
            assert s.execute(select(Bet).where(Bet.player_id == player)).first() is None
            assert ledger.balance_of(s, ledger.player_account(s, player, "BTC")).balance \
                == 100_000
    else:
        assert bet.result(30).stake == 10_000
    _clean()


_CRASH = """
import os, sys
from casino_app.games import bets
from casino_app.payments import settlement
settlement.FAULTS["after_commit"] = lambda: os._exit(9)
bets.place_bet(sys.argv[1], "dice", "FUN", 1000, {"target": 50, "direction": "over"},
               sys.argv[2])
"""


def test_a_process_killed_after_the_commit_loses_and_doubles_nothing(bets_env: str) -> None:
    """The process dies after COMMIT, before it answers (TRUST.md's fault point): the
    retry with the same key answers with the stored bet, and the money moved once."""
    player = _player()
    child = subprocess.run([sys.executable, "-c", _CRASH, player, "crash-00001"],
                           cwd=ROOT, env=os.environ.copy(), capture_output=True, timeout=120,
                           check=False)
    assert child.returncode == 9, child.stderr.decode()[-2000:]
    again = bets.place_bet(player, "dice", "FUN", 1_000, DICE, "crash-00001")
    assert again.replayed and again.nonce == 0
    after = bets.place_bet(player, "dice", "FUN", 1_000, DICE, "crash-00002")
    assert after.nonce == 1 and after.balance_before == again.balance_after
    with ledger_tx(readonly=True) as s:
        assert s.execute(select(func.count()).select_from(Bet).where(
            Bet.player_id == player)).scalar_one() == 2
    _clean()


_CRASH_BEFORE = _CRASH.replace('"after_commit"', '"before_batch"')


def test_a_process_killed_before_the_batch_leaves_nothing(bets_env: str) -> None:
    player = _player()
    child = subprocess.run([sys.executable, "-c", _CRASH_BEFORE, player, "crash-00002"],
                           cwd=ROOT, env=os.environ.copy(), capture_output=True, timeout=120,
                           check=False)
    assert child.returncode == 9, child.stderr.decode()[-2000:]
    with ledger_tx(readonly=True) as s:
        assert s.execute(select(Bet).where(Bet.player_id == player)).first() is None
    r = bets.place_bet(player, "dice", "FUN", 1_000, DICE, "crash-00002")
    assert not r.replayed and r.nonce == 0
    _clean()


def test_the_migration_merges_bankroll_shards_into_one_account(tmp_path: Path) -> None:
    """An old database with a bankroll over several shards: after the upgrade, shard 0
    holds it all, moved by one balanced entry, and the books still balance."""
    from alembic import command
    from sqlalchemy import text

    from casino_app.core.db import make_engine
    from casino_app.migrations import alembic_config

    engine = make_engine(f"sqlite:///{tmp_path / 'old-ledger.db'}")
    try:
        cfg = alembic_config("ledger", engine)
        command.upgrade(cfg, "led0017_btc_cold_payments")
        with engine.begin() as c:
            for shard, amount in ((0, 500), (3, 1_200), (17, -200)):
                acct = c.execute(text(
                    "INSERT INTO ledger_accounts (owner, currency, kind, shard, allow_negative,"
                    " balance, reserved, created_at) VALUES ('house', 'FUN', 'bankroll', :s,"
                    " 1, :b, 0, '2026-01-01') RETURNING id"), {"s": shard, "b": amount}
                ).scalar_one()
                faucet = c.execute(text(
                    "INSERT INTO ledger_accounts (owner, currency, kind, shard, allow_negative,"
                    " balance, reserved, created_at) VALUES ('house', 'FUN', 'faucet', :s,"
                    " 1, :b, 0, '2026-01-01') RETURNING id"), {"s": shard, "b": -amount}
                ).scalar_one()
                entry = c.execute(text(
                    "INSERT INTO journal_entries (key, kind, fingerprint, memo, created_at) "
                    "VALUES (:k, 'capital', 'x', '', '2026-01-01') RETURNING id"),
                    {"k": f"old-{shard}"}).scalar_one()
                for a, m in ((acct, amount), (faucet, -amount)):
                    c.execute(text("INSERT INTO postings (entry_id, account_id, currency, "
                                   "amount) VALUES (:e, :a, 'FUN', :m)"),
                              {"e": entry, "a": a, "m": m})
        command.upgrade(cfg, "head")
        with engine.connect() as c:
            rows = c.execute(text(
                "SELECT shard, balance FROM ledger_accounts WHERE kind = 'bankroll' "
                "ORDER BY shard")).all()
            assert [tuple(r) for r in rows] == [(0, 1_500), (3, 0), (17, 0)]
            lines = c.execute(text(
                "SELECT p.amount FROM postings p JOIN journal_entries e ON e.id = p.entry_id "
                "WHERE e.key = 'bankroll-merge:FUN' ORDER BY p.id")).scalars().all()
            assert sorted(lines) == [-1_200, 200, 1_000]
        from sqlalchemy.orm import Session
        with Session(engine) as s:
            assert not [f for f in ledger.check_invariants(s) if f.violations]
    finally:
        engine.dispose()


def test_jobs_sharing_a_transaction_fail_alone(any_env: str) -> None:
    """run_in_transaction: callbacks waiting share one COMMIT; one that fails in its
    savepoint (here a duplicate key, which aborts a PostgreSQL transaction without one)
    is undone alone and the others commit, including an account it had created."""
    w = settlement.writer()
    gate = threading.Event()
    w.run(gate.wait)  # hold the writer so that the three jobs wait together
    key = f"dup-{uuid.uuid4().hex}"

    def post(player: str, entry_key: str):  # noqa: ANN202
        def fn(s):  # noqa: ANN001, ANN202
            with ledger.savepoint(s):
                src = ledger.house_account(s, "FUN", "faucet")
                dst = ledger.player_account(s, player, "FUN")
                ledger.transfer(s, entry_key, "deposit", src, dst, 100)
                if player == "p-bad":
                    s.execute(text("INSERT INTO journal_entries (key, kind, fingerprint, memo,"
                                   " created_at) SELECT key, kind, fingerprint, memo, "
                                   "created_at FROM journal_entries WHERE key = :k"),
                              {"k": entry_key})
            return player
        return fn

    futures = [w.run_in_transaction(post("p-one", key + "a")),
               w.run_in_transaction(post("p-bad", key + "b")),
               w.run_in_transaction(post("p-two", key + "c"))]
    gate.set()
    assert futures[0].result(30) == "p-one" and futures[2].result(30) == "p-two"
    with pytest.raises(Exception):  # noqa: B017, PT011 - the database's duplicate key error
        futures[1].result(30)
    with ledger_tx(readonly=True) as s:
        keys = set(s.scalars(select(JournalEntry.key).where(JournalEntry.key.like(key + "%"))))
        owners = set(s.scalars(select(LedgerAccount.owner).where(
            LedgerAccount.owner.in_(["p-one", "p-bad", "p-two"]))))
    assert keys == {key + "a", key + "c"}
    assert owners == {"p-one", "p-two"}
