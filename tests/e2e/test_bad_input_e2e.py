"""Bad input typed into the real forms gets a clear message next to the form and
changes nothing (no account is created, nobody is signed in)."""

from __future__ import annotations

import sqlite3
import uuid

import pytest
from playwright.sync_api import expect

from tests.e2e.flows import goto, submit_registration

pytestmark = pytest.mark.e2e

PASSWORD = "a long pass phrase"


def _user_count(live_app) -> int:  # noqa: ANN001
    with sqlite3.connect(live_app.data_dir / "identity.db") as db:
        return db.execute("SELECT count(*) FROM users").fetchone()[0]


@pytest.mark.parametrize(("name", "password", "confirm", "dob", "message"), [
    ("<script>alert(1)</script>", PASSWORD, PASSWORD, "1990-01-01",
     "Use letters, digits, spaces"),
    ("'; DROP TABLE users;--", PASSWORD, PASSWORD, "1990-01-01", "Use letters, digits, spaces"),
    ("Valid Name", "password123", "password123", "1990-01-01", "too common"),
    ("Valid Name", PASSWORD, PASSWORD + "x", "1990-01-01", "not the same"),
    ("Valid Name", "é" * 129, "é" * 129, "1990-01-01", "at most 128"),
    ("Valid Name", PASSWORD, PASSWORD, "2015-06-01", "18 or older"),
], ids=["html-name", "sql-name", "common-password", "mismatch", "too-long", "under-18"])
def test_registration_refuses_bad_input_with_a_message(new_context, live_app, name, password,  # noqa: ANN001, PLR0913
                                                       confirm, dob, message) -> None:
    page = new_context().new_page()
    before = _user_count(live_app)
    # Browser-side limits (maxlength, date max) are bypassed so the server rules are seen.
    goto(page, "/register")
    page.evaluate("""() => document.querySelectorAll('input').forEach(i => {
        i.removeAttribute('maxlength'); i.removeAttribute('max'); })""")
    submit_registration(page, f"bad-{uuid.uuid4().hex[:6]}@example.com", name, password,
                        confirm, dob)
    expect(page.get_by_role("alert").filter(has_text=message)).to_be_visible()
    assert _user_count(live_app) == before
    assert "/register" in page.url


def test_empty_and_malformed_fields_are_stopped_before_sending(new_context, live_app) -> None:  # noqa: ANN001
    page = new_context().new_page()
    before = _user_count(live_app)
    goto(page, "/register")
    page.get_by_role("button", name="Create account").click()
    # The browser's own validation names the first empty field and nothing is sent.
    assert page.get_by_label("Email").evaluate("e => e.validationMessage") != ""
    page.get_by_label("Email").fill("not an email")
    page.get_by_role("button", name="Create account").click()
    assert page.get_by_label("Email").evaluate("e => !e.validity.valid")
    assert _user_count(live_app) == before


def test_sign_in_with_unknown_email_and_wrong_password_read_the_same(new_context) -> None:  # noqa: ANN001
    page = new_context().new_page()
    messages = []
    for email, password in [("nobody-here@example.com", "whatever pass"),
                            ("admin@example.com", "not the password"),
                            ("x'or'1'='1@example.com", "x' OR '1'='1")]:
        goto(page, "/login")
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        alert = page.get_by_role("alert").filter(has_text="incorrect")
        expect(alert).to_be_visible()
        messages.append(alert.inner_text())
    assert len(set(messages)) == 1
