"""The double-entry ledger: accounts and transfers (TigerBeetle's model) in the ledger DB.

Every function takes the caller's open unit of work (a Session in a transaction), so a
bet can post money and record itself atomically. Nothing here commits.

- An *entry* moves money between accounts; its postings sum to zero per currency. Its
  ``key`` is chosen by the caller and UNIQUE: the same key with the same movements returns
  the first result and moves nothing; the same key with other movements is refused.
- A *pending transfer* reserves an amount on its debit account (it counts against the
  available balance) until it is posted or voided, each at most once.
- Balances are stored on the account row and changed only together with postings.
  A debit is a conditional UPDATE (``... WHERE balance - reserved >= debit``): on Postgres
  concurrent writers queue on the row lock and re-check the condition, so no interleaving
  overdraws; a CHECK constraint is the second wall. Accounts are locked in id order,
  the bankroll last (as a settlement batch writes it).
"""

from __future__ import annotations

import hashlib
import json
import threading
import weakref
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import bindparam, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from casino_app.core.clock import utcnow
from casino_app.payments.currencies import MAX_AMOUNT, currency
from casino_app.payments.models import JournalEntry, LedgerAccount, PendingTransfer, Posting

HOUSE = "house"
# kind -> may the balance go below zero
KINDS: dict[str, bool] = {
    "player": False,      # what the house owes a player: never negative
    "bankroll": True,     # house money at risk in games (one per currency: batches touch it)
    "revenue": True,      # house profit moved out of the bankroll
    "fees": True,         # network and processing fees
    "custody": True,      # mirror of coins held on chain (negative: the house holds them)
    "adjustment": True,   # counterpart of staff-approved manual adjustments
    "faucet": True,       # source of FUN play money (FUN only)
    "capital": True,      # operator funding of the bankroll
    "debt": True,         # what a player owes (a spent deposit that a reorg reversed)
    "provider": True,     # a game provider's games (shard = provider id): stakes in, wins out
    "loyalty": True,      # expense of rakeback and level-up bonuses (games/loyalty), real money
}

class LedgerError(Exception):
    """Base of ledger refusals; ``str(exc)`` is safe to show to the player."""


class InsufficientFunds(LedgerError):
    def __init__(self, account_id: int):
        super().__init__("Insufficient balance.")
        self.account_id = account_id


class IdempotencyConflict(LedgerError):
    def __init__(self, key: str):
        super().__init__("This request id was already used for a different operation.")
        self.key = key


class TransferNotPending(LedgerError):
    def __init__(self, key: str, state: str):
        super().__init__(f"Transfer {key} is {state}, not pending.")
        self.state = state


class UnknownTransfer(LedgerError):
    def __init__(self, key: str):
        super().__init__(f"No pending transfer {key}.")


@dataclass(frozen=True)
class AccountInfo:
    id: int
    owner: str
    currency: str
    kind: str
    shard: int
    allow_negative: bool


@dataclass(frozen=True)
class EntryResult:
    entry_id: int
    key: str
    replayed: bool
    balances: dict[int, int] = field(default_factory=dict)  # account id -> balance after


@dataclass(frozen=True)
class PendingResult:
    id: int
    key: str
    state: str
    amount: int
    replayed: bool
    entry_id: int | None = None


# --- account ids are immutable: cache them per database (keyed by its connection pool) ---
_cache_lock = threading.Lock()
_caches: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _cache(s: Session) -> dict:
    pool = s.get_bind().pool
    c = _caches.get(pool)
    if c is None:
        with _cache_lock:
            c = _caches.setdefault(pool, {"by_name": {}, "by_id": {}})
    return c


def _created_here(s: Session) -> dict:
    """Accounts this transaction created: known only to it until it commits, since a
    rollback takes them away (and SQLite then gives the same id to another account)."""
    c = s.info.get("ledger_new_accounts")
    if c is None:
        c = s.info["ledger_new_accounts"] = {"by_name": {}, "by_id": {}}
    return c


@contextmanager
def savepoint(s: Session) -> Iterator[None]:
    """A SAVEPOINT: what the block wrote is undone if it raises (and the accounts it
    created are forgotten by this transaction's cache), the rest of the transaction
    stays."""
    before = {k: dict(v) for k, v in _created_here(s).items()}
    nested = s.begin_nested()
    try:
        yield
    except BaseException:
        nested.rollback()
        s.info["ledger_new_accounts"] = before
        raise
    nested.commit()


