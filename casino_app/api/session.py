"""``/api/session/adopt`` and ``/api/session/clear``: the only places the session cookie
is set or removed (see ``casino_app.security.session_cookie`` for the whole scheme).

Both answer POSTs from our own pages only (the ``Origin`` header must be the public
origin; browsers send it with every POST), under the SecurityMiddleware's /api treatment
(no-store, access log without the body).
"""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from casino_app.api.body import TooLarge, read_limited
from casino_app.core.logging import get_logger
from casino_app.core.settings import get_settings
from casino_app.security.session_cookie import (
    DEVELOPMENT_BIND,
    HandoffRefused,
    cookie_names,
    cookie_value,
    open_handoff,
    set_cookie_header,
)
from casino_app.users import accounts

log = get_logger("casino.http")

_MAX_BODY = 4096


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    return bool(origin) and origin.lower() == _origin(get_settings().public_url)


def _refused(status: int, error: str) -> JSONResponse:
    return JSONResponse({"error": error}, status_code=status)


async def _code(request: Request) -> str | None:
    """The ``code`` field of the page's form (``application/x-www-form-urlencoded``, what
    compiled page code sends). The route answers anyone before any session exists, so the
    body is never read past ``_MAX_BODY`` bytes (``read_limited``)."""
    body = await read_limited(request, _MAX_BODY)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        return None
    fields = parse_qs(body.decode("utf-8", "replace"), max_num_fields=8)
    values = fields.get("code") or [None]
    return values[0]


async def adopt(request: Request) -> Response:
    """Turn a handoff code from this browser's socket into the HttpOnly session cookie."""
    if not _same_origin(request):
        return _refused(403, "forbidden")
    names = cookie_names()
    bind = cookie_value(request.headers.get("cookie"), names.bind)
    if not bind and not get_settings().is_production:
        bind = DEVELOPMENT_BIND  # see security/session_cookie.py
    try:
        token = open_handoff(await _code(request), bind)
    except TooLarge:
        return _refused(413, "too large")
    except ValueError as exc:  # more fields than a form of ours has (parse_qs)
        log.info("session_handoff_refused", reason=type(exc).__name__)
        return _refused(400, "invalid or expired code")
    except HandoffRefused as exc:
        log.info("session_handoff_refused", reason=str(exc))
        return _refused(400, "invalid or expired code")
    me = await asyncio.to_thread(accounts.current_user, token, touch=False)
    if me is None:
        return _refused(400, "invalid or expired code")
    s = get_settings()
    response = Response(status_code=204)
    response.headers.append("Set-Cookie", set_cookie_header(
        names.session, token, max_age=s.session_absolute_days * 86400, secure=names.secure))
    return response


async def clear(request: Request) -> Response:
    """Remove the session cookie (after a sign-out; the session itself was ended by the
    handler that asked for this)."""
    if not _same_origin(request):
        return _refused(403, "forbidden")
    names = cookie_names()
    response = Response(status_code=204)
    response.headers.append("Set-Cookie", set_cookie_header(
        names.session, "", max_age=0, secure=names.secure))
    return response
