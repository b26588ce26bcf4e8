"""A player's whole account life in Chromium, at phone and desktop sizes: register,
2FA, sessions, lock-out, reset by mail, and support finding them."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import link_in
from tests.e2e.flows import (
    CHECK_INBOX,
    at,
    code_for_next_step,
    enrol_2fa,
    enter_code,
    expect_signed_out,
    finish_registration,
    goto,
    login_password,
    register,
    sign_out,
    staff_sign_in,
    submit_registration,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_player_account_lifecycle(new_context, smtp, viewport):  # noqa: ANN001
    email = f"player-{uuid.uuid4().hex[:8]}@example.com"
    password = "a long pass phrase"
    device_a = new_context().new_page()
    device_b = new_context().new_page()

    # Register; the session survives a reload and a new tab.
    register(device_a, email, "Player One", password)
    device_a.reload()
    expect(device_a.get_by_text(email)).to_be_visible()
    tab2 = device_a.context.new_page()
    goto(tab2, "/account")
    expect(tab2.get_by_text(email)).to_be_visible()
    tab2.close()

    # A second device signs in with the password alone (2FA is not on yet).
    login_password(device_b, email, password)
    device_b.wait_for_url(at("/account"))

    # Enrol 2FA: read the key shown for manual entry, compute the code. Turning it on
    # signs every other device out (a stolen session does not outlive it).
    secret, recovery = enrol_2fa(device_a, password)
    expect_signed_out(device_b)

    # The other device signs in again, now with a second factor (a recovery code).
    login_password(device_b, email, password)
    enter_code(device_b, recovery.pop())
    device_b.wait_for_url(at("/account"))

    # Revoke the other device from the sessions page; it loses access.
    goto(device_a, "/account/sessions")
    rows = device_a.locator(".session-row")
    expect(rows).to_have_count(2)
    other = rows.filter(has_not_text="This device")
    other.get_by_role("button", name="Revoke session").click()
    expect(rows).to_have_count(1)
    expect_signed_out(device_b)

    # Sign out, sign in again with a code: the password alone is not enough.
    sign_out(device_a)
    login_password(device_a, email, password)
    expect(device_a.get_by_text("Two-factor check")).to_be_visible()
    code = code_for_next_step(secret)
    enter_code(device_a, code)
    device_a.wait_for_url(at("/account"))

    # The same code is refused a second time.
    sign_out(device_a)
    login_password(device_a, email, password)
    enter_code(device_a, code)
    expect(device_a.get_by_role("alert").filter(has_text="not valid")).to_be_visible()
    device_a.get_by_role("button", name="Start again").click()

    # Five wrong passwords lock the account; the right one then gets the same answer.
    for _ in range(5):
        login_password(device_a, email, "wrong password here")
        expect(device_a.get_by_role("alert").filter(
            has_text="Email or password is incorrect")).to_be_visible()
    login_password(device_a, email, password)
    expect(device_a.get_by_role("alert").filter(has_text="Email or password is incorrect")).to_be_visible()
    smtp.wait_for(email, "locked")

    # Reset the password through the mail the SMTP server received; that unlocks too.
    goto(device_a, "/forgot")
    device_a.get_by_label("Email").fill(email)
    device_a.get_by_role("button", name="Email me a link").click()
    expect(device_a.get_by_text("we have emailed it a link")).to_be_visible()
    link = link_in(smtp.wait_for(email, "Reset your HashHouse password"))
    goto(device_a, link)
    new_password = "another long pass phrase"
    device_a.get_by_label("New password", exact=True).fill(new_password)
    device_a.get_by_label("Repeat new password").fill(new_password)
    device_a.get_by_role("button", name="Change password").click()
    expect(device_a.get_by_text("Your password has been changed")).to_be_visible()
    # The link works once: opened again, it says so at once (no form) and offers a new one.
    goto(device_a, link)
    expect(device_a.get_by_role("alert").filter(has_text="This link no longer works")
           ).to_be_visible()
    expect(device_a.get_by_label("New password", exact=True)).to_have_count(0)
    expect(device_a.get_by_role("link", name="Email me a new link")).to_have_attribute(
        "href", "/forgot")

    # Sign in with the new password and a recovery code.
    login_password(device_a, email, new_password)
    enter_code(device_a, recovery[0])
    device_a.wait_for_url(at("/account"))

    # Support finds the player and sees their sessions and lock state.
    staff = new_context().new_page()
    staff_sign_in(staff)
    goto(staff, "/admin")
    # by the whole address, in any case: emails are sealed, found by their blind index
    staff.get_by_label("Search").fill(email.upper())
    staff.get_by_role("button", name="Search").click()
    staff.get_by_role("link", name=email).click()
    expect(staff.get_by_role("heading", name=email)).to_be_visible()
    expect(staff.get_by_text("Live sessions")).to_be_visible()
    expect(staff.get_by_text("Active", exact=True)).to_be_visible()
    staff.get_by_label("Reason", exact=True).fill("e2e check")
    staff.get_by_role("button", name="Lock and sign out").click()
    expect(staff.get_by_text("Account locked and signed out everywhere.")).to_be_visible()
    expect_signed_out(device_a)


def test_signing_up_with_a_taken_address_looks_the_same_and_mails_its_owner(
        new_context, smtp):  # noqa: ANN001
    taken = f"taken-{uuid.uuid4().hex[:8]}@example.com"
    fresh = f"fresh-{uuid.uuid4().hex[:8]}@example.com"
    register(new_context().new_page(), taken, "Taken Owner", "the owner's pass phrase")

    answers = []
    for addr in (taken, fresh):
        page = new_context().new_page()
        goto(page, "/register")
        submit_registration(page, addr, "Someone Else", "someone else's phrase")
        expect(page.get_by_text(CHECK_INBOX)).to_be_visible()
        answers.append(page.locator("main").inner_text())
    assert answers[0] == answers[1]  # nothing on the page tells the two apart

    note = smtp.wait_for(taken, "Someone tried to sign up")
    assert "/login" in note.get_payload(decode=True).decode()
    # No account exists for the fresh address until its link is followed.
    page = new_context().new_page()
    login_password(page, fresh, "someone else's phrase")
    expect(page.get_by_role("alert").filter(has_text="Email or password is incorrect")
           ).to_be_visible()
    finish_registration(page, fresh, "someone else's phrase")  # signed in now
    # The link works once.
    link = link_in(smtp.wait_for(fresh, "Finish creating your HashHouse account"))
    other = new_context().new_page()
    goto(other, link)
    other.get_by_label("Password").fill("someone else's phrase")
    other.get_by_role("button", name="Create my account").click()
    expect(other.get_by_role("alert").filter(has_text="invalid or has expired")).to_be_visible()


def test_player_cannot_open_staff_pages(new_context):  # noqa: ANN001
    page = new_context().new_page()
    register(page, f"curious-{uuid.uuid4().hex[:8]}@example.com", "Curious", "a long pass phrase")
    goto(page, "/admin")
    page.wait_for_url(at("/account"))
    expect(page.get_by_text("Find a player")).to_have_count(0)


def test_anonymous_visitor_is_sent_to_sign_in(new_context):  # noqa: ANN001
    page = new_context().new_page()
    goto(page, "/account/sessions")
    page.wait_for_url(at("/login", query=True))