def dialect_insert(s: Session, table):  # noqa: ANN001, ANN201
    """INSERT with ON CONFLICT support for the session's database (Postgres or SQLite)."""
    return (postgresql.insert if s.get_bind().dialect.name == "postgresql"
            else sqlite.insert)(table)


def account(s: Session, owner: str, currency_code: str, kind: str, shard: int = 0) -> int:
    """The id of account (owner, currency, kind, shard), created on first use."""
    name = (owner, currency_code, kind, shard)
    c = _cache(s)
    found = c["by_name"].get(name)
    if found is None:
        found = _created_here(s)["by_name"].get(name)
    if found is not None:
        return found
    if kind not in KINDS:
        raise ValueError(f"unknown account kind {kind!r}")
    cur = currency(currency_code)
    if kind in ("custody", "loyalty") and not cur.real_money or \
            kind == "faucet" and cur.real_money:
        raise ValueError(f"{cur.code} has no {kind} account")
    stmt = dialect_insert(s, LedgerAccount).values(
        owner=owner, currency=cur.code, kind=kind, shard=shard,
        allow_negative=KINDS[kind], balance=0, reserved=0, created_at=utcnow(),
    ).on_conflict_do_nothing(index_elements=["owner", "currency", "kind", "shard"])
    table = LedgerAccount.__table__
    row = s.execute(stmt.returning(table.c.id, table.c.allow_negative)).first()
    if row is not None:  # created now: cached for this transaction only
        c = _created_here(s)
    else:  # committed by an earlier transaction: cached for the process
        row = s.execute(select(LedgerAccount.id, LedgerAccount.allow_negative).where(
            LedgerAccount.owner == owner, LedgerAccount.currency == cur.code,
            LedgerAccount.kind == kind, LedgerAccount.shard == shard)).one()
    c["by_name"][name] = row.id
    c["by_id"][row.id] = AccountInfo(row.id, owner, cur.code, kind, shard, row.allow_negative)
    return row.id


def existing_account(s: Session, owner: str, currency_code: str, kind: str,
                     shard: int = 0) -> int | None:
    """The id of account (owner, currency, kind, shard) if it exists (never creates it)."""
    name = (owner, currency_code, kind, shard)
    c = _cache(s)
    found = c["by_name"].get(name) or _created_here(s)["by_name"].get(name)
    if found is not None:
        return found
    row = s.execute(select(LedgerAccount.id, LedgerAccount.allow_negative).where(
        LedgerAccount.owner == owner, LedgerAccount.currency == currency_code,
        LedgerAccount.kind == kind, LedgerAccount.shard == shard)).first()
    if row is None:
        return None
    c["by_name"][name] = row.id
    c["by_id"][row.id] = AccountInfo(row.id, owner, currency_code, kind, shard,
                                     row.allow_negative)
    return row.id


def player_account(s: Session, player_id: str, currency_code: str) -> int:
    return account(s, player_id, currency_code, "player")


def house_account(s: Session, currency_code: str, kind: str, shard: int = 0) -> int:
    return account(s, HOUSE, currency_code, kind, shard)


def info(s: Session, account_id: int) -> AccountInfo:
    c = _cache(s)
    found = c["by_id"].get(account_id)
    if found is None:
        found = _created_here(s)["by_id"].get(account_id)
    if found is None:
        a = s.get(LedgerAccount, account_id)
        if a is None:
            raise ValueError(f"no ledger account {account_id}")
        found = AccountInfo(a.id, a.owner, a.currency, a.kind, a.shard, a.allow_negative)
        c["by_id"][account_id] = found
    return found


def _fingerprint(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, separators=(",", ":")).encode()).hexdigest()


def _check_amount(amount: object) -> int:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise TypeError("ledger amounts are ints in the currency's base unit")
    if not -MAX_AMOUNT <= amount <= MAX_AMOUNT:
        raise ValueError("amount out of range")
    return amount


# Statements of the bet path, built once: building a statement costs more Python time
# than the database needs to run it.
_accounts = LedgerAccount.__table__
_CREDIT = (update(_accounts).where(_accounts.c.id == bindparam("p_id"))
           .values(balance=_accounts.c.balance + bindparam("p_net"))
           .returning(_accounts.c.balance))
_DEBIT = _CREDIT.where(_accounts.c.balance - _accounts.c.reserved >= bindparam("p_debits"))
_entry_inserts: dict[str, object] = {}


