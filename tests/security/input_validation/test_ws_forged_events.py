"""Forged events: what a browser can send that the page never would.

Reflex routes any event name the socket sends to the state and handler it names, with any
payload. A browser could ask for ``<state>.setvar`` (Reflex's generic setter) or
``set_<var>`` auto-setters, push "client storage" values for any var through
``update_vars_internal`` or the hydrate, or name a ``_private`` method or a helper that is
not an event handler. None of that may change anything the server trusts: the vars keep
the server's values, no row changes, and the next real handler still acts on the server's
truth (the caller from the session token in the database, balances from the ledger, the
open round from the bet table).

The one var a browser legitimately sets is its own session token (localStorage): a tab
that sends another user's token has that user's session, which needs the token itself, so
it is forged here only through ``setvar`` (refused like every other var).
"""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest

from casino_app.games.models import Bet
from casino_app.payments.currencies import currency
from casino_app.ui.state.account import SessionsState
from casino_app.ui.state.auth import LoginState
from casino_app.ui.state.bets import BetsState, BetState
from casino_app.ui.state.deposits import DepositsState
from casino_app.ui.state.fairness import FairnessState
from casino_app.ui.state.games import GameState
from casino_app.ui.state.session import SessionState
from casino_app.ui.state.staff import StaffPlayerState
from casino_app.ui.state.staff_money import StaffMoneyState
from casino_app.ui.state.wallet import WalletState
from casino_app.ui.state.withdraw import WithdrawState
from tests.support import live
from tests.support.reflex_client import ROOT_STATE, UPDATE_VARS_STATE, Tab, state_name, v

pytestmark = pytest.mark.security


def forgeries(victim: live.Account, admin: live.Account, victim_bet: int, victim_round: int
              ) -> list[tuple[Any, str, Any]]:
    """(state, var, value): what an attacker would like the server to believe."""
    return [
        (SessionState, "role", "admin"),
        (SessionState, "is_admin", True),
        (SessionState, "is_staff", True),
        (SessionState, "email", victim.email),
        (SessionState, "totp_enabled", True),
        (WalletState, "balances", {"FUN": "1,000,000.00", "ETH": "100.000000"}),
        (WalletState, "balance", "1,000,000.00"),
        (WalletState, "_reserved", {"FUN": -10**9}),
        (WalletState, "_available", {"FUN": 10**11}),
        (GameState, "round_id", victim_round),
        (GameState, "result_id", victim_bet),
        (GameState, "result_won", True),
        (GameState, "result_profit", "+1,000,000.00 FUN"),
        (GameState, "_amount_cur", "ETH"),
        (StaffPlayerState, "_user_id", admin.user_id),
        (StaffPlayerState, "player", {"user_id": admin.user_id, "email": admin.email}),
        (StaffMoneyState, "_user_id", victim.user_id),
        (LoginState, "_mfa_token", "forged-challenge"),
        (BetState, "bet", {"id": victim_bet}),
        (WithdrawState, "_answered", {"x": "y"}),
    ]


def storage_key(state: Any, var: str) -> str:
    return f"{state_name(state)}.{v(var)}"


async def signed_in_as(tab: Tab, who: live.Account) -> None:
    """The tab's caller as the server resolves it now."""
    await tab.call(SessionState, "refresh")
    assert tab.var(SessionState, "email") == who.email
    assert tab.var(SessionState, "role") == "player"


async def test_forged_setvar_and_client_storage_change_nothing_the_server_trusts(
        attacked: live.Casino) -> None:
    victim, attacker = live.new_player("Victim"), live.new_player("Mallory")
    victim_bet, victim_round = live.victim_bets(victim)
    forged = forgeries(victim, attacked.admin, victim_bet, victim_round)
    forged_token = (SessionState, "token", victim.token)
    before = live.Snapshot.take()
    async with attacked.tab(attacker, "/games/dice") as tab:
        await tab.open()
        await signed_in_as(tab, attacker)
        for state, var, value in [*forged, forged_token]:
            shown = tab.var(state, var)
            answers = {
                "setvar": await tab.call(state, "setvar", var_name=var, value=value),
                f"set_{var}": await tab.call(state, f"set_{var}", value=value),
            }
            if (state, var) != (SessionState, "token"):  # the token is client storage
                answers["update_vars_internal"] = await tab.call(
                    UPDATE_VARS_STATE, "update_vars_internal",
                    vars={storage_key(state, var): value})
            for how, answer in answers.items():
                assert not answer.changed(state, var), \
                    f"{how} set {state.__name__}.{var} to {answer.get(state, var)!r}"
            assert tab.var(state, var) == shown
        assert before.changes() == {}

        # the next real handlers act on the server's truth
        await signed_in_as(tab, attacker)
        await tab.goto("/games/dice")
        fun = currency("FUN")
        assert tab.var(WalletState, "balances")["FUN"] == \
            fun.format(live.available(attacker.player_id, "FUN"))
        await tab.call(GameState, "edit_amount", text="1.00")
        bet = await tab.call(GameState, "bet", bet_key=secrets.token_hex(16))
        placed = live.row_of(Bet, bet.get(GameState, "result_id"))
        assert placed["player_id"] == attacker.player_id and placed["stake"] == 100
        assert placed["currency"] == "FUN" and placed["game"] == "dice"
        assert tab.var(WalletState, "balances")["FUN"] == \
            fun.format(live.available(attacker.player_id, "FUN"))
        revealed = await tab.call(GameState, "reveal", tile=0)
        assert revealed.get(GameState, "error") == "Start a round first."
        locked = await tab.call(StaffPlayerState, "lock", form={"reason": "forged"})
        assert locked.redirects and not locked.get(StaffPlayerState, "notice")

    # a hydrate carrying the forged values as "client storage" is no better
    storage = {storage_key(s, var): value for s, var, value in forged}
    async with attacked.tab(attacker, "/games/dice", storage=storage) as tab:
        await tab.open()
        for state, var, value in forged:
            assert tab.var(state, var) != value, f"the hydrate set {state.__name__}.{var}"
        await signed_in_as(tab, attacker)
        assert tab.var(WalletState, "balances")["FUN"] == \
            currency("FUN").format(live.available(attacker.player_id, "FUN"))

    victim_round_now = live.row_of(Bet, victim_round)
    assert victim_round_now["state"] == "open" and json.loads(victim_round_now["progress"]) == []
    assert live.session_live(victim.token)
    changed = before.changes()
    assert set(changed) <= {"ledger.bets", "ledger.journal_entries", "ledger.postings",
                            "ledger.ledger_accounts", "ledger.seed_pairs",
                            "ledger.player_stats"}, changed
    assert [b["id"] for b in live.bets_of(attacker.player_id)] == [placed["id"]]
    assert not live.ledger_violations()


