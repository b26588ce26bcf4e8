"""The bet path: one service call per bet (cosmicpython's service layer).

``place_bet`` validates, rate-limits, draws the outcome from the player's active seed pair
and, in one ledger transaction, posts stake and payout as one balanced entry, records the
bet with its fairness inputs and updates the player's stats. The browser chooses the
``bet_key``: the same key again returns the first bet and moves nothing.

Mines is played in steps: ``place_bet`` takes the stake, ``reveal_tile`` opens tiles,
``cash_out`` pays; an open round lives in the database and survives reloads and restarts.
A player on hold can neither reveal nor cash out. An open round's server seed is never
shown (``games.seeds`` refuses to rotate it and withholds it). A round left open on a pair
that was revealed anyway (before that rule, or by an operator) cannot be played fairly any
more: its next step voids it, returning the stake (state ``void``).
"""

from __future__ import annotations

import json
import re
import threading
import time
import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from casino_app.core.clock import utcnow
from casino_app.core.db import ledger_tx
from casino_app.core.settings import get_settings
from casino_app.games import seeds
from casino_app.games.house import GAMES, GameError, mines_multiplier_e4
from casino_app.games.models import Bet, PlayerStats
from casino_app.payments import holds, ledger
from casino_app.payments.currencies import Currency, currency
from casino_app.security import ratelimit

E4 = 10_000
_KEY = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


class BetRefused(Exception):
    """A bet that was not placed; ``str(exc)`` is the message for the player."""


class InvalidBet(BetRefused):
    pass


class InsufficientBalance(BetRefused):
    def __init__(self) -> None:
        super().__init__("Insufficient balance for this bet.")


class OverExposure(BetRefused):
    pass


class OnHold(BetRefused):
    def __init__(self) -> None:
        super().__init__(holds.MESSAGE)


class TooFast(BetRefused):
    def __init__(self, retry_after: int):
        super().__init__(f"You are betting too fast. Try again in {retry_after} s.")


@dataclass(frozen=True)
class BetResult:
    bet_id: int
    bet_key: str
    game: str
    currency: str
    stake: int
    payout: int
    mult_e4: int
    state: str                 # open (Mines in play), won, lost, void (stake returned)
    params: dict[str, Any]
    outcome: Any               # Mines while open: None (the mines stay hidden)
    revealed: list[int]        # Mines: safe tiles opened so far
    next_mult_e4: int          # Mines: what cashing out now would pay (x 1e4)
    balance_before: int
    balance_after: int
    nonce: int
    client_seed: str
    server_seed_hash: str
    server_seed: str | None    # only once the pair is revealed
    created_at: datetime
    replayed: bool = False

    @property
    def profit(self) -> int:
        return self.payout - self.stake


def _shard(bet_key: str) -> int:
    return zlib.crc32(bet_key.encode()) % ledger.BANKROLL_SHARDS


def _entry_key(player_id: str, bet_key: str) -> str:
    return f"bet:{player_id}:{bet_key}"


def _game(name: object):  # noqa: ANN202
    game = GAMES.get(name) if isinstance(name, str) else None
    if game is None:
        raise InvalidBet(f"Unknown game. Choose one of {', '.join(GAMES)}.")
    return game


def _validate(player_id: str, game_name: object, currency_code: object, stake: object,
              params: object, bet_key: object):  # noqa: ANN202
    if not isinstance(bet_key, str) or not _KEY.match(bet_key):
        raise InvalidBet("Bad bet id: reload the page and try again.")
    game = _game(game_name)
    try:
        cur = currency(currency_code)
    except ValueError as exc:
        raise InvalidBet(str(exc)) from None
    if isinstance(stake, bool) or not isinstance(stake, int):
        raise InvalidBet("Enter a bet amount.")
    if stake < cur.min_bet:
        raise InvalidBet(f"The smallest bet is {cur.format(cur.min_bet)} {cur.code}.")
    if stake > cur.max_bet:
        raise InvalidBet(f"The largest bet is {cur.format(cur.max_bet)} {cur.code}.")
    if not isinstance(params, dict):
        raise InvalidBet("Bad game settings.")
    try:
        parsed = game.parse_params(params)
    except GameError as exc:
        raise InvalidBet(str(exc)) from None
    return game, cur, parsed


