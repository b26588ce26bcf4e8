"""Bitcoin as the shared payments modules see it (payments/chains.Chain): the currency it
takes (BTC, when a node is configured), its withdrawal limits (``CASINO_BTC_WITHDRAW_*``,
satoshis), what a withdrawal address must be (a payable address of the configured network,
checked by payments/btc/keys.validate_address, never one of ours), and how its list
settings are checked (``casino config check``).

The chain's name in the shared tables (their ``chain`` column) is ``bitcoin``; the
network (mainnet, testnet, regtest...) is configuration (payments/btc/network.py), and one
casino runs one Bitcoin network.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from casino_app.core.settings import Settings, get_settings
from casino_app.payments.address_models import DepositAddress
from casino_app.payments.btc import keys, network
from casino_app.payments.btc.models import BtcChangeAddress, BtcUtxo
from casino_app.payments.chains import AddressHint, Limits
from casino_app.payments.currencies import MAX_AMOUNT
from casino_app.payments.custody import parse_band

CHAIN = "bitcoin"
CURRENCY = "BTC"


def _sats(name: str, value: str) -> int | None:
    """An optional amount setting in satoshis ("" = none)."""
    text = (value or "").strip()
    if not text:
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 16 or int(text) < 1:
        raise ValueError(f"{name}: '{text[:20]}' is not a whole number of satoshis (>= 1)")
    return int(text)


def parse_hot_band(spec: str) -> tuple[int, int] | None:
    """``CASINO_BTC_HOT_BAND`` "min:max" in satoshis (None when unset)."""
    text = (spec or "").strip()
    if not text:
        return None
    return parse_band(f"BTC:{text}", "CASINO_BTC_HOT_BAND")["BTC"]


def _account_key(st: Settings) -> None:
    net = network.from_settings(st)
    if st.btc_xpub:
        try:
            keys.parse_account_key(st.btc_xpub, net)
        except ValueError as exc:
            raise ValueError(f"CASINO_BTC_XPUB: {exc}") from None
    elif st.is_production and st.btc_rpc_url:
        raise ValueError(f"CASINO_BTC_XPUB: production needs the BIP84 account's public key "
                         f"({net.account_path()}) when CASINO_BTC_RPC_URL is set")


def _cold_keys(st: Settings) -> None:
    """The cold wallet's cosigner keys (payments/btc/cold.py), when configured."""
    from casino_app.payments.btc import cold

    if st.btc_cold_keys.strip():
        net = network.from_settings(st)
        try:
            cold.ColdWallet(cold.parse_cold_keys(st.btc_cold_keys, net),
                            st.btc_cold_threshold, net)
        except ValueError as exc:
            raise ValueError(f"CASINO_BTC_COLD_KEYS: {exc}") from None


def _fees(st: Settings) -> None:
    if not st.btc_fee_floor <= st.btc_fee_ceiling:
        raise ValueError("CASINO_BTC_FEE_FLOOR: above CASINO_BTC_FEE_CEILING")
    if not st.btc_fee_floor <= st.btc_fee_fallback <= st.btc_fee_ceiling:
        raise ValueError("CASINO_BTC_FEE_FALLBACK: not within CASINO_BTC_FEE_FLOOR and "
                         "CASINO_BTC_FEE_CEILING")


class Bitcoin:
    """The Bitcoin adapter (one instance, ``BITCOIN``, listed in payments/adapters.py)."""

    name = CHAIN

    def setting_checks(self, st: Settings) -> list[Callable[[], object]]:
        return [
            lambda: network.from_settings(st),
            lambda: _account_key(st),
            lambda: _cold_keys(st),
            lambda: _sats("CASINO_BTC_PENDING_CAP", st.btc_pending_cap),
            lambda: _sats("CASINO_BTC_WITHDRAW_MAX", st.btc_withdraw_max),
            lambda: _sats("CASINO_BTC_WITHDRAW_LARGE", st.btc_withdraw_large),
            lambda: parse_hot_band(st.btc_hot_band),
            lambda: _fees(st),
        ]

    def currencies(self) -> list[str]:
        """BTC when a node is configured."""
        return [CURRENCY] if get_settings().btc_rpc_url else []

    def withdrawal_limits(self, code: str) -> Limits:
        """``CASINO_BTC_WITHDRAW_*``; the minimum is never below the highest dust limit
        (546 sat, P2PKH): an output below it would not be relayed, whatever the address."""
        st = get_settings()
        high = _sats("CASINO_BTC_WITHDRAW_MAX", st.btc_withdraw_max) or MAX_AMOUNT
        large = _sats("CASINO_BTC_WITHDRAW_LARGE", st.btc_withdraw_large)
        low = max(st.btc_withdraw_min, max(keys.DUST_LIMITS.values()))
        return Limits(CURRENCY, low, max(high, low), st.btc_withdraw_fee, large)

    def check_address(self, text: object) -> str:
        """A payable address of the configured network (bech32/bech32m segwit or base58),
        as typed (bech32 lowercased)."""
        return keys.validate_address(text).text

    def address_hint(self) -> AddressHint:
        net = network.current()
        return AddressHint(net.label, f"{net.bech32_hrp}1q…", r"\s*[A-Za-z0-9]{14,90}\s*",
                           f"{net.bech32_hrp}1… (native segwit) or a legacy address")

    def is_own_address(self, s: Session, address: str) -> bool:
        """A player's deposit address, the hot wallet, one of its change addresses or an
        address of ours that has received coins (cold)."""
        if address == keys.hot_wallet_address():
            return True
        for table, column in ((DepositAddress, DepositAddress.address),
                              (BtcChangeAddress, BtcChangeAddress.address)):
            if s.execute(select(table.id).where(table.chain == CHAIN, column == address)
                         .limit(1)).first() is not None:
                return True
        return s.execute(select(BtcUtxo.id).where(
            BtcUtxo.chain == CHAIN, BtcUtxo.address == address,
            BtcUtxo.role != "deposit").limit(1)).first() is not None

    def take_back_cold_payment(self, s: Session, withdrawal_id: int, reason: str) -> bool:
        """A rejected withdrawal's cold payment by PSBT (payments/btc/cold_payments.py):
        cancelled and its coins freed while it cannot be broadcast; True (the money stays
        reserved) when signatures of enough cosigners were uploaded: it is ``cancelling``
        until one of its coins is spent."""
        from casino_app.payments.btc import cold_payments

        return cold_payments.take_back(s, withdrawal_id, reason)


BITCOIN = Bitcoin()
