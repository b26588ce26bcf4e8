"""HTTP routes that are not Reflex pages, and how they join the Reflex backend.

``rx.App(api_transformer=api_transformers())`` applies the list in order:

1. our ``Starlette`` app: Reflex adds its CORS middleware to it and mounts its own
   backend (socket, /ping, uploads and, in single-port production, the compiled
   frontend) at ``""`` *after* our routes, so ``/api/...`` is ours and the rest is
   Reflex's;
2. ``secure``: wraps all of that in ``SecurityMiddleware`` (request ids, security headers
   on every response, access log and error shield for /api).

No Reflex import here: the app module passes the result to ``rx.App``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape as xml_escape

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from casino_app.api.health import livez, readyz
from casino_app.api.metrics import metrics
from casino_app.api.middleware import SecurityMiddleware, is_api_path
from casino_app.api.providers import callback as provider_callback
from casino_app.api.reserves import latest as reserves_latest
from casino_app.api.session import adopt, clear
from casino_app.core.logging import request_id_var
from casino_app.core.settings import get_settings


async def _api_not_found(_request: Request) -> JSONResponse:
    return JSONResponse({"error": "not found"}, status_code=404)


async def _server_error(request: Request, _exc: Exception) -> Response:
    """Answer for an exception escaping a route (logged by SecurityMiddleware)."""
    request_id = request_id_var.get() or ""
    if is_api_path(request.url.path):
        return JSONResponse({"error": "internal server error", "request_id": request_id},
                            status_code=500)
    return PlainTextResponse(f"Internal Server Error (request id {request_id})",
                             status_code=500)


def api_routes() -> list[BaseRoute]:
    """Our routes, most specific first (GET also answers HEAD)."""
    return [
        Route("/api/livez", livez, methods=["GET"], name="livez"),
        Route("/api/readyz", readyz, methods=["GET"], name="readyz"),
        Route("/api/metrics", metrics, methods=["GET"], name="metrics"),
        Route("/api/session/adopt", adopt, methods=["POST"], name="session_adopt"),
        Route("/api/session/clear", clear, methods=["POST"], name="session_clear"),
        Route("/api/providers/{name}/{rest:path}", provider_callback, methods=["POST"],
              name="provider_callback"),
        Route("/api/reserves/latest.json", reserves_latest, methods=["GET"],
              name="reserves_latest"),
    ]


def sitemap_route(frontend_dir: Path) -> Route:
    """``/sitemap.xml``: the build's sitemap, whose entries are paths (the build serves any
    address: rxconfig.py, ``deploy_url=None``), completed with ``CASINO_PUBLIC_URL`` as
    the sitemap protocol wants absolute URLs."""

    async def sitemap(_request: Request) -> Response:
        try:
            text = (frontend_dir / "sitemap.xml").read_text(encoding="utf-8")
        except OSError:
            return PlainTextResponse("Not Found", status_code=404)
        base = xml_escape(get_settings().public_url.rstrip("/"))
        return Response(text.replace("<loc>/", f"<loc>{base}/"),
                        media_type="application/xml")

    return Route("/sitemap.xml", sitemap, methods=["GET"], name="sitemap")


def build_api(extra_routes: Sequence[BaseRoute] = ()) -> Starlette:
    """The Starlette app holding our routes; Reflex mounts itself inside it at ""."""
    routes = [*api_routes(), *extra_routes,
              # Unknown /api paths get a JSON 404 instead of falling through to the
              # frontend's HTML 404 page.
              Route("/api/{rest:path}", _api_not_found, name="api_not_found")]
    return Starlette(routes=routes, exception_handlers={500: _server_error})


def api_transformers(extra_routes: Sequence[BaseRoute] = (),
                     frontend_dir: Path | None = None) -> list[Any]:
    """What goes into ``rx.App(api_transformer=...)``: [our Starlette app, wrapper].

    ``extra_routes`` (e.g. provider callbacks) are served under our middleware too; give
    them paths under /api/ so they get the /api treatment (no-store, JSON errors, logs).
    ``frontend_dir`` is the built front end the backend serves (its inline scripts'
    hashes go into the CSP; its sitemap is served completed, ``sitemap_route``).
    """
    if frontend_dir is not None:
        extra_routes = [*extra_routes, sitemap_route(frontend_dir)]
    api = build_api(extra_routes)
    route_paths = [r.path for r in api.routes if isinstance(r, Route)]

    def secure(app: ASGIApp) -> ASGIApp:
        return SecurityMiddleware(app, api_route_paths=route_paths,
                                  frontend_dir=frontend_dir)

    wrapper: Callable[[ASGIApp], ASGIApp] = secure
    return [api, wrapper]
