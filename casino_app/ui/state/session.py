"""The browser's session token and the per-tab view of who is signed in.

The token lives in the browser's localStorage (synced across tabs), so it survives
reloads and new tabs; the database decides whether it is still valid. Every field here
is a view, refreshed from the database on each page load and after each action.
Handlers elsewhere get the caller with ``await caller(self)``, which re-checks the
token on the server every time: nothing in a tab's state is trusted.
"""

from __future__ import annotations

import asyncio
from typing import Any

import reflex as rx

from casino_app.core.logging import new_request_id
from casino_app.core.settings import get_settings
from casino_app.security.ratelimit import RateLimited
from casino_app.ui import routes
from casino_app.users import accounts
from casino_app.users.errors import UserError, ValidationFailed
from casino_app.users.sessions import CurrentUser, RequestContext

SESSION_STORAGE_KEY = "hh_session"


def fmt_time(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else ""


class SessionState(rx.State):
    token: str = rx.LocalStorage("", name=SESSION_STORAGE_KEY, sync=True)

    signed_in: bool = False
    checked: bool = False
    display_name: str = ""
    email: str = ""
    role: str = ""
    totp_enabled: bool = False
    previous_login: str = ""
    previous_login_ip: str = ""

    @rx.var
    def is_staff(self) -> bool:
        return self.role in ("support", "admin")

    @rx.var
    def is_admin(self) -> bool:
        return self.role == "admin"

    def _context(self) -> RequestContext:
        return RequestContext(ip=self.router.session.client_ip or "",
                              user_agent=self.router.headers.user_agent or "")

    def _show(self, me: CurrentUser | None) -> None:
        # "Last sign-in" is the one before this session's: a sign-in the player does not
        # recognise there means someone else used the account.
        view = {
            "checked": True,
            "signed_in": me is not None,
            "display_name": me.display_name if me else "",
            "email": me.email if me else "",
            "role": me.role.value if me else "",
            "totp_enabled": me.totp_enabled if me else False,
            "previous_login": fmt_time(me.previous_login_at) if me else "",
            "previous_login_ip": (me.previous_login_ip or "") if me else "",
        }
        # Assign only what changed: Reflex sends every assigned var to the browser, and
        # this runs on every signed-in event (a bet answer carried all eight each time).
        for name, value in view.items():
            if getattr(self, name) != value:
                setattr(self, name, value)

    async def _current(self) -> CurrentUser | None:
        new_request_id()
        me = await asyncio.to_thread(accounts.current_user, self.token)
        self._show(me)
        if me is None and self.token:
            self.token = ""  # expired or revoked: forget it in every tab
        return me

    def _signed_in_with(self, token: str) -> None:
        self.token = token

    def _path(self) -> str:
        return self.router.url.path or routes.HOME

    @rx.event
    async def refresh(self):
        """on_load of public pages: show who is signed in, if anyone."""
        await self._current()

    @rx.event
    async def require_player(self):
        """on_load of pages for signed-in users."""
        if await self._current() is None:
            return rx.redirect(routes.login_then(self._path()))

    @rx.event
    async def require_staff(self):
        """on_load of staff pages: deny by default."""
        me = await self._current()
        if me is None:
            return rx.redirect(routes.login_then(self._path()))
        if not me.is_staff:
            return [rx.redirect(routes.ACCOUNT),
                    rx.toast.error("That page is for staff only.")]
        if get_settings().staff_require_2fa and not me.totp_enabled:
            return [rx.redirect(routes.SECURITY),
                    rx.toast.warning("Staff accounts need two-factor authentication: turn "
                                     "it on here to open the staff pages.")]

    @rx.event
    async def redirect_if_signed_in(self):
        """on_load of sign-in and register pages."""
        if await self._current() is not None:
            return rx.redirect(routes.ACCOUNT)

    @rx.event
    async def logout(self):
        new_request_id()
        await asyncio.to_thread(accounts.logout, self.token, self._context())
        self.token = ""
        self._show(None)
        return rx.redirect(routes.LOGIN)


async def session_of(state: rx.State) -> SessionState:
    return await state.get_state(SessionState)


async def caller(state: rx.State) -> tuple[SessionState, CurrentUser | None]:
    """The session state and the signed-in caller (re-checked on the server)."""
    sess = await session_of(state)
    return sess, await sess._current()


def form_value(form: Any, key: str) -> Any:
    """A value from a submitted form dict; anything else counts as missing."""
    if not isinstance(form, dict):
        return None
    return form.get(key)


def describe(exc: Exception) -> tuple[str, str]:
    """(field, message) for an error from a service; field '' for the whole form."""
    if isinstance(exc, ValidationFailed):
        return exc.field or "", str(exc)
    if isinstance(exc, RateLimited):
        return "", f"Too many attempts. Please wait {exc.retry_after} seconds and try again."
    if isinstance(exc, UserError):
        return "", str(exc)
    return "", "Something went wrong on our side. Please try again."
