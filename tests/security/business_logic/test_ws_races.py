"""Races: one player's balance spent from many sockets at once.

An attacker opens many tabs (sockets) of one account and fires whole-balance bets, and
whole-balance withdrawals, at the same moment, hoping two of them pass the balance check
before either is booked. Each accepted bet or withdrawal must have been covered by the
balance at its turn (no balance pays twice), the balance never goes negative, the
others are refused with a message that says why, and ``ledger.check_invariants`` stays
clean. Run on the embedded SQLite default and on PostgreSQL (where transactions truly
overlap and the conditional debit is what stops the race).
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Iterator

import pytest
from eth_account import Account

from casino_app.payments.withdrawal_models import Withdrawal
from casino_app.ui.state.games import GameState
from casino_app.ui.state.wallet import WalletState
from casino_app.ui.state.withdraw import WithdrawState
from tests.support import live
from tests.support.reflex_client import Answer, Tab

pytestmark = pytest.mark.security

SOCKETS = 12          # under the 20 bets a second a player may place: the ledger decides
FUN = 100_000         # 1,000.00 FUN: what a top-up gives
ETH = 50_000_000      # 0.05 ETH in gwei


@pytest.fixture(scope="module", params=["sqlite",
                                        pytest.param("postgres", marks=pytest.mark.postgres)])
def race_target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[live.Casino]:
    if request.param == "sqlite":
        yield request.getfixturevalue("casino")
        return
    with live.running(tmp_path_factory.mktemp("attacked-pg"), db="postgres",
                      cluster=request.getfixturevalue("pg_cluster")) as target:
        yield target


@pytest.fixture
def race(race_target: live.Casino) -> Iterator[live.Casino]:
    with live.adopted(race_target.env):
        yield race_target


async def open_tabs(casino: live.Casino, who: live.Account, page: str, n: int) -> list[Tab]:
    tabs = [casino.tab(who, page) for _ in range(n)]
    await asyncio.gather(*(t.open() for t in tabs))
    return tabs


async def all_at_once(calls: list) -> list[Answer]:
    """Send every call's event at (nearly) the same moment; the answers."""
    return list(await asyncio.gather(*calls))


def assert_each_bet_was_covered(bets: list[dict], start: int, final: int) -> None:
    """Replay the bets in the order the ledger booked them: each stake was there."""
    running = start
    for b in bets:
        assert b["balance_before"] == running, b
        assert b["stake"] <= running, f"bet #{b['id']} was not covered: {running} < {b['stake']}"
        running += b["payout"] - b["stake"]
        assert running >= 0
    assert running == final


async def test_whole_balance_bets_from_many_sockets_are_each_covered(race: live.Casino
                                                                   ) -> None:
    player = live.new_player("Racer")
    assert live.available(player.player_id, "FUN") == FUN
    tabs = await open_tabs(race, player, "/games/limbo", SOCKETS)
    try:
        for t in tabs:  # the whole balance on a 1,000,000x target: a loss, in practice
            await t.call(GameState, "edit_amount", text="1000.00")
            await t.call(GameState, "edit_limbo_target", text="1000000")
        answers = await all_at_once([t.call(GameState, "bet", bet_key=secrets.token_hex(16))
                                     for t in tabs])
    finally:
        await asyncio.gather(*(t.close() for t in tabs))
    accepted = [a.get(GameState, "result_id") for a in answers if a.get(GameState, "result_id")]
    refused = [a.get(GameState, "error") for a in answers if a.get(GameState, "error")]
    assert len(accepted) + len(refused) == SOCKETS
    assert all(re.search(r"balance", m, re.I) for m in refused), refused
    bets = live.bets_of(player.player_id)
    assert sorted(accepted) == [b["id"] for b in bets]
    assert bets and all(b["stake"] == FUN for b in bets)
    final = live.available(player.player_id, "FUN")
    assert_each_bet_was_covered(bets, FUN, final)
    if bets[0]["payout"] == 0:  # the usual case: the first bet lost, nothing else passed
        assert len(bets) == 1 and final == 0
    assert not live.ledger_violations()


