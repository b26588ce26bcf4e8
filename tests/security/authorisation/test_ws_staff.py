"""Staff handlers called by people who are not allowed to use them, over the websocket.

The staff pages' on_load sends a player away, but the handlers behind them are public
methods any socket can call by name. Every handler of every staff state
(``ui/state/staff*.py``) called by a signed-in player must be refused (sent away from the
staff pages) and change nothing, whatever it targets; the admin-only ones (roles, the
audit log, approvals, hold releases, reconciliation of either chain, the withdrawal
queue's actions and refills) must refuse a support account; and support may act on
players only, not on staff accounts, whose page it may not even open.
"""

from __future__ import annotations

import inspect
import re
import secrets
from datetime import timedelta
from typing import Any

import pytest

from casino_app.payments.hold_models import PlayerHold
from casino_app.ui.state import (
    staff,
    staff_custody,
    staff_money,
    staff_providers,
    staff_withdrawals,
)
from casino_app.ui.state.staff import StaffAuditState, StaffPlayerState
from casino_app.ui.state.staff_custody import StaffReconcileState
from casino_app.ui.state.staff_money import StaffAdjustmentsState, StaffMoneyState
from casino_app.ui.state.staff_providers import StaffProvidersState
from casino_app.ui.state.staff_withdrawals import StaffWithdrawalsState
from tests.support import live
from tests.support import provider_setup as ps
from tests.support.reflex_client import Answer, strings

pytestmark = pytest.mark.security

STAFF_MODULES = (staff, staff_money, staff_custody, staff_withdrawals, staff_providers)
# Handlers that only reset the tab's own view (no data read or written): nothing to refuse.
VIEW_ONLY = {("StaffReconcileState", "hide_issues"), ("StaffProvidersState", "close_round")}
ADMIN_ONLY = {
    StaffPlayerState: ("set_role", "approve_role", "reject_role"),
    StaffAuditState: ("on_open", "load_older", "verify"),
    StaffMoneyState: ("release_hold", "lift_lock"),
    StaffAdjustmentsState: ("approve", "reject"),
    StaffReconcileState: ("reconcile_now",),
    StaffWithdrawalsState: ("prepare", "sign", "reject", "request_refill", "cancel_refill",
                            "prepare_psbt", "upload_psbt", "request_btc_refill",
                            "cancel_btc_refill"),
    StaffProvidersState: ("set_enabled",),
}
# What support may do to a player but not to a staff account
ON_PLAYERS_ONLY = ("lock", "unlock", "revoke_all", "revoke")
PAGES = {"StaffSearchState": "/admin", "StaffRoleRequestsState": "/admin",
         "StaffPlayerState": "/admin/player?id={user}",
         "StaffMoneyState": "/admin/player?id={user}", "StaffAuditState": "/admin/audit",
         "StaffAdjustmentsState": "/admin/adjustments",
         "StaffReconcileState": "/admin/reconcile", "StaffWalletsState": "/admin/wallets",
         "StaffWithdrawalsState": "/admin/withdrawals",
         "StaffProvidersState": "/admin/providers"}


def staff_handlers() -> list[tuple[type, str, list[str]]]:
    """(state, handler, its parameter names) for every handler of the staff states."""
    out = []
    for module in STAFF_MODULES:
        for cls in vars(module).values():
            if inspect.isclass(cls) and cls.__module__ == module.__name__ and \
                    hasattr(cls, "event_handlers"):
                for name, handler in cls.event_handlers.items():
                    if name != "setvar":
                        out.append((cls, name,
                                    list(inspect.signature(handler.fn).parameters)[1:]))
    return out


