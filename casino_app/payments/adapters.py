"""The chains this casino runs: one adapter per chain package (payments/chains.Chain).

A new chain is one line here (its adapter added to ``CHAINS``). The shared modules find a chain by its name (the ``chain`` column of
their rows) or by the currency a player picked.
"""

from __future__ import annotations

from casino_app.payments.btc.adapter import BITCOIN
from casino_app.payments.chains import Chain
from casino_app.payments.eth.adapter import ETHEREUM

CHAINS: tuple[Chain, ...] = (ETHEREUM, BITCOIN)


def chain(name: str) -> Chain:
    """The adapter of the chain named ``name``; LookupError for an unknown name."""
    for c in CHAINS:
        if c.name == name:
            return c
    raise LookupError(f"no adapter for the chain {name!r}")


def currencies() -> list[str]:
    """Every currency the casino takes and pays now, chain by chain (ValueError for a
    malformed setting)."""
    return [code for c in CHAINS for code in c.currencies()]


def for_currency(code: str) -> Chain | None:
    """The chain that takes and pays ``code`` now (None: none does)."""
    for c in CHAINS:
        if code in c.currencies():
            return c
    return None