async def test_whole_balance_bets_and_withdrawals_at_once_only_one_goes_through(
        race: live.Casino) -> None:
    player = live.new_player("Racer", fun=False)
    race.fund_eth(player, ETH)
    address = Account.create().address
    live.allow_address(player, address)  # not refused for its cooling period
    half = SOCKETS // 2
    bettors = await open_tabs(race, player, "/games/mines", half)
    withdrawers = await open_tabs(race, player, "/wallet", half)
    try:
        for t in bettors:  # a Mines round with the whole balance: nothing comes back yet
            # what the header's select sends: the wallet's event, then the game page's
            await t.call(WalletState, "select_currency", code="ETH")
            await t.call(GameState, "follow_currency", _choice="ETH")
            await t.call(GameState, "choose_mines", value="1")
            await t.call(GameState, "edit_amount", text="0.05")
        assert all(t.var(WithdrawState, "options") for t in withdrawers), "withdrawals are off"
        form = {"currency": "ETH", "amount": "0.05", "address": address, "code": "",
                "method": "password", "password": player.password}
        answers = await all_at_once(
            [t.call(GameState, "bet", bet_key=secrets.token_hex(16)) for t in bettors]
            + [t.call(WithdrawState, "request", form=form, key=secrets.token_hex(16))
               for t in withdrawers])
    finally:
        await asyncio.gather(*(t.close() for t in bettors + withdrawers))
    rounds = [a.get(GameState, "round_id") for a in answers[:half] if a.get(GameState, "round_id")]
    queued = [a.get(WithdrawState, "notice") for a in answers[half:]
              if a.get(WithdrawState, "notice")]
    why = [a.get(GameState, "error") for a in answers[:half] if a.get(GameState, "error")] + \
        [str(a.get(WithdrawState, "errors") or a.get(WithdrawState, "message"))
         for a in answers[half:] if not a.get(WithdrawState, "notice")]
    assert len(rounds) + len(queued) == 1, \
        f"{len(rounds)} rounds and {len(queued)} withdrawals out of one balance: {queued}"
    assert len(why) == SOCKETS - 1
    assert all(re.search(r"balance|open mines round", m, re.I) for m in why), why

    from sqlalchemy import select

    from casino_app.core.db import ledger_tx

    with ledger_tx(readonly=True) as s:
        withdrawn = s.execute(select(Withdrawal.amount).where(
            Withdrawal.player_id == player.player_id)).scalars().all()
    staked = [b["stake"] for b in live.bets_of(player.player_id)]
    assert sum(withdrawn) + sum(staked) == ETH and len(withdrawn) + len(staked) == 1
    available, reserved = live.balances(player.player_id)["ETH"]
    assert available == 0 and reserved == sum(withdrawn)
    assert not live.ledger_violations()


async def test_one_bet_key_from_many_sockets_at_once_is_one_bet(race: live.Casino) -> None:
    """The settlement writer takes bets in batches: the same key sent from every socket at
    once (a replayed click, or an attacker hoping a batch settles it twice) is one bet,
    and every socket is answered with that same bet."""
    player = live.new_player("Replayer")
    tabs = await open_tabs(race, player, "/games/dice", SOCKETS)
    key = secrets.token_hex(16)
    try:
        for t in tabs:
            await t.call(GameState, "edit_amount", text="10.00")
        answers = await all_at_once([t.call(GameState, "bet", bet_key=key) for t in tabs])
    finally:
        await asyncio.gather(*(t.close() for t in tabs))
    ids = {a.get(GameState, "result_id") for a in answers}
    assert len(ids) == 1 and None not in ids and 0 not in ids, ids
    bets = live.bets_of(player.player_id)
    assert [b["id"] for b in bets] == list(ids)
    assert live.available(player.player_id, "FUN") == FUN - 1_000 + bets[0]["payout"]
    assert not live.ledger_violations()
