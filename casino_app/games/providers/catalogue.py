"""Provider games as the lobby shows them. A provider game's key is ``p<id>`` (its row in
``provider_games``): short enough for favourites, never a provider's own code in a URL."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import func, select

from casino_app.core.db import ledger_tx
from casino_app.games.providers.models import Provider, ProviderGame, ProviderRound

_KEY = re.compile(r"^p([1-9][0-9]{0,9})$")
CACHE_SECONDS = 5.0


@dataclass(frozen=True)
class CatalogueGame:
    key: str
    provider: str
    provider_id: int
    code: str
    name: str
    category: str
    rtp_e4: int
    volatility: str
    thumb_url: str
    demo: bool
    currencies: tuple[str, ...]


def is_key(value: object) -> bool:
    return isinstance(value, str) and bool(_KEY.match(value))


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def _category(raw: str) -> str:
    """A provider's category as the lobby shows it: "slots" and "Slots" are one chip."""
    text = " ".join((raw or "").split())[:40]
    return text[:1].upper() + text[1:] if text else "Slots"


_cache: tuple[float, list[CatalogueGame]] | None = None


def lobby_games(fresh: bool = False) -> list[CatalogueGame]:
    """Enabled games of enabled providers (cached a few seconds: the lobby reads it on
    every visit)."""
    global _cache
    now = time.monotonic()
    if not fresh and _cache is not None and now - _cache[0] < CACHE_SECONDS:
        return _cache[1]
    with ledger_tx(readonly=True) as s:
        rows = s.execute(select(ProviderGame, Provider).join(
            Provider, Provider.id == ProviderGame.provider_id).where(
            Provider.enabled.is_(True), ProviderGame.enabled.is_(True))
            .order_by(Provider.name, ProviderGame.name))
        games = [CatalogueGame(f"p{g.id}", p.name, p.id, g.game_code, g.name,
                               _category(g.category), g.rtp_e4, g.volatility,
                               g.thumb_url if _origin(g.thumb_url) == _origin(p.base_url)
                               else "", g.demo,
                               tuple(c for c in p.currencies.split(",") if c))
                 for g, p in rows]
    _cache = (now, games)
    return games


def forget() -> None:
    global _cache
    _cache = None


def by_key(key: object) -> CatalogueGame | None:
    if not is_key(key):
        return None
    return next((g for g in lobby_games() if g.key == key), None)


def recent_keys(player_id: str, limit: int = 5) -> list[str]:
    """The provider games the player played most recently, newest first."""
    with ledger_tx(readonly=True) as s:
        rows = s.execute(select(ProviderRound.provider_id, ProviderRound.game_code,
                                func.max(ProviderRound.id).label("last"))
                         .where(ProviderRound.player_id == player_id)
                         .group_by(ProviderRound.provider_id, ProviderRound.game_code)
                         .order_by(func.max(ProviderRound.id).desc()).limit(limit)).all()
    by_code = {(g.provider_id, g.code): g.key for g in lobby_games()}
    return [by_code[(r.provider_id, r.game_code)] for r in rows
            if (r.provider_id, r.game_code) in by_code]


def provider_origins() -> list[str]:
    """The origins of enabled providers (their base URLs): what the Content-Security-
    Policy allows in frame-src and img-src."""
    with ledger_tx(readonly=True) as s:
        urls = s.execute(select(Provider.base_url).where(Provider.enabled.is_(True))).scalars()
        return sorted({o for o in (_origin(u) for u in urls) if o})