class Targets:
    """Real rows for the handlers to aim at: a victim with a pending adjustment (asked for
    by support), a hold, a queued withdrawal and a session."""

    def __init__(self, casino: live.Casino) -> None:
        from eth_account import Account

        from casino_app.core.db import ledger_tx
        from casino_app.payments import withdrawals
        from casino_app.users import accounts
        from casino_app.users import staff_money as money

        self.victim = live.new_player("Victim")
        # a provider round of the victim's, for the round recall handlers to aim at
        # (played before the hold below, which stops the victim's bets)
        provider = ps.add_bgaming("ws-" + secrets.token_hex(4),
                                 secrets.token_hex(16).encode())
        self.provider = provider.name
        victim = ps.TestPlayer(self.victim.player_id, self.victim.user_id)
        ps.credit(victim.player_id, "FUN", 1_000)
        self.round = ps.play_round(provider, victim, ps.token(provider, victim), 100, 0)
        casino.fund_eth(self.victim, 20_000_000)
        self.address = Account.create().address
        self.withdrawal = withdrawals.request_withdrawal(
            self.victim.player_id, "ETH", "0.01", self.address, secrets.token_hex(12)).id
        self.adjustment = money.request_adjustment(casino.support.token, self.victim.user_id,
                                                   "ETH", "5", "goodwill", live.ctx()).id
        with ledger_tx() as s:
            hold = PlayerHold(player_id=self.victim.player_id, reason="reorg_debt",
                              detail="security suite")
            s.add(hold)
            s.flush()
            self.hold = hold.id
        from casino_app.core.clock import utcnow
        from casino_app.core.db import identity_tx
        from casino_app.users.models import WithdrawalLock

        with identity_tx() as s:  # a risk hold on the victim's withdrawals
            lock = WithdrawalLock(user_id=self.victim.user_id, reason="risk",
                                  created_at=utcnow(), until=utcnow() + timedelta(days=1))
            s.add(lock)
            s.flush()
            self.lock = lock.id
        self.session = accounts.my_sessions(self.victim.token)[0].id
        self.admin_session = accounts.my_sessions(casino.admin.token)[0].id

    def form(self) -> dict[str, Any]:
        return {"query": self.victim.email, "reason": "because", "role": "admin",
                "currency": "ETH", "amount": "5", "hold_id": str(self.hold),
                "lock_id": str(self.lock),
                "note": "released", "request_id": str(self.adjustment),
                "withdrawal_id": str(self.withdrawal), "payment_id": "1",
                "signature": "0x" + "11" * 65, "psbt": "cHNidP8BAAoCAAAAAAAAAAAAAAA=",
                "btc_amount": "0.5", "provider": self.provider, "action": "disable",
                "round": str(self.round)}

    def payload(self, params: list[str], session: int) -> dict[str, Any]:
        values = {"form": self.form(), "request_id": self.adjustment, "session_id": session,
                  "run_id": 1, "chain": "bitcoin", "round_id": self.round,
                  "query": str(self.round)}  # (Ethereum's is the handlers' default)
        return {p: values[p] for p in params}


def said(answer: Answer, state: type) -> str:
    """What the answer tells the person: the page's messages and any toast (a notice sent
    as data, ui/state/notice.py, or a frontend event)."""
    from casino_app.ui.state.notice import NoticeState

    shown = [answer.get(state, name) for name in ("message", "hold_message", "errors")]
    shown.append((answer.get(NoticeState, "notice") or {}).get("text"))
    return " ".join([str(x) for x in shown if x] + list(strings(answer.events)))


def refused(answer: Answer, state: type) -> bool:
    """Sent away from the staff pages, or told no on the page."""
    if any(not r.startswith("/admin") for r in answer.redirects):
        return True
    return any(answer.get(state, name) for name in ("message", "hold_message", "errors"))


