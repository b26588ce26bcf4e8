"""Registration: the sign-up form, the mailed link that creates the account, what a new
player sees, and what ends up in which database. The form answers the same way whether
or not the address has an account; the account exists only once the link is followed."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import func, inspect, select, text

from casino_app.core.db import databases, identity_tx, ledger_tx
from casino_app.payments.models import Player
from casino_app.users import accounts, passwords
from casino_app.users.errors import InvalidCredentials, InvalidToken, ValidationFailed
from casino_app.users.models import PendingRegistration, Role
from casino_app.users.validation import common_passwords
from tests.support.signup import confirmation_token
from tests.users.helpers import (
    PASSWORD,
    T0,
    audit_rows,
    audited,
    body,
    new_ctx,
    new_email,
    read_outbox,
    register,
    sign_in,
    user_count,
    user_row,
    wait_for_mail,
    whoami,
)


def _fields(**overrides: object) -> dict[str, object]:
    fields: dict[str, object] = dict(email=new_email(), password=PASSWORD,
                                     display_name="Alice Player", date_of_birth="1990-05-17",
                                     accept_terms=True, ctx=new_ctx())
    fields.update(overrides)
    return fields


def _register(**overrides: object) -> str:
    """The whole sign-up: the form, the mailed link, the password again."""
    fields = _fields(**overrides)
    accounts.start_registration(**fields)  # type: ignore[arg-type]
    link = confirmation_token(str(fields["email"]))
    return accounts.confirm_registration(link, fields["password"], fields["ctx"])  # type: ignore[arg-type]


def pending_count() -> int:
    with identity_tx() as s:
        return s.execute(select(func.count()).select_from(PendingRegistration)).scalar_one()


def _refused(field: str, **overrides: object) -> ValidationFailed:
    before, pending, mails = user_count(), pending_count(), len(read_outbox())
    with audited({}), pytest.raises(ValidationFailed) as exc:
        accounts.start_registration(**_fields(**overrides))  # type: ignore[arg-type]
    assert exc.value.field == field, str(exc.value)
    assert (user_count(), pending_count(), len(read_outbox())) == (before, pending, mails)
    return exc.value


def test_registration_signs_the_new_player_in(any_env: str) -> None:
    with audited({"account.register_requested": 1}):
        assert accounts.start_registration(**_fields(  # type: ignore[arg-type]
            email="newcomer@example.com", display_name="New Comer")) is None
    assert user_count() == 0  # nothing exists before the mailed link is followed
    link = confirmation_token("newcomer@example.com")
    with audited({"account.register": 1}):
        token = accounts.confirm_registration(link, PASSWORD, new_ctx())
    me = whoami(token)
    assert me is not None
    assert (me.email, me.display_name, me.role) == ("newcomer@example.com", "New Comer",
                                                    Role.player)
    assert not me.totp_enabled
    assert user_row("newcomer@example.com").terms_accepted_at is not None
    assert pending_count() == 0


def test_email_is_stored_lowercase_and_signing_in_ignores_its_case(any_env: str) -> None:
    token = _register(email="  Mixed.Case@Example.COM ")
    assert whoami(token).email == "mixed.case@example.com"  # type: ignore[union-attr]
    assert whoami(sign_in("MIXED.case@example.com")) is not None


def test_a_taken_email_gets_the_same_answer_and_work_as_a_new_one_and_its_owner_a_note(
        any_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sign-up does not tell whether an address has an account: the same (empty) answer,
    the same argon2 work, one audit row and one mail either way. Only the owner of the
    address learns, from the mail, that someone tried."""
    _register(email="taken@example.com", display_name="Tina Taken")
    hashed: list[str] = []
    real_hash = passwords.hash_password
    monkeypatch.setattr(passwords, "hash_password",
                        lambda pw: hashed.append(pw) or real_hash(pw))
    answers = []
    for addr in ("taken@example.com", "TAKEN@Example.com", "new.one@example.com"):
        with audited({"account.register_requested": 1}):
            answers.append(accounts.start_registration(**_fields(  # type: ignore[arg-type]
                email=addr, password="someone else's phrase", display_name="Mallory Typed")))
    assert answers == [None, None, None]
    assert hashed == ["someone else's phrase"] * 3  # argon2 in both branches
    assert user_count() == 1 and pending_count() == 1  # only the new address is pending
    assert [json.loads(r.detail)["known"] for r in audit_rows("account.register_requested")
            ] == [False, True, True, False]

    mails = wait_for_mail(3)
    notes = [m for m in mails if m["To"] == "taken@example.com"]
    assert [m["Subject"] for m in notes] == [accounts.REGISTER_TAKEN_SUBJECT] * 2
    note = body(notes[0])
    assert "Tina Taken" in note and "/login" in note and "/forgot" in note
    assert "register/confirm" not in note  # nothing to create
    (new,) = [m for m in mails if m["To"] == "new.one@example.com"]
    assert new["Subject"] == accounts.REGISTER_SUBJECT
    assert "Mallory" not in body(new)  # the typed name is not mailed to the address
    # The owner's account is unchanged: their password still signs in, the other does not.
    assert whoami(sign_in("taken@example.com")) is not None
    with pytest.raises(InvalidCredentials):
        accounts.begin_login(email="taken@example.com", password="someone else's phrase",
                             ctx=new_ctx())


