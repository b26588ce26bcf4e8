"""Ethereum as the shared payments modules see it (payments/chains.Chain): the currencies it
takes (ETH and the configured ERC-20 tokens; none without a node), its withdrawal limits
(``CASINO_ETH_WITHDRAW_*``), what a withdrawal address must be (EIP-55, not the zero
address, not one of ours), how a rejected withdrawal's Safe payment is taken back
(payments/eth/safe_payments.py) and how its list settings are checked. Also what the
wallet page shows of the network: the EIP-681 URI of a deposit address (what the QR code
holds) and a readable name for the chain id.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session
from web3 import Web3

from casino_app.core.settings import Settings, get_settings
from casino_app.payments.assets import parse_amounts
from casino_app.payments.chains import AddressHint, Limits
from casino_app.payments.currencies import MAX_AMOUNT, currency
from casino_app.payments.custody import parse_band
from casino_app.payments.eth import addresses, keys, safe_payments
from casino_app.payments.eth.chain import ZERO_ADDRESS
from casino_app.payments.eth.watcher import CHAIN, parse_tokens


def _address(name: str, value: str) -> None:
    if value and not Web3.is_checksum_address(value):
        raise ValueError(f"{name}: '{value}' is not a checksummed (EIP-55) address")


class Ethereum:
    """The Ethereum adapter (one instance, ``ETHEREUM``, listed in payments/adapters.py)."""

    name = CHAIN

    def setting_checks(self, st: Settings) -> list[Callable[[], object]]:
        amounts = {"CASINO_ETH_PENDING_CAP": st.eth_pending_cap,
                   "CASINO_ETH_DUST": st.eth_dust,
                   "CASINO_ETH_WITHDRAW_MIN": st.eth_withdraw_min,
                   "CASINO_ETH_WITHDRAW_MAX": st.eth_withdraw_max,
                   "CASINO_ETH_WITHDRAW_FEE": st.eth_withdraw_fee,
                   "CASINO_ETH_WITHDRAW_LARGE": st.eth_withdraw_large,
                   "CASINO_ETH_SWEEP_MIN": st.eth_sweep_min}
        return [
            lambda: parse_tokens(st.eth_tokens),
            *[(lambda n=name, v=value: parse_amounts(v, n)) for name, value in amounts.items()],
            lambda: parse_band(st.eth_hot_band),
            lambda: _address("CASINO_ETH_SAFE_ADDRESS", st.eth_safe_address),
            lambda: _address("CASINO_ETH_BATCH_CONTRACT", st.eth_batch_contract),
        ]

    def currencies(self) -> list[str]:
        """ETH and the configured tokens (none without a node)."""
        st = get_settings()
        if not st.eth_rpc_url:
            return []
        return ["ETH", *parse_tokens(st.eth_tokens)]

    def withdrawal_limits(self, code: str) -> Limits:
        st = get_settings()
        code = currency(code).code
        low = parse_amounts(st.eth_withdraw_min, "CASINO_ETH_WITHDRAW_MIN").get(code, 1)
        high = parse_amounts(st.eth_withdraw_max, "CASINO_ETH_WITHDRAW_MAX").get(
            code, MAX_AMOUNT)
        fee = parse_amounts(st.eth_withdraw_fee, "CASINO_ETH_WITHDRAW_FEE").get(code, 0)
        large = parse_amounts(st.eth_withdraw_large, "CASINO_ETH_WITHDRAW_LARGE").get(code)
        return Limits(code, max(1, low), high, fee, large)

    def check_address(self, text: object) -> str:
        """EIP-55 (any spelling accepted, stored checksummed); never the zero address."""
        address = keys.checksum(text)
        if address == ZERO_ADDRESS:
            raise ValueError("This is the zero address: funds sent there are lost.")
        return address

    def address_hint(self) -> AddressHint:
        return AddressHint("Ethereum", "0x…",
                           r"\s*0x[0-9a-fA-F]{40}\s*", "0x followed by 40 hex characters")

    def is_own_address(self, s: Session, address: str) -> bool:
        """A deposit address, the hot wallet, the Safe, BatchPay or a token contract."""
        st = get_settings()
        ours = {keys.hot_wallet_address()}
        for extra in (st.eth_batch_contract, st.eth_safe_address,
                      *parse_tokens(st.eth_tokens).values()):
            if extra:
                try:
                    ours.add(keys.checksum(extra))
                except ValueError:
                    continue
        return address in ours or bool(addresses.owners(s, CHAIN, [address]))

    def take_back_cold_payment(self, s: Session, withdrawal_id: int, reason: str) -> bool:
        return safe_payments.cancel_for_withdrawal(s, withdrawal_id, reason)


ETHEREUM = Ethereum()


# --- the wallet page -------------------------------------------------------------------------

# Chain ids a casino may run on, by name; anything else is named by its id.
NETWORKS = {
    1: "Ethereum mainnet",
    11155111: "Sepolia testnet",
    17000: "Holesky testnet",
    560048: "Hoodi testnet",
    31337: "the local development chain",
}


def network_name(chain_id: int) -> str:
    return NETWORKS.get(chain_id, f"the network with chain id {chain_id}")


def payment_uri(address: str, chain_id: int, token: str | None = None) -> str:
    """EIP-681: ``ethereum:<address>@<chain id>`` for ether; for an ERC-20 token,
    ``ethereum:<token>@<chain id>/transfer?address=<address>`` (wallets ask the amount)."""
    if token is None:
        return f"ethereum:{address}@{chain_id}"
    return f"ethereum:{token}@{chain_id}/transfer?address={address}"