_bankroll_cache: dict[str, tuple[float, int]] = {}
_bankroll_lock = threading.Lock()


def _bankroll(currency_code: str, s: Session | None = None) -> int:
    """The house bankroll over all shards, cached for a second (the cap is a policy, not
    an invariant: the ledger itself never needs it). Read in ``s`` when given: a caller
    inside a transaction must not wait for a second pooled connection."""
    key = currency_code
    now = time.monotonic()
    hit = _bankroll_cache.get(key)
    if hit and now - hit[0] < 1.0:
        return hit[1]
    if s is not None:
        total = ledger.house_total(s, currency_code, "bankroll")
    else:
        with ledger_tx(readonly=True) as ro:
            total = ledger.house_total(ro, currency_code, "bankroll")
    with _bankroll_lock:
        _bankroll_cache[key] = (now, total)
    return total


def reset_bankroll_cache() -> None:
    _bankroll_cache.clear()


def max_win(cur: Currency, s: Session | None = None) -> int | None:
    """The largest net win one bet may have in ``cur`` (None: no cap, play money)."""
    if not cur.real_money:
        return None
    return max(0, _bankroll(cur.code, s)) * get_settings().exposure_cap_bps // E4


def _check_exposure(cur: Currency, stake: int, mult_e4: int, s: Session | None = None
                    ) -> None:
    cap = max_win(cur, s)
    if cap is None:
        return
    if stake * mult_e4 // E4 - stake > cap:
        raise OverExposure(
            f"This bet could win more than the house allows per bet "
            f"({cur.format(cap)} {cur.code}). Lower the amount or the multiplier.")


def _rate_limit(player_id: str) -> None:
    try:
        ratelimit.hit("bet", get_settings().rate_bets_player, player_id)
    except ratelimit.RateLimited as exc:
        raise TooFast(exc.retry_after) from None


_stats_upserts: dict[str, Any] = {}


def _stats(s: Session, player_id: str, cur: str, stake: int, payout: int, mult: int) -> None:
    dialect = s.get_bind().dialect.name
    stmt = _stats_upserts.get(dialect)
    if stmt is None:  # built once: building it costs more than running it
        t = PlayerStats.__table__
        ins = ledger.dialect_insert(s, t)
        greatest = func.greatest if dialect == "postgresql" else func.max
        stmt = _stats_upserts[dialect] = ins.on_conflict_do_update(
            index_elements=["player_id", "currency"],
            set_={"bets": t.c.bets + 1, "wagered": t.c.wagered + ins.excluded.wagered,
                  "paid": t.c.paid + ins.excluded.paid,
                  "best_mult_e4": greatest(t.c.best_mult_e4, ins.excluded.best_mult_e4),
                  "updated_at": ins.excluded.updated_at})
    s.execute(stmt, {"player_id": player_id, "currency": cur, "bets": 1, "wagered": stake,
                     "paid": payout, "best_mult_e4": mult, "updated_at": utcnow()})


def _view(b: Bet, replayed: bool = False, server_seed: str | None = None) -> BetResult:
    open_ = b.state == "open"
    revealed = json.loads(b.progress) if b.game == "mines" else []
    next_mult = 0
    params = json.loads(b.params)
    if b.game == "mines":
        next_mult = mines_multiplier_e4(params["mines"], len(revealed))
    return BetResult(b.id, b.bet_key, b.game, b.currency, b.stake, b.payout, b.mult_e4,
                     b.state, params, None if open_ else json.loads(b.outcome), revealed,
                     next_mult, b.balance_before, b.balance_after, b.nonce, b.client_seed,
                     b.server_seed_hash, server_seed, b.created_at, replayed)


