"""Replayed 2FA codes, over the websocket.

A TOTP code is valid for about a minute and a half (its step and one step of drift either
way), so one that was seen (over a shoulder, in a phishing proxy, in a log) is worth
replaying. A code that signed a player in must not work again within its window: not
for a second sign-in (not even one racing the first), a withdrawal, or turning 2FA off.
The test enrols through the handlers, knows the secret from the enrolment page, and makes
codes with pyotp.
"""

from __future__ import annotations

import asyncio
import time

import pyotp
import pytest
from eth_account import Account

from casino_app.payments.withdrawal_models import Withdrawal
from casino_app.ui.state.account import SecurityState
from casino_app.ui.state.auth import LoginState
from casino_app.ui.state.session import SessionState
from casino_app.ui.state.withdraw import WithdrawState
from casino_app.users import totp
from casino_app.users.errors import InvalidCode
from tests.support import live
from tests.support.reflex_client import Tab

pytestmark = pytest.mark.security

USED_ONCE = str(InvalidCode())  # "That code is not valid. Codes can be used only once."


def live_sessions(user_id: int) -> list[int]:
    from casino_app.core.db import identity_tx
    from casino_app.users import sessions

    with identity_tx(readonly=True) as s:
        return [v.id for v in sessions.list_live(s, user_id)]


async def at_code_step(casino: live.Casino, player: live.Account) -> Tab:
    """A new tab on the sign-in page, past the password: it now asks for the code."""
    tab = casino.tab(None, "/login")
    await tab.open()
    answer = await tab.call(LoginState, "submit_password",
                            form={"email": player.email, "password": player.password})
    assert answer.get(LoginState, "step") == "code", answer.get(LoginState, "message")
    return tab


async def test_a_code_that_signed_in_cannot_be_used_again(attacked: live.Casino) -> None:
    player = live.new_player("Careful", fun=False)
    attacked.fund_eth(player, 20_000_000)
    # --- 2FA on, through the security page's handlers ---
    async with attacked.tab(player, "/account/security") as tab:
        await tab.open()
        started = await tab.call(SecurityState, "start_totp",
                                 form={"current_password": player.password, "current_code": ""})
        secret = started.get(SecurityState, "manual_secret")
        assert secret, started.get(SecurityState, "errors")
        confirmed = await tab.call(SecurityState, "confirm_totp",
                                   form={"code": pyotp.TOTP(secret).now()})
        assert confirmed.get(SecurityState, "stage") == "codes"
        player.token = tab.token  # rotated by the enrolment
    enrolled_step = live.user_by_id(player.user_id).totp_last_step
    assert enrolled_step is not None
    # the next step's code: accepted once (one step of drift), valid for another minute
    code = pyotp.TOTP(secret).at((enrolled_step + 1) * totp.STEP)

    # --- two sign-ins racing with the same code: one gets in ---
    first, second = await asyncio.gather(at_code_step(attacked, player),
                                         at_code_step(attacked, player))
    sessions_before = live_sessions(player.user_id)
    try:
        answers = await asyncio.gather(first.call(LoginState, "submit_code", form={"code": code}),
                                       second.call(LoginState, "submit_code", form={"code": code}))
        signed_in = [t for t, a in zip((first, second), answers, strict=True)
                     if a.get(SessionState, "signed_in")]
        assert len(signed_in) == 1, "one code signed in twice"
        loser = answers[1] if signed_in[0] is first else answers[0]
        assert loser.get(LoginState, "message") == USED_ONCE
        assert live.user_by_id(player.user_id).totp_last_step == enrolled_step + 1
        sessions_after_sign_in = live_sessions(player.user_id)
        assert len(sessions_after_sign_in) == len(sessions_before) + 1
        tab = signed_in[0]

        # --- the same code again: another sign-in ---
        third = await at_code_step(attacked, player)
        try:
            again = await third.call(LoginState, "submit_code", form={"code": code})
            assert again.get(LoginState, "message") == USED_ONCE
            assert not again.get(SessionState, "signed_in") and not third.token
        finally:
            await third.close()

        # --- a withdrawal ---
        await tab.goto("/wallet")
        assert tab.var(WithdrawState, "options"), "withdrawals are off"
        balance = live.balances(player.player_id)["ETH"]
        paid = await tab.call(WithdrawState, "request", key=f"replay-{time.time_ns()}",
                              form={"currency": "ETH", "amount": "0.01", "code": code,
                                    "address": Account.create().address})
        assert paid.get(WithdrawState, "errors") == {"code": USED_ONCE}
        assert not paid.get(WithdrawState, "notice")

        # --- turning 2FA off ---
        await tab.goto("/account/security")
        off = await tab.call(SecurityState, "disable_totp",
                             form={"current_password": player.password, "current_code": code})
        assert off.get(SecurityState, "errors") == {"current_code": USED_ONCE}
        assert not off.get(SecurityState, "notice")
    finally:
        await asyncio.gather(first.close(), second.close())

    # the code was still inside its window: only its use made it worthless
    assert totp.matching_step(secret, code, time.time()) == enrolled_step + 1, \
        "the test ran too slowly: the code left its window, so the refusals prove nothing"
    user = live.user_by_id(player.user_id)
    assert user.totp_enabled and user.totp_last_step == enrolled_step + 1
    assert live_sessions(player.user_id) == sessions_after_sign_in
    assert live.balances(player.player_id)["ETH"] == balance

    from sqlalchemy import select

    from casino_app.core.db import ledger_tx

    with ledger_tx(readonly=True) as s:
        assert s.execute(select(Withdrawal.id).where(
            Withdrawal.player_id == player.player_id)).first() is None
