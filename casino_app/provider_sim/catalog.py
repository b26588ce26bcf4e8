"""What the studio offers: its games, their listing in each dialect, stake menus and
amount units, the dishonest paytables of the "rtp-skew" misbehaviour, and thumbnails."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from html import escape

from casino_app.games.providers import hhsim

PRODUCT = "HashHouse Sim"
HUB88_UNIT_DIGITS = 5  # Hub88 amounts are value x 100000 whatever the currency
DEMO_CURRENCY = "FUN"  # what the page calls play money
DEMO_BALANCE = 100_000  # 1000.00 in cents
# BGaming amounts are the currency's subunits: the casino's base units.
SUBUNIT_DIGITS = {"FUN": 2, "BTC": 8, "ETH": 9, "USDT": 6, "USDC": 6}
DEFAULT_DIGITS = 2
STAKE_MENUS = {
    "BTC": ("0.0001", "0.0005", "0.001", "0.005", "0.01"),
    "ETH": ("0.001", "0.005", "0.01", "0.05", "0.1"),
    "USDT": ("0.1", "0.5", "1", "5", "10"),
    "USDC": ("0.1", "0.5", "1", "5", "10"),
}
DEFAULT_STAKES = ("1", "2", "5", "10", "25")
STAKE_STEP = 100  # stakes are multiples of 100 units, so every win is exact


@dataclass(frozen=True)
class GameInfo:
    code: str
    name: str
    kind: str  # "spin" or "ladder"
    hub88_category: str
    bgaming_category: str
    volatility: int  # 1 (low) .. 5 (high)
    colour: str
    glyph: str


GAMES: dict[str, GameInfo] = {
    "hh-slot": GameInfo("hh-slot", "Hash Slot", "spin", "Video Slots", "slots", 4,
                        "#7c3aed", "#"),
    "hh-ladder": GameInfo("hh-ladder", "Hash Ladder", "ladder", "Instant Win", "casual", 3,
                          "#0d9488", "\u2191"),
}
VOLATILITY_WORDS = {1: "low", 2: "low", 3: "medium", 4: "high", 5: "very high"}
LADDER_STEPS = len(hhsim.LADDER.steps)

# "rtp-skew": richer than declared. Slot about 151.5%, ladder 150% a step.
SKEWED: dict[str, hhsim.SlotTable | hhsim.LadderTable] = {
    "hh-slot": hhsim.SlotTable((hhsim.Row(256, 5000), hhsim.Row(2048, 1000),
                                hhsim.Row(4096, 500), hhsim.Row(12288, 200),
                                hhsim.Row(16384, 128), hhsim.Row(30464, 0))),
    "hh-ladder": hhsim.LadderTable(tuple(hhsim.Row(hhsim.WEIGHT_TOTAL >> (i + 1), 300 << i)
                                         for i in range(LADDER_STEPS))),
}


def unit_digits(dialect: str, currency: str, demo: bool) -> int:
    """How many decimal digits one unit of the dialect's amounts is."""
    if demo:
        return SUBUNIT_DIGITS[DEMO_CURRENCY]
    if dialect == "hub88":
        return HUB88_UNIT_DIGITS
    return SUBUNIT_DIGITS.get(currency.upper(), DEFAULT_DIGITS)


def to_units(value: str, digits: int) -> int | None:
    """A decimal text as units, or None if it is not a whole number of them."""
    scaled = Decimal(value).scaleb(digits)
    return int(scaled) if scaled == scaled.to_integral_value() else None


def format_units(amount: int, digits: int) -> str:
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 10**digits)
    return f"{sign}{whole}.{frac:0{digits}d}" if digits else f"{sign}{whole}"


def display_units(amount: int, digits: int) -> str:
    """For people: ``format_units`` without trailing zeros past the cents (98.00, 0.0015)."""
    text = format_units(amount, digits)
    if digits > 2:
        text = text.rstrip("0")
        whole, _, frac = text.partition(".")
        text = f"{whole}.{frac.ljust(2, '0')}"
    return text


def stake_choices(dialect: str, currency: str, demo: bool) -> list[int]:
    """The stakes the page offers, in units: the currency's menu, kept to multiples of
    100 units (a value too small for the dialect's unit is left out)."""
    digits = unit_digits(dialect, currency, demo)
    menu = DEFAULT_STAKES if demo else STAKE_MENUS.get(currency.upper(), DEFAULT_STAKES)
    out = []
    for value in menu:
        units = to_units(value, digits)
        if units and units % STAKE_STEP == 0:
            out.append(units)
    if not out:  # a currency whose menu does not fit: the smallest sensible stakes
        out = [STAKE_STEP * m for m in (1, 5, 10, 50)]
    return out


def hub88_game(info: GameInfo, origin: str) -> dict[str, object]:
    return {
        "game_code": info.code,
        "name": info.name,
        "product": PRODUCT,
        "category": info.hub88_category,
        "platforms": ["GPL_DESKTOP", "GPL_MOBILE"],
        "enabled": True,
        "demo_game_support": True,
        "volatility": VOLATILITY_WORDS[info.volatility],
        "rtp": hhsim.rtp_text(info.code),
        "url_thumb": f"{origin}/assets/thumbs/{info.code}.svg",
        "url_background": f"{origin}/assets/backgrounds/{info.code}.svg",
        "fair_scheme": hhsim.SCHEME,
    }


def bgaming_game(info: GameInfo, origin: str) -> dict[str, object]:
    return {
        "identifier": info.code,
        "title": info.name,
        "category": info.bgaming_category,
        "rtp": hhsim.rtp_text(info.code),
        "volatility": VOLATILITY_WORDS[info.volatility],
        "thumbnail": f"{origin}/assets/thumbs/{info.code}.svg",
        "has_demo": True,
        "fair_scheme": hhsim.SCHEME,
    }


def thumbnail_svg(info: GameInfo, background: bool = False) -> bytes:
    """A small generated picture: the game's glyph and name on its colour."""
    w, h = (1280, 720) if background else (320, 240)
    size = h // 2
    label = "" if background else (
        f'<text x="{w // 2}" y="{h - 24}" font-family="sans-serif" font-size="28" '
        f'fill="#fff" text-anchor="middle">{escape(info.name)}</text>')
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}"><defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1">'
        f'<stop offset="0" stop-color="{info.colour}"/><stop offset="1" stop-color="#111827"/>'
        f'</linearGradient></defs><rect width="{w}" height="{h}" fill="url(#g)"/>'
        f'<text x="{w // 2}" y="{h // 2 + size // 3}" font-family="monospace" '
        f'font-size="{size}" fill="#ffffff" fill-opacity="0.9" text-anchor="middle">'
        f'{escape(info.glyph)}</text>{label}</svg>').encode()
