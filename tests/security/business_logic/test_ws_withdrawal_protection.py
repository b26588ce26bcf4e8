"""Account-takeover defences of withdrawals, attacked over the websocket of the real app.

Whoever holds a player's session (a stolen cookie, an unlocked laptop) but not their
second factor tries to get the money out: a withdrawal with the second factor left out,
forged or guessed; the mailed confirmation link forged; a fresh address of theirs used at
once instead of after its cooling period (other spellings of it, the allow-list on the
way); the allow-list changed without the second factor. Nothing is paid or queued,
nothing is allow-listed, and the balance only moves by what a legitimate request
reserves.
"""

from __future__ import annotations

import secrets

import pytest
from eth_account import Account

from casino_app.payments import withdrawal_addresses
from casino_app.ui.state.withdraw import WithdrawConfirmState, WithdrawState
from tests.support import live

pytestmark = pytest.mark.security

WRONG = "not the password at all"


def _withdrawals(player_id: str) -> list[dict]:
    from sqlalchemy import select

    from casino_app.core.db import ledger_tx
    from casino_app.payments.withdrawal_models import Withdrawal

    with ledger_tx(readonly=True) as s:
        return [{"id": w.id, "state": w.state, "address": w.address, "amount": w.amount}
                for w in s.execute(select(Withdrawal).where(
                    Withdrawal.player_id == player_id)).scalars()]


def _shown(answer) -> str:  # noqa: ANN001
    return str(answer.get(WithdrawState, "errors") or "") + \
        str(answer.get(WithdrawState, "message") or "")


async def test_a_withdrawal_without_its_second_factor_moves_nothing(attacked: live.Casino
                                                                   ) -> None:
    player = live.new_player("NoFactor", fun=False)
    attacked.fund_eth(player, 20_000_000)
    address = Account.create().address
    live.allow_address(player, address)  # so that only the second factor stands in the way
    before = live.balances(player.player_id)["ETH"]
    base = {"currency": "ETH", "amount": "0.01", "address": address}
    forged = [base, base | {"method": "password"},
              base | {"method": "password", "password": ""},
              base | {"method": "password", "password": WRONG},
              base | {"method": "password", "password": [player.password]},
              base | {"method": ["password"], "password": player.password},
              base | {"method": "totp", "code": "123456"},
              base | {"method": "none", "password": player.password},
              base | {"method": "Password", "password": player.password},
              base | {"code": player.password}]
    async with attacked.tab(player, "/wallet") as tab:
        await tab.open()
        assert tab.var(WithdrawState, "options"), "withdrawals are off"
        for form in forged:
            answer = await tab.call(WithdrawState, "request", form=form,
                                    key=secrets.token_hex(16))
            assert not answer.get(WithdrawState, "notice"), form
            assert _shown(answer), form
        assert _withdrawals(player.player_id) == []
        assert live.balances(player.player_id)["ETH"] == before

        # the mailed link is a factor: the withdrawal waits, reserved, for its link ...
        answer = await tab.call(WithdrawState, "request", key=secrets.token_hex(16),
                                form=base | {"method": "mail"})
        assert "open the link we mailed you" in answer.get(WithdrawState, "notice")
    [waiting] = _withdrawals(player.player_id)
    assert waiting["state"] == "unconfirmed"
    # ... and a forged or guessed link confirms nothing
    async with attacked.tab(player, "/wallet") as tab:
        await tab.open()
        for token in ("", secrets.token_urlsafe(32), str(waiting["id"]), "' OR 1=1 --",
                      "x" * 5000):
            page = f"/withdrawal/confirm?token={token}"
            answer = await tab.call(WithdrawConfirmState, "on_open", page=page)
            assert answer.get(WithdrawConfirmState, "status") == "failed", token
    assert _withdrawals(player.player_id) == [waiting]
    # the audit trail shows the wrong password to staff
    assert live.audit_rows("withdrawal.second_factor_failed",
                           actor_user_id=player.user_id)


