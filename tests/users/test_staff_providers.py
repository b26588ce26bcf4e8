"""Staff use cases on game providers (users/staff_providers.py): support and admins read
the providers, RTP and alerts (not audited: no player named) and open any round (the
search and the view audited, the view against the player's account); only an admin
disables or enables a provider, with a reason, audited; players and anonymous callers
get nothing; support opens rounds of player accounts only."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from casino_app.games.providers import alerts, registry
from casino_app.games.providers.registry import ProviderConfig
from casino_app.payments.players import ensure_player
from casino_app.users import staff_providers
from casino_app.users.errors import (
    Forbidden,
    NotAuthenticated,
    NotFound,
    PlayersOnly,
    ValidationFailed,
)
from casino_app.users.models import Role
from tests.support import provider_setup as ps
from tests.users.helpers import audited, make_staff, new_ctx, register, user_row


@pytest.fixture
def world(app_env) -> dict[str, Any]:  # noqa: ANN001
    prov = ps.add_bgaming("staff-bg", secrets.token_hex(16).encode())
    token, addr = register()
    u = user_row(addr)
    player = ps.TestPlayer(u.player_id, u.id)
    ps.credit(u.player_id, "FUN", 10_000)
    rid = ps.play_round(prov, player, ps.token(prov, player), 100, 250)
    admin, admin_id, _ = make_staff(Role.admin)
    support, _, _ = make_staff(Role.support)
    alerts.raise_alert(prov.id, "fair_mismatch", "high", "round-x", "seed does not hash")
    return {"prov": prov, "player": token, "player_user": u.id, "player_id": u.player_id,
            "round": rid, "admin": admin, "admin_id": admin_id, "support": support}


def test_support_reads_providers_rtp_alerts_and_opens_a_round_audited(
        world: dict[str, Any]) -> None:
    with audited({}):
        o = staff_providers.overview(world["support"])
    assert [(p.name, p.enabled) for p in o.providers] == [("staff-bg", True)]
    assert [(a.kind, a.subject, a.severity) for a in o.alerts] == \
        [("fair_mismatch", "round-x", "high")]
    assert o.games == []  # no catalogue synced
    with audited({"staff.provider_round_search": 1}):
        found = staff_providers.find_rounds(world["support"], f"#{world['round']}", new_ctx())
    assert [r.id for r in found] == [world["round"]]
    with audited({"staff.provider_round_view": 1}):
        shown = staff_providers.round_detail(world["support"], world["round"], new_ctx())
    assert shown.user_id == world["player_user"]
    d = shown.detail
    assert (d.round.staked_text, d.round.paid_text) == ("1.00 FUN", "2.50 FUN")
    assert [x.status for x in d.receipts] == ["OK", "OK"] and d.receipts[0].signature == "sig"
    assert d.recall_note == "This provider's dialect has no round recall."
    from casino_app.core.db import identity_tx
    from casino_app.security.audit import recent

    with identity_tx(readonly=True) as s:
        row = recent(s, 1)[0]
    assert row.action == "staff.provider_round_view"
    assert row.target_user_id == world["player_user"]
    assert str(world["round"]) in row.detail
    with audited({}), pytest.raises(NotFound):
        staff_providers.round_detail(world["support"], "nope", new_ctx())
    with audited({}), pytest.raises(ValidationFailed):
        staff_providers.find_rounds(world["support"], " ", new_ctx())


def test_only_an_admin_disables_or_enables_a_provider_with_a_reason(
        world: dict[str, Any]) -> None:
    ctx = new_ctx()
    with audited({}), pytest.raises(Forbidden, match="Only an admin"):
        staff_providers.set_enabled(world["support"], "staff-bg", False, "looks bad", ctx)
    for name, enabled, reason, error in (
            ("staff-bg", False, " ", ValidationFailed), ("staff-bg", "no", "x", ValidationFailed),
            ("other", False, "why", NotFound), (None, False, "why", ValidationFailed),
            ("x" * 100, False, "why", ValidationFailed)):
        with audited({}), pytest.raises(error):
            staff_providers.set_enabled(world["admin"], name, enabled, reason, ctx)
    assert registry.by_name("staff-bg").enabled
    with audited({"staff.provider_disabled": 1}):
        view = staff_providers.set_enabled(world["admin"], "staff-bg", False,
                                           "commit-reveal mismatches", ctx)
    assert not view.enabled and view.disabled_at is not None
    registry.forget()
    assert not registry.by_name("staff-bg").enabled
    with audited({"staff.provider_enabled": 1}):
        view = staff_providers.set_enabled(world["admin"], "staff-bg", True, "fixed", ctx)
    assert view.enabled and view.disabled_at is None


def test_players_and_anonymous_callers_get_nothing(world: dict[str, Any]) -> None:
    calls = [
        lambda t: staff_providers.overview(t),
        lambda t: staff_providers.find_rounds(t, str(world["round"]), new_ctx()),
        lambda t: staff_providers.round_detail(t, world["round"], new_ctx()),
        lambda t: staff_providers.set_enabled(t, "staff-bg", False, "mine", new_ctx()),
    ]
    for call in calls:
        with audited({}):
            with pytest.raises(NotAuthenticated):
                call(None)
            with pytest.raises(Forbidden):
                call(world["player"])
    assert registry.by_name("staff-bg").enabled


def test_support_opens_rounds_of_player_accounts_only(world: dict[str, Any]) -> None:
    from casino_app.core.db import identity_tx
    from casino_app.users.models import User

    prov: ProviderConfig = world["prov"]
    with identity_tx(readonly=True) as s:
        admin_pid = s.get(User, world["admin_id"]).player_id
    ensure_player(admin_pid)
    ps.credit(admin_pid, "FUN", 1_000)
    staff_player = ps.TestPlayer(admin_pid, world["admin_id"])
    rid = ps.play_round(prov, staff_player, ps.token(prov, staff_player), 100, 0)
    with audited({}), pytest.raises(PlayersOnly):
        staff_providers.round_detail(world["support"], rid, new_ctx())
    with audited({"staff.provider_round_view": 1}):
        assert staff_providers.round_detail(world["admin"], rid, new_ctx()).user_id == \
            world["admin_id"]
