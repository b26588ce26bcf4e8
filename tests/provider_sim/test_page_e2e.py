"""The game page in Chromium, inside an iframe on another origin (as the casino shows it):
it plays through its own origin, tells its parent after each round, shows the seed hash
before and the seed after, shows wallet refusals, and only the launch's origin may frame it.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from casino_app.games.providers import hhsim
from tests.provider_sim.wallet_standin import WalletStandIn
from tests.support.provider_sim import ProviderSim

CHROMIUM = os.environ.get("CASINO_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
HEX64 = re.compile(r"[0-9a-f]{64}")

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no Chromium")]


class CasinoPage:
    """A stand-in casino page on its own origin (localhost, the sim is on 127.0.0.1) that
    frames a launch URL and keeps every message the frame posts."""

    def __init__(self) -> None:
        self.frame_url = ""
        page = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                body = (f'<!doctype html><iframe id="game" src="{page.frame_url}" '
                        'width="600" height="900"></iframe><script>window.msgs = [];'
                        'addEventListener("message", e => window.msgs.push(e.data));'
                        '</script>').encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.origin = f"http://localhost:{self.server.server_address[1]}"


@pytest.fixture(scope="module")
def casino_page() -> Iterator[CasinoPage]:
    page = CasinoPage()
    yield page
    page.server.shutdown()
    page.server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def _open(browser: object, casino_page: CasinoPage, url: str) -> tuple[object, list[str]]:
    casino_page.frame_url = url
    page = browser.new_page()  # type: ignore[attr-defined]
    page.set_default_timeout(10_000)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.goto(casino_page.origin + "/")
    return page, problems


def test_the_slot_page_plays_in_a_casino_iframe(sim: ProviderSim, wallet: WalletStandIn,
                                                browser: object,
                                                casino_page: CasinoPage) -> None:
    wallet.tokens.add("e2e-token")
    url = sim.hub88("url", {
        "operator_id": int(sim.casino_id), "user": "e2e-player", "token": "e2e-token",
        "platform": "GPL_DESKTOP", "game_code": "hh-slot", "currency": "FUN",
        "lobby_url": casino_page.origin + "/lobby", "deposit_url": "", "lang": "en",
        "ip": "127.0.0.1", "country": "XX", "meta": {}}).json()["url"]
    page, problems = _open(browser, casino_page, url)
    game = page.frame_locator("#game")
    game.locator("#spin:enabled").wait_for()
    committed = game.locator("#next-hash").inner_text()
    assert HEX64.fullmatch(committed)
    game.locator("#spin").click()
    page.wait_for_function("window.msgs.length === 1")
    [message] = page.evaluate("window.msgs")
    bet, win = wallet.of("hub88")[-2:]
    assert message == {"type": "hh-provider-round", "round": bet.body["round"]}
    assert game.locator("#last-hash").inner_text() == committed
    seed = game.locator("#last-seed").inner_text()
    assert hhsim.verify(seed, committed) and seed == win.body["meta"]["fair"]["seed"]
    shown = float(game.locator("#balance").inner_text())
    assert round(shown * 100_000) == wallet.balance("e2e-player")
    assert game.locator("#next-hash").inner_text() != committed
    assert problems == []
    page.close()


def test_the_ladder_page_steps_stops_and_shows_refusals(sim: ProviderSim,
                                                        wallet: WalletStandIn,
                                                        browser: object,
                                                        casino_page: CasinoPage) -> None:
    user = "e2e-ladder"
    wallet.balances[user] = 100  # one step (1.00) at the smallest stake
    answer = sim.bgaming("/sessions", {
        "casino_id": sim.casino_id, "game": "hh-ladder", "currency": "FUN", "locale": "en",
        "ip": "127.0.0.1", "client_type": "desktop", "jurisdiction": "XX", "balance": 100,
        "urls": {"return_url": casino_page.origin + "/", "deposit_url": ""},
        "user": {"id": user, "nickname": "e2e"}, "session_id": "e2e-session"})
    page, problems = _open(browser, casino_page, answer.json()["launch_options"]["game_url"])
    game = page.frame_locator("#game")
    game.locator("#step:enabled").wait_for()
    assert game.locator("#stop").is_disabled()
    game.locator("#step").click()
    page.wait_for_function("window.msgs.length === 1")
    assert game.locator("#last-seed").inner_text() == "hidden until the round closes"
    if wallet.balance(user) < 100:  # lost the first step: the next one is refused
        game.locator("#step:enabled").click()
        game.locator("#message").filter(has_text="Not enough money").wait_for()
    game.locator("#stop:enabled").click()
    page.wait_for_function("window.msgs.length >= 2")
    game.locator("#last-round").filter(has_text="closed").wait_for()
    seed = game.locator("#last-seed").inner_text()
    closing = wallet.of("bgaming")[-1].body
    assert closing["finished"] is True and hhsim.verify(seed, closing["fair"]["seed_hash"])
    assert problems == []
    page.close()


def test_only_the_launching_casino_may_frame_the_page(sim: ProviderSim, wallet: WalletStandIn,
                                                      browser: object,
                                                      casino_page: CasinoPage) -> None:
    wallet.tokens.add("elsewhere")
    sid_url = sim.hub88("url", {
        "operator_id": int(sim.casino_id), "user": "someone", "token": "elsewhere",
        "platform": "GPL_DESKTOP", "game_code": "hh-slot", "currency": "FUN",
        "lobby_url": "https://another-casino.example/", "deposit_url": "", "lang": "en",
        "ip": "127.0.0.1", "country": "XX", "meta": {}}).json()["url"]
    page, problems = _open(browser, casino_page, sid_url)
    page.wait_for_timeout(500)
    assert page.frame_locator("#game").locator("#spin").count() == 0
    assert any("frame-ancestors" in p for p in problems)
    page.close()