def _apply(s: Session, deltas: dict[int, tuple[int, int]]) -> dict[int, int]:
    """Change balances; ``deltas`` maps account -> (net change, gross debits).

    Rows are updated in id order, the bankroll accounts last, so concurrent entries never
    deadlock, with each other or with a settlement batch (which locks its players'
    accounts at its start and writes the bankroll by its last statement).
    """
    out = {}
    for account_id in sorted(deltas, key=lambda a: (info(s, a).kind == "bankroll", a)):
        net, debits = deltas[account_id]
        if not info(s, account_id).allow_negative and debits:
            row = s.execute(_DEBIT, {"p_id": account_id, "p_net": net,
                                     "p_debits": debits}).first()
        else:
            row = s.execute(_CREDIT, {"p_id": account_id, "p_net": net}).first()
        if row is None:
            raise InsufficientFunds(account_id)
        out[account_id] = row[0]
    return out


def _new_entry(s: Session, key: str, kind: str, fingerprint: str, memo: str) -> int | None:
    dialect = s.get_bind().dialect.name
    stmt = _entry_inserts.get(dialect)
    if stmt is None:
        table = JournalEntry.__table__
        stmt = _entry_inserts[dialect] = (
            dialect_insert(s, table).on_conflict_do_nothing(index_elements=["key"])
            .returning(table.c.id))
    row = s.execute(stmt, {"key": key, "kind": kind, "fingerprint": fingerprint,  # type: ignore[arg-type]
                           "memo": memo[:200], "created_at": utcnow()}).first()
    return None if row is None else row[0]


def _replay(s: Session, key: str, fingerprint: str) -> EntryResult:
    row = s.execute(select(JournalEntry.id, JournalEntry.fingerprint)
                    .where(JournalEntry.key == key)).one()
    if row.fingerprint != fingerprint:
        raise IdempotencyConflict(key)
    return EntryResult(row.id, key, True)


def post_entry(s: Session, key: str, kind: str, moves: Sequence[tuple[int, int]],
               memo: str = "") -> EntryResult:
    """Post one balanced entry of ``moves`` (account id, signed amount) under ``key``.

    Raises InsufficientFunds (nothing is written; the caller's transaction must roll back),
    IdempotencyConflict, or ValueError for an unbalanced entry (a programming error).
    """
    if not key or len(key) > 160:
        raise ValueError("an entry key is 1 to 160 characters")
    lines = [(int(a), _check_amount(m)) for a, m in moves if m != 0]
    if len(lines) < 2:
        raise ValueError("an entry needs at least two non-zero postings")
    per_currency: dict[str, int] = {}
    deltas: dict[int, tuple[int, int]] = {}
    for account_id, amount in lines:
        cur = info(s, account_id).currency
        per_currency[cur] = per_currency.get(cur, 0) + amount
        net, debits = deltas.get(account_id, (0, 0))
        deltas[account_id] = (net + amount, debits + (-amount if amount < 0 else 0))
    if any(per_currency.values()):
        raise ValueError(f"entry {key} does not balance: {per_currency}")
    fingerprint = _fingerprint(kind, sorted(lines))
    entry_id = _new_entry(s, key, kind, fingerprint, memo)
    if entry_id is None:
        return _replay(s, key, fingerprint)
    balances = _apply(s, deltas)
    s.execute(Posting.__table__.insert(), [
        {"entry_id": entry_id, "account_id": a, "currency": info(s, a).currency, "amount": m}
        for a, m in lines])
    return EntryResult(entry_id, key, False, balances)


def transfer(s: Session, key: str, kind: str, debit: int, credit: int, amount: int,
             memo: str = "") -> EntryResult:
    """Move ``amount`` (> 0) from ``debit`` to ``credit`` in one entry."""
    if _check_amount(amount) <= 0:
        raise ValueError("a transfer amount is positive")
    return post_entry(s, key, kind, [(debit, -amount), (credit, amount)], memo)


# --- two-phase transfers ---

