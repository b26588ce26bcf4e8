"""Loyalty claims and the staff decisions through the users layer, on SQLite and
PostgreSQL: each is audited exactly once through the outbox (in the ledger transaction
that moves the money), support cannot decide, a rejection needs a reason."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from casino_app.core.db import ledger_tx
from casino_app.security.outbox_models import AuditOutbox
from casino_app.users import loyalty, staff_loyalty
from casino_app.users.errors import Forbidden, NotFound, ValidationFailed
from casino_app.users.models import Role
from tests.support import loyalty as lt
from tests.support import provider_setup as ps
from tests.users.helpers import audit_rows, make_staff, new_ctx, register, whoami


def test_a_claim_is_audited_once_and_pays_once(any_env: str) -> None:
    token, _ = register()
    me = whoami(token)
    rid = lt.reward(me.player_id, 2_500)
    out = loyalty.claim(token, None, new_ctx())
    assert [(r.id, r.state) for r in out.paid] == [(rid, "paid")]
    assert ps.balance(me.player_id, "BTC") == 2_500
    assert loyalty.claim(token, None, new_ctx()).paid == []
    with pytest.raises(NotFound):
        loyalty.claim(token, rid, new_ctx())
    (row,) = audit_rows("loyalty.claimed")
    assert row.target_user_id == me.user_id and row.actor_user_id == me.user_id
    assert f'"reward_id":{rid}' in row.detail
    with ledger_tx(readonly=True) as s:
        assert all(o.delivered_at is not None for o in s.scalars(select(AuditOutbox)))
    view = loyalty.my_status(token)
    assert [r.state for r in view.rewards] == ["paid"]
    assert ps.invariants_hold() == []


def test_held_claims_are_decided_by_an_admin_only(any_env: str) -> None:
    token, _ = register()
    me = whoami(token)
    first, second = lt.reward(me.player_id, 3_000), lt.reward(me.player_id, 4_000, "ETH")
    lt.flag(me.player_id)
    out = loyalty.claim(token, None, new_ctx())
    assert out.paid == [] and sorted(r.id for r in out.held) == [first, second]
    support, _, _ = make_staff(Role.support)
    admin, admin_id, _ = make_staff(Role.admin)
    assert {h.claim.reward.id for h in staff_loyalty.held(support, new_ctx())} == \
        {first, second}
    with pytest.raises(Forbidden):
        staff_loyalty.approve(support, first, new_ctx())
    with pytest.raises(Forbidden):
        staff_loyalty.approve(token, first, new_ctx())
    with pytest.raises(ValidationFailed):
        staff_loyalty.reject(admin, second, " ", new_ctx())
    assert lt.state_of(first) == lt.state_of(second) == "held"
    paid = staff_loyalty.approve(admin, str(first), new_ctx())
    assert (paid.state, paid.decided_by) == ("paid", admin_id)
    with pytest.raises(ValidationFailed):
        staff_loyalty.approve(admin, first, new_ctx())
    refused = staff_loyalty.reject(admin, second, "hedged dice", new_ctx())
    assert (refused.state, refused.note) == ("rejected", "hedged dice")
    assert ps.balance(me.player_id, "BTC") == 3_000 and ps.balance(me.player_id, "ETH") == 0
    assert len(audit_rows("staff.loyalty_approved")) == 1
    assert len(audit_rows("staff.loyalty_rejected")) == 1
    assert staff_loyalty.held(admin, new_ctx()) == []
    assert ps.invariants_hold() == []
