"""Deposit addresses: one per (chain, player), derived from the hot wallet's xpub.

``deposit_address`` hands a player their address, creating it on first use at the next
free derivation index. It is handed out once and never given to another player: the
UNIQUE constraints on (chain, player_id), (chain, derivation_index) and (chain, address)
decide every race, and a request that loses one starts again (it then finds the player's
address, or takes the next index). The rows are append-only (migration led0004).

The watcher reads the table with ``owners`` / ``all_addresses`` / ``count``. Addresses are
stored checksummed (EIP-55) and compared after ``keys.checksum``, so any spelling of an
address finds its row through the unique index.

Note: every chain has its own index space. If two EVM chains were served from the same
xpub, index 0 on one and index 0 on the other would be the same address for two
different players; use one xpub per chain (or one chain) until that is changed.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from casino_app.core.db import ledger_tx
from casino_app.payments.address_models import DepositAddress
from casino_app.payments.eth import keys

DEFAULT_CHAIN = "ethereum"
ATTEMPTS = 50
_PLAYER_ID = re.compile(r"^[A-Za-z0-9_-]{1,36}$")  # a UUID, or a test/demo id
_CHAIN = re.compile(r"^[a-z][a-z0-9-]{0,15}$")
_LOOKUP_BATCH = 500


class AddressUnavailable(Exception):
    """No address could be allocated (the database kept refusing); try again later."""


def _validate(player_id: object, chain: object) -> None:
    if not isinstance(player_id, str) or not _PLAYER_ID.match(player_id):
        raise ValueError("bad player id")
    if not isinstance(chain, str) or not _CHAIN.match(chain):
        raise ValueError("bad chain name (lowercase letters, digits, '-', up to 16)")


def _find(s: Session, chain: str, player_id: str) -> str | None:
    return s.execute(select(DepositAddress.address).where(
        DepositAddress.chain == chain, DepositAddress.player_id == player_id)
    ).scalar_one_or_none()


def deposit_address(player_id: str, chain: str = DEFAULT_CHAIN) -> str:
    """The player's deposit address on ``chain`` (EIP-55), created on the first call.

    Runs its own ledger transactions. Raises ValueError for a bad player id or chain,
    ConfigError when the hot wallet's xpub is not known (see ``keys.hot_wallet_xpub``),
    AddressUnavailable if the allocation kept losing races (it should not happen).
    """
    _validate(player_id, chain)
    with ledger_tx(readonly=True) as s:
        found = _find(s, chain, player_id)
    if found is not None:
        return found
    xpub = keys.hot_wallet_xpub()
    for attempt in range(ATTEMPTS):
        try:
            with ledger_tx() as s:
                found = _find(s, chain, player_id)
                if found is not None:
                    return found
                top = s.execute(select(func.max(DepositAddress.derivation_index))
                                .where(DepositAddress.chain == chain)).scalar_one()
                index = 0 if top is None else top + 1
                address = keys.address_at(xpub, index)
                s.add(DepositAddress(chain=chain, player_id=player_id,
                                     derivation_index=index, address=address))
                s.flush()
            return address
        except IntegrityError:
            # Another request took this index, or created this player's address: the
            # next round sees its row. A short random pause spreads the retries.
            time.sleep(random.uniform(0, 0.002 * (attempt + 1)))  # noqa: S311 - jitter
    raise AddressUnavailable(f"could not allocate a deposit address on {chain}")


def owners(s: Session, chain: str, addresses: Iterable[str]) -> dict[str, str]:
    """{checksummed address: player_id} for those of ``addresses`` that are deposit
    addresses on ``chain``. Any spelling is accepted (lowercase from logs, checksummed
    from transactions); strings that are not addresses are skipped."""
    wanted: set[str] = set()
    for a in addresses:
        try:
            wanted.add(keys.checksum(a))
        except ValueError:
            continue
    out: dict[str, str] = {}
    ordered = sorted(wanted)
    for i in range(0, len(ordered), _LOOKUP_BATCH):
        batch = ordered[i:i + _LOOKUP_BATCH]
        out.update(s.execute(select(DepositAddress.address, DepositAddress.player_id).where(
            DepositAddress.chain == chain, DepositAddress.address.in_(batch))).tuples().all())
    return out


def all_addresses(s: Session, chain: str) -> dict[str, str]:
    """{checksummed address: player_id} for every deposit address on ``chain``."""
    return dict(s.execute(select(DepositAddress.address, DepositAddress.player_id)
                          .where(DepositAddress.chain == chain)).tuples().all())


def count(s: Session, chain: str) -> int:
    """How many deposit addresses ``chain`` has (the watcher reloads when it changes)."""
    return s.execute(select(func.count()).select_from(DepositAddress)
                     .where(DepositAddress.chain == chain)).scalar_one()
