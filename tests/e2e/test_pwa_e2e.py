"""The installable PWA, checked in Chromium against the real production build: manifest
and service worker served, the app installable, the offline page shown when the network
is gone, and the security headers not breaking the page (no CSP violations)."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import expect

from tests.e2e.flows import goto

pytestmark = pytest.mark.e2e


def test_manifest_service_worker_and_offline_page_are_served(live_app) -> None:  # noqa: ANN001
    manifest = httpx.get(live_app.url + "/manifest.webmanifest", timeout=10)
    assert manifest.status_code == 200
    assert manifest.json()["display"] == "standalone"
    sw = httpx.get(live_app.url + "/sw.js", timeout=10)
    assert sw.status_code == 200 and "javascript" in sw.headers["content-type"]
    offline = httpx.get(live_app.url + "/offline.html", timeout=10)
    assert offline.status_code == 200 and "Reconnect" in offline.text
    for path in ("/", "/login", "/api/livez"):
        r = httpx.get(live_app.url + path, timeout=10, follow_redirects=True)
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert r.headers["strict-transport-security"].startswith("max-age=")


def test_chromium_considers_the_app_installable(profile_context) -> None:  # noqa: ANN001
    context = profile_context
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text)
            if "Content Security Policy" in m.text or "Refused to" in m.text else None)
    goto(page, "/")
    page.wait_for_function("() => navigator.serviceWorker.ready.then(() => true)")
    cdp = context.new_cdp_session(page)
    errors = cdp.send("Page.getInstallabilityErrors")["installabilityErrors"]
    assert errors == [], errors
    manifest = cdp.send("Page.getAppManifest")
    assert not manifest.get("errors"), manifest.get("errors")
    assert problems == [], problems


def test_offline_navigation_shows_the_branded_offline_page(new_context) -> None:  # noqa: ANN001
    context = new_context()
    page = context.new_page()
    goto(page, "/")
    page.wait_for_function("() => navigator.serviceWorker.ready.then(() => true)")
    page.reload()  # now controlled by the service worker
    page.wait_for_function("() => !!navigator.serviceWorker.controller")
    context.set_offline(True)
    try:
        page.goto("/terms-never-visited-" + "x")
        expect(page.get_by_role("button", name="Reconnect")).to_be_visible()
        expect(page.get_by_text("HashHouse").first).to_be_visible()
    finally:
        context.set_offline(False)


def test_the_verifier_works_offline_in_the_installed_app(profile_context) -> None:  # noqa: ANN001
    """/verify from the service worker's cache with the network cut after the first visit
    (the server redirects /verify to /verify/, which the worker keeps), and it computes:
    the verifier never calls the server."""
    page = profile_context.pages[0] if profile_context.pages else profile_context.new_page()
    goto(page, "/")
    page.wait_for_function("() => navigator.serviceWorker.ready.then(() => true)")
    page.reload()
    page.wait_for_function("() => !!navigator.serviceWorker.controller")
    profile_context.set_offline(True)
    try:
        for path in ("/verify", "/verify/"):
            page.goto(path)
            expect(page.locator("#vf-server_seed")).to_be_visible(timeout=30_000)
        page.locator("#vf-server_seed").fill("a" * 64)
        page.locator("#vf-client_seed").fill("any seed 🎲")
        page.locator("#vf-nonce").fill("1")
        page.get_by_role("button", name="Verify").click()
        expect(page.locator("#verify-output")).to_contain_text("Round 0")
    finally:
        profile_context.set_offline(False)
