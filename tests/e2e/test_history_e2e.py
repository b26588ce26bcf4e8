"""Bet history and fairness in Chromium: a player plays, finds the bets on My bets,
recalls one, rotates seeds, and verifies the outcome in the browser with no server call.
Then staff adjust a player's balance with four eyes (support asks, an admin approves)."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import DESKTOP, LiveApp
from tests.e2e.flows import at, enrol_2fa, goto, login_password, register, staff_sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PASSWORD = "a long pass phrase"


def _top_up(page: Page) -> None:
    top_up = page.get_by_role("button", name="Top up play money")
    expect(page.locator("#header-balance")).to_be_visible()
    if top_up.is_visible():
        top_up.click()
    expect(page.locator("#header-balance")).not_to_have_text(re.compile(r"^0(\.0+)?$"))


def _bet(page: Page) -> int:
    """Click Bet and wait for this bet's result: returns its id."""
    # no waiting here: the previous game's result may vanish while the page loads
    shown = page.locator("#result a").all_inner_texts()
    before = shown[0] if shown else ""
    page.locator("#bet-button").click()
    link = page.locator("#result a").first
    expect(link).to_have_text(re.compile(r"Bet #\d+"))
    expect(link).not_to_have_text(before or "never")
    return int(link.inner_text().split("#")[1])


def _rows(page: Page):  # noqa: ANN202
    """The bets shown: table rows on a desktop, cards on a phone."""
    return page.locator(".bet-row:visible")


