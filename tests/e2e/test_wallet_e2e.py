"""A player on a 360 px phone opens the wallet, ETH is sent from an anvil account to the
address shown, and the deposit appears (pending, confirmations counting up, available)
with the header balance, all without a reload: the watcher job records it, the push loop
(ui/push.py) sends it to the open tab.

The app runs against its own private anvil node, with anvil's mnemonic as hot wallet seed
(so deposit addresses are anvil's accounts: fine for a test)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect
from web3 import Web3

from tests.e2e.conftest import PHONE, Inbox, LiveApp, eth_app
from tests.e2e.flows import goto, register
from tests.support.services import Anvil

pytestmark = [pytest.mark.e2e, pytest.mark.ethereum]

PASSWORD = "wallet pass phrase 1"
CONFIRMATIONS = 3


@pytest.fixture(scope="module")
def wallet_app(smtp: Inbox, chain: Anvil, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[LiveApp]:
    """``casino run`` following the private anvil: 3 confirmations, a fast watcher."""
    with eth_app(smtp, chain, tmp_path_factory.mktemp("wallet"),
                 {"CASINO_ETH_CONFIRMATIONS": str(CONFIRMATIONS)}) as app:
        yield app


def test_a_deposit_appears_live_on_the_open_wallet(browser, wallet_app: LiveApp,  # noqa: ANN001
                                                   chain: Anvil) -> None:
    ctx = browser.new_context(viewport=PHONE, base_url=wallet_app.url)
    ctx.set_default_timeout(20_000)
    try:
        page = ctx.new_page()
        register(page, f"wallet{secrets.token_hex(4)}@example.com", "Wallet Player",
                 PASSWORD)
        goto(page, "/wallet")
        address = page.locator("#deposit-address").inner_text().strip()
        assert Web3.is_checksum_address(address), address
        expect(page.locator("#network-warning")).to_contain_text(
            f"Send only ETH on the local development chain (chain id {chain.chain_id})")
        qr = page.locator("#deposit-qr")
        expect(qr).to_be_visible()
        assert qr.get_attribute("src").startswith("data:image/svg+xml;base64,")
        expect(page.locator("#deposits")).to_contain_text("No deposits yet")
        page.locator("#header-currency").select_option("ETH")
        expect(page.locator("#header-balance")).to_have_text("0.000000")
        # a reload would drop this mark: it must survive until the end
        page.evaluate("() => { window.__noReload = 'still here'; }")

        sender = chain.accounts[5]
        assert sender != address
        chain.w3.eth.send_transaction({"from": sender, "to": address,
                                       "value": Web3.to_wei("0.05", "ether")})
        row = page.locator(".deposit-row")
        expect(row).to_have_count(1)
        expect(row.locator(".deposit-state")).to_have_text("pending")
        expect(row.locator(".deposit-amount")).to_have_text("0.050000 ETH")
        expect(row.locator(".deposit-confirmations")).to_have_text(f"1 of {CONFIRMATIONS}")
        expect(page.locator("#pending-ETH")).to_have_text("0.050000 ETH")
        expect(page.locator("#withdrawable-ETH")).to_have_text("0.000000 ETH")
        # pending deposits are playable: the header already shows them
        expect(page.locator("#header-balance")).to_have_text("0.050000")

        chain.mine(1)
        expect(row.locator(".deposit-confirmations")).to_have_text(f"2 of {CONFIRMATIONS}")
        chain.mine(1)
        expect(row.locator(".deposit-state")).to_have_text("available")
        expect(row.locator(".deposit-confirmations")).to_have_text(
            f"{CONFIRMATIONS} of {CONFIRMATIONS}")
        expect(page.locator("#withdrawable-ETH")).to_have_text("0.050000 ETH")
        expect(page.locator("#pending-ETH")).to_have_text("0.000000 ETH")
        expect(page.locator("#header-balance")).to_have_text("0.050000")

        assert page.evaluate("() => window.__noReload") == "still here"
        assert page.evaluate(
            "() => document.documentElement.scrollWidth <= window.innerWidth + 1")
    finally:
        ctx.close()
