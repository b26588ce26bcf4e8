"""Steps a person takes in the browser, shared by the end-to-end tests."""

from __future__ import annotations

import time

import pyotp
from playwright.sync_api import Page, expect


def register(page: Page, email: str, name: str, password: str,
             dob: str = "1990-05-05") -> None:
    page.goto("/register")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Display name").fill(name)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_label("Repeat password").fill(password)
    page.get_by_label("Date of birth").fill(dob)
    page.get_by_label("I am 18 or older").check()
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url("**/account/")
    expect(page.get_by_text(email)).to_be_visible()


def login_password(page: Page, email: str, password: str) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def enter_code(page: Page, code: str) -> None:
    page.get_by_label("Authentication code").fill(code)
    page.get_by_role("button", name="Verify").click()


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Account menu").click()
    page.get_by_role("menuitem", name="Sign out").click()
    page.wait_for_url("**/login/")


def code_for_next_step(secret: str) -> str:
    """A code one 30-s step ahead: accepted now (one step of drift) and not yet used."""
    return pyotp.TOTP(secret).at(time.time() + 30)


def expect_signed_out(page: Page) -> None:
    page.goto("/account")
    page.wait_for_url("**/login/**")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
