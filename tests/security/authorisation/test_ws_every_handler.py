"""Every public event handler of every state, called over the websocket by every role.

Reflex makes every public method of an ``rx.State`` an event any browser can send, with
any payload. So the handlers are enumerated from the app itself (a new one is covered
the day it is written, and this module fails until it is classified in ``WHO``) and each
is called by an anonymous visitor, a player, a support and an admin account, with
arguments that hypothesis draws: the values a form would send, ids and emails of other
people's rows, wrong types, huge and hostile strings. Per call and role:

- a caller below the handler's level changes nothing: the snapshot of balances,
  entries, bets, seeds, users and roles, sessions, staff tables (``live.Snapshot``) is
  the same after as before, and the answer shows nobody else's email or player id;
- a handler marked ``view`` changes nothing for anybody;
- a caller at the level changes nothing of anyone else's (``facts`` of the other
  accounts: role, credentials, lock, live sessions, balances, bets, holds), the audit
  chain still verifies and the ledger's invariants hold;
- no call breaks the server: no traceback or Reflex "Backend Exception" in the app's
  log, no "Something went wrong on our side" or error toast in the answer;
- nothing any tab received holds a secret of the house (``live.house_secrets``).

Examples are few and derandomized (the same draws every run), so the run is steady on
a loaded machine: ``HH_HANDLER_EXAMPLES`` (default 4) sets how many passes each role
makes over every handler.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.support import live
from tests.support.reflex_client import Answer, Tab
from tests.support.states import app_states

ROLES = ("anonymous", "player", "support", "admin")
RANK = {role: n for n, role in enumerate(ROLES)}
EXAMPLES = int(os.environ.get("HH_HANDLER_EXAMPLES", "4"))

# Who each handler is for: the least role that may change data through it ("anonymous":
# a visitor too). " view": it changes no stored data, whoever calls it (the tab's own
# view, or a read; staff reads are audited, and audit rows are checked apart).
WHO: dict[str, dict[str, str]] = {
    "SessionState": {"refresh": "anonymous view", "require_player": "anonymous view",
                     "require_staff": "anonymous view",
                     "redirect_if_signed_in": "anonymous view", "logout": "anonymous"},
    "RegisterState": {"submit": "anonymous", "again": "anonymous view"},
    "RegisterConfirmState": {"on_open": "anonymous view", "submit": "anonymous"},
    "LoginState": {"restart": "anonymous view", "submit_password": "anonymous",
                   "submit_code": "anonymous"},
    "ForgotState": {"submit": "anonymous", "again": "anonymous view"},
    "ResetState": {"on_open": "anonymous view", "submit": "anonymous"},
    "UnlockState": {"on_open": "anonymous"},
    "VerifyState": {"on_open": "anonymous view"},
    "LobbyState": {"load": "anonymous view", "choose_category": "anonymous view",
                   "search_games": "anonymous view", "toggle_favourite": "player",
                   "choose_provider": "anonymous view"},
    # a launch records a provider session (the token the provider's bets carry)
    "ReservesState": {"load": "anonymous view"},
    "ProviderGameState": {"open": "player", "choose_mode": "player",
                          "choose_currency": "player", "retry": "player"},
    "GameState": {"open_game": "player", "follow_currency": "anonymous view",
                  "follow_display": "anonymous view", "edit_amount": "anonymous view",
                  "half_amount": "anonymous view", "double_amount": "anonymous view",
                  "edit_dice_target": "anonymous view", "set_dice_slider": "anonymous view",
                  "choose_direction": "anonymous view",
                  "edit_limbo_target": "anonymous view", "tidy_targets": "anonymous view",
                  "choose_plinko_rows": "anonymous view",
                  "choose_plinko_risk": "anonymous view",
                  "choose_keno_risk": "anonymous view", "keno_toggle": "anonymous view",
                  "keno_clear": "anonymous view", "choose_mines": "anonymous view",
                  "bet": "player", "reveal": "player", "cash_out": "player"},
    "WalletState": {"load": "player", "select_display": "anonymous view",
                    "select_currency": "anonymous view", "top_up": "player"},
    "BetsState": {"follow_display": "anonymous view", "on_open": "player view",
                  "apply_filters": "player view", "older": "player view",
                  "show_chart": "player view"},
    "BetState": {"on_open": "player view"},
    "ProviderRoundsState": {"on_open": "player view", "older": "player view"},
    "ProviderRoundState": {"on_open": "player view"},
    "FairnessState": {"on_open": "player", "save_client_seed": "player", "rotate": "player"},
    "DepositsState": {"on_open": "player", "show": "player"},
    "WithdrawState": {"on_open": "player", "edit_amount": "anonymous view",
                      "fill": "anonymous view", "request": "player",
                      "choose_method": "anonymous view", "change_allow_list": "player"},
    # the mailed link confirms a withdrawal whoever opens it (the mailbox is the factor)
    "WithdrawConfirmState": {"on_open": "anonymous"},
    "SessionsState": {"on_open": "player view", "revoke": "player", "revoke_others": "player"},
    "SecurityState": {"on_open": "player view", "start_totp": "player",
                      "confirm_totp": "player", "cancel": "anonymous view",
                      "disable_totp": "player", "regenerate_codes": "player",
                      "change_password": "player"},
    "StaffSearchState": {"search": "support view"},
    "StaffRoleRequestsState": {"on_open": "support view"},
    "StaffPlayerState": {"on_open": "support view", "lock": "support", "unlock": "support",
                         "revoke_all": "support", "revoke": "support", "set_role": "admin",
                         "approve_role": "admin", "reject_role": "admin"},
    "StaffMoneyState": {"on_open": "support view", "request": "support",
                        "release_hold": "admin", "lift_lock": "admin"},
    "StaffAdjustmentsState": {"on_open": "support view", "approve": "admin", "reject": "admin"},
    "StaffAuditState": {"on_open": "admin view", "load_older": "admin view",
                        "verify": "admin view"},
    "StaffWalletsState": {"on_open": "support view", "refresh": "support view"},
    "StaffReconcileState": {"on_open": "support view", "load_older": "support view",
                            "show_issues": "support view", "hide_issues": "anonymous view",
                            "reconcile_now": "admin"},
    "StaffWithdrawalsState": {"on_open": "support view", "refresh": "support view",
                              "prepare": "admin", "sign": "admin", "reject": "admin",
                              "request_refill": "admin", "cancel_refill": "admin",
                              "prepare_psbt": "admin", "upload_psbt": "admin",
                              "request_btc_refill": "admin", "cancel_btc_refill": "admin"},
    "StaffProvidersState": {"on_open": "support view", "refresh": "support view",
                            "find_round": "support view", "look_up": "support view",
                            "open_round": "support view", "close_round": "anonymous view",
                            "set_enabled": "admin"},
    # a claim pays the caller's own rewards; staff read held claims, admins decide
    "LoyaltyState": {"on_open": "player view", "claim": "player", "claim_all": "player"},
    "StaffLoyaltyState": {"on_open": "support view", "approve": "admin", "reject": "admin"},
}
# Handlers that may end the caller's own session: called last in a pass, and the caller
# is signed in again afterwards (a new session, as the service would open).
ENDS_SESSION = {("SessionState", "logout"), ("SessionsState", "revoke")}
# The page (router data) each state's handlers are sent from; {id} is drawn.
PAGES = {"StaffPlayerState": "/admin/player?id={id}", "StaffMoneyState": "/admin/player?id={id}",
         "StaffSearchState": "/admin", "StaffRoleRequestsState": "/admin",
         "StaffAuditState": "/admin/audit", "StaffAdjustmentsState": "/admin/adjustments",
         "StaffReconcileState": "/admin/reconcile", "StaffWalletsState": "/admin/wallets",
         "StaffWithdrawalsState": "/admin/withdrawals", "BetState": "/bets/bet?id={id}",
         "StaffProvidersState": "/admin/providers", "ProviderRoundsState": "/bets",
         "StaffLoyaltyState": "/admin/loyalty", "LoyaltyState": "/account",
         "ProviderRoundState": "/bets/round?id={id}",
         "BetsState": "/bets", "FairnessState": "/fairness", "DepositsState": "/wallet",
         "WithdrawState": "/wallet", "WithdrawConfirmState": "/withdrawal/confirm?token={id}", "WalletState": "/wallet", "GameState": "/games/mines",
         "SessionsState": "/account/sessions", "SecurityState": "/account/security",
         "RegisterState": "/register", "RegisterConfirmState": "/register/confirm?token={id}",
         "LoginState": "/login", "ForgotState": "/forgot", "ResetState": "/reset?token={id}",
         "UnlockState": "/unlock?token={id}", "VerifyState": "/verify?server_seed={id}"}
# Every key a form of the app reads (ui/state: form_value(form, ...)), and a few it does not
FORM_KEYS = ("accept_terms", "action", "address", "amount", "btc_amount", "client_seed", "code",
             "currency", "current_code", "current_password", "date_of_birth",
             "display_name", "email", "hold_id", "new_password", "new_password_confirm",
             "note", "password", "password_confirm", "payment_id", "psbt", "query", "reason",
             "request_id", "role", "signature", "withdrawal_id", "game", "result", "chain",
             "user_id", "player_id", "token", "provider", "round", "reward_id", "method",
             "lock_id")
HOSTILE = ["", " ", "0", "-1", "1e308", "NaN", "0x" + "ff" * 32, "' OR 1=1 --",
           "<script>alert(1)</script>", "../../../etc/passwd", "\x00", "\u202e😀", "x" * 3000,
           "admin", "support", "player", "ETH", "FUN", "BTC", "USDT", "bitcoin", "ethereum",
           "dice", "mines", "limbo", "0.01", "5", "1000000", "123456", "on", "true",
           "1990-01-01", "cHNidP8BAAoCAAAAAAAAAAAAAAA="]


def app_handlers() -> list[tuple[type, str, list[inspect.Parameter]]]:
    """(state, handler, its parameters) for every public event handler of the app."""
    out = []
    for cls in app_states():
        for name, handler in cls.event_handlers.items():
            if name == "setvar" or name.startswith("_"):
                continue
            params = list(inspect.signature(handler.fn).parameters.values())[1:]
            out.append((cls, name, params))
    return sorted(out, key=lambda h: (h[0].__name__, h[1]))


def level(state: type, name: str) -> tuple[str, bool]:
    """(the least role the handler is for, whether it is a view)."""
    who, _, kind = WHO[state.__name__][name].partition(" ")
    return who, kind == "view"


def test_every_handler_is_classified() -> None:
    """A new handler fails here until someone decides who it is for (WHO)."""
    found = {(c.__name__, n) for c, n, _ in app_handlers()}
    listed = {(s, n) for s, names in WHO.items() for n in names}
    assert found - listed == set(), f"handlers nobody classified: {sorted(found - listed)}"
    assert listed - found == set(), f"classified handlers that are gone: {sorted(listed - found)}"
    for state, names in WHO.items():
        for name, value in names.items():
            who, _, kind = value.partition(" ")
            assert who in RANK and kind in ("", "view"), f"{state}.{name}: {value!r}"
    assert len(found) >= 100


# --- the cast -------------------------------------------------------------------------------

@dataclass
class Cast:
    """Accounts of this module: the callers (a player, a support and an admin of their
    own, so a disturbed account is never the package's shared staff), the ``target``
    the staff pages are opened on, a ``bystander`` nobody's page names, and rows of
    theirs whose ids the attacks aim at."""

    player: live.Account
    support: live.Account
    admin: live.Account
    target: live.Account
    bystander: live.Account
    ints: list[int] = field(default_factory=list)
    strings: list[str] = field(default_factory=list)

    def caller(self, role: str) -> live.Account | None:
        return None if role == "anonymous" else getattr(self, role)

    def others(self, role: str) -> list[live.Account]:
        """Whose facts the role's permitted calls must leave alone."""
        everyone = [self.player, self.support, self.admin, self.target, self.bystander]
        return {"anonymous": everyone,
                "player": [self.support, self.admin, self.target, self.bystander],
                "support": [self.player, self.admin, self.bystander],
                "admin": [self.player, self.support, self.bystander]}[role]

    def page_ids(self, role: str) -> list[int]:
        """The users a role's staff pages are opened on: the target, and for support
        (who may act on players only) and the roles below, an admin too. Never the
        bystander, whose facts every role's calls must leave alone."""
        return [self.target.user_id] if role == "admin" else \
            [self.target.user_id, self.admin.user_id]


@pytest.fixture(scope="module")
def cast(casino: live.Casino) -> Iterator[Cast]:
    from casino_app.users import accounts
    from casino_app.users import staff_money as money

    with live.adopted(casino.env):
        c = Cast(live.new_player("Matrix Player"), live.new_staff("support", "msupport"),
                 live.new_staff("admin", "madmin"), live.new_player("Matrix Target"),
                 live.new_player("Matrix Bystander"))
        dice, mines = live.victim_bets(c.bystander)
        target_bets = live.victim_bets(c.target)
        adjustment = money.request_adjustment(c.support.token, c.target.user_id, "ETH", "0.5",
                                              "matrix", live.ctx()).id
        sessions = [s.id for a in (c.bystander, c.target, c.admin)
                    for s in accounts.my_sessions(a.token)]
        rounds = provider_rounds(c.target, c.bystander)
        c.ints = [0, 1, -1, 2**31, 2**63, dice, mines, *target_bets, adjustment, *sessions,
                  c.admin.user_id, c.support.user_id, c.target.user_id, c.bystander.user_id,
                  *rounds]
        c.strings = [*HOSTILE, c.target.email, c.bystander.email, c.target.player_id,
                     c.bystander.player_id, str(dice), str(mines), str(adjustment),
                     str(c.target.user_id), str(c.admin.user_id), str(sessions[0]),
                     *map(str, rounds), "matrix-bg", "enable", "disable"]
    yield c


def provider_rounds(*owners: live.Account) -> list[int]:
    """A closed round of each owner's at a provider (``matrix-bg``), played through the
    wallet: ids for the round recall handlers to aim at."""
    from tests.support import provider_setup as ps

    provider = ps.add_bgaming("matrix-bg", secrets.token_hex(16).encode())
    out = []
    for a in owners:
        who = ps.TestPlayer(a.player_id, a.user_id)
        ps.credit(a.player_id, "FUN", 1_000)
        out.append(ps.play_round(provider, who, ps.token(provider, who), 100, 30))
    return out


# --- what a call may change -------------------------------------------------------------------

def facts(who: live.Account) -> dict[str, Any]:
    """What nobody else may change about an account: its user row (role, credentials,
    2FA, lock), its live sessions, balances, bets, holds and role requests."""
    from sqlalchemy import select

    from casino_app.core.db import identity_tx, ledger_tx
    from casino_app.games.models import Bet
    from casino_app.payments.hold_models import PlayerHold
    from casino_app.users import sessions
    from casino_app.users.models import User

    with identity_tx(readonly=True) as s:
        u = s.get(User, who.user_id)
        assert u is not None
        user = (u.email, u.role, u.password_hash, u.totp_secret_enc, u.locked_at,
                u.display_name)
        live_sessions = sorted(v.id for v in sessions.list_live(s, who.user_id))
    with ledger_tx(readonly=True) as s:
        bets = s.execute(select(Bet.id, Bet.state, Bet.payout).where(
            Bet.player_id == who.player_id).order_by(Bet.id)).all()
        holds = s.execute(select(PlayerHold.id).where(
            PlayerHold.player_id == who.player_id)).scalars().all()
    return {"user": user, "sessions": live_sessions, "balances": live.balances(who.player_id),
            "bets": [tuple(b) for b in bets], "holds": sorted(holds)}


def audit_chain_ok() -> bool:
    from casino_app.core.db import identity_tx
    from casino_app.security import audit

    with identity_tx(readonly=True) as s:
        return audit.verify(s).ok


def mint_session(who: live.Account) -> str:
    """A new session for ``who`` (what a sign-in opens), without the 2FA step: the
    caller's own session ended by one of its permitted calls (sign-out, revoke)."""
    from casino_app.core.db import identity_tx
    from casino_app.users import sessions
    from casino_app.users.models import User

    with identity_tx() as s:
        user = s.get(User, who.user_id)
        assert user is not None
        return sessions.create(s, user, live.ctx())


# --- what a browser may send -----------------------------------------------------------------

JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20))
ANY_JSON = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=6)