def test_play_see_recall_rotate_and_verify_in_the_browser(new_context, viewport):  # noqa: ANN001
    email = f"hist-{uuid.uuid4().hex[:8]}@example.com"
    page = new_context().new_page()
    # socket frames of the page's (single) Reflex socket, from the start
    frames: list[str] = []
    page.on("websocket", lambda ws: ws.on(
        "framesent", lambda payload: frames.append(str(payload))))
    register(page, email, "History Player", PASSWORD)
    # the detector works: page loads send Socket.IO events ("42[...]") on this socket
    assert any(f.startswith("42") for f in frames), frames[:5]

    goto(page, "/games/dice")
    _top_up(page)
    dice = [_bet(page), _bet(page)]
    goto(page, "/games/limbo")
    limbo = _bet(page)

    # My bets: newest first, filters, a link to each bet
    goto(page, "/bets")
    expect(_rows(page)).to_have_count(3)
    expect(_rows(page).first).to_contain_text("Limbo")
    expect(page.locator("tr.stat-row")).to_have_count(1)
    expect(page.locator("tr.stat-row")).to_contain_text("FUN")
    expect(page.locator("#profit-chart .recharts-surface")).to_be_visible()
    page.get_by_label("Game", exact=True).select_option("dice")
    page.get_by_role("button", name="Show").click()
    expect(_rows(page)).to_have_count(2)
    expect(_rows(page).filter(has_text="Limbo")).to_have_count(0)
    page.get_by_label("Result", exact=True).select_option("open")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_text("No bets match.")).to_be_visible()
    page.get_by_label("Game", exact=True).select_option("")
    page.get_by_label("Result", exact=True).select_option("")
    page.get_by_role("button", name="Show").click()
    expect(_rows(page)).to_have_count(3)

    # recall the first dice bet: outcome and fairness inputs, seed not yet revealed
    page.get_by_role("link", name=f"Details of bet {dice[0]}", exact=True).click()
    page.wait_for_url(at("/bets/bet", query=True))
    expect(page.get_by_text(f"Dice bet #{dice[0]}")).to_be_visible()
    outcome = page.locator("#bet-outcome")
    expect(outcome).to_have_text(re.compile(r"^rolled \d{1,3}\.\d\d$"))
    rolled = outcome.inner_text()
    expect(page.get_by_text("revealed when you rotate your seeds")).to_be_visible()
    page.get_by_role("link", name="Rotate your seeds on the fairness page").click()

    # fairness: rotate; the old server seed is revealed and matches its committed hash
    page.wait_for_url(at("/fairness"))
    active = page.locator("#active-hash")
    expect(active).to_have_text(re.compile(r"^[0-9a-f]{64}$"))
    old_hash = active.inner_text()
    next_hash = page.locator("#next-hash").inner_text()
    expect(page.locator("#nonce")).to_have_text("3")
    page.get_by_role("button", name="Rotate seeds").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Rotate").click()
    expect(page.get_by_text("The previous server seed is revealed")).to_be_visible()
    expect(active).to_have_text(next_hash)
    expect(page.locator("#nonce")).to_have_text("0")
    row = page.locator(".revealed-row")
    expect(row).to_have_count(1)
    seed = row.locator(".revealed-seed").inner_text()
    assert re.fullmatch(r"[0-9a-f]{64}", seed)
    assert hashlib.sha256(seed.encode()).hexdigest() == old_hash
    expect(row).to_contain_text(old_hash)
    expect(row.locator(".revealed-bets")).to_have_text("3")

    # the recall now shows the seed; Verify opens the verifier prefilled
    goto(page, f"/bets/bet?id={dice[0]}")
    expect(page.locator("#bet-seed")).to_have_text(seed)
    page.get_by_role("link", name="Verify", exact=True).click()
    page.wait_for_url(at("/verify", query=True))
    wait_verifier(page)
    expect(page.locator("#vf-server_seed")).to_have_value(seed)
    expect(page.locator("#vf-nonce")).to_have_value("0")
    expect(page.locator("#vf-game")).to_have_value("dice")
    verify_without_server(page, frames)
    expect(page.locator("#verify-outcome")).to_have_text(rolled)
    expect(page.locator("#verify-hash")).to_have_attribute("data-matches", "true")
    steps = page.locator("#verify-steps li")
    expect(steps.first).to_contain_text(old_hash)
    expect(steps.nth(1)).to_contain_text("HMAC-SHA256")
    expect(steps.nth(2)).to_contain_text("Float 0 = bytes")

    # a wrong seed does not match the committed hash; the page says so
    page.locator("#vf-server_seed").fill("0" * 64)
    verify_without_server(page, frames)
    expect(page.locator("#verify-hash")).to_have_attribute("data-matches", "false")
    expect(page.locator("#verify-hash")).to_contain_text("DOES NOT MATCH")

    # the revealed list verifies the pair's first bet too
    goto(page, "/fairness")
    page.get_by_role("link", name="Verify first bet").click()
    page.wait_for_url(at("/verify", query=True))
    wait_verifier(page)
    verify_without_server(page, frames)
    expect(page.locator("#verify-outcome")).to_have_text(rolled)

    # the verifier works signed out, from a shared link
    link = page.url
    guest = new_context().new_page()
    guest.goto(link)
    wait_verifier(guest)
    expect(guest.get_by_role("link", name="Sign in")).to_be_visible()
    guest.locator("#verify-run").click()
    expect(guest.locator("#verify-outcome")).to_have_text(rolled)

    # another player cannot open these bets
    other = new_context().new_page()
    register(other, f"nosy-{uuid.uuid4().hex[:8]}@example.com", "Nosy", PASSWORD)
    goto(other, f"/bets/bet?id={limbo}")
    expect(other.get_by_text("Bet not found")).to_be_visible()
    expect(other.get_by_text("Limbo bet")).to_have_count(0)


def wait_verifier(page: Page) -> None:
    expect(page.locator("#verify-run")).to_be_visible()
    page.wait_for_function("() => !!window.HashHouseVerify")


def verify_without_server(page: Page, frames: list[str]) -> None:
    """Click Verify and wait for the result; nothing may reach the server meanwhile."""
    requests: list[str] = []

    def record(r) -> None:  # noqa: ANN001
        requests.append(f"{r.method} {r.url}")

    page.on("request", record)
    sent_before = len(frames)
    page.evaluate("() => { const o = document.getElementById('verify-output');"
                  " if (o) o.replaceChildren(); }")
    page.locator("#verify-run").click()
    expect(page.locator("#verify-outcome, #verify-error")).to_have_count(1)
    time.sleep(0.3)  # anything the click triggered would be on its way by now
    page.remove_listener("request", record)
    events = [f for f in frames[sent_before:] if f.startswith("42")]  # Socket.IO events
    assert requests == [], f"the verifier called the network: {requests}"
    assert events == [], f"the verifier sent events to the server: {events}"
    expect(page.locator("#verify-error")).to_have_count(0)


