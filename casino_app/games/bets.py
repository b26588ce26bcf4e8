"""The bet path: one service call per bet (cosmicpython's service layer).

``place_bet`` (``place_bet_async`` in the event loop) validates and rate-limits a bet, then
hands it to the settlement writer (``payments.settlement``) as an order with a ``draw``
function: the writer takes the next nonce of the player's active seed pair, draws the
outcome here, and settles it with the other bets of its batch in one commit (stake and
payout one balanced entry, the bet with its fairness inputs, the player's stats). The
browser chooses the ``bet_key``: the same key again returns the first bet and moves nothing.

Mines is played in steps: ``place_bet`` takes the stake, ``reveal_tile`` opens tiles,
``cash_out`` pays; an open round lives in the database and survives reloads and restarts.
A player on hold can neither reveal nor cash out. Steps run on the writer's thread
(``settlement.run``), in order with the bets of this process. An open round's server seed is never
shown (``games.seeds`` refuses to rotate it and withholds it). A round left open on a pair
that was revealed anyway (before that rule, or by an operator) cannot be played fairly any
more: its next step voids it, returning the stake (state ``void``).
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from casino_app.core.clock import utcnow
from casino_app.core.db import ledger_tx
from casino_app.core.logging import get_logger
from casino_app.core.settings import get_settings
from casino_app.games import seeds
from casino_app.games.house import GAMES, GameError, mines_multiplier_e4
from casino_app.games.models import Bet, PlayerStats
from casino_app.payments import holds, ledger, settlement
from casino_app.payments.currencies import Currency, currency
from casino_app.security import ratelimit

log = get_logger("casino.games.bets")

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
        raise over_exposure(cur, cap)


# currencies whose empty bankroll was already logged by this process (once each)
_EMPTY_LOGGED: set[str] = set()


def over_exposure(cur: Currency, cap: int) -> OverExposure:
    """The refusal of a bet that could win more than ``cap``. With no bankroll at all
    (a fresh install: the cap is 0) the player reads that real-money play is not open yet,
    and the operator finds in the log how to fund it (once per currency and process)."""
    if cap <= 0:
        if cur.code not in _EMPTY_LOGGED:
            _EMPTY_LOGGED.add(cur.code)
            log.warning("bankroll_empty", currency=cur.code,
                        hint=f"real-money bets in {cur.code} are refused until the house "
                             f"bankroll is funded: casino ledger fund --currency {cur.code} "
                             "--amount <coins in the house wallets> --reference <tx id>")
        return OverExposure(
            f"Real-money play in {cur.code} is not open yet: the house has no "
            f"{cur.code} bankroll to pay wins. Play with FUN meanwhile.")
    return OverExposure(
        f"This bet could win more than the house allows per bet "
        f"({cur.text(cap)}). Lower the amount or the multiplier.")


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


def _replay(player_id: str, bet_key: str, game: str, cur: str, stake: int,
            params_json: str) -> BetResult | None:
    with ledger_tx(readonly=True) as s:
        return _find(s, player_id, bet_key, game, cur, stake, params_json)


class Busy(BetRefused):
    def __init__(self) -> None:
        super().__init__(str(settlement.Busy()))


def _order(player_id: str, game, cur: Currency, stake: int, parsed: Any,  # noqa: ANN001
           params_json: str, bet_key: str) -> settlement.BetOrder:
    """The settlement order of one bet: the writer draws it (``draw``) from the player's
    active pair at the nonce it takes, and settles it in its next batch."""
    is_mines = game.name == "mines"
    max_mult = (mines_multiplier_e4(parsed.mines, 1) if is_mines
                else game.max_multiplier_e4(parsed))
    max_win = stake * max_mult // E4 - stake if cur.real_money else None

    def draw(pair: settlement.SeedInputs, nonce: int) -> settlement.Drawn:
        outcome = game.draw(pair.server_seed, pair.client_seed, nonce, parsed)
        mult = 0 if is_mines else game.multiplier_e4(parsed, outcome)
        payout = stake * mult // E4
        return settlement.Drawn(json.dumps(outcome), mult, payout,
                                "open" if is_mines else ("won" if payout > 0 else "lost"))

    return settlement.BetOrder(
        player_id=player_id, bet_key=bet_key, entry_key=_entry_key(player_id, bet_key),
        game=game.name, currency=cur.code, stake=stake, params_json=params_json,
        max_win=max_win, memo=f"{game.name} bet {bet_key}", draw=draw,
        seeds=seeds.active_inputs)


def _answer(order: settlement.BetOrder, r: settlement.Settled, cur: Currency) -> BetResult:
    """The player's answer to a settled order (or its refusal, raised)."""
    if r.status == "ok":
        d, pair = r.drawn, r.inputs
        if (d is None or pair is None or r.bet_id is None or r.balance_before is None
                or r.balance_after is None or r.nonce is None or r.created_at is None):
            raise RuntimeError(f"the settlement writer answered ok without the bet: {r!r}")
        params = json.loads(order.params_json)
        is_mines = order.game == "mines"
        return BetResult(r.bet_id, order.bet_key, order.game, order.currency, order.stake,
                         d.payout, d.mult_e4, d.state, params,
                         None if is_mines else json.loads(d.outcome_json), [],
                         mines_multiplier_e4(params["mines"], 0) if is_mines else 0,
                         r.balance_before, r.balance_after, r.nonce, pair.client_seed,
                         pair.server_seed_hash, None, r.created_at)
    if r.status in ("replay", "conflict"):
        found = _replay(order.player_id, order.bet_key, order.game, order.currency,
                        order.stake, order.params_json)
        if found is None:  # the writer saw it stored
            raise RuntimeError(f"bet {order.bet_key} answered {r.status} but not stored")
        return found
    if r.status == "funds":
        raise InsufficientBalance()
    if r.status == "hold":
        raise OnHold()
    if r.status == "exposure":
        if r.cap is None:
            raise RuntimeError("the settlement writer refused a bet's exposure without its cap")
        raise over_exposure(cur, r.cap)
    if r.status == "mines_open":
        raise InvalidBet("Finish your open Mines round first.")
    if r.status == "stale":
        raise InvalidBet("Your seeds are being set up. Try again.")
    if r.status == "busy":
        raise Busy()
    if r.status == "unknown":
        raise BetRefused("We lost contact with the ledger while placing this bet. "
                         "Try again: the same bet is never placed twice.")
    raise BetRefused("This bet could not be placed and nothing was charged. Try again.")


