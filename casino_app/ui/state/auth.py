"""Sign-up (form, then mailed link), sign-in (password, then 2FA code), password reset
and unlock by mailed link.

These handlers are meant for anonymous callers; each validates every argument on the
server and is rate limited in the service it calls.
"""

from __future__ import annotations

import asyncio

import reflex as rx

from casino_app.core.logging import new_request_id
from casino_app.ui import routes
from casino_app.ui.state.notice import notify
from casino_app.ui.state.session import (
    NO_COOKIES,
    can_keep_session,
    current_user_of,
    describe,
    forget_session,
    form_value,
    request_context,
    session_of,
    show_user,
    signed_in_with,
)
from casino_app.users import accounts
from casino_app.users.errors import AccountLocked, InvalidToken


def _checked(value: object) -> bool:
    return value is True or value in ("on", "true", "1")


class RegisterState(rx.State):
    """The sign-up form. Its answer is the same for every address ("check your inbox"):
    only the field checks differ, and they never depend on the address being taken."""

    errors: dict[str, str] = {}
    message: str = ""
    sent: bool = False

    @rx.event
    async def submit(self, form: dict):
        new_request_id()
        self.errors, self.message, self.sent = {}, "", False
        sess = await session_of(self)
        if not can_keep_session(sess):
            self.message = NO_COOKIES
            return
        password = form_value(form, "password")
        if password != form_value(form, "password_confirm"):
            self.errors = {"password_confirm": "The two passwords are not the same."}
            return
        try:
            await asyncio.to_thread(
                accounts.start_registration, email=form_value(form, "email"),
                password=password, display_name=form_value(form, "display_name"),
                date_of_birth=form_value(form, "date_of_birth"),
                accept_terms=_checked(form_value(form, "accept_terms")), ctx=request_context(sess))
        except Exception as exc:  # noqa: BLE001 - shown as a message, logged by the service
            field, msg = describe(exc)
            if field:
                self.errors = {field: msg}
            else:
                self.message = msg
            return
        self.sent = True

    @rx.event
    def again(self):
        self.errors, self.message, self.sent = {}, "", False


class RegisterConfirmState(rx.State):
    """The mailed sign-up link: the password chosen on the form creates the account."""

    message: str = ""
    errors: dict[str, str] = {}
    failed: bool = False   # the link is dead: sign up again

    @rx.event
    def on_open(self):
        self.message, self.errors, self.failed = "", {}, False
        if not self.router.url.query_parameters.get("token"):
            self.failed = True
            self.message = "This sign-up link is invalid or has expired. Please sign up again."

    @rx.event
    async def submit(self, form: dict):
        new_request_id()
        self.message, self.errors = "", {}
        sess = await session_of(self)
        if not can_keep_session(sess):
            self.message = NO_COOKIES  # checked first: the link is not spent for nothing
            return
        token = self.router.url.query_parameters.get("token", "")
        try:
            session_token = await asyncio.to_thread(
                accounts.confirm_registration, token, form_value(form, "password"),
                request_context(sess))
        except Exception as exc:  # noqa: BLE001 - shown on the page
            field, msg = describe(exc)
            if field == "password":
                self.errors = {field: msg}
            else:
                self.message = msg
                self.failed = isinstance(exc, InvalidToken)
            return
        signed_in_with(sess, session_token)
        await current_user_of(sess)
        await notify(self, "success", "Welcome to HashHouse!")
        return rx.redirect(routes.ACCOUNT)