# --- staff -----------------------------------------------------------------------------------

def _create_support(live_app: LiveApp, email: str) -> None:
    casino = str(Path(sys.executable).parent / "casino")
    done = subprocess.run([casino, "admin", "create", "--email", email, "--role", "support"],  # noqa: S603
                          input=PASSWORD + "\n", env=live_app.env, text=True,
                          capture_output=True, timeout=120, cwd=Path(__file__).parents[2])
    assert done.returncode == 0, done.stderr


def test_support_requests_an_adjustment_and_an_admin_approves(browser, live_app):  # noqa: ANN001
    def device() -> Page:
        ctx = browser.new_context(viewport=DESKTOP, base_url=live_app.url)
        ctx.set_default_timeout(20_000)
        return ctx.new_page()

    player_email = f"adj-{uuid.uuid4().hex[:8]}@example.com"
    register(device(), player_email, "Adjusted Player", PASSWORD)

    support_email = f"support-{uuid.uuid4().hex[:8]}@example.com"
    _create_support(live_app, support_email)
    support = device()
    login_password(support, support_email, PASSWORD)
    support.wait_for_url(at("/account"))
    support.goto("/admin")
    support.wait_for_url(at("/account/security"))
    enrol_2fa(support, PASSWORD)

    # support finds the player and asks for a credit
    goto(support, "/admin")
    support.get_by_label("Search").fill(player_email)
    support.get_by_role("button", name="Search").click()
    support.get_by_role("link", name=player_email).click()
    support.wait_for_url(at("/admin/player", query=True))
    player_url = support.url
    # a new account holds only the play money it started with
    expect(support.locator("tr.balance-row")).to_have_count(1)
    expect(support.locator("tr.balance-row")).to_contain_text("FUN")
    support.locator("#adj-currency").select_option("BTC")
    # a comma is stopped by the browser before sending (and refused by the server)
    support.locator("#adj-amount").fill("0,5")
    support.locator("#adj-reason").fill("Goodwill for a lost deposit")
    support.get_by_role("button", name="Request adjustment").click()
    assert support.locator("#adj-amount").evaluate("e => e.validity.patternMismatch")
    expect(support.get_by_text("BTC requested")).to_have_count(0)
    support.locator("#adj-amount").fill("0.5")
    support.get_by_role("button", name="Request adjustment").click()
    expect(support.get_by_text("+0.50000000 BTC requested")).to_be_visible()
    request_id = re.search(r"Adjustment #(\d+)",
                           support.get_by_text("+0.50000000 BTC requested").inner_text())
    assert request_id
    rid = request_id.group(1)

    # support cannot approve it: the page says why
    goto(support, "/admin")
    support.get_by_role("link", name="Adjustments awaiting approval").click()
    support.wait_for_url(at("/admin/adjustments"))
    support.get_by_role("button", name=f"Approve #{rid}").click()
    expect(support.get_by_text("Only an admin can approve")).to_be_visible()
    expect(support.locator("tr.adjustment-row")).to_contain_text("+0.50000000 BTC")

    # an admin approves it; the player's balance on the staff page shows it
    admin = device()
    staff_sign_in(admin)
    goto(admin, "/admin/adjustments")
    admin.get_by_role("button", name=f"Approve #{rid}").click()
    expect(admin.get_by_text(f"Approved #{rid}")).to_be_visible()
    admin.goto(player_url)
    balances = admin.locator("tr.balance-row").filter(has_text="BTC")
    expect(balances).to_have_count(1)
    expect(balances).to_contain_text("0.50000000")
    expect(admin.get_by_text(f"adjustment #{rid}: Goodwill for a lost deposit")).to_be_visible()
