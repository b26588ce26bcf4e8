"""Staff pages: find a player, see their sessions and lock state, act on them, read the
audit log. Every handler re-checks the caller's role on the server (the services do it
again inside their transaction), and every action is audited by the service."""

from __future__ import annotations

import asyncio
import dataclasses

import reflex as rx

from casino_app.security.audit import format_time
from casino_app.ui import routes
from casino_app.ui.state.account import SessionRow
from casino_app.ui.state.session import caller, describe, fmt_time, form_value
from casino_app.users import staff, validation
from casino_app.users.errors import Forbidden, NotAuthenticated, StaffNeeds2FA


@dataclasses.dataclass
class PlayerRow:
    user_id: int
    player_id: str
    email: str
    display_name: str
    role: str
    locked: bool
    created: str


@dataclasses.dataclass
class AuditRow:
    id: int
    at: str
    action: str
    actor: str
    target: str
    ip: str
    detail: str


def _row(p: staff.PlayerSummary) -> PlayerRow:
    return PlayerRow(p.user_id, p.player_id, p.email, p.display_name, p.role, p.locked,
                     fmt_time(p.created_at))


def _audit_rows(events: list) -> list[AuditRow]:
    return [AuditRow(e.id, format_time(e.at), e.action,
                     f"#{e.actor_user_id} ({e.actor_role})" if e.actor_user_id
                     else (e.actor_role or "anonymous"),
                     f"#{e.target_user_id}" if e.target_user_id else "", e.ip,
                     e.detail if e.detail != "{}" else "") for e in events]


def _refusal(exc: Exception, path: str):  # noqa: ANN202
    if isinstance(exc, NotAuthenticated):
        return rx.redirect(routes.login_then(path))
    if isinstance(exc, StaffNeeds2FA):
        return [rx.redirect(routes.SECURITY), rx.toast.warning(str(exc))]
    if isinstance(exc, Forbidden):
        return [rx.redirect(routes.ACCOUNT), rx.toast.error("That page is for staff only.")]
    return None


class StaffSearchState(rx.State):
    query: str = ""
    results: list[PlayerRow] = []
    searched: bool = False
    message: str = ""

    @rx.event
    async def search(self, form: dict):
        self.message = ""
        sess, me = await caller(self)
        if me is None or not me.is_staff:
            return _refusal(NotAuthenticated() if me is None else Forbidden(), routes.STAFF)
        q = form_value(form, "query")
        try:
            found = await asyncio.to_thread(staff.find_players, sess.token, q,
                                            sess._context())
        except Exception as exc:  # noqa: BLE001
            redirect = _refusal(exc, routes.STAFF)
            if redirect is not None:
                return redirect
            self.message = describe(exc)[1]
            return
        self.query = q if isinstance(q, str) else ""
        self.results = [_row(p) for p in found]
        self.searched = True


def user_id_from_query(raw: str) -> int:
    """The ``?id=`` of the staff player page: a plain account number, else 0."""
    if not raw or raw.startswith("#"):
        return 0
    return validation.account_number(raw) or 0


