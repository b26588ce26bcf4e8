"""The signed-in player's own security: 2FA, recovery codes, password, sessions.

Every handler re-resolves the caller from the session token on the server and refuses
(redirect to sign-in, nothing changed) when there is none.
"""

from __future__ import annotations

import asyncio
import dataclasses
from urllib.parse import quote

import reflex as rx

from casino_app.ui import routes
from casino_app.ui.state.notice import notify
from casino_app.ui.state.session import (
    caller,
    current_user_of,
    describe,
    fmt_time,
    forget_session,
    form_value,
    request_context,
    show_user,
    signed_in_with,
)
from casino_app.users import accounts
from casino_app.users.errors import NotAuthenticated


@dataclasses.dataclass
class SessionRow:
    id: int
    device: str
    ip: str
    created: str
    last_seen: str
    current: bool


def _to_login(path: str):  # noqa: ANN202
    return rx.redirect(routes.login_then(path))


class SecurityState(rx.State):
    # 2FA enrolment: "idle" -> "scan" (QR shown) -> "codes" (recovery codes shown once)
    stage: str = "idle"
    qr: str = ""
    manual_secret: str = ""
    recovery_codes: list[str] = []
    codes_left: int = 0
    errors: dict[str, str] = {}
    message: str = ""
    notice: str = ""

    @rx.var
    def recovery_text(self) -> str:
        """The recovery codes as copied and downloaded: one a line, with what they are."""
        if not self.recovery_codes:
            return ""
        return ("HashHouse recovery codes: each signs you in once if you lose your "
                "authenticator.\n" + "\n".join(self.recovery_codes) + "\n")

    @rx.var
    def recovery_file(self) -> str:
        """``recovery_text`` as a data: URL for the download button (no server file)."""
        return "data:text/plain;charset=utf-8," + quote(self.recovery_text)

    def _fail(self, exc: Exception) -> None:
        field, msg = describe(exc)
        if field:
            self.errors = {field: msg}
        else:
            self.message = msg

    def _clear(self) -> None:
        self.errors, self.message, self.notice = {}, "", ""

    @rx.event
    async def on_open(self):
        self._clear()
        self.stage, self.qr, self.manual_secret, self.recovery_codes = "idle", "", "", []
        sess, me = await caller(self)
        if me is None:
            return _to_login(routes.SECURITY)
        if me.totp_enabled:
            self.codes_left = await asyncio.to_thread(accounts.recovery_codes_left, sess.token)

    async def _call(self, fn, *args):  # noqa: ANN001, ANN202
        """Run one service call for the signed-in caller: (session state, result), or
        (None, an event to return) when there is no caller or the call was refused."""
        self._clear()
        sess, me = await caller(self)
        if me is None:
            return None, _to_login(routes.SECURITY)
        try:
            result = await asyncio.to_thread(fn, sess.token, *args, request_context(sess))
        except Exception as exc:  # noqa: BLE001 - shown on the form
            self._fail(exc)
            return None, None
        return sess, result

    async def _rotated(self, sess, new_token: str) -> None:  # noqa: ANN001
        signed_in_with(sess, new_token)
        await current_user_of(sess)

    @rx.event
    async def start_totp(self, form: dict):
        sess, enrol = await self._call(accounts.start_totp,
                                       form_value(form, "current_password"),
                                       form_value(form, "current_code"))
        if sess is None:
            return enrol
        self.qr, self.manual_secret, self.stage = enrol.qr_svg_data_uri, enrol.secret, "scan"

    @rx.event
    async def confirm_totp(self, form: dict):
        sess, out = await self._call(accounts.confirm_totp, form_value(form, "code"))
        if sess is None:
            return out
        codes, new_token = out
        await self._rotated(sess, new_token)
        self.qr, self.manual_secret = "", ""
        self.recovery_codes, self.codes_left, self.stage = codes, len(codes), "codes"
        await notify(self, "success", "Two-factor authentication is on. Your other devices "
                     "were signed out.")

    @rx.event
    def cancel(self):
        self._clear()
        self.stage, self.qr, self.manual_secret, self.recovery_codes = "idle", "", "", []

    @rx.event
    async def disable_totp(self, form: dict):
        sess, new_token = await self._call(accounts.disable_totp,
                                           form_value(form, "current_password"),
                                           form_value(form, "current_code"))
        if sess is None:
            return new_token
        await self._rotated(sess, new_token)
        self.codes_left = 0
        self.notice = "Two-factor authentication is off. Your other devices were signed out."

    @rx.event
    async def regenerate_codes(self, form: dict):
        sess, out = await self._call(accounts.regenerate_recovery_codes,
                                     form_value(form, "current_password"),
                                     form_value(form, "current_code"))
        if sess is None:
            return out
        codes, new_token = out
        await self._rotated(sess, new_token)
        self.recovery_codes, self.codes_left, self.stage = codes, len(codes), "codes"
        await notify(self, "success", "New recovery codes. Your other devices were signed out.")

    @rx.event
    async def change_password(self, form: dict):
        new = form_value(form, "new_password")
        if new != form_value(form, "new_password_confirm"):
            self._clear()
            self.errors = {"new_password_confirm": "The two passwords are not the same."}
            return None
        sess, new_token = await self._call(accounts.change_password,
                                           form_value(form, "current_password"), new)
        if sess is None:
            return new_token
        await self._rotated(sess, new_token)
        self.notice = "Password changed. Your other devices were signed out."


class SessionsState(rx.State):
    rows: list[SessionRow] = []
    message: str = ""

    async def _load(self, token: str) -> None:
        views = await asyncio.to_thread(accounts.my_sessions, token)
        self.rows = [SessionRow(id=v.id, device=v.device, ip=v.ip or "unknown",
                                created=fmt_time(v.created_at),
                                last_seen=fmt_time(v.last_seen_at), current=v.current)
                     for v in views]

    @rx.event
    async def on_open(self):
        self.message = ""
        sess, me = await caller(self)
        if me is None:
            return _to_login(routes.SESSIONS)
        await self._load(sess.token)

    @rx.event
    async def revoke(self, session_id: int):
        self.message = ""
        sess, me = await caller(self)
        if me is None:
            return _to_login(routes.SESSIONS)
        try:
            await asyncio.to_thread(accounts.revoke_my_session, sess.token, session_id,
                                    request_context(sess))
        except Exception as exc:  # noqa: BLE001
            self.message = describe(exc)[1]
            return
        if session_id == me.session_id:
            forget_session(sess)
            show_user(sess, None)
            return rx.redirect(routes.LOGIN)
        await self._load(sess.token)

    @rx.event
    async def revoke_others(self):
        self.message = ""
        sess, me = await caller(self)
        if me is None:
            return _to_login(routes.SESSIONS)
        try:
            n = await asyncio.to_thread(accounts.revoke_my_other_sessions, sess.token,
                                        request_context(sess))
        except NotAuthenticated:  # ended meanwhile (elsewhere, or by staff)
            return _to_login(routes.SESSIONS)
        await self._load(sess.token)
        await notify(self, "success", f"Signed out {n} other session{'s' if n != 1 else ''}.")
