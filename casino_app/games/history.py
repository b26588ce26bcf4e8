"""Reading bets back: history with filters, one bet's recall, stats and a profit series."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from casino_app.core.db import ledger_tx
from casino_app.games import seeds
from casino_app.games.bets import BetResult, _view
from casino_app.games.house import GAMES
from casino_app.games.models import Bet, Favourite, PlayerStats
from casino_app.games.providers import catalogue

PAGE = 20
RESULTS = ("won", "lost", "open")


@dataclass(frozen=True)
class BetFilter:
    game: str = ""
    currency: str = ""
    result: str = ""      # won (paid more than the stake), lost (less), open or "" for all

    def clean(self) -> BetFilter:
        return BetFilter(self.game if self.game in GAMES else "",
                         self.currency if self.currency.isalpha() and len(self.currency) <= 8
                         else "",
                         self.result if self.result in RESULTS else "")


def bets_page(player_id: str, flt: BetFilter = BetFilter(), before_id: int | None = None,
              limit: int = PAGE) -> tuple[list[BetResult], bool]:
    """Newest first; returns (bets, there_are_more)."""
    flt = flt.clean()
    q = select(Bet).where(Bet.player_id == player_id).order_by(Bet.id.desc()).limit(limit + 1)
    if flt.game:
        q = q.where(Bet.game == flt.game)
    if flt.currency:
        q = q.where(Bet.currency == flt.currency)
    if flt.result == "open":
        q = q.where(Bet.state == "open")
    elif flt.result:
        # as players read a round: won only when it paid more than the stake; lost when
        # it paid less (a partial return is lost money); a round giving the stake back is
        # neither
        settled = Bet.state.in_(("won", "lost"))
        q = q.where(settled, Bet.payout > Bet.stake if flt.result == "won"
                    else Bet.payout < Bet.stake)
    if before_id is not None:
        q = q.where(Bet.id < before_id)
    with ledger_tx(readonly=True) as s:
        rows = s.scalars(q).all()
        revealed = seeds.revealed_seeds_of(s, {b.seed_pair_id for b in rows})
        views = [_view(b, server_seed=revealed.get(b.seed_pair_id)) for b in rows[:limit]]
    return views, len(rows) > limit


def bet(player_id: str, bet_id: int) -> BetResult | None:
    """One of the player's bets (None if it is not theirs)."""
    with ledger_tx(readonly=True) as s:
        b = s.execute(select(Bet).where(Bet.id == bet_id, Bet.player_id == player_id)
                      ).scalar_one_or_none()
        if b is None:
            return None
        return _view(b, server_seed=seeds.revealed_seed_of(s, b.seed_pair_id))


@dataclass(frozen=True)
class Stats:
    currency: str
    bets: int
    wagered: int
    paid: int
    best_mult_e4: int

    @property
    def profit(self) -> int:
        return self.paid - self.wagered


def stats(player_id: str) -> list[Stats]:
    with ledger_tx(readonly=True) as s:
        rows = s.scalars(select(PlayerStats).where(PlayerStats.player_id == player_id)
                         .order_by(PlayerStats.currency)).all()
    return [Stats(r.currency, r.bets, r.wagered, r.paid, r.best_mult_e4) for r in rows]


def profit_series(player_id: str, currency_code: str, limit: int = 200
                  ) -> list[tuple[int, int]]:
    """(bet id, cumulative profit) over the player's last ``limit`` settled bets."""
    with ledger_tx(readonly=True) as s:
        rows = s.execute(select(Bet.id, Bet.stake, Bet.payout).where(
            Bet.player_id == player_id, Bet.currency == currency_code, Bet.state != "open")
            .order_by(Bet.id.desc()).limit(limit)).all()
    total, out = 0, []
    for r in reversed(rows):
        total += r.payout - r.stake
        out.append((r.id, total))
    return out


def recent_games(player_id: str, limit: int = 5) -> list[str]:
    """Games the player played most recently, newest first."""
    with ledger_tx(readonly=True) as s:
        rows = s.execute(select(Bet.game, func.max(Bet.id).label("last"))
                         .where(Bet.player_id == player_id).group_by(Bet.game)
                         .order_by(func.max(Bet.id).desc()).limit(limit)).all()
    return [r.game for r in rows]


def favourites(player_id: str) -> list[str]:
    with ledger_tx(readonly=True) as s:
        return list(s.scalars(select(Favourite.game).where(Favourite.player_id == player_id)
                              .order_by(Favourite.created_at)))


def set_favourite(player_id: str, game: object, on: bool) -> list[str]:
    """Star a house game (its name) or a provider game (its catalogue key, ``p<id>``)."""
    if not isinstance(game, str) or (game not in GAMES and catalogue.by_key(game) is None):
        raise ValueError("Unknown game.")
    with ledger_tx() as s:
        row = s.get(Favourite, (player_id, game))
        if on and row is None:
            s.add(Favourite(player_id=player_id, game=game))
        elif not on and row is not None:
            s.delete(row)
    return favourites(player_id)