async def test_a_new_address_cannot_skip_its_cooling_period(attacked: live.Casino) -> None:
    player = live.new_player("Cooler", fun=False)
    attacked.fund_eth(player, 20_000_000)
    thief = Account.create().address
    before = live.balances(player.player_id)["ETH"]
    form = {"currency": "ETH", "amount": "0.01", "address": thief, "method": "password",
            "password": player.password}
    async with attacked.tab(player, "/wallet") as tab:
        await tab.open()
        first = await tab.call(WithdrawState, "request", form=form, key=secrets.token_hex(16))
        errors = first.get(WithdrawState, "errors") or {}
        assert "can be used from" in errors.get("address", ""), errors
        # the form says from when the address is usable
        rows = first.get(WithdrawState, "addresses") or tab.var(WithdrawState, "addresses")
        assert any(r["address"] == thief and r["note"].startswith("new: usable from")
                   for r in rows), rows
        # other spellings of the same address, again and again, many tabs at once
        for spelling in (thief.lower(), "0x" + thief[2:].lower(), f"  {thief}  ", thief):
            answer = await tab.call(WithdrawState, "request", form=form | {"address": spelling},
                                    key=secrets.token_hex(16))
            assert not answer.get(WithdrawState, "notice"), spelling
        # the allow-list would skip the cooling: without the second factor it stays shut
        for attempt in ({}, {"password": ""}, {"password": WRONG}, {"code": "000000"},
                        {"password": [player.password]}):
            answer = await tab.call(WithdrawState, "change_allow_list",
                                    form={"currency": "ETH", "address": thief,
                                          "action": "add"} | attempt)
            assert not answer.get(WithdrawState, "allow_notice"), attempt
        # a forged action does nothing either
        for action in ("allow", "ADD", ["add"], None):
            answer = await tab.call(WithdrawState, "change_allow_list",
                                    form={"currency": "ETH", "address": thief,
                                          "action": action, "password": player.password})
            assert not answer.get(WithdrawState, "allow_notice"), action
    [row] = withdrawal_addresses.addresses_of(player.player_id)
    assert (row.address, row.allowed) == (thief, False)
    assert _withdrawals(player.player_id) == []
    assert live.balances(player.player_id)["ETH"] == before


async def test_the_allow_list_does_not_change_without_the_second_factor(attacked: live.Casino
                                                                        ) -> None:
    player = live.new_player("Lister", fun=False)
    live.enrol_2fa(player)        # 2FA on: the code is the factor, the password is not
    other = live.new_player("Bystander", fun=False)
    mine = Account.create().address
    async with attacked.tab(player, "/wallet") as tab:
        await tab.open()
        assert tab.var(WithdrawState, "totp_on")
        for attempt in ({"password": player.password}, {"code": ""}, {"code": "000000"},
                        {"code": player.password}, {"code": ["123456"]}, {}):
            answer = await tab.call(WithdrawState, "change_allow_list",
                                    form={"currency": "ETH", "address": mine,
                                          "action": "add"} | attempt)
            assert not answer.get(WithdrawState, "allow_notice"), attempt
            assert answer.get(WithdrawState, "allow_errors") or \
                answer.get(WithdrawState, "allow_message"), attempt
        # with the code it would work, but 2FA was just turned on: changes wait (locked)
        from casino_app.users import totp

        step = live.user_by_id(player.user_id).totp_last_step
        good = player.totp().at((step + 1) * totp.STEP)  # the next step's code: unused
        answer = await tab.call(WithdrawState, "change_allow_list",
                                form={"currency": "ETH", "address": mine, "action": "add",
                                      "code": good})
        assert "locked until" in answer.get(WithdrawState, "allow_message"), answer.delta
    assert withdrawal_addresses.addresses_of(player.player_id) == []
    assert withdrawal_addresses.addresses_of(other.player_id) == []
