"""My bets (paged history with filters, stats, a cumulative-profit chart) and one bet's
recall page.

Every handler resolves the caller from the session token on the server (``caller``) and
reads only that player's bets: the bet id in a recall URL is looked up together with the
caller's player id, so another player's bet reads as "not found". Amounts stay ints in
base units until they are formatted as text here (``ui/format.py``: one format per
currency, one for multipliers, positions counted from 1); the chart plots whole units of
the currency, as the stats beside it show them.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any
from urllib.parse import urlencode

import reflex as rx

from casino_app.games import history
from casino_app.games.bets import BetResult
from casino_app.games.house import GAMES
from casino_app.payments.currencies import all_currencies, currency
from casino_app.ui import format as fmt
from casino_app.ui import routes
from casino_app.ui.state import fx
from casino_app.ui.state.session import caller, form_value
from casino_app.ui.state.wallet import WalletState

PAGE = 20
BET_ID_MAX = 2**62
# what the verifier needs besides the seeds and nonce, per game (no other param changes
# an outcome; the rest are shown for reference)
VERIFY_PARAMS = ("rows", "risk", "mines", "picks", "target", "direction")


# --- formatting (pure, tested in tests/ui/test_bets_state.py) ------------------------------

def fmt_amount(code: str, amount: int, signed: bool = False) -> str:
    """``amount`` base units of ``code`` as text, without the code: ``1.50`` (``+1.50`` /
    ``−1.50``): ``Currency.text``'s format."""
    try:
        cur = currency(code)
    except ValueError:
        return str(amount)
    return cur.text(amount, signed=signed).removesuffix(f" {cur.code}")


def fmt_mult(mult_e4: int) -> str:
    """A multiplier in 1/10000 units as ``1.98×`` (``ui/format.py``: exact, at least two
    decimals), the same on every page."""
    return fmt.mult(mult_e4)


def fmt_e2(value: int) -> str:
    whole, frac = divmod(int(value), 100)
    return f"{whole}.{frac:02d}"


def fmt_when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else ""


def params_view(params: dict[str, Any]) -> dict[str, str]:
    """Stored params as display names and text: ``target_e2: 5050`` -> ``target: 50.50``."""
    out: dict[str, str] = {}
    for key in sorted(params):
        value = params[key]
        if key.endswith("_e2") and isinstance(value, int):
            out[key[:-3]] = fmt_e2(value)
        elif isinstance(value, (list, tuple)):
            out[key] = ", ".join(str(v) for v in value)
        elif isinstance(value, float):
            out[key] = f"{value:.2f}"  # dice and limbo targets have two decimals
        else:
            out[key] = str(value)
    return out


def params_text(params: dict[str, Any]) -> str:
    return " · ".join(f"{k} {v}" for k, v in params_view(params).items())


def outcome_text(game: str, outcome: Any) -> str:
    """What the draw produced, in the game's own words."""
    if outcome is None:
        return "hidden until the round ends"
    if game == "dice" and isinstance(outcome, (int, float)):
        return f"rolled {outcome:.2f}"
    if game == "limbo" and isinstance(outcome, (int, float)):
        return f"{outcome:,.2f}×"
    if game == "plinko" and isinstance(outcome, int):
        return f"bucket {fmt.position(outcome)}"
    if game == "keno" and isinstance(outcome, list):
        return "drawn " + ", ".join(str(n) for n in outcome)  # squares are 1 to 40
    if game == "mines" and isinstance(outcome, list):
        return "mines on tiles " + ", ".join(str(fmt.position(n)) for n in outcome)
    return str(outcome)


def tiles_text(tiles: list[int]) -> str:
    """Mines tiles as players count them (from 1, row by row)."""
    return ", ".join(str(fmt.position(t)) for t in tiles)


def verify_link(game: str, server_seed: str | None, client_seed: str, nonce: int,
                params: dict[str, Any] | None = None, server_seed_hash: str = "") -> str:
    """The in-browser verifier, prefilled through its query string."""
    query: dict[str, str] = {"game": game}
    if server_seed:
        query["server_seed"] = server_seed
    query["client_seed"] = client_seed
    query["nonce"] = str(nonce)
    if server_seed_hash:
        query["hash"] = server_seed_hash
    shown = params_view(params or {})
    for key in VERIFY_PARAMS:
        if key in shown:
            query[key] = shown[key].replace(", ", ",")
    return f"{routes.VERIFY}?{urlencode(query)}"


def bet_id_from_query(raw: object) -> int:
    """The ``?id=`` of a recall page: plain ASCII digits that fit the column, else 0."""
    if not isinstance(raw, str) or not (raw.isascii() and raw.isdigit()) or len(raw) > 19:
        return 0
    value = int(raw)
    return value if 0 < value < BET_ID_MAX else 0


# --- rows ------------------------------------------------------------------------------------

