"""Payment settings written as lists in one string ("CUR:amount,..."), parsed the way the
code that uses them parses them, so that ``casino config check``, ``casino run`` and
``casino worker`` refuse a malformed one before anything starts, naming the variable,
instead of a job or a page failing later (or a display rate silently missing)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from casino_app.core.settings import Settings


def _address(name: str, value: str) -> None:
    from web3 import Web3

    if value and not Web3.is_checksum_address(value):
        raise ValueError(f"{name}: '{value}' is not a checksummed (EIP-55) address")


def _checks(st: Settings) -> list[Callable[[], Any]]:
    from casino_app.payments import currencies
    from casino_app.payments.assets import parse_amounts
    from casino_app.payments.eth.custody import parse_band
    from casino_app.payments.eth.watcher import parse_tokens
    from casino_app.payments.rates import FixedSource

    def bet_limits() -> None:
        currencies.reset_currencies()
        try:
            currencies.all_currencies()
        finally:
            currencies.reset_currencies()

    amounts = {"CASINO_ETH_PENDING_CAP": st.eth_pending_cap, "CASINO_ETH_DUST": st.eth_dust,
               "CASINO_ETH_WITHDRAW_MIN": st.eth_withdraw_min,
               "CASINO_ETH_WITHDRAW_MAX": st.eth_withdraw_max,
               "CASINO_ETH_WITHDRAW_FEE": st.eth_withdraw_fee,
               "CASINO_ETH_WITHDRAW_LARGE": st.eth_withdraw_large,
               "CASINO_ETH_SWEEP_MIN": st.eth_sweep_min}
    return [
        bet_limits,
        lambda: parse_tokens(st.eth_tokens),
        *[(lambda n=name, v=value: parse_amounts(v, n)) for name, value in amounts.items()],
        lambda: parse_band(st.eth_hot_band),
        lambda: _address("CASINO_ETH_SAFE_ADDRESS", st.eth_safe_address),
        lambda: _address("CASINO_ETH_BATCH_CONTRACT", st.eth_batch_contract),
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
