"""Staff tools: deny by default, what support and admins may do, and the audit trail of
every action."""

from __future__ import annotations

import inspect
import json

import pytest

from casino_app.users import accounts, staff, staff_money
from casino_app.users.errors import (
    AccountLocked,
    Forbidden,
    InvalidCredentials,
    NotAuthenticated,
    NotFound,
    PlayersOnly,
    StaffNeeds2FA,
    ValidationFailed,
)
from casino_app.users.models import Role
from tests.users.helpers import (
    NEW_PASSWORD,
    PASSWORD,
    WRONG_PASSWORD,
    audit_rows,
    audited,
    enable_2fa,
    is_role,
    link_token,
    make_staff,
    new_ctx,
    read_outbox,
    register,
    sign_in,
    user_row,
    wait_for_mail,
    whoami,
)

# Every staff function that acts for a signed-in caller takes the session token first.
EXPECTED = {"find_players", "player_detail", "lock_player", "unlock_player",
            "revoke_player_sessions", "revoke_player_session", "set_role", "audit_page",
            "verify_audit", "approve_role_request", "reject_role_request", "role_requests"}
ADMIN_ONLY = {"set_role", "audit_page", "verify_audit", "approve_role_request",
              "reject_role_request"}


def _token_functions() -> dict[str, object]:
    found = {}
    for name, fn in inspect.getmembers(staff, inspect.isfunction):
        if fn.__module__ == staff.__name__:
            params = list(inspect.signature(fn).parameters)
            if params and params[0] == "token":
                found[name] = fn
    return found


def _call(name: str, fn: object, token: str | None, target_id: int) -> object:
    values = {"user_id": target_id, "reason": "routine check", "ctx": new_ctx(),
              "query": "example.com", "session_id": 1, "role": "support", "before_id": None,
              "limit": 10, "request_id": 1}
    args = []
    for p in list(inspect.signature(fn).parameters.values())[1:]:  # type: ignore[arg-type]
        if p.default is inspect.Parameter.empty:
            assert p.name in values, f"staff.{name}: add a test value for '{p.name}'"
            args.append(values[p.name])
    return fn(token, *args)  # type: ignore[operator]


def test_every_staff_function_refuses_players_and_anonymous_callers(any_env: str) -> None:
    functions = _token_functions()
    assert set(functions) >= EXPECTED
    player, _ = register()
    target_token, target_addr = register()
    target_id = user_row(target_addr).id
    support, _, _ = make_staff(Role.support)
    revoked = sign_in(target_addr)
    accounts.logout(revoked, new_ctx())

    with audited({}):
        for name, fn in functions.items():
            with pytest.raises(Forbidden):
                _call(name, fn, player, target_id)
            for nobody in (None, "", "made-up-token", revoked):
                with pytest.raises(NotAuthenticated):
                    _call(name, fn, nobody, target_id)
            if name in ADMIN_ONLY:
                with pytest.raises(Forbidden):
                    _call(name, fn, support, target_id)
    assert user_row(target_addr).locked_at is None
    assert user_row(target_addr).role == "player"
    assert whoami(target_token) is not None


def test_support_finds_players_by_the_whole_email_account_number_or_player_id(
        any_env: str) -> None:
    _, alice = register("alice.wonder@example.com", name="Alice Wonder")
    _, bob = register("bob_builder@example.org", name="Bob Builder")
    support, _, _ = make_staff(Role.support)
    row = user_row(bob)

    def emails(query: str) -> list[str]:
        return [p.email for p in staff.find_players(support, query)]

    assert emails("ALICE.WONDER@EXAMPLE.COM") == [alice]
    assert emails(" bob_builder@example.org ") == [bob]
    # Emails are sealed and found by their blind index: a part finds nothing.
    assert emails("wonder") == [] and emails("example.org") == []
    assert emails(str(row.id)) == [bob]
    assert emails(row.player_id) == [bob]
    assert emails(f"  {row.player_id.upper()} ") == [bob]
    assert emails("%") == [] and emails("_") == []
    assert emails("nobody-like-this") == []
    summary = staff.find_players(support, alice)[0]
    assert (summary.display_name, summary.role, summary.locked) == ("Alice Wonder", "player",
                                                                    False)
    for bad in ("", "   ", None, 5, "x" * 300):
        with pytest.raises(ValidationFailed):
            staff.find_players(support, bad)


