"""The lobby and the game pages: view state for the five house games.

Everything a browser sends here is input to check: the amount is parsed with the
currency's own rules, the game's settings go through ``Game.parse_params`` inside the bet
service, tile and square numbers are range-checked, and every handler that moves money
re-checks the caller on the server first (``caller``) and refuses anonymous callers.
A bet costs one service call; the header balance is taken from its ``balance_after``.

The ``bet_key`` of a bet is made by the browser at click time and passed as the event's
argument, so a websocket reconnect that resends the event cannot place a second bet.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from decimal import Decimal
from typing import Any

import reflex as rx

from casino_app.games import bets, history
from casino_app.games.bets import BetRefused, BetResult
from casino_app.games.house import GAMES, GameError
from casino_app.games.house.dice import MAX_CHANCE_E2 as DICE_MAX_CHANCE_E2
from casino_app.games.house.dice import MIN_CHANCE_E2 as DICE_MIN_CHANCE_E2
from casino_app.games.house.limbo import MAX_TARGET_E2 as LIMBO_MAX_E2
from casino_app.games.house.limbo import MIN_TARGET_E2 as LIMBO_MIN_E2
from casino_app.games.providers import catalogue
from casino_app.payments.currencies import Currency, currency, parse_decimal
from casino_app.ui import format as fmt
from casino_app.ui import routes
from casino_app.ui.state import fx
from casino_app.ui.state.session import caller
from casino_app.ui.state.wallet import (
    DEFAULT_CURRENCY,
    WalletState,
    selected,
    show_bet_balance,
)

E4 = 10_000
MINES_TILES = 25
KENO_SQUARES = 40
KENO_MAX_PICKS = 10
PLINKO_ROWS = tuple(range(8, 17))
PLINKO_RISKS = ("low", "medium", "high")
KENO_RISKS = ("classic", "low", "medium", "high")
HISTORY_PER_GAME = 10
MAX_TEXT = 40
TARGET_FORMAT = "That target was not taken: write it with a dot for decimals and no " \
                "thousands separators, e.g. 1.50."


# --- pure helpers (unit-tested) ---------------------------------------------------------

def amount_text(cur: Currency, units: int) -> str:
    """Base units as text for the amount box: no thousands separators, trailing zeros
    dropped down to 2 places (1.00 FUN, 0.0001 BTC, 0.50 ETH)."""
    text = f"{Decimal(units).scaleb(-cur.decimals):.{cur.decimals}f}"
    if "." in text:
        keep = min(2, cur.decimals)
        whole, frac = text.split(".")
        frac = frac.rstrip("0")
        frac = frac + "0" * (keep - len(frac)) if len(frac) < keep else frac
        text = f"{whole}.{frac}" if frac else whole
    return text


def default_amount(cur: Currency) -> str:
    """What the amount box shows for a currency: 1.00 play money, else the smallest bet."""
    if not cur.real_money:
        return amount_text(cur, max(cur.min_bet, min(cur.scale, cur.max_bet)))
    return amount_text(cur, cur.min_bet)


def scale_amount(cur: Currency, text: object, factor: str) -> str:
    """Halve or double an amount in base units with integer maths, kept between the
    currency's smallest and largest bet; an unreadable amount becomes the smallest bet."""
    try:
        units = cur.parse(text)
    except ValueError:
        return amount_text(cur, cur.min_bet)
    units = units // 2 if factor == "half" else units * 2
    return amount_text(cur, min(max(units, cur.min_bet), cur.max_bet))


def mult_text(mult_e4: int) -> str:
    """A multiplier as every page shows it (``ui/format.py``): 19800 -> 1.98×."""
    return fmt.mult(mult_e4)


def signed_amount(cur: Currency, amount: int) -> str:
    return cur.text(amount, signed=True).removesuffix(f" {cur.code}")


