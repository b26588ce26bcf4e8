"""Bitcoin public keys and addresses, as the web side knows them.

Deposit addresses are BIP84 native segwit (P2WPKH): address ``i`` is the public key
``m/84'/coin'/account'/0/i`` hashed (HASH160) into a version 0 witness program and written
in bech32 (BIP173) under the configured network's prefix. They are derived PUBLICLY (BIP32
non-hardened children, with bitcoinlib) from the account's extended public key
``CASINO_BTC_XPUB`` (zpub/vpub, or xpub/tpub taken as P2WPKH); in development, when that is
empty, from the file the signer writes (``<data_dir>/dev-btc-wallet.xpub``). Nothing here
reads a seed or a private key: the signer (``payments/signer/btc.py``) holds those.

Also here: validation of an address a player types for a withdrawal (bech32/bech32m with
their witness versions, base58 P2PKH/P2SH, each only for the configured network, with a
message that says what is wrong) and BIP21 payment URIs for QR codes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from casino_app.core.settings import ConfigError, Settings, get_settings
from casino_app.payments.btc import bech32
from casino_app.payments.btc import network as networks
from casino_app.payments.btc.network import XPUB, Network

MAX_INDEX = 2**31  # non-hardened children only: 0 <= index < 2**31
ACCOUNT_DEPTH = 3  # m / 84' / coin' / account'
RECEIVE, CHANGE = 0, 1  # BIP44 chains: deposit addresses are on 0, the hot wallet on 1
DEV_XPUB_FILE = "dev-btc-wallet.xpub"
MAX_SATS = 21_000_000 * 10**8
_HARDENED = 2**31
_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

# Extended key versions that are not an account's P2WPKH public key, and why not.
_PRIVATE_VERSIONS = {"0488ade4": "xprv", "04358394": "tprv", "049d7878": "yprv",
                     "044a4e28": "uprv", "04b2430c": "zprv", "045f18bc": "vprv",
                     "0295b005": "Yprv", "024285b5": "Uprv", "02aa7a99": "Zprv",
                     "02575048": "Vprv"}
_OTHER_PUBLIC = {"049d7cb2": ("ypub", "a P2SH-wrapped segwit (BIP49) account"),
                 "044a5262": ("upub", "a P2SH-wrapped segwit (BIP49) account"),
                 "0295b43f": ("Ypub", "a multisig account"),
                 "024289ef": ("Upub", "a multisig account"),
                 "02aa7ed3": ("Zpub", "a multisig account"),
                 "02575483": ("Vpub", "a multisig account")}
_MAINNET_PUBLIC = {"0488b21e": "xpub", "04b24746": "zpub"}
_TEST_PUBLIC = {"043587cf": "tpub", "045f1cf6": "vpub"}


class AddressKind(StrEnum):
    p2pkh = "p2pkh"    # base58, version = the network's P2PKH byte
    p2sh = "p2sh"      # base58, version = the network's P2SH byte
    p2wpkh = "p2wpkh"  # bech32, witness v0, 20 bytes
    p2wsh = "p2wsh"    # bech32, witness v0, 32 bytes
    p2tr = "p2tr"      # bech32m, witness v1, 32 bytes (Taproot)


# Outputs smaller than this are not relayed (Core's dust limits at 3 sat/vB).
DUST_LIMITS = {AddressKind.p2pkh: 546, AddressKind.p2sh: 540, AddressKind.p2wpkh: 294,
               AddressKind.p2wsh: 330, AddressKind.p2tr: 330}


@dataclass(frozen=True)
class Address:
    """A valid address of the configured network: its canonical text (bech32 in lower
    case), its kind and the output script (scriptPubKey) that pays it."""

    text: str
    kind: AddressKind
    script_pubkey: bytes


@dataclass(frozen=True)
class AccountKey:
    """A parsed account-level extended public key (BIP32 serialization)."""

    text: str
    form: str          # zpub, xpub (mainnet) or vpub, tpub (test networks)
    depth: int
    parent_fingerprint: bytes
    child_number: int
    chain_code: bytes
    public_key: bytes  # 33 bytes, compressed

    def normalised(self) -> str:
        """The same key serialized with the plain mainnet ``xpub`` version (what bitcoinlib
        derives from; the version bytes do not enter the derivation)."""
        return b58check_encode(XPUB + bytes([self.depth]) + self.parent_fingerprint
                                + self.child_number.to_bytes(4, "big") + self.chain_code
                                + self.public_key)


# --- base58check --------------------------------------------------------------------------

def _dsha256(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def b58check_decode(text: str) -> bytes:
    """Payload of a base58check string; ValueError on a bad character or checksum."""
    num = 0
    for ch in text:
        pos = _BASE58.find(ch)
        if pos < 0:
            raise ValueError(f"the character '{ch}' cannot appear in it")
        num = num * 58 + pos
    raw = num.to_bytes((num.bit_length() + 7) // 8, "big")
    raw = b"\x00" * (len(text) - len(text.lstrip("1"))) + raw
    if len(raw) < 5 or _dsha256(raw[:-4])[:4] != raw[-4:]:
        raise ValueError("its checksum does not match (a mistyped character?)")
    return raw[:-4]


def b58check_encode(payload: bytes) -> str:
    raw = payload + _dsha256(payload)[:4]
    num = int.from_bytes(raw, "big")
    out = ""
    while num:
        num, rem = divmod(num, 58)
        out = _BASE58[rem] + out
    return "1" * (len(raw) - len(raw.lstrip(b"\x00"))) + out


def hash160(data: bytes) -> bytes:
    """RIPEMD160(SHA256(data)) (bitcoinlib's, which works where OpenSSL lacks RIPEMD160)."""
    from bitcoinlib.encoding import hash160 as _hash160

    return bytes(_hash160(data))


# --- account keys and deposit addresses ---------------------------------------------------

def parse_account_key(text: object, network: Network | None = None) -> AccountKey:
    """The account's extended public key, checked for the network; ValueError saying what
    is wrong: not base58check, a private key (the web side must never hold one), another
    script type (ypub: BIP49, Zpub/Vpub: multisig), another network, or not an account key
    (``m/84'/coin'/account'`` has depth 3 and a hardened child number)."""
    net = network or networks.current()
    if not isinstance(text, str) or not text.strip():
        raise ValueError("the account key is empty")
    text = text.strip()
    try:
        payload = b58check_decode(text)
    except ValueError as exc:
        raise ValueError(f"not an extended public key ({exc})") from None
    if len(payload) != 78:
        raise ValueError("not an extended public key (wrong length)")
    version = payload[:4]
    vhex = version.hex()
    if vhex in _PRIVATE_VERSIONS:
        raise ValueError(f"this is an extended PRIVATE key ({_PRIVATE_VERSIONS[vhex]}): give "
                         "the account's public key, never the private one (the web side "
                         "holds public keys only)")
    if vhex in _OTHER_PUBLIC:
        form, what = _OTHER_PUBLIC[vhex]
        raise ValueError(f"this {form} is {what}; deposit addresses are native segwit "
                         "(BIP84): give the BIP84 account's zpub/vpub (or xpub/tpub)")
    forms = net.account_key_forms
    if version not in forms:
        if vhex in _MAINNET_PUBLIC or vhex in _TEST_PUBLIC:
            form = _MAINNET_PUBLIC.get(vhex) or _TEST_PUBLIC[vhex]
            kind = "a mainnet" if vhex in _MAINNET_PUBLIC else "a test network"
            raise ValueError(f"this {form} is {kind} key, but the casino runs on "
                             f"{net.label}: give a {' or '.join(forms.values())}")
        raise ValueError(f"not an extended public key this platform knows (version {vhex})")
    depth, child = payload[4], int.from_bytes(payload[9:13], "big")
    if depth != ACCOUNT_DEPTH or child < _HARDENED:
        raise ValueError(f"give the account key {net.account_path()} (depth 3, hardened); "
                         f"this one has depth {depth}")
    if payload[45] not in (2, 3):
        raise ValueError("not an extended public key (bad public key)")
    return AccountKey(text=text, form=forms[version], depth=depth,
                      parent_fingerprint=payload[5:9], child_number=child,
                      chain_code=payload[13:45], public_key=payload[45:78])


@lru_cache(maxsize=16)
def _chain_key(normalised_xpub: str, chain: int) -> Any:
    """The account key's child ``chain`` (0 receive, 1 change), parsed once per key."""
    from bitcoinlib.keys import BKeyError, HDKey  # slow import (~0.6 s): on first use

    try:
        account = HDKey(normalised_xpub, network="bitcoin", witness_type="legacy")
    except BKeyError as exc:
        raise ValueError(f"not an extended public key ({exc})") from None
    if account.is_private:  # parse_account_key refused it already; never derive from one
        raise ValueError("this is an extended PRIVATE key")
    return account.child_public(chain)


def _check_index(index: object) -> int:
    if isinstance(index, bool) or not isinstance(index, int):
        raise ValueError("the derivation index must be an integer")
    if not 0 <= index < MAX_INDEX:
        raise ValueError(f"the derivation index must be in 0..{MAX_INDEX - 1}, not {index}")
    return index


def public_key_at(xpub: str, chain: int, index: int, network: Network | None = None) -> bytes:
    """The compressed public key ``m/84'/coin'/account'/chain/index`` (public derivation)."""
    if chain not in (RECEIVE, CHANGE):
        raise ValueError("the chain is 0 (receive) or 1 (change)")
    key = parse_account_key(xpub, network)
    child = _chain_key(key.normalised(), chain).child_public(_check_index(index))
    return bytes(child.public_byte)


def p2wpkh_script(public_key: bytes) -> bytes:
    """The P2WPKH output script ``OP_0 <HASH160(pubkey)>`` of a compressed public key."""
    if len(public_key) != 33 or public_key[0] not in (2, 3):
        raise ValueError("P2WPKH needs a compressed public key (BIP143)")
    return b"\x00\x14" + hash160(public_key)


def p2wpkh_address(public_key: bytes, network: Network | None = None) -> str:
    net = network or networks.current()
    return bech32.encode_segwit(net.bech32_hrp, 0, p2wpkh_script(public_key)[2:])


def address_at(xpub: str, chain: int, index: int, network: Network | None = None) -> str:
    """The bech32 P2WPKH address ``m/84'/coin'/account'/chain/index`` of the account key."""
    net = network or networks.current()
    return p2wpkh_address(public_key_at(xpub, chain, index, net), net)


def deposit_address(index: int, xpub: str | None = None, network: Network | None = None) -> str:
    """Deposit address ``index``: ``m/84'/coin'/account'/0/index`` of the account key
    (default: :func:`account_xpub`)."""
    return address_at(xpub if xpub is not None else account_xpub(), RECEIVE, index, network)


def hot_wallet_address(xpub: str | None = None, network: Network | None = None) -> str:
    """The hot wallet's address ``m/84'/coin'/account'/1/0``: on the change chain, so it is
    never a deposit address (the signer holds its private twin)."""
    return address_at(xpub if xpub is not None else account_xpub(), CHANGE, 0, network)


# --- addresses typed by people -----------------------------------------------------------

def validate_address(text: object, network: Network | None = None) -> Address:
    """The address a person typed or pasted, if it is valid on the configured network.

    Accepted: bech32 P2WPKH/P2WSH (witness version 0), bech32m P2TR (version 1, 32 bytes),
    base58 P2PKH and P2SH with the network's version bytes. Refused, with a message that
    says why: a typo (checksum), another network's address, mixed case, a bech32m address
    of version 0 or a bech32 one of version 1+ (BIP350), future witness versions (2 to 16,
    or version 1 with another length: nothing can spend them yet, so we do not pay there).
    Surrounding spaces are ignored; bech32 is returned in lower case.
    """
    net = network or networks.current()
    if not isinstance(text, str) or not text.strip():
        raise ValueError("Enter a Bitcoin address.")
    addr = text.strip()
    if addr[:2].lower() == "0x":
        raise ValueError("This is an Ethereum address, not a Bitcoin address.")
    sep = addr.lower().rfind("1")
    if sep > 0 and addr[:sep].lower() in {*networks.KNOWN_HRPS, net.bech32_hrp}:
        return _validate_segwit(addr, net)
    if all(c in _BASE58 for c in addr):
        return _validate_base58(addr, net)
    if sep > 0:  # bech32 of an unknown prefix: says what is wrong or whose address it is
        return _validate_segwit(addr, net)
    raise ValueError("This is not a Bitcoin address.")


def _validate_segwit(addr: str, net: Network) -> Address:
    try:
        hrp, version, program, _ = bech32.decode_segwit(addr)
    except bech32.Bech32Error as exc:
        raise ValueError(f"This is not a valid Bitcoin address: {exc}.") from None
    if hrp != net.bech32_hrp:
        other = networks.KNOWN_HRPS.get(hrp, f"another network (prefix '{hrp}')")
        raise ValueError(f"This is an address for {other}; this casino pays on {net.label} "
                         f"(addresses starting with '{net.bech32_hrp}1').")
    if version == 0:
        kind = AddressKind.p2wpkh if len(program) == 20 else AddressKind.p2wsh
    elif version == 1 and len(program) == 32:
        kind = AddressKind.p2tr
    else:
        raise ValueError(f"This address uses a future segwit version ({version}, {len(program)}"
                         "-byte program) that no wallet can spend from yet; we do not pay "
                         "to it.")
    script = bytes([0 if version == 0 else 0x50 + version, len(program)]) + program
    return Address(text=addr.lower(), kind=kind, script_pubkey=script)


def _validate_base58(addr: str, net: Network) -> Address:
    try:
        payload = b58check_decode(addr)
    except ValueError as exc:
        raise ValueError(f"This is not a valid Bitcoin address: {exc}.") from None
    if len(payload) != 21:
        raise ValueError("This is not a valid Bitcoin address (wrong length).")
    version, body = payload[0], payload[1:]
    if version == net.p2pkh_version:
        script = b"\x76\xa9\x14" + body + b"\x88\xac"
        return Address(text=addr, kind=AddressKind.p2pkh, script_pubkey=script)
    if version == net.p2sh_version:
        return Address(text=addr, kind=AddressKind.p2sh,
                       script_pubkey=b"\xa9\x14" + body + b"\x87")
    other = {0x00: "Bitcoin mainnet", 0x05: "Bitcoin mainnet", 0x6F: "a Bitcoin test network",
             0xC4: "a Bitcoin test network", 0x3C: "bcoin regtest", 0x26: "bcoin regtest"}
    where = other.get(version, "another network or coin")
    raise ValueError(f"This is an address for {where}; this casino pays on {net.label}.")


def script_address(script_pubkey: bytes, network: Network | None = None) -> str | None:
    """The address of a standard output script on the network, or None (OP_RETURN, bare
    multisig, non-standard). Used to show what a block paid; matching is done on scripts."""
    net = network or networks.current()
    s = bytes(script_pubkey)
    if len(s) in (22, 34) and s[0] == 0 and s[1] == len(s) - 2:
        return bech32.encode_segwit(net.bech32_hrp, 0, s[2:])
    if len(s) == 34 and s[0] == 0x51 and s[1] == 32:
        return bech32.encode_segwit(net.bech32_hrp, 1, s[2:])
    if len(s) == 25 and s[:3] == b"\x76\xa9\x14" and s[23:] == b"\x88\xac":
        return b58check_encode(bytes([net.p2pkh_version]) + s[3:23])
    if len(s) == 23 and s[:2] == b"\xa9\x14" and s[22] == 0x87:
        return b58check_encode(bytes([net.p2sh_version]) + s[2:22])
    return None


# --- BIP21 ---------------------------------------------------------------------------------

def format_btc(sats: int) -> str:
    """``sats`` as an exact BTC decimal without trailing zeros ("0.0015", "1")."""
    if isinstance(sats, bool) or not isinstance(sats, int) or not 0 <= sats <= MAX_SATS:
        raise ValueError("an amount in satoshis between 0 and 21 million BTC")
    text = f"{Decimal(sats).scaleb(-8):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def bip21_uri(address: str, amount: int | None = None, label: str | None = None,
              message: str | None = None, network: Network | None = None) -> str:
    """``bitcoin:<address>?amount=<BTC>&label=...&message=...`` (BIP21) for a QR code.

    ``amount`` is in satoshis (written as an exact BTC decimal); label and message are
    percent-encoded (RFC 3986). The address is validated for the network first.
    """
    addr = validate_address(address, network).text
    params = []
    if amount is not None:
        if amount <= 0:
            raise ValueError("a BIP21 amount must be positive")
        params.append(f"amount={format_btc(amount)}")
    if label:
        params.append(f"label={quote(label, safe='')}")
    if message:
        params.append(f"message={quote(message, safe='')}")
    return f"bitcoin:{addr}" + ("?" + "&".join(params) if params else "")


# --- where the web side gets the account key ----------------------------------------------

def dev_xpub_path(settings: Settings | None = None) -> Path:
    """Where the signer leaves its development account key for the web process."""
    return (settings or get_settings()).data_dir / DEV_XPUB_FILE


def account_xpub() -> str:
    """The BIP84 account key as the web process knows it (never from the seed).

    ``CASINO_BTC_XPUB`` when set; otherwise, in development only, the file the signer writes
    when it starts. ConfigError (naming the variable) when there is none or it is invalid.
    """
    st = get_settings()
    net = networks.from_settings(st)
    if st.btc_xpub:
        try:
            return parse_account_key(st.btc_xpub, net).text
        except ValueError as exc:
            raise ConfigError(f"CASINO_BTC_XPUB: {exc}") from None
    if st.is_production:
        raise ConfigError(f"CASINO_BTC_XPUB: production needs the BIP84 account's public key "
                          f"({net.account_path()}); the web process never reads the seed")
    path = dev_xpub_path(st)
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        raise ConfigError(f"CASINO_BTC_XPUB is empty and the signer has not written {path} "
                          "yet: start `casino worker` (or `casino run`) once, or set "
                          "CASINO_BTC_XPUB") from None
    try:
        return parse_account_key(text, net).text
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from None