def strategy(param: inspect.Parameter, cast: Cast) -> st.SearchStrategy:
    ann = str(param.annotation)
    text = st.one_of(st.sampled_from(cast.strings), st.text(max_size=30))
    if param.name == "form" or "dict" in ann:
        value = st.one_of(text, st.sampled_from(cast.ints), ANY_JSON)
        form = st.fixed_dictionaries({}, optional={k: value for k in FORM_KEYS})
        return st.one_of(form, form, ANY_JSON)
    if "int" in ann:
        return st.one_of(st.sampled_from(cast.ints), st.integers(), text, ANY_JSON)
    if "list" in ann:
        return st.one_of(st.lists(st.one_of(text, st.integers()), max_size=4), text, ANY_JSON)
    return st.one_of(text, text, st.sampled_from(cast.ints), ANY_JSON)


@dataclass
class Call:
    state: type
    name: str
    payload: dict[str, Any]
    page: str

    @property
    def label(self) -> str:
        return f"{self.state.__name__}.{self.name}({self.payload!r}) on {self.page}"


def draw_calls(data: st.DataObject, role: str, cast: Cast) -> list[Call]:
    calls = []
    handlers = sorted(app_handlers(), key=lambda h: (h[0].__name__, h[1]) in ENDS_SESSION)
    for state, name, params in handlers:
        payload = {p.name: data.draw(strategy(p, cast), label=f"{state.__name__}.{name}.{p.name}")
                   for p in params}
        page = PAGES.get(state.__name__, "/")
        if "{id}" in page:
            ids = cast.page_ids(role) if page.startswith("/admin") else cast.ints
            page = page.format(id=data.draw(st.sampled_from(ids)))
        calls.append(Call(state, name, payload, page))
    return calls


