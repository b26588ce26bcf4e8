"""The staff withdrawal queue in Chromium, paid by the cold Safe: a player's large
withdrawal (at least CASINO_ETH_WITHDRAW_LARGE) waits for approval on /admin/withdrawals;
admin A prepares the Safe transaction, reads the safeTxHash on the page and pastes the
signature an owner key made of it (outside the server, here in the test); support staff
see the queue but no approve or sign control; admin B signs with another owner key; the
payment is ready, the job sends execTransaction and the withdrawal is confirmed with its
transaction hash; the destination received exactly the amount.

The app runs against its own anvil with the devnet contracts (a 2-of-3 Safe owned by
anvil's keys 7 to 9, funded with 1 ETH); the player's ETH is deposited on chain, the
withdrawal itself is requested through the payments layer (the player's withdraw form,
with its 2FA, is driven by test_withdraw_e2e.py)."""

from __future__ import annotations

import re
import secrets
import sqlite3
import time
from collections.abc import Iterator

import pytest
from eth_account import Account
from playwright.sync_api import Page, expect
from web3 import Web3

from casino_app.payments.eth import chain as eth_chain
from casino_app.payments.eth import keys
from casino_app.payments.signer.seed import account_xpub
from tests.e2e.conftest import DESKTOP, Inbox, LiveApp, eth_app
from tests.e2e.flows import goto, register, staff_sign_in
from tests.support.services import ANVIL_MNEMONIC, Anvil

pytestmark = [pytest.mark.e2e, pytest.mark.ethereum]

STAFF_PASSWORD = "safe staff pass phrase 1"
ADMIN_A, ADMIN_B, SUPPORT = "safe-a@example.com", "safe-b@example.com", "safe-s@example.com"
GWEI = 10**9
AMOUNT = "0.02"              # ETH, above the large threshold of 0.005
FEE_GWEI = 50_000


