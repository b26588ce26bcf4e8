"""What the dialect modules share: strict JSON reading and exact unit conversion."""

from __future__ import annotations

import json
from typing import Any

from casino_app.games.providers.contract import Refused, Status
from casino_app.payments.currencies import MAX_AMOUNT, currency

MAX_ID = 128


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def load_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object; anything else is a syntax error."""
    try:
        value = json.loads(body.decode("utf-8"), parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise Refused(Status.wrong_syntax, "the body is not JSON") from None
    if not isinstance(value, dict):
        raise Refused(Status.wrong_syntax, "the body is not a JSON object")
    return value


def text(obj: dict, name: str, *, required: bool = True, max_len: int = MAX_ID,
         min_len: int = 1) -> str:
    value = obj.get(name)
    if value is None:
        if required:
            raise Refused(Status.wrong_syntax, f"{name} is missing")
        return ""
    if not isinstance(value, str):
        raise Refused(Status.wrong_types, f"{name} must be a string")
    if not min_len <= len(value) <= max_len or not value.isprintable():
        raise Refused(Status.wrong_types, f"{name} must be {min_len}-{max_len} "
                      "printable characters")
    return value


def flag(obj: dict, name: str, *, required: bool = True) -> bool:
    value = obj.get(name)
    if value is None:
        if required:
            raise Refused(Status.wrong_syntax, f"{name} is missing")
        return False
    if not isinstance(value, bool):
        raise Refused(Status.wrong_types, f"{name} must be true or false")
    return value


def integer(obj: dict, name: str) -> int:
    """A non-negative integer amount (never a float, not even 5.0)."""
    value = obj.get(name)
    if value is None:
        raise Refused(Status.wrong_syntax, f"{name} is missing")
    if isinstance(value, bool) or not isinstance(value, int):
        raise Refused(Status.wrong_types, f"{name} must be an integer")
    if value < 0 or value > MAX_AMOUNT:
        raise Refused(Status.wrong_types, f"{name} is out of range")
    return value


def optional_object(obj: dict, name: str) -> dict | None:
    value = obj.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise Refused(Status.wrong_types, f"{name} must be an object")
    return value


def currency_code(obj: dict, name: str = "currency") -> str:
    code = text(obj, name, max_len=8)
    try:
        return currency(code).code
    except ValueError:
        raise Refused(Status.wrong_currency, f"unknown currency {code}") from None


def to_base(units: int, code: str, decimals: int) -> int:
    """``units`` counted in 10^-``decimals`` of a coin, in our base units, exactly; an
    amount finer than our base unit is a type error (never rounded)."""
    ours = currency(code).decimals
    if decimals <= ours:
        return units * 10 ** (ours - decimals)
    step = 10 ** (decimals - ours)
    if units % step:
        raise Refused(Status.wrong_types, f"{code} amounts are whole multiples of "
                      f"{step} here (a fraction of our base unit)")
    return units // step


def from_base(amount: int, code: str, decimals: int) -> int:
    """Our base units counted in 10^-``decimals`` of a coin, rounded down (a balance
    shown to a provider is never more than the player has)."""
    ours = currency(code).decimals
    if decimals >= ours:
        return amount * 10 ** (decimals - ours)
    return amount // 10 ** (ours - decimals)


def dumps(obj: dict) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=True).encode()