class StaffPlayerState(rx.State):
    loaded: bool = False
    player: PlayerRow | None = None
    lock_reason: str = ""
    locked_at: str = ""
    totp_enabled: bool = False
    last_login: str = ""
    last_login_ip: str = ""
    sessions: list[SessionRow] = []
    audit: list[AuditRow] = []
    message: str = ""
    notice: str = ""
    _user_id: int = 0

    def _path(self) -> str:
        return routes.staff_player(self._user_id or "")

    async def _load(self) -> object:
        sess, me = await caller(self)
        if me is None or not me.is_staff:
            return _refusal(NotAuthenticated() if me is None else Forbidden(), self._path())
        try:
            d = await asyncio.to_thread(staff.player_detail, sess.token, self._user_id,
                                        sess._context())
        except Exception as exc:  # noqa: BLE001
            redirect = _refusal(exc, self._path())
            if redirect is not None:
                return redirect
            self.loaded, self.player, self.message = True, None, describe(exc)[1]
            return None
        self.player = _row(d.summary)
        self.lock_reason = d.lock_reason or ""
        self.locked_at = fmt_time(d.locked_at)
        self.totp_enabled = d.totp_enabled
        self.last_login = fmt_time(d.last_login_at) or "never"
        self.last_login_ip = d.last_login_ip or ""
        self.sessions = [SessionRow(v.id, v.device, v.ip or "unknown", fmt_time(v.created_at),
                                    fmt_time(v.last_seen_at), False) for v in d.sessions]
        self.audit = _audit_rows(d.audit)
        self.loaded = True
        return None

    @rx.event
    async def on_open(self):
        self.loaded, self.player, self.message, self.notice = False, None, "", ""
        raw = self.router.url.query_parameters.get("id", "")
        self._user_id = user_id_from_query(raw)
        return await self._load()

    async def _act(self, fn, *args, done: str = ""):  # noqa: ANN001, ANN202
        self.message, self.notice = "", ""
        sess, me = await caller(self)
        if me is None or not me.is_staff:
            return _refusal(NotAuthenticated() if me is None else Forbidden(), self._path())
        try:
            await asyncio.to_thread(fn, sess.token, self._user_id, *args, sess._context())
        except Exception as exc:  # noqa: BLE001
            redirect = _refusal(exc, self._path())
            if redirect is not None:
                return redirect
            self.message = describe(exc)[1]
            return None
        redirect = await self._load()
        self.notice = done
        return redirect

    @rx.event
    async def lock(self, form: dict):
        return await self._act(staff.lock_player, form_value(form, "reason"),
                               done="Account locked and signed out everywhere.")

    @rx.event
    async def unlock(self, form: dict):
        return await self._act(staff.unlock_player, form_value(form, "reason"),
                               done="Account unlocked.")

    @rx.event
    async def revoke_all(self):
        return await self._act(staff.revoke_player_sessions, done="All sessions revoked.")

    @rx.event
    async def revoke(self, session_id: int):
        return await self._act(staff.revoke_player_session, session_id,
                               done="Session revoked.")

    @rx.event
    async def set_role(self, form: dict):
        return await self._act(staff.set_role, form_value(form, "role"),
                               done="Role changed; their sessions were ended.")


AUDIT_PAGE = 50


class StaffAuditState(rx.State):
    rows: list[AuditRow] = []
    more: bool = False
    verify_result: str = ""
    message: str = ""

    async def _page(self, before_id: int | None):  # noqa: ANN202
        sess, me = await caller(self)
        if me is None:
            return rx.redirect(routes.login_then(routes.STAFF_AUDIT))
        try:
            events = await asyncio.to_thread(staff.audit_page, sess.token, before_id,
                                             AUDIT_PAGE)
        except Exception as exc:  # noqa: BLE001
            return _refusal(exc, routes.STAFF_AUDIT) or rx.toast.error(describe(exc)[1])
        rows = _audit_rows(events)
        self.rows = rows if before_id is None else [*self.rows, *rows]
        self.more = len(rows) == AUDIT_PAGE and rows[-1].id > 1
        return None

    @rx.event
    async def on_open(self):
        self.verify_result, self.message, self.rows = "", "", []
        return await self._page(None)

    @rx.event
    async def load_older(self):
        return await self._page(self.rows[-1].id if self.rows else None)

    @rx.event
    async def verify(self):
        sess, me = await caller(self)
        if me is None or me.role.value != "admin":
            return _refusal(NotAuthenticated() if me is None else Forbidden(),
                            routes.STAFF_AUDIT)
        try:
            result = await asyncio.to_thread(staff.verify_audit, sess.token)
        except Exception as exc:  # noqa: BLE001
            return _refusal(exc, routes.STAFF_AUDIT) or rx.toast.error(describe(exc)[1])
        self.verify_result = (f"Intact: {result.rows} rows checked." if result.ok else
                              f"BROKEN at row {result.first_broken_id}: {result.reason}")
