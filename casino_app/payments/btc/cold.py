"""The cold wallet: an m-of-n P2WSH multisig (2-of-3 by default) whose keys the server never
holds. It knows only the cosigners' public account keys, from configuration.

Each cosigner (a staff member's hardware wallet, Sparrow or Bitcoin Core on an offline
machine) gives the public key of its BIP48 account ``m/48'/coin'/account'/2'`` (script type
2' = native segwit P2WSH) with its master key fingerprint and that path, in the key-origin
form of output descriptors::

    CASINO_BTC_COLD_KEYS="[5c9e228d/48h/0h/0h/2h]xpub6E...,[f0a1b2c3/48h/0h/0h/2h]Zpub75...,..."
    CASINO_BTC_COLD_THRESHOLD=2

Accepted key forms: the plain BIP32 form (xpub on mainnet, tpub on the test networks; the
script type is the one stated by the path's 2') and the SLIP-132 forms that say P2WSH
multisig (Zpub, Vpub). Refused, each with a message: private keys of any form, single-key
account keys (zpub, ypub, ...), P2SH-wrapped multisig keys (Ypub, Upub: script type 1'),
another network's keys, a key whose depth or child number is not the path's, a path that is
not ``48'/coin'/account'/2'`` for the network's coin type, the same key or the same master
fingerprint twice (two cosigners on one seed is one cosigner), and a threshold below 2 or
above the number of keys.

Address ``(chain, index)`` (chain 0: receiving, for hot-wallet overflow; chain 1: change of
cold spends) takes each cosigner's child ``account/chain/index`` (public derivation),
sorts the three public keys as BIP67 does (lexicographically, compressed), writes the
witness script ``OP_m <k1> <k2> <k3> OP_n OP_CHECKMULTISIG`` and pays its SHA256 as a
version 0 witness program (P2WSH), in bech32 under the configured network's prefix.
This is exactly ``wsh(sortedmulti(m,[fp/48h/coin'h/account'h/2h]xpub/chain/*,...))``:
:meth:`ColdWallet.descriptor` writes that descriptor with its checksum (BIP380) so an
operator can import the same wallet, watch-only, into Sparrow, Electrum or Bitcoin Core
and see the same addresses.

Derivation and key parsing use embit (a small, well-kept Bitcoin library from the makers of
Specter; libsecp256k1 through ctypes). Nothing here reads a private key.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from casino_app.core.settings import ConfigError, Settings, get_settings
from casino_app.payments.btc import bech32, keys
from casino_app.payments.btc import network as networks
from casino_app.payments.btc.network import Network

RECEIVE, CHANGE = 0, 1       # BIP48 chains: 0 external (cold receiving), 1 internal (change)
HARDENED = 2**31
PURPOSE = 48                 # BIP48
SCRIPT_TYPE_P2WSH = 2        # BIP48 script type 2': native segwit multisig
ACCOUNT_DEPTH = 4            # m / 48' / coin' / account' / 2'
MAX_KEYS = 15                # what hardware wallets sign for (Core allows 20 in P2WSH)
DEFAULT_THRESHOLD = 2

# Extended key versions (BIP32, SLIP-132), by network kind, and what each one is.
_PUBLIC_MAIN = {"0488b21e": "xpub", "02aa7ed3": "Zpub"}
_PUBLIC_TEST = {"043587cf": "tpub", "02575483": "Vpub"}
_PLAIN = {"main": bytes.fromhex("0488b21e"), "test": bytes.fromhex("043587cf")}
_PRIVATE = {"0488ade4": "xprv", "04358394": "tprv", "049d7878": "yprv", "044a4e28": "uprv",
            "04b2430c": "zprv", "045f18bc": "vprv", "0295b005": "Yprv", "024285b5": "Uprv",
            "02aa7a99": "Zprv", "02575048": "Vprv"}
_WRONG_TYPE = {"04b24746": ("zpub", "a single-key native segwit (BIP84) account"),
               "045f1cf6": ("vpub", "a single-key native segwit (BIP84) account"),
               "049d7cb2": ("ypub", "a single-key P2SH-wrapped segwit (BIP49) account"),
               "044a5262": ("upub", "a single-key P2SH-wrapped segwit (BIP49) account"),
               "0295b43f": ("Ypub", "a P2SH-wrapped multisig account (BIP48 script type 1')"),
               "024289ef": ("Upub", "a P2SH-wrapped multisig account (BIP48 script type 1')")}

_ENTRY = re.compile(r"^\[(?P<fp>[^/\]]*)(?P<path>(?:/[^/\]]*)*)\](?P<key>.*)$")
_STEP = re.compile(r"^(\d+)(['hH]?)$")


@dataclass(frozen=True)
class Cosigner:
    """One cosigner's account key, as configured: its master fingerprint (8 hex digits),
    the path of the account key (BIP32 indexes, hardened ones with the 2**31 bit) and the
    key itself (public key and chain code; the form it was given in is kept in ``text``)."""

    fingerprint: str
    path: tuple[int, ...]
    public_key: bytes
    chain_code: bytes
    parent_fingerprint: bytes
    text: str

    @property
    def fingerprint_bytes(self) -> bytes:
        return bytes.fromhex(self.fingerprint)

    @property
    def account(self) -> int:
        return self.path[2] - HARDENED

    def path_text(self, prefix: str = "m") -> str:
        """``m/48h/1h/0h/2h``."""
        return "/".join([prefix, *(_step_text(i) for i in self.path)])

    def xpub(self, network: Network) -> str:
        """The key in the plain BIP32 form of the network (xpub or tpub): what descriptors
        and PSBTs carry."""
        return keys.b58check_encode(self.serialized(network))

    def serialized(self, network: Network) -> bytes:
        """The 78-byte BIP32 serialization (plain version) of the account key."""
        version = _PLAIN["main" if network.is_mainnet else "test"]
        return (version + bytes([len(self.path)]) + self.parent_fingerprint
                + self.path[-1].to_bytes(4, "big") + self.chain_code + self.public_key)

    def child_public_key(self, chain: int, index: int) -> bytes:
        """The compressed public key ``account/chain/index`` (public derivation)."""
        return _derive(self.public_key, self.chain_code, _check_chain(chain), _check_index(index))


@dataclass(frozen=True)
class KeyOrigin:
    """A public key of a cold address and where it comes from: for the PSBT's BIP32
    derivation fields (PSBT_IN/OUT_BIP32_DERIVATION), by which a signer finds its key."""

    public_key: bytes
    fingerprint: bytes        # the cosigner's master fingerprint
    path: tuple[int, ...]     # full path from the master key: 48'/coin'/account'/2'/chain/index
    cosigner: int             # index of the cosigner in the configuration

    def value(self) -> bytes:
        """The PSBT field's value: fingerprint, then each index as 32-bit little endian."""
        return self.fingerprint + b"".join(i.to_bytes(4, "little") for i in self.path)


