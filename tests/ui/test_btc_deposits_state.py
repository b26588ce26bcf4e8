"""The wallet page's Bitcoin tab, driven as the browser drives it (a State tree with a
session token) against real databases: the caller's own BIP84 address with its BIP21 QR
code and a warning naming the network, incoming (unconfirmed) deposits, pending ones with
their confirmations counting, available ones; the push loop refreshes the open tab when a
Bitcoin deposit changes or Bitcoin's tip moves; without a Bitcoin node the page says BTC
deposits are off."""

from __future__ import annotations

import asyncio
import base64
from datetime import timedelta

import pytest

from casino_app.core.clock import utcnow
from casino_app.core.db import ledger_tx
from casino_app.core.settings import reset_settings_cache
from casino_app.payments import ledger
from casino_app.payments.btc import addresses as btc_addresses
from casino_app.payments.btc import keys as btc_keys
from casino_app.payments.btc.network import PRESETS
from casino_app.payments.deposit_models import ChainBlock, ChainDeposit
from casino_app.payments.eth import addresses as eth_addresses
from casino_app.payments.signer import btc as signer
from casino_app.payments.signer.seed import account_xpub as eth_xpub
from casino_app.ui import push
from casino_app.ui.state.deposits import DepositsState, btc_network_warning
from tests.support.services import ANVIL_MNEMONIC
from tests.ui.test_deposits_state import FakeApp, _browser, _run
from tests.ui.test_state_security import _substate

MNEMONIC = "abandon " * 11 + "about"
REGTEST = PRESETS["regtest-bcoin"]
XPUB = signer.account_xpub(REGTEST, MNEMONIC)


