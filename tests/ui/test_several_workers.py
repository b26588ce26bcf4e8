"""Several web workers: the production shape of ``casino run`` (``GRANIAN_WORKERS=2`` on one
port, ``REFLEX_REDIS_URL`` set) on one Redis and one PostgreSQL, with the jobs under their
leases inside the workers and a private anvil, driven over Reflex's websocket
(tests/support/reflex_client.py) as browsers would.

Which worker takes a socket is the kernel's choice; Reflex records the holder of each
tab's socket in Redis (``socket_owner`` reads it), and a tab is moved to the other worker
by reconnecting it until that worker takes it (as a browser's reconnect after a network
drop may land anywhere).

- Players on both workers bet from both; each tab's answers, the balances it shows and the
  ledger agree to the unit, and ``ledger.check_invariants`` is clean. A tab that
  reconnects to the other worker keeps its state (its dice settings, its last result, its
  recent bets) and its client token.
- A deposit credited by the chain watcher and a withdrawal request reach a wallet tab on
  either worker, also one that moved to the other worker after opening the wallet; another
  player's wallet tabs, on both workers, get nothing of it.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from casino_app.ui.state.deposits import DepositsState
from casino_app.ui.state.games import GameState
from casino_app.ui.state.wallet import WalletState
from casino_app.ui.state.withdraw import WithdrawState
from tests.support import live
from tests.support.reflex_client import Tab, socket_owner
from tests.support.services import PgCluster, RedisServer

pytestmark = [pytest.mark.workers, pytest.mark.postgres, pytest.mark.redis,
              pytest.mark.ethereum, pytest.mark.slow]

WORKERS = 2
BETS_PER_TAB = 6
MOVES = 40              # reconnects before giving up on reaching the other worker (~0.5^40)
DEPOSIT_GWEI = 50_000_000   # 0.05 ETH
DEST = "0x52908400098527886E0F7030069857D2E4169EE7"


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    server = RedisServer().start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="module")
def workers_app(pg_cluster: PgCluster, redis_url: str,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[live.Casino]:
    with live.running(Path(tmp_path_factory.mktemp("workers")), db="postgres",
                      cluster=pg_cluster, redis_url=redis_url, workers=WORKERS) as target:
        yield target


@pytest.fixture
def app(workers_app: live.Casino) -> Iterator[live.Casino]:
    with live.adopted(workers_app.env):
        yield workers_app


def owner(url: str, tab: Tab) -> str:
    found = socket_owner(url, tab.client_token)
    assert found, f"no worker holds the socket of {tab.client_token}"
    return found


async def move_to_other_worker(url: str, tab: Tab) -> tuple[str, str]:
    """Reconnect ``tab`` until the other worker holds its socket: (from, to)."""
    before = owner(url, tab)
    for _ in range(MOVES):
        await tab.reconnect()
        if (now := owner(url, tab)) != before:
            return before, now
    raise AssertionError(f"{MOVES} reconnects all landed on the same worker")


async def until(what: str, check, timeout: float = 30.0):  # noqa: ANN001, ANN201
    """Poll ``check()`` (pushed updates are merged by the tabs it reads) until truthy."""
    deadline = time.monotonic() + timeout
    while not (value := await check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.1)
    return value


def shown_fun(tab: Tab) -> str | None:
    return (tab.var(WalletState, "balances") or {}).get("FUN")


def fun_text(player: live.Account) -> str:
    from casino_app.payments.currencies import currency

    return currency("FUN").format(live.available(player.player_id, "FUN"))


async def bet(tab: Tab) -> int:
    answer = await tab.call(GameState, "bet", bet_key=secrets.token_hex(16))
    assert not answer.get(GameState, "error"), answer.get(GameState, "error")
    bet_id = answer.get(GameState, "result_id")
    assert bet_id, answer.delta
    return bet_id


async def test_players_bet_from_both_workers_and_a_tab_keeps_its_state_on_the_other(
        app: live.Casino, redis_url: str) -> None:
    players = [live.new_player(f"Both {i}") for i in range(4)]
    tabs = [app.tab(p, "/games/dice") for p in players]
    try:
        await asyncio.gather(*(t.open() for t in tabs))
        if len({owner(redis_url, t) for t in tabs}) < WORKERS:
            await move_to_other_worker(redis_url, tabs[0])
        held = {t.client_token: owner(redis_url, t) for t in tabs}
        assert len(set(held.values())) == WORKERS, "players on both workers"

        async def play(tab: Tab) -> list[int]:
            return [await bet(tab) for _ in range(BETS_PER_TAB)]

        answered = await asyncio.gather(*(play(t) for t in tabs))
        for p, tab, ids in zip(players, tabs, answered, strict=True):
            assert [b["id"] for b in live.bets_of(p.player_id)] == ids
            assert shown_fun(tab) == fun_text(p)

        # one tab: its own settings, then it reconnects until the other worker takes it
        tab, player = tabs[0], players[0]
        await tab.call(GameState, "edit_dice_target", text="63.50")
        await tab.call(GameState, "edit_amount", text="2.00")
        last, rows = tab.var(GameState, "result_id"), tab.var(GameState, "game_rows")
        token = tab.client_token
        tab.seen.clear()  # from here on, only what the other worker sends
        moved = await move_to_other_worker(redis_url, tab)
        assert moved[0] != moved[1]
        assert tab.client_token == token  # the same tab, not a new one
        assert tab.var(GameState, "dice_target") == "63.50"
        assert tab.var(GameState, "amount") == "2.00"
        assert tab.var(GameState, "result_id") == last
        assert tab.var(GameState, "game_rows") == rows
        assert shown_fun(tab) == fun_text(player)
        # and it bets from there, at the amount it kept
        extra = await bet(tab)
        assert [b["id"] for b in live.bets_of(player.player_id)] == [*answered[0], extra]
        assert live.bets_of(player.player_id)[-1]["stake"] == 200
        assert shown_fun(tab) == fun_text(player)
    finally:
        await asyncio.gather(*(t.close() for t in tabs))
    assert not live.ledger_violations()


async def test_a_deposit_and_a_withdrawal_reach_the_wallet_tab_on_whichever_worker(
        app: live.Casino, redis_url: str) -> None:
    payer, other = live.new_player("Payer"), live.new_player("Other")
    # the payer's wallet open in two tabs; one of them then moves to the other worker
    stays, moves = app.tab(payer, "/wallet"), app.tab(payer, "/wallet")
    watchers = [app.tab(other, "/wallet"), app.tab(other, "/wallet")]
    tabs = [stays, moves, *watchers]
    try:
        await asyncio.gather(*(t.open() for t in tabs))
        for t in tabs:
            assert t.var(DepositsState, "deposits") == []
        if owner(redis_url, moves) != owner(redis_url, stays):
            await move_to_other_worker(redis_url, moves)  # both on one worker first
        before, after = await move_to_other_worker(redis_url, moves)
        assert owner(redis_url, stays) == before and owner(redis_url, moves) == after
        while owner(redis_url, watchers[0]) == owner(redis_url, watchers[1]):
            await move_to_other_worker(redis_url, watchers[1])

        # a real deposit: sent on the chain, recorded and credited by the watcher job
        await asyncio.to_thread(app.fund_eth, payer, DEPOSIT_GWEI)

        async def shows_deposit(tab: Tab) -> bool:
            await tab.drain()
            rows = tab.var(DepositsState, "deposits") or []
            return bool(rows) and rows[0]["state"] == "available" and \
                (tab.var(WalletState, "balances") or {}).get("ETH") == "0.050000"

        for tab in (stays, moves):
            await until("the deposit on the payer's tab", lambda tab=tab: shows_deposit(tab))
        [row] = moves.var(DepositsState, "deposits")
        assert row["amount"] == "0.050000"

        # a withdrawal (requested through the service, as from a third tab) follows
        from casino_app.payments import withdrawals

        w = withdrawals.request_withdrawal(payer.player_id, "ETH", "0.01", DEST,
                                           secrets.token_hex(16))

        async def shows_withdrawal(tab: Tab) -> bool:
            await tab.drain()
            return [r["id"] for r in tab.var(WithdrawState, "rows") or []] == [w.id]

        for tab in (stays, moves):
            await until("the withdrawal on the payer's tab",
                        lambda tab=tab: shows_withdrawal(tab))
        await asyncio.sleep(2)  # time for any wrong push to arrive
        for t in watchers:
            await t.drain()
            assert t.var(DepositsState, "deposits") == []
            assert t.var(WithdrawState, "rows") == []
            assert row["tx"] not in t.everything()
    finally:
        await asyncio.gather(*(t.close() for t in tabs))
    assert not live.ledger_violations()