def outcome_text(r: BetResult) -> str:
    """One line that says what happened."""
    o = r.outcome
    if r.game == "dice":
        return f"Rolled {o:.2f}"
    if r.game == "limbo":
        return f"Result {o:,.2f}×"
    if r.game == "plinko":
        return f"Bucket {fmt.position(o)} of {int(r.params.get('rows', 0)) + 1}"
    if r.game == "keno":
        picks = set(r.params.get("picks", []))
        return f"{len(picks.intersection(o or []))} of {len(picks)} hit"
    if r.game == "mines":
        if r.state == "open":
            return f"{len(r.revealed)} safe, cash out at {mult_text(r.next_mult_e4)}"
        if r.state == "lost":
            return "Hit a mine"
        if r.state == "void":
            return ("Round cancelled and stake returned: its server seed was revealed "
                    "before it ended")
        return f"Cashed out after {len(r.revealed)} safe tiles"
    return ""


def e2_text(text: object, lo: int, hi: int) -> str | None:
    """A number with at most 2 decimals between lo/100 and hi/100, as "12.34"; None when
    it is not one (the bet service checks again). Read by the one amount parser
    (``parse_decimal``): "1,5" is refused, never read as 15."""
    if isinstance(text, float):
        text = repr(text) if math.isfinite(text) else ""
    try:
        value = parse_decimal(text)
    except ValueError:
        return None
    e2 = value * 100
    if e2 != e2.to_integral_value() or not lo <= e2 <= hi:
        return None
    return f"{int(e2) // 100}.{int(e2) % 100:02d}"


def target_range(game: str, direction: str = "over") -> tuple[int, int]:
    """The targets a game takes, in hundredths: Dice by direction (win chance 0.01% to
    98%), Limbo 1.01x to 1,000,000x. The game's ``parse_params`` is the authority."""
    if game == "limbo":
        return LIMBO_MIN_E2, LIMBO_MAX_E2
    if direction == "under":
        return DICE_MIN_CHANCE_E2, DICE_MAX_CHANCE_E2
    return 10_000 - DICE_MAX_CHANCE_E2, 10_000 - DICE_MIN_CHANCE_E2


def range_text(game: str, direction: str = "over") -> str:
    """The allowed range, shown next to the box: ``2.00 to 99.99``, ``1.01× to
    1,000,000.00×``."""
    lo, hi = target_range(game, direction)
    unit = "×" if game == "limbo" else ""
    return f"{lo // 100:,}.{lo % 100:02d}{unit} to {hi // 100:,}.{hi % 100:02d}{unit}"


def read_target(text: object, game: str, direction: str = "over") -> tuple[str | None, str]:
    """A typed target, checked as it is typed: (``"12.34"``, "") when the game takes it,
    else (None, why, with the allowed range). Read by the one amount parser: "1,5" is
    refused, never read as 15."""
    allowed = range_text(game, direction)
    if isinstance(text, float):
        text = repr(text) if math.isfinite(text) else ""
    if isinstance(text, str) and any(c.isdigit() for c in text) \
            and not text.strip().startswith("-") and target_refusal(text):
        return None, f"{TARGET_FORMAT} Allowed: {allowed}."
    value = e2_text(text, 0, 10**12)
    if value is None:
        try:
            decimals = parse_decimal(text) * 100
        except ValueError:
            decimals = None
        if decimals is not None and decimals != decimals.to_integral_value():
            return None, f"A target has at most 2 decimals. Allowed: {allowed}."
        return None, f"Enter a target from {allowed}."
    lo, hi = target_range(game, direction)
    whole, frac = value.split(".")
    if not lo <= int(whole) * 100 + int(frac) <= hi:
        what = f"Roll {direction}" if game == "dice" else "Limbo"
        return None, f"{what} takes a target from {allowed}."
    return value, ""


def target_refusal(text: object) -> str:
    """Why a typed target cannot be read at all ("" when it can, even if out of range)."""
    if isinstance(text, float):
        return ""
    try:
        parse_decimal(text)
    except ValueError:
        return TARGET_FORMAT
    return ""


def parse_int_in(value: object, lo: int, hi: int) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit() \
            and len(value.strip()) <= 4:
        value = int(value.strip())
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return value if isinstance(value, int) and lo <= value <= hi else None


