"""The ledger's promises (shared/reference/TRUST.md), on SQLite and on Postgres."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from casino_app.core.db import ledger_tx
from casino_app.payments import ledger


def _accounts(player: str = "p1", cur: str = "BTC") -> tuple[int, int]:
    with ledger_tx() as s:
        return (ledger.player_account(s, player, cur),
                ledger.house_account(s, cur, "custody"))


def _credit(key: str, amount: int, player: str = "p1", cur: str = "BTC"
            ) -> ledger.EntryResult:
    p, custody = _accounts(player, cur)
    with ledger_tx() as s:
        return ledger.transfer(s, key, "deposit", custody, p, amount)


def _balance(player: str = "p1", cur: str = "BTC") -> ledger.Balance:
    with ledger_tx(readonly=True) as s:
        return ledger.player_balances(s, player)[cur]


def _violations() -> dict[str, int]:
    with ledger_tx(readonly=True) as s:
        return {f.check: f.violations for f in ledger.check_invariants(s) if f.violations}


def test_a_transfer_moves_money_once_per_key(any_env: str) -> None:
    first = _credit("dep-1", 5_000)
    again = _credit("dep-1", 5_000)
    assert not first.replayed and again.replayed and again.entry_id == first.entry_id
    assert _balance().balance == 5_000
    with pytest.raises(ledger.IdempotencyConflict):
        _credit("dep-1", 6_000)
    assert _balance().balance == 5_000
    assert _violations() == {}


def test_a_player_balance_never_goes_negative(any_env: str) -> None:
    _credit("dep-1", 1_000)
    p, custody = _accounts()
    with pytest.raises(ledger.InsufficientFunds), ledger_tx() as s:
        ledger.transfer(s, "w-1", "withdrawal", p, custody, 1_001)
    assert _balance().balance == 1_000
    # a stake is covered before a win is added: a 0-balance player cannot bet 10 to win 20
    with pytest.raises(ledger.InsufficientFunds), ledger_tx() as s:
        bank = ledger.house_account(s, "BTC", "bankroll")
        ledger.post_entry(s, "bet-x", "bet", [(p, -1_001), (bank, 1_001), (bank, -3_000),
                                              (p, 3_000)])
    # the database refuses it too, whatever the code does
    with pytest.raises(DatabaseError), ledger_tx() as s:
        s.execute(text("UPDATE ledger_accounts SET balance = -1 WHERE id = :i"), {"i": p})
    assert _violations() == {}


def test_entries_must_balance_per_currency(any_env: str) -> None:
    p, custody = _accounts()
    with pytest.raises(ValueError, match="does not balance"), ledger_tx() as s:
        ledger.post_entry(s, "bad", "deposit", [(custody, -10), (p, 11)])
    eth_p, _ = _accounts(cur="ETH")
    with pytest.raises(ValueError, match="does not balance"), ledger_tx() as s:
        ledger.post_entry(s, "mixed", "deposit", [(custody, -10), (eth_p, 10)])
    with pytest.raises(TypeError), ledger_tx() as s:
        ledger.post_entry(s, "float", "deposit", [(custody, -1.5), (p, 1.5)])  # type: ignore[list-item]


def test_pending_reserves_then_posts_or_voids_once(any_env: str) -> None:
    _credit("dep-1", 10_000)
    p, custody = _accounts()
    with ledger_tx() as s:
        r = ledger.reserve(s, "wd-1", "withdrawal", p, custody, 7_000)
    assert r.state == "pending"
    b = _balance()
    assert (b.balance, b.reserved, b.available) == (10_000, 7_000, 3_000)
    with pytest.raises(ledger.InsufficientFunds), ledger_tx() as s:
        ledger.reserve(s, "wd-2", "withdrawal", p, custody, 3_001)
    with ledger_tx() as s:
        assert ledger.reserve(s, "wd-1", "withdrawal", p, custody, 7_000).replayed
    with ledger_tx() as s:
        posted = ledger.post_pending(s, "wd-1")
    with ledger_tx() as s:
        assert ledger.post_pending(s, "wd-1").replayed
    with pytest.raises(ledger.TransferNotPending), ledger_tx() as s:
        ledger.void_pending(s, "wd-1")
    assert posted.entry_id is not None
    b = _balance()
    assert (b.balance, b.reserved) == (3_000, 0)
    with ledger_tx() as s:
        ledger.reserve(s, "wd-3", "withdrawal", p, custody, 3_000)
    with ledger_tx() as s:
        ledger.void_pending(s, "wd-3")
    with pytest.raises(ledger.TransferNotPending), ledger_tx() as s:
        ledger.post_pending(s, "wd-3")
    with pytest.raises(ledger.UnknownTransfer), ledger_tx() as s:
        ledger.post_pending(s, "nope")
    b = _balance()
    assert (b.balance, b.reserved) == (3_000, 0)
    assert _violations() == {}


def test_posted_money_cannot_be_edited(any_env: str) -> None:
    entry = _credit("dep-1", 500)
    for sql in ("UPDATE postings SET amount = 1 WHERE entry_id = :e",
                "DELETE FROM postings WHERE entry_id = :e",
                "UPDATE journal_entries SET kind = 'x' WHERE id = :e"):
        with pytest.raises(DatabaseError), ledger_tx() as s:
            s.execute(text(sql), {"e": entry.entry_id})
    assert _violations() == {}


def test_check_finds_a_balance_that_disagrees_with_its_postings(any_env: str) -> None:
    _credit("dep-1", 500)
    p, _ = _accounts()
    with ledger_tx() as s:
        s.execute(text("UPDATE ledger_accounts SET balance = balance + 1 WHERE id = :i"),
                  {"i": p})
    found = _violations()
    assert found["balances_match_postings"] == 1
    assert found["books_balance"] == 1
