"""Bitcoin fixtures: one private bcoin regtest node per test session (``bitcoin_node``),
started past segwit's activation with a funded test wallet; stopped at the end of the
session, whatever the tests did (see tests/support/bitcoin.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.bitcoin import BcoinNode


@pytest.fixture(scope="session")
def bitcoin_node() -> Iterator[BcoinNode]:
    node = BcoinNode()
    try:
        node.start()
        yield node
    finally:
        node.stop()
