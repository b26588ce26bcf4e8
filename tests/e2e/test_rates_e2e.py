"""On a 360 px phone: the header converts the balance into the display currency the
player picks, says the rates are fixed (the embedded default), remembers the choice
across a reload, and shows no conversion for play money."""

from __future__ import annotations

import secrets

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import PHONE
from tests.e2e.flows import goto, register

pytestmark = pytest.mark.e2e


@pytest.fixture(params=[pytest.param(PHONE, id="phone")])
def viewport(request: pytest.FixtureRequest) -> dict[str, int]:
    return request.param


def test_the_header_shows_the_balance_in_the_chosen_display_currency(new_context) -> None:  # noqa: ANN001
    page = new_context().new_page()
    register(page, f"fx-{secrets.token_hex(4)}@example.com", "Rates", "rates pass phrase 1")
    goto(page, "/games/dice")
    expect(page.locator("#header-balance")).to_have_text("1,000.00")  # play money to start
    expect(page.locator("#header-display")).to_have_value("USD")
    expect(page.locator("#header-fx")).to_have_text("play money")  # FUN

    page.locator("#header-currency").select_option("ETH")
    expect(page.locator("#header-fx")).to_have_text("≈ $0.00")
    page.locator("#header-display").select_option("EUR")
    expect(page.locator("#header-fx")).to_have_text("≈ 0.00 €")
    assert "rates from settings, not live" in page.locator("#header-fx").get_attribute("title")
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")

    # remembered in this browser
    page.reload()
    expect(page.locator("#header-display")).to_have_value("EUR")
    expect(page.locator("#header-fx")).to_have_text("≈ 0.00 €")
    page.get_by_role("button", name="Account menu").click()
    expect(page.locator("#fx-note")).to_contain_text("rates from settings, not live")
    page.keyboard.press("Escape")

    page.locator("#header-display").select_option("NONE")
    expect(page.locator("#header-fx")).to_have_count(0)