def _params_json(parsed: Any) -> str:
    return json.dumps(parsed.to_json(), sort_keys=True, separators=(",", ":"))


_INSERT_BET = Bet.__table__.insert().returning(Bet.__table__.c.id)
_FIND_BET = select(Bet).where(Bet.player_id == bindparam("p_player"),
                              Bet.bet_key == bindparam("p_key"))


def _find(s: Session, player_id: str, bet_key: str, game: str, cur: str, stake: int,
          params_json: str) -> BetResult | None:
    """The bet already placed under ``bet_key`` (InvalidBet if its fields differ)."""
    b = s.execute(_FIND_BET, {"p_player": player_id, "p_key": bet_key}).scalar_one_or_none()
    if b is None:
        return None
    if (b.game, b.currency, b.stake, b.params) != (game, cur, stake, params_json):
        raise InvalidBet("This bet id was already used for another bet.")
    return _view(b, replayed=True, server_seed=seeds.revealed_seed_of(s, b.seed_pair_id))


def _found(s: Session, player_id: str, bet_key: str, game: str, cur: str, stake: int,
           params_json: str) -> BetResult:
    found = _find(s, player_id, bet_key, game, cur, stake, params_json)
    assert found is not None  # the row was seen in this transaction's first statement
    return found


# --- the Postgres bet path: two statements after BEGIN, then COMMIT ---
# The rows written are those of the generic path (ledger.post_entry, _INSERT_BET, _stats):
# same entry key, kind, fingerprint and memo; the same postings in the same order; the
# same conditional debit (``balance - reserved >= stake``, re-checked by Postgres on the
# latest row version) and the account rows locked in id order, as ledger._apply does.

_FIND_OR_DRAW = """
WITH found AS (
  SELECT 1 FROM bets WHERE player_id = %(p_player)s AND bet_key = %(p_key)s
), held AS (
  SELECT 1 FROM player_holds WHERE player_id = %(p_player)s AND released_at IS NULL
), drawn AS (
  UPDATE seed_pairs SET nonce = nonce + 1
  WHERE player_id = %(p_player)s AND state = 'active' AND NOT EXISTS (SELECT 1 FROM found)
    AND NOT EXISTS (SELECT 1 FROM held)
  RETURNING id, server_seed_sealed, server_seed_hash, client_seed, nonce
)
SELECT EXISTS (SELECT 1 FROM found), EXISTS (SELECT 1 FROM held), drawn.id,
       drawn.server_seed_sealed, drawn.server_seed_hash, drawn.client_seed, drawn.nonce
FROM (SELECT 1) AS one LEFT JOIN drawn ON true
"""


def _find_or_draw(s: Session, player_id: str, bet_key: str
                  ) -> tuple[bool, seeds.DrawInputs | None]:
    """(the bet id is taken, the draw inputs). When the id is taken nothing is written;
    otherwise the next nonce of the active pair is taken (the row stays locked).
    A player on hold (payments.holds) draws nothing: OnHold."""
    row = s.connection().exec_driver_sql(
        _FIND_OR_DRAW, {"p_player": player_id, "p_key": bet_key}).one()
    if row[0]:
        return True, None
    if row[1]:
        raise OnHold()
    return False, seeds.draw_inputs_of(player_id, row[2:])


