"""Provider games end to end, in Chromium, with the reference provider that `casino run`
starts in development (CASINO_DEV_PROVIDERS): a player opens a provider game from the
lobby, plays real rounds in the iframe, sees the balance change and finds the rounds in
My bets; staff see the RTP page and a commit-reveal mismatch alert that the reference
provider was told to cause."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    DESKTOP,
    ROOT,
    LiveApp,
    app_env,
    casino_cli,
)
from tests.e2e.flows import at, goto, register, sign_out, staff_sign_in
from tests.support.services import free_port, start_casino, stop_casino

pytestmark = pytest.mark.e2e

PASSWORD = "provider player pass 1"


@pytest.fixture(scope="module")
def provider_app(smtp, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:  # noqa: ANN001
    tmp = tmp_path_factory.mktemp("providers")
    port = free_port()
    env = app_env(smtp, tmp, port)
    env.update({"CASINO_DEV_PROVIDERS": "true", "CASINO_RATE_REGISTER_IP": "100/minute",
                "CASINO_PROVIDER_CHECKS_SECONDS": "2"})
    casino_cli(env, "migrate")
    casino = str(Path(sys.executable).parent / "casino")
    created = subprocess.run([casino, "admin", "create", "--email", ADMIN_EMAIL],  # noqa: S603
                             input=ADMIN_PASSWORD + "\n", env=env, text=True,
                             capture_output=True, timeout=120, cwd=ROOT)
    assert created.returncode == 0, created.stderr
    log = tmp / "app.log"
    proc = start_casino(env, port, log, ROOT)
    try:
        yield LiveApp(f"http://localhost:{port}", tmp / "data", env, log)
    finally:
        stop_casino(proc)


def _sim_url(app: LiveApp) -> str:
    log = (app.data_dir / "provider-sim" / "provider-sim.log").read_text()
    ready = next(json.loads(line) for line in log.splitlines()
                 if line.startswith("{") and '"ready"' in line)
    return f"http://127.0.0.1:{ready['port']}"


def _balance(page: Page) -> str:
    return page.locator("#header-balance").inner_text()


def _spin(page: Page) -> None:
    frame = page.frame_locator("#provider-frame")
    expect(frame.locator("#spin")).to_be_enabled(timeout=20_000)
    frame.locator("#spin").click()
    expect(frame.locator("#last-seed")).not_to_have_text("–", timeout=20_000)


def test_a_player_plays_provider_rounds_and_staff_see_the_checks(
        provider_app: LiveApp, browser) -> None:  # noqa: ANN001
    context = browser.new_context(viewport=DESKTOP, base_url=provider_app.url)
    context.set_default_timeout(20_000)
    page = context.new_page()
    register(page, "prov-player@example.com", "Reel Player", PASSWORD)
    # play money first (a house game page offers the top-up)
    goto(page, "/games/dice")
    expect(page.locator("#header-currency")).to_have_value("FUN")
    page.wait_for_timeout(1000)  # the page's on_load has read the balance
    if _balance(page) == "0.00":  # no welcome play money configured: top up
        page.get_by_role("button", name="Top up play money").click()
    expect(page.locator("#header-balance")).not_to_have_text("0.00")


    # the lobby lists the provider's games, thumbnails from the provider's origin
    goto(page, "/")
    page.locator("#game-provider").select_option("sim-hub88")
    tile = page.locator("#all-games .game-tile").filter(has_text="Hash Slot")
    expect(tile).to_have_count(1)
    src = tile.locator("img").get_attribute("src") or ""
    assert src.startswith(_sim_url(provider_app))
    tile.get_by_role("link").click()
    page.wait_for_url(at("/play", query=True))
    expect(page.locator("#mode-real")).to_have_attribute("aria-pressed", "true")
    frame = page.frame_locator("#provider-frame")
    expect(frame.locator("#mode")).to_be_hidden(timeout=20_000)  # real money, not demo

    # real rounds: the header balance follows each one
    for _ in range(3):  # a spin of 1.00 pays 0 or at least 1.28: the balance moves
        before = _balance(page)
        _spin(page)
        expect(page.locator("#header-balance")).not_to_have_text(before, timeout=10_000)

    # My bets lists them, each with its recall and fairness check
    goto(page, "/bets")
    rows = page.locator("#provider-rounds tbody tr")
    expect(rows).to_have_count(3)
    rows.first.get_by_role("link").first.click()
    page.wait_for_url(at("/bets/round", query=True))
    expect(page.locator("#provider-round-calls")).to_contain_text("bet")
    expect(page.locator("#provider-round-seed")).not_to_be_empty()

    # the provider cheats on a reveal: the check flags it, staff see the alert
    httpx.post(_sim_url(provider_app) + "/sim/control", json={"misbehave": ["bad-reveal"]})
    goto(page, "/")
    page.locator("#game-provider").select_option("sim-hub88")
    page.locator("#all-games .game-tile").filter(has_text="Hash Slot") \
        .get_by_role("link").click()
    page.wait_for_url(at("/play", query=True))
    _spin(page)
    httpx.post(_sim_url(provider_app) + "/sim/control", json={"misbehave": []})
    sign_out(page)

    staff_sign_in(page, second_factor={})  # this app's own admin
    goto(page, "/admin/providers")
    expect(page.locator("#rtp")).to_contain_text("Hash Slot")
    expect(page.locator("#rtp")).to_contain_text("96.00")
    # the provider-checks job (every 2 s here) has checked the round: a high alert
    # (the table is there only once an alert is: wait for the page, then look)
    alerts = page.locator("#alerts")
    for _ in range(20):
        expect(page.locator("#rtp")).to_be_visible()
        if alerts.count() and "does not hash" in alerts.inner_text():
            break
        page.wait_for_timeout(1000)
        goto(page, "/admin/providers")
    expect(alerts).to_contain_text("does not hash")
    context.close()