@dataclass(frozen=True)
class ColdAddress:
    chain: int
    index: int
    address: str
    witness_script: bytes    # OP_m <sorted keys> OP_n OP_CHECKMULTISIG
    script_pubkey: bytes     # OP_0 <SHA256(witness_script)>
    keys: tuple[KeyOrigin, ...]  # in the witness script's (sorted) order


@dataclass(frozen=True)
class ColdWallet:
    cosigners: tuple[Cosigner, ...]
    threshold: int
    network: Network

    def __post_init__(self) -> None:
        check_cosigners(self.cosigners, self.threshold, self.network)

    @property
    def fingerprints(self) -> tuple[str, ...]:
        return tuple(c.fingerprint for c in self.cosigners)

    def address(self, index: int, chain: int = RECEIVE) -> ColdAddress:
        """Cold address ``(chain, index)``: every cosigner's ``account/chain/index`` key,
        sorted (BIP67), in an m-of-n witness script paid by P2WSH."""
        chain, index = _check_chain(chain), _check_index(index)
        origins = [KeyOrigin(c.child_public_key(chain, index), c.fingerprint_bytes,
                             (*c.path, chain, index), n)
                   for n, c in enumerate(self.cosigners)]
        origins.sort(key=lambda o: o.public_key)
        script = multisig_script(self.threshold, [o.public_key for o in origins])
        spk = p2wsh_script(script)
        return ColdAddress(chain=chain, index=index,
                           address=bech32.encode_segwit(self.network.bech32_hrp, 0, spk[2:]),
                           witness_script=script, script_pubkey=spk, keys=tuple(origins))

    def receive_address(self, index: int) -> ColdAddress:
        return self.address(index, RECEIVE)

    def change_address(self, index: int) -> ColdAddress:
        return self.address(index, CHANGE)

    def descriptor(self, chain: int | None = RECEIVE) -> str:
        """The wallet as an output descriptor with its checksum, for a watch-only import:
        ``wsh(sortedmulti(m,[fp/48h/coin'h/account'h/2h]xpub/0/*,...))#checksum``.
        ``chain`` 0 or 1 gives the receiving or change descriptor (Bitcoin Core's
        ``importdescriptors`` takes both, the second with ``internal: true``); None gives
        the multipath form ``.../<0;1>/*`` (BIP389: Sparrow, Core 29 and later)."""
        tail = "<0;1>" if chain is None else str(_check_chain(chain))
        keys_text = ",".join(f"[{c.fingerprint}{c.path_text('')}]{c.xpub(self.network)}"
                             f"/{tail}/*" for c in self.cosigners)
        return add_checksum(f"wsh(sortedmulti({self.threshold},{keys_text}))")

    def global_xpubs(self) -> list[tuple[bytes, bytes]]:
        """(78-byte serialized account key, fingerprint + path) of every cosigner: the
        PSBT_GLOBAL_XPUB fields some signers (Coldcard, Passport) use to check the wallet."""
        return [(c.serialized(self.network),
                 c.fingerprint_bytes + b"".join(i.to_bytes(4, "little") for i in c.path))
                for c in self.cosigners]