# --- the run ---------------------------------------------------------------------------------

BROKE = ("Something went wrong on our side", "An error occurred")


class Caller:
    """One role's tab, kept signed in, on its own event loop."""

    def __init__(self, casino: live.Casino, role: str, who: live.Account | None) -> None:
        self.casino, self.role, self.who = casino, role, who
        self.loop = asyncio.new_event_loop()
        self.tab: Tab = casino.tab(who, "/")
        self.received: list[dict[str, Any]] = []
        self.calls = self.answered = 0
        self.run(self.tab.open())

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def call(self, c: Call) -> Answer:
        answer = self.run(self.tab.call(c.state, c.name, page=c.page, **c.payload))
        self.calls += 1
        self.answered += bool(answer.updates)
        broke = [b for b in BROKE if b in answer.text]
        assert not broke, f"{self.role}: {c.label} broke on the server: {answer.text[:500]}"
        return answer

    def keep_signed_in(self) -> None:
        """After a call that may end the caller's session: a new one, and a new socket
        with its cookie (as a browser signing in again)."""
        if self.who is None or live.session_live(self.who.token):
            return
        self.who.token = mint_session(self.who)
        self.tab.token = self.who.token
        self.run(self.tab.reconnect())

    def close(self) -> None:
        self.received = list(self.tab.log)
        self.run(self.tab.close())
        self.loop.close()


