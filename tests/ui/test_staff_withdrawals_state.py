"""The staff withdrawal queue from the browser's side: an anonymous caller and a signed-in
player change nothing and see nothing (sent to sign in, or to their account); support
reads the queue but cannot prepare, sign, reject or refill; an admin rejects from the
page (audited), and is told when the Safe is not configured."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from casino_app.core.clock import utcnow
from casino_app.core.db import ledger_tx
from casino_app.payments import ledger
from casino_app.payments.eth.safe_models import SafePayment
from casino_app.payments.withdrawal_models import Withdrawal
from casino_app.users.models import Role
from tests.ui.test_state_security import _call, _fingerprint, _fresh_root, _substate
from tests.users.helpers import audit_rows, make_staff, register, user_row


@pytest.fixture
def world(app_env) -> dict[str, Any]:  # noqa: ANN001
    """A player's large withdrawal awaiting approval (reserved), a refill waiting for
    signatures, an admin, support and another player."""
    token, addr = register()
    victim = user_row(addr)
    now = utcnow()
    with ledger_tx() as s:
        ledger.transfer(s, "test-deposit", "deposit", ledger.house_account(s, "ETH", "custody"),
                        ledger.player_account(s, victim.player_id, "ETH"), 90_000_000)
        w = Withdrawal(key="k-ui", player_id=victim.player_id, chain="ethereum",
                       currency="ETH", amount=60_000_000, fee=0,
                       address="0x" + "ab" * 20, state="awaiting_approval", created_at=now,
                       updated_at=now)
        s.add(w)
        s.flush()
        ledger.reserve(s, f"withdrawal:{w.id}", "withdrawal",
                       ledger.player_account(s, victim.player_id, "ETH"),
                       ledger.house_account(s, "ETH", "custody"), 60_000_000)
        p = SafePayment(chain="ethereum", kind="refill", currency="ETH", amount=1_000,
                        recipient="0x" + "cd" * 20, safe_address="0x" + "ef" * 20,
                        chain_id=31337, to_address="0x" + "cd" * 20, value_wei="1000000000000",
                        call_data="0x", operation=0, safe_nonce=0, nonce_slot=0,
                        safe_tx_hash="0x" + "12" * 32, required=2,
                        state="awaiting_signatures", requested_by=1, created_at=now,
                        updated_at=now)
        s.add(p)
        s.flush()
        ids = {"withdrawal": w.id, "payment": p.id}
    admin, _, _ = make_staff(Role.admin)
    support, _, _ = make_staff(Role.support)
    other_player, _ = register()
    return {"player": token, "other_player": other_player, "victim": victim.id,
            "admin": admin, "support": support, **ids}


def _state(token: str | None) -> Any:
    from casino_app.ui.state.session import SessionState
    from casino_app.ui.state.staff_withdrawals import StaffWithdrawalsState

    root = _fresh_root()
    if token:
        _substate(root, SessionState).token = token
    return _substate(root, StaffWithdrawalsState)


def _run(state: Any, name: str, *args: Any) -> list[Any]:
    return asyncio.run(_call(state, type(state).event_handlers[name], list(args)))


def _handlers(w: dict[str, Any]) -> list[tuple[str, list[Any]]]:
    wid, pid = str(w["withdrawal"]), str(w["payment"])
    return [
        ("on_open", []), ("refresh", []),
        ("prepare", [{"withdrawal_id": wid}]),
        ("sign", [{"payment_id": pid, "signature": "0x" + "11" * 65}]),
        ("reject", [{"withdrawal_id": wid, "reason": "mine now"}]),
        ("request_refill", [{"currency": "ETH", "amount": "1"}]),
        ("cancel_refill", [{"payment_id": pid, "reason": "mine now"}]),
        ("prepare_psbt", [{"withdrawal_id": wid}]),
        ("upload_psbt", [{"payment_id": pid, "psbt": "cHNidP8BAAoCAAAAAAAAAAAAAAA="}]),
        ("request_btc_refill", [{"btc_amount": "0.5"}]),
        ("cancel_btc_refill", [{"payment_id": pid, "reason": "mine now"}]),
    ]


def _shown(state: Any) -> dict[str, Any]:
    names = ("awaiting", "in_flight", "recent", "refills", "safe", "notice")
    return {n: getattr(state, n) for n in names if getattr(state, n) not in ("", [])}


@pytest.mark.parametrize("caller,where", [(None, "/login"), ("player", "/account"),
                                          ("other_player", "/account")])
def test_anonymous_and_player_callers_change_nothing_and_see_nothing(
        world: dict[str, Any], caller: str | None, where: str) -> None:
    token = world[caller] if caller else None
    for name, args in _handlers(world):
        state = _state(token)
        before = _fingerprint()
        results = _run(state, name, *args)
        assert _fingerprint() == before, f"{name} changed data for {caller}"
        assert _shown(state) == {}, f"{name} showed data to {caller}"
        assert where in repr(results), f"{name}: {results!r}"


def test_support_reads_the_queue_but_cannot_act(world: dict[str, Any]) -> None:
    state = _state(world["support"])
    _run(state, "on_open")
    assert state.loaded and [r.id for r in state.awaiting] == [world["withdrawal"]]
    row = state.awaiting[0]
    assert (row.amount, row.user_id, row.needs_prepare, row.approvals) == \
        ("0.060000", world["victim"], True, "")
    assert [r.id for r in state.refills] == [world["payment"]]
    assert state.refills[0].safe.can_sign and state.refills[0].safe.signatures == "0 of 2"
    for name, args in _handlers(world)[2:]:
        before = _fingerprint()
        _run(state, name, *args)
        assert _fingerprint() == before, f"support's {name} changed data"
        assert state.message == "Only an admin can approve, sign, reject or refill.", name
        assert state.notice == ""


def test_an_admin_rejects_from_the_page_and_is_told_without_a_safe(world: dict[str, Any]
                                                                    ) -> None:
    state = _state(world["admin"])
    _run(state, "on_open")
    before = _fingerprint()
    _run(state, "prepare", {"withdrawal_id": str(world["withdrawal"])})
    assert "not configured" in state.message and _fingerprint() == before
    _run(state, "sign", {"payment_id": str(world["payment"]), "signature": "0x" + "11" * 65})
    assert "not configured" in state.message and _fingerprint() == before
    _run(state, "reject", {"withdrawal_id": "abc", "reason": "x"})
    assert state.message == "No such withdrawal." and _fingerprint() == before
    _run(state, "reject", {"withdrawal_id": str(world["withdrawal"]), "reason": " "})
    assert "Say why" in state.message and _fingerprint() == before
    _run(state, "reject", {"withdrawal_id": str(world["withdrawal"]),
                           "reason": "source of funds"})
    assert state.message == "" and "rejected" in state.notice
    assert state.awaiting == [] and [r.state for r in state.recent] == ["rejected"]
    [row] = audit_rows("withdrawal.rejected")
    assert row.target_user_id == world["victim"]
    _run(state, "cancel_refill", {"payment_id": str(world["payment"]), "reason": "no"})
    assert "cancelled" in state.notice and state.refills[0].safe.pay_state == "cancelled"
    with ledger_tx(readonly=True) as s:
        assert s.get(Withdrawal, world["withdrawal"]).state == "rejected"


def test_a_rejected_signed_payment_is_shown_as_cancelling_with_what_to_do(
        world: dict[str, Any]) -> None:
    """A withdrawal whose Safe payment has its two signatures, and a signed refill: the
    admin rejects / cancels them from the page; the page says the money stays reserved
    and what the owners must do (a rejection with the payment's Safe nonce), and offers
    no signing, rejecting or cancelling of them any more."""
    from casino_app.payments.models import PendingTransfer

    now, wid = utcnow(), world["withdrawal"]
    with ledger_tx() as s:
        w = s.get(Withdrawal, wid)
        w.approved_by, w.approved_by_2 = 11, 12
        common = dict(chain="ethereum", currency="ETH", safe_address="0x" + "ef" * 20,
                      chain_id=31337, value_wei="1000000000000", call_data="0x", operation=0,
                      required=2, state="ready", requested_by=1, created_at=now,
                      updated_at=now)
        pay = SafePayment(kind="withdrawal", withdrawal_id=wid, active_withdrawal_id=wid,
                          amount=60_000_000, recipient=w.address, to_address=w.address,
                          safe_nonce=3, nonce_slot=3, safe_tx_hash="0x" + "34" * 32,
                          **common)
        refill = SafePayment(kind="refill", amount=1_000, recipient="0x" + "cd" * 20,
                             to_address="0x" + "cd" * 20, safe_nonce=4, nonce_slot=4,
                             safe_tx_hash="0x" + "56" * 32, **common)
        s.add_all([pay, refill])
        s.flush()
        refill_id = refill.id
    state = _state(world["admin"])
    _run(state, "on_open")
    _run(state, "reject", {"withdrawal_id": str(wid), "reason": "source of funds"})
    assert state.message == "" and "stays reserved" in state.notice
    assert state.awaiting == [] and state.recent == []
    [row] = state.in_flight
    assert (row.id, row.state, row.safe.pay_state, row.safe.can_sign) == \
        (wid, "rejecting", "cancelling", False)
    assert "Cancelling: waiting for the Safe nonce 3 to be used by another transaction" \
        in row.note and "rejection (an empty transaction with nonce 3)" in row.note
    assert "money stays reserved" in row.note
    with ledger_tx(readonly=True) as s:
        assert s.get(Withdrawal, wid).state == "rejecting"
        assert s.query(PendingTransfer).filter_by(key=f"withdrawal:{wid}").one().state \
            == "pending"
    _run(state, "cancel_refill", {"payment_id": str(refill_id), "reason": "not needed"})
    assert "Cancelling: waiting for the Safe nonce 4" in state.notice
    [shown] = [r for r in state.refills if r.id == refill_id]
    assert (shown.safe.pay_state, shown.safe.can_cancel, shown.safe.can_sign) == \
        ("cancelling", False, False)
    assert "nonce 4" in shown.safe.status
    before = _fingerprint()  # neither can be rejected or cancelled again
    _run(state, "reject", {"withdrawal_id": str(wid), "reason": "again"})
    assert state.message and _fingerprint() == before
    _run(state, "cancel_refill", {"payment_id": str(refill_id), "reason": "again"})
    assert "cancelling" in state.message and _fingerprint() == before
