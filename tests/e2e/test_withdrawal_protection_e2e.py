"""A player without 2FA withdraws safely, in Chromium on a 360 px phone: a deposit on the
private anvil; a withdrawal to a fresh address is refused because the address is new, and
the page says from when it is usable; the player puts it on the allow-list with their
password; the withdrawal, confirmed by a link mailed to them, waits reserved ("confirm by
mail") until the link from the mail is opened, then is queued, and the request was
announced by mail. The production settings: 24 hours of cooling."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator

import pytest
from eth_account import Account
from playwright.sync_api import expect
from web3 import Web3

from tests.e2e.conftest import PHONE, Inbox, LiveApp, eth_app
from tests.e2e.flows import goto, register
from tests.support.services import Anvil

pytestmark = [pytest.mark.e2e, pytest.mark.ethereum]

PASSWORD = "careful withdrawal phrase 7"


@pytest.fixture(scope="module")
def guarded_app(smtp: Inbox, chain: Anvil, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[LiveApp]:
    with eth_app(smtp, chain, tmp_path_factory.mktemp("guarded"), {
        "CASINO_ETH_CONFIRMATIONS": "1",
        "CASINO_ETH_WITHDRAW_MIN": "ETH:100000",
        "CASINO_ETH_WITHDRAW_MAX": "ETH:1000000000",
        "CASINO_ETH_WITHDRAW_FEE": "ETH:50000",
    }) as app:
        yield app


def test_a_new_address_cools_the_allow_list_skips_it_and_a_mailed_link_confirms(  # noqa: ANN001
        browser, guarded_app: LiveApp, chain: Anvil, smtp: Inbox) -> None:
    ctx = browser.new_context(viewport=PHONE, base_url=guarded_app.url)
    ctx.set_default_timeout(20_000)
    email = f"guarded{secrets.token_hex(4)}@example.com"
    try:
        page = ctx.new_page()
        register(page, email, "Guarded Player", PASSWORD)
        goto(page, "/wallet")
        address = page.locator("#deposit-address").inner_text().strip()
        chain.w3.eth.send_transaction({"from": chain.accounts[5], "to": address,
                                       "value": Web3.to_wei("0.05", "ether")})
        expect(page.locator("#withdraw-available")).to_have_text("0.050000 ETH")  # one format per currency

        # without 2FA: the player chooses the second factor, 2FA is recommended
        expect(page.locator("#withdraw-2fa-advice")).to_contain_text("Recommended")
        dest = Account.create().address
        page.get_by_label(re.compile("Destination address")).fill(dest)
        page.get_by_label(re.compile(r"^Amount \(ETH\)")).fill("0.01")
        page.get_by_label("Your password", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="Request withdrawal").click()
        # a new address: refused, and the page says from when it can be used
        expect(page.get_by_role("alert").filter(has_text="can be used from")).to_be_visible()
        note = page.locator(".withdraw-address-row").filter(has_text=dest[:8])
        expect(note.locator(".withdraw-address-note")).to_have_text(
            re.compile(r"new: usable from \d{4}-\d\d-\d\d \d\d:\d\d UTC"))
        smtp.wait_for(email, "New withdrawal address")

        # the allow-list, with the password: usable at once
        page.get_by_label("Address", exact=True).fill(dest)
        page.get_by_label("Your password (allow-list)").fill(PASSWORD)
        page.get_by_role("button", name="Change allow-list").click()
        expect(page.get_by_role("status").filter(has_text="is on your allow-list")
               ).to_be_visible()
        expect(note.locator(".withdraw-address-note")).to_have_text("on your allow-list")
        smtp.wait_for(email, "allow-list changed")

        # confirmed by a mailed link: reserved until it is opened
        page.get_by_label(re.compile("Destination address")).fill(dest)
        page.get_by_label(re.compile(r"^Amount \(ETH\)")).fill("0.01")
        page.locator("#withdraw-method-mail").click()
        expect(page.get_by_label("Your password", exact=True)).to_have_count(0)
        page.get_by_role("button", name="Request withdrawal").click()
        expect(page.locator("#withdraw-slot")).to_contain_text("open the link we mailed you")
        row = page.locator(".withdrawal-row")
        expect(row.locator(".withdrawal-state")).to_have_text("confirm by mail")
        expect(page.locator("#withdraw-available")).to_have_text("0.039950 ETH")

        mail = smtp.wait_for(email, "Confirm your HashHouse withdrawal")
        text = mail.get_payload(decode=True).decode()
        link = re.search(r"https?://\S+/withdrawal/confirm\?token=\S+", text).group(0)
        page.goto(link)
        expect(page.locator("#withdraw-confirm-done")).to_contain_text("is confirmed")
        goto(page, "/wallet")
        expect(page.locator(".withdrawal-row .withdrawal-state")).to_have_text("queued")
        # opened again: nothing more happens
        page.goto(link)
        expect(page.locator("#withdraw-confirm-done")).to_contain_text("used before")
    finally:
        ctx.close()
