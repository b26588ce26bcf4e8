"""The proof of reserves in Chromium: anyone sees the newest signed proof; a player with a
real-money balance checks their own leaf in the browser, with no server call."""

from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import LiveApp
from tests.e2e.flows import goto, register

pytestmark = pytest.mark.e2e


def _credit(app: LiveApp, player_id: str, code: str, amount: int) -> None:
    script = ("import sys; from casino_app.core.db import ledger_tx; "
              "from casino_app.payments import ledger\n"
              "with ledger_tx() as s:\n"
              "    ledger.transfer(s, 'e2e-reserves-' + sys.argv[1], 'deposit', "
              "ledger.house_account(s, sys.argv[2], 'custody'), "
              "ledger.player_account(s, sys.argv[1], sys.argv[2]), int(sys.argv[3]))\n")
    done = subprocess.run([sys.executable, "-c", script, player_id, code, str(amount)],  # noqa: S603
                          env=app.env, text=True, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_a_player_checks_their_balance_in_the_proof(live_app: LiveApp, new_context) -> None:  # noqa: ANN001
    page = new_context().new_page()
    email = f"reserves-{secrets.token_hex(4)}@example.com"
    register(page, email, "Reserve Checker", "reserves pass 123")
    _, player_id = live_app.account(email)
    _credit(live_app, player_id, "ETH", 250_000_000)
    published = subprocess.run(  # not covered without a chain: exit 1, still published
        [str(Path(sys.executable).parent / "casino"), "reserves", "publish"],  # noqa: S603
        env=live_app.env, text=True, capture_output=True, timeout=120)
    assert "NOT COVERED" in published.stdout, published.stderr
    goto(page, "/reserves")
    eth = page.locator("#reserves-ETH")
    expect(eth).to_contain_text("not covered")
    expect(eth).to_contain_text("Owed to players")
    page.context.set_offline(True)  # the check sends nothing
    page.get_by_role("button", name="Check my balances").click()
    expect(page.locator("#reserves-result")).to_contain_text(
        "ETH: your balance is in the published total")
    page.context.set_offline(False)
    # the signed file is public
    assert page.request.get("/api/reserves/latest.json").ok