def shows_others(answer: Answer, cast: Cast, role: str, payload: dict[str, Any]) -> list[str]:
    """Emails and player ids of other accounts in an answer (those the caller itself sent
    excepted: a form may echo what was typed)."""
    sent = repr(payload)
    return [s for a in cast.others(role) for s in (a.email, a.player_id)
            if s in answer.text and s not in sent]


def check_quiet(caller: Caller, cast: Cast, calls: list[Call]) -> None:
    """Calls that must change nothing: together, then one by one to name the culprit."""
    before = live.Snapshot.take()
    for c in calls:
        answer = caller.call(c)
        if RANK[caller.role] < RANK[level(c.state, c.name)[0]]:
            shown = shows_others(answer, cast, caller.role, c.payload)
            assert not shown, f"{caller.role}: {c.label} showed {shown}"
    changed = before.changes()
    if changed:
        for c in calls:
            before = live.Snapshot.take()
            caller.call(c)
            assert before.changes() == {}, \
                f"{caller.role}: {c.label} changed {before.changes()}"
        pytest.fail(f"{caller.role}: these calls changed {changed}: "
                    f"{[c.label for c in calls]}")


def check_permitted(caller: Caller, cast: Cast, calls: list[Call]) -> None:
    others = {a.email: facts(a) for a in cast.others(caller.role)}
    for c in calls:
        caller.call(c)
        if (c.state.__name__, c.name) in ENDS_SESSION:
            caller.keep_signed_in()
    after = {a.email: facts(a) for a in cast.others(caller.role)}
    for email, was in others.items():
        assert after[email] == was, \
            f"{caller.role}'s permitted calls changed {email}: {was} -> {after[email]}"


