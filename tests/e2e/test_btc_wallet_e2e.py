"""The whole Bitcoin money path in Chromium, on a phone and on a desktop: a player signs up,
opens the wallet's BTC tab (beside ETH's), the test sends BTC from a funded test key to the
address shown, and the deposit appears without a reload: incoming (in the mempool), then
pending at 1 confirmation, then available at 2. The player bets some of it on dice in BTC
and withdraws the rest (Max: everything withdrawable minus the fee) to an address the test
holds; the btc-batch job pays it from the hot wallet, the test mines, and the coins arrive
at the destination on the node, exactly the amount withdrawn, in the transaction the
wallet shows.

The app (``casino run``) follows its own private bcoin regtest node and anvil, with a
test seed as the hot seed of both chains (its BIP84 hot wallet funded on chain and booked
with ``casino ledger fund``, the bankroll a real-money bet needs), a 0.5 s watcher and a
1 s batcher. Afterwards an admin reads the BTC hot wallet on /admin/wallets beside
Ethereum's and starts a Bitcoin reconciliation from /admin/reconcile (clean), and
``casino reconcile`` finds the books and both chains in agreement."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from casino_app.payments.btc import keys
from casino_app.payments.btc.network import PRESETS
from casino_app.payments.signer import btc as btc_signer
from casino_app.payments.signer.seed import _mnemonic
from tests.e2e.conftest import DESKTOP, ROOT, Inbox, LiveApp, btc_app, casino_cli
from tests.e2e.flows import goto, register, staff_sign_in
from tests.support.bitcoin import BcoinNode, RegtestWallet
from tests.support.services import Anvil

pytestmark = [pytest.mark.e2e, pytest.mark.bitcoin]

PASSWORD = "bitcoin pass phrase 1"
CONFIRMATIONS = 2
FEE = 2_000                 # sat, the house's withdrawal fee
DEPOSIT = 1_000_000         # 0.01 BTC
BET = Decimal("0.001")
HOT = 50_000_000            # the hot wallet, booked as the bankroll (0.5 BTC)
NETWORK = PRESETS["regtest-bcoin"]
ADMIN = "btc-admin@example.com"
STAFF_PASSWORD = "bitcoin staff passphrase"


@pytest.fixture(scope="module")
def app(smtp: Inbox, bitcoin_chain: BcoinNode, chain: Anvil,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    words = _mnemonic().to_mnemonic(secrets.token_bytes(32))  # a test seed, both chains
    hot = keys.hot_wallet_address(btc_signer.account_xpub(NETWORK, words), NETWORK)
    funding = bitcoin_chain.fund(hot, HOT)
    with btc_app(smtp, bitcoin_chain, tmp_path_factory.mktemp("btc-wallet"), {
        "CASINO_BTC_CONFIRMATIONS": str(CONFIRMATIONS),
        "CASINO_BTC_WITHDRAW_MIN": "10000",
        "CASINO_BTC_WITHDRAW_FEE": str(FEE),
        "CASINO_BTC_FEE_FLOOR": "2", "CASINO_BTC_FEE_FALLBACK": "2",
        # withdrawal protection is tested in test_withdrawal_protection_e2e.py: here the
        # new address and the fresh account need no wait
        "CASINO_WITHDRAW_LOCK_HOURS": "0", "CASINO_WITHDRAW_COOLING_HOURS": "0",
    }, chain=chain, words=words, staff=((ADMIN, STAFF_PASSWORD, "admin"),)) as live:
        casino_cli(live.env, "ledger", "fund", "--currency", "BTC", "--amount",
                   str(Decimal(HOT) / 10**8), "--reference", f"hot wallet {funding.txid}")
        yield live


def _shown(value: Decimal) -> str:
    """A BTC amount as every page shows it (one format: Currency.text)."""
    from casino_app.payments.currencies import currency

    return currency("BTC").text(int(value * 10**8))


def _btc(text: str) -> Decimal:
    return Decimal(text.replace(",", "").split()[0])


def _open_btc_tab(page: Page) -> None:
    goto(page, "/wallet")
    page.get_by_role("radio", name="BTC").click()
    expect(page.locator("#network-warning")).to_contain_text("Send only Bitcoin (BTC) on")


def _bet_in_btc(page: Page, balance: Decimal) -> Decimal:
    """One dice bet of 0.001 BTC; the header balance moves by the profit shown."""
    goto(page, "/games/dice")
    expect(page.get_by_role("heading", name="Dice")).to_be_visible()
    page.locator("#header-currency").select_option("BTC")
    expect(page.locator("#header-balance")).to_have_text(f"{balance:.8f}")
    page.get_by_label("Amount", exact=True).fill(str(BET))
    page.locator("#bet-button").click()
    expect(page.locator("#result-profit")).to_be_visible()
    profit = _btc(page.locator("#result-profit").inner_text().replace("−", "-")
                  .replace("+", ""))
    assert profit in (-BET, BET * Decimal("0.98")), profit
    expect(page.locator("#header-balance")).to_have_text(f"{balance + profit:.8f}")
    return balance + profit


def _received(node: BcoinNode, address: str) -> list[tuple[str, int, int]]:
    """(txid, value, height) of every coin at ``address`` (bcoin's address index)."""
    return [(c["hash"], c["value"], c["height"])
            for c in node.rest(f"/coin/address/{address}")]


def test_deposit_bet_and_withdraw_bitcoin_in_the_browser(  # noqa: ANN001
        browser, app: LiveApp, bitcoin_chain: BcoinNode, viewport: dict[str, int]) -> None:
    node = bitcoin_chain
    ctx = browser.new_context(viewport=viewport, base_url=app.url)
    ctx.set_default_timeout(20_000)
    try:
        page = ctx.new_page()
        register(page, f"btc{secrets.token_hex(4)}@example.com", "Bitcoin Player", PASSWORD)
        _open_btc_tab(page)
        address = page.locator("#deposit-address").inner_text().strip()
        assert keys.validate_address(address, NETWORK).script_pubkey  # ours, on regtest
        assert address.startswith("rb1q")
        expect(page.locator("#deposit-qr")).to_be_visible()
        page.locator("#header-currency").select_option("BTC")
        expect(page.locator("#header-balance")).to_have_text("0.00000000")
        page.evaluate("() => { window.__noReload = 'still here'; }")

        # sent from a key the test holds: incoming while in the mempool ...
        sent = node.fund(address, DEPOSIT, mine=False)
        row = page.locator(".deposit-row")
        expect(row).to_have_count(1)
        expect(row.locator(".deposit-state")).to_have_text("incoming")
        expect(row.locator(".deposit-amount")).to_have_text("0.01000000 BTC")
        expect(row.locator(".deposit-confirmations")).to_have_text(f"0 of {CONFIRMATIONS}")
        expect(page.locator("#incoming-BTC")).to_have_text("0.01000000 BTC")
        expect(page.locator("#header-balance")).to_have_text("0.00000000")  # not playable
        # ... pending (playable) once mined ...
        node.mine(1)
        expect(row.locator(".deposit-state")).to_have_text("pending")
        expect(row.locator(".deposit-confirmations")).to_have_text(f"1 of {CONFIRMATIONS}")
        expect(page.locator("#pending-BTC")).to_have_text("0.01000000 BTC")
        expect(page.locator("#withdrawable-BTC")).to_have_text("0.00000000 BTC")
        expect(page.locator("#header-balance")).to_have_text("0.01000000")
        # ... available at the confirmations
        node.mine(1)
        expect(row.locator(".deposit-state")).to_have_text("available")
        expect(page.locator("#withdrawable-BTC")).to_have_text("0.01000000 BTC")
        assert page.evaluate("() => window.__noReload") == "still here"
        assert row.locator("code").get_attribute("title") == sent.txid

        # a real-money bet in BTC, then withdraw everything left to the test's own key
        balance = _bet_in_btc(page, Decimal("0.01"))
        _open_btc_tab(page)
        expect(page.locator("#withdraw-available")).to_have_text(
            _shown(balance))
        expect(page.locator("#withdraw-fee")).to_have_text("0.00002000 BTC")
        dest = RegtestWallet().address
        page.get_by_label(re.compile("Destination address")).fill(dest)
        page.get_by_role("button", name="Max", exact=True).click()
        rest = balance - Decimal(FEE) / 10**8
        amount_field = page.get_by_label(re.compile(r"^Amount \(BTC\)"))
        expect(amount_field).to_have_value(f"{rest.normalize():f}")
        page.get_by_label("Your password", exact=True).fill(PASSWORD)  # the second factor
        page.get_by_role("button", name="Request withdrawal").click()
        w = page.locator(".withdrawal-row")
        expect(w).to_have_count(1)
        expect(w.locator(".withdrawal-amount")).to_have_text(_shown(rest))
        expect(page.locator("#header-balance")).to_have_text("0.00000000")

        # the batcher pays it; the test mines until it is confirmed
        deadline = time.monotonic() + 60
        while w.locator(".withdrawal-state").inner_text() != "confirmed":
            assert time.monotonic() < deadline, w.inner_text()
            if w.locator(".withdrawal-state").inner_text() == "sent":
                node.mine(1)
            time.sleep(0.5)
        tx = w.locator(".withdrawal-tx").get_attribute("title")
        assert tx and re.fullmatch(r"[0-9a-f]{64}", tx), tx
        sats = int(rest * 10**8)
        assert [(t, v) for t, v, _ in _received(node, dest)] == [(tx, sats)]
        paid = node.rpc.raw_transaction(tx)
        assert paid.block_hash is not None and any(
            o.value == sats and o.script_pubkey == keys.validate_address(dest, NETWORK)
            .script_pubkey for o in paid.outputs)
        assert page.evaluate(
            "() => document.documentElement.scrollWidth <= window.innerWidth + 1")
    finally:
        ctx.close()


def test_staff_read_the_bitcoin_wallets_and_reconcile_it_beside_ethereum(  # noqa: ANN001
        browser, app: LiveApp, bitcoin_chain: BcoinNode) -> None:
    """An admin reads the BTC hot wallet (its change, after the withdrawals) on
    /admin/wallets beside Ethereum's, and starts a Bitcoin reconciliation, which is clean."""
    time.sleep(1.5)  # a watcher pass (0.5 s) after the last block
    ctx = browser.new_context(viewport=DESKTOP, base_url=app.url)
    ctx.set_default_timeout(20_000)
    try:
        page = ctx.new_page()
        staff_sign_in(page, ADMIN, STAFF_PASSWORD, {})
        goto(page, "/admin/wallets")
        expect(page.locator("#bitcoin-wallets")).to_be_visible()
        expect(page.locator("#btc-node-status")).to_contain_text(
            f"reachable, block {bitcoin_chain.height}")
        row = page.locator("#btc-wallets tr.wallet-row")
        expect(row).to_contain_text("BTC")
        expect(row).to_contain_text(re.compile(r"0\.4\d{7} BTC"))  # what the hot wallet kept
        expect(page.locator("#wallets tr.wallet-row").first).to_contain_text("ETH")
        goto(page, "/admin/reconcile")
        expect(page.locator("#bitcoin-runs")).to_contain_text(  # loaded: runs, or none
            re.compile(r"No reconciliation has run yet\.|Finished"))
        # The btc-reconcile job runs once when the app starts: it may have run before the
        # test booked the hot wallet's funding (`casino ledger fund`), and flagged it.
        runs = page.locator("#btc-runs tr.run-row")
        before = runs.count()
        page.locator("#reconcile-now-bitcoin").click()
        expect(page.get_by_text(re.compile(r"Bitcoin run #\d+ at block \d+: clean\."))
               ).to_be_visible()
        expect(runs).to_have_count(before + 1)
        expect(runs.first).to_contain_text("clean")  # newest first
    finally:
        ctx.close()


def test_the_books_and_the_chain_agree_afterwards(app: LiveApp, bitcoin_chain: BcoinNode
                                                  ) -> None:
    """After the players' deposits, bets and withdrawals: `casino reconcile` (both chains)
    is clean once the watcher has seen the last block."""
    time.sleep(1.5)  # a watcher pass (0.5 s) after the last block
    casino = str(Path(sys.executable).parent / "casino")
    done = subprocess.run([casino, "reconcile"], env=app.env, text=True,  # noqa: S603
                          capture_output=True, timeout=300, cwd=ROOT)
    out = json.loads(done.stdout)
    assert done.returncode == 0, (out, done.stderr[-2000:])
    btc = out["chains"]["bitcoin"]
    held = btc["onchain_by_role"]
    assert btc["clean"] and held["hot"] == 0 < held["change"]  # the batches' change
    assert held["deposit"] == 2 * DEPOSIT   # the players' coins (no sweeps yet)
    assert out["chains"]["ethereum"]["clean"]
