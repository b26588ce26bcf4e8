"""Our calls to providers (httpx): the game list, a launch URL, a round's recall URL.

Each dialect signs its requests as it signs its answers (Hub88-style: our RSA key for
that provider; BGaming-style: the shared secret). An answer that carries a signature must
verify; one that does not is accepted (the public material does not say aggregators sign
their answers). Providers get the pseudonymous player id and the currency, never personal
data: no name, email, IP address or country.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import select

from casino_app.core.clock import utcnow
from casino_app.core.db import ledger_tx
from casino_app.core.logging import get_logger
from casino_app.core.settings import get_settings
from casino_app.games.providers import sessions
from casino_app.games.providers.dialects import bgaming, hub88
from casino_app.games.providers.models import ProviderGame
from casino_app.games.providers.registry import ProviderConfig

log = get_logger("casino.providers.client")

TIMEOUT = httpx.Timeout(5.0, connect=3.0)
MAX_ANSWER = 2 * 1024 * 1024
HUB88_PREFIX = "/operator/generic/v2"


class ProviderDown(Exception):
    """The provider did not answer, or answered something we cannot use."""


@dataclass(frozen=True)
class Game:
    code: str
    name: str
    category: str
    rtp_e4: int
    volatility: str
    thumb_url: str
    demo: bool
    enabled: bool
    fair_scheme: str


def _post(provider: ProviderConfig, path: str, payload: dict[str, Any]) -> Any:
    body = json.dumps(payload, separators=(",", ":")).encode()
    if provider.dialect == "hub88":
        header, signature = hub88.SIGNATURE_HEADER, hub88.sign(provider.secret or b"", body)
    else:
        header, signature = bgaming.SIGNATURE_HEADER, bgaming.sign(provider.secret or b"",
                                                                   body)
    try:
        with httpx.Client(timeout=TIMEOUT, follow_redirects=False) as http:
            r = http.post(provider.base_url + path, content=body,
                          headers={header: signature, "Content-Type": "application/json"})
    except httpx.HTTPError as exc:
        raise ProviderDown(f"{provider.name} did not answer ({type(exc).__name__})") from None
    if len(r.content) > MAX_ANSWER:
        raise ProviderDown(f"{provider.name} answered too much")
    answer_sig = r.headers.get(header)
    if answer_sig and not _answer_signed(provider, r.content, answer_sig):
        raise ProviderDown(f"{provider.name} answered with a bad signature")
    if r.status_code != 200:
        raise ProviderDown(f"{provider.name} answered HTTP {r.status_code}")
    try:
        return json.loads(r.content)
    except ValueError:
        raise ProviderDown(f"{provider.name} answered something that is not JSON") from None


def _answer_signed(provider: ProviderConfig, body: bytes, signature: str) -> bool:
    if provider.dialect == "hub88":
        return bool(provider.peer_public_key) and hub88.verify_signature(
            provider.peer_public_key or "", body, signature)
    return bgaming.DIALECT.verify(provider, {bgaming.SIGNATURE_HEADER.lower(): signature},
                                  body)


def _rtp_e4(value: object) -> int:
    try:
        rtp = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return 0
    if not rtp.is_finite() or not 0 <= rtp <= 100:
        return 0
    return int(rtp * 10_000)


def _url(value: object, provider: ProviderConfig) -> str:
    """An asset URL on http(s); relative URLs resolve against the provider's base."""
    if not isinstance(value, str) or len(value) > 300:
        return ""
    if value.startswith("/"):
        parts = urlsplit(provider.base_url)
        return f"{parts.scheme}://{parts.netloc}{value}"
    return value if urlsplit(value).scheme in ("https", "http") else ""