async def test_a_player_is_refused_every_staff_handler(attacked: live.Casino) -> None:
    targets = Targets(attacked)
    attacker = live.new_player("Mallory")
    secrets_ = [targets.victim.email, targets.victim.player_id, attacked.admin.email,
                attacked.support.email, targets.address]
    handlers = staff_handlers()
    assert len(handlers) >= 30 and {c.__name__ for c, _, _ in handlers} == set(PAGES)
    before = live.Snapshot.take()
    async with attacked.tab(attacker, "/") as tab:
        await tab.open()
        for page in sorted(set(PAGES.values())):
            landed = await tab.goto(page.format(user=targets.victim.user_id))
            assert any(not r.startswith("/admin") for r in landed.redirects), page
        for state, name, params in handlers:
            page = PAGES[state.__name__].format(user=targets.victim.user_id)
            answer = await tab.call(state, name, page=page,
                                    **targets.payload(params, targets.session))
            label = f"{state.__name__}.{name}"
            if (state.__name__, name) not in VIEW_ONLY:
                assert refused(answer, state), f"{label} was not refused: {answer.updates}"
            leaked = [s for s in secrets_ if s in answer.text]
            assert not leaked, f"{label} showed a player {leaked}"
        assert not [s for s in secrets_ if s in tab.everything()]
    assert before.changes() == {}
    assert live.session_live(targets.victim.token)
    for action in ("staff.search", "staff.lookup"):
        assert live.audit_rows(action, actor_user_id=attacker.user_id) == 0


async def test_support_is_refused_admin_handlers_and_actions_on_staff_accounts(
        attacked: live.Casino) -> None:
    targets = Targets(attacked)
    support, admin = attacked.support, attacked.admin
    before = live.Snapshot.take()
    async with attacked.tab(support, "/admin") as tab:
        await tab.open()
        for state, names in ADMIN_ONLY.items():
            page = PAGES[state.__name__].format(user=targets.victim.user_id)
            for name in names:
                params = [p for c, n, p in staff_handlers() if c is state and n == name][0]
                answer = await tab.call(state, name, page=page,
                                        **targets.payload(params, targets.session))
                assert refused(answer, state), \
                    f"support was not refused {state.__name__}.{name}: {answer.updates}"
                assert re.search(r"admin|staff only", said(answer, state), re.I), \
                    f"{state.__name__}.{name} refused support for another reason: " \
                    f"{said(answer, state)!r}"
                assert not answer.get(StaffAuditState, "rows")
                assert not answer.get(StaffAuditState, "verify_result")
                assert not answer.get(state, "notice")
        # the staff page of the admin: whatever it shows, support may not act on it
        page = PAGES["StaffPlayerState"].format(user=admin.user_id)
        await tab.call(StaffPlayerState, "on_open", page=page)
        for name in ON_PLAYERS_ONLY:
            params = [p for c, n, p in staff_handlers()
                      if c is StaffPlayerState and n == name][0]
            answer = await tab.call(StaffPlayerState, name, page=page,
                                    **targets.payload(params, targets.admin_session))
            assert refused(answer, StaffPlayerState), \
                f"support was not refused StaffPlayerState.{name} on an admin"
            assert re.search(r"admin|staff only", said(answer, StaffPlayerState), re.I)
            assert not answer.get(StaffPlayerState, "notice")
    assert before.changes() == {}
    assert live.session_live(admin.token)


async def test_support_cannot_open_a_staff_accounts_page(attacked: live.Casino) -> None:
    support, admin = attacked.support, attacked.admin
    player = live.new_player("Looked Up")
    async with attacked.tab(support, "/admin") as tab:
        await tab.open()
        # a player's page opens (the control)
        shown = await tab.call(StaffPlayerState, "on_open",
                               page=f"/admin/player?id={player.user_id}")
        assert (shown.get(StaffPlayerState, "player") or {}).get("email") == player.email
        # an admin's page does not
        lookups = live.audit_rows("staff.lookup", support.user_id, admin.user_id)
        answer = await tab.call(StaffPlayerState, "on_open",
                                page=f"/admin/player?id={admin.user_id}")
        assert refused(answer, StaffPlayerState), \
            "support opened an admin's staff page: " + repr(
                answer.get(StaffPlayerState, "player"))
        assert not answer.get(StaffPlayerState, "player")
        assert not answer.get(StaffPlayerState, "sessions")
        assert admin.email not in answer.text
        assert live.audit_rows("staff.lookup", support.user_id, admin.user_id) == lookups