class LoginState(rx.State):
    step: str = "password"  # or "code"
    message: str = ""
    _mfa_token: str = ""

    def _next(self) -> str:
        return routes.safe_next(self.router.url.query_parameters.get("next"))

    @rx.event
    def restart(self):
        self.step, self.message, self._mfa_token = "password", "", ""

    @rx.event
    async def submit_password(self, form: dict):
        new_request_id()
        self.message = ""
        sess = await session_of(self)
        if not can_keep_session(sess):
            self.message = NO_COOKIES
            return
        try:
            step = await asyncio.to_thread(
                accounts.begin_login, email=form_value(form, "email"),
                password=form_value(form, "password"), ctx=request_context(sess))
        except Exception as exc:  # noqa: BLE001
            self.message = describe(exc)[1]
            return
        if step.mfa_token:
            self._mfa_token = step.mfa_token
            self.step = "code"
            return
        if not step.session_token:
            self.message = describe(RuntimeError())[1]
            return
        signed_in_with(sess, step.session_token)
        await current_user_of(sess)
        return rx.redirect(self._next())

    @rx.event
    async def submit_code(self, form: dict):
        new_request_id()
        self.message = ""
        sess = await session_of(self)
        if not self._mfa_token:
            self.step = "password"
            self.message = "Your sign-in expired. Please enter your password again."
            return
        try:
            token = await asyncio.to_thread(
                accounts.complete_login_mfa, mfa_token=self._mfa_token,
                code=form_value(form, "code"), ctx=request_context(sess))
        except Exception as exc:  # noqa: BLE001
            self.message = describe(exc)[1]
            if isinstance(exc, InvalidToken | AccountLocked):
                self.step, self._mfa_token = "password", ""
            return
        self._mfa_token = ""
        self.step = "password"
        signed_in_with(sess, token)
        await current_user_of(sess)
        return rx.redirect(self._next())


class ForgotState(rx.State):
    sent: bool = False
    message: str = ""

    @rx.event
    async def submit(self, form: dict):
        new_request_id()
        self.message = ""
        sess = await session_of(self)
        try:
            await asyncio.to_thread(accounts.request_password_reset,
                                    form_value(form, "email"), request_context(sess))
        except Exception as exc:  # noqa: BLE001
            self.message = describe(exc)[1]
            return
        self.sent = True

    @rx.event
    def again(self):
        self.sent, self.message = False, ""


LINK_GONE = ("This link no longer works: it was used already, or it expired (a reset "
             "link works once, for a limited time). Ask for a new one below.")


class ResetState(rx.State):
    done: bool = False
    link_gone: bool = False   # used, expired or not a link: said at once, no form
    message: str = ""
    errors: dict[str, str] = {}

    @rx.event
    async def on_open(self):
        self.done, self.link_gone, self.message, self.errors = False, False, "", {}
        token = self.router.url.query_parameters.get("token", "")
        if not token or not await asyncio.to_thread(accounts.reset_link_usable, token):
            self.link_gone, self.message = True, LINK_GONE

    @rx.event
    async def submit(self, form: dict):
        new_request_id()
        self.message, self.errors = "", {}
        sess = await session_of(self)
        password = form_value(form, "new_password")
        if password != form_value(form, "new_password_confirm"):
            self.errors = {"new_password_confirm": "The two passwords are not the same."}
            return
        token = self.router.url.query_parameters.get("token", "")
        try:
            await asyncio.to_thread(accounts.reset_password, token, password,
                                    request_context(sess))
        except Exception as exc:  # noqa: BLE001
            field, msg = describe(exc)
            if field and field != "token":
                self.errors = {field: msg}
            elif isinstance(exc, InvalidToken):
                self.link_gone, self.message = True, LINK_GONE
            else:
                self.message = msg
            return
        self.done = True
        forget_session(sess)
        show_user(sess, None)


class UnlockState(rx.State):
    status: str = "working"  # working | done | failed
    message: str = ""

    @rx.event
    async def on_open(self):
        new_request_id()
        self.status, self.message = "working", ""
        sess = await session_of(self)
        token = self.router.url.query_parameters.get("token", "")
        try:
            await asyncio.to_thread(accounts.unlock_with_token, token, request_context(sess))
        except Exception as exc:  # noqa: BLE001
            self.status, self.message = "failed", describe(exc)[1]
            return
        self.status = "done"
