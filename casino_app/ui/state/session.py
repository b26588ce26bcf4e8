"""The browser's session and the per-tab view of who is signed in.

The session token lives in an HttpOnly cookie (``security/session_cookie.py``): page
scripts can neither read it nor send it elsewhere. Reflex runs handlers over its
websocket and hands them the ``Cookie`` header of the socket's handshake
(``self.router.headers.cookie``, kept on the server: Reflex 0.10 leaves it out of what it
sends to the page), so a handler reads the token from there.

A socket's handshake headers stay what they were when it connected, so a tab that signs
in, or rotates its token (2FA or password change), keeps the new token for *its own
socket* in backend-only vars (``_bound_sid``, ``_bound_token``: bound to the socket's
id, which the server assigns and no other connection can take). Meanwhile the page turns
the token into the cookie (``cookie_op``, done by ``ui/components/bridge.py`` through
``/api/session/adopt``), and the browser's other tabs reload to pick it up. After a
reconnect, the new socket's handshake carries the cookie.

Every field here is a view, refreshed from the database on each page load and after each
action. Handlers elsewhere get the caller with ``await caller(self)``, which re-checks
the token on the server every time: nothing in a tab's state is trusted.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import reflex as rx

from casino_app.core.logging import new_request_id
from casino_app.core.settings import get_settings
from casino_app.security.ratelimit import RateLimited
from casino_app.security.session_cookie import (
    DEVELOPMENT_BIND,
    cookie_names,
    cookie_value,
    seal_handoff,
)
from casino_app.ui import routes
from casino_app.ui.state.notice import notify
from casino_app.users import accounts
from casino_app.users.errors import UserError, ValidationFailed
from casino_app.users.sessions import CurrentUser, RequestContext

NO_COOKIES = ("Your browser did not send this site's cookie, so it cannot keep you signed "
              "in. Allow cookies for this site and reload the page.")


def fmt_time(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else ""


class SessionState(rx.State):
    # The token for this tab's current socket when it differs from the socket's cookie
    # (signed in, rotated or signed out since the socket connected); see the module doc.
    _bound_sid: str = ""
    _bound_token: str | None = None
    # The next cookie change for the page to make: {"id", "kind": "adopt"|"clear", "code"}.
    cookie_op: dict[str, str] = {}

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

    @property
    def token(self) -> str:
        """The caller's session token: bound to this socket, else its cookie."""
        if self._bound_token is not None and self._bound_sid == self._sid():
            return self._bound_token
        return cookie_value(self.router.headers.cookie, cookie_names().session)

    @token.setter
    def token(self, value: str) -> None:
        """Use ``value`` for this socket from now on ("" = signed out)."""
        self._bound_sid, self._bound_token = self._sid(), value or ""

    def _sid(self) -> str:
        return self.router.session.session_id or ""

    def _bind_cookie(self) -> str:
        return cookie_value(self.router.headers.cookie, cookie_names().bind)

    def _handoff_bind(self) -> str | None:
        """What a handoff code from this socket is bound to: the bind cookie of its
        handshake. Without one (cookies blocked), none in production; in development
        the pages may come from Vite's server, which sets no cookie, so the code is then
        made without a binding."""
        if bind := self._bind_cookie():
            return bind
        return None if get_settings().is_production else DEVELOPMENT_BIND

    @rx.event
    async def refresh(self):
        """on_load of public pages: show who is signed in, if anyone."""
        await current_user_of(self)

    @rx.event
    async def require_player(self):
        """on_load of pages for signed-in users."""
        if await current_user_of(self) is None:
            return rx.redirect(routes.login_then(page_path(self)))

    @rx.event
    async def require_staff(self):
        """on_load of staff pages: deny by default."""
        me = await current_user_of(self)
        if me is None:
            return rx.redirect(routes.login_then(page_path(self)))
        if not me.is_staff:
            await notify(self, "error", "That page is for staff only.")
            return rx.redirect(routes.ACCOUNT)
        if get_settings().staff_require_2fa and not me.totp_enabled:
            await notify(self, "warning", "Staff accounts need two-factor authentication: "
                         "turn it on here to open the staff pages.")
            return rx.redirect(routes.SECURITY)

    @rx.event
    async def redirect_if_signed_in(self):
        """on_load of sign-in and register pages."""
        if await current_user_of(self) is not None:
            return rx.redirect(routes.ACCOUNT)

    @rx.event
    async def logout(self):
        new_request_id()
        await asyncio.to_thread(accounts.logout, self.token, request_context(self))
        forget_session(self)
        show_user(self, None)
        return rx.redirect(routes.LOGIN)


def request_context(sess: SessionState) -> RequestContext:
    return RequestContext(ip=sess.router.session.client_ip or "",
                          user_agent=sess.router.headers.user_agent or "")


def show_user(sess: SessionState, me: CurrentUser | None) -> None:
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
        if getattr(sess, name) != value:
            setattr(sess, name, value)


async def current_user_of(sess: SessionState) -> CurrentUser | None:
    new_request_id()
    me = await accounts.current_user_async(sess.token)
    show_user(sess, me)
    if me is None and sess.token:
        # Expired or revoked: this socket stops asking. The cookie stays: another tab
        # may have put a newer token there that this socket's handshake predates.
        sess.token = ""
    return me


def can_keep_session(sess: SessionState) -> bool:
    """Whether a session opened now can reach this browser's cookie."""
    return sess._handoff_bind() is not None


def signed_in_with(sess: SessionState, token: str) -> None:
    """Use ``token`` in this tab now, and have the page put it in the cookie."""
    sess.token = token
    bind = sess._handoff_bind()
    if bind is not None:
        sess.cookie_op = {"id": secrets.token_hex(8), "kind": "adopt",
                          "code": seal_handoff(token, bind)}


def forget_session(sess: SessionState) -> None:
    """Signed out in this tab; have the page remove the cookie."""
    sess.token = ""
    sess.cookie_op = {"id": secrets.token_hex(8), "kind": "clear", "code": ""}


def page_path(sess: SessionState) -> str:
    return sess.router.url.path or routes.HOME


async def session_of(state: rx.State) -> SessionState:
    return await state.get_state(SessionState)


async def caller(state: rx.State) -> tuple[SessionState, CurrentUser | None]:
    """The session state and the signed-in caller (re-checked on the server)."""
    sess = await session_of(state)
    return sess, await current_user_of(sess)


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
