"""Bitcoin deposit addresses, and every address of ours the watcher looks for.

``deposit_address`` hands a player their BIP84 P2WPKH address on the chain ``bitcoin``:
``m/84'/coin'/0'/0/i`` of the account key the web side holds (``keys.account_xpub``:
``CASINO_BTC_XPUB`` or, in development, the file the signer writes), created on first
use at the next free index and never given to anyone else. As for Ethereum
(payments/eth/addresses.py), the UNIQUE constraints of ``deposit_addresses`` on (chain,
player), (chain, index) and (chain, address) decide every race; a request that loses one
starts again. The rows are append-only. Nothing here reads a seed.

``Wallet`` is what the watcher matches outputs against, by output script:

* ``deposit``: the players' addresses (``deposit_addresses``), ``m/84'/coin'/0'/0/i``;
* ``hot``: the hot wallet, ``m/84'/coin'/0'/1/0`` (``keys.hot_wallet_address``, the key
  the signer spends with; it is on the change chain so it is never a deposit address);
* ``change``: the hot wallet's change addresses ``m/84'/coin'/0'/1/k``, k >= 1;
* ``cold``: the cold multisig's addresses (payments/btc/cold.py) on its chains 0
  (receiving) and 1 (change), when ``CASINO_BTC_COLD_KEYS`` is set.

**How the watcher knows which change addresses exist** (the contract with the senders:
the withdrawal batcher, the sweeper, cold payments): a gap limit, as wallets do (BIP44).
The watcher looks for hot change indexes 1 .. (highest index it has seen paid, in
``btc_utxos``) + ``CHANGE_GAP``, and for cold addresses 0 .. (highest seen on that chain)
+ ``CHANGE_GAP``, and widens the window as soon as it records an output near its end. A
sender picks its change index with :func:`next_change_index` (the highest seen + 1), or
any index inside the window; sending change to the hot address itself (/1/0) is fine too.
An output beyond the window is not seen until the window reaches it.
"""

from __future__ import annotations

import random
import re
import time
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from casino_app.core.db import ledger_tx
from casino_app.payments.address_models import DepositAddress
from casino_app.payments.btc import cold as cold_wallets
from casino_app.payments.btc import keys
from casino_app.payments.btc import network as networks
from casino_app.payments.btc.models import BtcUtxo
from casino_app.payments.btc.network import Network

CHAIN = "bitcoin"
ATTEMPTS = 50
CHANGE_GAP = 20   # addresses looked for past the highest used change index (BIP44's gap)
HOT_INDEX = 0     # the hot wallet is m/84'/coin'/0'/1/0; change addresses are /1/1, /1/2...
_PLAYER_ID = re.compile(r"^[A-Za-z0-9_-]{1,36}$")  # a UUID, or a test/demo id


class AddressUnavailable(Exception):
    """No address could be allocated (the database kept refusing); try again later."""


def _find(s: Session, player_id: str) -> str | None:
    return s.execute(select(DepositAddress.address).where(
        DepositAddress.chain == CHAIN, DepositAddress.player_id == player_id)
    ).scalar_one_or_none()


def deposit_address(player_id: str) -> str:
    """The player's Bitcoin deposit address (bech32, lower case), created on first call.

    Runs its own ledger transactions. ValueError for a bad player id, ConfigError when
    the account key is not known (``keys.account_xpub``), AddressUnavailable if the
    allocation kept losing races (it should not happen)."""
    if not isinstance(player_id, str) or not _PLAYER_ID.match(player_id):
        raise ValueError("bad player id")
    with ledger_tx(readonly=True) as s:
        found = _find(s, player_id)
    if found is not None:
        return found
    xpub = keys.account_xpub()
    for attempt in range(ATTEMPTS):
        try:
            with ledger_tx() as s:
                found = _find(s, player_id)
                if found is not None:
                    return found
                top = s.execute(select(func.max(DepositAddress.derivation_index))
                                .where(DepositAddress.chain == CHAIN)).scalar_one()
                index = 0 if top is None else top + 1
                address = keys.deposit_address(index, xpub)
                s.add(DepositAddress(chain=CHAIN, player_id=player_id,
                                     derivation_index=index, address=address))
                s.flush()
            return address
        except IntegrityError:
            # Another request took this index or created this player's address: the next
            # round sees its row. A short random pause spreads the retries.
            time.sleep(random.uniform(0, 0.002 * (attempt + 1)))  # noqa: S311 - jitter
    raise AddressUnavailable("could not allocate a Bitcoin deposit address")


