"""What a player sees, on every route, signed out, as a player and as staff, at a phone's
390 px and a desktop's 1440 px (issue 17):

- axe-core (npm ``axe-core``, installed by setup.sh into .tools/) finds no WCAG 2.2 A/AA
  violation on any page; any violation fails the test, named with its page and elements;
- no page is wider than the screen (the document's width is at most the viewport's);
- a new account starts with play money and its first bet is taken;
- the Bet button does not move when the result appears;
- My bets and Fairness are in the header (desktop) and the account menu (phone);
- an address that is no page shows the site's shell and a way to the lobby;
- a target the game does not take is said at once with the allowed range, the Bet button
  is off, and the target is gone at the next visit.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import ROOT, LiveApp
from tests.e2e.flows import goto, register, staff_sign_in

AXE = ROOT / ".tools" / "node_modules" / "axe-core" / "axe.min.js"
SIZES = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1440, "height": 900}}
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
PASSWORD = "a calm evening by the sea"

GUEST_ROUTES = ["/", "/login", "/register", "/forgot", "/reset?token=gone", "/terms",
                "/verify", "/reserves", "/no-such-page"]
PLAYER_ROUTES = ["/", "/games/dice", "/games/limbo", "/games/plinko", "/games/keno",
                 "/games/mines", "/bets", "/fairness", "/wallet", "/account",
                 "/account/security", "/account/sessions", "/terms", "/no-such-page"]
STAFF_ROUTES = ["/admin", "/admin/audit", "/admin/adjustments", "/admin/reconcile",
                "/admin/wallets", "/admin/withdrawals", "/admin/providers", "/admin/loyalty"]

pytestmark = pytest.mark.e2e


@pytest.fixture(params=list(SIZES))
def size(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def device(browser, live_app: LiveApp, size: str) -> Iterator[object]:  # noqa: ANN001
    """A new browser profile at ``size`` (each call another device)."""
    contexts = []

    def make():  # noqa: ANN202
        ctx = browser.new_context(viewport=SIZES[size], base_url=live_app.url)
        ctx.set_default_timeout(20_000)
        contexts.append(ctx)
        return ctx.new_page()

    yield make
    for c in contexts:
        c.close()


def axe_violations(page: Page) -> list[str]:
    """axe-core's WCAG 2.2 A/AA violations on the page as it is now, one line each. The
    engine is evaluated through the DevTools protocol (the page's CSP allows no injected
    script tag; nothing of it stays in the app)."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text() + "\n;true")
    found = page.evaluate(
        "async (tags) => (await axe.run(document, {runOnly: {type: 'tag', values: tags},"
        " resultTypes: ['violations']})).violations.map((v) => ({id: v.id, impact: v.impact,"
        " nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ') + ': '"
        " + (n.failureSummary || '').split('\\n').slice(1, 2).join(''))}))", WCAG)
    return [f"{v['id']} ({v['impact']}): {json.dumps(v['nodes'])}" for v in found]


def overflow(page: Page) -> int:
    """How many pixels the document is wider than the viewport (0 when it fits)."""
    return page.evaluate(
        "() => Math.max(0, document.documentElement.scrollWidth - window.innerWidth)")


def check_pages(page: Page, routes: list[str], who: str, problems: list[str]) -> None:
    for route in routes:
        goto(page, route)
        page.wait_for_timeout(300)  # on_load results rendered (lists, tables)
        wide = overflow(page)
        if wide > 0:
            culprits = page.evaluate(
                "() => [...document.querySelectorAll('body *')].filter((e) =>"
                " e.getBoundingClientRect().right > window.innerWidth + 0.5).slice(-3)"
                ".map((e) => e.tagName + '#' + e.id + ' ' + (e.textContent || '').slice(0, 40))")
            problems.append(f"{who} {route}: {wide} px wider than the screen: {culprits}")
        problems.extend(f"{who} {route}: {v}" for v in axe_violations(page))


