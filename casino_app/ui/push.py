"""Live wallet updates: deposits and withdrawals reach the player's open wallet tabs
without a reload.

The chain watchers (jobs, possibly in another process: eth-watch, btc-watch) only write
the ledger database. Each web process runs ``run`` as a Reflex lifespan task: about once a
second it asks the ledger what changed since its last look
(``payments.activity.ChangeTracker``: deposits on any chain and withdrawals whose
``updated_at`` moved, a Bitcoin deposit seen incoming in the mempool or dropped from it
included, and the tip of each configured chain, which moves the confirmation count of
unconfirmed deposits) and refreshes the affected players' tabs with ``app.modify_state``,
which sends the new view over the tab's socket.

Which tab shows whose wallet is a registry in the process that holds the tab's socket,
filled by the wallet page's on_load (``watch_tab``); each process pushes only to the tabs
whose socket it holds (``held_sockets``). Behind several web workers on Redis a tab's
socket may move to another worker (a network drop, a worker restarting); its reconnect
rehydrates the page, so the wallet's on_load runs again in the worker that took the
socket and registers the tab there, while the worker it left stops pushing to it at once
and forgets it after ``GONE_GRACE``. No registry is shared: a push never crosses
processes (Reflex could forward one through Redis, but the holder already has the tab).
An entry goes when its socket has been gone for ``GONE_GRACE`` seconds, when the tab
shows another page or another player (checked under the tab's state lock at push time,
with the session re-checked on the server), and the oldest go when a player has more than
``TABS_PER_PLAYER`` or the process more than ``MAX_TABS``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from casino_app.core.clock import utcnow
from casino_app.core.db import ledger_tx
from casino_app.core.logging import get_logger
from casino_app.core.settings import get_settings
from casino_app.payments import adapters
from casino_app.payments.activity import ChangeTracker

log = get_logger("casino.ui.push")

PUSH_SECONDS = 1.0
GONE_GRACE = 60.0        # a socket may drop and reconnect (phone sleeping, network switch)
TABS_PER_PLAYER = 20
MAX_TABS = 20_000
TOKEN_MAX = 128


@dataclass
class Tab:
    player_id: str
    since: float
    gone_since: float | None = None


_tabs: dict[str, Tab] = {}


def watch_tab(token: object, player_id: str) -> None:
    """Remember that the tab ``token`` shows ``player_id``'s wallet."""
    if not isinstance(token, str) or not token or len(token) > TOKEN_MAX:
        return
    _tabs.pop(token, None)
    _tabs[token] = Tab(player_id, time.monotonic())
    mine = [t for t, tab in _tabs.items() if tab.player_id == player_id]
    for old in mine[:-TABS_PER_PLAYER]:
        _tabs.pop(old, None)
    while len(_tabs) > MAX_TABS:
        _tabs.pop(next(iter(_tabs)))


def forget_tab(token: str) -> None:
    _tabs.pop(token, None)


def watched_tabs() -> dict[str, str]:
    """{client token: player id} of the registered tabs."""
    return {token: tab.player_id for token, tab in _tabs.items()}


def reset() -> None:
    _tabs.clear()


def held_sockets(namespace: Any) -> set[str]:
    """The client tokens whose socket this process holds (``namespace``: the app's
    ``event_namespace``). Behind several workers on Redis, Reflex's token manager also
    caches which other worker holds a tab it sent an update to (it forwards the update
    through Redis): those records name another instance and are left out."""
    manager = namespace._token_manager  # what reflex.istate.shared reads too (0.10.1)
    own = manager.instance_id
    return {token for token, record in list(manager.token_to_socket.items())
            if record.instance_id == own}


def prune(connected: Any, now: float | None = None) -> None:
    """Drop tabs whose socket has been gone for GONE_GRACE seconds (``connected``: the
    tokens whose socket this process holds, ``held_sockets``)."""
    now = time.monotonic() if now is None else now
    for token, tab in list(_tabs.items()):
        if token in connected:
            tab.gone_since = None
        elif tab.gone_since is None:
            tab.gone_since = now
        elif now - tab.gone_since > GONE_GRACE:
            _tabs.pop(token, None)


def _poll(tracker: ChangeTracker, players: set[str]) -> set[str]:
    with ledger_tx(readonly=True) as s:
        affected, _ = tracker.poll(s, players)
    return affected


# How a tab is refreshed (given the tab's root state and the player; False: the tab moved
# on): ui/state/wallet_page.refresh_open_tab, handed over by casino_app.py with the state
# class whose token names the tab, so that this module imports no page state.
Refresh = Callable[[Any, str], Awaitable[bool]]
_refresh: tuple[type, Refresh] | None = None


def configure(state_cls: type, refresh: Refresh) -> None:
    global _refresh
    _refresh = (state_cls, refresh)


async def push_to(app: Any, token: str, player_id: str) -> None:
    """Refresh one tab's wallet (forgotten if it moved on)."""
    import reflex as rx

    if _refresh is None:
        raise RuntimeError("ui.push.configure was not called")
    cls, refresh = _refresh
    async with app.modify_state(rx.BaseStateToken(ident=token, cls=cls)) as root:
        keep = await refresh(root, player_id)
    if not keep:
        forget_tab(token)


def followed_chains() -> list[str]:
    """The chains whose tips the loop follows: those configured (a node's URL set)."""
    out = []
    for c in adapters.CHAINS:
        try:
            if c.currencies():
                out.append(c.name)
        except ValueError:  # a malformed setting: the config check names it
            continue
    return out


class Pusher:
    """One process's loop state: the change tracker, made when the first tab registers."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.tracker: ChangeTracker | None = None

    async def once(self) -> int:
        """One look at the ledger; returns how many tabs were refreshed."""
        namespace = getattr(self.app, "event_namespace", None)
        if namespace is None:
            return 0  # no socket server yet
        held = held_sockets(namespace)
        prune(held)
        # a tab whose socket is elsewhere (or nowhere) waits out its grace unpushed: the
        # worker that took its socket registered it again
        tabs = {token: tab for token, tab in _tabs.items() if token in held}
        if not tabs:
            self.tracker = None  # nobody watches here: nothing to read
            return 0
        if self.tracker is None:
            self.tracker = ChangeTracker(utcnow(), chains=followed_chains())
        players = {tab.player_id for tab in tabs.values()}
        affected = await asyncio.to_thread(_poll, self.tracker, players)
        pushed = 0
        for token, tab in tabs.items():
            if tab.player_id not in affected:
                continue
            try:
                await push_to(self.app, token, tab.player_id)
                pushed += 1
            except Exception as exc:  # noqa: BLE001 - one tab's failure spares the others
                log.warning("wallet_push_failed", error=type(exc).__name__)
        return pushed


async def run(app: Any) -> None:
    """The lifespan task (casino_app/casino_app.py); idle when no chain is configured."""
    st = get_settings()
    if not (st.eth_rpc_url or st.btc_rpc_url):
        return
    pusher = Pusher(app)
    while True:
        await asyncio.sleep(PUSH_SECONDS)
        try:
            await pusher.once()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a database hiccup: try again next second
            log.warning("wallet_push_loop_failed", error=type(exc).__name__)
            pusher.tracker = None
