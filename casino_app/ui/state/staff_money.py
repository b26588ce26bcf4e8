"""Staff money: a player's balances, bets and ledger lines (a section of the staff player
page), adjustment requests, and the approvals page.

Every handler calls one ``users.staff_money`` function with the caller's session token;
the service checks role and 2FA inside its transaction and audits. A caller who is not
signed in, lacks 2FA, or is not staff at all is redirected; refusals a staff member should
read (self-approval, support asking to approve, a debit larger than the balance) are
shown on the page.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import reflex as rx

from casino_app.core.clock import utcnow
from casino_app.payments.currencies import all_currencies
from casino_app.ui import routes
from casino_app.ui.state.bets import BetRow, bet_row, fmt_amount, fmt_when
from casino_app.ui.state.deposits import short_hash
from casino_app.ui.state.session import describe, form_value, request_context, session_of
from casino_app.ui.state.staff import staff_refusal, user_id_from_query
from casino_app.users import staff_money
from casino_app.users.errors import Forbidden, StaffNeeds2FA

NOT_STAFF = str(Forbidden())


@dataclasses.dataclass
class BalanceRow:
    currency: str
    balance: str
    reserved: str
    available: str


@dataclasses.dataclass
class EntryRow:
    entry_id: int
    at: str
    kind: str
    memo: str
    amount: str
    account: str


@dataclasses.dataclass
class AdjustmentRow:
    id: int
    user_id: int
    player_link: str
    amount: str
    reason: str
    requested_by: str
    requested_at: str
    state: str
    decided_by: str


@dataclasses.dataclass
class HoldRow:
    id: int
    reason: str
    detail: str
    created: str
    open: bool
    released: str        # "2026-01-02 10:00:00 by #7", "" while open


@dataclasses.dataclass
class ChainDepositRow:
    id: int
    at: str
    currency: str
    amount: str
    state: str
    block: str            # "" while unconfirmed (a Bitcoin deposit seen in the mempool)
    tx: str
    tx_short: str
    owed: str


def hold_row(h: Any) -> HoldRow:
    return HoldRow(h.id, h.reason, h.detail, fmt_when(h.created_at), h.released_at is None,
                   "" if h.released_at is None
                   else f"{fmt_when(h.released_at)} by #{h.released_by}")


@dataclasses.dataclass
class LockRow:
    id: int
    reason: str
    since: str
    until: str
    open: bool       # in force: an admin may lift it
    lifted: str      # "<when> by #<staff id>" once lifted


def lock_row(lock: Any, now: Any) -> LockRow:
    lifted = "" if lock.lifted_at is None else f"{fmt_when(lock.lifted_at)} by #{lock.lifted_by}"
    return LockRow(lock.id, lock.reason, fmt_when(lock.created_at) if lock.created_at else "",
                   fmt_when(lock.until), lock.lifted_at is None and lock.until > now, lifted)


def chain_deposit_row(d: Any) -> ChainDepositRow:
    return ChainDepositRow(d.id, fmt_when(d.created_at), d.currency,
                           fmt_amount(d.currency, d.amount), d.state,
                           "" if d.block_number is None else str(d.block_number),
                           d.tx_hash, short_hash(d.tx_hash),
                           fmt_amount(d.currency, d.owed) if d.owed else "")


def adjustment_row(a: staff_money.AdjustmentView) -> AdjustmentRow:
    return AdjustmentRow(a.id, a.user_id or 0,
                         routes.staff_player(a.user_id) if a.user_id else "",
                         a.amount_text, a.reason, f"#{a.requested_by}",
                         fmt_when(a.requested_at), a.state,
                         f"#{a.decided_by}" if a.decided_by else "")


def real_currencies() -> list[str]:
    return [c.code for c in all_currencies() if c.real_money]


@dataclasses.dataclass
class _Result:
    value: Any = None
    event: Any = None      # a redirect to return
    error: str = ""
    field: str = ""

    @property
    def ok(self) -> bool:
        return self.event is None and not self.error


async def money_call(state: rx.State, path: str, fn, *args: Any,  # noqa: ANN001
                     with_context: bool = True) -> _Result:
    sess = await session_of(state)
    extra = (request_context(sess),) if with_context else ()
    try:
        return _Result(await asyncio.to_thread(fn, sess.token, *args, *extra))
    except Exception as exc:  # noqa: BLE001 - refusals redirect or show, nothing raises
        if isinstance(exc, Forbidden) and not isinstance(exc, StaffNeeds2FA) \
                and str(exc) != NOT_STAFF:
            return _Result(error=str(exc))  # a staff member refused for a reason to read
        redirect = await staff_refusal(state, exc, path)
        if redirect is not None:
            return _Result(event=redirect)
        field, message = describe(exc)
        return _Result(error=message, field=field)


async def decide(state: rx.State, path: str, fn, *args: Any, done: str):  # noqa: ANN001, ANN201
    """A staff decision on a request through ``money_call`` (approve, reject), then the
    page read again (``state._load()``): a refusal in ``state.message``, else ``done``
    (formatted with the decided row's ``id`` and ``amount_text``) in ``state.notice``.
    Returns the event to send (a redirect), if any."""
    state.message, state.notice = "", ""
    out = await money_call(state, path, fn, *args)
    if not out.ok:
        state.message = out.error
        if out.event is not None:
            return out.event
        return await state._load()
    redirect = await state._load()
    state.notice = done.format(id=out.value.id, amount=out.value.amount_text)
    return redirect


class StaffMoneyState(rx.State):
    """The money section of the staff player page (``routes.STAFF_PLAYER``)."""

    loaded: bool = False
    balances: list[BalanceRow] = []
    bets: list[BetRow] = []
    entries: list[EntryRow] = []
    adjustments: list[AdjustmentRow] = []
    holds: list[HoldRow] = []
    deposits: list[ChainDepositRow] = []
    hold_message: str = ""
    hold_notice: str = ""
    locks: list[LockRow] = []       # withdrawal locks (security changes, risk holds)
    currencies: list[str] = real_currencies()
    errors: dict[str, str] = {}
    message: str = ""
    notice: str = ""
    form_key: int = 0
    _user_id: int = 0

    def _path(self) -> str:
        return routes.staff_player(self._user_id or "")

    async def _load(self) -> Any:
        out = await money_call(self, self._path(), staff_money.player_money, self._user_id)
        if not out.ok:
            self.loaded = bool(out.error)
            self.message = out.error
            return out.event
        m = out.value
        self.balances = [BalanceRow(code, fmt_amount(code, b.balance),
                                    fmt_amount(code, b.reserved),
                                    fmt_amount(code, b.available))
                         for code, b in sorted(m.balances.items())]
        self.bets = [bet_row(b) for b in m.bets]
        self.entries = [EntryRow(e.entry_id, e.at, e.kind, e.memo,
                                 fmt_amount(e.currency, e.amount, signed=True) + " "
                                 + e.currency, e.balance_kind) for e in m.entries]
        self.adjustments = [adjustment_row(a) for a in m.adjustments]
        self.holds = [hold_row(h) for h in m.holds]
        self.locks = [lock_row(lk, utcnow()) for lk in m.withdrawal_locks]
        self.deposits = [chain_deposit_row(d) for d in m.deposits]
        self.loaded = True
        return None

    @rx.event
    async def on_open(self):
        self.loaded, self.errors, self.message, self.notice = False, {}, "", ""
        self.balances, self.bets, self.entries, self.adjustments = [], [], [], []
        self.holds, self.deposits, self.hold_message, self.hold_notice = [], [], "", ""
        self.locks = []
        raw = self.router.url.query_parameters.get("id", "")
        self._user_id = user_id_from_query(raw)
        return await self._load()

    @rx.event
    async def request(self, form: dict):
        self.errors, self.message, self.notice = {}, "", ""
        out = await money_call(self, self._path(), staff_money.request_adjustment,
                               self._user_id, form_value(form, "currency"),
                               form_value(form, "amount"), form_value(form, "reason"))
        if not out.ok:
            if out.field in ("currency", "amount", "reason"):
                self.errors = {out.field: out.error}
            else:
                self.message = out.error
            return out.event
        redirect = await self._load()
        self.notice = (f"Adjustment #{out.value.id} of {out.value.amount_text} requested. "
                       "Another staff member (an admin) must approve it.")
        self.form_key += 1
        return redirect


    @rx.event
    async def release_hold(self, form: dict):
        """Admins: lift an open hold, with a note (the service re-checks the role)."""
        self.hold_message, self.hold_notice = "", ""
        out = await money_call(self, self._path(), staff_money.release_hold, self._user_id,
                               form_value(form, "hold_id"), form_value(form, "note"))
        if not out.ok:
            self.hold_message = out.error
            return out.event
        redirect = await self._load()
        self.hold_notice = (f"Hold #{out.value.id} released: the player can bet and "
                            "withdraw again.")
        return redirect


    @rx.event
    async def lift_lock(self, form: dict):
        """Admins: lift a withdrawal lock in force, with a note (the service re-checks the
        role)."""
        self.hold_message, self.hold_notice = "", ""
        out = await money_call(self, self._path(), staff_money.lift_withdrawal_lock,
                               self._user_id, form_value(form, "lock_id"),
                               form_value(form, "note"))
        if not out.ok:
            self.hold_message = out.error
            return out.event
        redirect = await self._load()
        self.hold_notice = f"Withdrawal lock #{out.value.id} lifted: the player can withdraw."
        return redirect


class StaffAdjustmentsState(rx.State):
    """The approvals page (``routes.STAFF_ADJUSTMENTS``)."""

    rows: list[AdjustmentRow] = []
    loaded: bool = False
    message: str = ""
    notice: str = ""

    async def _load(self) -> Any:
        out = await money_call(self, routes.STAFF_ADJUSTMENTS,
                               staff_money.pending_adjustments, with_context=False)
        if not out.ok:
            self.message = out.error
            return out.event
        self.rows = [adjustment_row(a) for a in out.value]
        self.loaded = True
        return None

    @rx.event
    async def on_open(self):
        self.message, self.notice, self.loaded = "", "", False
        return await self._load()

    async def _decide(self, fn, request_id: object, *args: Any, done: str):  # noqa: ANN001, ANN202
        rid = request_id
        if isinstance(rid, str) and rid.isascii() and rid.isdigit() and len(rid) <= 10:
            rid = int(rid)
        return await decide(self, routes.STAFF_ADJUSTMENTS, fn, rid, *args, done=done)

    @rx.event
    async def approve(self, request_id: int):
        return await self._decide(staff_money.approve_adjustment, request_id,
                                  done="Approved #{id}: {amount} posted to the player.")

    @rx.event
    async def reject(self, form: dict):
        return await self._decide(staff_money.reject_adjustment,
                                  form_value(form, "request_id"), form_value(form, "reason"),
                                  done="Rejected #{id} ({amount}).")
