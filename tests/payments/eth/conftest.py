"""Ethereum fixtures: one private anvil per test session, and the devnet contracts on it.

``anvil``       a started :class:`tests.support.services.Anvil` (auto-mining), session-wide.
``devnet``      the dict of :func:`casino_app.payments.eth.chain.deploy_devnet` on that
                node (USDT, USDC, a 2-of-3 Safe; deployer ``anvil.accounts[0]`` owns the
                tokens), plus ``safe_owner_keys``. Deployed once; deployed again when a
                test reverted the chain to a snapshot taken before it existed.
``chain_state`` snapshot before the test, revert after it (state changes do not leak).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from casino_app.payments.eth import chain
from tests.support.services import Anvil


@pytest.fixture(scope="session")
def anvil() -> Iterator[Anvil]:
    node = Anvil()
    try:
        node.start()
        yield node
    finally:
        node.stop()


_CONTRACTS = ("USDT", "USDC", "safe")


def _fingerprint(anvil: Anvil, d: dict[str, Any]) -> tuple:
    w3 = anvil.w3
    codes = tuple(bytes(w3.eth.get_code(d[k])) for k in _CONTRACTS)
    owners = chain.contract(w3, "SafeL2", d["safe"]).functions.getOwners().call() \
        if codes[-1] else []
    return codes, sorted(owners)


@pytest.fixture(scope="session")
def _devnet_cache() -> dict[str, Any]:
    return {}


@pytest.fixture
def devnet(anvil: Anvil, _devnet_cache: dict[str, Any]) -> dict[str, Any]:
    d = _devnet_cache.get("devnet")
    if d is None or _fingerprint(anvil, d) != _devnet_cache["fingerprint"]:
        owner_keys = anvil.keys[7:10]
        d = chain.deploy_devnet(anvil.w3, anvil.keys[0], owner_keys, threshold=2)
        d["safe_owner_keys"] = owner_keys
        _devnet_cache["devnet"] = d
        _devnet_cache["fingerprint"] = _fingerprint(anvil, d)
    return d


@pytest.fixture
def chain_state(anvil: Anvil) -> Iterator[Anvil]:
    snap = anvil.snapshot()
    yield anvil
    anvil.revert(snap)
