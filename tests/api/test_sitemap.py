"""/sitemap.xml: the build holds the pages' paths (it serves any address: rxconfig.py,
``deploy_url=None``); the app answers with absolute URLs on ``CASINO_PUBLIC_URL``, as the
sitemap protocol wants."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.responses import PlainTextResponse
from starlette.testclient import TestClient

from casino_app.core.settings import reset_settings_cache
from tests.api import assemble

BUILT = """<?xml version='1.0' encoding='utf-8'?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <url>
    <loc>/</loc>
  </url>
  <url>
    <loc>/games/dice</loc>
  </url>
</urlset>"""


async def _reflex(scope, receive, send) -> None:  # noqa: ANN001 - stands in for Reflex
    await PlainTextResponse("static file", status_code=200)(scope, receive, send)


def test_the_sitemap_lists_the_pages_on_the_public_url(
        base_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASINO_PUBLIC_URL", "https://casino.example.com/")
    reset_settings_cache()
    build = base_env / "build" / "client"
    build.mkdir(parents=True)
    (build / "sitemap.xml").write_text(BUILT, encoding="utf-8")
    with TestClient(assemble(_reflex, frontend_dir=build)) as c:
        r = c.get("/sitemap.xml")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/xml")
    assert "<loc>https://casino.example.com/</loc>" in r.text
    assert "<loc>https://casino.example.com/games/dice</loc>" in r.text
    assert "<loc>/" not in r.text


def test_without_a_build_there_is_no_sitemap(base_env: Path) -> None:
    with TestClient(assemble(_reflex, frontend_dir=base_env / "no-build")) as c:
        assert c.get("/sitemap.xml").status_code == 404