def test_looking_at_a_player_shows_sessions_and_history_and_is_audited(any_env: str) -> None:
    token, addr = register()
    support, support_id, _ = make_staff(Role.support)
    target = user_row(addr).id
    with audited({"staff.lookup": 1}):
        detail = staff.player_detail(support, target, new_ctx())
    assert detail.summary.email == addr
    assert len(detail.sessions) == 1
    assert [e.action for e in detail.audit][-1] == "account.register"
    (row,) = audit_rows("staff.lookup")
    assert (row.actor_user_id, row.actor_role, row.target_user_id) == (support_id, "support",
                                                                       target)
    with pytest.raises(NotFound):
        staff.player_detail(support, 999_999, new_ctx())


def test_support_locks_a_player_which_ends_their_sessions_and_unlocks_them(
        any_env: str) -> None:
    token, addr = register()
    target = user_row(addr).id
    support, support_id, _ = make_staff(Role.support)
    with pytest.raises(ValidationFailed):
        staff.lock_player(support, target, "  ", new_ctx())
    with audited({"staff.lock": 1}):
        staff.lock_player(support, target, "suspected   account sharing", new_ctx())
    assert whoami(token) is None
    with pytest.raises(InvalidCredentials):
        accounts.begin_login(email=addr, password=PASSWORD, ctx=new_ctx())
    (row,) = audit_rows("staff.lock")
    assert (row.actor_user_id, row.actor_role, row.target_user_id) == (support_id, "support",
                                                                       target)
    assert json.loads(row.detail) == {"reason": "suspected account sharing",
                                      "sessions_revoked": 1}
    with audited({}):
        staff.lock_player(support, target, "again", new_ctx())  # already locked: no-op

    with audited({"staff.unlock": 1}):
        staff.unlock_player(support, target, "verified by phone", new_ctx())
    (row,) = audit_rows("staff.unlock")
    assert (row.actor_user_id, row.target_user_id) == (support_id, target)
    sign_in(addr)
    with audited({}):
        staff.unlock_player(support, target, "again", new_ctx())  # not locked: no-op


def test_support_ends_a_players_sessions_all_or_one(any_env: str) -> None:
    first, addr = register()
    second = sign_in(addr)
    third = sign_in(addr)
    target = user_row(addr).id
    support, support_id, _ = make_staff(Role.support)
    one = next(v.id for v in accounts.my_sessions(second) if v.current)
    with audited({"staff.revoke_session": 1}):
        assert staff.revoke_player_session(support, target, one, new_ctx())
    assert whoami(second) is None and whoami(first) is not None
    with audited({}):  # nothing to do, nothing recorded
        assert not staff.revoke_player_session(support, target, one, new_ctx())
    with audited({"staff.revoke_sessions": 1}):
        assert staff.revoke_player_sessions(support, target, new_ctx()) == 2
    assert whoami(first) is None and whoami(third) is None
    assert whoami(support) is not None
    (row,) = audit_rows("staff.revoke_sessions")
    assert (row.actor_user_id, row.target_user_id, json.loads(row.detail)) == (
        support_id, target, {"count": 2})


def test_support_cannot_act_on_staff_accounts(any_env: str) -> None:
    support, support_id, _ = make_staff(Role.support)
    admin, admin_id, admin_addr = make_staff(Role.admin)
    _, other_support_id, _ = make_staff(Role.support)
    with audited({}):
        for target in (admin_id, other_support_id):
            with pytest.raises(PlayersOnly):
                staff.player_detail(support, target, new_ctx())
            with pytest.raises(PlayersOnly):
                staff_money.player_money(support, target, new_ctx())
            with pytest.raises(Forbidden):
                staff.lock_player(support, target, "no", new_ctx())
            with pytest.raises(Forbidden):
                staff.unlock_player(support, target, "no", new_ctx())
            with pytest.raises(Forbidden):
                staff.revoke_player_sessions(support, target, new_ctx())
            with pytest.raises(Forbidden):
                staff.revoke_player_session(support, target, 1, new_ctx())
            with pytest.raises(Forbidden):
                staff.set_role(support, target, "player", new_ctx())
    assert whoami(admin) is not None
    assert user_row(admin_addr).locked_at is None
    with pytest.raises(ValidationFailed):
        staff.lock_player(support, support_id, "myself", new_ctx())


