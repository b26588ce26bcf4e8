"""Steps a person takes in the browser, shared by the end-to-end tests."""

from __future__ import annotations

import re
import time

import pyotp
from playwright.sync_api import Page, expect

from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, link_in, session_inbox

# The shared admin's second factor, set up by the first test that signs in as staff.
ADMIN_2FA: dict[str, object] = {}


def at(path: str, query: bool = False) -> re.Pattern[str]:
    """A URL pattern for a page, with or without the trailing slash (and query)."""
    return re.compile(re.escape(path) + r"/?" + (r"(\?.*)?" if query else "") + "$")


def goto(page: Page, path: str) -> None:
    """Open a page and wait until it is connected and its on_load events have run
    (submit buttons are disabled until then)."""
    page.goto(path)
    wait_ready(page)


def wait_ready(page: Page) -> None:
    page.wait_for_function(
        "() => document.querySelector('main') && "
        "!document.querySelector('button[type=submit][disabled]')")


def submit_registration(page: Page, email: str, name: str, password: str,
                        confirm: str | None = None, dob: str = "1990-05-05") -> None:
    """Fill the open registration form and send it."""
    page.get_by_label("Email").fill(email)
    page.get_by_label("Display name").fill(name)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_label("Repeat password").fill(password if confirm is None else confirm)
    page.get_by_label("Date of birth").fill(dob)
    page.get_by_label("I am 18 or older").check()
    page.get_by_role("button", name="Create account").click()


def register(page: Page, email: str, name: str, password: str,
             dob: str = "1990-05-05") -> None:
    """Sign up as a person does: the form, then the link in the mail, then the password
    again; ends signed in on the account page."""
    goto(page, "/register")
    submit_registration(page, email, name, password, dob=dob)
    expect(page.get_by_text(CHECK_INBOX)).to_be_visible()
    finish_registration(page, email, password)


CHECK_INBOX = "Check your inbox to finish signing up."
SIGN_UP_SUBJECT = "Finish creating your HashHouse account"


def finish_registration(page: Page, email: str, password: str) -> None:
    """Open the sign-up link mailed to ``email`` and give the password chosen."""
    goto(page, link_in(session_inbox().wait_for(email, SIGN_UP_SUBJECT)))
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Create my account").click()
    page.wait_for_url(at("/account"))
    expect(page.get_by_text(email)).to_be_visible()


def login_password(page: Page, email: str, password: str) -> None:
    goto(page, "/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def enter_code(page: Page, code: str) -> None:
    page.get_by_label("Authentication code").fill(code)
    page.get_by_role("button", name="Verify").click()


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Account menu").click()
    page.get_by_role("menuitem", name="Sign out").click()
    page.wait_for_url(at("/login"))


def code_for_next_step(secret: str) -> str:
    """A code one 30-s step ahead: accepted now (one step of drift) and not yet used."""
    return pyotp.TOTP(secret).at(time.time() + 30)


def expect_signed_out(page: Page) -> None:
    goto(page, "/account")
    page.wait_for_url(at("/login", query=True))
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()


def enrol_2fa(page: Page, password: str) -> tuple[str, list[str]]:
    """Turn on 2FA on the security page: (secret read from the manual-entry key, codes)."""
    goto(page, "/account/security")
    two_factor = page.get_by_role("region", name="Two-factor authentication")
    two_factor.get_by_label("Current password").fill(password)
    two_factor.get_by_role("button", name="Set up two-factor").click()
    secret = page.locator("#totp-secret").inner_text().strip()
    assert len(secret) >= 16
    page.get_by_label("Code from the app").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Turn on two-factor").click()
    expect(page.get_by_text("Your recovery codes")).to_be_visible()
    codes = [c.inner_text() for c in page.locator(".recovery-code").all()]
    assert len(codes) == 10
    page.get_by_role("button", name="I have saved them").click()
    expect(page.get_by_text("Recovery codes left: 10")).to_be_visible()
    return secret, codes


def staff_sign_in(page: Page, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD,
                  second_factor: dict[str, object] | None = None) -> None:
    """Sign in as a staff member (the shared admin unless told); the first time (nothing
    in ``second_factor`` yet), the staff pages send them to set up 2FA, whose secret and
    recovery codes are kept there for the next sign-ins."""
    factor = ADMIN_2FA if second_factor is None else second_factor
    login_password(page, email, password)
    if not factor:
        page.wait_for_url(at("/account"))
        # the session cookie is set by a request of the page after sign-in: wait for it
        # (the bridge notes it in localStorage), or /admin may load signed out
        page.wait_for_function("() => localStorage.getItem('hh_signed_in_changed') !== null")
        page.goto("/admin")
        page.wait_for_url(at("/account/security"))
        expect(page.get_by_text("Staff accounts need two-factor authentication")
               ).to_be_visible()
        secret, codes = enrol_2fa(page, password)
        factor.update(secret=secret, codes=codes)
    else:
        codes = factor["codes"]
        assert isinstance(codes, list)
        enter_code(page, codes.pop())
        page.wait_for_url(at("/account"))
