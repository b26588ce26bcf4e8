"""What the shared payments modules ask of one chain: the :class:`Chain` interface that each
chain's adapter package implements (payments/eth/adapter.py; Bitcoin's next, in
payments/btc/), and the values that cross it.

The shared modules (withdrawals, deposits, holds, custody, activity, the sender's
bookkeeping) hold the rules that do not depend on a chain: the ledger entries, the states,
the reservations, the approvals. A chain's adapter answers the questions only that chain
can: which currencies it takes now, its limits, what an address on it must look like, which
addresses are ours, and how its cold wallet takes back a payment. The registry of the
adapters this casino runs is payments/adapters.py. Nothing here imports an adapter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.orm import Session

from casino_app.core.settings import Settings

# The chain of callers that name none: the wallet page, its push loop and the staff custody
# pages show Ethereum only until they name the chain they show.
DEFAULT_CHAIN = "ethereum"


@dataclass(frozen=True)
class Limits:
    """A currency's withdrawal limits and fee on its chain (base units)."""

    currency: str
    minimum: int
    maximum: int
    fee: int
    large: int | None   # from this amount two staff approve (None: never)


@dataclass(frozen=True)
class AddressHint:
    """What the withdraw form says about the address to type: the network's name (shown as
    "BTC on Bitcoin testnet"), a placeholder, a loose HTML pattern (the server judges) and
    the text shown when the pattern does not match."""

    network: str
    placeholder: str
    pattern: str
    title: str


class Chain(Protocol):
    """One chain, as the shared modules see it."""

    # The chain's name in the shared tables (their ``chain`` column): "ethereum".
    name: str

    def setting_checks(self, st: Settings) -> list[Callable[[], object]]:
        """One call per list setting of the chain, parsing it as the code that uses it
        does and raising ValueError naming the variable (``casino config check``)."""
        ...

    def currencies(self) -> list[str]:
        """The ledger currencies the casino takes and pays on this chain now, as
        configured (none without a node). ValueError for a malformed setting."""
        ...

    def withdrawal_limits(self, code: str) -> Limits:
        """The limits and fee of withdrawing ``code`` (from the chain's settings).
        ValueError for a malformed setting."""
        ...

    def check_address(self, text: object) -> str:
        """A player's withdrawal address in its stored form; ValueError, with a message
        safe to show, for anything that is not a payable address of this chain."""
        ...

    def address_hint(self) -> AddressHint:
        """What the withdraw form says about an address of this chain."""
        ...

    def is_own_address(self, s: Session, address: str) -> bool:
        """Whether ``address`` (as ``check_address`` returned it) is one of ours: a deposit
        address, a wallet, a contract. ConfigError when our keys are not known."""
        ...

    def take_back_cold_payment(self, s: Session, withdrawal_id: int, reason: str) -> bool:
        """Staff rejected a withdrawal awaiting approval: take back its cold-wallet payment
        if one is prepared and not sent (in the caller's transaction, the withdrawal row
        locked). True when that payment can no longer be taken back at once (its signers
        could still execute it): the withdrawal's money then stays reserved until the
        chain settles it."""
        ...