# --- scripts ----------------------------------------------------------------------------

def multisig_script(threshold: int, public_keys: Sequence[bytes]) -> bytes:
    """``OP_m <k1> ... <kn> OP_n OP_CHECKMULTISIG`` with the compressed keys sorted
    lexicographically (BIP67, BIP383's ``sortedmulti``)."""
    pubs = sorted(bytes(p) for p in public_keys)
    if any(len(p) != 33 or p[0] not in (2, 3) for p in pubs):
        raise ValueError("multisig keys must be compressed public keys (BIP67)")
    if not 1 <= len(pubs) <= 16 or not 1 <= threshold <= len(pubs):
        raise ValueError(f"a {threshold}-of-{len(pubs)} multisig is not possible")
    return (bytes([0x50 + threshold]) + b"".join(b"\x21" + p for p in pubs)
            + bytes([0x50 + len(pubs), 0xAE]))


def p2wsh_script(witness_script: bytes) -> bytes:
    """The P2WSH output script ``OP_0 <SHA256(witness_script)>``."""
    return b"\x00\x20" + hashlib.sha256(witness_script).digest()


def parse_multisig(witness_script: bytes) -> tuple[int, list[bytes]]:
    """(threshold, public keys) of a ``multisig_script``; ValueError otherwise."""
    s = bytes(witness_script)
    if len(s) < 37 or s[-1] != 0xAE or not 0x51 <= s[0] <= 0x60 or not 0x51 <= s[-2] <= 0x60:
        raise ValueError("not a multisig witness script")
    m, n = s[0] - 0x50, s[-2] - 0x50
    body = s[1:-2]
    if len(body) != 34 * n or m > n:
        raise ValueError("not a multisig witness script")
    pubs = [body[34 * i + 1:34 * i + 34] for i in range(n)]
    if any(body[34 * i] != 0x21 for i in range(n)):
        raise ValueError("not a multisig witness script")
    return m, pubs


# --- descriptors (BIP380 checksum) --------------------------------------------------------

def add_checksum(descriptor: str) -> str:
    """``descriptor#checksum`` (BIP380; embit's implementation, checked against the BIP's
    vector in the tests)."""
    from embit.descriptor.checksum import checksum

    return f"{descriptor}#{checksum(descriptor)}"


# --- configuration ------------------------------------------------------------------------

