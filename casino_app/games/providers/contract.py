"""The seamless-wallet contract, once, in our own words (SEAMLESS_WALLET.md).

A dialect adapter parses a provider's request into a :class:`WalletRequest` of
:class:`Call` objects in our base units, and renders a :class:`WalletAnswer` (or a
:class:`Refused`) back in its own words. ``wallet.py`` applies requests; nothing there
knows a dialect.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Status(StrEnum):
    """The contract's answers; each dialect maps them onto its own codes."""

    ok = "OK"
    unknown_error = "UNKNOWN_ERROR"
    invalid_partner = "INVALID_PARTNER"
    invalid_token = "INVALID_TOKEN"  # noqa: S105 - a status name, no secret
    token_expired = "TOKEN_EXPIRED"  # noqa: S105 - a status name, no secret
    invalid_game = "INVALID_GAME"
    wrong_currency = "WRONG_CURRENCY"
    not_enough_money = "NOT_ENOUGH_MONEY"
    user_disabled = "USER_DISABLED"
    invalid_signature = "INVALID_SIGNATURE"
    wrong_syntax = "WRONG_SYNTAX"
    wrong_types = "WRONG_TYPES"
    duplicate_transaction = "DUPLICATE_TRANSACTION"
    transaction_does_not_exist = "TRANSACTION_DOES_NOT_EXIST"
    limit_reached = "LIMIT_REACHED"


class Refused(Exception):
    """A request refused as a whole: nothing it asked for was applied."""

    def __init__(self, status: Status, message: str = "", balance: int | None = None,
                 currency: str | None = None) -> None:
        super().__init__(message or status.value)
        self.status = status
        self.message = message or status.value.replace("_", " ").lower()
        self.balance = balance      # the player's balance, in base units, when known
        self.currency = currency
        # (kind, severity, subject, detail) of an alert to raise with the refusal
        self.alert: tuple[str, str, str, str] | None = None


@dataclass(frozen=True)
class Call:
    """One money call in base units. ``reference`` is the transaction a rollback undoes
    (or, for a win, the bet it answers, when the dialect names it)."""

    kind: str            # "bet", "win" or "rollback"
    tx_ref: str
    amount: int = 0      # base units (0 for a rollback: the original's amount is used)
    reference: str = ""

    def fingerprint_fields(self) -> tuple:
        return (self.kind, self.amount, self.reference)


@dataclass(frozen=True)
class WalletRequest:
    """What a provider asks in one request: a balance (no calls), or calls applied in
    order, all or none."""

    player_id: str
    currency: str | None = None
    game_code: str = ""
    round_ref: str = ""
    token: str | None = None
    closes_round: bool = False
    calls: tuple[Call, ...] = ()
    fair: dict | None = None     # commit-reveal data the provider sent with the round
    info: bool = False           # "who is this player": no currency, no balance


@dataclass(frozen=True)
class Applied:
    """Our answer for one call: our transaction id, when, and whether it was a repeat."""

    tx_ref: str
    our_id: str
    processed_at: datetime
    repeat: bool = False
    marker: bool = False   # a rollback of a transaction never seen (a tombstone left)


@dataclass
class WalletAnswer:
    """The player's balance after the request, and one :class:`Applied` per call. A
    repeat of an earlier request carries that request's stored answer (``stored``)."""

    player_id: str
    currency: str
    balance: int
    applied: list[Applied] = field(default_factory=list)
    stored: bytes | None = None