class _Limited(Exception):
    """Betting too fast: answer with the bet stored under the key, if any, else refuse."""

    def __init__(self, refusal: TooFast, lookup: tuple):
        super().__init__(str(refusal))
        self.refusal, self.lookup = refusal, lookup

    def answer(self) -> BetResult:
        found = _replay(*self.lookup)
        if found is None:
            raise self.refusal
        return found


def _prepare(player_id: str, game_name: object, currency_code: object, stake: object,
             params: object, bet_key: object) -> tuple[settlement.BetOrder, Currency]:
    """Validate and rate-limit one bet: its order. A player betting too fast gets
    _Limited, whose answer is the bet already stored under the key (a resent bet is
    answered, never refused) or the refusal."""
    game, cur, parsed = _validate(player_id, game_name, currency_code, stake, params, bet_key)
    if not isinstance(stake, int) or not isinstance(bet_key, str):  # _validate refused them
        raise InvalidBet("Invalid bet.")
    params_json = _params_json(parsed)
    try:
        _rate_limit(player_id)
    except TooFast as exc:
        raise _Limited(exc, (player_id, bet_key, game.name, cur.code, stake,
                             params_json)) from None
    return _order(player_id, game, cur, stake, parsed, params_json, bet_key), cur


def place_bet(player_id: str, game_name: object, currency_code: object, stake: object,
              params: object, bet_key: object) -> BetResult:
    """Place one bet (Mines: start a round) and wait for it. Raises BetRefused with a
    clear message. A bet id already used answers with its bet and moves nothing."""
    try:
        order, cur = _prepare(player_id, game_name, currency_code, stake, params, bet_key)
    except _Limited as limited:
        return limited.answer()
    return _answer(order, settlement.writer().submit(order).result(), cur)


async def place_bet_async(player_id: str, game_name: object, currency_code: object,
                          stake: object, params: object, bet_key: object) -> BetResult:
    """``place_bet`` for the event loop: awaits the writer without holding a thread
    (a database read, rare, runs in a thread)."""
    try:
        order, cur = _prepare(player_id, game_name, currency_code, stake, params, bet_key)
    except _Limited as limited:
        return await asyncio.to_thread(limited.answer)
    r = await settlement.writer().submit_async(order)
    if r.status in ("replay", "conflict"):
        return await asyncio.to_thread(_answer, order, r, cur)
    return _answer(order, r, cur)


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
    bank = ledger.house_account(s, b.currency, "bankroll")
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
    return _on_writer(_void_revealed, player_id, bet_id)


def _void_revealed(player_id: str, bet_id: int) -> BetResult:
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
    bank = ledger.house_account(s, b.currency, "bankroll")
    if b.payout > 0:
        r = ledger.transfer(s, _entry_key(b.player_id, b.bet_key) + ":cashout", "payout",
                            bank, player, b.payout, memo=f"mines cash out {b.bet_key}")
        b.balance_after = r.balances.get(player, b.balance_after)


def _on_writer(fn, *args):  # noqa: ANN001, ANN002, ANN202
    """Run a Mines step on the settlement writer's thread, after the bets before it."""
    try:
        future = settlement.writer().run(lambda: fn(*args))
    except settlement.Busy:
        raise Busy() from None
    return future.result()


def reveal_tile(player_id: str, bet_id: object, tile: object) -> BetResult:
    """Open one tile of the player's Mines round; a mine ends it, the last safe tile pays."""
    if isinstance(tile, bool) or not isinstance(tile, int) or not 0 <= tile <= 24:
        raise InvalidBet("Pick a tile from 0 to 24.")
    return _on_writer(_reveal_tile, player_id, bet_id, tile)


def _reveal_tile(player_id: str, bet_id: object, tile: int) -> BetResult:
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
    return _on_writer(_cash_out, player_id, bet_id)


def _cash_out(player_id: str, bet_id: object) -> BetResult:
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
