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
SHOWN = "0.020000 ETH"       # as every page shows it (Currency.text)
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
        uid, pid = app.account(email)
        dest = Account.create().address
        wid = _request_withdrawal(app, pid, dest)
        safe_before = chain.w3.eth.get_balance(devnet["safe"])

        # admin A: the withdrawal awaits approval; prepare the Safe transaction and sign it
        a = device()
        staff_sign_in(a, ADMIN_A, STAFF_PASSWORD, {})
        goto(a, "/admin/withdrawals")
        expect(a.get_by_text(devnet["safe"], exact=True)).to_be_visible()
        row = a.locator("tr.withdrawal-awaiting").filter(has_text=f"#{wid}")
        expect(row).to_contain_text(SHOWN)
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
        expect(srow).to_contain_text(SHOWN)
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


# --- Bitcoin: the cold wallet pays by PSBT ----------------------------------------------------

BTC_AMOUNT = 2_000_000   # sat, above the large threshold of 1,000,000
BTC_HOT_SEED = "abandon " * 11 + "about"


@pytest.fixture(scope="module")
def btc_app(smtp: Inbox, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[tuple[LiveApp, object, list]]:
    """``casino run`` following a private bcoin regtest node, with the 2-of-3 cold wallet
    of the test cosigners (tests/support/cosigners.py), two admins and support."""
    from casino_app.payments.signer import btc as btc_signer
    from tests.e2e.conftest import ROOT, app_env, casino_cli
    from tests.support.bitcoin import NETWORK, BcoinNode
    from tests.support.cosigners import cold_keys_setting, cosigners
    from tests.support.services import free_port, start_casino, stop_casino

    node = BcoinNode().start()
    signers = cosigners(NETWORK)
    tmp = tmp_path_factory.mktemp("btc-cold")
    port = free_port()
    env = app_env(smtp, tmp, port)
    env.update({
        "CASINO_ETH_HOT_SEED": BTC_HOT_SEED,
        "CASINO_BTC_NETWORK": "regtest-bcoin", "CASINO_BTC_RPC_URL": node.url,
        "CASINO_BTC_RPC_USER": "hashhouse", "CASINO_BTC_RPC_PASSWORD": node.api_key,
        "CASINO_BTC_RPC_DIALECT": "bcoin",
        "CASINO_BTC_XPUB": btc_signer.account_xpub(NETWORK, BTC_HOT_SEED),
        "CASINO_BTC_COLD_KEYS": cold_keys_setting(signers),
        "CASINO_BTC_CONFIRMATIONS": "1", "CASINO_BTC_WATCH_SECONDS": "0.5",
        "CASINO_BTC_BATCH_SECONDS": "1", "CASINO_BTC_WITHDRAW_FEE": "1000",
        "CASINO_BTC_WITHDRAW_LARGE": "1000000",
    })
    casino_cli(env, "migrate")
    for email_, role in ((ADMIN_A, "admin"), (ADMIN_B, "admin"), (SUPPORT, "support")):
        casino_cli(env, "admin", "create", "--email", email_, "--role", role,
                   stdin=STAFF_PASSWORD + "\n")
    log = tmp / "app.log"
    proc = start_casino(env, port, log, ROOT)
    try:
        yield LiveApp(f"http://localhost:{port}", tmp / "data", env, log), node, signers
    finally:
        stop_casino(proc)
        node.stop()


def _btc_withdrawal(app: LiveApp, to: str) -> int:
    """A player's large BTC withdrawal, reserved (their balance credited by the test)."""
    import subprocess
    import sys

    code = ("import sys; from casino_app.core.db import ledger_tx; "
            "from casino_app.payments import ledger, withdrawals as w\n"
            "with ledger_tx() as s:\n"
            "    ledger.transfer(s, 'e2e-btc-credit', 'deposit', "
            "ledger.house_account(s, 'BTC', 'custody'), "
            "ledger.player_account(s, 'p-e2e-btc', 'BTC'), 5_000_000)\n"
            "print(w.request_withdrawal('p-e2e-btc', 'BTC', int(sys.argv[2]), sys.argv[1], "
            "'e2e-btc-large').id)")
    done = subprocess.run([sys.executable, "-c", code, to, str(BTC_AMOUNT)],  # noqa: S603
                          env=app.env, text=True, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.strip().splitlines()[-1])


def _download_psbt(page: Page, wid: int) -> bytes:
    with page.expect_download() as got:
        page.get_by_role("link", name=f"Download the PSBT of withdrawal #{wid}").click()
    path = got.value.path()
    assert got.value.suggested_filename.endswith(".psbt")
    return path.read_bytes()


@pytest.mark.bitcoin
def test_two_admins_sign_a_large_btc_withdrawal_by_psbt_and_the_cold_wallet_pays_it(
        browser, btc_app: tuple[LiveApp, object, list], tmp_path) -> None:  # noqa: ANN001
    import base64 as b64

    from tests.support.bitcoin import NETWORK, fresh_address
    from tests.support.cosigners import wallet_of

    app, node, signers = btc_app
    contexts = []

    def device() -> Page:
        ctx = browser.new_context(viewport=DESKTOP, base_url=app.url, accept_downloads=True)
        ctx.set_default_timeout(20_000)
        contexts.append(ctx)
        return ctx.new_page()

    try:
        wallet = wallet_of(signers, NETWORK)
        node.fund(wallet.receive_address(0).address, 5_000_000)  # the watcher records it
        time.sleep(2)
        dest = fresh_address()
        wid = _btc_withdrawal(app, dest)

        # admin A: prepares the PSBT, downloads it, signs it on "their device", uploads
        a = device()
        staff_sign_in(a, ADMIN_A, STAFF_PASSWORD, {})
        goto(a, "/admin/withdrawals")
        row = a.locator("tr.withdrawal-awaiting").filter(has_text=f"#{wid}")
        expect(row).to_contain_text("0.02000000 BTC")
        expect(row).to_contain_text(dest)
        a.get_by_role("button", name=f"Prepare the PSBT of withdrawal #{wid}").click()
        expect(a.get_by_text(re.compile(r"PSBT #\d+ prepared"))).to_be_visible()
        expect(row.locator(".psbt-approvals")).to_contain_text("0 of 2 · awaiting_signatures")
        expect(row.locator("img.psbt-qr")).to_be_visible()
        signed_a = signers[0].sign(_download_psbt(a, wid))
        file_a = tmp_path / "signed-a.psbt"
        file_a.write_bytes(signed_a)
        row.get_by_label(f"Signed PSBT file for withdrawal #{wid}").set_input_files(file_a)
        expect(row.get_by_label(f"Signed PSBT for withdrawal #{wid}")).not_to_have_value("")
        row.get_by_role("button", name=f"Upload the signed PSBT of withdrawal #{wid}").click()
        expect(a.get_by_text(re.compile(r"accepted for payment #\d+ \(1 of 2\)"))
               ).to_be_visible()
        expect(row.locator(".psbt-approvals")).to_contain_text("1 of 2")

        # support: the queue and the PSBT, no prepare, upload or reject control
        s = device()
        staff_sign_in(s, SUPPORT, STAFF_PASSWORD, {})
        goto(s, "/admin/withdrawals")
        srow = s.locator("tr.withdrawal-awaiting").filter(has_text=f"#{wid}")
        expect(srow.locator(".psbt-approvals")).to_contain_text("1 of 2")
        expect(srow).to_contain_text("Admins approve or reject.")
        expect(s.get_by_role("button", name=re.compile("Upload the signed PSBT"))
               ).to_have_count(0)
        expect(s.get_by_role("button", name=re.compile("Prepare"))).to_have_count(0)

        # admin B pastes the base64 of the PSBT their cosigner signed: recorded, broadcast
        b = device()
        staff_sign_in(b, ADMIN_B, STAFF_PASSWORD, {})
        goto(b, "/admin/withdrawals")
        brow = b.locator("tr.withdrawal-awaiting").filter(has_text=f"#{wid}")
        text = brow.locator("textarea.psbt-base64").input_value()
        brow.get_by_label(f"Signed PSBT for withdrawal #{wid}").fill(
            b64.b64encode(signers[2].sign(text)).decode())
        brow.get_by_role("button", name=f"Upload the signed PSBT of withdrawal #{wid}"
                         ).click()
        expect(b.get_by_text(re.compile("recorded and broadcast"))).to_be_visible()
        done = b.locator("tr.withdrawal-recent").filter(has_text=f"#{wid}")
        deadline = time.monotonic() + 60
        while not done.count() or "confirmed" not in done.inner_text():
            assert time.monotonic() < deadline, b.content()[-2000:]
            node.mine(1)
            time.sleep(1)
            b.get_by_role("button", name="Refresh").click()
            time.sleep(0.3)
        expect(done).to_contain_text(re.compile(r"#\d+, #\d+"))  # both approvers
        received = sum(int(c["value"]) for c in node.rest(f"/coin/address/{dest}"))
        assert received == BTC_AMOUNT
    finally:
        for ctx in contexts:
            ctx.close()
