"""Password storage: argon2id with at least the OWASP parameters, upgraded at sign-in."""

from __future__ import annotations

import re
import unicodedata

import pytest

from casino_app.users import accounts
from casino_app.users.errors import InvalidCredentials
from tests.users.helpers import (
    NEW_PASSWORD,
    PASSWORD,
    audited,
    new_ctx,
    reconfigure,
    register,
    sign_in,
    user_row,
)

HASH = re.compile(r"^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$")


def _params(stored: str) -> tuple[int, int, int]:
    m = HASH.match(stored)
    assert m, stored
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def test_stored_hash_is_argon2id_with_owasp_parameters(app_env: object) -> None:
    _, addr = register()
    stored = user_row(addr).password_hash
    memory, time_cost, _ = _params(stored)
    assert memory >= 19456 and time_cost >= 2
    assert PASSWORD not in stored


def test_the_same_password_gets_a_different_hash_for_each_account(app_env: object) -> None:
    _, a = register()
    _, b = register()
    assert user_row(a).password_hash != user_row(b).password_hash


def test_hash_is_upgraded_at_sign_in_when_parameters_change(
        any_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _, addr = register()
    assert _params(user_row(addr).password_hash)[:2] == (19456, 2)

    reconfigure(monkeypatch, ARGON2_TIME_COST="3", ARGON2_MEMORY_KIB="24576")
    with pytest.raises(InvalidCredentials):
        accounts.begin_login(email=addr, password=NEW_PASSWORD, ctx=new_ctx())
    assert _params(user_row(addr).password_hash)[:2] == (19456, 2)  # wrong password: kept

    with audited({"login.ok": 1}):
        sign_in(addr)
    upgraded = user_row(addr).password_hash
    assert _params(upgraded)[:2] == (24576, 3)
    sign_in(addr)  # the upgraded hash still matches, and is not rewritten again
    assert user_row(addr).password_hash == upgraded


def test_a_password_typed_in_another_unicode_form_still_signs_in(any_env: str) -> None:
    composed = unicodedata.normalize("NFC", "Crème brûlée au café")
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    _, addr = register(password=decomposed)
    sign_in(addr, composed)
    sign_in(addr, decomposed)