def parse_cosigner(text: str, network: Network | None = None) -> Cosigner:
    """One ``[fingerprint/48h/coin'h/account'h/2h]key`` entry; ValueError saying what is
    wrong with it."""
    net = network or networks.current()
    entry = text.strip()
    match = _ENTRY.match(entry)
    if not match:
        raise ValueError(f"'{_short(entry)}' has no key origin: write each cosigner as "
                         f"[fingerprint/48h/{net.coin_type}h/0h/2h]{_plain_name(net)}... "
                         "(the master key's fingerprint and the account's path, as the "
                         "wallet that holds the key shows them)")
    fp = match["fp"].lower()
    if not re.fullmatch(r"[0-9a-f]{8}", fp):
        raise ValueError(f"'{match['fp']}' is not a master key fingerprint (8 hex digits)")
    path = tuple(_parse_step(step) for step in match["path"].split("/")[1:])
    expected = (PURPOSE + HARDENED, net.coin_type + HARDENED)
    if (len(path) != ACCOUNT_DEPTH or path[:2] != expected or path[2] < HARDENED
            or path[3] != SCRIPT_TYPE_P2WSH + HARDENED):
        shown = "/".join(["m", *(_step_text(i) for i in path)])
        raise ValueError(f"the path {shown} of cosigner {fp} is not a BIP48 P2WSH account "
                         f"of {net.label}: m/48h/{net.coin_type}h/<account>h/2h")
    key_text = match["key"].strip()
    if "/" in key_text:
        raise ValueError(f"give cosigner {fp}'s account key alone, without "
                         f"'{key_text[key_text.index('/'):]}' after it (the platform "
                         "derives /0/i and /1/i itself)")
    try:
        payload = keys.b58check_decode(key_text)
    except ValueError as exc:
        raise ValueError(f"cosigner {fp}: not an extended public key ({exc})") from None
    if len(payload) != 78:
        raise ValueError(f"cosigner {fp}: not an extended public key (wrong length)")
    vhex = payload[:4].hex()
    if vhex in _PRIVATE:
        raise ValueError(f"cosigner {fp}: this is an extended PRIVATE key ({_PRIVATE[vhex]}); "
                         "the server holds the cold wallet's public keys only: give the "
                         "account's xpub and keep the private key on the signing device")
    if vhex in _WRONG_TYPE:
        form, what = _WRONG_TYPE[vhex]
        raise ValueError(f"cosigner {fp}: this {form} is {what}; the cold wallet is native "
                         "segwit multisig (P2WSH, BIP48 script type 2'): give the "
                         f"m/48h/{net.coin_type}h/0h/2h key as {_forms(net)}")
    forms = _PUBLIC_MAIN if net.is_mainnet else _PUBLIC_TEST
    if vhex not in forms:
        other = _PUBLIC_TEST if net.is_mainnet else _PUBLIC_MAIN
        if vhex in other:
            kind = "a test network" if net.is_mainnet else "a mainnet"
            raise ValueError(f"cosigner {fp}: this {other[vhex]} is {kind} key, but the "
                             f"casino runs on {net.label}: give {_forms(net)}")
        raise ValueError(f"cosigner {fp}: not an extended public key this platform knows "
                         f"(version {vhex})")
    depth, child = payload[4], int.from_bytes(payload[9:13], "big")
    if depth != ACCOUNT_DEPTH or child != path[-1]:
        raise ValueError(f"cosigner {fp}: the key is not the account key "
                         f"m/48h/{net.coin_type}h/<account>h/2h (its depth is {depth}, "
                         f"its child number {_step_text(child)}): export the key at the "
                         "path written before it")
    public_key = payload[45:78]
    if public_key[0] not in (2, 3) or not _valid_point(public_key):
        raise ValueError(f"cosigner {fp}: not an extended public key (bad public key)")
    return Cosigner(fingerprint=fp, path=path, public_key=public_key,
                    chain_code=payload[13:45], parent_fingerprint=payload[5:9], text=key_text)


def parse_cold_keys(text: str, network: Network | None = None) -> tuple[Cosigner, ...]:
    """The cosigners of ``CASINO_BTC_COLD_KEYS``: entries separated by commas, spaces or
    new lines."""
    net = network or networks.current()
    entries = [e for e in re.split(r"[\s,;]+", text.strip()) if e]
    return tuple(parse_cosigner(e, net) for e in entries)


