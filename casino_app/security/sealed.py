"""Sealed columns: personal data and secrets stored encrypted under the keyring.

One place knows every sealed column of both databases: the **registry**. A table module
declares its sealed columns here (``SealedField`` on a model registers itself; a column
read by hand calls ``register``), and ``casino keys rotate`` (``rotate``) re-seals every
registered column under the active key. A new sealed column (provider secrets, KYC files)
is one ``SealedField`` or ``register`` call next to its table, and rotation covers it.

Each value is bound to its table, column and row (associated data such as
``users.email:<player_id>``): a value copied to another row or column does not open.

Lookups by email go through a **blind index** (``email_index``): HMAC-SHA256 of the
lower-case address under a key kept beside the keyring, in the identity database's
``crypto_keys`` table, sealed under the keyring like any other value. It is created on
first use; key rotation re-seals it and never changes it, so no index is recomputed.
"""

from __future__ import annotations

import secrets
import sys
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import IntegrityError

from casino_app.core.clock import utcnow
from casino_app.core.db import IdentityBase, databases, identity_tx, ledger_tx
from casino_app.security.audit import SYSTEM, AuditAction, record
from casino_app.security.crypto import (
    DecryptionError,
    Keyring,
    blind_index,
    keyring,
    normalise_email,
)

# --- the registry ----------------------------------------------------------------------


@dataclass(frozen=True)
class SealedColumn:
    """A column of sealed values: where it is, and the context each row's value is
    bound to (computed from the row's ``needs`` columns)."""

    database: str  # "identity" or "ledger"
    table: str
    column: str
    context: Callable[[Mapping[str, Any]], str]
    needs: tuple[str, ...] = ()
    key: str = "id"

    @property
    def name(self) -> str:
        return f"{self.table}.{self.column}"


_REGISTRY: dict[tuple[str, str, str], SealedColumn] = {}


def register(database: str, table: str, column: str, *,
             context: Callable[[Mapping[str, Any]], str], needs: tuple[str, ...] = (),
             key: str = "id") -> SealedColumn:
    """Declare a sealed column (idempotent for the same place)."""
    if database not in ("identity", "ledger"):
        raise ValueError(f"unknown database {database!r}")
    entry = SealedColumn(database, table, column, context, tuple(needs), key)
    _REGISTRY[(database, table, column)] = entry
    return entry


def registered() -> list[SealedColumn]:
    """Every sealed column declared so far (import ``casino_app.migrations``, the table
    registry, to have them all)."""
    return sorted(_REGISTRY.values(), key=lambda c: (c.database, c.table, c.column))


class SealedField:
    """The plain value of a sealed column on a model: reading opens it, assigning seals
    it, bound to ``<table>.<name>:<row>`` where ``row`` is a column that names the row
    and is set before the value is (``player_id``, ``token_hash``: known before the
    INSERT, unlike an autoincrement id). ``kind`` is ``str`` or ``date``.

    Not a query expression: ``User.email == x`` raises; look up by the blind index."""

    def __init__(self, column: str, *, row: str, kind: type = str,
                 nullable_row: bool = False) -> None:
        self.column = column
        self.row = row
        self.kind = kind
        self.nullable_row = nullable_row
        self.name = ""
        self.prefix = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        table = owner.__dict__["__tablename__"]
        self.prefix = f"{table}.{name}"
        database = "identity" if issubclass(owner, IdentityBase) else "ledger"
        row, prefix = self.row, self.prefix
        register(database, table, self.column, needs=(row,),
                 context=lambda r: f"{prefix}:{r[row]}")

    def context(self, instance: object) -> str:
        row = getattr(instance, self.row)
        if (row is None and not self.nullable_row) or row == "":
            raise ValueError(f"{self.prefix}: set {self.row} before {self.name} "
                             "(the value is bound to it)")
        return f"{self.prefix}:{row}"

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        if instance is None:
            return self
        blob = getattr(instance, self.column)
        if blob is None:
            return None
        return self._plain(keyring().open(blob, self.context(instance)))

    def open_for(self, blob: bytes | None, row: object) -> Any:
        """The plain value of ``blob`` read without the ORM (a row's column), for the row
        named by ``row`` (its ``player_id``, say)."""
        if blob is None:
            return None
        return self._plain(keyring().open(blob, f"{self.prefix}:{row}"))

    def _plain(self, raw: bytes) -> Any:
        plain = raw.decode()
        return date.fromisoformat(plain) if self.kind is date else plain

    def __set__(self, instance: object, value: Any) -> None:
        if value is None:
            setattr(instance, self.column, None)
            return
        if self.kind is date:
            if not isinstance(value, date):
                raise TypeError(f"{self.prefix} takes a date")
            plain = value.isoformat()
        else:
            if not isinstance(value, str):
                raise TypeError(f"{self.prefix} takes a str")
            plain = value
        setattr(instance, self.column, keyring().seal(plain.encode(), self.context(instance)))

    def __eq__(self, other: object) -> bool:
        raise TypeError(f"{self.prefix} is sealed: it cannot be compared in a query "
                        "(look up by its blind index)")

    __hash__ = object.__hash__


