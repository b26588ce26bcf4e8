"""The provider-sim as a real process against the test-only wallet stand-in.

One sim and one stand-in per test module (a start is about a second); every test starts
with no misbehaviour and a clean call record.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.provider_sim.wallet_standin import WalletStandIn
from tests.support.provider_sim import ProviderSim, start_provider_sim, write_casino_key


@pytest.fixture(scope="module")
def casino_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def sim_and_wallet(tmp_path_factory: pytest.TempPathFactory, casino_key: rsa.RSAPrivateKey
                   ) -> Iterator[tuple[ProviderSim, WalletStandIn]]:
    state_dir = tmp_path_factory.mktemp("provider-sim")
    write_casino_key(state_dir, casino_key)
    wallet = WalletStandIn(state_dir, casino_key).start()
    sim = start_provider_sim(state_dir, hub88_wallet=f"{wallet.url}/hub88",
                             bgaming_wallet=f"{wallet.url}/bgaming", casino_key=casino_key,
                             wallet_timeout=1.0, retry_every=0.5)
    yield sim, wallet
    sim.stop()
    wallet.stop()


@pytest.fixture
def sim(sim_and_wallet: tuple[ProviderSim, WalletStandIn]) -> ProviderSim:
    sim, wallet = sim_and_wallet
    sim.control()
    wallet.reset()
    return sim


@pytest.fixture
def wallet(sim_and_wallet: tuple[ProviderSim, WalletStandIn], sim: ProviderSim
           ) -> WalletStandIn:
    return sim_and_wallet[1]