def test_every_page_is_accessible_and_fits_the_screen(device, size: str) -> None:  # noqa: ANN001
    assert AXE.exists(), "axe-core is missing: run ./setup.sh install"
    problems: list[str] = []

    guest = device()
    check_pages(guest, GUEST_ROUTES, "signed out", problems)

    player = device()
    register(player, f"ux-{secrets.token_hex(4)}@example.com", "Ux Player", PASSWORD)
    goto(player, "/games/dice")
    # a new account starts with play money: the first bet is taken
    expect(player.locator("#header-balance")).to_have_text("1,000.00")
    player.locator("#bet-button").click()
    expect(player.locator("#result-text")).to_contain_text("Rolled")
    bet_id = player.locator("#result-bet").inner_text().strip().removeprefix("Bet #")
    # a rotation reveals a 64-character seed on /fairness and the bet's recall (the page
    # was wider than a phone with it)
    goto(player, "/fairness")
    player.get_by_role("button", name="Rotate seeds").click()
    player.get_by_role("alertdialog").get_by_role("button", name="Rotate").click()
    expect(player.locator(".revealed-seed")).to_have_count(1)
    check_pages(player, [*PLAYER_ROUTES, f"/bets/bet?id={bet_id}"], "player", problems)

    staff = device()
    staff_sign_in(staff)
    check_pages(staff, [*STAFF_ROUTES, "/admin/player?id=1"], "staff", problems)

    assert not problems, f"at {size} size:\n" + "\n".join(problems)


def test_the_bet_button_stays_put_and_targets_are_checked_as_typed(device, size: str) -> None:  # noqa: ANN001
    page = device()
    register(page, f"ux-bet-{secrets.token_hex(4)}@example.com", "Steady Player", PASSWORD)
    goto(page, "/games/dice")
    button = page.locator("#bet-button")
    expect(page.locator("#result-placeholder")).to_be_visible()
    before = button.bounding_box()
    button.click()
    expect(page.locator("#result-text")).to_contain_text("Rolled")
    after = button.bounding_box()
    assert before is not None and after is not None
    assert abs(after["y"] - before["y"]) < 1, (before, after)

    # "abc", 150 or -1 in the box: said at once with the range, no bet on another target
    box = page.locator("#dice-target")
    expect(page.locator("#dice-target-range")).to_have_text("Allowed: 2.00 to 99.99")
    for typed, said in (("abc", "Enter a target from 2.00 to 99.99."),
                        ("150", "Roll over takes a target from 2.00 to 99.99."),
                        ("-1", "Enter a target from 2.00 to 99.99.")):
        box.fill(typed)
        expect(page.locator("#dice-target-error")).to_have_text(said)
        expect(button).to_be_disabled()
        expect(page.locator("#dice-chance")).to_have_text("—")
    box.fill("25")
    expect(page.locator("#dice-target-error")).to_have_count(0)
    expect(page.locator("#dice-chance")).to_have_text("75.00%")
    expect(button).to_be_enabled()
    box.fill("150")
    expect(button).to_be_disabled()
    goto(page, "/games/limbo")                     # limbo 0.5x: said while typing
    page.locator("#limbo-target").fill("0.5")
    expect(page.locator("#limbo-target-error")).to_contain_text("1.01× to 1,000,000.00×")
    expect(page.locator("#bet-button")).to_be_disabled()
    goto(page, "/games/dice")                      # a later visit: the invalid value is gone
    expect(page.locator("#dice-target")).to_have_value("25.00")
    expect(page.locator("#bet-button")).to_be_enabled()


def test_my_bets_fairness_and_a_missing_page(device, size: str) -> None:  # noqa: ANN001
    page = device()
    register(page, f"ux-nav-{secrets.token_hex(4)}@example.com", "Nav Player", PASSWORD)
    if size == "desktop":
        nav = page.locator("header")
        expect(nav.get_by_role("link", name="My bets")).to_be_visible()
        expect(nav.get_by_role("link", name="Fairness")).to_be_visible()
    page.get_by_role("button", name="Account menu").click()
    expect(page.get_by_role("menuitem", name="Fairness")).to_be_visible()
    page.get_by_role("menuitem", name="My bets").click()
    page.wait_for_url("**/bets")
    expect(page.get_by_role("heading", name="My bets")).to_be_visible()

    goto(page, "/no-such-page")
    expect(page.get_by_role("heading", name="This page does not exist")).to_be_visible()
    expect(page.locator("header")).to_be_visible()        # the site's shell
    expect(page.locator("#header-balance")).to_be_visible()  # still signed in
    page.get_by_role("link", name="Go to the lobby").click()
    expect(page.locator("#all-games")).to_be_visible()