def _settle_sql(player_first: bool, with_stats: bool) -> str:
    debit = "AND balance - reserved >= %(p_stake)s::bigint"
    first, second = ("pl", "bk") if player_first else ("bk", "pl")
    cond = {"pl": debit, "bk": ""}
    ids = {"pl": "%(p_player_acct)s", "bk": "%(p_bank_acct)s"}
    nets = {"pl": "%(p_payout)s::bigint - %(p_stake)s::bigint",
            "bk": "%(p_stake)s::bigint - %(p_payout)s::bigint"}
    stats = """, stats AS (
  INSERT INTO player_stats (player_id, currency, bets, wagered, paid, best_mult_e4,
                            updated_at)
  SELECT %(p_player)s, %(p_cur)s, 1, %(p_stake)s::bigint, %(p_payout)s::bigint,
         %(p_mult)s::bigint, %(p_now)s::timestamp
  FROM b
  ON CONFLICT (player_id, currency) DO UPDATE SET
    bets = player_stats.bets + 1, wagered = player_stats.wagered + excluded.wagered,
    paid = player_stats.paid + excluded.paid,
    best_mult_e4 = greatest(player_stats.best_mult_e4, excluded.best_mult_e4),
    updated_at = excluded.updated_at
)""" if with_stats else ""
    # only the constants above are interpolated; every value is a bound parameter
    return f"""
WITH e AS (
  INSERT INTO journal_entries (key, kind, fingerprint, memo, created_at)
  VALUES (%(p_entry_key)s, 'bet', %(p_fingerprint)s, %(p_memo)s, %(p_now)s::timestamp)
  ON CONFLICT (key) DO NOTHING
  RETURNING id
), {first} AS (
  UPDATE ledger_accounts SET balance = balance + ({nets[first]})
  WHERE id = {ids[first]} AND EXISTS (SELECT 1 FROM e) {cond[first]}
  RETURNING balance
), {second} AS (
  UPDATE ledger_accounts SET balance = balance + ({nets[second]})
  WHERE id = {ids[second]} AND EXISTS (SELECT 1 FROM {first}) {cond[second]}
  RETURNING balance
), p AS (
  INSERT INTO postings (entry_id, account_id, currency, amount)
  SELECT e.id, v.account_id, %(p_cur)s, v.amount
  FROM e, {second},
       unnest(%(p_accounts)s::integer[], %(p_amounts)s::bigint[]) WITH ORDINALITY
         AS v(account_id, amount, n)
  ORDER BY v.n
), b AS (
  INSERT INTO bets (player_id, bet_key, game, currency, stake, payout, mult_e4, state,
                    params, outcome, progress, seed_pair_id, nonce, client_seed,
                    server_seed_hash, balance_before, balance_after, created_at, settled_at)
  SELECT %(p_player)s, %(p_key)s, %(p_game)s, %(p_cur)s, %(p_stake)s::bigint,
         %(p_payout)s::bigint, %(p_mult)s::bigint, %(p_state)s, %(p_params)s,
         %(p_outcome)s, '[]', %(p_pair)s,
         %(p_nonce)s, %(p_client_seed)s, %(p_seed_hash)s,
         pl.balance - %(p_payout)s::bigint + %(p_stake)s::bigint, pl.balance,
         %(p_now)s::timestamp, %(p_settled)s::timestamp
  FROM pl, bk
  RETURNING id
){stats}
SELECT (SELECT id FROM e), (SELECT balance FROM pl), (SELECT id FROM b)
"""  # noqa: S608


_SETTLE_SQL = {(first, stats): _settle_sql(first, stats)
               for first in (True, False) for stats in (True, False)}


