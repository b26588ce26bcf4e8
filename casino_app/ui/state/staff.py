"""Staff pages: find a player, see their sessions and lock state, act on them, read the
audit log. Every handler goes through ``_staff_call``: the ``users.staff`` function it
calls checks the caller's session, role and 2FA on the server inside its transaction
(deny by default), a refusal becomes a redirect, and the service audits the action."""

from __future__ import annotations

import asyncio
import dataclasses
import functools

import reflex as rx

from casino_app.security.audit import format_time
from casino_app.ui import routes
from casino_app.ui.state.account import SessionRow
from casino_app.ui.state.notice import notify
from casino_app.ui.state.session import describe, fmt_time, form_value, request_context, session_of
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


@dataclasses.dataclass
class RoleRequestRow:
    id: int
    user_id: int
    player_link: str
    email: str
    current_role: str
    role: str
    reason: str
    requested_by: str
    requested_at: str
    by_me: bool           # the viewer asked: another admin must decide
    expired: bool         # too old to approve: only rejected


def _role_request_row(r: staff.RoleRequestView) -> RoleRequestRow:
    return RoleRequestRow(r.id, r.user_id, routes.staff_player(r.user_id), r.email,
                          r.current_role, r.role, r.reason, f"#{r.requested_by}",
                          fmt_time(r.requested_at), r.by_caller, r.expired)


def _row(p: staff.PlayerSummary) -> PlayerRow:
    return PlayerRow(p.user_id, p.player_id, p.email, p.display_name, p.role, p.locked,
                     fmt_time(p.created_at))


def _audit_rows(events: list) -> list[AuditRow]:
    return [AuditRow(e.id, format_time(e.at), e.action,
                     f"#{e.actor_user_id} ({e.actor_role})" if e.actor_user_id
                     else (e.actor_role or "anonymous"),
                     f"#{e.target_user_id}" if e.target_user_id else "", e.ip,
                     e.detail if e.detail != "{}" else "") for e in events]


async def staff_refusal(state: rx.State, exc: Exception, path: str,  # noqa: ANN202
                   quiet: bool = False):
    """The redirect for a caller refused outright (not signed in, no 2FA, not staff),
    with a notice saying why unless ``quiet``; None for a staff member refused for a
    reason to read (support opening a staff account, an admin approving their own
    request), which the page shows."""
    if isinstance(exc, Forbidden) and not isinstance(exc, StaffNeeds2FA) \
            and str(exc) != str(Forbidden()):
        return None
    if isinstance(exc, NotAuthenticated):
        return rx.redirect(routes.login_then(path))
    if isinstance(exc, StaffNeeds2FA):
        if not quiet:
            await notify(state, "warning", str(exc))
        return rx.redirect(routes.SECURITY)
    if isinstance(exc, Forbidden):
        if not quiet:
            await notify(state, "error", "That page is for staff only.")
        return rx.redirect(routes.ACCOUNT)
    return None


@dataclasses.dataclass
class _Outcome:
    """A staff service call: its result, or what to do instead (``redirect`` to return
    for a refused caller, or ``error`` to show)."""

    result: object = None
    redirect: object = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.redirect is None and not self.error


async def _staff_call(state: rx.State, path: str, fn, *args,  # noqa: ANN001
                      with_context: bool = True, quiet: bool = False) -> _Outcome:
    """Call one ``users.staff`` function with the caller's session token. The service
    checks the role (and staff 2FA) inside its transaction; a refusal becomes a redirect
    (``quiet``: without a notice, for a page's later on_load whose first one,
    ``SessionState.require_staff``, has already said why)."""
    sess = await session_of(state)
    extra = (request_context(sess),) if with_context else ()
    try:
        return _Outcome(await asyncio.to_thread(fn, sess.token, *args, *extra))
    except Exception as exc:  # noqa: BLE001 - refusals redirect, the rest is shown
        redirect = await staff_refusal(state, exc, path, quiet)
        return _Outcome(redirect=redirect, error="" if redirect is not None
                        else describe(exc)[1])


class StaffRoleRequestsState(rx.State):
    """Role requests waiting for a second admin, listed on the staff home (for admins;
    the service gives support none)."""

    rows: list[RoleRequestRow] = []

    @rx.event
    async def on_open(self):
        self.rows = []
        out = await _staff_call(self, routes.STAFF, staff.role_requests, with_context=False,
                                quiet=True)
        if not out.ok:
            return out.redirect
        self.rows = [_role_request_row(r) for r in out.result]
        return None


