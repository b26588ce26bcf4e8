"""The wallet page's withdraw form and withdrawal history, driven as the browser drives
them (a State tree with a session token) against real databases: an anonymous caller gets
nothing, a wrong or replayed 2FA code is refused with nothing reserved, a forged currency
is refused, a request key sent again returns the same withdrawal, every refusal is shown,
the history holds only the caller's withdrawals, and the push loop refreshes it when a
withdrawal changes. No Ethereum node is needed: requests only queue."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from casino_app.core.clock import utcnow
from casino_app.core.db import ledger_tx
from casino_app.core.settings import reset_settings_cache
from casino_app.payments import activity, ledger, withdrawals
from casino_app.payments.currencies import currency
from casino_app.payments.signer.seed import account_xpub
from casino_app.payments.withdrawal_models import Withdrawal
from casino_app.ui import push
from casino_app.ui.state.deposits import DepositsState
from casino_app.ui.state.wallet import WalletState
from casino_app.ui.state.withdraw import (
    WithdrawState,
    exact,
    short_address,
    total_text,
)
from tests.support.services import ANVIL_MNEMONIC
from tests.ui.test_deposits_state import USDT, FakeApp, _browser, _run
from tests.ui.test_state_security import _substate

GWEI = 10**9
FEE = 50_000                     # 0.00005 ETH
DEST = "0x52908400098527886E0F7030069857D2E4169EE7"   # EIP-55 test vector (mixed case)
KEY = "0123456789abcdef0123456789abcdef"
AUDIT = "withdrawal.requested"


@pytest.fixture
def env(app_env, monkeypatch):  # noqa: ANN001, ANN201
    """Ethereum configured (no node: requests only queue), ETH and USDT, limits and fees;
    two players with 0.05 ETH each."""
    from tests.users.helpers import register, user_row

    monkeypatch.setenv("CASINO_ETH_RPC_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("CASINO_ETH_XPUB", account_xpub(ANVIL_MNEMONIC))
    monkeypatch.setenv("CASINO_ETH_TOKENS", f"USDT:{USDT}")
    monkeypatch.setenv("CASINO_ETH_WITHDRAW_MIN", "ETH:100000,USDT:5000000")
    monkeypatch.setenv("CASINO_ETH_WITHDRAW_MAX", "ETH:1000000000,USDT:10000000000")
    monkeypatch.setenv("CASINO_ETH_WITHDRAW_FEE", f"ETH:{FEE},USDT:1000000")
    monkeypatch.setenv("CASINO_ETH_WITHDRAW_LARGE", "ETH:40000000")
    # the form's own behaviour: no cooling of new addresses, no lock after enabling 2FA
    # (both in tests/ui/test_withdrawal_protection.py)
    monkeypatch.setenv("CASINO_WITHDRAW_COOLING_HOURS", "0")
    monkeypatch.setenv("CASINO_WITHDRAW_LOCK_HOURS", "0")
    reset_settings_cache()
    push.reset()
    out = []
    for _ in range(2):
        token, addr = register()
        pid = user_row(addr).player_id
        with ledger_tx() as s:
            ledger.transfer(s, f"test-deposit:{pid}", "deposit",
                            ledger.house_account(s, "ETH", "custody"),
                            ledger.player_account(s, pid, "ETH"), 50_000_000)
        out.append((token, pid))
    yield out
    push.reset()


def _tab(token: str, client: str = "tab-1") -> Any:
    root = _browser(token, client=client)
    _run(_substate(root, DepositsState), "on_open")
    state = _substate(root, WithdrawState)
    _run(state, "on_open")
    return state


def _form(amount: str = "0.01", address: str = DEST, code: str = "ETH", **extra: Any
          ) -> dict[str, Any]:
    """The form as sent without 2FA: confirmed with the password (with 2FA on the
    server asks the code and ignores these)."""
    from tests.users.helpers import PASSWORD

    return {"currency": code, "amount": amount, "address": address, "method": "password",
            "password": PASSWORD, **extra}


def _count() -> int:
    with ledger_tx(readonly=True) as s:
        return s.execute(select(func.count()).select_from(Withdrawal)).scalar_one()


def _reserved(pid: str) -> int:
    with ledger_tx(readonly=True) as s:
        return ledger.player_balances(s, pid)["ETH"].reserved


def _audits() -> list[dict[str, Any]]:
    from tests.users.helpers import audit_rows

    return [json.loads(r.detail) for r in audit_rows(AUDIT)]


# --- pure helpers ----------------------------------------------------------------------------

def test_amounts_read_exactly() -> None:
    eth = currency("ETH")
    assert exact(eth, 50_000) == "0.00005"
    assert exact(eth, 1_234_500_000_000) == "1234.5"
    assert exact(eth, 0) == "0"
    assert total_text("ETH", "0.01", 50_000) == "0.010050"   # as every amount is shown
    assert total_text("ETH", "abc", 50_000) == "" == total_text("ETH", "0", 50_000)
    assert total_text("ETH", "0.0000000001", 0) == ""   # more decimals than ETH has
    assert short_address(DEST) == "0x529084…169EE7"



def test_a_rejection_whose_safe_payment_was_signed_says_the_money_is_still_reserved() -> None:
    from casino_app.ui.state.withdraw import row

    now = utcnow()
    shown = row(withdrawals.WithdrawalView(7, "ETH", 20_000_000, 50_000, DEST, "rejecting",
                                           None, "unclear", now, now))
    assert (shown.label, shown.state) == ("rejected", "rejecting")
    assert "stay reserved" in shown.note and "back in your balance" in shown.note


# --- handlers --------------------------------------------------------------------------------

def test_the_form_shows_limits_fee_total_and_withdrawable(env) -> None:  # noqa: ANN001
    (token, _), _ = env
    state = _tab(token)
    assert [o.code for o in state.options] == ["ETH", "USDT"]
    eth = state.options[0]
    # one format per currency, as in the header ("0.050000 ETH"); "Max" fills the exact
    # amount into the box
    assert (eth.fee, eth.minimum, eth.maximum, eth.available, eth.most, eth.large) == \
        ("0.000050", "0.000100", "1.000000", "0.050000", "0.04995", "0.040000")
    assert state.options[1].available == "0.00" and state.options[1].most == "0"
    _run(state, "edit_amount", "0.01")
    assert state.totals == {"ETH": "0.010050", "USDT": "1.01"}
    _run(state, "fill", "ETH", "max")
    assert state.amount == "0.04995" and state.totals["ETH"] == "0.050000"
    _run(state, "fill", "ETH", "half")
    assert state.amount == "0.024975"
    for junk in (None, 42, "x" * 41, ["1"]):
        _run(state, "edit_amount", junk)
        assert state.amount == "0.024975"
    for code, part in (("BTC", "max"), ("ETH", "all"), (None, "max"), ({}, [])):
        _run(state, "fill", code, part)
        assert state.amount == "0.024975"


def test_a_request_reserves_amount_and_fee_and_shows_queued(env) -> None:  # noqa: ANN001
    (token, pid), _ = env
    state = _tab(token)
    form_id = state.form_id
    _run(state, "edit_amount", "0.01")
    out = _run(state, "request", _form(), KEY)
    assert state.errors == {} and state.message == ""
    assert state.notice.startswith("Withdrawal of 0.010000 ETH to 0x529084…169EE7 queued")
    assert _reserved(pid) == 10_000_000 + FEE
    [row] = state.rows
    assert (row.amount, row.fee, row.address, row.state, row.label, row.tx) == \
        ("0.010000", "0.000050", DEST, "queued", "queued", "")
    # the form clears (a new form id: the browser makes a new key), the figures follow
    assert state.amount == "" and state.form_id != form_id
    assert state.options[0].available == "0.039950"
    root = state.parent_state
    assert _substate(root, WalletState).balances.get("ETH") in (None, "0.039950")
    assert _substate(root, DepositsState).cards[0].withdrawable == "0.039950"
    assert "ref_withdraw_code" in repr(out)  # the code field is emptied
    [audit] = _audits()
    assert audit["withdrawal_id"] == row.id and audit["amount"] == 10_000_000 \
        and audit["address"] == DEST and audit["replayed"] is False

    # no cancel: the only handlers are the form's and the page's
    assert set(WithdrawState.event_handlers) - {"setvar"} == \
        {"on_open", "edit_amount", "fill", "request", "choose_method", "change_allow_list"}


def test_a_key_sent_again_returns_the_same_withdrawal(env) -> None:  # noqa: ANN001
    (token, pid), _ = env
    state = _tab(token)
    _run(state, "request", _form(), KEY)
    first = state.notice
    # a double click or a resent event in the same tab: the same answer, nothing new
    _run(state, "request", _form(), KEY)
    assert state.notice == first and state.message == ""
    # another tab (a reconnect to a fresh state): the service answers with the first one
    other = _tab(token, client="tab-2")
    _run(other, "request", _form(), KEY)
    assert other.notice == first and [r.id for r in other.rows] == [r.id for r in state.rows]
    assert _count() == 1 and _reserved(pid) == 10_000_000 + FEE
    # the same key with other values is refused
    _run(other, "request", _form("0.02"), KEY)
    assert "already used" in other.message and _count() == 1


def test_a_forged_currency_or_key_is_refused(env) -> None:  # noqa: ANN001
    (token, pid), _ = env
    state = _tab(token)
    for junk in ("BTC", "FUN", "eth", "USDC", "<script>", "", None, 42, ["ETH"], {"c": 1}):
        _run(state, "request", _form(code=junk), KEY)
        assert state.message == "Choose one of the currencies shown.", junk
    for key in ("", "short", "x" * 101, None, 42, "a b" * 10, "ü" * 20):
        _run(state, "request", _form(), key)
        assert "request id" in state.message, key
    for form in (None, "x", [], {}):
        _run(state, "request", form, KEY)
        assert state.message
    assert _count() == 0 and _reserved(pid) == 0 and _audits() == []


def test_every_refusal_is_shown_and_nothing_is_reserved(env) -> None:  # noqa: ANN001
    (token, pid), _ = env
    state = _tab(token)
    cases = [
        (_form(address="0x52908400098527886e0F7030069857D2E4169EE7"), "address", "checksum"),
        (_form(address="0x1234"), "address", "40 hex"),
        (_form(address="0x" + "0" * 40), "address", "zero address"),
        (_form(address=None), "address", "Ethereum address"),
        (_form("0.00001"), "amount", "smallest withdrawal is 0.000100 ETH"),
        (_form("2"), "amount", "largest withdrawal is 1.000000 ETH"),
        (_form("0.0000000001"), "amount", "at most 9 decimals"),
        (_form("-1"), "amount", "positive"),
        # the pen-test finding: a comma was read as a thousands separator
        (_form("0,01"), "amount", "Use a dot for decimals and no thousands separators"),
        (_form("1,000"), "amount", "Use a dot for decimals and no thousands separators"),
        (_form("1.000,50"), "amount", "Use a dot for decimals and no thousands separators"),
        (_form("1 000"), "amount", "Use a dot for decimals and no thousands separators"),
        (_form("1_000"), "amount", "Use a dot for decimals and no thousands separators"),
        (_form("1e-2"), "amount", "not an amount"),
        (_form(""), "amount", "Enter an amount"),
        (_form(None), "amount", "Enter an amount"),
        (_form("0.05"), "", "does not cover the amount and the fee"),
        (_form("10", code="USDT"), "", "does not cover"),
    ]
    for form, field, text in cases:
        _run(state, "request", form, KEY)
        shown = state.errors.get(field, "") if field else state.message
        assert text in shown, (form, state.errors, state.message)
    assert _count() == 0 and _reserved(pid) == 0 and _audits() == []


def test_a_comma_in_the_amount_is_said_while_typing_and_a_dot_withdraws(env) -> None:  # noqa: ANN001
    (token, pid), _ = env
    state = _tab(token)
    _run(state, "edit_amount", "0,05")
    assert "Use a dot for decimals" in state.errors["amount"]
    assert state.totals["ETH"] == ""          # no total for an amount that is not one
    _run(state, "edit_amount", "0.05")       # fixed: the message goes
    assert "amount" not in state.errors and state.totals["ETH"] == "0.050050"
    _run(state, "edit_amount", "0.01")
    _run(state, "request", _form("0.01"), KEY)
    assert "queued" in state.notice and _reserved(pid) == 10_000_000 + FEE


def test_with_2fa_a_current_code_is_needed_once(env) -> None:  # noqa: ANN001
    from tests.users.helpers import code_at, enable_2fa

    (token, pid), _ = env
    secret, recovery, token = enable_2fa(token)
    state = _tab(token)
    now = datetime.now(UTC)
    for code, text in ((None, "ode"), ("", "ode"), ("000000", "not valid"),
                       (code_at(secret, now, -3), "not valid")):
        _run(state, "request", _form() | {"code": code}, KEY)
        assert text in state.errors.get("code", ""), (code, state.errors, state.message)
    assert _count() == 0 and _reserved(pid) == 0 and _audits() == []

    good = code_at(secret, now, 1)   # the next step: accepted (one step of drift)
    _run(state, "request", _form() | {"code": good}, KEY)
    assert "queued" in state.notice and _reserved(pid) == 10_000_000 + FEE
    # the same code again, for another withdrawal: refused, nothing more reserved
    _run(state, "request", _form("0.02") | {"code": good}, KEY[::-1])
    assert "not valid" in state.errors["code"] and state.notice == ""
    assert _count() == 1 and _reserved(pid) == 10_000_000 + FEE
    # a refused request does not spend the code: a recovery code works once
    _run(state, "request", _form("2") | {"code": recovery[0]}, KEY[::-1])
    assert "largest" in state.errors["amount"]
    _run(state, "request", _form("0.02") | {"code": recovery[0]}, KEY[::-1])
    assert "queued" in state.notice and _count() == 2
    _run(state, "request", _form("0.001") | {"code": recovery[0]}, "f" * 32)
    assert "not valid" in state.errors.get("code", ""), (state.errors, state.message)
    assert _count() == 2
    # ten code checks in 15 minutes (the enrolment's password check counts; the amount
    # refused before the code was asked does not): then a pause
    _run(state, "request", _form("0.001") | {"code": code_at(secret, now, 1)}, "e" * 32)
    assert "not valid" in state.errors.get("code", "")
    _run(state, "request", _form("0.001") | {"code": code_at(secret, now, 1)}, "e" * 32)
    assert "Too many attempts" in state.message and _count() == 2
    assert [a["amount"] for a in _audits()] == [10_000_000, 20_000_000]


def test_a_crash_between_the_two_databases_loses_neither_audit_nor_code(env, monkeypatch
                                                                         ) -> None:  # noqa: ANN001
    """The withdrawal commits in the ledger database, the code's use and the audit row in
    the identity database: a crash between the two commits (here: the audit write fails)
    leaves the withdrawal staged with its audit row; the audit-outbox job writes it once
    and spends the code, which then cannot pay a second withdrawal."""
    from casino_app.security import outbox
    from casino_app.security.outbox_models import AuditOutbox
    from tests.users.helpers import code_at, enable_2fa

    (token, pid), _ = env
    secret, _recovery, token = enable_2fa(token)
    state = _tab(token)
    good = code_at(secret, datetime.now(UTC), 1)  # the current step was spent enrolling

    def crash(ids, entry):  # noqa: ANN001, ANN202
        raise RuntimeError("power cut")

    monkeypatch.setattr(outbox, "deliver", crash)
    _run(state, "request", _form() | {"code": good}, KEY)
    monkeypatch.undo()
    # the money side committed (the player sees an error and the reservation) ...
    assert _count() == 1 and _reserved(pid) == 10_000_000 + FEE
    assert _audits() == []
    # ... the job delivers the staged row (a younger row waits for its inline delivery)
    assert outbox.deliver_pending() == {}
    assert outbox.deliver_pending(grace_seconds=0) == {"delivered": 1, "recovered": 1}
    [audit] = _audits()
    with ledger_tx(readonly=True) as s:
        wid = s.execute(select(Withdrawal.id)).scalar_one()
        row = s.execute(select(AuditOutbox)).scalar_one()
    assert audit["withdrawal_id"] == wid and audit["outbox_id"] == row.id \
        and "staged_at" in audit and row.delivered_at is not None
    # delivered once, whatever runs again
    assert outbox.deliver_pending(grace_seconds=0) == {}
    assert len(_audits()) == 1
    # and the code is spent: it cannot authorise another withdrawal
    _run(state, "request", _form("0.02") | {"code": good}, KEY[::-1])
    assert "not valid" in state.errors.get("code", "") and _count() == 1


def test_a_delivery_marked_in_one_database_only_is_not_written_twice(env) -> None:  # noqa: ANN001
    """Inline delivery committed (audit row + marker) but the ledger row was not marked
    delivered (a crash right after): the job marks it without a second audit row."""
    from casino_app.security import outbox
    from casino_app.security.outbox_models import AuditOutbox

    (token, pid), _ = env
    state = _tab(token)
    real = outbox.mark_delivered
    outbox.mark_delivered = lambda done: (_ for _ in ()).throw(RuntimeError("power cut"))
    try:
        _run(state, "request", _form(), KEY)
    finally:
        outbox.mark_delivered = real
    assert "queued" in state.notice and len(_audits()) == 1
    assert outbox.deliver_pending(grace_seconds=0) == {"delivered": 1, "recovered": 0}
    assert len(_audits()) == 1
    with ledger_tx(readonly=True) as s:
        assert s.execute(select(AuditOutbox.delivered_at)).scalar_one() is not None


def test_the_history_shows_only_the_callers_withdrawals(env) -> None:  # noqa: ANN001
    (token, pid), (other_token, other_pid) = env
    mine = _tab(token)
    theirs = _tab(other_token, client="tab-2")
    _run(mine, "request", _form("0.01"), KEY)
    _run(theirs, "request", _form("0.02"), KEY[::-1])
    _run(mine, "request", _form("0.003"), "a" * 32)
    assert [r.amount for r in mine.rows] == ["0.003000", "0.010000"]  # newest first
    assert [r.amount for r in theirs.rows] == ["0.020000"]
    _run(theirs, "on_open")
    assert [r.amount for r in theirs.rows] == ["0.020000"]
    assert _reserved(other_pid) == 20_000_000 + FEE


def test_an_anonymous_caller_gets_nothing(env) -> None:  # noqa: ANN001
    state = _substate(_browser(""), WithdrawState)
    for name, args in (("on_open", []), ("request", [_form(), KEY])):
        out = _run(state, name, *args)
        assert "/login" in repr(out)
        assert state.options == [] and state.rows == [] and state.notice == ""
    assert _count() == 0 and _audits() == []


def test_the_push_loop_refreshes_the_history_when_a_withdrawal_changes(env) -> None:  # noqa: ANN001
    (token, pid), (other_token, _) = env
    app = FakeApp()
    tab = _browser(token, client="t1")
    other = _browser(other_token, client="t2")
    for client, root in (("t1", tab), ("t2", other)):
        app.connect(client, root)
        _run(_substate(root, DepositsState), "on_open")
        _run(_substate(root, WithdrawState), "on_open")
    pusher = push.Pusher(app)
    asyncio.run(pusher.once())
    w = withdrawals.request_withdrawal(pid, "ETH", "0.01", DEST, KEY)
    app.modified.clear()
    asyncio.run(pusher.once())
    assert app.modified == ["t1"]
    assert [r.state for r in _substate(tab, WithdrawState).rows] == ["queued"]
    asyncio.run(pusher.once())
    app.modified.clear()
    asyncio.run(pusher.once())
    assert app.modified == []   # reported once
    # the batcher confirms it (as it would: state, batch and time change together)
    with ledger_tx() as s:
        row = s.get(Withdrawal, w.id)
        row.state, row.updated_at = "failed", utcnow()
    asyncio.run(pusher.once())
    assert app.modified == ["t1"]
    [shown] = _substate(tab, WithdrawState).rows
    assert (shown.state, shown.label) == ("failed", "failed")
    assert "back in your balance" in shown.note


def test_the_tracker_reports_withdrawal_changes(env) -> None:  # noqa: ANN001
    (_, a), (_, b) = env
    tracker = activity.ChangeTracker(utcnow())

    def poll(watched: set[str]) -> set[str]:
        with ledger_tx(readonly=True) as s:
            return tracker.poll(s, watched)[0]

    assert poll({a, b}) == set()
    withdrawals.request_withdrawal(b, "ETH", "0.01", DEST, KEY)
    assert poll({a, b}) == {b}
    assert poll({a, b}) == set()


# --- Bitcoin ---------------------------------------------------------------------------------

BTC_MNEMONIC = "abandon " * 11 + "about"


def _btc(monkeypatch) -> None:  # noqa: ANN001
    """A Bitcoin node configured (none runs: requests only queue), bcoin's regtest."""
    from casino_app.payments.btc.network import PRESETS
    from casino_app.payments.signer import btc as signer_btc

    monkeypatch.setenv("CASINO_BTC_RPC_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("CASINO_BTC_NETWORK", "regtest-bcoin")
    monkeypatch.setenv("CASINO_BTC_XPUB", signer_btc.account_xpub(PRESETS["regtest-bcoin"],
                                                                  BTC_MNEMONIC))
    monkeypatch.setenv("CASINO_BTC_WITHDRAW_MIN", "20000")
    monkeypatch.setenv("CASINO_BTC_WITHDRAW_MAX", "50000000")
    monkeypatch.setenv("CASINO_BTC_WITHDRAW_FEE", "1500")
    monkeypatch.setenv("CASINO_BTC_WITHDRAW_LARGE", "10000000")
    reset_settings_cache()


def test_btc_is_offered_with_its_network_address_hint_limits_and_fee(env, monkeypatch) -> None:  # noqa: ANN001
    from casino_app.payments.btc import bech32

    _btc(monkeypatch)
    (token, pid), _ = env
    with ledger_tx() as s:
        ledger.transfer(s, f"test-deposit-btc:{pid}", "deposit",
                        ledger.house_account(s, "BTC", "custody"),
                        ledger.player_account(s, pid, "BTC"), 1_000_000)
    state = _tab(token)
    assert [o.code for o in state.options] == ["ETH", "USDT", "BTC"]
    btc = state.options[2]
    assert (btc.network, btc.placeholder, btc.fee, btc.minimum, btc.maximum, btc.available,
            btc.most, btc.large) == ("Bitcoin regtest (bcoin)", "rb1q…", "0.00001500",
                                     "0.00020000", "0.50000000", "0.01000000", "0.009985",
                                     "0.10000000")
    assert btc.address_title.startswith("rb1…") and btc.pattern
    assert state.options[0].network == "Ethereum" and state.options[0].placeholder == "0x…"
    deposits = _substate(state.parent_state, DepositsState)
    assert deposits.codes == ["ETH", "USDT", "BTC"]   # BTC has its withdraw form only
    _run(deposits, "show", "BTC")
    assert deposits.selected == "BTC"
    _run(state, "edit_amount", "0.001")
    assert state.totals["BTC"] == "0.00101500"
    mainnet = bech32.encode_segwit("bc", 0, bytes(range(20)))
    for address, text in ((mainnet, "Bitcoin mainnet"), (DEST, "Ethereum address"),
                          (None, "Enter your Bitcoin regtest (bcoin) address: rb1…")):
        _run(state, "request", _form("0.001", address=address, code="BTC"), KEY)
        assert text in state.errors.get("address", ""), (address, state.errors)
    assert _count() == 0
    to = bech32.encode_segwit("rb", 0, bytes(range(20)))
    _run(state, "request", _form("0.001", address=to, code="BTC"), KEY)
    assert state.notice.startswith("Withdrawal of 0.00100000 BTC to rb1qqqqs…") and \
        "queued" in state.notice
    [row] = state.rows
    assert (row.currency, row.amount, row.fee, row.address, row.state) == \
        ("BTC", "0.00100000", "0.00001500", to, "queued")
    with ledger_tx(readonly=True) as s:
        assert ledger.player_balances(s, pid)["BTC"].reserved == 101_500


def test_a_bitcoin_only_server_offers_btc_withdrawals(env, monkeypatch) -> None:  # noqa: ANN001
    _btc(monkeypatch)
    monkeypatch.setenv("CASINO_ETH_RPC_URL", "")
    reset_settings_cache()
    (token, _), _ = env
    state = _tab(token)
    deposits = _substate(state.parent_state, DepositsState)
    assert deposits.enabled and deposits.codes == ["BTC"] and deposits.selected == "BTC"
    assert deposits.address.startswith("rb1q")  # the BTC tab: its deposit card
    assert [o.code for o in state.options] == ["BTC"]
    assert state.options[0].placeholder == "rb1q…"


def test_the_wallet_page_opens_with_one_read_of_the_whole_wallet(env, monkeypatch) -> None:  # noqa: ANN001
    """The page's on_load reads the wallet once (payments.wallet_view: one transaction)
    and shows it in the header, the deposit cards and the withdraw form; the tab is then
    watched by the live push."""
    from casino_app.payments import wallet_view

    (token, pid), _ = env
    reads: list[str] = []
    real = wallet_view.read

    def read(player_id: str, **kw: Any) -> Any:
        reads.append(player_id)
        return real(player_id, **kw)

    monkeypatch.setattr(wallet_view, "read", read)
    root = _browser(token, client="one-read")
    _run(_substate(root, WithdrawState), "on_open")
    assert reads == [pid]
    header, cards = _substate(root, WalletState), _substate(root, DepositsState)
    form = _substate(root, WithdrawState)
    assert header.loaded and header.balances["ETH"] == "0.050000"
    assert cards.loaded and {c.code for c in cards.cards} >= {"ETH", "USDT"}
    assert {o.code: o.available for o in form.options}["ETH"] == "0.050000"
    assert push.watched_tabs() == {"one-read": pid}


def test_the_limits_line_has_no_maximum_when_none_is_set(monkeypatch) -> None:  # noqa: ANN001
    """It read "From 0.000000001 to 4611686018.427387904 ETH per withdrawal"."""
    from casino_app.payments import withdrawals as w
    from casino_app.payments.chains import AddressHint, Limits
    from casino_app.payments.currencies import MAX_AMOUNT
    from casino_app.ui.state import withdraw as ui

    monkeypatch.setattr(w, "limits", lambda code: Limits(code, 1, MAX_AMOUNT, 0, None))
    monkeypatch.setattr(w, "address_hint",
                        lambda code: AddressHint("Ethereum", "0x…", "", ""))
    [eth] = ui.options({"ETH": 0}, ["ETH"])
    assert (eth.minimum, eth.maximum, eth.available, eth.fee) == \
        ("0.000000001", "", "0.000000", "0.000000")
