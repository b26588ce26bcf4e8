"""A currency on a chain: how its on-chain amounts map to the ledger's.

The ledger counts every currency in its own base unit (payments/currencies.py: ETH in
gwei, BTC in satoshi, USDT in micro-USDT). On a chain the same coin may be counted finer
(ether in wei, a token in its contract's decimals): an :class:`Asset` says, for one
currency on one chain, which token carries it (None: the chain's native coin) and how many
on-chain units make one ledger unit. A credit rounds down (the rest stays on chain,
uncredited, and reconciliation knows it); a payment multiplies.

Also the ``CUR:amount`` list settings in base units that every chain's limits use
(``parse_amounts``). Nothing here knows a chain: each chain's adapter builds its assets
(payments/eth/watcher.chain_assets reads the tokens' decimals from the node). The exact
text of on-chain amounts for staff is in payments/custody.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from casino_app.payments.currencies import currency

# On-chain decimals of the native coins (ether: wei; bitcoin: satoshi).
NATIVE_DECIMALS = {"ETH": 18, "BTC": 8}


@dataclass(frozen=True)
class Asset:
    code: str            # the ledger currency
    token: str | None    # the token contract (checksummed); None: the native coin
    per_unit: int        # on-chain units per ledger unit (ETH: wei per gwei)

    def to_ledger(self, raw: int) -> int:
        """On-chain units as ledger units, rounded down (the rest is not credited)."""
        return raw // self.per_unit

    def to_chain(self, amount: int) -> int:
        """Ledger units as on-chain units."""
        return amount * self.per_unit


def native_per_unit(code: str) -> int | None:
    """On-chain units per ledger unit of a native coin (ETH: 10**9 wei per gwei); None for
    a currency that is no chain's native coin (a token's decimals are its contract's)."""
    decimals = NATIVE_DECIMALS.get(code)
    return None if decimals is None else 10 ** (decimals - currency(code).decimals)


def parse_amounts(spec: str, what: str) -> dict[str, int]:
    """"CUR:amount,CUR:amount" (base units) -> {CUR: amount}; ValueError names ``what``."""
    out: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        m = re.fullmatch(r"([A-Z]{2,8}):(\d{1,19})", part)
        if m is None:
            raise ValueError(f"{what}: '{part}' is not CUR:amount (base units)")
        out[currency(m.group(1)).code] = int(m.group(2))
    return out
