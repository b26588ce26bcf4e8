"""Registration: what a new player sees, and what ends up in which database."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest
import time_machine
from sqlalchemy import func, inspect, select, text

from casino_app.core.db import databases, ledger_tx
from casino_app.payments.models import Player
from casino_app.users import accounts
from casino_app.users.errors import ValidationFailed
from casino_app.users.models import Role
from casino_app.users.validation import common_passwords
from tests.users.helpers import (
    PASSWORD,
    audited,
    new_ctx,
    new_email,
    register,
    sign_in,
    user_count,
    user_row,
    whoami,
)


def _register(**overrides: object) -> str:
    fields: dict[str, object] = dict(email=new_email(), password=PASSWORD,
                                     display_name="Alice Player", date_of_birth="1990-05-17",
                                     accept_terms=True, ctx=new_ctx())
    fields.update(overrides)
    return accounts.register(**fields)  # type: ignore[arg-type]


def _refused(field: str, **overrides: object) -> ValidationFailed:
    before = user_count()
    with pytest.raises(ValidationFailed) as exc:
        _register(**overrides)
    assert exc.value.field == field, str(exc.value)
    assert user_count() == before
    return exc.value


def test_registration_signs_the_new_player_in(any_env: str) -> None:
    with audited({"account.register": 1}):
        token = _register(email="newcomer@example.com", display_name="New Comer")
    me = whoami(token)
    assert me is not None
    assert (me.email, me.display_name, me.role) == ("newcomer@example.com", "New Comer",
                                                    Role.player)
    assert not me.totp_enabled
    assert user_row("newcomer@example.com").terms_accepted_at is not None


def test_email_is_stored_lowercase_and_signing_in_ignores_its_case(any_env: str) -> None:
    token = _register(email="  Mixed.Case@Example.COM ")
    assert whoami(token).email == "mixed.case@example.com"  # type: ignore[union-attr]
    assert whoami(sign_in("MIXED.case@example.com")) is not None


def test_a_taken_email_is_refused_on_the_email_field_without_saying_it_is_taken(
        any_env: str) -> None:
    _register(email="taken@example.com")
    exact = _refused("email", email="taken@example.com")
    other_case = _refused("email", email="TAKEN@Example.com")
    assert str(exact) == str(other_case)
    assert not re.search(r"already|exists|taken|in use", str(exact), re.IGNORECASE)
    assert user_count() == 1


@pytest.mark.parametrize(("dob", "accepted"), [
    ("2008-06-01", True),    # 18 today
    ("2008-06-02", False),   # 18 tomorrow
    ("1990-01-01", True),
    (date(2008, 6, 1), True),
    (date(2010, 1, 1), False),
])
def test_players_must_be_18_or_older(app_env: object, dob: object, accepted: bool) -> None:
    with time_machine.travel(datetime(2026, 6, 1, 9, 0, tzinfo=UTC), tick=False):
        if accepted:
            _register(date_of_birth=dob)
            assert user_count() == 1
        else:
            assert "18" in str(_refused("date_of_birth", date_of_birth=dob))


def test_a_player_exactly_18_today_is_accepted_on_both_databases(any_env: str) -> None:
    with time_machine.travel(datetime(2026, 2, 28, 23, 0, tzinfo=UTC), tick=False):
        _refused("date_of_birth", date_of_birth="2008-03-01")
        token = _register(date_of_birth="2008-02-28")
        assert user_row(whoami(token).email).date_of_birth == date(2008, 2, 28)  # type: ignore[union-attr]


def test_a_date_and_time_of_birth_counts_as_its_date(app_env: object) -> None:
    with time_machine.travel(datetime(2026, 6, 1, 9, 0, tzinfo=UTC), tick=False):
        _refused("date_of_birth", date_of_birth=datetime(2008, 6, 2, 0, 0))
        token = _register(date_of_birth=datetime(2008, 6, 1, 23, 59))
        assert user_row(whoami(token).email).date_of_birth == date(2008, 6, 1)  # type: ignore[union-attr]


@pytest.mark.parametrize("accept", [False, None, "yes", "true", 1])
def test_terms_must_be_accepted(app_env: object, accept: object) -> None:
    _refused("accept_terms", accept_terms=accept)


@pytest.mark.parametrize(("length", "accepted"), [
    (7, False), (8, True), (64, True), (128, True), (129, False)])
def test_password_length_limits(app_env: object, length: int, accepted: bool) -> None:
    password = ("lantern" * 20)[:length]
    if accepted:
        token = _register(password=password)
        assert whoami(sign_in(whoami(token).email, password)) is not None  # type: ignore[union-attr]
    else:
        _refused("password", password=password)


def test_common_passwords_are_refused_whatever_their_case(app_env: object) -> None:
    blocked = sorted(p for p in common_passwords() if len(p) >= 8)
    assert len(blocked) > 1000
    for pw in (blocked[0], blocked[len(blocked) // 2], "sunshine", "SunShine", "PASSWORD1"):
        message = str(_refused("password", password=pw))
        assert "common" in message


PASSPHRASES = ["the quick brown fox naps in the sun", "lowercaseonlylongpassword",
               "mot de passe très long 🔐 ключ"]


def test_a_long_all_lowercase_passphrase_is_accepted(app_env: object) -> None:
    for phrase in PASSPHRASES:
        _register(password=phrase)
    assert user_count() == 3


def test_the_email_address_as_password_is_refused(app_env: object) -> None:
    addr = "john.smith@example.com"
    for same in ("john.smith", "John.Smith@example.com"):
        _refused("password", email=addr, password=same)


LONG = "x" * 10_000
BAD_INPUT = [
    # email
    ("email", {"email": ""}),
    ("email", {"email": "   "}),
    ("email", {"email": None}),
    ("email", {"email": 42}),
    ("email", {"email": ["a@example.com"]}),
    ("email", {"email": b"a@example.com"}),
    ("email", {"email": "not-an-email"}),
    ("email", {"email": "a@b"}),
    ("email", {"email": LONG + "@example.com"}),
    ("email", {"email": "a" * 60 + "@" + "b" * 200 + ".com"}),
    ("email", {"email": "ab\x00c@example.com"}),
    ("email", {"email": "a\u202eb@example.com"}),
    ("email", {"email": "'; DROP TABLE users;--"}),
    ("email", {"email": "'; DROP TABLE users;--@example.com"}),
    ("email", {"email": "<script>alert(1)</script>@example.com"}),
    ("email", {"email": "Alice <alice@example.com>"}),
    ("email", {"email": "alice@example.com\r\nBcc: victim@example.com"}),
    # password
    ("password", {"password": ""}),
    ("password", {"password": None}),
    ("password", {"password": 12345678}),
    ("password", {"password": LONG}),
    ("password", {"password": "correct\x00horse battery"}),
    ("password", {"password": "line\nbreak in password"}),
    # display name
    ("display_name", {"display_name": ""}),
    ("display_name", {"display_name": "   "}),
    ("display_name", {"display_name": None}),
    ("display_name", {"display_name": 7}),
    ("display_name", {"display_name": "A"}),
    ("display_name", {"display_name": LONG}),
    ("display_name", {"display_name": "<script>alert(1)</script>"}),
    ("display_name", {"display_name": "'; DROP TABLE users;--"}),
    ("display_name", {"display_name": "Robert\x00Tables"}),
    ("display_name", {"display_name": "evil\u202egnp.exe"}),
    ("display_name", {"display_name": "Lucky 🎰 Player"}),
    ("display_name", {"display_name": "<img src=x onerror=alert(1)>"}),
    # date of birth
    ("date_of_birth", {"date_of_birth": ""}),
    ("date_of_birth", {"date_of_birth": None}),
    ("date_of_birth", {"date_of_birth": 19900517}),
    ("date_of_birth", {"date_of_birth": "17/05/1990"}),
    ("date_of_birth", {"date_of_birth": "1990-02-30"}),
    ("date_of_birth", {"date_of_birth": "2999-01-01"}),
    ("date_of_birth", {"date_of_birth": "1800-01-01"}),
    ("date_of_birth", {"date_of_birth": LONG}),
    ("date_of_birth", {"date_of_birth": "1990-05-17'; DROP TABLE users;--"}),
    ("date_of_birth", {"date_of_birth": "1990-05-17\x00"}),
]


@pytest.mark.parametrize(("field", "bad"), BAD_INPUT,
                         ids=[f"{f}-{i}" for i, (f, _) in enumerate(BAD_INPUT)])
def test_bad_input_is_refused_naming_the_field_and_creates_no_account(
        app_env: object, field: str, bad: dict[str, object]) -> None:
    exc = _refused(field, **bad)
    assert str(exc) and len(str(exc)) < 200
    with ledger_tx() as s:
        assert s.execute(select(func.count()).select_from(Player)).scalar_one() == 0


def test_quotes_and_markup_in_valid_input_are_stored_verbatim(any_env: str) -> None:
    token = _register(email="o'brien+casino@example.com", display_name="Seán O'Brien-Smith")
    me = whoami(token)
    assert me is not None
    assert (me.email, me.display_name) == ("o'brien+casino@example.com", "Seán O'Brien-Smith")
    assert whoami(sign_in("o'brien+casino@example.com")) is not None


def test_a_new_player_gets_a_ledger_id_and_the_ledger_holds_no_personal_data(
        any_env: str) -> None:
    token, addr = register(email_addr="private.person@example.com", name="Private Person",
                           dob="1984-07-09")
    me = whoami(token)
    assert me is not None
    with ledger_tx() as s:
        assert s.get(Player, me.player_id) is not None

    ledger = databases().ledger_engine
    personal = re.compile(r"e_?mail|display|first_?name|last_?name|full_?name|birth|dob|"
                          r"phone|address|password", re.IGNORECASE)
    # Blockchain addresses (deposit, withdrawal, Safe) are pseudonymous and needed to pay
    # and to reconcile: those columns may hold 0x-addresses and nothing else.
    chain_address = re.compile(r"^(from_|to_|safe_)?address$")
    insp = inspect(ledger)
    for table in insp.get_table_names():
        for column in insp.get_columns(table):
            name = column["name"]
            if chain_address.match(name):
                with ledger.connect() as conn:
                    values = conn.execute(text(f'SELECT "{name}" FROM "{table}"')).scalars()  # noqa: S608
                    assert all(v is None or re.fullmatch(r"0x[0-9a-fA-F]{40}", v)
                               for v in values), f"{table}.{name}"
                continue
            assert not personal.search(name), f"{table}.{name}"
    assert [c["name"] for c in insp.get_columns("players")] == ["player_id", "created_at"]

    # No value anywhere in the ledger names the person.
    with ledger.connect() as conn:
        dump = " ".join(str(v) for table in insp.get_table_names()
                        for row in conn.execute(text(f'SELECT * FROM "{table}"'))  # noqa: S608
                        for v in row)
    for secret in (addr, "private.person", "Private Person", "1984-07-09", "1984"):
        assert secret not in dump


def test_two_registrations_of_one_email_at_the_same_moment_create_one_account(
        any_env: str) -> None:
    import threading

    start = threading.Barrier(2)
    outcomes: list[str] = []

    def attempt() -> None:
        ctx = new_ctx()
        start.wait()
        try:
            _register(email="race@example.com", ctx=ctx)
            outcomes.append("ok")
        except ValidationFailed as exc:
            outcomes.append(exc.field or "")

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcomes) == ["email", "ok"]
    assert user_count() == 1
    with ledger_tx() as s:
        assert s.execute(select(func.count()).select_from(Player)).scalar_one() == 1