@pytest.fixture
def btc_env(app_env, monkeypatch):  # noqa: ANN001, ANN201
    """Bitcoin configured on bcoin's regtest (no node is needed to show addresses), a
    fixed account key, 3 confirmations; two players."""
    from tests.users.helpers import register, user_row

    monkeypatch.setenv("CASINO_BTC_RPC_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("CASINO_BTC_NETWORK", "regtest-bcoin")
    monkeypatch.setenv("CASINO_BTC_XPUB", XPUB)
    monkeypatch.setenv("CASINO_BTC_CONFIRMATIONS", "3")
    reset_settings_cache()
    push.reset()
    out = []
    for _ in range(2):
        token, addr = register()
        out.append((token, user_row(addr).player_id))
    yield out
    push.reset()


def _deposit(player: str, block: int | None, state: str, amount: int, n: int) -> int:
    with ledger_tx() as s:
        row = ChainDeposit(chain="bitcoin", tx_hash=f"{n:02x}" * 32, log_index=0,
                           block_number=block, block_hash=None if block is None else "11" * 32,
                           currency="BTC", address="rb1q", sender="", player_id=player,
                           amount_raw=str(amount), amount=amount, state=state, credits=0,
                           owed=0, created_at=utcnow() + timedelta(microseconds=n),
                           updated_at=utcnow())
        s.add(row)
        s.flush()
        if state in ("pending", "available"):
            row.credits = 1
            ledger.transfer(s, f"deposit:test-btc:{n}", "deposit",
                            ledger.house_account(s, "BTC", "custody"),
                            ledger.player_account(s, player, "BTC"), amount, memo="test")
        return row.id


def _set_state(deposit_id: int, state: str, block: int | None = None) -> None:
    with ledger_tx() as s:
        row = s.get(ChainDeposit, deposit_id)
        row.state, row.updated_at = state, utcnow() + timedelta(milliseconds=1)
        if block is not None:
            row.block_number, row.block_hash = block, "22" * 32


def _tip(number: int) -> None:
    with ledger_tx() as s:
        s.add(ChainBlock(chain="bitcoin", number=number, hash=f"{number:064x}",
                         parent_hash=f"{number - 1:064x}", seen_at=utcnow()))


def test_the_btc_tab_shows_the_callers_address_with_a_bip21_qr_and_the_network(
        btc_env) -> None:  # noqa: ANN001
    (token, pid), (other_token, other_pid) = btc_env
    state = _substate(_browser(token), DepositsState)
    assert _run(state, "on_open") == [None]
    mine = btc_addresses.deposit_address(pid)
    assert mine == btc_keys.deposit_address(0, XPUB, REGTEST) and mine.startswith("rb1q")
    assert state.enabled and not state.btc_off and state.loaded
    assert state.codes == ["BTC"] and state.selected == "BTC" and state.address == mine
    assert state.needed == 3
    card = state.cards[0]
    assert (card.code, card.address, card.uri, card.needed) == ("BTC", mine,
                                                               f"bitcoin:{mine}", 3)
    assert card.warning == ("Send only Bitcoin (BTC) on Bitcoin regtest (bcoin) to this "
                            "address; other networks or coins are lost.")
    assert b"<svg" in base64.b64decode(card.qr.split(",", 1)[1])
    assert "incoming" in card.note and "3 confirmations" in card.note
    assert (card.withdrawable, card.pending, card.confirming, card.incoming) == (
        "0.00000000", "0.00000000", "0.00000000", "0.00000000")
    assert push.watched_tabs() == {"tab-1": pid}

    theirs = _substate(_browser(other_token, client="tab-2"), DepositsState)
    _run(theirs, "on_open")
    assert theirs.address == btc_addresses.deposit_address(other_pid) == \
        btc_keys.deposit_address(1, XPUB, REGTEST)
    assert theirs.address != mine


def test_incoming_pending_and_available_deposits_are_shown_and_dropped_ones_are_not(
        btc_env) -> None:  # noqa: ANN001
    (token, pid), (other_token, _) = btc_env
    _tip(500)
    _deposit(pid, 495, "available", 100_000, n=1)
    _deposit(pid, 499, "pending", 20_000, n=2)
    _deposit(pid, None, "incoming", 3_000, n=3)
    _deposit(pid, None, "dropped", 7_000, n=4)
    state = _substate(_browser(token), DepositsState)
    _run(state, "on_open")
    rows = [(r.amount, r.state, r.label, r.confirmations) for r in state.deposits]
    assert rows == [("0.00003000", "incoming", "incoming", "0 of 3"),   # newest first
                    ("0.00020000", "pending", "pending", "2 of 3"),
                    ("0.00100000", "available", "available", "3 of 3")]
    assert state.deposits[0].tx == "03" * 32
    card = state.cards[0]
    assert (card.withdrawable, card.pending, card.incoming) == ("0.00100000", "0.00020000",
                                                                "0.00003000")
    theirs = _substate(_browser(other_token, client="tab-2"), DepositsState)
    _run(theirs, "on_open")
    assert theirs.deposits == []  # never another player's


def test_the_push_loop_refreshes_the_btc_tab_on_changes_and_new_blocks(
        btc_env) -> None:  # noqa: ANN001
    (token, pid), (other_token, other_pid) = btc_env
    _tip(500)
    app = FakeApp()
    mine, theirs = _browser(token, client="t1"), _browser(other_token, client="t2")
    for client, root in (("t1", mine), ("t2", theirs)):
        app.connect(client, root)
        _run(_substate(root, DepositsState), "on_open")
    pusher = push.Pusher(app)
    assert push.followed_chains() == ["bitcoin"]
    assert asyncio.run(pusher.once()) == 0
    shown = _substate(mine, DepositsState)

    # seen in the mempool: the player's tab shows it incoming at once
    dep = _deposit(pid, None, "incoming", 50_000, n=1)
    app.modified.clear()
    asyncio.run(pusher.once())
    assert app.modified == ["t1"]
    assert [(r.state, r.confirmations) for r in shown.deposits] == [("incoming", "0 of 3")]
    # mined and credited: pending, 1 of 3
    _tip(501)
    _set_state(dep, "pending", block=501)
    with ledger_tx() as s:
        ledger.transfer(s, "deposit:test-btc:push", "deposit",
                        ledger.house_account(s, "BTC", "custody"),
                        ledger.player_account(s, pid, "BTC"), 50_000, memo="test")
    app.modified.clear()
    asyncio.run(pusher.once())
    assert app.modified == ["t1"]
    assert [(r.state, r.confirmations) for r in shown.deposits] == [("pending", "1 of 3")]
    assert shown.cards[0].pending == "0.00050000"
    # Bitcoin's next block counts a confirmation; the other player's tab is left alone
    _tip(502)
    app.modified.clear()
    asyncio.run(pusher.once())
    assert app.modified == ["t1"]
    assert shown.deposits[0].confirmations == "2 of 3"
    # a double-spent incoming deposit disappears from the wallet
    gone = _deposit(pid, None, "incoming", 9_000, n=2)
    asyncio.run(pusher.once())
    assert len(shown.deposits) == 2
    _set_state(gone, "dropped")
    app.modified.clear()
    asyncio.run(pusher.once())
    assert app.modified == ["t1"] and len(shown.deposits) == 1
    assert _substate(theirs, DepositsState).deposits == []
    assert other_pid != pid


def test_with_ethereum_and_bitcoin_each_tab_shows_its_own_address(
        btc_env, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("CASINO_ETH_RPC_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("CASINO_ETH_XPUB", eth_xpub(ANVIL_MNEMONIC))
    reset_settings_cache()
    (token, pid), _ = btc_env
    state = _substate(_browser(token), DepositsState)
    _run(state, "on_open")
    eth, btc = eth_addresses.deposit_address(pid), btc_addresses.deposit_address(pid)
    assert state.codes == ["ETH", "BTC"] and state.selected == "ETH"
    assert state.address == eth and state.needed == 12
    assert [c.address for c in state.cards] == [eth, btc]
    _run(state, "show", "BTC")
    assert (state.selected, state.address, state.needed) == ("BTC", btc, 3)
    for junk in ("USDT", "FUN", "btc", "<script>", "", None, 42, ["BTC"]):
        assert _run(state, "show", junk) == [None]
        assert state.selected == "BTC"
    assert push.followed_chains() == ["ethereum", "bitcoin"]


def test_without_a_bitcoin_node_the_page_says_btc_deposits_are_off(
        app_env, monkeypatch) -> None:  # noqa: ANN001
    from tests.users.helpers import register, user_row

    token, email = register()
    state = _substate(_browser(token), DepositsState)
    _run(state, "on_open")
    assert state.loaded and not state.enabled and state.btc_off and state.cards == []
    monkeypatch.setenv("CASINO_ETH_RPC_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("CASINO_ETH_XPUB", eth_xpub(ANVIL_MNEMONIC))
    reset_settings_cache()
    _run(state, "on_open")
    assert state.enabled and state.btc_off and state.codes == ["ETH"]
    assert _run(state, "show", "BTC") == [None] and state.selected == "ETH"
    with ledger_tx(readonly=True) as s:
        assert btc_addresses.count(s) == 0
    assert user_row(email).player_id


def test_the_warning_names_mainnet_and_testnet() -> None:
    assert btc_network_warning(PRESETS["mainnet"]).startswith(
        "Send only Bitcoin (BTC) on Bitcoin mainnet to this address")
    assert "on Bitcoin testnet to this address" in btc_network_warning(PRESETS["testnet"])


def test_an_anonymous_caller_gets_no_bitcoin_address(btc_env) -> None:  # noqa: ANN001
    state = _substate(_browser(""), DepositsState)
    for name, args in (("on_open", []), ("show", ["BTC"])):
        assert "/login" in repr(_run(state, name, *args))
        assert state.address == "" and state.cards == []
    with ledger_tx(readonly=True) as s:
        assert btc_addresses.count(s) == 0