# --- the blind index of emails -----------------------------------------------------------

EMAIL_INDEX_KEY = "email-index"
_KEY_CONTEXT = "crypto_keys.sealed:{}"
register("identity", "crypto_keys", "sealed", needs=("name",), key="name",
         context=lambda r: _KEY_CONTEXT.format(r["name"]))

_index_keys: weakref.WeakKeyDictionary[Engine, bytes] = weakref.WeakKeyDictionary()
_index_lock = threading.Lock()


def load_index_key(conn: Connection, ring: Keyring, *, create: bool = True) -> bytes | None:
    """The email index key stored in the identity database behind ``conn``, created (and
    sealed under ``ring``) if there is none and ``create``. Used by the migration on its
    own connection; everything else calls ``email_index``."""
    row = conn.execute(text("SELECT sealed FROM crypto_keys WHERE name = :n"),
                       {"n": EMAIL_INDEX_KEY}).first()
    if row is not None:
        return ring.open(row[0], _KEY_CONTEXT.format(EMAIL_INDEX_KEY))
    if not create:
        return None
    key = secrets.token_bytes(32)
    conn.execute(text("INSERT INTO crypto_keys (name, sealed, created_at) "
                      "VALUES (:n, :s, :t)"),
                 {"n": EMAIL_INDEX_KEY, "t": utcnow(),
                  "s": ring.seal(key, _KEY_CONTEXT.format(EMAIL_INDEX_KEY))})
    return key


def _index_key() -> bytes:
    engine = databases().identity_engine
    key = _index_keys.get(engine)
    if key is not None:
        return key
    with _index_lock:
        key = _index_keys.get(engine)
        if key is None:
            try:
                with engine.begin() as conn:
                    key = load_index_key(conn, keyring())
            except IntegrityError:  # another process created it at the same moment
                with engine.begin() as conn:
                    key = load_index_key(conn, keyring(), create=False)
            if key is None:
                raise RuntimeError("the email index key was neither found nor made")
            _index_keys[engine] = key
    return key


def email_index(email: str) -> str:
    """The blind index of an email (normalised: trimmed, lower-case).

    The first call of a process reads the key (creating it in a fresh database) on its
    own connection: on SQLite call this before opening a write transaction."""
    return blind_index(_index_key(), normalise_email(email))


def reset_index_key_cache() -> None:
    _index_keys.clear()


# --- rotation ----------------------------------------------------------------------------

class RotationError(Exception):
    """A sealed value does not open: nothing was changed (``str`` names where)."""


@dataclass
class ColumnCount:
    name: str
    resealed: int = 0      # re-sealed under the active key by this run
    current: int = 0       # already under the active key: left as they were
    changed: int = 0       # changed by someone else during the run: left to them