@dataclasses.dataclass
class BetRow:
    id: int
    link: str
    when: str
    game: str
    currency: str
    stake: str
    mult: str
    payout: str
    profit: str
    state: str
    won: bool
    result: str = ""       # what the player reads: won, partial return, stake back, lost...
    result_key: str = ""   # won | partial | even | lost | open | void (the badge colour)
    # converted for display (fx): "≈ $1.20", or "" (play money, no display currency)
    fx_stake: str = ""
    fx_profit: str = ""


@dataclasses.dataclass
class StatRow:
    currency: str
    bets: int
    wagered: str
    profit: str
    best: str
    up: bool
    fx_wagered: str = ""
    fx_profit: str = ""


def bet_row(b: BetResult) -> BetRow:
    return BetRow(b.bet_id, routes.bet(b.bet_id), fmt_when(b.created_at),
                  GAMES[b.game].title if b.game in GAMES else b.game, b.currency,
                  fmt_amount(b.currency, b.stake),
                  fmt_mult(b.mult_e4) if b.state != "open" else "–",
                  fmt_amount(b.currency, b.payout) if b.state != "open" else "–",
                  fmt_amount(b.currency, b.profit, signed=True) if b.state != "open" else "–",
                  b.state, b.profit > 0, fmt.result_label(b.state, b.stake, b.payout),
                  fmt.result_key(b.state, b.stake, b.payout))


def stat_row(s: history.Stats) -> StatRow:
    return StatRow(s.currency, s.bets, fmt_amount(s.currency, s.wagered),
                   fmt_amount(s.currency, s.profit, signed=True), fmt_mult(s.best_mult_e4),
                   s.profit >= 0)


# what a row's converted values are computed from: currency, stake (wagered), profit
Units = tuple[str, int, int | None]


def bet_units(b: BetResult) -> Units:
    return (b.currency, b.stake, None if b.state == "open" else b.profit)


def with_fx(row: Any, units: Units, quote: str, rates: fx.RateTable) -> Any:
    """A bet or stat row with its converted stake (wagered) and profit filled in."""
    code, stake, profit = units
    first = "fx_wagered" if isinstance(row, StatRow) else "fx_stake"
    return dataclasses.replace(row, **{
        first: fx.amount_fx(code, stake, quote, rates),
        "fx_profit": fx.amount_fx(code, profit, quote, rates, signed=True)})


def fx_caption(quote: str, rates: fx.RateTable, rows: list[Any] | None = None) -> str:
    """What the ≈ values on My bets are: today's rates, not the rates of the day; nothing
    when none of ``rows`` shows a converted value (play money only)."""
    if quote == fx.NONE:
        return ""
    if rows is not None and not any(getattr(r, "fx_profit", "") or getattr(r, "fx_stake", "")
                                    or getattr(r, "fx_wagered", "") for r in rows):
        return ""
    note = fx.note(quote, rates)
    return f"≈ values in {quote} at current rates" + (f" ({note})" if note else "")


def _text(form: Any, key: str, allowed: tuple[str, ...]) -> str:
    value = form_value(form, key)
    return value if isinstance(value, str) and value in allowed else ""


GAME_CHOICES = tuple(GAMES)
RESULT_CHOICES = history.RESULTS


def currency_choices() -> tuple[str, ...]:
    return tuple(c.code for c in all_currencies())


