"""Player holds on the staff player page: staff see a player's holds and chain deposits;
only an admin releases a hold, with a note, once, audited (``staff.hold_released``); the
ledger keeps only the admin's user id. On SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest

from casino_app.core.clock import utcnow
from casino_app.core.db import ledger_tx
from casino_app.payments import holds
from casino_app.payments.deposit_models import ChainDeposit
from casino_app.payments.hold_models import PlayerHold
from casino_app.users import staff_money
from casino_app.users.errors import Forbidden, NotAuthenticated, NotFound, ValidationFailed
from casino_app.users.models import Role
from tests.users.helpers import audit_rows, audited, make_staff, new_ctx, register, user_row

RELEASED = "staff.hold_released"


def _player() -> tuple[str, int, str]:
    token, addr = register()
    u = user_row(addr)
    return token, u.id, u.player_id


def _hold(player_id: str, detail: str = "ethereum 0xabc: owes 5 ETH base units") -> int:
    """A hold as the watcher leaves it when a reorg reverses a spent deposit."""
    with ledger_tx() as s:
        h = PlayerHold(player_id=player_id, reason="deposit_reversed", detail=detail,
                       created_at=utcnow())
        s.add(h)
        s.flush()
        return h.id


def _deposit(player_id: str) -> int:
    with ledger_tx() as s:
        d = ChainDeposit(chain="ethereum", tx_hash="0x" + "ab" * 32, log_index=-1,
                         block_number=7, block_hash="0x" + "cd" * 32, currency="ETH",
                         address="0x" + "11" * 20, sender="0x" + "22" * 20,
                         player_id=player_id, amount_raw=str(10**16 + 123),
                         amount=10_000_000, state="reversed", credits=1, owed=5,
                         created_at=utcnow(), updated_at=utcnow())
        s.add(d)
        s.flush()
        return d.id


def _row(hold_id: int) -> PlayerHold:
    with ledger_tx(readonly=True) as s:
        return s.get(PlayerHold, hold_id)


def _on_hold(player_id: str) -> bool:
    with ledger_tx(readonly=True) as s:
        return holds.on_hold(s, player_id)


def test_staff_see_holds_and_chain_deposits_and_an_admin_releases_once(any_env: str) -> None:
    support, _, _ = make_staff(Role.support)
    admin, admin_id, _ = make_staff(Role.admin)
    _, uid, pid = _player()
    hold = _hold(pid)
    dep = _deposit(pid)

    money = staff_money.player_money(support, uid, new_ctx())
    assert [(h.id, h.released_at) for h in money.holds] == [(hold, None)]
    assert [(d.id, d.state, d.owed) for d in money.deposits] == [(dep, "reversed", 5)]
    assert _on_hold(pid)

    with audited({RELEASED: 1}):
        view = staff_money.release_hold(admin, uid, str(hold), "  repaid   by bank ",
                                        new_ctx())
    assert view.id == hold and view.released_by == admin_id and view.released_at
    row = _row(hold)
    assert row.released_at is not None and row.released_by == admin_id
    assert not _on_hold(pid), "betting and withdrawals resume"
    ev, = audit_rows(RELEASED)
    assert (ev.actor_user_id, ev.actor_role, ev.target_user_id) == (admin_id, "admin", uid)
    assert f'"hold_id":{hold}' in ev.detail and '"note":"repaid by bank"' in ev.detail

    # a second release is refused and changes nothing
    with pytest.raises(ValidationFailed, match="already released"), audited({}):
        staff_money.release_hold(admin, uid, hold, "again", new_ctx())
    assert _row(hold).released_at == row.released_at

    # the staff view lists it as released
    money = staff_money.player_money(admin, uid, new_ctx())
    assert [(h.id, h.released_by) for h in money.holds] == [(hold, admin_id)]


def test_only_an_admin_releases_a_hold(any_env: str) -> None:
    support, _, _ = make_staff(Role.support)
    player, uid, pid = _player()
    hold = _hold(pid)
    with pytest.raises(Forbidden, match="Only an admin"), audited({}):
        staff_money.release_hold(support, uid, hold, "please", new_ctx())
    with pytest.raises(Forbidden), audited({}):
        staff_money.release_hold(player, uid, hold, "my own", new_ctx())
    with pytest.raises(NotAuthenticated), audited({}):
        staff_money.release_hold(None, uid, hold, "anyone", new_ctx())
    assert _row(hold).released_at is None and _on_hold(pid)


def test_release_needs_a_note_and_the_players_own_open_hold(any_env: str) -> None:
    admin, _, _ = make_staff(Role.admin)
    _, uid, pid = _player()
    _, _, other_pid = _player()
    hold = _hold(pid)
    other = _hold(other_pid)
    for note in ("", "   ", None, 42):
        with pytest.raises(ValidationFailed, match="note") as err, audited({}):
            staff_money.release_hold(admin, uid, hold, note, new_ctx())
        assert err.value.field == "note"
    with pytest.raises(ValidationFailed, match="200"):
        staff_money.release_hold(admin, uid, hold, "x" * 201, new_ctx())
    # a hold of another player, through this player's page: not found
    with pytest.raises(NotFound), audited({}):
        staff_money.release_hold(admin, uid, other, "wrong page", new_ctx())
    for junk in (0, -1, 2**40, True, "1x", "", None, 1.0, 999_999):
        with pytest.raises(NotFound), audited({}):
            staff_money.release_hold(admin, uid, junk, "junk", new_ctx())
    with pytest.raises(NotFound):
        staff_money.release_hold(admin, 999_999, hold, "nobody", new_ctx())
    assert _row(hold).released_at is None and _row(other).released_at is None
    assert _on_hold(pid) and _on_hold(other_pid)