@pytest.mark.security
@pytest.mark.parametrize("role", ROLES)
def test_every_handler_as(role: str, attacked: live.Casino, cast: Cast) -> None:
    caller = Caller(attacked, role, cast.caller(role))
    try:

        @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
                  phases=(Phase.explicit, Phase.generate),
                  suppress_health_check=list(HealthCheck))
        @given(data=st.data())
        def one_pass(data: st.DataObject) -> None:
            log_from = attacked.log_size()
            calls = draw_calls(data, role, cast)
            quiet = [c for c in calls if RANK[role] < RANK[level(c.state, c.name)[0]]
                     or level(c.state, c.name)[1]]
            permitted = [c for c in calls if c not in quiet]
            check_quiet(caller, cast, quiet)
            check_permitted(caller, cast, permitted)
            errors = attacked.server_errors(log_from)
            assert not errors, f"{role}: the server logged errors:\n" + "\n\n".join(errors[:3])
            assert audit_chain_ok(), "the audit chain no longer verifies"
            assert not live.ledger_violations()

        one_pass()
        # the server really ran them (a dropped event gets no answer at all)
        assert caller.calls >= EXAMPLES * 100 and caller.answered >= caller.calls * 0.8, \
            f"{role}: {caller.calls} calls, {caller.answered} answered"
    finally:
        caller.close()
    tokens = [a.token for a in (cast.player, cast.support, cast.admin, cast.target,
                                cast.bystander) if a is not caller.who]
    house = live.house_secrets(attacked.env, tokens)
    if caller.who is not None:  # its own enrolment secret, were a start_totp to pass
        house.pop(f"totp_pending_enc of user #{caller.who.user_id}", None)
    text = "\n".join(s for s in _strings(caller.received))
    assert not live.leaked(text, house), f"{role} received {live.leaked(text, house)}"


def _strings(value: Any) -> Iterator[str]:
    from tests.support.reflex_client import strings

    return strings(value)


def test_the_matrix_tells_a_secret_apart() -> None:
    """``live.leaked`` finds a secret however it is embedded, and only a secret."""
    secret = secrets.token_hex(32)
    assert live.leaked(f'{{"x": "seed {secret}."}}', {"seed": secret}) == ["seed"]
    assert live.leaked(secret[:-1], {"seed": secret}) == []