@pytest.fixture(scope="module")
def safe_app(smtp: Inbox, chain: Anvil, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[tuple[LiveApp, dict]]:
    devnet = eth_chain.deploy_devnet(chain.w3, chain.keys[0], chain.keys[7:10], threshold=2)
    w3 = chain.w3
    hot = keys.hot_wallet_address(account_xpub(ANVIL_MNEMONIC))
    for to in (hot, devnet["safe"]):  # gas for the hot wallet; the Safe's cold ETH
        w3.eth.wait_for_transaction_receipt(w3.eth.send_transaction(
            {"from": chain.accounts[1], "to": to, "value": Web3.to_wei(1, "ether")}))
    with eth_app(smtp, chain, tmp_path_factory.mktemp("safe"), {
        "CASINO_ETH_TOKENS": f"USDT:{devnet['USDT']},USDC:{devnet['USDC']}",
        "CASINO_ETH_BATCH_CONTRACT": devnet["batch"],
        "CASINO_ETH_SAFE_ADDRESS": devnet["safe"],
        "CASINO_ETH_BATCH_SECONDS": "1",
        "CASINO_ETH_CONFIRMATIONS": "1",
        "CASINO_ETH_WITHDRAW_MIN": "ETH:100000",
        "CASINO_ETH_WITHDRAW_MAX": "ETH:1000000000",
        "CASINO_ETH_WITHDRAW_FEE": f"ETH:{FEE_GWEI}",
        "CASINO_ETH_WITHDRAW_LARGE": "ETH:5000000",
    }, staff=((ADMIN_A, STAFF_PASSWORD, "admin"), (ADMIN_B, STAFF_PASSWORD, "admin"),
              (SUPPORT, STAFF_PASSWORD, "support"))) as app:
        yield app, devnet


def _request_withdrawal(app: LiveApp, player_id: str, to: str) -> int:
    """The player's request, as the wallet's withdraw form makes it after its 2FA check."""
    import subprocess
    import sys

    code = ("import sys; from casino_app.payments import withdrawals as w; "
            "print(w.request_withdrawal(*sys.argv[1:]).id)")
    done = subprocess.run([sys.executable, "-c", code, player_id, "ETH", AMOUNT, to,  # noqa: S603
                           "e2e-large"], env=app.env, text=True, capture_output=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.strip().splitlines()[-1])


def _sign_on_page(page: Page, wid: int, owner_key: str) -> None:
    """Read the safeTxHash shown, sign it with an owner key 'on the admin's own device'
    (cast wallet sign --no-hash), paste the signature."""
    row = page.locator("tr.withdrawal-awaiting").filter(has_text=f"#{wid}")
    safe_hash = row.locator(".safe-tx code").first.inner_text().strip()
    assert re.fullmatch(r"0x[0-9a-f]{64}", safe_hash), safe_hash
    signature = Web3.to_hex(eth_chain.sign_safe_tx(owner_key, bytes.fromhex(safe_hash[2:]))
                            .signature)
    page.get_by_label(f"Owner signature for withdrawal #{wid}").fill(signature)
    page.get_by_role("button", name=f"Approve and sign withdrawal #{wid}").click()
    expect(page.get_by_text(re.compile(r"Signature accepted for Safe transaction #\d+"))
           ).to_be_visible()


def test_two_admins_sign_a_large_withdrawal_and_the_safe_pays_it(  # noqa: ANN001
        browser, safe_app: tuple[LiveApp, dict], chain: Anvil) -> None:
    app, devnet = safe_app
    started = time.monotonic()
    contexts = []

    def device() -> Page:
        ctx = browser.new_context(viewport=DESKTOP, base_url=app.url)
        ctx.set_default_timeout(20_000)
        contexts.append(ctx)
        return ctx.new_page()

    try:
        # a player with 0.05 ETH deposited on chain asks for 0.02 ETH: a large withdrawal
        player = device()
        email = f"whale{secrets.token_hex(4)}@example.com"
        register(player, email, "Whale Player", "whale pass phrase 1")
        goto(player, "/wallet")
        deposit = player.locator("#deposit-address").inner_text().strip()
        chain.w3.eth.send_transaction({"from": chain.accounts[5], "to": deposit,
                                       "value": Web3.to_wei("0.05", "ether")})
        expect(player.locator(".deposit-row .deposit-state")).to_have_text("available")
        with sqlite3.connect(app.data_dir / "identity.db") as db:
            uid, pid = db.execute("SELECT id, player_id FROM users WHERE email = ?",
                                  (email,)).fetchone()
        dest = Account.create().address
        wid = _request_withdrawal(app, pid, dest)
        safe_before = chain.w3.eth.get_balance(devnet["safe"])

        # admin A: the withdrawal awaits approval; prepare the Safe transaction and sign it
        a = device()
        staff_sign_in(a, ADMIN_A, STAFF_PASSWORD, {})
        goto(a, "/admin/withdrawals")
        expect(a.get_by_text(devnet["safe"], exact=True)).to_be_visible()
        row = a.locator("tr.withdrawal-awaiting").filter(has_text=f"#{wid}")
        expect(row).to_contain_text(f"{AMOUNT} ETH")
        expect(row).to_contain_text(dest)
        expect(row).to_contain_text("none yet")
        expect(row.get_by_role("link", name=f"#{uid}")).to_be_visible()
        a.get_by_role("button", name=f"Prepare the Safe transaction of withdrawal #{wid}"
                      ).click()
        expect(a.get_by_text(re.compile(r"Safe transaction #\d+ prepared \(Safe nonce 0\)"))
               ).to_be_visible()
        safe_tx = row.locator(".safe-tx")
        expect(safe_tx).to_contain_text("Signatures: 0 of 2 · awaiting_signatures")
        expect(safe_tx).to_contain_text(str(Web3.to_wei(AMOUNT, "ether")))
        _sign_on_page(a, wid, chain.keys[7])
        expect(safe_tx).to_contain_text("Signatures: 1 of 2")
        expect(row).to_contain_text("awaiting_signatures")

        # support: the queue and the Safe transaction, no approve, sign or reject control
        s = device()
        staff_sign_in(s, SUPPORT, STAFF_PASSWORD, {})
        goto(s, "/admin/withdrawals")
        srow = s.locator("tr.withdrawal-awaiting").filter(has_text=f"#{wid}")
        expect(srow).to_contain_text(f"{AMOUNT} ETH")
        expect(srow).to_contain_text("Signatures: 1 of 2")
        expect(srow).to_contain_text("Admins approve or reject.")
        for name in ("Approve and sign", "Prepare", "Reject"):
            expect(s.get_by_role("button", name=re.compile(name))).to_have_count(0)
        expect(s.get_by_label(re.compile("Owner signature"))).to_have_count(0)
        expect(s.get_by_role("button", name="Request refill")).to_have_count(0)

        # admin B signs with another owner key: ready, then the job pays it from the Safe
        b = device()
        staff_sign_in(b, ADMIN_B, STAFF_PASSWORD, {})
        goto(b, "/admin/withdrawals")
        _sign_on_page(b, wid, chain.keys[8])
        brow = b.locator("tr.withdrawal-awaiting, tr.withdrawal-in-flight, "
                         "tr.withdrawal-recent").filter(has_text=f"#{wid}")
        expect(brow.first).to_contain_text(re.compile(r"Signatures: 2 of 2: .* · ready|batched"
                                                      r"|confirmed"))
        done = b.locator("tr.withdrawal-recent").filter(has_text=f"#{wid}")
        deadline = time.monotonic() + 30
        while not done.count() or "confirmed" not in done.inner_text():
            assert time.monotonic() < deadline, brow.first.inner_text()
            chain.mine(1)
            time.sleep(0.5)
            b.get_by_role("button", name="Refresh").click()
            time.sleep(0.3)
        expect(done).to_contain_text("confirmed")
        tx = done.locator("code[title]").get_attribute("title")
        assert tx and re.fullmatch(r"0x[0-9a-f]{64}", tx), tx
        expect(done).to_contain_text(re.compile(r"#\d+, #\d+"))  # both approvers
        assert chain.w3.eth.get_transaction_receipt(tx)["status"] == 1
        amount_wei = Web3.to_wei(AMOUNT, "ether")
        assert chain.w3.eth.get_balance(dest) == amount_wei
        assert chain.w3.eth.get_balance(devnet["safe"]) == safe_before - amount_wei
        goto(player, "/wallet")
        expect(player.locator(".withdrawal-row .withdrawal-state")).to_have_text("confirmed")
        expect(player.locator(".withdrawal-row .withdrawal-tx")).to_have_attribute("title", tx)
        assert time.monotonic() - started < 60
    finally:
        for ctx in contexts:
            ctx.close()
