"""The hot wallet's sending key: signs the batcher's Ethereum transactions; and the deposit
addresses' keys (``m/44'/60'/0'/0/i``), which sign the sweeper's transfers of a deposit
address's coins to the hot wallet.

The hot wallet sends from ``m/44'/60'/0'/1/0`` of the hot seed (the internal chain, so it
is never a deposit address ``.../0/i``); the web side knows the same address from the
account xpub (``payments/eth/keys.hot_wallet_address``). The seed is loaded on the first
signature, in the process that runs the jobs; the web process never imports this module.
"""

from __future__ import annotations

import threading
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from casino_app.payments.eth.keys import HOT_WALLET_CHANGE, HOT_WALLET_INDEX
from casino_app.payments.signer import seed

_lock = threading.Lock()
_account: LocalAccount | None = None
_source: str | None = None  # the account xpub the key was loaded for
_deposit_keys: dict[tuple[str, int], LocalAccount] = {}  # (xpub, index) -> key
_DEPOSIT_CACHE = 256


def _hot_account() -> LocalAccount:
    """The hot wallet's key, derived once per seed (reloaded if the seed changes)."""
    global _account, _source
    words = seed.load_seed()
    xpub = seed.account_xpub(words)
    with _lock:
        if _account is None or _source != xpub:
            key = seed._account_key(words).child_private(HOT_WALLET_CHANGE) \
                .child_private(HOT_WALLET_INDEX)
            _account, _source = Account.from_key(bytes(key.private_byte)), xpub
        return _account


def hot_address() -> str:
    """The checksummed address the batcher sends from."""
    return _hot_account().address


def sign_transaction(tx: dict[str, Any]) -> tuple[bytes, str]:
    """Sign a complete transaction dict (nonce, gas, fees, chainId all set) with the hot
    wallet's key; returns (raw signed transaction, 0x tx hash). ``tx["from"]``, when
    given, must be the hot wallet."""
    return _check(tx, _hot_account(), "the hot wallet")


def _check(tx: dict[str, Any], acct: LocalAccount, what: str) -> tuple[bytes, str]:
    tx = dict(tx)
    sender = tx.pop("from", None)
    if sender is not None and sender.lower() != acct.address.lower():
        raise ValueError(f"the transaction is not from {what}")
    missing = [k for k in ("nonce", "gas", "chainId") if k not in tx]
    if missing or ("gasPrice" not in tx and "maxFeePerGas" not in tx):
        raise ValueError(f"incomplete transaction: {missing or ['fees']} missing")
    signed = acct.sign_transaction(tx)
    return bytes(signed.raw_transaction), "0x" + bytes(signed.hash).hex()


def sign_deposit_transaction(index: int, tx: dict[str, Any]) -> tuple[bytes, str]:
    """Sign a complete transaction with the key of deposit address ``index``
    (``m/44'/60'/0'/0/index``); ``tx["from"]`` must be that address (it is required: a
    wrong index must never sign)."""
    if "from" not in tx:
        raise ValueError("the deposit address (tx['from']) is required")
    words = seed.load_seed()
    cache_key = (seed.account_xpub(words), index)
    with _lock:
        acct = _deposit_keys.get(cache_key)
    if acct is None:
        acct = Account.from_key(seed.private_key_at(words, index))
        with _lock:
            if len(_deposit_keys) >= _DEPOSIT_CACHE:
                _deposit_keys.clear()
            _deposit_keys[cache_key] = acct
    return _check(tx, acct, f"deposit address {index}")


def forget() -> None:
    """Drop the cached keys (tests that change the seed)."""
    global _account, _source
    with _lock:
        _account = _source = None
        _deposit_keys.clear()