def reserve(s: Session, key: str, kind: str, debit: int, credit: int, amount: int,
            memo: str = "") -> PendingResult:
    """Reserve ``amount`` on ``debit`` for a later post (to ``credit``) or void."""
    if _check_amount(amount) <= 0:
        raise ValueError("a reserved amount is positive")
    if not key or len(key) > 160:
        raise ValueError("a transfer key is 1 to 160 characters")
    if info(s, debit).currency != info(s, credit).currency:
        raise ValueError("a transfer stays in one currency")
    fingerprint = _fingerprint(kind, debit, credit, amount)
    stmt = (dialect_insert(s, PendingTransfer)
            .values(key=key, kind=kind, fingerprint=fingerprint, debit_account_id=debit,
                    credit_account_id=credit, currency=info(s, debit).currency,
                    amount=amount, state="pending", memo=memo[:200], created_at=utcnow())
            .on_conflict_do_nothing(index_elements=["key"])
            .returning(PendingTransfer.__table__.c.id))
    row = s.execute(stmt).first()
    if row is None:
        p = s.execute(select(PendingTransfer).where(PendingTransfer.key == key)).scalar_one()
        if p.fingerprint != fingerprint:
            raise IdempotencyConflict(key)
        return PendingResult(p.id, key, p.state, p.amount, True, p.entry_id)
    table = LedgerAccount.__table__
    stmt = (update(table).where(table.c.id == debit)
            .values(reserved=table.c.reserved + amount).returning(table.c.id))
    if not info(s, debit).allow_negative:
        stmt = stmt.where(table.c.balance - table.c.reserved >= amount)
    if s.execute(stmt).first() is None:
        raise InsufficientFunds(debit)
    return PendingResult(row[0], key, "pending", amount, False)


def _resolve(s: Session, key: str, to: str) -> PendingResult:
    table = PendingTransfer.__table__
    row = s.execute(
        update(table).where(table.c.key == key, table.c.state == "pending")
        .values(state=to, resolved_at=utcnow())
        .returning(table.c.id, table.c.debit_account_id, table.c.credit_account_id,
                   table.c.amount, table.c.kind)).first()
    if row is None:
        p = s.execute(select(PendingTransfer).where(PendingTransfer.key == key)).scalar_one_or_none()
        if p is None:
            raise UnknownTransfer(key)
        if p.state != to:
            raise TransferNotPending(key, p.state)
        return PendingResult(p.id, key, p.state, p.amount, True, p.entry_id)
    pid, debit, credit, amount, kind = row
    accounts = LedgerAccount.__table__
    s.execute(update(accounts).where(accounts.c.id == debit)
              .values(reserved=accounts.c.reserved - amount))
    entry_id = None
    if to == "posted":
        result = post_entry(s, f"{key}#post", kind, [(debit, -amount), (credit, amount)])
        entry_id = result.entry_id
        s.execute(update(table).where(table.c.id == pid).values(entry_id=entry_id))
    return PendingResult(pid, key, to, amount, False, entry_id)


def post_pending(s: Session, key: str) -> PendingResult:
    """Complete a reservation: the amount moves from debit to credit (once)."""
    return _resolve(s, key, "posted")


def void_pending(s: Session, key: str) -> PendingResult:
    """Cancel a reservation: the amount is available again (once)."""
    return _resolve(s, key, "voided")


# --- reading ---

@dataclass(frozen=True)
class Balance:
    currency: str
    balance: int
    reserved: int

    @property
    def available(self) -> int:
        return self.balance - self.reserved


def player_balances(s: Session, player_id: str) -> dict[str, Balance]:
    rows = s.execute(select(LedgerAccount.currency, LedgerAccount.balance,
                            LedgerAccount.reserved)
                     .where(LedgerAccount.owner == player_id,
                            LedgerAccount.kind == "player")).all()
    return {r.currency: Balance(r.currency, r.balance, r.reserved) for r in rows}


def balance_of(s: Session, account_id: int, lock: bool = False) -> Balance:
    """One account's balance (``lock``: FOR UPDATE, for a decision made on it)."""
    q = select(LedgerAccount.currency, LedgerAccount.balance, LedgerAccount.reserved).where(
        LedgerAccount.id == account_id)
    r = s.execute(q.with_for_update() if lock else q).one()
    return Balance(r.currency, r.balance, r.reserved)


def house_total(s: Session, currency_code: str, kind: str) -> int:
    """Sum of a house account over its shards (an int: Postgres sums BIGINT as NUMERIC)."""
    return int(s.execute(select(func.coalesce(func.sum(LedgerAccount.balance), 0)).where(
        LedgerAccount.owner == HOUSE, LedgerAccount.currency == currency_code,
        LedgerAccount.kind == kind)).scalar_one())


@dataclass(frozen=True)
class EntryLine:
    entry_id: int
    key: str
    kind: str
    memo: str
    at: str
    currency: str
    amount: int
    balance_kind: str


