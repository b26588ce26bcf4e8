"""Payment settings written as lists in one string ("CUR:amount,..."), parsed the way the
code that uses them parses them, so that ``casino config check``, ``casino run`` and
``casino worker`` refuse a malformed one before anything starts, naming the variable,
instead of a job or a page failing later (or a display rate silently missing)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from casino_app.core.settings import Settings


def _checks(st: Settings) -> list[Callable[[], Any]]:
    from casino_app.payments import adapters, currencies
    from casino_app.payments.rates import FixedSource

    def bet_limits() -> None:
        currencies.reset_currencies()
        try:
            currencies.all_currencies()
        finally:
            currencies.reset_currencies()

    return [
        bet_limits,
        # each chain's own list settings (CASINO_ETH_TOKENS, CASINO_ETH_WITHDRAW_MIN, ...)
        *[check for chain in adapters.CHAINS for check in chain.setting_checks(st)],
        lambda: st.rates_url or FixedSource.parse(st.rates_fixed),
    ]


def spec_errors(st: Settings) -> list[str]:
    """One message per malformed setting (each names its variable); [] when all parse."""
    errors: list[str] = []
    for check in _checks(st):
        try:
            check()
        except ValueError as exc:
            if str(exc) not in errors:  # a bad CASINO_BET_LIMITS fails every currency
                errors.append(str(exc))
    return errors