def _settle_pg(s: Session, player_id: str, game: str, cur: str, stake: int, payout: int,
               mult: int, params_json: str, outcome: Any, bet_key: str,
               inputs: seeds.DrawInputs, player: int, bank: int, is_mines: bool
               ) -> BetResult:
    """Post the bet's entry, record the bet and its stats in one statement (Postgres)."""
    lines = [(a, m) for a, m in ((player, -stake), (bank, stake), (bank, -payout),
                                 (player, payout)) if m != 0]
    for _a, m in lines:
        ledger._check_amount(m)
    key = _entry_key(player_id, bet_key)
    now = utcnow()
    state = "open" if is_mines else ("won" if payout > 0 else "lost")
    outcome_json = json.dumps(outcome)
    settled = None if is_mines else now
    row = s.connection().exec_driver_sql(_SETTLE_SQL[(player < bank, not is_mines)], {
        "p_entry_key": key, "p_fingerprint": ledger._fingerprint("bet", sorted(lines)),
        "p_memo": f"{game} bet {bet_key}"[:200], "p_now": now,
        "p_player_acct": player, "p_bank_acct": bank,
        "p_accounts": [a for a, _m in lines], "p_amounts": [m for _a, m in lines],
        "p_player": player_id, "p_key": bet_key, "p_game": game, "p_cur": cur,
        "p_stake": stake, "p_payout": payout, "p_mult": mult, "p_state": state,
        "p_params": params_json, "p_outcome": outcome_json, "p_pair": inputs.pair_id,
        "p_nonce": inputs.nonce, "p_client_seed": inputs.client_seed,
        "p_seed_hash": inputs.server_seed_hash, "p_settled": settled,
    }).one()
    entry_id, after, bet_id = row
    if entry_id is None:  # the entry key exists: the same bet id raced with itself
        raise ledger.IdempotencyConflict(key)
    if after is None:
        raise InsufficientBalance()
    return BetResult(bet_id, bet_key, game, cur, stake, payout, mult, state,
                     json.loads(params_json), None if is_mines else json.loads(outcome_json),
                     [], mines_multiplier_e4(json.loads(params_json)["mines"], 0)
                     if is_mines else 0, after - payout + stake, after, inputs.nonce,
                     inputs.client_seed, inputs.server_seed_hash, None, now)


def _replay(player_id: str, bet_key: str, game: str, cur: str, stake: int,
            params_json: str) -> BetResult | None:
    with ledger_tx(readonly=True) as s:
        return _find(s, player_id, bet_key, game, cur, stake, params_json)


# Postgres settles a house bet in two statements (_find_or_draw, _settle_pg); tests turn
# this off to compare its rows with the generic path's (ledger.post_entry).
PG_FAST_PATH = True


class _NoSeeds(Exception):
    """The draw found no active seed pair: none yet (first bet), or a rotation took it."""


_DRAW_ATTEMPTS = 4  # each retry follows a rotation that committed (or the first pairs)


def place_bet(player_id: str, game_name: object, currency_code: object, stake: object,
              params: object, bet_key: object) -> BetResult:
    """Place one bet (Mines: start a round). Raises BetRefused with a clear message.

    One transaction: a bet id already used answers with its bet, before the exposure cap
    and the rate limit are asked; then the outcome is drawn and the money posted.
    """
    game, cur, parsed = _validate(player_id, game_name, currency_code, stake, params, bet_key)
    assert isinstance(stake, int) and isinstance(bet_key, str)
    params_json = _params_json(parsed)
    is_mines = game.name == "mines"
    max_mult = (mines_multiplier_e4(parsed.mines, 1) if is_mines
                else game.max_multiplier_e4(parsed))
    try:
        # No active pair: the player's first bet (their pairs are made now), or a rotation
        # that committed while this draw waited for the pair's row (the pair it waited
        # for is revealed now; the next one is active). Either way, draw again.
        for attempt in range(_DRAW_ATTEMPTS):
            try:
                return _settle(player_id, game, cur, stake, parsed, params_json, bet_key,
                               max_mult, count=attempt == 0)
            except _NoSeeds:
                seeds.ensure(player_id)
        raise InvalidBet("Your seeds are being set up. Try again.")
    except (ledger.IdempotencyConflict, IntegrityError):
        # the same bet id raced with itself: the first one won, answer with it
        found = _replay(player_id, bet_key, game.name, cur.code, stake, params_json)
        if found is None:
            if is_mines:
                raise InvalidBet("Finish your open Mines round first.") from None
            raise
        return found


