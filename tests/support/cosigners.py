"""Cold-wallet cosigners for tests: the staff members' signing devices, played by keys the
test holds (BIP39 mnemonics -> BIP48 P2WSH accounts m/48'/coin'/0'/2'), signing PSBTs with
embit's signer (``PSBT.sign_with``), each on its own copy as a separate device would.

Nothing in ``casino_app`` holds a cold private key; these keys exist only in tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from casino_app.payments.btc.cold import ColdWallet, parse_cold_keys
from casino_app.payments.btc.network import Network

# Three valid BIP39 mnemonics (entropy 0x01.., 0x02.., 0x03..; public, for tests only) and
# a fourth whose key is nobody's in the wallet.
MNEMONICS = (
    "absurd amount doctor acoustic avoid letter advice cage absurd amount doctor adjust",
    "acoustic avoid letter advice cage absurd amount doctor acoustic avoid letter affair",
    "adapt blossom school alcohol coral light army gather adapt blossom school almost",
)
OUTSIDER = "all all all all all all all all all all all all"


@dataclass
class TestCosigner:
    """A staff member's device: a seed, its BIP48 P2WSH account, and a signer."""

    __test__ = False  # not a pytest class

    mnemonic: str
    network: Network
    account: int = 0
    root: Any = field(init=False, repr=False)

    def __post_init__(self) -> None:
        from embit import bip32, bip39

        self.root = bip32.HDKey.from_seed(bip39.mnemonic_to_seed(self.mnemonic))

    @property
    def fingerprint(self) -> str:
        return self.root.my_fingerprint.hex()

    @property
    def path(self) -> str:
        return f"m/48h/{self.network.coin_type}h/{self.account}h/2h"

    def account_key(self, form: str = "plain") -> str:
        """The account's public key: ``plain`` (xpub/tpub) or ``slip132`` (Zpub/Vpub)."""
        from embit.networks import NETWORKS

        net = NETWORKS["main" if self.network.is_mainnet else "test"]
        version = net["xpub"] if form == "plain" else net["Zpub"]
        return self.root.derive(self.path).to_public().to_base58(version=version)

    def account_private(self) -> str:
        """The account's PRIVATE key (xprv/tprv): what must never be configured."""
        from embit.networks import NETWORKS

        net = NETWORKS["main" if self.network.is_mainnet else "test"]
        return self.root.derive(self.path).to_base58(version=net["xprv"])

    def entry(self, form: str = "plain") -> str:
        """``[fingerprint/48h/coin'h/0h/2h]key``: this cosigner's CASINO_BTC_COLD_KEYS entry."""
        return f"[{self.fingerprint}{self.path[1:]}]{self.account_key(form)}"

    def sign(self, data: bytes | str) -> bytes:
        """Sign every input this device holds a key for; the PSBT the device gives back
        (binary), with this cosigner's signatures only."""
        from embit.psbt import PSBT

        from casino_app.payments.btc import psbt as cold_psbt

        tx = PSBT.parse(cold_psbt.decode(data))
        if tx.sign_with(self.root) == 0:
            raise AssertionError(f"cosigner {self.fingerprint} found nothing to sign")
        return tx.serialize()


def cosigners(network: Network, mnemonics: tuple[str, ...] = MNEMONICS,
              account: int = 0) -> list[TestCosigner]:
    return [TestCosigner(m, network, account) for m in mnemonics]


def own_cosigners(network: Network) -> list[TestCosigner]:
    """The test cosigners' keys of a random BIP48 account: a cold wallet of one test's own.
    Tests share a session's node, and reconciliation counts every coin on the cold
    wallet's addresses: with account 0 in every test, an earlier test's coins would be
    counted in the next one's books."""
    import secrets

    return cosigners(network, account=1 + secrets.randbelow(2**31 - 1))


def cold_keys_setting(signers: list[TestCosigner], form: str = "plain") -> str:
    return ",".join(c.entry(form) for c in signers)


def wallet_of(signers: list[TestCosigner], network: Network, threshold: int = 2) -> ColdWallet:
    return ColdWallet(parse_cold_keys(cold_keys_setting(signers), network), threshold, network)
