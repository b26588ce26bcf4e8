"""The game-provider handlers from the browser's side: the staff page
(``StaffProvidersState``) sends anonymous callers and players away having changed and
shown nothing, lets support read and open rounds but not disable a provider, lets an admin
disable and enable one; My bets' provider rounds (``ProviderRoundsState``) and the round
recall (``ProviderRoundState``) show the caller's own rounds only, in readable form
(no raw bodies, no signatures)."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import pytest
from reflex.istate.data import ReflexURL, RouterData

from casino_app.games.providers import alerts
from casino_app.users.models import Role
from tests.support import provider_setup as ps
from tests.ui.test_state_security import _call, _fingerprint, _fresh_root, _substate
from tests.users.helpers import make_staff, register, user_row


@pytest.fixture
def world(app_env) -> dict[str, Any]:  # noqa: ANN001
    """Two players with a closed round each at a BGaming-style provider, an alert naming
    the first player's round, support and an admin."""
    prov = ps.add_bgaming("ui-bg", secrets.token_hex(16).encode())
    out: dict[str, Any] = {"prov": prov}
    for who in ("player", "other"):
        token, addr = register()
        u = user_row(addr)
        p = ps.TestPlayer(u.player_id, u.id)
        ps.credit(u.player_id, "FUN", 10_000)
        out[who], out[f"{who}_pid"] = token, u.player_id
        out[f"{who}_round"] = ps.play_round(prov, p, ps.token(prov, p), 100, 40)
    alerts.raise_alert(prov.id, "fair_mismatch", "high", str(out["player_round"]),
                       "the revealed seed does not hash to the commitment")
    out["admin"], _, _ = make_staff(Role.admin)
    out["support"], _, _ = make_staff(Role.support)
    return out


def _state(cls: type, token: str | None, url: str = "http://localhost:3000/") -> Any:
    from casino_app.ui.state.session import SessionState

    root = _fresh_root()
    root.router = RouterData(url=ReflexURL(url))
    if token:
        _substate(root, SessionState).token = token
    return _substate(root, cls)


def _run(state: Any, name: str, *args: Any) -> list[Any]:
    return asyncio.run(_call(state, type(state).event_handlers[name], list(args)))


def _staff_calls(w: dict[str, Any]) -> list[tuple[str, list[Any]]]:
    return [("on_open", []), ("refresh", []),
            ("set_enabled", [{"provider": "ui-bg", "action": "disable", "reason": "x"}]),
            ("find_round", [{"round": str(w["other_round"])}]),
            ("look_up", [str(w["other_round"])]), ("open_round", [w["other_round"]]),
            ("close_round", [])]


def _shown(state: Any) -> dict[str, Any]:
    names = ("providers", "games", "alerts", "matches", "detail", "txs", "receipts",
             "notice", "rows", "calls")
    return {n: getattr(state, n) for n in names if hasattr(state, n)
            and getattr(state, n) not in ("", [], None)}


@pytest.mark.parametrize("caller,where", [(None, "/login"), ("player", "/account")])
def test_anonymous_and_player_callers_change_nothing_and_see_nothing(
        world: dict[str, Any], caller: str | None, where: str) -> None:
    from casino_app.ui.state.staff_providers import StaffProvidersState

    token = world[caller] if caller else None
    for name, args in _staff_calls(world):
        state = _state(StaffProvidersState, token,
                       f"http://localhost:3000/admin/providers?round={world['other_round']}")
        before = _fingerprint()
        results = _run(state, name, *args)
        assert _fingerprint() == before, f"{name} changed data for {caller}"
        assert _shown(state) == {}, f"{name} showed data to {caller}"
        if name != "close_round":  # it only clears the tab's own view
            assert where in repr(results), f"{name}: {results!r}"