def count(s: Session) -> int:
    """How many Bitcoin deposit addresses exist (the watcher reloads when it changes)."""
    return s.execute(select(func.count()).select_from(DepositAddress)
                     .where(DepositAddress.chain == CHAIN)).scalar_one()


def highest_seen(s: Session, role: str, key_chain: int) -> int | None:
    """The highest derivation index of ``role`` on ``key_chain`` that has received an
    output we recorded (None: none)."""
    return s.execute(select(func.max(BtcUtxo.key_index)).where(
        BtcUtxo.chain == CHAIN, BtcUtxo.role == role, BtcUtxo.key_chain == key_chain)
    ).scalar_one()


def next_change_index(s: Session) -> int:
    """The hot wallet change index a sender should pay its change to: the highest one the
    watcher has seen paid, plus one (1 when none): always inside the watcher's window."""
    top = highest_seen(s, "change", keys.CHANGE)
    return 1 if top is None else top + 1


# --- what the watcher matches -------------------------------------------------------------

@dataclass(frozen=True)
class Owner:
    """Whose an output script is: its role in ``btc_utxos`` and its derivation."""

    address: str
    role: str                 # deposit, hot, change, cold
    key_chain: int
    key_index: int
    player_id: str | None = None


class Wallet:
    """Every output script of ours, by script bytes (what a block's outputs are matched
    against): the deposit addresses, the hot wallet, the change and cold windows.
    ``refresh`` reloads the deposit addresses when their number changed and sets the
    windows from what ``btc_utxos`` has seen; ``saw`` widens a window at once."""

    def __init__(self, xpub: str, network: Network | None = None,
                 cold: cold_wallets.ColdWallet | None = None, gap: int = CHANGE_GAP) -> None:
        self.xpub, self.network, self.cold, self.gap = xpub, network or networks.current(), \
            cold, gap
        self.scripts: dict[bytes, Owner] = {}
        self._deposit_count = -1
        self._ends: dict[tuple[str, int], int] = {}  # (role, key chain) -> last index watched
        hot = keys.address_at(xpub, keys.CHANGE, HOT_INDEX, self.network)
        self._add(hot, Owner(hot, "hot", keys.CHANGE, HOT_INDEX))

    def _add(self, address: str, owner: Owner, script: bytes | None = None) -> None:
        if script is None:
            script = keys.validate_address(address, self.network).script_pubkey
        self.scripts[script] = owner

    def get(self, script: bytes) -> Owner | None:
        return self.scripts.get(script)

    def refresh(self, s: Session, deposits: bool = True) -> None:
        """Reload the deposit addresses when their number changed (not with ``deposits``
        False: the house's own addresses only) and set the windows from ``btc_utxos``."""
        n = count(s) if deposits else self._deposit_count
        if n != self._deposit_count:
            for address, player_id, index in s.execute(
                    select(DepositAddress.address, DepositAddress.player_id,
                           DepositAddress.derivation_index)
                    .where(DepositAddress.chain == CHAIN)).tuples():
                self._add(address, Owner(address, "deposit", keys.RECEIVE, index, player_id))
            self._deposit_count = n
        self._widen("change", keys.CHANGE, highest_seen(s, "change", keys.CHANGE) or 0)
        if self.cold is not None:
            for chain in (cold_wallets.RECEIVE, cold_wallets.CHANGE):
                top = highest_seen(s, "cold", chain)
                self._widen("cold", chain, -1 if top is None else top)

    def saw(self, owner: Owner) -> None:
        """An output paid ``owner``: keep CHANGE_GAP addresses watched past it."""
        if owner.role in ("change", "cold"):
            self._widen(owner.role, owner.key_chain, owner.key_index)

    def _widen(self, role: str, key_chain: int, highest: int) -> None:
        end = highest + self.gap
        start = self._ends.get((role, key_chain), 0 if role == "change" else -1) + 1
        for index in range(start, end + 1):
            if role == "change":
                address = keys.address_at(self.xpub, keys.CHANGE, index, self.network)
                self._add(address, Owner(address, "change", keys.CHANGE, index))
            else:
                if self.cold is None:
                    raise RuntimeError("cold addresses asked for without a cold wallet")
                a = self.cold.address(index, key_chain)
                self._add(a.address, Owner(a.address, "cold", key_chain, index),
                          a.script_pubkey)
        self._ends[(role, key_chain)] = max(end, self._ends.get((role, key_chain), end))