@dataclasses.dataclass
class BetRow:
    id: int
    game: str
    href: str
    stake: str
    mult: str
    profit: str
    outcome: str
    won: bool
    fx_profit: str = ""  # converted for display (fx): "≈ +$1.20", or ""


@dataclasses.dataclass
class Cell:
    n: int
    kind: str   # keno: "" | picked | hit | miss ; mines: hidden | safe | mine | boom


@dataclasses.dataclass
class Bucket:
    label: str
    hit: bool


def short_mult(mult_e4: int) -> str:
    """A multiplier in a narrow plinko bucket: 1k, 130, 26, 1.5, 0.2."""
    if mult_e4 >= 1000 * E4:
        return f"{mult_e4 / (1000 * E4):g}k"
    if mult_e4 >= 10 * E4:
        return str(mult_e4 // E4)
    return f"{mult_e4 // 1000 / 10:g}"


@dataclasses.dataclass
class PegRow:
    pegs: list[int]
    width: str  # so that pegs line up above the buckets (between them, row by row)


@dataclasses.dataclass
class GameTile:
    name: str
    title: str
    category: str
    description: str
    image: str
    href: str
    provider: str = "HashHouse"


HOUSE_PROVIDER = "HashHouse"


def _tiles() -> list[GameTile]:
    return [GameTile(g.name, g.title, g.category, g.description, f"/games/{g.name}.svg",
                     routes.game(g.name), HOUSE_PROVIDER) for g in GAMES.values()]


def _provider_tiles() -> list[GameTile]:
    """Provider games for the lobby; their thumbnails load from the provider's origin."""
    out = []
    for g in catalogue.lobby_games():
        rtp = f" · RTP {g.rtp_e4 / 10_000:.2f}%" if g.rtp_e4 else ""
        out.append(GameTile(g.key, g.name, g.category, f"{g.provider}{rtp}",
                            g.thumb_url or "/games/provider.svg",
                            routes.provider_game(g.key), g.provider))
    return out


def categories() -> list[str]:
    seen: list[str] = []
    for g in GAMES.values():
        if g.category not in seen:
            seen.append(g.category)
    return ["All", *seen]


# --- the game pages ---------------------------------------------------------------------

class GameState(rx.State):
    game: str = ""
    amount: str = "1.00"
    amount_error: str = ""   # said while typing: the amount cannot be read (e.g. "0,05")
    error: str = ""

    # A target as a bet uses it (always one the game takes) and as its box shows it; the
    # two differ only while the box holds a target the game does not take, and then the
    # Bet button is off and ``target_error`` says why, with the allowed range. Nothing
    # invalid outlives the page: ``open_game`` shows the kept target again.
    dice_target: str = "50.00"
    dice_target_text: str = "50.00"
    dice_direction: str = "over"
    limbo_target: str = "2.00"
    limbo_target_text: str = "2.00"
    target_error: str = ""
    plinko_rows: int = 16
    plinko_risk: str = "medium"
    keno_picks: list[int] = []
    keno_risk: str = "classic"
    mines_count: int = 3

    # Mines: the open round (0: none), its tiles and what cashing out pays now
    round_id: int = 0
    mines_revealed: list[int] = []
    mines_at: list[int] = []
    mines_next: str = ""

    # the last result shown (seq changes with every result: it restarts the animation)
    result_seq: int = 0
    result_game: str = ""
    result_text: str = ""
    result_mult: str = ""
    result_profit: str = ""
    result_won: bool = False
    result_label: str = ""   # won, partial return, stake back, lost (ui/format.py)
    result_id: int = 0
    dice_roll: float = -1.0
    plinko_bucket: int = -1
    keno_hits: list[int] = []

    # The recent bets of every game, kept on the server: the page gets only the open
    # game's ten (``game_rows``), so a bet's delta carries ten rows, not fifty.
    # Each with its currency and profit in base units (to convert again when the display
    # currency changes). A tuple: Reflex wraps a list (and each dataclass in it) in a
    # change-tracking proxy on every read, which a bet paid for twice.
    _rows: tuple[tuple[BetRow, str, int], ...] = ()

    _amount_cur: str = DEFAULT_CURRENCY

    # --- derived view ---

    @rx.var
    def amount_ok(self) -> bool:
        return self.amount.strip() != "" and self.amount_error == ""

    @rx.var
    def can_bet(self) -> bool:
        """What the Bet button needs: an amount and a target that are what the boxes
        show (a refused one turns it off)."""
        return self.amount_ok and self.target_error == ""

    @rx.var
    def dice_range(self) -> str:
        return range_text("dice", self.dice_direction)

    @rx.var
    def limbo_range(self) -> str:
        return range_text("limbo")

    @rx.var
    def has_result(self) -> bool:
        return self.result_game != "" and self.result_game == self.game

    @rx.var
    def game_rows(self) -> list[BetRow]:
        game = self.game
        return [row for row, _, _ in self._rows if row.game == game][:HISTORY_PER_GAME]

    def _dice_params(self) -> Any:
        if self.target_error:
            return None
        try:
            return GAMES["dice"].parse_params({"target": self.dice_target,
                                               "direction": self.dice_direction})
        except GameError:
            return None

    @rx.var
    def dice_chance(self) -> str:
        p = self._dice_params()
        return "—" if p is None else f"{p.chance_e2 // 100}.{p.chance_e2 % 100:02d}%"

    @rx.var
    def dice_multiplier(self) -> str:
        p = self._dice_params()
        return "—" if p is None else mult_text(GAMES["dice"].win_multiplier_e4(p))

    @rx.var
    def dice_target_value(self) -> float:
        try:
            return min(100.0, max(0.0, float(self.dice_target)))
        except ValueError:
            return 50.0

    @rx.var
    def dice_roll_text(self) -> str:
        return f"{self.dice_roll:.2f}" if self.dice_roll >= 0 else ""

    @rx.var
    def dice_roll_left(self) -> str:
        return f"{self.dice_roll:.2f}%" if self.dice_roll >= 0 else "50%"

    @rx.var
    def limbo_chance(self) -> str:
        if self.target_error:
            return "—"
        try:
            p = GAMES["limbo"].parse_params({"target": self.limbo_target})
        except GameError:
            return "—"
        return f"{Decimal(99) / (Decimal(p.target_e2) / 100):.4f}".rstrip("0").rstrip(".") + "%"

    @rx.var
    def plinko_peg_rows(self) -> list[PegRow]:
        """Row i has i + 3 pegs spaced one bucket apart; the last row spans the board."""
        n = self.plinko_rows
        return [PegRow(list(range(i + 3)), f"{(i + 2) * 100 / (n + 1):.3f}%")
                for i in range(n)]

    @rx.var
    def plinko_buckets(self) -> list[Bucket]:
        game = GAMES["plinko"]
        table = game.table(game.parse_params({"rows": self.plinko_rows,
                                              "risk": self.plinko_risk}))
        return [Bucket(short_mult(m), i == self.plinko_bucket and self.result_game == "plinko")
                for i, m in enumerate(table)]

    @rx.var
    def plinko_ball_left(self) -> str:
        if self.plinko_bucket < 0 or self.result_game != "plinko":
            return "50%"
        return f"{(self.plinko_bucket + 0.5) * 100 / (self.plinko_rows + 1):.3f}%"

    @rx.var
    def keno_cells(self) -> list[Cell]:
        picks, hits = set(self.keno_picks), set(self.keno_hits)
        out = []
        for n in range(1, KENO_SQUARES + 1):
            kind = ("hit" if n in picks else "miss") if n in hits else \
                ("picked" if n in picks else "")
            out.append(Cell(n, kind))
        return out

    @rx.var
    def keno_payouts(self) -> list[str]:
        if not self.keno_picks:
            return []
        game = GAMES["keno"]
        try:
            table = game.table(game.parse_params({"picks": self.keno_picks,
                                                  "risk": self.keno_risk}))
        except GameError:
            return []
        return [f"{i} hit{'s' if i != 1 else ''}: {mult_text(m)}" for i, m in enumerate(table)]

    @rx.var
    def mines_cells(self) -> list[Cell]:
        revealed, mines = set(self.mines_revealed), set(self.mines_at)
        out = []
        for i in range(MINES_TILES):
            if i in revealed:
                kind = "boom" if i in mines else "safe"
            else:
                kind = "mine" if i in mines else "hidden"
            out.append(Cell(i, kind))
        return out

    @rx.var
    def mines_open(self) -> bool:
        return self.round_id > 0

    # --- helpers ---

    def _to_login(self):  # noqa: ANN202
        path = routes.game(self.game) if self.game in GAMES else routes.HOME
        return rx.redirect(routes.login_then(path))

    def _currency_changed(self, cur: Currency) -> None:
        """Another currency was chosen: the typed amount meant the old one, so it is
        replaced by the new currency's default (never reinterpreted)."""
        if cur.code != self._amount_cur:
            self._amount_cur = cur.code
            self.amount = default_amount(cur)
            self._check_amount()

    def _check_amount(self) -> None:
        """Say at once, before any bet is sent, when the typed amount cannot be read in
        its currency ("0,05": a comma; too many decimals); ``bet`` reads it again."""
        problem = ""
        if self.amount.strip():
            try:
                currency(self._amount_cur).parse(self.amount)
            except ValueError as exc:
                problem = str(exc)
        if problem != self.amount_error:
            self.amount_error = problem

    def _params(self) -> dict[str, Any]:
        if self.game == "dice":
            return {"target": self.dice_target, "direction": self.dice_direction}
        if self.game == "limbo":
            return {"target": self.limbo_target}
        if self.game == "plinko":
            return {"rows": self.plinko_rows, "risk": self.plinko_risk}
        if self.game == "keno":
            return {"picks": list(self.keno_picks), "risk": self.keno_risk}
        return {"mines": self.mines_count}

    def _show_round(self, r: BetResult) -> None:
        """Mines: the open round's tiles (or, once it ended, where the mines were)."""
        open_ = r.state == "open"
        self.round_id = r.bet_id if open_ else 0
        self.mines_revealed = list(r.revealed)
        self.mines_at = [] if open_ else list(r.outcome or [])
        self.mines_next = mult_text(r.next_mult_e4) if open_ else ""
        if open_:
            self.mines_count = int(r.params.get("mines", self.mines_count))

    def _convert(self, quote: str, rates: fx.RateTable) -> None:
        """Convert the recent rows again (the display currency changed)."""
        self._rows = tuple(
            (dataclasses.replace(row, fx_profit=fx.amount_fx(code, profit, quote, rates,
                                                             signed=True)), code, profit)
            for row, code, profit in self._rows)

    def _show(self, r: BetResult, quote: str = fx.NONE) -> None:
        cur = currency(r.currency)
        if r.game == "mines":
            self._show_round(r)
        self.result_seq += 1
        self.result_game = r.game
        self.result_id = r.bet_id
        self.result_text = outcome_text(r)
        if r.state == "open":
            self.result_mult, self.result_profit, self.result_won = "", "", False
            self.result_label = ""
            return
        self.result_mult = mult_text(r.mult_e4)
        self.result_profit = cur.text(r.profit, signed=True)
        self.result_won = r.profit > 0
        self.result_label = fmt.result_label(r.state, r.stake, r.payout)
        if r.game == "dice":
            self.dice_roll = float(r.outcome)
        elif r.game == "plinko":
            self.plinko_bucket = int(r.outcome)
        elif r.game == "keno":
            self.keno_hits = list(r.outcome)
        if not any(row.id == r.bet_id for row, _, _ in self._rows):
            row = BetRow(r.bet_id, r.game, routes.bet(r.bet_id),
                         cur.text(r.stake), self.result_mult,
                         self.result_profit, self.result_text, r.profit > 0,
                         fx.amount_fx(cur.code, r.profit, quote, fx.last_table(),
                                      signed=True))
            self._rows = ((row, cur.code, r.profit),
                          *self._rows)[:HISTORY_PER_GAME * len(GAMES)]

    async def _settled(self, call, *args):  # noqa: ANN001, ANN202
        """Run one bet service call for the signed-in caller and show its result.
        Returns an event to send back (a redirect) or None."""
        self.error = ""
        _, me = await caller(self)
        if me is None:
            return self._to_login()
        try:
            r = await asyncio.to_thread(call, me.player_id, *args)
        except BetRefused as exc:
            self.error = str(exc)
            return None
        wallet = await self.get_state(WalletState)
        self._show(r, fx.quote(wallet.display))
        show_bet_balance(wallet, r.currency, r.balance_after)
        return None

    # --- events ---

    @rx.event
    async def open_game(self, name: str):
        """on_load of a game page: the player, the amount for their currency and, on
        Mines, a round left open (it survives reloads and restarts)."""
        self.error = ""
        name = name if isinstance(name, str) else ""
        _, me = await caller(self)
        if me is None or name not in GAMES:
            self.game = name if name in GAMES else ""
            return self._to_login() if me is None else rx.redirect(routes.HOME)
        self.game = name
        self._show_targets()  # never an invalid target from an earlier visit
        wallet = await self.get_state(WalletState)
        self._currency_changed(selected(wallet))
        if name == "mines":
            r = await asyncio.to_thread(bets.open_mines, me.player_id)
            if r is not None:
                self._show_round(r)
            elif self.round_id:
                self.round_id, self.mines_revealed, self.mines_next = 0, [], ""

    @rx.event
    async def follow_currency(self, _choice: str = ""):
        """After the header's currency changed (WalletState.select_currency, or a top-up
        that switched to FUN): the amount box takes the new currency's default, and a
        refusal said before ("Insufficient balance") is gone: the balance it was about
        changed."""
        self.error = ""
        self._currency_changed(selected(await self.get_state(WalletState)))

    @rx.event
    async def follow_display(self, _choice: str = ""):
        """After the header's display currency changed: the recent rows convert again."""
        wallet = await self.get_state(WalletState)
        self._convert(fx.quote(wallet.display), await fx.table())

    @rx.event
    def edit_amount(self, text: str):
        if isinstance(text, str):
            self.error = ""  # a refusal of the earlier amount no longer applies
            self.amount = text[:MAX_TEXT]
            self._check_amount()

    async def _scale(self, factor: str) -> None:
        wallet = await self.get_state(WalletState)
        cur = selected(wallet)
        self._currency_changed(cur)
        self.amount = scale_amount(cur, self.amount, factor)
        self._check_amount()

    @rx.event
    async def half_amount(self):
        await self._scale("half")

    @rx.event
    async def double_amount(self):
        await self._scale("double")

    def _take_target(self, game: str, text: object) -> None:
        """Check a typed target at once: taken when the game takes it, otherwise said
        (with the range) and the Bet button off; the box keeps what was typed. A refusal
        said after the last bet is about the old target: it goes."""
        self.error = ""
        if game == "dice":
            value, self.target_error = read_target(text, "dice", self.dice_direction)
            if value is not None:
                self.dice_target = value
        else:
            value, self.target_error = read_target(text, "limbo")
            if value is not None:
                self.limbo_target = value

    def _show_targets(self) -> None:
        """The boxes show the targets a bet uses (a refused one typed earlier is gone)."""
        self.dice_target_text, self.limbo_target_text = self.dice_target, self.limbo_target
        self.target_error = ""

    @rx.event
    def edit_dice_target(self, text: str):
        if isinstance(text, str):
            self.dice_target_text = text[:MAX_TEXT]
            self._take_target("dice", self.dice_target_text)

    @rx.event
    def tidy_targets(self, _text: str = ""):
        """on_blur: a taken target is shown as the bet uses it ("50" -> "50.00")."""
        if not self.target_error:
            self._show_targets()

    @rx.event
    def set_dice_slider(self, value: list):
        if isinstance(value, list) and value and isinstance(value[0], (int, float)) \
                and not isinstance(value[0], bool):
            taken, error = read_target(f"{float(value[0]):.2f}", "dice", self.dice_direction)
            if taken is not None:
                self.dice_target = taken
                self._show_targets()
            elif not self.target_error:
                self.target_error = error

    @rx.event
    def choose_direction(self, direction: str | list[str]):
        """Flip over/under keeping the win chance (over 50.50 <-> under 49.50); a box that
        holds a refused target is checked again against the new direction's range."""
        if isinstance(direction, list) and len(direction) == 1:
            direction = direction[0]
        if direction not in ("over", "under") or direction == self.dice_direction:
            return
        self.dice_direction = direction
        if self.target_error:
            self._take_target("dice", self.dice_target_text)
            return
        e2 = e2_text(self.dice_target, 0, 10_000)
        if e2 is not None:
            flipped = e2_text(str(100 - Decimal(e2)), 0, 10_000) or self.dice_target
            self.dice_target = flipped
            self._show_targets()
            self._take_target("dice", flipped)

    @rx.event
    def edit_limbo_target(self, text: str):
        if isinstance(text, str):
            self.limbo_target_text = text[:MAX_TEXT]
            self._take_target("limbo", self.limbo_target_text)

    @rx.event
    def choose_plinko_rows(self, value: str):
        rows = parse_int_in(value, PLINKO_ROWS[0], PLINKO_ROWS[-1])
        if rows is not None:
            self.plinko_rows, self.plinko_bucket = rows, -1  # the old bucket no longer fits

    @rx.event
    def choose_plinko_risk(self, value: str):
        if value in PLINKO_RISKS:
            self.plinko_risk = value

    @rx.event
    def choose_keno_risk(self, value: str):
        if value in KENO_RISKS:
            self.keno_risk = value

    @rx.event
    def keno_toggle(self, square: int):
        n = parse_int_in(square, 1, KENO_SQUARES)
        if n is None:
            return
        self.keno_hits = []
        if n in self.keno_picks:
            self.keno_picks = [p for p in self.keno_picks if p != n]
        elif len(self.keno_picks) < KENO_MAX_PICKS:
            self.keno_picks = sorted([*self.keno_picks, n])
        else:
            self.error = f"Pick at most {KENO_MAX_PICKS} squares."

    @rx.event
    def keno_clear(self):
        self.keno_picks, self.keno_hits = [], []

    @rx.event
    def choose_mines(self, value: str):
        n = parse_int_in(value, 1, MINES_TILES - 1)
        if n is not None and not self.round_id:
            self.mines_count = n
            self.mines_revealed, self.mines_at = [], []

    @rx.event
    async def bet(self, bet_key: str):
        """Place one bet (Mines: start a round). ``bet_key`` is made by the browser."""
        self.error = ""
        _, me = await caller(self)
        if me is None:
            return self._to_login()
        if self.game not in GAMES:
            self.error = "Open a game first."
            return None
        if self.game == "mines" and self.round_id:
            self.error = "Finish your open round first: reveal a tile or cash out."
            return None
        wallet = await self.get_state(WalletState)
        cur = selected(wallet)
        if cur.code != self._amount_cur:
            self._currency_changed(cur)
            self.error = f"The currency is now {cur.code}: check the amount and bet again."
            return None
        try:
            stake = cur.parse(self.amount)
        except ValueError as exc:
            self.error = str(exc)
            return None
        if self.target_error and self.game in ("dice", "limbo"):
            self.error = self.target_error  # never a bet on a target other than the shown
            return None
        if self.game == "keno" and not self.keno_picks:
            self.error = "Pick 1 to 10 squares first."
            return None
        if self.game == "mines":
            self.mines_revealed, self.mines_at = [], []
        try:
            r = await bets.place_bet_async(me.player_id, self.game, cur.code, stake,
                                           self._params(), bet_key)
        except BetRefused as exc:
            self.error = str(exc)
            return None
        self._show(r, fx.quote(wallet.display))
        show_bet_balance(wallet, r.currency, r.balance_after)
        return None

    @rx.event
    async def reveal(self, tile: int):
        """Mines: open one tile of the open round."""
        n = parse_int_in(tile, 0, MINES_TILES - 1)
        if n is None or not self.round_id:
            _, me = await caller(self)
            if me is None:
                return self._to_login()
            self.error = "Start a round first." if n is not None else "Pick a tile."
            return None
        return await self._settled(bets.reveal_tile, self.round_id, n)

    @rx.event
    async def cash_out(self):
        """Mines: take the current multiplier."""
        if not self.round_id:
            _, me = await caller(self)
            if me is None:
                return self._to_login()
            self.error = "There is no open round to cash out."
            return None
        return await self._settled(bets.cash_out, self.round_id)


# --- the lobby --------------------------------------------------------------------------

class LobbyState(rx.State):
    category: str = "All"
    provider: str = "All"        # "All", "HashHouse" (our originals) or a provider's name
    query: str = ""
    favourites: list[str] = []
    recent: list[str] = []
    signed_in: bool = False
    message: str = ""
    # provider games (games.providers.catalogue), read on every visit
    provider_tiles: list[GameTile] = []

    @rx.var
    def all_tiles(self) -> list[GameTile]:
        return [*_tiles(), *self.provider_tiles]

    @rx.var
    def category_names(self) -> list[str]:
        seen = list(categories())
        for t in self.provider_tiles:
            if t.category not in seen:
                seen.append(t.category)
        return seen

    @rx.var
    def provider_names(self) -> list[str]:
        names = [HOUSE_PROVIDER]
        for t in self.provider_tiles:
            if t.provider not in names:
                names.append(t.provider)
        return ["All", *names] if len(names) > 1 else []

    @rx.var
    def tiles(self) -> list[GameTile]:
        q = self.query.strip().lower()
        return [t for t in self.all_tiles
                if (self.category == "All" or t.category == self.category)
                and (self.provider == "All" or t.provider == self.provider)
                and (not q or q in t.title.lower())]

    @rx.var
    def favourite_tiles(self) -> list[GameTile]:
        by_name = {t.name: t for t in self.all_tiles}
        return [by_name[n] for n in self.favourites if n in by_name]

    @rx.var
    def recent_tiles(self) -> list[GameTile]:
        by_name = {t.name: t for t in self.all_tiles}
        return [by_name[n] for n in self.recent if n in by_name]

    @rx.event
    async def load(self):
        """on_load of the lobby: a signed-in player's favourites and recent games."""
        self.message = ""
        self.provider_tiles = await asyncio.to_thread(_provider_tiles)
        _, me = await caller(self)
        self.signed_in = me is not None
        if me is None:
            self.favourites, self.recent = [], []
            return

        def read() -> tuple[list[str], list[str]]:
            recent = history.recent_games(me.player_id)
            return (history.favourites(me.player_id),
                    [*recent, *catalogue.recent_keys(me.player_id)][:8])

        self.favourites, self.recent = await asyncio.to_thread(read)

    @rx.event
    def choose_category(self, value: str):
        if isinstance(value, str) and value in self.category_names:
            self.category = value

    @rx.event
    def choose_provider(self, value: str):
        if isinstance(value, str) and value in self.provider_names:
            self.provider = value

    @rx.event
    def search_games(self, text: str):
        if isinstance(text, str):
            self.query = text[:MAX_TEXT]

    @rx.event
    async def toggle_favourite(self, name: str):
        self.message = ""
        _, me = await caller(self)
        if me is None:
            return rx.redirect(routes.login_then(routes.HOME))
        if not isinstance(name, str) or (name not in GAMES and not catalogue.is_key(name)):
            return None
        on = name not in self.favourites
        try:
            self.favourites = await asyncio.to_thread(history.set_favourite, me.player_id,
                                                      name, on)
        except ValueError as exc:
            self.message = str(exc)
        return None