def test_support_finds_and_opens_player_accounts_only_while_admins_see_everyone(
        any_env: str) -> None:
    """Staff accounts (their sessions, IP addresses, lock state) are not for support: a
    search leaves them out and opening one is refused on the server."""
    _, player_addr = register()
    player = user_row(player_addr).id
    support, support_id, support_addr = make_staff(Role.support)
    admin, admin_id, admin_addr = make_staff(Role.admin)

    def found(token: str, query: str) -> set[int]:
        return {p.user_id for p in staff.find_players(token, query, new_ctx())}

    assert found(support, player_addr) == {player}
    for staff_account in (admin_id, support_id):
        assert found(support, f"#{staff_account}") == set()
    assert found(support, admin_addr) == set() and found(support, support_addr) == set()
    assert found(admin, player_addr) == {player}
    assert found(admin, admin_addr) == {admin_id} and found(admin, support_addr) == {support_id}

    # Admins keep access to staff accounts, sessions and IP addresses included.
    detail = staff.player_detail(admin, support_id, new_ctx())
    assert detail.summary.email == support_addr and detail.sessions
    assert all(v.ip for v in detail.sessions)
    assert staff_money.player_money(admin, support_id, new_ctx()).user_id == support_id


def test_support_does_not_see_staff_ip_addresses_in_a_players_history(any_env: str) -> None:
    _, addr = register()
    player = user_row(addr).id
    support, _, _ = make_staff(Role.support)
    admin, _, _ = make_staff(Role.admin)
    looked = new_ctx()
    staff.player_detail(admin, player, looked)  # the admin's look is in the history

    seen_by_support = staff.player_detail(support, player, new_ctx()).audit
    by_admin = [e for e in seen_by_support if e.actor_role == "admin"]
    assert by_admin and all(e.ip == "" for e in by_admin)
    own = [e for e in seen_by_support if e.action == "account.register"]
    assert own and all(e.ip for e in own)  # the player's own rows keep theirs
    seen_by_admin = staff.player_detail(admin, player, new_ctx()).audit
    assert looked.ip in {e.ip for e in seen_by_admin if e.actor_role == "admin"}
    assert staff.verify_audit(admin).ok  # nothing blanked was written back


def test_an_admin_takes_a_role_away_at_once_and_it_takes_effect_at_the_next_sign_in(
        any_env: str) -> None:
    admin, admin_id, _ = make_staff(Role.admin)
    demoted, other_admin_id, other_addr = make_staff(Role.admin)
    for bad in ("root", "", None, "Admin"):
        with pytest.raises(ValidationFailed):
            staff.set_role(admin, other_admin_id, bad, new_ctx())
    with audited({"staff.role_changed": 1}):
        assert staff.set_role(admin, other_admin_id, "support", new_ctx(),
                              reason="moved to support") is None
    (row,) = audit_rows("staff.role_changed")
    assert (row.actor_user_id, row.actor_role, row.target_user_id) == (admin_id, "admin",
                                                                       other_admin_id)
    assert json.loads(row.detail) == {"old": "admin", "new": "support",
                                      "reason": "moved to support", "sessions_revoked": 1}
    assert whoami(demoted) is None  # privilege change: sign in again
    with audited({}):
        staff.set_role(admin, other_admin_id, "support", new_ctx())  # unchanged: nothing
    staff.set_role(admin, other_admin_id, "player", new_ctx())  # no reason needed
    assert user_row(other_addr).role == "player"
    with pytest.raises(ValidationFailed):
        staff.set_role(admin, admin_id, "player", new_ctx())
    with pytest.raises(ValidationFailed):
        staff.lock_player(admin, admin_id, "myself", new_ctx())


