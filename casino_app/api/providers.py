"""``POST /api/providers/{name}/{path}``: game providers' calls to our wallet.

Every request is checked before anything else, in this order: body size (64 KB, never
read past it), the provider (unknown: 404), the path (not one of its dialect's: 404), the
signature (bad: the dialect's signature error, a security alert, nothing else read), the
provider's state (disabled: the dialect's partner error), the schema (the dialect's
syntax or type error). Then the wallet applies it on the settlement writer
(``games.providers.wallet``). Every signed request is kept as a receipt with our answer.
"""

from __future__ import annotations

import asyncio
import threading
import time

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from casino_app.core.db import identity_tx
from casino_app.core.logging import get_logger, security_logger
from casino_app.core.metrics import PROVIDER_CALLS
from casino_app.games.providers import alerts, registry, wallet
from casino_app.games.providers.contract import Refused, Status
from casino_app.games.providers.dialects import dialect
from casino_app.users.models import User

log = get_logger("casino.providers.http")

MAX_BODY = 64 * 1024
_PLAYER_CACHE_SECONDS = 2.0
_players: dict[str, tuple[float, bool]] = {}
_alerted: dict[int, float] = {}
_lock = threading.Lock()


class _TooLarge(Exception):
    pass


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.strip().isdigit() or int(declared) > MAX_BODY):
        raise _TooLarge()
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise _TooLarge()
    return bytes(body)


def player_ok(player_id: str) -> bool:
    """May this player bet now (an account that exists and is not locked)? Cached for
    two seconds per player: a lock stops provider bets within that."""
    now = time.monotonic()
    hit = _players.get(player_id)
    if hit is not None and now - hit[0] < _PLAYER_CACHE_SECONDS:
        return hit[1]
    with identity_tx(readonly=True) as s:
        row = s.execute(select(User.locked_at).where(User.player_id == player_id)).first()
    ok = row is not None and row.locked_at is None
    with _lock:
        if len(_players) > 10000:
            _players.clear()
        _players[player_id] = (now, ok)
    return ok


def _bad_signature(provider: registry.ProviderConfig, path: str, request: Request) -> None:
    """Log every bad signature; write the alert row at most once a second per provider
    (a flood is counted by the row's minute bucket and the metric, not a row a call)."""
    client = request.client.host if request.client else ""
    security_logger().warning("provider bad signature", provider=provider.name, path=path,
                              ip=client)
    now = time.monotonic()
    with _lock:
        if now - _alerted.get(provider.id, 0.0) < 1.0:
            return
        _alerted[provider.id] = now
    alerts.raise_alert(provider.id, "bad_signature", "high", path,
                       f"a call to {path} from {client} with a bad signature")


def _answer(body: bytes, signature: str, header: str, status: int) -> Response:
    headers = {header: signature} if signature else {}
    return Response(body, status_code=status, media_type="application/json",
                    headers=headers)


async def callback(request: Request) -> Response:
    name = request.path_params.get("name", "")
    path = "/" + request.path_params.get("rest", "")
    try:
        body = await _body(request)
    except _TooLarge:
        return JSONResponse({"error": "too large"}, status_code=413)
    provider = await asyncio.to_thread(registry.by_name, name)
    if provider is None:
        return JSONResponse({"error": "not found"}, status_code=404)
    d = dialect(provider.dialect)
    if path not in d.paths:
        return JSONResponse({"error": "not found"}, status_code=404)
    reply = d.reply(provider, path, body)
    if not d.verify(provider, request.headers, body):
        await asyncio.to_thread(_bad_signature, provider, path, request)
        PROVIDER_CALLS.labels(d.name, Status.invalid_signature.value).inc()
        refusal = Refused(Status.invalid_signature, "bad signature")
        out = reply.render(refusal)
        return _answer(out, reply.sign(out), d.signature_header, d.http_status(refusal))
    receipt = wallet.Receipt(path, body, request.headers.get(d.signature_header.lower(), ""))
    try:
        if not provider.enabled:
            raise Refused(Status.invalid_partner, "this provider is disabled")
        parsed = d.parse(path, body)
    except Refused as refusal:
        out, signature = await asyncio.to_thread(wallet.refuse, provider, receipt, reply,
                                                 refusal)
        PROVIDER_CALLS.labels(d.name, refusal.status.value).inc()
        return _answer(out, signature, d.signature_header, d.http_status(refusal))
    try:
        out, signature, status = await wallet.handle_async(provider, parsed, receipt, reply,
                                                           player_ok)
    except Exception:  # noqa: BLE001 - nothing was applied: the dialect's unknown error
        log.exception("provider_call_failed", provider=provider.name, path=path)
        refusal = Refused(Status.unknown_error, "try again")
        out = reply.render(refusal)
        signature, status = reply.sign(out), refusal.status
    PROVIDER_CALLS.labels(d.name, status.value).inc()
    refusal = None if status is Status.ok else Refused(status)
    return _answer(out, signature, d.signature_header, d.http_status(refusal))