def _tx(database: str, readonly: bool) -> Any:
    return identity_tx(readonly) if database == "identity" else ledger_tx(readonly)


def _groups() -> Iterator[tuple[tuple[str, str, str], list[SealedColumn]]]:
    groups: dict[tuple[str, str, str], list[SealedColumn]] = {}
    for c in registered():
        groups.setdefault((c.database, c.table, c.key), []).append(c)
    yield from groups.items()


def _batches(database: str, table: str, key: str, cols: list[SealedColumn], batch: int,
             *, readonly: bool = False) -> Iterator[tuple[Any, list[Any]]]:
    """(transaction, rows) in key order; each batch in its own committed transaction."""
    needs = sorted({n for c in cols for n in c.needs} - {key})
    names = [key, *needs, *(c.column for c in cols)]
    sql = text(f"SELECT {', '.join(names)} FROM {table} WHERE {key} > :last "  # noqa: S608 - names from the sealed-column registry, values bound
               f"ORDER BY {key} LIMIT :n")
    last: Any = None
    while True:
        with _tx(database, readonly) as s:
            if last is None:
                first = text(f"SELECT {', '.join(names)} FROM {table} "  # noqa: S608 - names from the sealed-column registry, values bound
                             f"ORDER BY {key} LIMIT :n")
                rows = s.execute(first, {"n": batch}).mappings().all()
            else:
                rows = s.execute(sql, {"last": last, "n": batch}).mappings().all()
            if not rows:
                return
            yield s, list(rows)
            last = rows[-1][key]


def check(batch: int = 500) -> list[str]:
    """Open every registered sealed value; the problems found (empty: all open)."""
    ring = keyring()
    problems: list[str] = []
    for (database, table, key), cols in _groups():
        for _s, rows in _batches(database, table, key, cols, batch, readonly=True):
            for r in rows:
                for c in cols:
                    if r[c.column] is None:
                        continue
                    try:
                        ring.open(r[c.column], c.context(r))
                    except DecryptionError as exc:
                        problems.append(f"{c.name} row {r[key]}: {exc}")
    return problems


def rotate(batch: int = 200) -> list[ColumnCount]:
    """Re-seal every registered value whose key is not the active one, in batches of
    ``batch`` rows, each batch its own transaction (a crash leaves every value sealed
    under the old or the new key: all open while both are in the keyring; a second run
    does the rest). First every value is opened: if one does not open, RotationError
    and nothing changes. A value changed meanwhile by someone else is left as they
    wrote it (compare-and-set). Returns a count per column."""
    if "casino_app.migrations" not in sys.modules:  # no import: it imports every layer
        raise RuntimeError("import casino_app.migrations first: its table modules declare "
                           "every sealed column")
    problems = check()
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise RotationError("; ".join(problems[:5]) + more)
    ring = keyring()
    counts = {c.name: ColumnCount(c.name) for c in registered()}
    for (database, table, key), cols in _groups():
        for s, rows in _batches(database, table, key, cols, batch):
            for r in rows:
                for c in cols:
                    old = r[c.column]
                    if old is None:
                        continue
                    count = counts[c.name]
                    if not ring.needs_rotation(old):
                        count.current += 1
                        continue
                    new = ring.reseal(bytes(old), c.context(r))
                    done = s.execute(text(
                        f"UPDATE {table} SET {c.column} = :new "  # noqa: S608 - names from the sealed-column registry, values bound
                        f"WHERE {key} = :k AND {c.column} = :old"),
                        {"new": new, "k": r[key], "old": old}).rowcount
                    if done:
                        count.resealed += 1
                    else:
                        count.changed += 1
    with identity_tx() as s:
        record(s, AuditAction.keys_rotated, SYSTEM, None, key_id=ring.active_id,
               values=sum(c.resealed for c in counts.values()))
    return list(counts.values())
