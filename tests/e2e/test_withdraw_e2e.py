"""The whole money path on a 360 px phone: a player opens the wallet, ETH is sent from an
anvil account to the address shown and appears without a reload, the player bets part of
it on dice, turns on 2FA, withdraws the rest (minus the fee, with the current code) to a
fresh address after a wrong code and a mistyped address were refused, and the batcher job
pays it through BatchPay from the hot wallet: the destination's on-chain balance is
exactly the amount withdrawn and the wallet lists the withdrawal as confirmed with its
transaction hash.

The app runs against its own anvil with the devnet contracts (``chain.deploy_devnet``),
anvil's mnemonic as hot seed (its hot wallet ``m/44'/60'/0'/1/0`` funded from an anvil
account) and a bankroll recorded with ``casino ledger fund`` so that a real-money bet is
accepted."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from decimal import Decimal

import pytest
from eth_account import Account
from playwright.sync_api import Page, expect
from web3 import Web3

from casino_app.payments.eth import chain as eth_chain
from casino_app.payments.eth import keys
from casino_app.payments.signer.seed import account_xpub
from tests.e2e.conftest import PHONE, Inbox, LiveApp, casino_cli, eth_app
from tests.e2e.flows import code_for_next_step, enrol_2fa, goto, register
from tests.support.services import ANVIL_MNEMONIC, Anvil

pytestmark = [pytest.mark.e2e, pytest.mark.ethereum]

PASSWORD = "withdraw pass phrase 1"
CONFIRMATIONS = 2
FEE_GWEI = 50_000           # 0.00005 ETH
GWEI = 10**9


@pytest.fixture(scope="module")
def pay_app(smtp: Inbox, chain: Anvil, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[LiveApp]:
    """``casino run`` following the private anvil and paying withdrawals every second."""
    devnet = eth_chain.deploy_devnet(chain.w3, chain.keys[0], chain.keys[7:10])
    w3 = chain.w3
    w3.eth.wait_for_transaction_receipt(w3.eth.send_transaction(
        {"from": chain.accounts[1], "to": keys.hot_wallet_address(account_xpub(ANVIL_MNEMONIC)),
         "value": Web3.to_wei(1, "ether")}))
    with eth_app(smtp, chain, tmp_path_factory.mktemp("withdraw"), {
        "CASINO_ETH_TOKENS": f"USDT:{devnet['USDT']},USDC:{devnet['USDC']}",
        "CASINO_ETH_BATCH_CONTRACT": devnet["batch"],
        "CASINO_ETH_BATCH_SECONDS": "1",
        "CASINO_ETH_CONFIRMATIONS": str(CONFIRMATIONS),
        "CASINO_ETH_WITHDRAW_MIN": "ETH:100000",
        "CASINO_ETH_WITHDRAW_MAX": "ETH:1000000000",
        "CASINO_ETH_WITHDRAW_FEE": f"ETH:{FEE_GWEI}",
        # this journey turns 2FA on and withdraws at once to a fresh address: no lock
        # after the 2FA change, no cooling (both: tests/users/test_withdrawal_guard.py)
        "CASINO_WITHDRAW_LOCK_HOURS": "0",
        "CASINO_WITHDRAW_COOLING_HOURS": "0",
    }) as app:
        # the bankroll a real-money bet needs
        casino_cli(app.env, "ledger", "fund", "--currency", "ETH", "--amount", "10",
                   "--reference", "e2e bankroll")
        yield app


def _shown(value: Decimal) -> str:
    """An ETH amount as every page shows it (one format: Currency.text)."""
    from casino_app.payments.currencies import currency

    return currency("ETH").text(int(value * GWEI))


def _eth(text: str) -> Decimal:
    return Decimal(text.replace(",", "").split()[0])


def _bet_in_eth(page: Page) -> None:
    """One dice bet of 0.001 ETH; the header balance moves by the profit shown."""
    goto(page, "/games/dice")
    expect(page.get_by_role("heading", name="Dice")).to_be_visible()
    page.locator("#header-currency").select_option("ETH")
    expect(page.locator("#header-balance")).to_have_text("0.050000")
    page.get_by_label("Amount", exact=True).fill("0.001")
    page.locator("#bet-button").click()
    expect(page.locator("#result-profit")).to_be_visible()
    profit = _eth(page.locator("#result-profit").inner_text().replace("−", "-")
                  .replace("+", ""))
    assert profit in (Decimal("-0.001"), Decimal("0.00098")), profit
    expect(page.locator("#header-balance")).to_have_text(f"{Decimal('0.05') + profit:.6f}")


def test_deposit_bet_and_withdraw_the_rest_to_the_chain(  # noqa: ANN001
        browser, pay_app: LiveApp, chain: Anvil) -> None:
    started = time.monotonic()
    ctx = browser.new_context(viewport=PHONE, base_url=pay_app.url)
    ctx.set_default_timeout(20_000)
    try:
        page = ctx.new_page()
        register(page, f"payout{secrets.token_hex(4)}@example.com", "Payout Player",
                 PASSWORD)
        goto(page, "/wallet")
        address = page.locator("#deposit-address").inner_text().strip()
        assert Web3.is_checksum_address(address), address
        expect(page.locator("#withdrawals")).to_contain_text("No withdrawals yet")
        page.evaluate("() => { window.__noReload = 'still here'; }")

        # the deposit appears without a reload, then becomes withdrawable
        chain.w3.eth.send_transaction({"from": chain.accounts[5], "to": address,
                                       "value": Web3.to_wei("0.05", "ether")})
        row = page.locator(".deposit-row")
        expect(row.locator(".deposit-state")).to_have_text("pending")
        expect(page.locator("#withdraw-available")).to_have_text("0.000000 ETH")
        chain.mine(1)
        expect(row.locator(".deposit-state")).to_have_text("available")
        expect(page.locator("#withdraw-available")).to_have_text("0.050000 ETH")
        assert page.evaluate("() => window.__noReload") == "still here"

        # a real-money bet; 2FA turned on; back to the wallet
        _bet_in_eth(page)
        secret, _ = enrol_2fa(page, PASSWORD)
        goto(page, "/wallet")
        balance = _eth(page.locator("#header-balance").inner_text())
        expect(page.locator("#withdraw-available")).to_have_text(
            _shown(balance))
        expect(page.locator("#withdraw-fee")).to_have_text("0.000050 ETH")
        expect(page.locator("#withdraw-limits")).to_contain_text("0.000100 ETH to 1.000000 ETH")
        code_field = page.get_by_label("Authentication code")
        address_field = page.get_by_label(re.compile("Destination address"))
        submit = page.get_by_role("button", name="Request withdrawal")
        dest = Account.create().address

        # refusals first, nothing reserved: a wrong 2FA code ...
        address_field.fill(dest)
        page.get_by_role("button", name="Max", exact=True).click()
        amount_field = page.get_by_label(re.compile(r"^Amount \(ETH\)"))
        rest = balance - Decimal(FEE_GWEI) / GWEI
        expect(amount_field).to_have_value(f"{rest.normalize():f}")
        expect(page.locator("#withdraw-total")).to_have_text(
            _shown(balance) + " in total")
        code_field.fill("000000")
        submit.click()
        expect(page.get_by_role("alert").filter(has_text="not valid")).to_be_visible()
        # ... and a mistyped checksum, with a good code (a refused request keeps it unused)
        i = next(i for i in range(2, 42) if dest[i].isalpha())
        address_field.fill(dest[:i] + dest[i].swapcase() + dest[i + 1:])
        code = code_for_next_step(secret)
        code_field.fill(code)
        submit.click()
        expect(page.get_by_role("alert").filter(has_text="checksum")).to_be_visible()
        expect(page.locator(".withdrawal-row")).to_have_count(0)
        expect(page.locator("#withdraw-available")).to_have_text(
            _shown(balance))

        # the real request: the rest of the balance, minus the fee
        address_field.fill(dest)
        code_field.fill(code)
        submit.click()
        expect(page.locator("#withdraw-slot")).to_contain_text(
            f"Withdrawal of {_shown(rest)} to {dest[:8]}")
        w = page.locator(".withdrawal-row")
        expect(w).to_have_count(1)
        expect(amount_field).to_have_value("")
        expect(address_field).to_have_value("")
        expect(code_field).to_have_value("")
        expect(page.locator("#header-balance")).to_have_text("0.000000")
        expect(w.locator(".withdrawal-amount")).to_have_text(_shown(rest))
        expect(w.locator(".withdrawal-address")).to_have_attribute("title", dest)
        # with a deposit and a withdrawal listed, the page still fits the phone (the tables
        # scroll in their own box), and the balances card shows every currency
        assert page.evaluate(
            "() => document.documentElement.scrollWidth <= window.innerWidth")
        expect(page.locator("#balance-FUN")).to_have_text("1,000.00 FUN")
        expect(page.locator("#balance-ETH")).to_have_text("0.000000 ETH")

        # the batcher pays it (sent), confirmations follow as blocks are mined
        expect(w.locator(".withdrawal-state")).to_have_text(re.compile("queued|sent"))
        deadline = time.monotonic() + 30
        while w.locator(".withdrawal-state").inner_text() != "confirmed":
            assert time.monotonic() < deadline, w.inner_text()
            if w.locator(".withdrawal-state").inner_text() == "sent":
                chain.mine(1)
            time.sleep(0.5)
        tx = w.locator(".withdrawal-tx").get_attribute("title")
        assert tx and re.fullmatch(r"0x[0-9a-f]{64}", tx), tx
        expect(w.locator(".withdrawal-tx")).to_have_text(f"{tx[:10]}…{tx[-6:]}")
        receipt = chain.w3.eth.get_transaction_receipt(tx)
        assert receipt["status"] == 1
        assert chain.w3.eth.get_balance(dest) == int(rest * GWEI) * GWEI
        assert page.evaluate(
            "() => document.documentElement.scrollWidth <= window.innerWidth + 1")
        assert time.monotonic() - started < 60
    finally:
        ctx.close()