# (state, private method or non-handler attribute, payload): none of these is an event
PRIVATE_CALLS: list[tuple[Any, str, dict[str, Any]]] = [
    (SessionState, "_handoff_bind", {}),
    (SessionState, "_sid", {}),
    (SessionState, "__setattr__", {"name": "role", "value": "admin"}),
    (SessionState, "is_admin", {}),
    (GameState, "_settled", {"call": "cash_out", "args": ["{victim_round}"]}),
    (GameState, "_show_round", {"r": {"bet_id": "{victim_round}", "state": "open"}}),
    (GameState, "_currency_changed", {"cur": "ETH"}),
    (GameState, "_scale", {"factor": "double"}),
    (GameState, "_set_dice_target", {"text": "1.00"}),
    (GameState, "amount_ok", {}),
    (GameState, "get_state", {"state_cls": "SessionState"}),
    (GameState, "reset", {}),
    (GameState, "dict", {}),
    (WalletState, "_show", {"code": "FUN", "available": 10**12}),
    (WalletState, "_show_view", {"view": {"player_id": "{victim_player}",
                                          "balances": {"FUN": [10**12, 0]}}}),
    (FairnessState, "_rotate", {"client_seed": None, "done": "rotated"}),
    (FairnessState, "_load", {"pid": "{victim_player}"}),
    (BetsState, "_load_page", {"pid": "{victim_player}", "before_id": None}),
    (BetState, "_player", {}),
    (SessionsState, "_load", {"token": "{victim_token}"}),
    (DepositsState, "_load", {"player_id": "{victim_player}"}),
    (WithdrawState, "_show_view", {"view": {"player_id": "{victim_player}"}}),
    (StaffPlayerState, "_load", {}),
    (StaffPlayerState, "_act", {"fn": "set_role", "args": ["admin"]}),
    (StaffMoneyState, "_load", {}),
    (ROOT_STATE, "_clean", {}),
    (ROOT_STATE, "reset", {}),
    (ROOT_STATE, "__setattr__", {"name": "is_hydrated", "value": False}),
    # plain functions of the services and of the states' modules, named as if they were
    # handlers
    ("casino_app.ui.state.session", "signed_in_with", {"sess": None,
                                                       "token": "{victim_token}"}),
    ("casino_app.ui.state.session", "show_user", {"sess": None, "me": None}),
    ("casino_app.games.bets", "cash_out", {"player_id": "{victim_player}",
                                           "bet_id": "{victim_round}"}),
    ("casino_app.users.staff", "set_role", {"token": "{attacker_token}", "user_id": 1,
                                            "role": "admin"}),
]


def filled(value: Any, names: dict[str, Any]) -> Any:
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        return names[value[1:-1]]
    if isinstance(value, dict):
        return {k: filled(x, names) for k, x in value.items()}
    if isinstance(value, list):
        return [filled(x, names) for x in value]
    return value


async def test_private_methods_and_helpers_cannot_be_called_over_the_socket(
        attacked: live.Casino) -> None:
    victim, attacker = live.new_player("Victim"), live.new_player("Mallory")
    _, victim_round = live.victim_bets(victim)
    names = {"victim_token": victim.token, "victim_player": victim.player_id,
             "victim_round": victim_round, "attacker_token": attacker.token}
    before = live.Snapshot.take()
    async with attacked.tab(attacker, "/games/dice") as tab:
        await tab.open()
        await signed_in_as(tab, attacker)
        balances = tab.var(WalletState, "balances")
        for state, name, payload in PRIVATE_CALLS:
            answer = await tab.call(state, name, **filled(payload, names))
            label = f"{state if isinstance(state, str) else state.__name__}.{name}"
            assert answer.delta == {} and answer.events == [], \
                f"{label} ran: the server answered {answer.updates}"
        assert before.changes() == {}
        await signed_in_as(tab, attacker)
        await tab.goto("/games/dice")
        assert tab.var(WalletState, "balances") == balances
        assert tab.var(GameState, "round_id") == 0
        everything = tab.everything()
        for secret in (victim.email, victim.player_id, victim.token):
            assert secret not in everything
    assert json.loads(live.row_of(Bet, victim_round)["progress"]) == []
    assert live.session_live(victim.token) and live.session_live(attacker.token)