class StaffSearchState(rx.State):
    query: str = ""
    results: list[PlayerRow] = []
    searched: bool = False
    message: str = ""

    @rx.event
    async def search(self, form: dict):
        self.message = ""
        q = form_value(form, "query")
        out = await _staff_call(self, routes.STAFF, staff.find_players, q)
        if not out.ok:
            self.message = out.error
            return out.redirect
        self.query = q if isinstance(q, str) else ""
        self.results = [_row(p) for p in out.result]
        self.searched = True
        return None


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
    role_requests: list[RoleRequestRow] = []   # this account's, shown to admins
    message: str = ""
    notice: str = ""
    _user_id: int = 0

    def _path(self) -> str:
        return routes.staff_player(self._user_id or "")

    async def _load(self) -> object:
        out = await _staff_call(self, self._path(), staff.player_detail, self._user_id)
        if not out.ok:
            if out.error:
                self.loaded, self.player, self.message = True, None, out.error
            return out.redirect
        d = out.result
        self.player = _row(d.summary)
        self.lock_reason = d.lock_reason or ""
        self.locked_at = fmt_time(d.locked_at)
        self.totp_enabled = d.totp_enabled
        self.last_login = fmt_time(d.last_login_at) or "never"
        self.last_login_ip = d.last_login_ip or ""
        self.sessions = [SessionRow(v.id, v.device, v.ip or "unknown", fmt_time(v.created_at),
                                    fmt_time(v.last_seen_at), False) for v in d.sessions]
        self.audit = _audit_rows(d.audit)
        out = await _staff_call(self, self._path(), staff.role_requests, self._user_id,
                                with_context=False)  # admins see them, support none
        if not out.ok:
            self.message = out.error
            return out.redirect
        self.role_requests = [_role_request_row(r) for r in out.result]
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
        out = await _staff_call(self, self._path(), fn, self._user_id, *args)
        if not out.ok:
            self.message = out.error
            return out.redirect
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
        """Taking a role away is immediate; giving one records a request (the service
        decides which, and says so in its answer)."""
        self.message, self.notice = "", ""
        set_role = functools.partial(staff.set_role, reason=form_value(form, "reason"))
        out = await _staff_call(self, self._path(), set_role, self._user_id,
                                form_value(form, "role"))
        if not out.ok:
            self.message = out.error
            return out.redirect
        redirect = await self._load()
        self.notice = ("Role changed; their sessions were ended." if out.result is None else
                       f"Role request #{out.result.id} recorded: another admin must approve "
                       f"it before the account becomes {out.result.role}.")
        return redirect

    async def _decide(self, fn, *args, done: str):  # noqa: ANN001, ANN202
        self.message, self.notice = "", ""
        out = await _staff_call(self, self._path(), fn, *args)
        if not out.ok:
            self.message = out.error
            return out.redirect
        redirect = await self._load()
        self.notice = done
        return redirect

    @rx.event
    async def approve_role(self, request_id: int):
        return await self._decide(staff.approve_role_request, request_id,
                                  done="Role granted; their sessions were ended.")

    @rx.event
    async def reject_role(self, form: dict):
        return await self._decide(staff.reject_role_request, form_value(form, "request_id"),
                                  form_value(form, "reason"), done="Role request rejected.")


AUDIT_PAGE = 50


class StaffAuditState(rx.State):
    rows: list[AuditRow] = []
    more: bool = False
    verify_result: str = ""
    message: str = ""

    async def _page(self, before_id: int | None):  # noqa: ANN202
        out = await _staff_call(self, routes.STAFF_AUDIT, staff.audit_page, before_id,
                                AUDIT_PAGE, with_context=False)
        if not out.ok:
            if out.redirect is None:
                await notify(self, "error", out.error)
            return out.redirect
        rows = _audit_rows(out.result)
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
        out = await _staff_call(self, routes.STAFF_AUDIT, staff.verify_audit,
                                with_context=False)
        if not out.ok:
            if out.redirect is None:
                await notify(self, "error", out.error)
            return out.redirect
        result = out.result
        self.verify_result = (f"Intact: {result.rows} rows checked." if result.ok else
                              f"BROKEN at row {result.first_broken_id}: {result.reason}")
