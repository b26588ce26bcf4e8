"""Staff custody pages: reconciliation runs (``routes.STAFF_RECONCILE``) and the hot and
cold wallets (``routes.STAFF_WALLETS``).

Every handler calls one ``users.staff_custody`` function with the caller's session token
(``money_call``: the service checks role and 2FA on the server; a caller who is not
staff is redirected, a staff member refused for a reason, e.g. support asking for a run,
reads it on the page).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import reflex as rx

from casino_app.payments import custody
from casino_app.ui import routes
from casino_app.ui.state.bets import fmt_when
from casino_app.ui.state.staff_money import money_call
from casino_app.users import staff_custody

RUNS_PAGE = 20


@dataclasses.dataclass
class TotalRow:
    currency: str
    onchain: str
    expected: str
    difference: str
    matches: bool


@dataclasses.dataclass
class RunRow:
    id: int
    block: int
    block_hash: str
    at: str
    clean: bool
    issues: int
    status: str
    totals: list[TotalRow]


@dataclasses.dataclass
class IssueRow:
    id: int
    currency: str
    kind: str
    detail: str
    expected: str
    actual: str


@dataclasses.dataclass
class WalletRow:
    currency: str
    token: str
    hot_balance: str
    safe_balance: str
    custody: str
    band: str
    band_status: str
    advice: str


def run_status(clean: bool, issues: int) -> str:
    return "clean" if clean else f"{issues} issue{'' if issues == 1 else 's'}"


def run_row(r: custody.RunView) -> RunRow:
    return RunRow(r.id, r.block, r.block_hash, fmt_when(r.finished_at), r.clean, r.issues,
                  run_status(r.clean, r.issues),
                  [TotalRow(t.currency, t.onchain, t.expected, t.difference, t.matches)
                   for t in r.totals])


def issue_row(i: custody.IssueView) -> IssueRow:
    return IssueRow(i.id, i.currency, i.kind, i.detail, i.expected, i.actual)


def wallet_row(w: custody.WalletView) -> WalletRow:
    return WalletRow(w.currency, w.token or "", w.hot_balance, w.safe_balance, w.custody,
                     w.band, w.band_status, w.advice)


class StaffReconcileState(rx.State):
    runs: list[RunRow] = []
    more: bool = False
    loaded: bool = False
    selected: int = 0
    issues: list[IssueRow] = []
    running: bool = False
    message: str = ""
    notice: str = ""

    async def _page(self, before_id: int | None) -> Any:
        out = await money_call(self, routes.STAFF_RECONCILE, staff_custody.reconcile_runs,
                               before_id, RUNS_PAGE, with_context=False)
        if not out.ok:
            self.message = out.error
            return out.event
        rows = [run_row(r) for r in out.value]
        self.runs = rows if before_id is None else [*self.runs, *rows]
        self.more = len(rows) == RUNS_PAGE and rows[-1].id > 1
        self.loaded = True
        return None

    @rx.event
    async def on_open(self):
        self.runs, self.issues, self.selected, self.loaded = [], [], 0, False
        self.message, self.notice, self.running = "", "", False
        return await self._page(None)

    @rx.event
    async def load_older(self):
        self.message = ""
        return await self._page(self.runs[-1].id if self.runs else None)

    @rx.event
    async def show_issues(self, run_id: int):
        self.message = ""
        out = await money_call(self, routes.STAFF_RECONCILE, staff_custody.reconcile_issues,
                               run_id, with_context=False)
        if not out.ok:
            self.message = out.error
            return out.event
        run, issues = out.value
        self.selected, self.issues = run.id, [issue_row(i) for i in issues]
        return None

    @rx.event
    async def hide_issues(self):
        self.selected, self.issues = 0, []

    @rx.event
    async def reconcile_now(self):
        """Admins: one run now (it reads the whole chain state: seconds, in a thread)."""
        if self.running:
            return
        self.message, self.notice, self.running = "", "", True
        yield
        try:
            out = await money_call(self, routes.STAFF_RECONCILE, staff_custody.reconcile_now)
        finally:
            self.running = False
        if not out.ok:
            self.message = out.error
            yield out.event
            return
        res = out.value
        self.notice = (f"Run #{res.run_id} at block {res.block}: "
                       f"{run_status(res.clean, len(res.issues))}.")
        yield await self._page(None)


class StaffWalletsState(rx.State):
    loaded: bool = False
    hot_address: str = ""
    safe_address: str = ""
    node: str = ""
    node_error: str = ""
    config_errors: list[str] = []
    wallets: list[WalletRow] = []
    latest: str = ""           # "Run #4 at block 120, 2026-01-02 10:00: clean"
    latest_clean: bool = True
    message: str = ""

    @rx.event
    async def on_open(self):
        self.loaded, self.message = False, ""
        return await self._load()

    @rx.event
    async def refresh(self):
        self.message = ""
        return await self._load()

    async def _load(self) -> Any:
        out = await money_call(self, routes.STAFF_WALLETS, staff_custody.wallets,
                               with_context=False)
        if not out.ok:
            self.message = out.error
            return out.event
        o = out.value
        self.hot_address, self.safe_address = o.hot_address, o.safe_address
        self.node, self.node_error = o.node, o.node_error
        self.config_errors = list(o.config_errors)
        self.wallets = [wallet_row(w) for w in o.wallets]
        r = o.latest
        self.latest = ("" if r is None else
                       f"Run #{r.id} at block {r.block}, {fmt_when(r.finished_at)}: "
                       f"{run_status(r.clean, r.issues)}")
        self.latest_clean = r is None or r.clean
        self.loaded = True
        return None
