"""Staff custody in Chromium: an admin sees a player's hold on the staff player page and
releases it with a note; the wallets page says no node is configured; "Reconcile now"
refuses politely without a node (the app under test runs without a chain)."""

from __future__ import annotations

import sqlite3
import uuid

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import LiveApp
from tests.e2e.flows import goto, register, staff_sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_an_admin_releases_a_hold_and_reads_the_custody_pages(new_context,  # noqa: ANN001
                                                              live_app: LiveApp) -> None:
    email = f"held-{uuid.uuid4().hex[:8]}@example.com"
    register(new_context().new_page(), email, "Held Player", "a long pass phrase")
    uid, pid = live_app.account(email)
    # what the watcher leaves when a reorg reverses a deposit the player had spent
    with sqlite3.connect(live_app.data_dir / "ledger.db") as db:
        hold = db.execute("INSERT INTO player_holds (player_id, reason, detail, created_at) "
                          "VALUES (?, 'deposit_reversed', 'e2e: owes 5', "
                          "datetime('now'))", (pid,)).lastrowid

    staff = new_context().new_page()
    staff_sign_in(staff)
    goto(staff, f"/admin/player?id={uid}")
    row = staff.locator("tr.hold-row")
    expect(row).to_contain_text("deposit_reversed")
    expect(row).to_contain_text("Open")
    staff.get_by_label(f"Note to release hold #{hold}").fill("e2e: paid back")
    staff.get_by_role("button", name=f"Release hold #{hold}").click()
    expect(staff.get_by_text(f"Hold #{hold} released")).to_be_visible()
    expect(row).to_contain_text("Released")
    with sqlite3.connect(live_app.data_dir / "ledger.db") as db:
        assert db.execute("SELECT released_by FROM player_holds WHERE id = ?",
                          (hold,)).fetchone()[0] is not None

    goto(staff, "/admin/wallets")
    expect(staff.locator("#node-status")).to_contain_text("No node is configured")
    expect(staff.locator("tr.wallet-row").first).to_contain_text("ETH")

    goto(staff, "/admin/reconcile")
    expect(staff.get_by_text("No reconciliation has run yet.")).to_be_visible()
    staff.locator("#reconcile-now").click()
    expect(staff.get_by_text("No Ethereum node is configured")).to_be_visible()
