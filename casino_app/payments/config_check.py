"""Payment settings written as lists in one string ("CUR:amount,..."), parsed the way the
code that uses them parses them, so that ``casino config check``, ``casino run`` and
``casino worker`` refuse a malformed one before anything starts, naming the variable,
instead of a job or a page failing later (or a display rate silently missing)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from casino_app.core.settings import Settings


def _bitcoin(st: Settings) -> None:
    """Bitcoin's settings. Bitcoin has no payments/chains.Chain adapter yet: until
    payments/btc has one (whose ``setting_checks`` takes this over), they are checked here,
    the one shared module that imports a chain package besides payments/adapters.py."""
    from casino_app.payments.btc import keys, network

    net = network.from_settings(st)
    if st.btc_xpub:
        try:
            keys.parse_account_key(st.btc_xpub, net)
        except ValueError as exc:
            raise ValueError(f"CASINO_BTC_XPUB: {exc}") from None
    elif st.is_production and st.btc_rpc_url:
        raise ValueError(f"CASINO_BTC_XPUB: production needs the BIP84 account's public key "
                         f"({net.account_path()}) when CASINO_BTC_RPC_URL is set")


def _bitcoin_cold(st: Settings) -> None:
    """The cold wallet's cosigner keys (payments/btc/cold.py), when configured."""
    from casino_app.payments.btc import cold, network

    if st.btc_cold_keys.strip():
        net = network.from_settings(st)
        try:
            cold.ColdWallet(cold.parse_cold_keys(st.btc_cold_keys, net),
                            st.btc_cold_threshold, net)
        except ValueError as exc:
            raise ValueError(f"CASINO_BTC_COLD_KEYS: {exc}") from None


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
        lambda: _bitcoin(st),
        lambda: _bitcoin_cold(st),
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
