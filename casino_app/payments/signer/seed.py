"""The hot wallet's seed: the only module that reads it.

The seed is a BIP39 mnemonic, read from the file named by ``CASINO_ETH_HOT_SEED_FILE`` or
from ``CASINO_ETH_HOT_SEED``, either sealed with a passphrase (``sealed_seed``: opened
once per process) or, with a warning, in clear. In development with neither set, a fresh
seed is created on first use in ``<data_dir>/dev-hot-wallet.seed`` (mode 0600) and a loud
warning says it is for development; in production a missing seed is an error that names
both variables.

Keys follow BIP44 for Ethereum: the account key ``m/44'/60'/0'`` (its xpub is all the web
process knows) and address keys ``m/44'/60'/0'/0/i``. ``prepare_hot_wallet`` is what the
signer calls when it starts: it loads the seed, checks ``CASINO_ETH_XPUB`` against it, and
in development leaves the xpub in ``<data_dir>/dev-hot-wallet.xpub`` for the web process.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import stat
import threading
from pathlib import Path
from typing import Any

from casino_app.core.logging import get_logger
from casino_app.core.settings import ConfigError, get_settings
from casino_app.payments.eth.keys import MAX_INDEX, dev_xpub_path, validate_xpub
from casino_app.payments.signer import sealed_seed

DEV_SEED_FILE = "dev-hot-wallet.seed"
ACCOUNT_PATH = (44, 60, 0)  # m/44'/60'/0', all hardened
WORD_COUNTS = (12, 15, 18, 21, 24)

log = get_logger("casino.signer")
_warned: set[object] = set()  # what a warning was logged for (once per process)
_warned_lock = threading.Lock()
_open_lock = threading.Lock()


def load_seed() -> str:
    """The hot wallet's mnemonic (words separated by single spaces).

    Sources, first match wins: ``CASINO_ETH_HOT_SEED_FILE``, ``CASINO_ETH_HOT_SEED``, and in
    development only the development seed in the data folder (created on first use).
    Raises ConfigError naming the variable for a missing, unreadable or invalid seed; the
    message never contains any of the words.
    """
    st = get_settings()
    if st.eth_hot_seed_file is not None:
        path = st.eth_hot_seed_file
        try:
            text = path.read_text()
        except OSError as exc:
            raise ConfigError(f"CASINO_ETH_HOT_SEED_FILE: cannot read {path}: "
                              f"{exc.strerror or exc}") from None
        _warn_if_readable_by_others(path)
        return _from_setting(text, "CASINO_ETH_HOT_SEED_FILE")
    if st.eth_hot_seed:
        return _from_setting(st.eth_hot_seed, "CASINO_ETH_HOT_SEED")
    if st.is_production:
        raise ConfigError("production needs the hot wallet seed: set CASINO_ETH_HOT_SEED_FILE "
                          "(a file holding the BIP39 mnemonic, readable by the signer only) "
                          "or CASINO_ETH_HOT_SEED")
    return _development_seed(st.data_dir)


def account_xpub(mnemonic: str) -> str:
    """The account-level extended public key ``m/44'/60'/0'`` ("xpub...")."""
    return _account_key(mnemonic).wif_public()


def private_key_at(mnemonic: str, index: int) -> bytes:
    """The 32-byte secp256k1 private key of ``m/44'/60'/0'/0/index`` (for signing)."""
    if isinstance(index, bool) or not isinstance(index, int):
        raise ValueError("the derivation index must be an integer")
    if not 0 <= index < MAX_INDEX:
        raise ValueError(f"the derivation index must be in 0..{MAX_INDEX - 1}, not {index}")
    key = _account_key(mnemonic).child_private(0).child_private(index)
    return bytes(key.private_byte)


def prepare_hot_wallet() -> str:
    """Run once when the signer starts; returns the hot wallet's account xpub.

    Loads the seed (creating the development seed if that is the source). When
    ``CASINO_ETH_XPUB`` is set it must be this seed's account xpub, or deposits would go
    to addresses the signer cannot spend: ConfigError. When it is empty, in development
    the xpub is written to ``<data_dir>/dev-hot-wallet.xpub`` (read by
    ``payments/eth/keys.hot_wallet_xpub``); in production that is an error.
    """
    st = get_settings()
    xpub = account_xpub(load_seed())
    if st.eth_xpub:
        try:
            configured = validate_xpub(st.eth_xpub)
        except ValueError as exc:
            raise ConfigError(f"CASINO_ETH_XPUB: {exc}") from None
        if configured != xpub:
            raise ConfigError("CASINO_ETH_XPUB is not the account xpub (m/44'/60'/0') of the "
                              "hot wallet seed: deposits would go to addresses the signer "
                              "cannot spend")
        return xpub
    if st.is_production:
        raise ConfigError("CASINO_ETH_XPUB: production needs the hot wallet's account xpub "
                          "(m/44'/60'/0') for the web process")
    write_dev_xpub(xpub)
    return xpub