def test_giving_a_staff_role_takes_a_second_admin_and_the_requester_cannot_approve(
        any_env: str) -> None:
    """The four-eyes hole: one admin promoting a second account of their own, then
    approving their own adjustments or withdrawals with it."""
    first, first_id, _ = make_staff(Role.admin)
    second, second_id, _ = make_staff(Role.admin)
    puppet, addr = register()
    target = user_row(addr).id

    with audited({}), pytest.raises(ValidationFailed) as exc:
        staff.set_role(first, target, "admin", new_ctx())  # a grant needs a reason
    assert exc.value.field == "reason"
    with audited({"staff.role_requested": 1}):
        request = staff.set_role(first, target, "admin", new_ctx(), reason="second ops admin")
    assert request is not None and (request.state, request.role) == ("pending", "admin")
    assert user_row(addr).role == "player" and is_role(puppet, Role.player)
    (row,) = audit_rows("staff.role_requested")
    assert (row.actor_user_id, row.target_user_id) == (first_id, target)
    assert json.loads(row.detail) == {"request_id": request.id, "old": "player",
                                      "new": "admin", "reason": "second ops admin"}
    with pytest.raises(ValidationFailed):  # one request at a time per account
        staff.set_role(first, target, "support", new_ctx(), reason="or support then")

    # The admin who asked can neither approve nor reject it; the puppet is not an admin.
    with audited({}):
        with pytest.raises(Forbidden):
            staff.approve_role_request(first, request.id, new_ctx())
        with pytest.raises(Forbidden):
            staff.reject_role_request(first, request.id, "never mind", new_ctx())
        with pytest.raises(Forbidden):
            staff.approve_role_request(puppet, request.id, new_ctx())
    assert user_row(addr).role == "player"
    assert [(r.id, r.by_caller) for r in staff.role_requests(first)] == [(request.id, True)]
    support, _, _ = make_staff(Role.support)
    assert staff.role_requests(support) == []  # admins decide; support sees none
    assert [(r.id, r.by_caller) for r in staff.role_requests(second, target)] \
        == [(request.id, False)]

    with audited({"staff.role_approved": 1}):
        done = staff.approve_role_request(second, request.id, new_ctx())
    assert (done.state, done.decided_by) == ("approved", second_id)
    assert user_row(addr).role == "admin"
    assert whoami(puppet) is None  # signs in again with the new role
    (row,) = audit_rows("staff.role_approved")
    assert (row.actor_user_id, row.target_user_id) == (second_id, target)
    assert json.loads(row.detail) == {"request_id": request.id, "old": "player",
                                      "new": "admin", "requested_by": first_id,
                                      "sessions_revoked": 1}
    with pytest.raises(ValidationFailed):
        staff.approve_role_request(second, request.id, new_ctx())  # decided once
    assert staff.role_requests(first) == []
    for bad in (None, "x", 0, -1, 2**31, True, 999_999):
        with pytest.raises(NotFound):
            staff.approve_role_request(second, bad, new_ctx())


def test_support_is_a_staff_role_too_and_takes_a_second_admin(any_env: str) -> None:
    """Support asks for the adjustments admins approve: a support account of one's own
    would be the second pair of eyes."""
    first, _, _ = make_staff(Role.admin)
    second, _, _ = make_staff(Role.admin)
    puppet, addr = register()
    _, payee = register()
    target = user_row(addr).id
    request = staff.set_role(first, target, "support", new_ctx(), reason="helpdesk")
    assert request is not None and user_row(addr).role == "player"
    with pytest.raises(Forbidden):  # still a player: cannot ask for an adjustment
        staff_money.request_adjustment(puppet, user_row(payee).id, "BTC", "1", "bonus",
                                       new_ctx())
    with audited({"staff.role_rejected": 1}):
        rejected = staff.reject_role_request(second, request.id, "  not   known to us ",
                                             new_ctx())
    assert (rejected.state, rejected.decision_reason) == ("rejected", "not known to us")
    (row,) = audit_rows("staff.role_rejected")
    assert json.loads(row.detail)["reason"] == "not known to us"
    assert user_row(addr).role == "player" and whoami(puppet) is not None
    with pytest.raises(ValidationFailed):
        staff.reject_role_request(second, request.id, "again", new_ctx())
    with pytest.raises(ValidationFailed):
        staff.reject_role_request(second, request.id, " ", new_ctx())

    # A support account, promoted with two admins, then to admin: again two admins.
    request = staff.set_role(first, target, "support", new_ctx(), reason="helpdesk, checked")
    staff.approve_role_request(second, request.id, new_ctx())
    assert user_row(addr).role == "support" and whoami(puppet) is None
    promoted = sign_in(addr)
    assert is_role(promoted, Role.support)
    with pytest.raises(StaffNeeds2FA):  # staff work needs a second factor
        staff.find_players(promoted, addr)
    _, codes, promoted = enable_2fa(promoted)
    assert staff.find_players(promoted, addr) == []  # works (support sees players only)
    request = staff.set_role(second, target, "admin", new_ctx(), reason="team lead")
    assert request is not None and user_row(addr).role == "support"
    staff.approve_role_request(first, request.id, new_ctx())
    assert user_row(addr).role == "admin"

    # Taking the role away is one admin's call, and takes effect at the next sign-in.
    staff.set_role(first, target, "player", new_ctx())
    step = accounts.begin_login(email=addr, password=PASSWORD, ctx=new_ctx())
    again = accounts.complete_login_mfa(mfa_token=step.mfa_token, code=codes[0], ctx=new_ctx())
    with pytest.raises(Forbidden):
        staff.find_players(again, addr)


