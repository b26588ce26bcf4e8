"""The Bitcoin network the platform runs on: its parameters come from configuration.

``CASINO_BTC_NETWORK`` picks a preset; ``CASINO_BTC_BECH32_HRP`` overrides the bech32 prefix
(any regtest backend, whatever prefix it uses) and ``CASINO_BTC_CONFIRMATIONS`` the number of
confirmations after which a deposit is available. Nothing else in ``payments/btc`` hard-codes
a prefix, a version byte or a coin type: it asks :func:`current` (or takes a
:class:`Network`).

| preset | node's chain | bech32 | legacy P2PKH / P2SH | account keys | BIP44 coin | confirmations |
|---|---|---|---|---|---|---|
| mainnet | main | bc | 0x00 / 0x05 | xpub, zpub | 0 | 3 |
| testnet | test, testnet4 | tb | 0x6f / 0xc4 | tpub, vpub | 1 | 6 |
| signet | signet | tb | 0x6f / 0xc4 | tpub, vpub | 1 | 3 |
| regtest-core | regtest | bcrt | 0x6f / 0xc4 | tpub, vpub | 1 | 2 |
| regtest-bcoin | regtest | rb | 0x3c / 0x26 | tpub, vpub | 1 | 2 |

Account keys are BIP32 extended public keys of a BIP84 account (``m/84'/coin'/account'``):
the SLIP-132 form (zpub, vpub) says P2WPKH itself; the plain form (xpub, tpub) is accepted
too and used as P2WPKH, since that is the only script type the platform derives. bcoin's
regtest uses the prefix ``rb`` (and base58 versions 0x3c/0x26) where Bitcoin Core's uses
``bcrt``. Testnet is given 6 confirmations because its blocks come in bursts and reorgs are
common there.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from casino_app.core.settings import Settings, get_settings
from casino_app.payments.btc.bech32 import valid_hrp

XPUB = bytes.fromhex("0488b21e")
ZPUB = bytes.fromhex("04b24746")
TPUB = bytes.fromhex("043587cf")
VPUB = bytes.fromhex("045f1cf6")


@dataclass(frozen=True)
class Network:
    name: str                     # the preset's name (CASINO_BTC_NETWORK)
    label: str                    # shown to people: "Bitcoin testnet"
    node_chains: tuple[str, ...]  # what getblockchaininfo's "chain" says on this network
    bech32_hrp: str
    p2pkh_version: int
    p2sh_version: int
    xpub_version: bytes           # BIP32 plain form (xpub / tpub)
    zpub_version: bytes           # SLIP-132 P2WPKH form (zpub / vpub)
    coin_type: int                # BIP44 coin type: 0 mainnet, 1 every test network
    confirmations: int            # a deposit is available (withdrawable) at this depth

    @property
    def is_mainnet(self) -> bool:
        return self.coin_type == 0

    @property
    def account_key_forms(self) -> dict[bytes, str]:
        """Version bytes of the accepted account public keys and their names."""
        if self.is_mainnet:
            return {self.xpub_version: "xpub", self.zpub_version: "zpub"}
        return {self.xpub_version: "tpub", self.zpub_version: "vpub"}

    def account_path(self, account: int = 0) -> str:
        """The BIP84 account path on this network, e.g. ``m/84'/1'/0'``."""
        return f"m/84'/{self.coin_type}'/{account}'"


_TEST = {"p2pkh_version": 0x6F, "p2sh_version": 0xC4, "xpub_version": TPUB,
         "zpub_version": VPUB, "coin_type": 1}

PRESETS: dict[str, Network] = {
    "mainnet": Network("mainnet", "Bitcoin", ("main",), "bc", 0x00, 0x05, XPUB, ZPUB, 0, 3),
    "testnet": Network("testnet", "Bitcoin testnet", ("test", "testnet4"), "tb",
                       confirmations=6, **_TEST),
    "signet": Network("signet", "Bitcoin signet", ("signet",), "tb", confirmations=3, **_TEST),
    "regtest-core": Network("regtest-core", "Bitcoin regtest", ("regtest",), "bcrt",
                            confirmations=2, **_TEST),
    "regtest-bcoin": Network("regtest-bcoin", "Bitcoin regtest (bcoin)", ("regtest",), "rb",
                             confirmations=2, **{**_TEST, "p2pkh_version": 0x3C,
                                                 "p2sh_version": 0x26}),
}

# Which network a bech32 prefix belongs to, for error messages ("this is a testnet address").
KNOWN_HRPS = {"bc": "Bitcoin mainnet", "tb": "Bitcoin testnet or signet",
              "bcrt": "Bitcoin regtest", "rb": "bcoin regtest"}


def from_settings(st: Settings) -> Network:
    """The configured network; ValueError naming the variable for a bad value."""
    try:
        net = PRESETS[st.btc_network]
    except KeyError:
        raise ValueError(f"CASINO_BTC_NETWORK: unknown network '{st.btc_network}' "
                         f"(one of {', '.join(PRESETS)})") from None
    if st.btc_bech32_hrp:
        if not valid_hrp(st.btc_bech32_hrp):
            raise ValueError(f"CASINO_BTC_BECH32_HRP: '{st.btc_bech32_hrp}' is not a bech32 "
                             "prefix (1 to 83 lowercase printable ASCII characters)")
        net = replace(net, bech32_hrp=st.btc_bech32_hrp)
    if st.btc_confirmations:
        net = replace(net, confirmations=st.btc_confirmations)
    return net


def current() -> Network:
    """The network of the current settings."""
    return from_settings(get_settings())