def _settle(player_id: str, game, cur: Currency, stake: int, parsed: Any,  # noqa: ANN001
            params_json: str, bet_key: str, max_mult: int, count: bool) -> BetResult:
    is_mines = game.name == "mines"
    with ledger_tx() as s:
        pg = PG_FAST_PATH and s.get_bind().dialect.name == "postgresql"
        if pg:  # one round trip: the bet-id lookup and (if the id is new) the nonce draw
            taken, inputs = _find_or_draw(s, player_id, bet_key)
            if taken:
                return _found(s, player_id, bet_key, game.name, cur.code, stake,
                              params_json)
        else:
            found = _find(s, player_id, bet_key, game.name, cur.code, stake, params_json)
            if found is not None:
                return found
            if holds.on_hold(s, player_id):
                raise OnHold()
        _check_exposure(cur, stake, max_mult, s)
        if count:
            _rate_limit(player_id)
        if not pg:
            inputs = seeds._draw_inputs(s, player_id)
        if inputs is None:
            raise _NoSeeds
        outcome = game.draw(inputs.server_seed, inputs.client_seed, inputs.nonce, parsed)
        mult = 0 if is_mines else game.multiplier_e4(parsed, outcome)
        payout = stake * mult // E4
        player = ledger.player_account(s, player_id, cur.code)
        bank = ledger.house_account(s, cur.code, "bankroll", _shard(bet_key))
        if pg and not ledger.info(s, player).allow_negative:
            return _settle_pg(s, player_id, game.name, cur.code, stake, payout, mult,
                              params_json, outcome, bet_key, inputs, player, bank, is_mines)
        try:
            result = ledger.post_entry(
                s, _entry_key(player_id, bet_key), "bet",
                [(player, -stake), (bank, stake), (bank, -payout), (player, payout)],
                memo=f"{game.name} bet {bet_key}")
        except ledger.InsufficientFunds:
            raise InsufficientBalance() from None
        if result.replayed:
            raise ledger.IdempotencyConflict(result.key)
        after = result.balances[player]
        now = utcnow()
        row = dict(player_id=player_id, bet_key=bet_key, game=game.name, currency=cur.code,
                   stake=stake, payout=payout, mult_e4=mult,
                   state="open" if is_mines else ("won" if payout > 0 else "lost"),
                   params=params_json, outcome=json.dumps(outcome), progress="[]",
                   seed_pair_id=inputs.pair_id, nonce=inputs.nonce,
                   client_seed=inputs.client_seed, server_seed_hash=inputs.server_seed_hash,
                   balance_before=after - payout + stake, balance_after=after,
                   created_at=now, settled_at=None if is_mines else now)
        bet_id = s.execute(_INSERT_BET, row).scalar_one()  # Core: no unit-of-work cost
        if not is_mines:
            _stats(s, player_id, cur.code, stake, payout, mult)
        return _view(Bet(id=bet_id, **row))  # a detached copy, for the answer


# --- Mines ---

def _open_round(s: Session, player_id: str, bet_id: object) -> Bet:
    if isinstance(bet_id, bool) or not isinstance(bet_id, int) or not 0 < bet_id < 2**62:
        raise InvalidBet("No such round.")
    b = s.execute(select(Bet).where(Bet.id == bet_id, Bet.player_id == player_id,
                                    Bet.game == "mines").with_for_update()
                  ).scalar_one_or_none()
    if b is None:
        raise InvalidBet("No such round.")
    return b


def _step_allowed(s: Session, b: Bet) -> bool:
    """Before a step of an open round: False when the round was voided here (its seed pair
    had been revealed); OnHold when the player is on hold (nothing changes)."""
    if seeds.is_revealed(s, b.seed_pair_id):
        _void(s, b)
        return False
    if holds.on_hold(s, b.player_id):
        raise OnHold()
    return True


def _void(s: Session, b: Bet) -> None:
    """End a round whose server seed was revealed while it was open: the stake goes back
    (``bet:<player>:<key>:void``, bankroll -> player) and the round counts for nobody."""
    player = ledger.player_account(s, b.player_id, b.currency)
    bank = ledger.house_account(s, b.currency, "bankroll", _shard(b.bet_key))
    r = ledger.transfer(s, _entry_key(b.player_id, b.bet_key) + ":void", "void", bank,
                        player, b.stake, memo=f"mines round voided {b.bet_key}")
    b.state, b.mult_e4, b.payout = "void", E4, b.stake
    b.settled_at = utcnow()
    b.balance_after = r.balances.get(player, b.balance_after)