def test_sign_up_cannot_flood_an_address_with_mail(any_env: str) -> None:
    """Anyone can type anyone's address, from many IPs: past CASINO_RATE_MAIL_ADDRESS
    (3 an hour) the form answers exactly the same and no more mail goes to it, whether
    or not the address has an account; the audit row says the mail was held back."""
    _register(email="owner@example.com", display_name="Olga Owner")  # its first mail
    for addr in ("owner@example.com", "fresh@example.com"):
        answers = [accounts.start_registration(**_fields(email=addr))  # type: ignore[arg-type]
                   for _ in range(5)]  # each from another IP (new_ctx)
        assert answers == [None] * 5
    mails = wait_for_mail(5)
    time.sleep(0.5)  # the mail thread: nothing more comes
    assert sorted(m["To"] for m in read_outbox()) == ["fresh@example.com"] * 3 + [
        "owner@example.com"] * 2  # three each in the hour, the sign-up's own included
    assert len(mails) == 5
    held = [json.loads(r.detail) for r in audit_rows("account.register_requested")
            if json.loads(r.detail).get("mailed") is False]
    assert [d["known"] for d in held] == [True, True, True, False, False]
    assert pending_count() == 3  # a held-back request stores nothing


def test_nobody_can_hold_an_address_or_finish_a_sign_up_someone_else_started(
        any_env: str) -> None:
    """A sign-up with someone else's address creates nothing; its mailed link needs the
    password chosen on the form, which the address's owner does not know; and once the
    owner signs up, every other pending sign-up of the address ends."""
    squatter = "squatter's own phrase"
    addr = "owner@example.com"
    accounts.start_registration(**_fields(email=addr, password=squatter))  # type: ignore[arg-type]
    squatter_link = confirmation_token(addr)  # (mailed to the owner of the address)
    assert user_count() == 0
    with pytest.raises(InvalidCredentials):
        accounts.begin_login(email=addr, password=squatter, ctx=new_ctx())
    accounts.start_registration(**_fields(email=addr))  # type: ignore[arg-type]
    owner_link = confirmation_token(addr)
    assert owner_link != squatter_link
    with pytest.raises(ValidationFailed) as exc:  # the owner clicks the squatter's link
        accounts.confirm_registration(squatter_link, PASSWORD, new_ctx())
    assert exc.value.field == "password"
    token = accounts.confirm_registration(owner_link, PASSWORD, new_ctx())
    assert whoami(token).email == addr  # type: ignore[union-attr]
    with pytest.raises(InvalidToken):
        accounts.confirm_registration(squatter_link, squatter, new_ctx())
    assert user_count() == 1 and pending_count() == 0
    with pytest.raises(InvalidCredentials):
        accounts.begin_login(email=addr, password=squatter, ctx=new_ctx())