def test_a_role_request_left_unanswered_expires_and_can_only_be_rejected(any_env: str
                                                                        ) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from casino_app.core.clock import utcnow
    from casino_app.core.db import identity_tx
    from casino_app.users.models import RoleRequest

    first, _, _ = make_staff(Role.admin)
    second, _, _ = make_staff(Role.admin)
    _, addr = register()
    target = user_row(addr).id
    request = staff.set_role(first, target, "admin", new_ctx(), reason="night shift")
    with identity_tx() as s:  # asked two days and an hour ago, never decided
        s.execute(update(RoleRequest).where(RoleRequest.id == request.id).values(
            requested_at=utcnow() - staff.ROLE_REQUEST_TTL - timedelta(hours=1)))
    [shown] = staff.role_requests(second)
    assert shown.expired
    with audited({}), pytest.raises(ValidationFailed, match="more than 48 hours old"):
        staff.approve_role_request(second, request.id, new_ctx())
    assert user_row(addr).role == "player"
    with pytest.raises(ValidationFailed, match="expired unanswered"):
        staff.set_role(first, target, "admin", new_ctx(), reason="still want it")
    with audited({"staff.role_rejected": 1}):
        staff.reject_role_request(second, request.id, "expired", new_ctx())
    again = staff.set_role(first, target, "admin", new_ctx(), reason="still want it")
    assert again is not None and not again.expired
    staff.approve_role_request(second, again.id, new_ctx())
    assert user_row(addr).role == "admin"


def test_a_role_request_is_not_approved_once_its_requester_is_no_longer_an_admin(
        any_env: str) -> None:
    first, first_id, _ = make_staff(Role.admin)
    second, _, _ = make_staff(Role.admin)
    _, addr = register()
    request = staff.set_role(first, user_row(addr).id, "admin", new_ctx(), reason="friend")
    staff.set_role(second, first_id, "support", new_ctx(), reason="left the ops team")
    with pytest.raises(ValidationFailed):
        staff.approve_role_request(second, request.id, new_ctx())
    assert user_row(addr).role == "player"
    staff.reject_role_request(second, request.id, "requester left", new_ctx())


def test_the_database_refuses_a_role_decision_by_its_requester(any_env: str) -> None:
    """The four-eyes rule holds in the database too (like adjustment_requests)."""
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    from casino_app.core.db import databases

    first, first_id, _ = make_staff(Role.admin)
    _, addr = register()
    target = user_row(addr).id
    request = staff.set_role(first, target, "admin", new_ctx(), reason="check")
    assert request is not None
    engine = databases().identity_engine
    for sql in (
        # the requester decides
        "UPDATE role_requests SET state = 'approved', decided_by = requested_by, "
        "decided_at = requested_at",
        # the account decides on itself
        "UPDATE role_requests SET state = 'approved', decided_by = user_id, "
        "decided_at = requested_at",
        # decided without anyone deciding
        "UPDATE role_requests SET state = 'approved'",
        # a second pending request for the account
        f"INSERT INTO role_requests (user_id, role, reason, requested_by, requested_at, "
        f"state) VALUES ({target}, 'support', 'x', {first_id}, CURRENT_TIMESTAMP, 'pending')",
        # asking for one's own account
        f"INSERT INTO role_requests (user_id, role, reason, requested_by, requested_at, "
        f"state) VALUES ({first_id}, 'admin', 'x', {first_id}, CURRENT_TIMESTAMP, 'pending')",
        # a role that is not a staff role
        "UPDATE role_requests SET role = 'player'",
    ):
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(text(sql))
    assert user_row(addr).role == "player"
    assert [r.state for r in staff.role_requests(first)] == ["pending"]


def test_an_admin_can_lock_a_support_account(any_env: str) -> None:
    admin, _, _ = make_staff(Role.admin)
    support, support_id, support_addr = make_staff(Role.support)
    with audited({"staff.lock": 1}):
        staff.lock_player(admin, support_id, "left the company", new_ctx())
    assert whoami(support) is None
    with pytest.raises(InvalidCredentials):
        accounts.begin_login(email=support_addr, password=PASSWORD, ctx=new_ctx())