def open_mines(player_id: str) -> BetResult | None:
    """The player's unfinished Mines round, if any (a round whose seed pair was revealed
    is voided here and returned ended, once)."""
    with ledger_tx(readonly=True) as s:
        b = s.execute(select(Bet).where(Bet.player_id == player_id, Bet.state == "open")
                      ).scalar_one_or_none()
        if b is None:
            return None
        if not seeds.is_revealed(s, b.seed_pair_id):
            return _view(b)
        bet_id = b.id
    with ledger_tx() as s:
        b = _open_round(s, player_id, bet_id)
        if b.state == "open" and seeds.is_revealed(s, b.seed_pair_id):
            _void(s, b)
        return _view(b, server_seed=seeds.revealed_seed_of(s, b.seed_pair_id))


def _finish(s: Session, b: Bet, state: str, mult: int) -> None:
    b.state, b.mult_e4, b.payout = state, mult, b.stake * mult // E4
    b.settled_at = utcnow()
    _stats(s, b.player_id, b.currency, b.stake, b.payout, mult)


def _pay(s: Session, b: Bet) -> None:
    player = ledger.player_account(s, b.player_id, b.currency)
    bank = ledger.house_account(s, b.currency, "bankroll", _shard(b.bet_key))
    if b.payout > 0:
        r = ledger.transfer(s, _entry_key(b.player_id, b.bet_key) + ":cashout", "payout",
                            bank, player, b.payout, memo=f"mines cash out {b.bet_key}")
        b.balance_after = r.balances.get(player, b.balance_after)


def reveal_tile(player_id: str, bet_id: object, tile: object) -> BetResult:
    """Open one tile of the player's Mines round; a mine ends it, the last safe tile pays."""
    if isinstance(tile, bool) or not isinstance(tile, int) or not 0 <= tile <= 24:
        raise InvalidBet("Pick a tile from 0 to 24.")
    with ledger_tx() as s:
        b = _open_round(s, player_id, bet_id)
        if b.state != "open":
            return _view(b, server_seed=seeds.revealed_seed_of(s, b.seed_pair_id))
        if not _step_allowed(s, b):
            return _view(b, server_seed=seeds.revealed_seed_of(s, b.seed_pair_id))
        revealed = json.loads(b.progress)
        if tile in revealed:
            return _view(b)
        mines_at = json.loads(b.outcome)
        count = json.loads(b.params)["mines"]
        try:
            _check_exposure(currency(b.currency), b.stake,
                            mines_multiplier_e4(count, len(revealed) + 1), s)
        except OverExposure:
            raise OverExposure("This round has reached the largest win the house allows "
                               "per bet. Cash out to collect it.") from None
        if tile in mines_at:
            b.progress = json.dumps([*revealed, tile])
            _finish(s, b, "lost", 0)
            b.balance_after = ledger.player_balances(s, player_id)[b.currency].balance
            return _view(b)
        revealed.append(tile)
        b.progress = json.dumps(revealed)
        if len(revealed) == 25 - count:
            _finish(s, b, "won", mines_multiplier_e4(count, len(revealed)))
            _pay(s, b)
        return _view(b)


def cash_out(player_id: str, bet_id: object) -> BetResult:
    """Take the current Mines multiplier; at least one safe tile must be open."""
    with ledger_tx() as s:
        b = _open_round(s, player_id, bet_id)
        if b.state != "open":
            return _view(b, replayed=True,
                         server_seed=seeds.revealed_seed_of(s, b.seed_pair_id))
        if not _step_allowed(s, b):
            return _view(b, server_seed=seeds.revealed_seed_of(s, b.seed_pair_id))
        revealed = json.loads(b.progress)
        if not revealed:
            raise InvalidBet("Open at least one tile before cashing out.")
        _finish(s, b, "won", mines_multiplier_e4(json.loads(b.params)["mines"],
                                                      len(revealed)))
        _pay(s, b)
        return _view(b)
