"""Seed pairs of the provably-fair scheme (shared/reference/FAIRNESS.md).

A player has one *active* pair (its server seed's hash is shown; bets use it with the
next nonce) and one *next* pair (committed: its hash is shown too). Rotating reveals the
active server seed and promotes the next one. Server seeds are sealed with the keyring
until revealed, and no function here returns an unrevealed seed except ``active_inputs``,
the settlement writer's seed source (it draws outcomes in memory; the database checks
each nonce).

The rule: no server seed is revealed while any bet drawn from it is unsettled (a Mines
round in play). Knowing the seed would tell where the mines are. So ``rotate`` (and a new
client seed, which rotates) is refused with ``SeedsInUse`` while the active pair has an
open bet; it locks the pair's row first, the row every bet takes its nonce from, so a round
started concurrently is either seen or waits. And every function that hands out a revealed
seed withholds it while a bet of its pair is open (a round left open on a pair revealed
before this rule existed: the bet path voids such a round, see ``games.bets``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from casino_app.core.clock import utcnow
from casino_app.core.db import ledger_tx
from casino_app.games import fairness
from casino_app.games.models import Bet, SeedPair, server_seed_context
from casino_app.payments.settlement import SeedInputs
from casino_app.security.crypto import keyring


class SeedsInUse(Exception):
    """Seeds cannot change while a bet drawn from them is unsettled; ``str(exc)`` is the
    message for the player."""

    def __init__(self) -> None:
        super().__init__("Finish your open Mines round first: your seeds cannot change while "
                         "a round drawn from them is in play (changing them would reveal "
                         "its server seed).")


def _context(player_id: str, seed_hash: str) -> str:
    return server_seed_context(player_id, seed_hash)


def _new_pair(player_id: str, state: str, client_seed: str = "") -> SeedPair:
    seed = fairness.new_server_seed()
    digest = fairness.hash_server_seed(seed)
    now = utcnow()
    return SeedPair(player_id=player_id, state=state, server_seed_hash=digest,
                    server_seed_sealed=keyring().seal(seed.encode(), _context(player_id, digest)),
                    client_seed=client_seed, nonce=0, created_at=now,
                    activated_at=now if state == "active" else None)


def _open(pair_player: str, digest: str, sealed: bytes) -> str:
    return keyring().open(sealed, _context(pair_player, digest)).decode()


def ensure(player_id: str) -> None:
    """Give the player an active and a next pair if they have none (idempotent)."""
    with ledger_tx(readonly=True) as s:
        states = set(s.scalars(select(SeedPair.state).where(
            SeedPair.player_id == player_id, SeedPair.state != "revealed")))
    if {"active", "next"} <= states:
        return
    try:
        with ledger_tx() as s:
            states = set(s.scalars(select(SeedPair.state).where(
                SeedPair.player_id == player_id, SeedPair.state != "revealed")))
            if "active" not in states:
                s.add(_new_pair(player_id, "active", fairness.new_client_seed()))
            if "next" not in states:
                s.add(_new_pair(player_id, "next"))
    except IntegrityError:
        pass  # created by a concurrent request: same outcome


def active_inputs(player_ids: Sequence[str]) -> dict[str, SeedInputs]:
    """The active pairs of ``player_ids`` (made first for a player who has none), with
    their server seeds opened: the settlement writer's seed source. It keeps them in
    memory and draws nonces from them; the batch checks each nonce against the row."""
    def load() -> dict[str, SeedInputs]:
        with ledger_tx(readonly=True) as s:
            rows = s.execute(select(
                SeedPair.player_id, SeedPair.id, SeedPair.server_seed_sealed,
                SeedPair.server_seed_hash, SeedPair.client_seed, SeedPair.nonce).where(
                SeedPair.player_id.in_(list(player_ids)), SeedPair.state == "active")).all()
        return {r.player_id: SeedInputs(r.id, _open(r.player_id, r.server_seed_hash,
                                                    bytes(r.server_seed_sealed)),
                                        r.server_seed_hash, r.client_seed, r.nonce)
                for r in rows}

    found = load()
    missing = [p for p in player_ids if p not in found]
    if missing:
        for p in missing:
            ensure(p)
        found = load()
    return found


@dataclass(frozen=True)
class SeedView:
    server_seed_hash: str
    client_seed: str
    nonce: int
    next_server_seed_hash: str
    in_use: bool = False  # a bet of the active pair is open: the seeds cannot change now


@dataclass(frozen=True)
class RevealedSeed:
    pair_id: int
    server_seed: str    # "" while withheld
    server_seed_hash: str
    client_seed: str
    bets: int           # nonces 0 .. bets-1 were used
    activated_at: datetime | None
    revealed_at: datetime | None
    withheld: bool = False  # a bet of this pair is still open: the seed is not shown


def _open_bet_of(pair_id_column):  # noqa: ANN001, ANN202
    """EXISTS: an unsettled bet was drawn from the pair ``pair_id_column``."""
    return exists().where(Bet.seed_pair_id == pair_id_column, Bet.state == "open")


def has_open_bets(s: Session, pair_id: int) -> bool:
    return bool(s.execute(select(_open_bet_of(pair_id))).scalar())


def current(player_id: str) -> SeedView:
    ensure(player_id)
    with ledger_tx(readonly=True) as s:
        pairs = {p.state: p for p in s.scalars(select(SeedPair).where(
            SeedPair.player_id == player_id, SeedPair.state != "revealed"))}
        a, n = pairs["active"], pairs["next"]
        in_use = has_open_bets(s, a.id)
    return SeedView(a.server_seed_hash, a.client_seed, a.nonce, n.server_seed_hash, in_use)


def rotate(player_id: str, client_seed: object = None) -> RevealedSeed:
    """Reveal the active server seed, make the next pair active with ``client_seed`` (or a
    random one), and commit a new next seed. Returns the revealed pair."""
    new_client = (fairness.new_client_seed() if client_seed in (None, "")
                  else fairness.validate_client_seed(client_seed))  # type: ignore[arg-type]
    ensure(player_id)
    with ledger_tx() as s:
        t = SeedPair.__table__
        now = utcnow()
        # Lock the active pair first: a bet takes its nonce from this row, so a round being
        # started now has either committed (and is seen below) or waits for this rotation.
        active = s.execute(select(t.c.id).where(t.c.player_id == player_id,
                                                t.c.state == "active").with_for_update()
                           ).scalar_one()
        if has_open_bets(s, active):
            raise SeedsInUse()
        old = s.execute(update(t).where(t.c.player_id == player_id, t.c.state == "active")
                        .values(state="revealed", revealed_at=now)
                        .returning(t.c.id, t.c.server_seed_sealed, t.c.server_seed_hash,
                                   t.c.client_seed, t.c.nonce, t.c.activated_at)).one()
        seed = _open(player_id, old.server_seed_hash, old.server_seed_sealed)
        s.execute(update(t).where(t.c.id == old.id).values(revealed_seed=seed))
        s.execute(update(t).where(t.c.player_id == player_id, t.c.state == "next")
                  .values(state="active", client_seed=new_client, activated_at=now))
        s.add(_new_pair(player_id, "next"))
    return RevealedSeed(old.id, seed, old.server_seed_hash, old.client_seed, old.nonce,
                        old.activated_at, now)


def revealed(player_id: str, limit: int = 50) -> list[RevealedSeed]:
    """The player's revealed pairs, newest first; a pair with an open bet is withheld."""
    with ledger_tx(readonly=True) as s:
        rows = s.execute(select(SeedPair, _open_bet_of(SeedPair.id).label("busy")).where(
            SeedPair.player_id == player_id, SeedPair.state == "revealed")
            .order_by(SeedPair.id.desc()).limit(limit)).all()
    return [RevealedSeed(p.id, "" if busy else p.revealed_seed or "", p.server_seed_hash,
                         p.client_seed, p.nonce, p.activated_at, p.revealed_at, bool(busy))
            for p, busy in rows]


def revealed_seeds_of(s: Session, pair_ids: set[int]) -> dict[int, str]:
    """The server seeds of those of ``pair_ids`` that have been revealed and have no open
    bet (the only way the bet path reads a seed back, so no recall can show a seed that an
    unsettled bet depends on)."""
    if not pair_ids:
        return {}
    rows = s.execute(select(SeedPair.id, SeedPair.revealed_seed).where(
        SeedPair.id.in_(pair_ids), SeedPair.state == "revealed",
        ~_open_bet_of(SeedPair.id)))
    return {r.id: r.revealed_seed for r in rows}


def revealed_seed_of(s: Session, pair_id: int) -> str | None:
    """The server seed of pair ``pair_id`` if it has been revealed (and no bet of it is
    open), else None."""
    return revealed_seeds_of(s, {pair_id}).get(pair_id)


def is_revealed(s: Session, pair_id: int) -> bool:
    """Whether pair ``pair_id`` was rotated out (its seed may have been shown)."""
    return s.execute(select(SeedPair.state).where(SeedPair.id == pair_id)
                     ).scalar_one_or_none() == "revealed"
