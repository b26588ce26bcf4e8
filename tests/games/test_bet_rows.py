"""The settlement writer settles house bets in batches (PostgreSQL: the function
settle_bets_v1; SQLite: the same decisions in Python): on both databases a bet writes the
rows ledger.post_entry would (entry key, kind, fingerprint, memo, postings in order), its
bet row and stats, refuses the same bets and leaves the ledger's invariants clean."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import select, text

from casino_app.core.db import ledger_tx
from casino_app.games import bets
from casino_app.games.models import Bet, PlayerStats
from casino_app.payments import ledger
from casino_app.payments.models import JournalEntry, Posting

DICE = {"target": 50, "direction": "over"}



def _fund(player_id: str, amount: int) -> None:
    with ledger_tx() as s:
        ledger.transfer(s, f"test-credit:{uuid.uuid4().hex}", "deposit",
                        ledger.house_account(s, "FUN", "faucet"),
                        ledger.player_account(s, player_id, "FUN"), amount)


def _rows(player_id: str) -> list[tuple]:
    """Each bet with its entry and postings, checked against what post_entry writes."""
    out = []
    with ledger_tx(readonly=True) as s:
        player = ledger.player_account(s, player_id, "FUN")
        for b in s.scalars(select(Bet).where(Bet.player_id == player_id).order_by(Bet.id)):
            bank = ledger.house_account(s, "FUN", "bankroll")
            e = s.execute(select(JournalEntry).where(
                JournalEntry.key == f"bet:{player_id}:{b.bet_key}")).scalar_one()
            lines = [(a, m) for a, m in ((player, -b.stake), (bank, b.stake),
                                         (bank, -b.payout), (player, b.payout)) if m]
            assert (e.kind, e.memo) == ("bet", f"{b.game} bet {b.bet_key}")
            assert e.fingerprint == ledger._fingerprint("bet", sorted(lines))
            postings = s.execute(select(Posting.account_id, Posting.amount, Posting.currency)
                                 .where(Posting.entry_id == e.id).order_by(Posting.id)).all()
            assert [(a, m) for a, m, _c in postings] == lines
            assert {c for _a, _m, c in postings} == {"FUN"}
            assert b.balance_before - b.stake + b.payout == b.balance_after
            assert b.progress == "[]" and b.created_at is not None
            assert (b.settled_at is None) == (b.state == "open")
            out.append((b.game, b.stake, b.payout, b.mult_e4, b.state, b.params,
                        b.balance_before, b.balance_after, b.nonce))
    return out


def test_a_bet_writes_the_rows_of_a_ledger_entry(bets_env: str) -> None:
    player = "p-" + uuid.uuid4().hex[:12]
    _fund(player, 1_000_000)
    answers = [bets.place_bet(player, "dice", "FUN", 1_000 + i, DICE, f"key-{i:05d}")
               for i in range(30)]
    assert {a.state for a in answers} == {"won", "lost"}
    mines = bets.place_bet(player, "mines", "FUN", 500, {"mines": 3}, "mines-00001")
    assert (mines.state, mines.outcome, mines.revealed) == ("open", None, [])
    again = bets.place_bet(player, "dice", "FUN", 1_000, DICE, "key-00000")
    assert again.replayed and again.bet_id == answers[0].bet_id
    with pytest.raises(bets.InvalidBet):
        bets.place_bet(player, "dice", "FUN", 2_000, DICE, "key-00000")
    with pytest.raises(bets.InsufficientBalance):
        bets.place_bet(player, "dice", "FUN", 10_000_000, DICE, "key-toomuch")

    rows = _rows(player)
    assert len(rows) == 31
    fresh = [*answers, mines]
    assert [(a.game, a.stake, a.payout, a.mult_e4, a.state, a.balance_before,
             a.balance_after, a.nonce) for a in fresh] == [
        (g, st, pa, m, state, bb, ba, n) for g, st, pa, m, state, _p, bb, ba, n in rows]
    assert [r[-1] for r in rows] == list(range(31))  # nonces in order, none lost
    with ledger_tx(readonly=True) as s:
        stats = s.get(PlayerStats, (player, "FUN"))
        assert stats is not None
        assert (stats.bets, stats.wagered, stats.paid) == (
            30, sum(a.stake for a in answers), sum(a.payout for a in answers))
        assert stats.best_mult_e4 == max(a.mult_e4 for a in answers)
        balance = ledger.player_balances(s, player)["FUN"].balance
        assert balance == fresh[-1].balance_after
        assert not [f for f in ledger.check_invariants(s) if f.violations]
        assert json.loads(rows[0][5]) == DICE


@pytest.mark.postgres
def test_a_bet_after_a_database_restart_gets_a_fresh_connection(
        pg_env, monkeypatch: pytest.MonkeyPatch) -> None:
    """No ping per checkout, but a connection idle in the pool is pinged first, and the
    writer's own connection is opened again: after a server restart the next bet settles
    (at most one bet in flight during the restart gets "try again")."""
    from casino_app.core import db

    player = "p-" + uuid.uuid4().hex[:12]
    _fund(player, 100_000)
    bets.place_bet(player, "dice", "FUN", 1_000, DICE, "before-restart")
    with ledger_tx() as s:  # the test cluster runs without fsync: make the bet durable
        s.execute(text("CHECKPOINT"))
    pg_env.stop("immediate")
    pg_env.start()
    monkeypatch.setattr(db, "IDLE_PING_SECONDS", 0.0)
    try:  # the writer learns that its connection broke when it uses it
        after = bets.place_bet(player, "dice", "FUN", 1_000, DICE, "after-restart")
    except bets.BetRefused as exc:
        assert "Try again" in str(exc)
        after = bets.place_bet(player, "dice", "FUN", 1_000, DICE, "after-restart")
    assert after.nonce == 1 and not after.replayed
    with ledger_tx(readonly=True) as s:
        assert not [f for f in ledger.check_invariants(s) if f.violations]