def _text(value: object, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""


def game_list(provider: ProviderConfig) -> list[Game]:
    if provider.dialect == "hub88":
        raw = _post(provider, HUB88_PREFIX + "/game/list",
                    {"operator_id": provider.operator_ref})
        items = raw if isinstance(raw, list) else []
        return [Game(_text(g.get("game_code"), 100), _text(g.get("name"), 100),
                     _text(g.get("category"), 40), _rtp_e4(g.get("rtp")),
                     _text(g.get("volatility"), 20), _url(g.get("url_thumb"), provider),
                     bool(g.get("demo_game_support")), bool(g.get("enabled", True)),
                     _text(g.get("fair_scheme"), 32))
                for g in items if isinstance(g, dict) and g.get("game_code")]
    raw = _post(provider, "/games", {"casino_id": provider.operator_ref})
    items = raw.get("games", []) if isinstance(raw, dict) else []
    return [Game(_text(g.get("identifier"), 100), _text(g.get("title"), 100),
                 _text(g.get("category"), 40), _rtp_e4(g.get("rtp")),
                 _text(g.get("volatility"), 20), _url(g.get("thumbnail"), provider),
                 bool(g.get("has_demo")), True, _text(g.get("fair_scheme"), 32))
            for g in items if isinstance(g, dict) and g.get("identifier")]


def sync_games(provider: ProviderConfig) -> int:
    """Refresh the provider's catalogue from its game list; returns how many games."""
    games = [g for g in game_list(provider) if g.code]
    now = utcnow()
    with ledger_tx() as s:
        have = {g.game_code: g for g in s.execute(select(ProviderGame).where(
            ProviderGame.provider_id == provider.id)).scalars()}
        listed = set()
        for g in games:
            listed.add(g.code)
            row = have.get(g.code) or ProviderGame(provider_id=provider.id, game_code=g.code)
            row.name, row.category, row.rtp_e4 = g.name or g.code, g.category, g.rtp_e4
            row.volatility, row.thumb_url, row.demo = g.volatility, g.thumb_url, g.demo
            row.enabled, row.fair_scheme, row.updated_at = g.enabled, g.fair_scheme, now
            s.add(row)
        for code, row in have.items():
            if code not in listed:
                row.enabled = False
    return len(games)


def launch_url(provider: ProviderConfig, player_id: str | None, game_code: str,
               currency_code: str | None, *, demo: bool = False, mobile: bool = False,
               lobby_url: str = "", deposit_url: str = "") -> str:
    """A launch URL for ``player_id`` (or a demo), as the lobby asks for it."""
    public = get_settings().public_url.rstrip("/")
    lobby_url = lobby_url or public + "/"
    deposit_url = deposit_url or public + "/wallet"
    token = None
    if not demo:
        if player_id is None or currency_code is None:
            raise ValueError("a real-money launch needs a player and a currency")
        token = sessions.open_session(provider, player_id, game_code, currency_code)
    if provider.dialect == "hub88":
        payload: dict[str, Any] = {
            "platform": "GPL_MOBILE" if mobile else "GPL_DESKTOP",
            "operator_id": provider.operator_ref, "lobby_url": lobby_url,
            "deposit_url": deposit_url, "lang": "en", "ip": "", "game_code": game_code,
            "currency": "XXX" if demo else currency_code, "country": "", "meta": {}}
        if not demo:
            payload.update(user=player_id, token=token)
        raw = _post(provider, HUB88_PREFIX + "/game/url", payload)
        url = raw.get("url") if isinstance(raw, dict) else None
    else:
        payload = {"casino_id": provider.operator_ref, "game": game_code, "locale": "en",
                   "ip": "", "client_type": "mobile" if mobile else "desktop",
                   "jurisdiction": "", "urls": {"return_url": lobby_url,
                                                "deposit_url": deposit_url}}
        if not demo:
            payload.update(currency=currency_code, balance=0, session_id=token,
                           user={"id": player_id, "nickname": (player_id or "")[:8]})
        raw = _post(provider, "/demo" if demo else "/sessions", payload)
        options = raw.get("launch_options") if isinstance(raw, dict) else None
        url = options.get("game_url") if isinstance(options, dict) else None
    if not isinstance(url, str) or urlsplit(url).scheme not in ("https", "http"):
        raise ProviderDown(f"{provider.name} gave no launch URL")
    return url


def round_url(provider: ProviderConfig, player_id: str, round_ref: str,
              tx_ref: str) -> str | None:
    """Where the provider shows a round (recall); Hub88-style only."""
    if provider.dialect != "hub88":
        return None
    raw = _post(provider, HUB88_PREFIX + "/game/round",
                {"user": player_id, "transaction_uuid": tx_ref, "round": round_ref,
                 "operator_id": provider.operator_ref})
    url = raw.get("url") if isinstance(raw, dict) else None
    return url if isinstance(url, str) and urlsplit(url).scheme in ("https", "http") \
        else None
