"""Bitcoin keys of the hot wallet's seed, and P2WPKH signatures (BIP143) for the batcher
and the sweeper.

The seed is the hot wallet's BIP39 mnemonic that ``seed.py`` reads (``CASINO_ETH_HOT_SEED_FILE``
/ ``CASINO_ETH_HOT_SEED``, or the development seed): one seed, one BIP44 tree per coin.
Bitcoin keys follow BIP84 on the configured network (``payments/btc/network.py``):

- the account ``m/84'/coin'/0'``: its public key, in the network's SLIP-132 form
  (zpub/vpub), is ``CASINO_BTC_XPUB``, all the web side knows (:func:`prepare_btc_wallet`
  checks it against the seed, and in development writes it for the web process);
- deposit address ``i``: ``m/84'/coin'/0'/0/i`` (its key signs the sweep of that address);
- the hot wallet: ``m/84'/coin'/0'/1/0`` (the change chain, so never a deposit address).

:func:`sign_p2wpkh` signs a complete transaction whose inputs all spend P2WPKH outputs of
those keys (BIP143 digests, SIGHASH_ALL, RFC 6979 deterministic low-S signatures, through
bitcoinlib), after checking that each input's key really owns the output it spends, that
no output is dust, and that the fee is neither negative, below 1 sat/vB nor above the
ceiling. It returns the signed bytes with their txid, so the caller records them before it
broadcasts (and can broadcast the same bytes again after a crash).

The web process never imports this module.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from casino_app.core.logging import get_logger
from casino_app.core.settings import ConfigError, get_settings
from casino_app.payments.btc import keys, tx
from casino_app.payments.btc import network as networks
from casino_app.payments.btc.network import Network
from casino_app.payments.signer import seed

ACCOUNT = 0
HOT_CHAIN, HOT_INDEX = keys.CHANGE, 0
MIN_FEE_RATE = 1            # sat/vB: the default minimum relay fee of Core and bcoin
MAX_FEE_RATE = 10_000       # sat/vB: Core's default maxfeerate (0.10 BTC/kvB)
SEQUENCE_RBF = 0xFFFFFFFD   # BIP125 opt-in: the batch's fee can be bumped
SEQUENCE_FINAL = 0xFFFFFFFF
DUST_LIMITS = keys.DUST_LIMITS  # outputs smaller than these are not relayed

log = get_logger("casino.signer")
_lock = threading.Lock()
_accounts: dict[tuple[str, int], Any] = {}  # (sha256 of the words, coin type) -> HDKey
_TXID = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class SpendInput:
    """An output of ours to spend: ``script_pubkey`` is what it pays (as recorded from the
    chain), and (``chain``, ``index``) names the key ``m/84'/coin'/0'/chain/index`` that
    must own it (chain 0: a deposit address, 1: the hot wallet)."""

    txid: str
    vout: int
    value: int
    script_pubkey: bytes
    chain: int
    index: int
    sequence: int = SEQUENCE_RBF


@dataclass(frozen=True)
class Payment:
    """An output: ``value`` satoshis to ``script_pubkey`` (``keys.validate_address(...)
    .script_pubkey`` for a player's address, ``keys.p2wpkh_script`` for our own)."""

    script_pubkey: bytes
    value: int


@dataclass(frozen=True)
class SignedTransaction:
    raw: bytes
    txid: str
    wtxid: str
    vsize: int
    fee: int  # satoshis: inputs minus outputs

    @property
    def hex(self) -> str:
        return self.raw.hex()


# --- keys ----------------------------------------------------------------------------------

def _account_key(network: Network, words: str | None = None) -> Any:
    """The BIP84 account key ``m/84'/coin'/0'`` of the seed (cached per seed and coin)."""
    from bitcoinlib.keys import HDKey

    words = seed._normalised(words if words is not None else seed.load_seed())
    cache = (hashlib.sha256(words.encode()).hexdigest(), network.coin_type)
    with _lock:
        account = _accounts.get(cache)
    if account is None:
        master = HDKey.from_seed(seed._mnemonic().to_seed(words), network="bitcoin",
                                 witness_type="legacy")
        account = master.child_private(84, hardened=True) \
            .child_private(network.coin_type, hardened=True) \
            .child_private(ACCOUNT, hardened=True)
        with _lock:
            _accounts[cache] = account
    return account


def account_xpub(network: Network | None = None, words: str | None = None) -> str:
    """The account's public key in the network's SLIP-132 P2WPKH form (zpub on mainnet,
    vpub on test networks): the value of ``CASINO_BTC_XPUB``."""
    net = network or networks.current()
    plain = keys.b58check_decode(_account_key(net, words).wif_public())
    return keys.b58check_encode(net.zpub_version + plain[4:])


def _child(network: Network, chain: int, index: int, words: str | None = None) -> Any:
    if chain not in (keys.RECEIVE, keys.CHANGE):
        raise ValueError("the chain is 0 (deposit addresses) or 1 (the hot wallet)")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < keys.MAX_INDEX:
        raise ValueError(f"the derivation index must be an integer in 0..{keys.MAX_INDEX - 1}")
    return _account_key(network, words).child_private(chain).child_private(index)


def private_key(chain: int, index: int, network: Network | None = None,
                words: str | None = None) -> bytes:
    """The 32-byte private key of ``m/84'/coin'/0'/chain/index``."""
    return bytes(_child(network or networks.current(), chain, index, words).private_byte)


def public_key(chain: int, index: int, network: Network | None = None,
               words: str | None = None) -> bytes:
    """The compressed public key of ``m/84'/coin'/0'/chain/index``."""
    return bytes(_child(network or networks.current(), chain, index, words).public_byte)


def hot_address(network: Network | None = None) -> str:
    """The hot wallet's P2WPKH address (``m/84'/coin'/0'/1/0``)."""
    net = network or networks.current()
    return keys.p2wpkh_address(public_key(HOT_CHAIN, HOT_INDEX, net), net)


# --- signing -------------------------------------------------------------------------------

def sign_p2wpkh(inputs: Sequence[SpendInput], outputs: Sequence[Payment], *,
                network: Network | None = None, locktime: int = 0, version: int = 2,
                max_fee_rate: int = MAX_FEE_RATE, words: str | None = None
                ) -> SignedTransaction:
    """Sign a transaction spending P2WPKH outputs of the seed's keys (BIP143, SIGHASH_ALL).

    Refuses (ValueError, nothing signed) an input whose key does not own the output it
    spends, the same output twice, a dust or unknown output, outputs above the inputs, or a
    fee below 1 sat/vB or above ``max_fee_rate`` sat/vB.
    """
    from bitcoinlib.keys import Key
    from bitcoinlib.transactions import Transaction

    net = network or networks.current()
    if not inputs or not outputs:
        raise ValueError("a transaction needs at least one input and one output")
    if not 0 <= locktime <= 0xFFFFFFFF or version not in (1, 2):
        raise ValueError("bad locktime or version")
    seen: set[tuple[str, int]] = set()
    signing_keys = []
    for n, inp in enumerate(inputs):
        _check_input(n, inp, seen)
        child = _child(net, inp.chain, inp.index, words)
        if keys.p2wpkh_script(bytes(child.public_byte)) != bytes(inp.script_pubkey):
            raise ValueError(f"input {n}: the output {inp.txid}:{inp.vout} is not paid to the "
                             f"key m/84'/{net.coin_type}'/{ACCOUNT}'/{inp.chain}/{inp.index} "
                             "(refusing to sign with another key)")
        signing_keys.append(Key(bytes(child.private_byte).hex(), network="bitcoin",
                                compressed=True))
    for n, out in enumerate(outputs):
        _check_output(n, out, net)
    total_in = sum(i.value for i in inputs)
    total_out = sum(o.value for o in outputs)
    if total_out > total_in:
        raise ValueError(f"the outputs ({total_out} sat) exceed the inputs ({total_in} sat)")

    t = Transaction(network="bitcoin", witness_type="segwit", version=version,
                    locktime=locktime)
    for inp, key in zip(inputs, signing_keys, strict=True):
        t.add_input(bytes.fromhex(inp.txid), inp.vout, keys=key.public(), value=inp.value,
                    witness_type="segwit", script_type="sig_pubkey", sequence=inp.sequence)
    for out in outputs:
        t.add_output(out.value, lock_script=bytes(out.script_pubkey))
    for n, key in enumerate(signing_keys):
        t.sign(key, index_n=n)
    if not t.verify():
        raise ValueError("the signed transaction does not verify")
    raw = bytes(t.raw())
    info = tx.facts(raw)
    fee = total_in - total_out
    if fee < MIN_FEE_RATE * info.vsize:
        raise ValueError(f"the fee ({fee} sat for {info.vsize} vB) is below {MIN_FEE_RATE} "
                         "sat/vB: no node would relay it")
    if fee > max_fee_rate * info.vsize:
        raise ValueError(f"the fee ({fee} sat for {info.vsize} vB, "
                         f"{math.ceil(fee / info.vsize)} sat/vB) is above the ceiling of "
                         f"{max_fee_rate} sat/vB")
    return SignedTransaction(raw=raw, txid=info.txid, wtxid=info.wtxid, vsize=info.vsize,
                             fee=fee)


def _check_input(n: int, inp: SpendInput, seen: set[tuple[str, int]]) -> None:
    if not isinstance(inp.txid, str) or not _TXID.match(inp.txid):
        raise ValueError(f"input {n}: the txid must be 64 lowercase hex digits")
    if isinstance(inp.vout, bool) or not isinstance(inp.vout, int) or not 0 <= inp.vout < 2**32:
        raise ValueError(f"input {n}: bad output index")
    if (inp.txid, inp.vout) in seen:
        raise ValueError(f"input {n}: {inp.txid}:{inp.vout} is spent twice")
    seen.add((inp.txid, inp.vout))
    if isinstance(inp.value, bool) or not isinstance(inp.value, int) \
            or not 0 < inp.value <= keys.MAX_SATS:
        raise ValueError(f"input {n}: the value must be a positive number of satoshis")
    if not 0 <= inp.sequence <= 0xFFFFFFFF:
        raise ValueError(f"input {n}: bad sequence")


def _check_output(n: int, out: Payment, net: Network) -> None:
    if isinstance(out.value, bool) or not isinstance(out.value, int) \
            or not 0 < out.value <= keys.MAX_SATS:
        raise ValueError(f"output {n}: the value must be a positive number of satoshis")
    address = keys.script_address(bytes(out.script_pubkey), net)
    if address is None:
        raise ValueError(f"output {n}: only P2PKH, P2SH, P2WPKH, P2WSH and P2TR outputs")
    kind = keys.validate_address(address, net).kind
    if out.value < DUST_LIMITS[kind]:
        raise ValueError(f"output {n}: {out.value} sat to a {kind} output is dust (below "
                         f"{DUST_LIMITS[kind]} sat)")


# --- start-up --------------------------------------------------------------------------------

def prepare_btc_wallet() -> str:
    """Run when the signer starts (with Bitcoin configured); returns the account key.

    When ``CASINO_BTC_XPUB`` is set it must be this seed's BIP84 account key (in any form:
    zpub/vpub or xpub/tpub), or deposits would go to addresses the signer cannot spend:
    ConfigError. When it is empty, in development the key is written to
    ``<data_dir>/dev-btc-wallet.xpub`` for the web process; in production that is an error.
    """
    st = get_settings()
    net = networks.from_settings(st)
    ours = account_xpub(net)
    if st.btc_xpub:
        try:
            configured = keys.parse_account_key(st.btc_xpub, net)
        except ValueError as exc:
            raise ConfigError(f"CASINO_BTC_XPUB: {exc}") from None
        mine = keys.parse_account_key(ours, net)
        if (configured.public_key, configured.chain_code) != (mine.public_key, mine.chain_code):
            raise ConfigError(f"CASINO_BTC_XPUB is not the BIP84 account key "
                              f"({net.account_path()}) of the hot wallet seed: deposits would "
                              "go to addresses the signer cannot spend")
        return st.btc_xpub
    if st.is_production:
        raise ConfigError(f"CASINO_BTC_XPUB: production needs the BIP84 account's public key "
                          f"({net.account_path()}) for the web process")
    path = keys.dev_xpub_path(st)
    if not path.exists() or path.read_text().strip() != ours:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        tmp.write_text(ours + "\n")
        os.replace(tmp, path)
        log.info("bitcoin account key written for the web process", path=str(path))
    return ours


def forget() -> None:
    """Drop the cached keys (tests that change the seed)."""
    with _lock:
        _accounts.clear()
