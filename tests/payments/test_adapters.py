"""Every chain adapter the casino runs implements the interface the shared payments modules
ask of a chain (payments/chains.Chain), under a name of its own."""

from __future__ import annotations

import inspect

import pytest

from casino_app.payments import adapters, chains


def test_every_adapter_implements_the_chain_interface() -> None:
    methods = {n for n, v in vars(chains.Chain).items()
               if not n.startswith("_") and inspect.isfunction(v)}
    assert {"currencies", "withdrawal_limits", "check_address", "is_own_address",
            "take_back_cold_payment", "setting_checks"} <= methods
    for chain in adapters.CHAINS:
        assert isinstance(chain.name, str) and chain.name
        for name in methods:
            ours = getattr(type(chain), name, None)
            assert callable(ours), f"{chain.name} lacks {name}"
            assert list(inspect.signature(ours).parameters) == \
                list(inspect.signature(getattr(chains.Chain, name)).parameters), \
                f"{chain.name}.{name} does not take what Chain.{name} takes"
    names = [c.name for c in adapters.CHAINS]
    assert len(set(names)) == len(names)
    assert chains.DEFAULT_CHAIN in names


def test_chains_are_found_by_name() -> None:
    assert adapters.chain("ethereum").name == "ethereum"
    with pytest.raises(LookupError, match="dogecoin"):
        adapters.chain("dogecoin")
