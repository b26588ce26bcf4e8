"""A new player on a 360 px phone: the lobby, play money, one round of each game, a
refused bet, and a Mines round that survives a reload. A guest sees the lobby's games and
is asked to sign in when opening one."""

from __future__ import annotations

import re
import secrets
from decimal import Decimal

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import DESKTOP, PHONE
from tests.e2e.flows import at, goto, register

pytestmark = pytest.mark.e2e

PASSWORD = "games pass phrase 1"


@pytest.fixture(params=[pytest.param(PHONE, id="phone")])
def viewport(request: pytest.FixtureRequest) -> dict[str, int]:
    """These flows are made for the phone (the desktop lobby is checked below)."""
    return request.param


def balance(page: Page) -> str:
    return page.locator("#header-balance").inner_text().strip()


def open_game(page: Page, name: str) -> None:
    goto(page, f"/games/{name}")
    expect(page.get_by_role("heading", name=name.title())).to_be_visible()
    # the balance shows once the page is connected and its on_load events ran
    expect(page.locator("#header-balance")).to_be_visible()


def amount(text: str) -> Decimal:
    return Decimal(text.replace(",", "").replace("−", "-").split()[0])


def bet(page: Page) -> str:
    """Click Bet, wait for a new result and check the header balance moved by exactly
    the profit shown; returns the new balance."""
    before = balance(page)
    # no waiting here: the previous game's result may vanish while the page loads
    shown = page.locator("#result-bet").all_inner_texts()
    last_id = shown[0] if shown else ""
    page.locator("#bet-button").click()
    expect(page.locator("#result-bet")).not_to_have_text(last_id or "none yet")
    profit = amount(page.locator("#result-profit").inner_text())
    expect(page.locator("#header-balance")).to_have_text(f"{amount(before) + profit:,.2f}")
    return balance(page)