def entries_of(s: Session, owner: str, limit: int = 50, before_id: int | None = None
               ) -> list[EntryLine]:
    """The postings of ``owner``'s accounts, newest first."""
    q = (select(Posting.entry_id, JournalEntry.key, JournalEntry.kind, JournalEntry.memo,
                JournalEntry.created_at, Posting.currency, Posting.amount, LedgerAccount.kind)
         .join(JournalEntry, JournalEntry.id == Posting.entry_id)
         .join(LedgerAccount, LedgerAccount.id == Posting.account_id)
         .where(LedgerAccount.owner == owner)
         .order_by(Posting.id.desc()).limit(limit))
    if before_id is not None:
        q = q.where(Posting.entry_id < before_id)
    return [EntryLine(r[0], r[1], r[2], r[3], r[4].strftime("%Y-%m-%d %H:%M:%S"), r[5],
                      r[6], r[7]) for r in s.execute(q)]


# --- invariants (shared/reference/TRUST.md) ---

@dataclass
class Finding:
    check: str
    description: str
    violations: int = 0
    examples: list[str] = field(default_factory=list)


def _examples(rows: Iterable[Sequence[object]], limit: int = 5) -> tuple[int, list[str]]:
    rows = list(rows)
    return len(rows), [" ".join(str(v) for v in r) for r in rows[:limit]]


def check_invariants(s: Session) -> list[Finding]:
    """Recompute the ledger's invariants from the postings; one Finding per check."""
    out: list[Finding] = []

    def run(check: str, description: str, sql: str) -> None:
        n, ex = _examples(s.execute(text(sql)))
        out.append(Finding(check, description, n, ex))

    run("entries_balance", "every entry's postings sum to zero per currency",
        """SELECT entry_id, currency, SUM(amount) FROM postings
           GROUP BY entry_id, currency HAVING SUM(amount) <> 0""")
    run("entries_have_postings", "every entry has at least two postings",
        """SELECT e.id, e.key FROM journal_entries e
           LEFT JOIN postings p ON p.entry_id = e.id
           GROUP BY e.id, e.key HAVING COUNT(p.id) < 2""")
    run("posting_currency", "every posting is in its account's currency",
        """SELECT p.id, p.currency, a.currency FROM postings p
           JOIN ledger_accounts a ON a.id = p.account_id WHERE p.currency <> a.currency""")
    run("balances_match_postings", "each stored balance equals the sum of its postings",
        """SELECT a.id, a.owner, a.currency, a.kind, a.balance, COALESCE(p.total, 0)
           FROM ledger_accounts a LEFT JOIN (
             SELECT account_id, SUM(amount) AS total FROM postings GROUP BY account_id
           ) p ON p.account_id = a.id
           WHERE a.balance <> COALESCE(p.total, 0)""")
    run("reserved_match_pending", "each reserved amount equals its pending transfers",
        """SELECT a.id, a.reserved, COALESCE(p.total, 0) FROM ledger_accounts a
           LEFT JOIN (SELECT debit_account_id, SUM(amount) AS total FROM pending_transfers
                      WHERE state = 'pending' GROUP BY debit_account_id) p
             ON p.debit_account_id = a.id
           WHERE a.reserved <> COALESCE(p.total, 0)""")
    run("no_negative_balance", "no player's available balance is negative",
        """SELECT id, owner, currency, balance, reserved FROM ledger_accounts
           WHERE NOT allow_negative AND balance - reserved < 0""")
    run("books_balance", "liabilities + house equity = custody, per currency",
        """SELECT currency, SUM(balance) FROM ledger_accounts
           GROUP BY currency HAVING SUM(balance) <> 0""")
    run("keys_once", "each idempotency key is applied at most once",
        """SELECT key, COUNT(*) FROM journal_entries GROUP BY key HAVING COUNT(*) > 1
           UNION ALL
           SELECT key, COUNT(*) FROM pending_transfers GROUP BY key HAVING COUNT(*) > 1""")
    run("posted_transfers_once", "each posted reservation has exactly one entry",
        """SELECT t.key, t.state, t.entry_id FROM pending_transfers t
           LEFT JOIN journal_entries e ON e.id = t.entry_id
           WHERE (t.state = 'posted') <> (e.id IS NOT NULL)""")
    run("bets_recorded_once", "each settled bet has its ledger entry, each bet entry a bet",
        """SELECT b.id, b.bet_key FROM bets b LEFT JOIN journal_entries e
             ON e.key = 'bet:' || b.player_id || ':' || b.bet_key
           WHERE e.id IS NULL
           UNION ALL
           SELECT e.id, e.key FROM journal_entries e
           LEFT JOIN bets b ON e.key = 'bet:' || b.player_id || ':' || b.bet_key
           WHERE e.kind = 'bet' AND b.id IS NULL""")
    return out