def write_dev_xpub(xpub: str) -> Path:
    """Leave the xpub in the data folder for the web process (development only)."""
    path = dev_xpub_path()
    if path.exists() and path.read_text().strip() == xpub:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    tmp.write_text(xpub + "\n")
    os.replace(tmp, path)
    log.info("hot wallet xpub written for the web process", path=str(path))
    return path


# --- helpers ---------------------------------------------------------------------------

def _mnemonic() -> Any:
    from bitcoinlib.mnemonic import Mnemonic  # slow import: on first use

    return Mnemonic()


def _normalised(text: str) -> str:
    """The mnemonic with single spaces, or ValueError (never echoing a word)."""
    words = " ".join(text.split()) if isinstance(text, str) else ""
    if len(words.split(" ")) not in WORD_COUNTS:
        raise ValueError("not a BIP39 mnemonic (12, 15, 18, 21 or 24 words)")
    try:
        _mnemonic().to_entropy(words)
    except (ValueError, Warning, KeyError, IndexError):
        raise ValueError("not a valid BIP39 mnemonic (unknown word or bad checksum)") from None
    return words


_opened: dict[str, str] = {}  # sha256 of a sealed seed's text -> its words


def _from_setting(text: str, source: str) -> str:
    """A configured seed: sealed (opened once per process with the passphrase, see
    ``sealed_seed``) or, with a warning, in clear."""
    if not sealed_seed.is_sealed(text):
        if _first_warning(("clear", source)):
            log.warning("the hot wallet seed is stored in clear: whoever reads it holds the "
                        "hot wallet. Fine on a development devnet; in production seal it "
                        "with `casino keys seal-seed` (README: the hot wallet seed)",
                        source=source)
        return checked_mnemonic(text, source)
    digest = hashlib.sha256(text.encode()).hexdigest()
    with _open_lock:
        words = _opened.get(digest)
        if words is None:
            try:
                words = sealed_seed.open_sealed(text, sealed_seed.passphrase())
            except sealed_seed.SealedSeedError as exc:
                raise ConfigError(f"{source}: {exc}") from None
            words = checked_mnemonic(words, source)
            _opened[digest] = words
    return words


def checked_mnemonic(text: str, source: str) -> str:
    """``text`` as a valid mnemonic (single spaces), or ConfigError naming ``source``."""
    try:
        return _normalised(text)
    except ValueError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def _first_warning(what: object) -> bool:
    """True the first time this process is about to warn about ``what``."""
    with _warned_lock:
        first = what not in _warned
        _warned.add(what)
    return first


def _account_key(mnemonic: str) -> Any:
    from bitcoinlib.keys import HDKey

    words = _normalised(mnemonic)
    key = HDKey.from_seed(_mnemonic().to_seed(words), network="bitcoin",
                          witness_type="legacy")
    for level in ACCOUNT_PATH:
        key = key.child_private(level, hardened=True)
    return key


def _development_seed(data_dir: Path) -> str:
    """Embedded default only: a seed created on first use in the data folder."""
    path = data_dir / DEV_SEED_FILE
    created = False
    if not path.exists():
        created = _create_exclusively(path, _mnemonic().to_mnemonic(secrets.token_bytes(32)))
    words = checked_mnemonic(path.read_text(), str(path))
    _warn_if_readable_by_others(path)
    if created:
        log.warning("DEVELOPMENT HOT WALLET SEED CREATED: it is for development only, never "
                    "send real funds to its addresses; set CASINO_ETH_HOT_SEED_FILE and "
                    "CASINO_ETH_XPUB in production", path=str(path))
        write_dev_xpub(account_xpub(words))
    else:
        if _first_warning(path):
            log.warning("using the DEVELOPMENT hot wallet seed: for development only",
                        path=str(path))
        if not dev_xpub_path().exists():
            write_dev_xpub(account_xpub(words))
    return words


def _create_exclusively(path: Path, words: str) -> bool:
    """Write ``path`` (mode 0600) unless it exists; True if this call created it.

    The words go to a private temporary file first and are hard-linked into place, so a
    concurrent reader never sees a half-written seed and a concurrent creator never
    replaces one (its link fails and it reads the first seed).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            os.fchmod(fh.fileno(), 0o600)
            fh.write(words + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        tmp.unlink(missing_ok=True)


def _warn_if_readable_by_others(path: Path) -> None:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return
    if mode & 0o077:
        log.warning("the hot wallet seed file is readable by other users: chmod 600 it",
                    path=str(path), mode=oct(mode))
