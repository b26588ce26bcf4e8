"""The outermost HTTP middleware: request ids, security headers, access log, error shield.

Pure ASGI (no BaseHTTPMiddleware) so that streaming and WebSockets are not buffered or
disturbed: any scope that is not ``http`` (the Reflex event WebSocket, lifespan) goes to
the inner app untouched.

For every HTTP response, whoever produced it (our /api routes, Reflex's endpoints, the
compiled frontend's static files):
- ``X-Request-ID``: the caller's, when it is a short safe token, else a new one; it is
  also put into ``casino_app.core.logging.request_id_var`` so every log line of the
  request carries it;
- the security headers of ``security_headers()`` (HSTS, CSP, nosniff, frame denial...).

Every HTTP request is counted in ``casino_http_requests_total`` (route template for our
/api routes, else a fixed bucket, so the label stays bounded).

For ``/api/...`` only: ``Cache-Control: no-store``, one JSON access-log line (method,
path without the query string, status, duration, request id), and an unhandled exception
becomes a JSON 500 naming only the request id (no traceback ever reaches a client).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from casino_app.core.logging import get_logger, request_id_var
from casino_app.core.metrics import HTTP_REQUEST_SECONDS, HTTP_REQUESTS
from casino_app.core.settings import get_settings

log = get_logger("casino.http")

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

HSTS = "max-age=63072000; includeSubDomains"


def content_security_policy(public_url: str | None = None) -> str:
    """The CSP for every page and response.

    Reflex's pages need inline scripts (React Router hydration data, the colour-mode
    preload) and inline styles (Emotion / Radix), hence 'unsafe-inline' for both.
    'unsafe-eval' is there because Reflex runs the JavaScript of server-sent events with
    eval(): every ``rx.toast``, ``rx.call_script`` or ``rx.set_clipboard`` returned from
    a state handler fails without it (seen in Chromium: "EvalError ... 'unsafe-eval' is
    not an allowed source", and no toast). The code evaluated comes from our own backend
    over our own socket; no third-party script source is allowed.
    WebSocket connections are allowed to our own public origin only ('self' covers the
    same origin in current browsers; the explicit ws(s):// source covers the rest).
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
    directives = [
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline' 'unsafe-eval'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
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


def security_headers(public_url: str | None = None) -> dict[str, str]:
    """Headers added to every HTTP response (name -> value)."""
    return {
        "Strict-Transport-Security": HSTS,
        "Content-Security-Policy": content_security_policy(public_url),
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
                 public_url: str | None = None) -> None:
        self.app = app
        self.api_route_paths = frozenset(api_route_paths)
        self._headers = security_headers(public_url)

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

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                headers = MutableHeaders(scope=message)
                for name, value in self._headers.items():
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
