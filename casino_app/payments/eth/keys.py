"""Public keys of the hot wallet: deposit addresses from its account xpub, EIP-55 checks.

The web process holds public keys only. The hot wallet's account-level extended public key
(BIP44 ``m/44'/60'/0'``) is ``CASINO_ETH_XPUB``; in development, when that is empty, the
signer (``payments/signer``) writes the xpub of its development seed to
``<data_dir>/dev-hot-wallet.xpub`` and this module reads that file. Nothing here reads a
seed or a private key.

Address ``i`` is the non-hardened child ``.../0/i`` of the account key (the external
chain), derived publicly with bitcoinlib; its uncompressed public key hashed with keccak
(eth-keys) gives the address, returned checksummed (EIP-55).
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from eth_keys import keys as eth_keys
from eth_utils import is_checksum_address as _eth_is_checksum
from eth_utils import to_checksum_address

from casino_app.core.settings import ConfigError, Settings, get_settings

MAX_INDEX = 2**31  # non-hardened children only: 0 <= index < 2**31
ACCOUNT_DEPTH = 3  # m / 44' / 60' / account'
DEV_XPUB_FILE = "dev-hot-wallet.xpub"

_XPUB_VERSION = bytes.fromhex("0488b21e")  # "xpub": BIP32 mainnet public
_XPRV_VERSION = bytes.fromhex("0488ade4")
_HARDENED = 2**31
_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_HEX_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


def _base58check_decode(text: str) -> bytes:
    """Payload of a base58check string; ValueError on a bad character or checksum.

    bitcoinlib does not verify the checksum of an extended key (a changed last character
    is accepted), so the check is done here.
    """
    num = 0
    for ch in text:
        pos = _BASE58.find(ch)
        if pos < 0:
            raise ValueError("not base58")
        num = num * 58 + pos
    raw = num.to_bytes((num.bit_length() + 7) // 8, "big")
    raw = b"\x00" * (len(text) - len(text.lstrip("1"))) + raw
    payload, check = raw[:-4], raw[-4:]
    if len(raw) < 5 or hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4] != check:
        raise ValueError("bad checksum")
    return payload


def validate_xpub(xpub: str) -> str:
    """The xpub, stripped, if it is an account-level BIP32 extended public key.

    Refuses anything else with a ValueError that says what was wrong: not a string, not
    base58check, a private key (xprv: the web process must never hold one), another
    version (tpub/ypub/zpub...), or a key at another depth than the account
    (m/44'/60'/0' has depth 3 and a hardened child number).
    """
    if not isinstance(xpub, str):
        raise ValueError("the hot wallet xpub must be a string")
    text = xpub.strip()
    if not text:
        raise ValueError("the hot wallet xpub is empty")
    if text.startswith(("xprv", "tprv", "yprv", "zprv")):
        raise ValueError("this is an extended PRIVATE key: give the account xpub, never the "
                         "xprv (the web process holds public keys only)")
    try:
        payload = _base58check_decode(text)
    except ValueError as exc:
        raise ValueError(f"not a valid xpub ({exc})") from None
    if len(payload) != 78:
        raise ValueError("not a valid xpub (wrong length)")
    version, depth = payload[:4], payload[4]
    child = int.from_bytes(payload[9:13], "big")
    if version == _XPRV_VERSION:
        raise ValueError("this is an extended PRIVATE key: give the account xpub")
    if version != _XPUB_VERSION:
        raise ValueError("not an xpub (a BIP32 mainnet extended public key starting "
                         "with 'xpub')")
    if depth != ACCOUNT_DEPTH or child < _HARDENED:
        raise ValueError(f"the xpub must be the account key m/44'/60'/0' (depth 3, "
                         f"hardened); this one has depth {depth}")
    if payload[45] not in (2, 3):
        raise ValueError("not a valid xpub (bad public key)")
    return text


@lru_cache(maxsize=8)
def _external_chain(xpub: str) -> Any:
    """The account key's child 0 (external chain), parsed once per xpub."""
    from bitcoinlib.keys import BKeyError, HDKey  # slow import (~0.7 s): on first use

    try:
        account = HDKey(xpub, network="bitcoin", witness_type="legacy")
    except BKeyError as exc:
        raise ValueError(f"not a valid xpub ({exc})") from None
    if account.is_private:  # validate_xpub refused it already; never derive from one
        raise ValueError("this is an extended PRIVATE key: give the account xpub")
    return account.child_public(0)


def address_at(xpub: str, index: int) -> str:
    """EIP-55 address of ``m/44'/60'/0'/0/index`` from the account xpub ``m/44'/60'/0'``."""
    if isinstance(index, bool) or not isinstance(index, int):
        raise ValueError("the derivation index must be an integer")
    if not 0 <= index < MAX_INDEX:
        raise ValueError(f"the derivation index must be in 0..{MAX_INDEX - 1}, not {index}")
    child = _external_chain(validate_xpub(xpub)).child_public(index)
    uncompressed: bytes = child.public_uncompressed_byte  # 0x04 || X || Y
    return eth_keys.PublicKey(uncompressed[1:]).to_checksum_address()


HOT_WALLET_CHANGE, HOT_WALLET_INDEX = 1, 0  # m/44'/60'/0'/1/0: off the deposit chain /0/i


def hot_wallet_address(xpub: str | None = None) -> str:
    """EIP-55 address of the hot wallet's sending key ``m/44'/60'/0'/1/0`` from the account
    xpub (default: :func:`hot_wallet_xpub`; public derivation, the signer holds the private
    twin). It is on the internal chain, so it is never a deposit address ``.../0/i``."""
    return _hot_address(validate_xpub(xpub) if xpub is not None else hot_wallet_xpub())


@lru_cache(maxsize=8)
def _hot_address(xpub: str) -> str:
    from bitcoinlib.keys import HDKey

    account = HDKey(xpub, network="bitcoin", witness_type="legacy")
    child = account.child_public(HOT_WALLET_CHANGE).child_public(HOT_WALLET_INDEX)
    return eth_keys.PublicKey(child.public_uncompressed_byte[1:]).to_checksum_address()


def is_checksum_address(text: object) -> bool:
    """True for "0x" + 40 hex digits whose letters' case matches EIP-55."""
    return isinstance(text, str) and bool(_HEX_ADDRESS.match(text)) and _eth_is_checksum(text)


def checksum(text: object) -> str:
    """The EIP-55 form of an address typed or pasted by a person, or ValueError.

    Surrounding spaces are ignored. An address written in one case only (all lowercase,
    or all uppercase hex) carries no checksum and is accepted; a mixed-case one must
    match its checksum, so a mistyped character is caught instead of losing funds.
    """
    if not isinstance(text, str):
        raise ValueError("Enter an Ethereum address (0x followed by 40 hex characters).")
    addr = text.strip()
    if not _HEX_ADDRESS.match(addr):
        raise ValueError("Enter an Ethereum address (0x followed by 40 hex characters).")
    body = addr[2:]
    if body != body.lower() and body != body.upper() and not _eth_is_checksum(addr):
        raise ValueError("This address has a wrong checksum (a character is mistyped): "
                         "copy it again.")
    return to_checksum_address(addr.lower())


def dev_xpub_path(settings: Settings | None = None) -> Path:
    """Where the signer leaves its development xpub for the web process."""
    return (settings or get_settings()).data_dir / DEV_XPUB_FILE


def hot_wallet_xpub() -> str:
    """The hot wallet's account xpub as the web process knows it (never from the seed).

    ``CASINO_ETH_XPUB`` when set; otherwise, in development only, the xpub file the signer
    writes when it starts. ConfigError (naming the variable) when there is none yet.
    """
    st = get_settings()
    if st.eth_xpub:
        try:
            return validate_xpub(st.eth_xpub)
        except ValueError as exc:
            raise ConfigError(f"CASINO_ETH_XPUB: {exc}") from None
    if st.is_production:
        raise ConfigError("CASINO_ETH_XPUB: production needs the hot wallet's account xpub "
                          "(m/44'/60'/0'); the web process never reads the seed")
    path = dev_xpub_path(st)
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        raise ConfigError(f"CASINO_ETH_XPUB is empty and the signer has not written {path} "
                          "yet: start `casino worker` (or `casino run`) once, or set "
                          "CASINO_ETH_XPUB") from None
    try:
        return validate_xpub(text)
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from None
