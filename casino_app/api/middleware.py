"""The outermost HTTP middleware: request ids, security headers, access log, error shield.

Pure ASGI (no BaseHTTPMiddleware) so that streaming and WebSockets are not buffered or
disturbed: any scope that is not ``http`` (the Reflex event WebSocket, lifespan) goes to
the inner app untouched.

For every HTTP response, whoever produced it (our /api routes, Reflex's endpoints, the
compiled frontend's static files):
- ``X-Request-ID``: the caller's, when it is a short safe token, else a new one; it is
  also put into ``casino_app.core.logging.request_id_var`` so every log line of the
  request carries it;
- the security headers of ``security_headers()`` (HSTS, CSP, nosniff, frame denial...);
  the CSP's ``script-src`` lists the hashes of the built pages' inline scripts
  (``api/csp.py``) instead of ``'unsafe-inline'``;
- the bind cookie (``security/session_cookie.py``) when the request has none, so the socket
  that the page opens next carries it.

Every HTTP request is counted in ``casino_http_requests_total`` (route template for our
/api routes, else a fixed bucket, so the label stays bounded).

For ``/api/...`` only: ``Cache-Control: no-store``, one JSON access-log line (method,
path without the query string, status, duration, request id), and an unhandled exception
becomes a JSON 500 naming only the request id (no traceback ever reaches a client).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from casino_app.api.csp import BuildScriptHashes
from casino_app.core.logging import get_logger, request_id_var
from casino_app.core.metrics import HTTP_REQUEST_SECONDS, HTTP_REQUESTS
from casino_app.core.settings import get_settings
from casino_app.games.providers.catalogue import provider_origins
from casino_app.security.session_cookie import (
    BIND_MAX_AGE,
    cookie_names,
    cookie_value,
    new_bind_value,
    set_cookie_header,
)

log = get_logger("casino.http")

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

HSTS = "max-age=63072000; includeSubDomains"
PROVIDER_ORIGINS_SECONDS = 5.0
PROVIDER_ORIGINS_WAIT = 0.25


def content_security_policy(public_url: str | None = None,
                            script_hashes: Iterable[str] = (),
                            provider_origins: Iterable[str] = ()) -> str:
    """The CSP for every page and response.

    Scripts: our own files ('self') and the inline scripts of the build, each by its
    SHA-256 (``script_hashes``, from ``api/csp.py``); no 'unsafe-inline', no
    'unsafe-eval'. Reflex evaluates with eval() the JavaScript of events that a state
    handler returns (``rx.toast``, ``rx.call_script``, ``rx.set_clipboard`` sent from the
    server) and of ``rx.call_script`` given a string; the app uses none of these (server
    notices go through ``ui/state/notice.py``, page scripts through ``rx.call_function``
    with compiled code), so a script an attacker gets into a page or a state var cannot
    be run through eval either.
    Styles keep 'unsafe-inline': Emotion (Reflex's CSS-in-JS) writes every component's
    style as an inline <style> element at build time and at run time, and Radix sets
    style="" attributes (slider positions, popper placement); neither can be listed by
    hash. CSS cannot run script; what it leaves possible (restyling, CSS-selector data
    probes) needs an injection point that React's escaping does not give.
    WebSocket connections are allowed to our own public origin only ('self' covers the
    same origin in current browsers; the explicit ws(s):// source covers the rest).
    Frames and images from elsewhere: exactly the origins of the enabled game providers
    (``provider_origins``: their games open in an iframe, their thumbnails load from
    them), and no frame at all without one.
    """
    url = public_url if public_url is not None else get_settings().public_url
    parts = urlsplit(url)
    connect = ["'self'"]
    if parts.netloc:
        # Browsers on an https page upgrade ws:// to wss:// anyway; list what is used.
        if parts.scheme == "https":
            connect.append(f"wss://{parts.netloc}")
        else:
            connect += [f"ws://{parts.netloc}", f"wss://{parts.netloc}"]
    else:  # pragma: no cover - settings always validate a scheme and a host
        connect += ["ws:", "wss:"]
    providers = sorted(set(provider_origins))
    directives = [
        "default-src 'self'",
        " ".join(["script-src 'self'", *script_hashes]),
        "script-src-attr 'none'",
        "style-src 'self' 'unsafe-inline'",
        " ".join(["img-src 'self' data: blob:", *providers]),
        " ".join(["frame-src", *providers]) if providers else "frame-src 'none'",
        "font-src 'self' data:",
        "connect-src " + " ".join(connect),
        "manifest-src 'self'",
        "worker-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "object-src 'none'",
    ]
    return "; ".join(directives)


def security_headers(public_url: str | None = None,
                     script_hashes: Iterable[str] = (),
                     provider_origins: Iterable[str] = ()) -> dict[str, str]:
    """Headers added to every HTTP response (name -> value)."""
    return {
        "Strict-Transport-Security": HSTS,
        "Content-Security-Policy": content_security_policy(public_url, script_hashes,
                                                           provider_origins),
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "strict-origin-when-cross-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
        "Cross-Origin-Opener-Policy": "same-origin",
    }


def is_api_path(path: str) -> bool:
    return path == "/api" or path.startswith("/api/")


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            try:
                candidate = value.decode("ascii")
            except UnicodeDecodeError:
                return None
            return candidate if _VALID_REQUEST_ID.match(candidate) else None
    return None


def _route_label(scope: Scope, api_route_paths: frozenset[str]) -> str:
    """A bounded label: the template of one of our /api routes, else one of three buckets."""
    route = scope.get("route")
    template = getattr(route, "path", None)
    if template in api_route_paths:
        return str(template)
    path = scope.get("path", "")
    if is_api_path(path):
        return "/api/(unmatched)"
    return "(reflex)" if path.startswith("/_") or path == "/ping" else "(frontend)"


class SecurityMiddleware:
    """Wraps the whole backend (API routes, Reflex, static frontend); see module doc."""

    def __init__(self, app: ASGIApp, *, api_route_paths: Iterable[str] = (),
                 public_url: str | None = None, frontend_dir: Path | None = None) -> None:
        self.app = app
        self.api_route_paths = frozenset(api_route_paths)
        self._public_url = public_url
        self._script_hashes = BuildScriptHashes(frontend_dir)
        self._headers_for: tuple[tuple[str, ...], tuple[str, ...],
                                 dict[str, str]] | None = None
        self._origins: tuple[str, ...] = ()
        self._origins_at = -PROVIDER_ORIGINS_SECONDS
        self._origins_task: asyncio.Future | None = None
        self._cookies = cookie_names(public_url)

    async def _provider_origins(self) -> tuple[str, ...]:
        """The enabled providers' origins, read again every ``PROVIDER_ORIGINS_SECONDS``
        (a provider added or disabled reaches the CSP within that). The read runs in the
        background: a response waits for it at most ``PROVIDER_ORIGINS_WAIT`` seconds and
        otherwise goes out with the last list (a stuck database never holds a page)."""
        now = time.monotonic()
        if self._origins_task is None and now - self._origins_at >= PROVIDER_ORIGINS_SECONDS:
            self._origins_at = now
            self._origins_task = asyncio.ensure_future(asyncio.to_thread(provider_origins))
            self._origins_task.add_done_callback(self._origins_read)
        task = self._origins_task
        if task is not None:
            # the read's own failure is logged by _origins_read; either way the last list
            await asyncio.wait([task], timeout=PROVIDER_ORIGINS_WAIT)
        return self._origins

    def _origins_read(self, task: asyncio.Future) -> None:
        self._origins_task = None
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.warning("provider_origins_unread", error=type(exc).__name__)
            return
        self._origins = tuple(task.result())

    async def _headers(self) -> dict[str, str]:
        """The security headers, with the CSP of the build being served."""
        hashes = self._script_hashes.current()
        origins = await self._provider_origins()
        cached = self._headers_for
        if cached is None or cached[0] is not hashes or cached[1] != origins:
            cached = (hashes, origins, security_headers(self._public_url, hashes, origins))
            self._headers_for = cached
        return cached[2]

    def _needs_bind_cookie(self, scope: Scope) -> bool:
        for name, value in scope.get("headers", ()):
            if name == b"cookie" and cookie_value(value.decode("latin-1"), self._cookies.bind):
                return False
        return True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        request_id = _incoming_request_id(scope) or uuid.uuid4().hex[:16]
        token = request_id_var.set(request_id)
        path: str = scope.get("path", "")
        api = is_api_path(path)
        method: str = scope.get("method", "GET")
        start = time.perf_counter()
        state: dict[str, Any] = {"status": None}
        security = await self._headers()
        bind = not api and self._needs_bind_cookie(scope)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                headers = MutableHeaders(scope=message)
                if bind:
                    headers.append("Set-Cookie", set_cookie_header(
                        self._cookies.bind, new_bind_value(), max_age=BIND_MAX_AGE,
                        secure=self._cookies.secure))
                    # One browser's cookie must never be stored for everyone by a cache.
                    headers["Cache-Control"] = "private, no-cache"
                for name, value in security.items():
                    # An inner app may set a stricter CSP for its own responses; keep it.
                    if name == "Content-Security-Policy" and name in headers:
                        continue
                    headers[name] = value
                headers[REQUEST_ID_HEADER] = request_id
                if api:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            log.exception("unhandled_exception", method=method, path=path,
                          request_id=request_id)
            if state["status"] is None:
                await self._send_error(send_with_headers, request_id, api)
            elif state["status"] < 500:  # response began, then broke: record as an error
                state["status"] = 500
        finally:
            duration = time.perf_counter() - start
            status = state["status"] or 500
            route = _route_label(scope, self.api_route_paths)
            HTTP_REQUESTS.labels(route, method if method in _KNOWN_METHODS else "OTHER",
                                 str(status)).inc()
            HTTP_REQUEST_SECONDS.labels(route).observe(duration)
            if api:
                log.info("http_request", method=method, path=path, status=status,
                         duration_ms=round(duration * 1000, 1), request_id=request_id)
            request_id_var.reset(token)

    @staticmethod
    async def _send_error(send: Send, request_id: str, api: bool) -> None:
        if api:
            body = json.dumps({"error": "internal server error",
                               "request_id": request_id}).encode()
            content_type = b"application/json"
        else:
            body = f"Internal Server Error (request id {request_id})".encode()
            content_type = b"text/plain; charset=utf-8"
        await send({"type": "http.response.start", "status": 500,
                    "headers": [(b"content-type", content_type),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