def test_staff_accounts_are_created_with_a_strong_password_and_audited(any_env: str) -> None:
    with audited({"staff.created": 1}):
        uid = staff.create_staff("Ops@Example.com", PASSWORD, Role.admin, "Ops Lead")
    (row,) = audit_rows("staff.created")
    assert (row.target_user_id, row.actor_role, row.ip) == (uid, "system", "cli")
    assert is_role(sign_in("ops@example.com"), Role.admin)
    with pytest.raises(ValidationFailed):
        staff.create_staff("ops@example.com", PASSWORD, Role.admin)
    with pytest.raises(ValidationFailed) as exc:
        staff.create_staff("weak@example.com", "password", Role.admin)
    assert exc.value.field == "password"
    with pytest.raises(ValidationFailed):
        staff.create_staff("player@example.com", PASSWORD, Role.player)


def test_the_audit_page_is_for_admins(any_env: str) -> None:
    admin, _, _ = make_staff(Role.admin)
    register()
    events = staff.audit_page(admin, limit=500)
    assert [e.action for e in events] == ["account.register", "account.register_requested",
                                          "2fa.enabled", "login.ok", "staff.created"]
    assert staff.verify_audit(admin).ok


# A lock placed by staff is lifted only by staff ---------------------------------------------
def test_a_staff_lock_is_not_lifted_by_a_password_reset(any_env: str) -> None:
    _, addr = register()
    support, _, _ = make_staff(Role.support)
    staff.lock_player(support, user_row(addr).id, "chargeback fraud", new_ctx())
    accounts.request_password_reset(addr, new_ctx())
    # (the staff member's 2FA notice is in the outbox too)
    link = link_token([m for m in wait_for_mail(2) if m["To"] == addr][0], "reset")
    with audited({"password.reset": 1}):
        accounts.reset_password(link, NEW_PASSWORD, new_ctx())
    assert user_row(addr).locked_at is not None
    with pytest.raises(InvalidCredentials):
        accounts.begin_login(email=addr, password=NEW_PASSWORD, ctx=new_ctx())


def test_a_staff_lock_is_not_lifted_by_an_unlock_link_from_an_earlier_lock_out(
        any_env: str) -> None:
    _, addr = register()
    for _ in range(5):
        with pytest.raises(InvalidCredentials):
            accounts.begin_login(email=addr, password=WRONG_PASSWORD, ctx=new_ctx())
    unlock = link_token(wait_for_mail(1)[0], "unlock")
    support, _, _ = make_staff(Role.support)
    with audited({"staff.lock": 1}):  # already locked out: the staff lock still counts
        staff.lock_player(support, user_row(addr).id, "chargeback fraud", new_ctx())
    with pytest.raises(AccountLocked):
        accounts.unlock_with_token(unlock, new_ctx())
    assert user_row(addr).locked_at is not None
    with pytest.raises(InvalidCredentials):
        accounts.begin_login(email=addr, password=PASSWORD, ctx=new_ctx())
    assert len([m for m in read_outbox() if m["To"] == addr]) == 1
    staff.unlock_player(support, user_row(addr).id, "resolved", new_ctx())
    sign_in(addr)


def test_odd_numbers_from_the_browser_are_refused_not_crashed_on(any_env: str) -> None:
    """Ids too big for the columns, and digits that are not 0-9 ("²" passes isdigit but
    not int), get a validation message, not a database or conversion error."""
    admin, _, _ = make_staff(Role.admin)
    token, _ = register()
    me = whoami(token)
    assert me is not None
    for huge in (2**31, 2**63, 2**70):
        calls = (lambda h: staff.player_detail(admin, h, new_ctx()),
                 lambda h: staff.lock_player(admin, h, "why", new_ctx()),
                 lambda h: staff.unlock_player(admin, h, "why", new_ctx()),
                 lambda h: staff.revoke_player_sessions(admin, h, new_ctx()),
                 lambda h: staff.revoke_player_session(admin, me.user_id, h, new_ctx()),
                 lambda h: staff.set_role(admin, h, "support", new_ctx()),
                 lambda h: staff.audit_page(admin, h))
        for call in calls:
            with pytest.raises(ValidationFailed):
                call(huge)
    for query in ("²", "#²", "#³³", "#99999999999"):
        assert staff.find_players(admin, query, new_ctx()) == []
    assert [p.user_id for p in staff.find_players(admin, f"#{me.user_id}", new_ctx())] \
        == [me.user_id]
