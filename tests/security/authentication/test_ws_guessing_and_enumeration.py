"""Password guessing and account enumeration, over the websocket (WSTG-ATHN-03,
WSTG-IDNT-04).

A guesser who knows a player's email tries passwords on the sign-in form: after five
wrong ones the account is locked, and from then on even the right password gets the
same answer as a wrong one (so the guesser cannot tell when they hit it), no session is
opened, and the owner is mailed an unlock link.

Someone who wants to know whether an address has an account asks the forms: sign-in,
sign-up and "forgot password" answer an address with an account exactly as they answer
one without (the same state, the same words, the same redirects), and nothing in the
answer names the account.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest

from casino_app.ui.state.auth import ForgotState, LoginState, RegisterState
from casino_app.ui.state.session import SessionState
from casino_app.users.errors import InvalidCredentials
from casino_app.users.models import User
from tests.support import live
from tests.support.reflex_client import Answer

pytestmark = pytest.mark.security

WRONG = "not the right pass phrase"


def mails_to(address: str) -> list[str]:
    """The mails in the app's outbox to ``address`` (the embedded default keeps them)."""
    from casino_app.core.settings import get_settings

    folder = Path(get_settings().outbox_dir)
    return [p.read_text(errors="replace") for p in sorted(folder.glob("*"))
            if p.is_file() and address in p.read_text(errors="replace")]


async def test_guessing_a_password_locks_the_account_and_the_right_one_then_looks_wrong(
        attacked: live.Casino) -> None:
    victim = live.new_player("Guessed")
    mails_before = len(mails_to(victim.email))
    form = {"email": victim.email, "password": WRONG}
    async with attacked.tab(None, "/login") as tab:
        await tab.open()
        wrong = [await tab.call(LoginState, "submit_password", form=form) for _ in range(5)]
        right = await tab.call(LoginState, "submit_password",
                               form={"email": victim.email, "password": victim.password})
        await tab.call(SessionState, "refresh")
        assert tab.var(SessionState, "signed_in") is False
    said = {a.get(LoginState, "message") for a in wrong}
    assert said == {str(InvalidCredentials())}, said
    # the right password, once locked: the same words as a wrong one, no session
    assert right.get(LoginState, "message") == str(InvalidCredentials())
    assert not right.redirects and not right.get(SessionState, "cookie_op")
    assert right.get(LoginState, "step") in (None, "password")
    assert live.user_by_id(victim.user_id).locked_at is not None
    live.wait_for("the unlock mail", lambda: len(mails_to(victim.email)) > mails_before,
                  timeout=30)
    assert live.session_live(victim.token), "a guesser could end the owner's own session"


def shown(answer: Answer, state: Any, address: str) -> dict[str, Any]:
    """What the answer shows, with the address typed replaced by a placeholder."""
    out = {}
    for sub, values in answer.delta.items():
        for k, v in values.items():
            out[f"{sub}.{k}"] = str(v).replace(address, "<address>")
    return {"delta": out, "redirects": answer.redirects,
            "events": [str(e.get("name")) for e in answer.events]}


async def ask(casino: live.Casino, page: str, state: Any, handler: str,
              form: dict[str, str]) -> dict[str, Any]:
    async with casino.tab(None, page) as tab:
        await tab.open()
        answer = await tab.call(state, handler, form=form)
    return shown(answer, state, form["email"])


async def test_the_forms_answer_an_address_with_an_account_as_one_without(
        attacked: live.Casino) -> None:
    known = live.new_player("Enumerated")
    unknown = f"nobody-{secrets.token_hex(4)}@example.com"
    for page, state, handler, form in [
        ("/login", LoginState, "submit_password", {"password": WRONG}),
        ("/forgot", ForgotState, "submit", {}),
        ("/register", RegisterState, "submit",
         {"password": "a fresh pass phrase 9", "password_confirm": "a fresh pass phrase 9",
          "display_name": "Probe", "date_of_birth": "1990-01-01", "accept_terms": "on"}),
    ]:
        for_known = await ask(attacked, page, state, handler, {"email": known.email, **form})
        for_unknown = await ask(attacked, page, state, handler, {"email": unknown, **form})
        assert for_known == for_unknown, \
            f"{state.__name__}.{handler} tells an account apart:\n{for_known}\n{for_unknown}"
        assert known.player_id not in str(for_known)
    # and nothing was created for the unknown address but a pending sign-up
    from sqlalchemy import func, select

    from casino_app.core.db import identity_tx
    from casino_app.security.sealed import email_index

    with identity_tx(readonly=True) as s:
        assert s.execute(select(func.count()).select_from(User).where(
            User.email_index == email_index(unknown))).scalar_one() == 0
