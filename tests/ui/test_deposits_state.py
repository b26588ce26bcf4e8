"""The wallet page's deposits state and the push loop, driven as the browser drives them (a
State tree with a session token) against real databases: the address shown is the
caller's own, a forged currency is refused, deposits show their confirmations, and the
push loop refreshes exactly the tabs of players whose deposits changed or are confirming
while the chain moves."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from reflex.istate.data import ReflexURL, RouterData, SessionData

from casino_app.core.clock import utcnow
from casino_app.core.db import ledger_tx
from casino_app.core.settings import reset_settings_cache
from casino_app.payments import activity, ledger
from casino_app.payments.deposit_models import ChainBlock, ChainDeposit
from casino_app.payments.eth import adapter as eth_adapter
from casino_app.payments.eth import addresses, keys
from casino_app.payments.signer.seed import account_xpub
from casino_app.ui import push
from casino_app.ui.state.deposits import (
    DepositsState,
    configured,
    confirmations_text,
    network_warning,
    qr_data_uri,
    short_hash,
)
from tests.support.services import ANVIL_MNEMONIC
from tests.ui.test_state_security import _call, _fresh_root, _substate

USDT = "0xdAC17F958D2ee523a2206206994597C13D831ec7"
USDC = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
WALLET_URL = "http://localhost:3000/wallet"


# --- pure helpers ----------------------------------------------------------------------------

def test_payment_uris_follow_eip_681() -> None:
    addr = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
    assert eth_adapter.payment_uri(addr, 1) == f"ethereum:{addr}@1"
    assert eth_adapter.payment_uri(addr, 31337, USDT) == \
        f"ethereum:{USDT}@31337/transfer?address={addr}"


def test_the_network_warning_names_coin_network_and_chain_id() -> None:
    assert network_warning("USDT", 1) == (
        "Send only USDT on Ethereum mainnet (chain id 1) to this address; other networks "
        "or coins are lost.")
    assert "the network with chain id 8453 (chain id 8453)" in network_warning("ETH", 8453)


def test_confirmations_and_hashes_read_short() -> None:
    assert confirmations_text("pending", 1, 3) == "1 of 3"
    assert confirmations_text("pending", 7, 3) == "3 of 3"   # the watcher is about to flip it
    assert confirmations_text("available", 0, 12) == "12 of 12"
    assert confirmations_text("reversed", 5, 3) == "–"
    assert short_hash("0x" + "ab" * 32) == "0xabababab…ababab"


def test_the_qr_code_is_an_svg_made_here() -> None:
    uri = qr_data_uri("ethereum:0x70997970C51812dc3A010C7d01b50e0d17dc79C8@1")
    assert uri.startswith("data:image/svg+xml;base64,")
    assert b"<svg" in base64.b64decode(uri.split(",", 1)[1])


def test_configured_currencies(app_env, monkeypatch) -> None:  # noqa: ANN001
    assert configured() == {}
    monkeypatch.setenv("CASINO_ETH_RPC_URL", "http://127.0.0.1:8545")
    reset_settings_cache()
    assert configured() == {"ETH": None}
    monkeypatch.setenv("CASINO_ETH_TOKENS", f"USDT:{USDT},USDC:{USDC}")
    reset_settings_cache()
    assert configured() == {"ETH": None, "USDT": USDT, "USDC": USDC}


# --- handlers --------------------------------------------------------------------------------

def _run(state: Any, name: str, *args: Any) -> list[Any]:
    return asyncio.run(_call(state, type(state).event_handlers[name], list(args)))


def _browser(token: str, url: str = WALLET_URL, client: str = "tab-1") -> Any:
    from casino_app.ui.state.session import SessionState

    root = _fresh_root()
    root.router = RouterData(url=ReflexURL(url), session=SessionData(client_token=client))
    _substate(root, SessionState).token = token
    return root


@pytest.fixture
def eth_env(app_env, monkeypatch):  # noqa: ANN001, ANN201
    """Ethereum configured (no node is needed to show addresses), anvil's xpub, 3
    confirmations, USDT and USDC; two players."""
    from tests.users.helpers import register, user_row

    monkeypatch.setenv("CASINO_ETH_RPC_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("CASINO_ETH_XPUB", account_xpub(ANVIL_MNEMONIC))
    monkeypatch.setenv("CASINO_ETH_CONFIRMATIONS", "3")
    monkeypatch.setenv("CASINO_ETH_TOKENS", f"USDT:{USDT},USDC:{USDC}")
    reset_settings_cache()
    push.reset()
    out = []
    for _ in range(2):
        token, addr = register()
        out.append((token, user_row(addr).player_id))
    yield out
    push.reset()


def _deposit(player: str, block: int, state: str, amount: int, code: str = "ETH",
             n: int = 0) -> int:
    with ledger_tx() as s:
        address = addresses._find(s, "ethereum", player) or "0x" + "0" * 40
        row = ChainDeposit(chain="ethereum", tx_hash="0x" + f"{n:02x}" * 32, log_index=-1,
                           block_number=block, block_hash="0x" + "11" * 32, currency=code,
                           address=address, sender="0x" + "22" * 20, player_id=player,
                           amount_raw=str(amount * 10**9), amount=amount, state=state,
                           credits=0, owed=0, created_at=utcnow(), updated_at=utcnow())
        s.add(row)
        s.flush()
        if state in ("pending", "available"):
            row.credits = 1
            ledger.transfer(s, f"deposit:test:{n}", "deposit",
                            ledger.house_account(s, code, "custody"),
                            ledger.player_account(s, player, code), amount, memo="test")
        return row.id


def _tip(number: int) -> None:
    with ledger_tx() as s:
        s.add(ChainBlock(chain="ethereum", number=number, hash="0x" + f"{number:064x}",
                         parent_hash="0x" + f"{number - 1:064x}", seen_at=utcnow()))


def test_the_wallet_shows_the_callers_own_address_and_deposits(eth_env) -> None:  # noqa: ANN001
    (token, pid), (other_token, other_pid) = eth_env
    _tip(10)
    state = _substate(_browser(token), DepositsState)
    assert _run(state, "on_open") == [None]
    mine = addresses.deposit_address(pid)
    assert state.enabled and state.address == mine
    assert state.codes == ["ETH", "USDT", "USDC"] and state.selected == "ETH"
    assert [c.uri for c in state.cards] == [
        f"ethereum:{mine}@31337", f"ethereum:{USDT}@31337/transfer?address={mine}",
        f"ethereum:{USDC}@31337/transfer?address={mine}"]
    assert state.cards[1].warning.startswith("Send only USDT on the local development chain")
    assert state.deposits == [] and state.needed == 3
    assert push.watched_tabs() == {"tab-1": pid}

    theirs = _substate(_browser(other_token, client="tab-2"), DepositsState)
    _run(theirs, "on_open")
    assert theirs.address == addresses.deposit_address(other_pid) != mine
    # both are derived from the hot wallet's xpub (anvil's first accounts here)
    xpub = account_xpub(ANVIL_MNEMONIC)
    assert {mine, theirs.address} == {keys.address_at(xpub, 0), keys.address_at(xpub, 1)}

    _deposit(pid, 9, "pending", 50_000_000, n=1)
    _deposit(pid, 10, "seen", 7_000_000, n=2)
    _deposit(pid, 5, "available", 1_000_000, n=3)
    _run(state, "on_open")
    rows = state.deposits
    assert [(r.amount, r.state, r.confirmations) for r in rows] == [   # newest first
        ("0.001000", "available", "3 of 3"), ("0.007000", "seen", "1 of 3"),
        ("0.050000", "pending", "2 of 3")]
    assert rows[1].label == "confirming" and rows[1].tx_short.startswith("0x02020202")
    eth = state.cards[0]
    assert (eth.withdrawable, eth.pending, eth.confirming) == ("0.001000", "0.050000",
                                                              "0.007000")
    _run(theirs, "on_open")
    assert theirs.deposits == []  # never another player's


def test_a_forged_currency_is_refused(eth_env) -> None:  # noqa: ANN001
    (token, _), _ = eth_env
    state = _substate(_browser(token), DepositsState)
    _run(state, "on_open")
    _run(state, "show", "USDC")
    assert state.selected == "USDC"
    for junk in ("BTC", "FUN", "eth", "<script>", "", None, 42, ["ETH"], {"code": "ETH"}):
        assert _run(state, "show", junk) == [None]
        assert state.selected == "USDC"


def test_without_an_ethereum_node_there_is_no_address(app_env) -> None:  # noqa: ANN001
    from tests.users.helpers import register

    token, _ = register()
    state = _substate(_browser(token), DepositsState)
    _run(state, "on_open")
    assert state.loaded and not state.enabled and state.address == "" and state.cards == []
    with ledger_tx(readonly=True) as s:
        assert addresses.count(s, "ethereum") == 0
    assert push.watched_tabs() == {}


def test_an_anonymous_caller_sees_nothing_and_is_sent_to_sign_in(eth_env) -> None:  # noqa: ANN001
    state = _substate(_browser(""), DepositsState)
    for name, args in (("on_open", []), ("show", ["ETH"])):
        out = _run(state, name, *args)
        assert "/login" in repr(out)
        assert state.address == "" and state.cards == [] and state.deposits == []
    with ledger_tx(readonly=True) as s:
        assert addresses.count(s, "ethereum") == 0
    assert push.watched_tabs() == {}


# --- change tracking and the push loop -------------------------------------------------------

def test_the_tracker_reports_changed_deposits_once_and_confirming_ones_when_the_tip_moves(
        eth_env) -> None:  # noqa: ANN001
    (_, a), (_, b) = eth_env
    _tip(10)
    tracker = activity.ChangeTracker(utcnow())

    def poll(watched: set[str]) -> set[str]:
        with ledger_tx(readonly=True) as s:
            return tracker.poll(s, watched)[0]

    assert poll({a, b}) == set()
    dep = _deposit(a, 10, "pending", 5, n=1)
    assert poll({a, b}) == {a}
    assert poll({a, b}) == set()          # reported once
    _deposit(b, 10, "available", 5, n=2)
    assert poll({a}) == set()             # b has no open tab
    _tip(11)
    assert poll({a, b}) == {a}            # a's deposit counts a confirmation; b's is final
    with ledger_tx() as s:
        row = s.get(ChainDeposit, dep)
        row.state, row.updated_at = "available", utcnow() + timedelta(milliseconds=1)
    assert poll({a, b}) == {a}
    assert poll({a, b}) == set()


class FakeApp:
    """What the push loop uses of rx.App: the sockets this process holds (Reflex's own
    token manager, as ``app.event_namespace`` has it) and ``modify_state`` (here on
    in-memory State trees, one per client token)."""

    def __init__(self) -> None:
        from reflex.utils.token_manager import LocalTokenManager

        from casino_app.ui import push
        from casino_app.ui.state.deposits import DepositsState
        from casino_app.ui.state.wallet_page import refresh_open_tab

        push.configure(DepositsState, refresh_open_tab)  # as casino_app.py does
        self.roots: dict[str, Any] = {}
        self.modified: list[str] = []
        self.event_namespace = SimpleNamespace(_token_manager=LocalTokenManager())

    def connect(self, client: str, root: Any) -> None:
        self.roots[client] = root
        asyncio.run(self.event_namespace._token_manager.link_token_to_sid(
            client, "sid-" + client))

    def disconnect(self, client: str) -> None:
        asyncio.run(self.event_namespace._token_manager.disconnect_token(
            client, "sid-" + client))

    def moved_to_another_worker(self, client: str) -> None:
        """The tab's socket went to another worker, which this process learnt when it
        forwarded an update there (RedisTokenManager caches that worker's record)."""
        from reflex.utils.token_manager import SocketRecord

        self.disconnect(client)
        self.event_namespace._token_manager.token_to_socket[client] = SocketRecord(
            instance_id="another-worker", sid="sid-elsewhere")

    @contextlib.asynccontextmanager
    async def modify_state(self, token: Any):  # noqa: ANN201
        self.modified.append(token.ident)
        yield self.roots[token.ident]


def test_the_push_loop_refreshes_the_open_wallet_tabs_of_affected_players(
        eth_env, monkeypatch) -> None:  # noqa: ANN001
    from casino_app.ui.state.wallet import WalletState
    from casino_app.users import accounts

    looks: list[bool] = []
    real = accounts.current_user_async

    async def current_user_async(token, *, touch=True):  # noqa: ANN001, ANN202
        looks.append(touch)
        return await real(token, touch=touch)

    monkeypatch.setattr(accounts, "current_user_async", current_user_async)

    (token, pid), (other_token, other_pid) = eth_env
    _tip(10)
    app = FakeApp()
    tab1, tab2, tab3 = (_browser(token, client="t1"), _browser(other_token, client="t2"),
                        _browser(token, client="t3"))
    for client, root in (("t1", tab1), ("t2", tab2), ("t3", tab3)):
        app.connect(client, root)
        _run(_substate(root, DepositsState), "on_open")
    assert push.watched_tabs() == {"t1": pid, "t2": other_pid, "t3": pid}
    pusher = push.Pusher(app)
    assert asyncio.run(pusher.once()) == 0

    # the third tab went to another page; the first tab's deposit arrives
    tab3.router = RouterData(url=ReflexURL("http://localhost:3000/games/dice"),
                             session=SessionData(client_token="t3"))
    _deposit(pid, 10, "pending", 50_000_000, n=1)
    app.modified.clear()
    looks.clear()
    assert asyncio.run(pusher.once()) == 2
    assert sorted(app.modified) == ["t1", "t3"]
    shown = _substate(tab1, DepositsState)
    assert [(r.state, r.confirmations) for r in shown.deposits] == [("pending", "1 of 3")]
    assert _substate(tab1, WalletState).balances["ETH"] == "0.050000"
    assert looks == [False]  # a push is not the player's use: the idle time runs on
    assert _substate(tab3, DepositsState).deposits == []  # not refreshed: it moved on
    assert push.watched_tabs() == {"t1": pid, "t2": other_pid}

    # the chain moves: the confirming deposit's tab is refreshed, the other player's is not
    _tip(11)
    app.modified.clear()
    asyncio.run(pusher.once())
    assert app.modified == ["t1"]
    assert shown.deposits[0].confirmations == "2 of 3"

    # a tab whose socket is gone is kept for a grace period, then forgotten
    app.disconnect("t2")
    push.prune(push.held_sockets(app.event_namespace), now=0.0)
    assert "t2" in push.watched_tabs()
    push.prune(push.held_sockets(app.event_namespace), now=push.GONE_GRACE + 1)
    assert push.watched_tabs() == {"t1": pid}


def test_a_tab_whose_socket_another_worker_holds_is_left_to_that_worker(
        eth_env) -> None:  # noqa: ANN001
    (token, pid), _ = eth_env
    _tip(10)
    app = FakeApp()
    here, moved = _browser(token, client="t1"), _browser(token, client="t2")
    for client, root in (("t1", here), ("t2", moved)):
        app.connect(client, root)
        _run(_substate(root, DepositsState), "on_open")
    pusher = push.Pusher(app)
    asyncio.run(pusher.once())
    # t2 reconnected to another worker: its rehydrate registered it there, and this
    # process knows the other worker's record since it forwarded an update to it
    app.moved_to_another_worker("t2")
    assert push.held_sockets(app.event_namespace) == {"t1"}
    _deposit(pid, 10, "pending", 5, n=1)
    app.modified.clear()
    assert asyncio.run(pusher.once()) == 1
    assert app.modified == ["t1"]
    assert _substate(moved, DepositsState).deposits == []  # the other worker's to push
    push.prune(push.held_sockets(app.event_namespace), now=time.monotonic() +
               push.GONE_GRACE + 1)
    assert push.watched_tabs() == {"t1": pid}
    # the last tab here leaves: nothing is read any more
    app.disconnect("t1")
    assert asyncio.run(pusher.once()) == 0 and pusher.tracker is None


def test_a_tab_signed_out_or_taken_over_is_not_pushed_to(eth_env) -> None:  # noqa: ANN001
    from casino_app.ui.state.session import SessionState

    (token, pid), (other_token, _) = eth_env
    _tip(10)
    app = FakeApp()
    tab = _browser(token, client="t1")
    app.connect("t1", tab)
    _run(_substate(tab, DepositsState), "on_open")
    pusher = push.Pusher(app)
    asyncio.run(pusher.once())
    # the tab now holds another player's session: the push re-checks and forgets it
    _substate(tab, SessionState).token = other_token
    _deposit(pid, 10, "pending", 5, n=1)
    asyncio.run(pusher.once())
    state = _substate(tab, DepositsState)
    assert state.deposits == [] and state.address == ""
    assert push.watched_tabs() == {}


def test_registry_limits() -> None:
    push.reset()
    push.watch_tab("", "p")
    push.watch_tab("x" * 500, "p")
    push.watch_tab(None, "p")
    assert push.watched_tabs() == {}
    for i in range(push.TABS_PER_PLAYER + 5):
        push.watch_tab(f"t{i}", "p")
    assert len(push.watched_tabs()) == push.TABS_PER_PLAYER
    assert "t0" not in push.watched_tabs() and f"t{push.TABS_PER_PLAYER + 4}" in \
        push.watched_tabs()
    push.reset()