def test_a_sign_up_link_works_once_and_expires(any_env: str) -> None:
    with time_machine.travel(T0, tick=False) as clock:
        addr = new_email()
        accounts.start_registration(**_fields(email=addr))  # type: ignore[arg-type]
        link = confirmation_token(addr, keep=True)
        assert "within 24 hours" in body(read_outbox()[-1])
        clock.shift(timedelta(hours=23, minutes=59))
        accounts.confirm_registration(link, PASSWORD, new_ctx())
        with pytest.raises(InvalidToken):
            accounts.confirm_registration(link, PASSWORD, new_ctx())

        late = new_email()
        accounts.start_registration(**_fields(email=late))  # type: ignore[arg-type]
        link = confirmation_token(late)
        clock.shift(timedelta(hours=24))
        with pytest.raises(InvalidToken):
            accounts.confirm_registration(link, PASSWORD, new_ctx())
        assert user_count() == 1


def test_the_link_lifetime_is_a_setting(app_env: object,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.users.helpers import reconfigure

    reconfigure(monkeypatch, REGISTER_TOKEN_MINUTES="30")
    with time_machine.travel(T0, tick=False) as clock:
        addr = new_email()
        accounts.start_registration(**_fields(email=addr))  # type: ignore[arg-type]
        link = confirmation_token(addr, keep=True)
        assert "within 30 minutes" in body(read_outbox()[-1])
        clock.shift(timedelta(minutes=30))
        with pytest.raises(InvalidToken):
            accounts.confirm_registration(link, PASSWORD, new_ctx())


def test_wrong_passwords_on_the_link_are_counted_and_end_it(any_env: str) -> None:
    addr = new_email()
    accounts.start_registration(**_fields(email=addr))  # type: ignore[arg-type]
    link = confirmation_token(addr)
    for bad in (None, 5, "", "x" * 2000):  # not a password at all: not counted
        with pytest.raises(ValidationFailed):
            accounts.confirm_registration(link, bad, new_ctx())
    for _ in range(accounts.MAX_CONFIRM_ATTEMPTS - 1):
        with audited({}), pytest.raises(ValidationFailed) as exc:
            accounts.confirm_registration(link, "not the one chosen", new_ctx())
        assert exc.value.field == "password"
    with pytest.raises(InvalidToken):
        accounts.confirm_registration(link, "not the one chosen", new_ctx())
    with pytest.raises(InvalidToken):
        accounts.confirm_registration(link, PASSWORD, new_ctx())
    assert user_count() == 0 and pending_count() == 0


@pytest.mark.parametrize("link", [None, "", 42, "short", "x" * 500, "a b c d e f g h i j k l",
                                  "'; DROP TABLE users;--", "A" * 43])
def test_a_bad_sign_up_link_is_refused(app_env: object, link: object) -> None:
    with audited({}), pytest.raises(InvalidToken):
        accounts.confirm_registration(link, PASSWORD, new_ctx())
    assert user_count() == 0


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


def test_two_sign_ups_of_one_email_confirmed_at_the_same_moment_create_one_account(
        any_env: str) -> None:
    import threading

    links = []
    for _ in range(2):
        accounts.start_registration(**_fields(email="race@example.com"))  # type: ignore[arg-type]
        links.append(confirmation_token("race@example.com"))
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def attempt(link: str) -> None:
        ctx = new_ctx()
        start.wait()
        try:
            accounts.confirm_registration(link, PASSWORD, ctx)
            outcomes.append("ok")
        except InvalidToken:
            outcomes.append("refused")

    threads = [threading.Thread(target=attempt, args=(link,)) for link in links]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcomes) == ["ok", "refused"]
    assert user_count() == 1 and pending_count() == 0
    with ledger_tx() as s:
        assert s.execute(select(func.count()).select_from(Player)).scalar_one() == 1