def test_support_reads_and_opens_rounds_but_cannot_disable(world: dict[str, Any]) -> None:
    from casino_app.ui.state.staff_providers import StaffProvidersState

    s = _state(StaffProvidersState, world["support"])
    assert _run(s, "on_open") == [None]
    assert s.loaded and [(p.name, p.enabled) for p in s.providers] == [("ui-bg", True)]
    assert s.providers[0].wallet_url.endswith("/api/providers/ui-bg")
    assert [(a.kind, a.subject, a.round_like) for a in s.alerts] == \
        [("fair_mismatch", str(world["player_round"]), True)]
    _run(s, "look_up", s.alerts[0].subject)
    d = s.detail
    assert d is not None and d.id == world["player_round"]
    assert (d.staked, d.paid, d.net, d.state) == ("1.00 FUN", "0.40 FUN", "-0.60 FUN",
                                                  "closed")
    assert d.player_id == world["player_pid"] and d.player_link.startswith("/admin/player?id=")
    assert [t.kind for t in s.txs] == ["bet", "win"]
    assert [(x.status, x.linked) for x in s.receipts] == [("OK", True), ("OK", True)]
    assert world["player_pid"] in s.receipts[0].body and s.receipts[0].signature == "sig"
    _run(s, "close_round")
    assert s.detail is None and s.receipts == []
    _run(s, "find_round", {"round": "no such round"})
    assert s.round_message.startswith("No round") and s.detail is None
    _run(s, "open_round", 10**15)
    assert s.round_message == "No such round."
    before = _fingerprint()
    _run(s, "set_enabled", {"provider": "ui-bg", "action": "disable", "reason": "why"})
    assert s.message == "Only an admin can disable or enable a provider."
    assert _fingerprint() == before
    # a round named in the page's URL opens with the page
    s = _state(StaffProvidersState, world["support"],
               f"http://localhost:3000/admin/providers?round={world['other_round']}")
    _run(s, "on_open")
    assert s.detail is not None and s.detail.id == world["other_round"]


def test_an_admin_disables_and_enables_a_provider(world: dict[str, Any]) -> None:
    from casino_app.ui.state.staff_providers import StaffProvidersState

    s = _state(StaffProvidersState, world["admin"])
    _run(s, "on_open")
    _run(s, "set_enabled", {"provider": "ui-bg", "action": "disable", "reason": " "})
    assert "audit log" in s.message and s.providers[0].enabled
    _run(s, "set_enabled", {"provider": "ui-bg", "action": "sideways", "reason": "x"})
    assert s.message and s.providers[0].enabled
    _run(s, "set_enabled", {"provider": "ui-bg", "action": "disable", "reason": "drift"})
    assert s.message == "" and "disabled" in s.notice and not s.providers[0].enabled
    assert s.providers[0].disabled_at != ""
    _run(s, "set_enabled", {"provider": "ui-bg", "action": "enable", "reason": "fixed"})
    assert "enabled again" in s.notice and s.providers[0].enabled


def test_my_bets_shows_the_players_own_rounds_and_recall(world: dict[str, Any]) -> None:
    from casino_app.ui.state.provider_rounds import ProviderRoundsState, ProviderRoundState

    rounds = _state(ProviderRoundsState, world["player"], "http://localhost:3000/bets")
    assert _run(rounds, "on_open") == [None]
    assert [r.id for r in rounds.rows] == [world["player_round"]] and not rounds.more
    row = rounds.rows[0]
    assert (row.staked, row.paid, row.net, row.fair_state) == \
        ("1.00 FUN", "0.40 FUN", "-0.60 FUN", "none")
    assert row.link == f"/bets/round?id={world['player_round']}"

    own = _state(ProviderRoundState, world["player"],
                 f"http://localhost:3000/bets/round?id={world['player_round']}")
    assert _run(own, "on_open") == [None]
    assert own.loaded and own.detail is not None and own.detail.id == world["player_round"]
    assert [(c.action, c.moved, c.ok) for c in own.calls] == \
        [("bet", "bet 1.00 FUN", True), ("win", "win 0.40 FUN", True)]
    assert "sig" not in repr(own.calls) and "no commit-reveal" in own.detail.fair_summary

    theirs = _state(ProviderRoundState, world["player"],
                    f"http://localhost:3000/bets/round?id={world['other_round']}")
    _run(theirs, "on_open")
    assert theirs.loaded and theirs.detail is None and theirs.calls == []
    for raw in ("", "x", "-1", "0", "9" * 30):
        junk = _state(ProviderRoundState, world["player"],
                      f"http://localhost:3000/bets/round?id={raw}")
        _run(junk, "on_open")
        assert junk.loaded and junk.detail is None


def test_signed_out_callers_are_sent_to_sign_in(world: dict[str, Any]) -> None:
    from casino_app.ui.state.provider_rounds import ProviderRoundsState, ProviderRoundState

    for cls, name in ((ProviderRoundsState, "on_open"), (ProviderRoundsState, "older"),
                      (ProviderRoundState, "on_open")):
        state = _state(cls, None, f"http://localhost:3000/bets/round?id={world['other_round']}")
        results = _run(state, name)
        assert "/login" in repr(results) and _shown(state) == {}
