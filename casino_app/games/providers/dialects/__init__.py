"""One module per provider dialect, each with the same shape (``Dialect``). Adding a
dialect is one new module here, its name in ``DIALECTS`` and in ``registry.DIALECTS``
(and the CHECK on ``providers.dialect``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from casino_app.games.providers.contract import Refused, WalletRequest
from casino_app.games.providers.registry import ProviderConfig
from casino_app.games.providers.wallet import Reply


class Dialect(Protocol):
    name: str
    paths: frozenset[str]          # the wallet paths a provider calls, under its base
    signature_header: str

    def verify(self, provider: ProviderConfig, headers: Mapping[str, str],
               body: bytes) -> bool: ...

    def parse(self, path: str, body: bytes) -> WalletRequest: ...

    def reply(self, provider: ProviderConfig, path: str, body: bytes) -> Reply: ...

    def http_status(self, refusal: Refused | None) -> int: ...


def dialect(name: str) -> Dialect:
    from casino_app.games.providers.dialects import bgaming, hub88

    found = {"hub88": hub88.DIALECT, "bgaming": bgaming.DIALECT}.get(name)
    if found is None:
        raise KeyError(f"unknown dialect {name!r}")
    return found