def check_cosigners(cosigners: Sequence[Cosigner], threshold: int, network: Network) -> None:
    """ValueError unless the cosigners make a sound m-of-n wallet on ``network``."""
    n = len(cosigners)
    if n < 2:
        raise ValueError(f"a cold wallet needs at least 2 cosigner keys (3 for the house's "
                         f"2-of-3); {n} given")
    if n > MAX_KEYS:
        raise ValueError(f"at most {MAX_KEYS} cosigner keys; {n} given")
    if isinstance(threshold, bool) or not isinstance(threshold, int) \
            or not 2 <= threshold <= n:
        raise ValueError(f"the threshold must be between 2 (four eyes) and the number of "
                         f"keys ({n}); it is {threshold}")
    seen_keys: dict[bytes, str] = {}
    seen_fps: set[str] = set()
    for c in cosigners:
        if c.path[1] != network.coin_type + HARDENED:
            raise ValueError(f"cosigner {c.fingerprint}: its path is not for {network.label}")
        if c.public_key in seen_keys:
            raise ValueError(f"the same account key is given twice (cosigners "
                             f"{seen_keys[c.public_key]} and {c.fingerprint}): each cosigner "
                             "needs a key of their own")
        if c.fingerprint in seen_fps:
            raise ValueError(f"two cosigner keys come from the same master key (fingerprint "
                             f"{c.fingerprint}): one seed is one cosigner; each cosigner "
                             "needs a seed of their own")
        seen_keys[c.public_key] = c.fingerprint
        seen_fps.add(c.fingerprint)


def wallet_from_settings(st: Settings | None = None) -> ColdWallet | None:
    """The configured cold wallet, or None when ``CASINO_BTC_COLD_KEYS`` is empty;
    ConfigError naming the variable for a bad value."""
    st = st or get_settings()
    if not st.btc_cold_keys.strip():
        return None
    net = networks.from_settings(st)
    try:
        return ColdWallet(parse_cold_keys(st.btc_cold_keys, net), st.btc_cold_threshold, net)
    except ValueError as exc:
        raise ConfigError(f"CASINO_BTC_COLD_KEYS: {exc}") from None


def cold_wallet() -> ColdWallet:
    """The configured cold wallet; ConfigError when there is none."""
    wallet = wallet_from_settings()
    if wallet is None:
        raise ConfigError("CASINO_BTC_COLD_KEYS is empty: no cold wallet is configured")
    return wallet


# --- helpers ------------------------------------------------------------------------------

def _parse_step(step: str) -> int:
    m = _STEP.match(step.strip())
    if not m or int(m[1]) >= HARDENED:
        raise ValueError(f"'{step}' is not a derivation step (a number, with h or ' when "
                         "hardened)")
    return int(m[1]) + (HARDENED if m[2] else 0)


def _step_text(i: int) -> str:
    return f"{i - HARDENED}h" if i >= HARDENED else str(i)


def _short(text: str) -> str:
    return text if len(text) <= 24 else text[:20] + "..."


def _plain_name(net: Network) -> str:
    return "xpub" if net.is_mainnet else "tpub"


def _forms(net: Network) -> str:
    return "an xpub or Zpub" if net.is_mainnet else "a tpub or Vpub"


def _check_chain(chain: object) -> int:
    if chain not in (RECEIVE, CHANGE) or isinstance(chain, bool):
        raise ValueError("the chain is 0 (receiving) or 1 (change)")
    return int(chain)  # type: ignore[call-overload]


def _check_index(index: object) -> int:
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < HARDENED:
        raise ValueError(f"the address index must be an integer in 0..{HARDENED - 1}")
    return index


def _valid_point(public_key: bytes) -> bool:
    from embit import ec
    from embit.base import EmbitError

    try:
        ec.PublicKey.parse(public_key)
    except (EmbitError, ValueError):
        return False
    return True


@lru_cache(maxsize=64)
def _chain_node(public_key: bytes, chain_code: bytes, chain: int) -> Any:
    from embit import bip32, ec

    account = bip32.HDKey(ec.PublicKey.parse(public_key), chain_code)
    return account.child(chain)


def _derive(public_key: bytes, chain_code: bytes, chain: int, index: int) -> bytes:
    return bytes(_chain_node(public_key, chain_code, chain).child(index).key.sec())