class BetsState(rx.State):
    rows: list[BetRow] = []
    more: bool = False
    loaded: bool = False
    game: str = ""
    currency: str = ""
    result: str = ""
    stats: list[StatRow] = []
    chart_currency: str = ""
    chart_unit: str = ""
    chart: list[dict[str, float]] = []
    message: str = ""
    fx_caption: str = ""
    _units: dict[int, Units] = {}
    _stat_units: dict[str, Units] = {}

    def _filter(self) -> history.BetFilter:
        return history.BetFilter(self.game, self.currency, self.result)

    async def _player(self):  # noqa: ANN202
        """(player id, None) for a signed-in caller, else (None, a redirect to sign in)."""
        _, me = await caller(self)
        if me is None:
            self.rows, self.stats, self.chart, self.loaded = [], [], [], False
            return None, rx.redirect(routes.login_then(routes.BETS))
        return me.player_id, None

    async def _display(self) -> tuple[str, fx.RateTable]:
        """The caller's display currency (checked) and the rates to convert with."""
        wallet = await self.get_state(WalletState)
        return fx.quote(wallet.display), await fx.table()

    @rx.event
    async def follow_display(self, _choice: str = ""):
        """After the header's display currency changed: the rows and stats convert again."""
        self._convert(*await self._display())

    def _convert(self, quote: str, rates: fx.RateTable) -> None:
        """Convert the shown rows and stats again (the display currency changed)."""
        self.rows = [with_fx(r, self._units[r.id], quote, rates) if r.id in self._units
                     else r for r in self.rows]
        self.stats = [with_fx(s, self._stat_units[s.currency], quote, rates)
                      if s.currency in self._stat_units else s for s in self.stats]
        self.fx_caption = fx_caption(quote, rates, [*self.rows, *self.stats])

    async def _load_page(self, pid: str, before_id: int | None) -> None:
        bets, more = await asyncio.to_thread(history.bets_page, pid, self._filter(),
                                             before_id, PAGE)
        quote, rates = await self._display()
        units = {b.bet_id: bet_units(b) for b in bets}
        rows = [with_fx(bet_row(b), units[b.bet_id], quote, rates) for b in bets]
        self.rows = rows if before_id is None else [*self.rows, *rows]
        self._units = units if before_id is None else {**self._units, **units}
        self.more = more
        self.loaded = True
        self.fx_caption = fx_caption(quote, rates, [*self.rows, *self.stats])

    async def _load_chart(self, pid: str) -> None:
        code = self.chart_currency
        if not code:
            self.chart, self.chart_unit = [], ""
            return
        series = await asyncio.to_thread(history.profit_series, pid, code)
        # the line starts at zero, before the first bet of the window; in whole units of
        # the currency (what the stats say), for display only
        scale = currency(code).scale
        self.chart = [{"bet": 0, "profit": 0.0}] + [{"bet": bet_id, "profit": total / scale}
                                                    for bet_id, total in series] \
            if series else []
        self.chart_unit = code

    @rx.event
    async def on_open(self):
        self.message = ""
        self.game = self.currency = self.result = ""
        pid, redirect = await self._player()
        if pid is None:
            return redirect
        await self._load_page(pid, None)
        stats = await asyncio.to_thread(history.stats, pid)
        quote, rates = await self._display()
        self._stat_units = {s.currency: (s.currency, s.wagered, s.profit) for s in stats}
        self.stats = [with_fx(stat_row(s), self._stat_units[s.currency], quote, rates)
                      for s in stats]
        self.fx_caption = fx_caption(quote, rates, [*self.rows, *self.stats])
        codes = [s.currency for s in stats]
        if self.chart_currency not in codes:
            # real money first if the player has any, else play money
            real = [c for c in codes if currency(c).real_money]
            self.chart_currency = (real or codes or [""])[0]
        await self._load_chart(pid)
        return None

    @rx.event
    async def apply_filters(self, form: dict):
        pid, redirect = await self._player()
        if pid is None:
            return redirect
        self.game = _text(form, "game", GAME_CHOICES)
        self.currency = _text(form, "currency", currency_choices())
        self.result = _text(form, "result", RESULT_CHOICES)
        await self._load_page(pid, None)
        return None

    @rx.event
    async def older(self):
        pid, redirect = await self._player()
        if pid is None:
            return redirect
        await self._load_page(pid, self.rows[-1].id if self.rows else None)
        return None

    @rx.event
    async def show_chart(self, code: str):
        pid, redirect = await self._player()
        if pid is None:
            return redirect
        self.chart_currency = code if isinstance(code, str) and code in currency_choices() \
            else ""
        await self._load_chart(pid)
        return None


# --- one bet ---------------------------------------------------------------------------------

@dataclasses.dataclass
class Recall:
    id: int
    when: str
    game: str
    game_name: str
    currency: str
    state: str
    stake: str
    payout: str
    profit: str
    mult: str
    won: bool
    result: str
    result_key: str
    params: str
    outcome: str
    revealed: str
    balance_before: str
    balance_after: str
    server_seed_hash: str
    server_seed: str
    client_seed: str
    nonce: int
    verify: str


def recall(b: BetResult) -> Recall:
    open_ = b.state == "open"
    return Recall(
        id=b.bet_id, when=fmt_when(b.created_at), game=b.game,
        game_name=GAMES[b.game].title if b.game in GAMES else b.game, currency=b.currency,
        state=b.state, stake=fmt_amount(b.currency, b.stake),
        payout="–" if open_ else fmt_amount(b.currency, b.payout),
        profit="–" if open_ else fmt_amount(b.currency, b.profit, signed=True),
        mult="–" if open_ else fmt_mult(b.mult_e4), won=b.profit > 0,
        result=fmt.result_label(b.state, b.stake, b.payout),
        result_key=fmt.result_key(b.state, b.stake, b.payout),
        params=params_text(b.params), outcome=outcome_text(b.game, b.outcome),
        revealed=tiles_text(b.revealed),
        balance_before=fmt_amount(b.currency, b.balance_before),
        balance_after=fmt_amount(b.currency, b.balance_after),
        server_seed_hash=b.server_seed_hash, server_seed=b.server_seed or "",
        client_seed=b.client_seed, nonce=b.nonce,
        # the verifier needs the server seed: only once it is revealed
        verify=verify_link(b.game, b.server_seed, b.client_seed, b.nonce, b.params,
                           b.server_seed_hash) if b.server_seed else "")


class BetState(rx.State):
    bet: Recall | None = None
    loaded: bool = False

    @rx.event
    async def on_open(self):
        self.bet, self.loaded = None, False
        raw = self.router.url.query_parameters.get("id", "")
        bet_id = bet_id_from_query(raw)
        _, me = await caller(self)
        if me is None:
            return rx.redirect(routes.login_then(routes.bet(bet_id) if bet_id
                                                 else routes.BETS))
        found = await asyncio.to_thread(history.bet, me.player_id, bet_id) if bet_id else None
        self.bet = recall(found) if found is not None else None
        self.loaded = True
        return None