def no_horizontal_scroll(page: Page) -> None:
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_a_new_player_plays_every_game_on_a_phone(new_context) -> None:  # noqa: ANN001
    page = new_context().new_page()
    sent_keys: list[str] = []  # bet keys as they leave the browser on the websocket
    page.on("websocket", lambda ws: ws.on(
        "framesent", lambda frame: sent_keys.extend(
            re.findall(r'\\?"bet_key\\?":\s*\\?"([^"\\]*)', str(frame)))))
    email = f"player-{secrets.token_hex(4)}@example.com"
    register(page, email, "Gamer", PASSWORD)

    # lobby: tiles, search, categories, favourites
    goto(page, "/")
    tiles = page.locator("#all-games .game-tile")
    expect(tiles).to_have_count(5)
    assert page.locator("#all-games img").first.get_attribute("loading") == "lazy"
    page.get_by_label("Search games").fill("min")
    expect(tiles).to_have_count(1)
    expect(tiles.first).to_contain_text("Mines")
    page.get_by_label("Search games").fill("")
    page.get_by_role("button", name="Lottery").click()
    expect(tiles).to_have_count(1)
    expect(tiles.first).to_contain_text("Keno")
    page.get_by_role("button", name="Add Keno to favourites").click()
    expect(page.locator("#favourite-games .game-tile")).to_have_count(1)
    page.get_by_role("button", name="All", exact=True).click()
    expect(tiles).to_have_count(5)
    no_horizontal_scroll(page)

    # a new player starts with play money (it had 0.00 and a refused first bet)
    page.locator("#all-games").get_by_role("link", name="Play Dice").click()
    page.wait_for_url(at("/games/dice"))
    open_game(page, "dice")
    expect(page.locator("#header-currency")).to_have_value("FUN")
    expect(page.locator("#header-balance")).to_have_text("1,000.00")
    expect(page.get_by_role("button", name="Top up play money")).to_have_count(0)
    no_horizontal_scroll(page)

    # dice: over 50 with the default 1.00 FUN
    expect(page.locator("#dice-chance")).to_have_text("50.00%")
    expect(page.locator("#dice-multiplier")).to_have_text("1.98×")
    after = bet(page)
    assert after in ("999.00", "1,000.98")
    expect(page.locator("#result-text")).to_contain_text("Rolled")
    expect(page.locator("#result-profit")).to_have_text(
        "+0.98 FUN" if after == "1,000.98" else "−1.00 FUN")
    row = page.locator("#bet-history .bet-row")
    expect(row).to_have_count(1)
    assert re.search(r"/bets/bet\?id=\d+$", row.first.get_attribute("href") or "")

    # a bet above the balance is refused and nothing moves
    page.get_by_label("Amount", exact=True).fill("5000")
    page.locator("#bet-button").click()
    expect(page.get_by_role("alert")).to_contain_text("Insufficient balance")
    assert balance(page) == after
    expect(row).to_have_count(1)
    # halving works in base units; an empty amount disables the Bet button
    page.get_by_role("button", name="Halve the amount").click()
    expect(page.get_by_label("Amount", exact=True)).to_have_value("2500.00")
    page.get_by_label("Amount", exact=True).fill("")
    expect(page.locator("#bet-button")).to_be_disabled()
    # a comma is refused while typing, before any bet is sent ("0,05" was a bet of 5.00)
    page.get_by_label("Amount", exact=True).fill("0,05")
    expect(page.locator("#bet-amount-error")).to_contain_text(
        "Use a dot for decimals and no thousands separators")
    expect(page.locator("#bet-button")).to_be_disabled()
    page.get_by_label("Amount", exact=True).fill("1")
    expect(page.locator("#bet-amount-error")).to_have_count(0)
    expect(page.locator("#bet-button")).to_be_enabled()
    assert balance(page) == after

    # limbo
    open_game(page, "limbo")
    page.get_by_label("Target multiplier").fill("1.5")
    page.get_by_label("Target multiplier").blur()
    expect(page.locator("#limbo-chance")).to_have_text("66%")
    bet(page)
    expect(page.locator("#result-text")).to_contain_text("Result")

    # plinko: 8 rows, the ball lands in one of 9 buckets
    open_game(page, "plinko")
    page.get_by_label("Rows").select_option("8")
    expect(page.locator("#plinko-buckets .plinko-bucket")).to_have_count(9)
    bet(page)
    expect(page.locator("#result-text")).to_contain_text("Bucket")
    expect(page.locator(".plinko-bucket[data-hit=true]")).to_have_count(1)

    # keno: pick 5 squares; 10 are drawn and shown
    open_game(page, "keno")
    expect(page.locator("#bet-button")).to_be_disabled()  # nothing picked yet
    for n in (3, 7, 12, 25, 40):
        page.get_by_role("button", name=f"Square {n}", exact=True).click()
    expect(page.locator(".keno-square[aria-pressed=true]")).to_have_count(5)
    bet(page)
    expect(page.locator("#result-text")).to_contain_text("of 5 hit")
    expect(page.locator(".keno-square[data-kind=hit], .keno-square[data-kind=miss]")
           ).to_have_count(10)

    # mines: start a round, reload, it is still there; reveal a tile; cash out or lose
    open_game(page, "mines")
    page.get_by_label("Mines", exact=True).select_option("3")
    before = balance(page)
    page.locator("#bet-button").click()
    expect(page.locator("#mines-status")).to_be_visible()
    expect(page.locator("#header-balance")).not_to_have_text(before)
    page.reload()
    open_game(page, "mines")
    expect(page.locator("#mines-status")).to_be_visible()
    expect(page.get_by_label("Mines", exact=True)).to_have_value("3")
    in_round = balance(page)
    page.get_by_role("button", name="Tile 13", exact=True).click()
    tile = page.locator(".mines-tile").nth(12)
    expect(tile).not_to_have_attribute("data-kind", "hidden")
    if tile.get_attribute("data-kind") == "safe":
        page.locator("#cash-out").click()
        expect(page.locator("#result-text")).to_contain_text("Cashed out")
        expect(page.locator("#header-balance")).not_to_have_text(in_round)
    else:
        expect(page.locator("#result-text")).to_contain_text("Hit a mine")
        assert balance(page) == in_round
    expect(page.locator(".mines-tile[data-kind=mine], .mines-tile[data-kind=boom]")
           ).to_have_count(3)
    expect(page.locator("#bet-history .bet-row")).to_have_count(1)
    no_horizontal_scroll(page)

    # every click made its own key in the browser (the server never chose one)
    assert len(sent_keys) == 6 and len(set(sent_keys)) == 6, sent_keys
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{8,64}", k) for k in sent_keys), sent_keys

    # the lobby remembers the games just played
    goto(page, "/")
    expect(page.locator("#recent-games .game-tile")).to_have_count(5)


def test_a_guest_sees_the_games_and_is_asked_to_sign_in(browser, live_app) -> None:  # noqa: ANN001
    context = browser.new_context(viewport=DESKTOP, base_url=live_app.url)
    context.set_default_timeout(20_000)
    try:
        page = context.new_page()
        goto(page, "/")
        expect(page.locator("#all-games .game-tile")).to_have_count(5)
        expect(page.get_by_role("button", name="Add Dice to favourites")).to_have_count(0)
        expect(page.locator("#header-balance")).to_have_count(0)
        page.locator("#all-games").get_by_role("link", name="Play Mines").click()
        page.wait_for_url(at("/login", query=True))
        assert "next=/games/mines" in page.url
    finally:
        context.close()
