"""A player on a 360 px phone opens the wallet, ETH is sent from an anvil account to the
address shown, and the deposit appears (pending, confirmations counting up, available)
with the header balance, all without a reload: the watcher job records it, the push loop
(ui/push.py) sends it to the open tab.

The app runs against its own private anvil node, with anvil's mnemonic as hot wallet seed
(so deposit addresses are anvil's accounts: fine for a test)."""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect
from web3 import Web3

from casino_app.payments.signer.seed import account_xpub
from tests.e2e.conftest import PHONE, ROOT, Inbox, LiveApp
from tests.e2e.flows import goto, register
from tests.support.services import ANVIL_MNEMONIC, Anvil, free_port, start_casino, stop_casino

pytestmark = [pytest.mark.e2e, pytest.mark.ethereum]

PASSWORD = "wallet pass phrase 1"
CONFIRMATIONS = 3


@pytest.fixture(scope="module")
def chain() -> Iterator[Anvil]:
    node = Anvil()
    try:
        node.start()
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="module")
def eth_app(smtp: Inbox, chain: Anvil, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[LiveApp]:
    """``casino run`` following the private anvil: 3 confirmations, a fast watcher."""
    tmp = tmp_path_factory.mktemp("wallet")
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CASINO_") and k != "REFLEX_REDIS_URL"}
    env.update({
        "CASINO_DATA_DIR": str(tmp / "data"),
        "CASINO_PORT": str(port),
        "CASINO_PUBLIC_URL": f"http://localhost:{port}",
        "CASINO_SMTP_HOST": "127.0.0.1",
        "CASINO_SMTP_PORT": str(smtp.port),  # type: ignore[attr-defined]
        "CASINO_SMTP_STARTTLS": "false",
        "CASINO_ENCRYPTION_KEYS": "e2e:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        "CASINO_RATE_REGISTER_IP": "100/minute",
        "CASINO_ETH_RPC_URL": chain.url,
        "CASINO_ETH_CHAIN_ID": str(chain.chain_id),
        "CASINO_ETH_HOT_SEED": ANVIL_MNEMONIC,
        "CASINO_ETH_XPUB": account_xpub(ANVIL_MNEMONIC),
        "CASINO_ETH_CONFIRMATIONS": str(CONFIRMATIONS),
        "CASINO_ETH_WATCH_SECONDS": "0.5",
        "CASINO_ETH_PENDING_CAP": "ETH:100000000000",
    })
    log = tmp / "app.log"
    proc = start_casino(env, port, log, ROOT)
    try:
        yield LiveApp(f"http://localhost:{port}", tmp / "data", env, log)
    finally:
        stop_casino(proc)


def test_a_deposit_appears_live_on_the_open_wallet(browser, eth_app: LiveApp,  # noqa: ANN001
                                                   chain: Anvil) -> None:
    ctx = browser.new_context(viewport=PHONE, base_url=eth_app.url)
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
