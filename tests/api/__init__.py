"""Tests of the HTTP layer outside Reflex pages (casino_app.api)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from starlette.applications import Starlette
from starlette.routing import BaseRoute
from starlette.types import ASGIApp


def assemble(inner: ASGIApp, extra_routes: Sequence[BaseRoute] = (),
             frontend_dir: Path | None = None) -> ASGIApp:
    """Apply ``api_transformers()`` to ``inner`` exactly as ``reflex.App.__call__`` does
    (reflex/app.py: a Starlette gets CORS and mounts the app at "", a callable wraps it).

    ``inner`` stands in for Reflex's own backend (socket, /ping, static frontend); the
    routes and the middleware are the real ones.
    """
    from starlette.middleware.cors import CORSMiddleware

    from casino_app.api.app import api_transformers
    from casino_app.core.settings import get_settings

    app = inner
    for transformer in api_transformers(extra_routes, frontend_dir=frontend_dir):
        if isinstance(transformer, Starlette):
            transformer.add_middleware(
                CORSMiddleware, allow_credentials=True, allow_methods=["*"],
                allow_headers=["*"], allow_origins=[get_settings().public_url])
            transformer.mount("", app)
            app = transformer
        else:
            app = transformer(app)
    return app