def test_recovery_codes_stay_whole_and_can_be_copied_and_downloaded(device, size: str
                                                                     ) -> None:  # noqa: ANN001
    page = device()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    register(page, f"ux-codes-{secrets.token_hex(4)}@example.com", "Code Keeper", PASSWORD)
    goto(page, "/account/security")
    two_factor = page.get_by_role("region", name="Two-factor authentication")
    two_factor.get_by_label("Current password").fill(PASSWORD)
    two_factor.get_by_role("button", name="Set up two-factor").click()
    secret = page.locator("#totp-secret").inner_text().strip()
    page.get_by_label("Code from the app").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Turn on two-factor").click()
    codes = page.locator(".recovery-code")
    expect(codes).to_have_count(10)
    texts = [c.inner_text() for c in codes.all()]
    # no code breaks across lines: each is one line box, and the page still fits
    assert all(c.evaluate("(e) => e.getClientRects().length") == 1 for c in codes.all())
    assert overflow(page) == 0
    assert not axe_violations(page)

    page.get_by_role("button", name="Copy codes").click()
    expect(page.get_by_text("Recovery codes copied.")).to_be_visible()
    copied = page.evaluate("() => navigator.clipboard.readText()")
    assert copied.splitlines()[1:] == texts

    with page.expect_download() as got:
        page.get_by_role("button", name="Download").click()
    download = got.value
    assert download.suggested_filename == "hashhouse-recovery-codes.txt"
    assert Path(download.path()).read_text().splitlines()[1:] == texts


def test_a_lost_connection_is_said_calmly_and_betting_waits_for_it(device, size: str
                                                                    ) -> None:  # noqa: ANN001
    """Reflex's raw "Cannot connect to server: websocket error ..." toast is replaced by a
    calm line; the balance is marked as the last known one and Bet is off until the
    socket is back."""
    page = device()
    # the page's sockets go through the test, which can cut them and refuse new ones
    down = {"now": False}
    sockets: list = []

    def through(ws) -> None:  # noqa: ANN001
        if down["now"]:
            ws.close()
            return
        ws.connect_to_server()
        sockets.append(ws)

    page.route_web_socket(re.compile(r"/_event"), through)
    register(page, f"ux-net-{secrets.token_hex(4)}@example.com", "Net Player", PASSWORD)
    goto(page, "/games/dice")
    expect(page.locator("#bet-button")).to_be_enabled()
    down["now"] = True
    for ws in sockets:
        ws.close()
    try:
        expect(page.locator("#reconnecting")).to_be_visible(timeout=30_000)
        expect(page.locator("#reconnecting")).to_contain_text("Reconnecting")
        expect(page.get_by_text("Cannot connect to server")).to_have_count(0)
        expect(page.locator("#bet-button")).to_be_disabled()
        expect(page.locator("#header-balance")).to_have_attribute("data-stale", "true")
        expect(page.locator("#header-balance")).to_have_text("1,000.00")
    finally:
        down["now"] = False
    expect(page.locator("#reconnecting")).to_have_count(0, timeout=30_000)
    expect(page.locator("#bet-button")).to_be_enabled()
    expect(page.locator("#header-balance")).to_have_attribute("data-stale", "false")
    page.locator("#bet-button").click()
    expect(page.locator("#result-text")).to_contain_text("Rolled")


def test_keys_bet_halve_and_double_and_keno_shows_every_drawn_square(device, size: str
                                                                      ) -> None:  # noqa: ANN001
    page = device()
    register(page, f"ux-keys-{secrets.token_hex(4)}@example.com", "Key Player", PASSWORD)
    goto(page, "/games/dice")
    amount = page.locator("#bet-amount")
    expect(amount).to_have_value("1.00")
    page.locator("main h1").click()              # focus on the page, not in a field
    page.keyboard.press("s")
    expect(amount).to_have_value("2.00")
    page.keyboard.press("a")
    page.keyboard.press("a")
    expect(amount).to_have_value("0.50")
    page.keyboard.press("Space")
    expect(page.locator("#result-text")).to_contain_text("Rolled")
    amount.click()                                # typing in a field is never a key
    page.keyboard.press("s")
    expect(amount).to_have_value("0.50s")

    # Keno: the ten drawn squares are all marked, the picked ones as hits, the others
    # with their own ring and name
    goto(page, "/games/keno")
    for n in (1, 2, 3):
        page.get_by_role("button", name=f"Square {n}", exact=True).click()
    page.locator("#bet-button").click()
    drawn = page.locator(".keno-square[data-kind=hit], .keno-square[data-kind=miss]")
    expect(drawn).to_have_count(10)
    miss = page.locator(".keno-square[data-kind=miss]").first
    assert miss.get_attribute("aria-label").endswith(", drawn")
    assert "2px" in miss.evaluate("(e) => getComputedStyle(e).borderTopWidth")
    page.evaluate("() => window.scrollTo(0, 0)")   # the sticky header covers nothing
    assert not axe_violations(page)
