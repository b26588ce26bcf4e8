"""Staff custody pages: reconciliation runs (``routes.STAFF_RECONCILE``) and the hot and
cold wallets (``routes.STAFF_WALLETS``), Ethereum's and, with a Bitcoin node, Bitcoin's
beside them.

Every handler calls one ``users.staff_custody`` function with the caller's session token
(``money_call``: the service checks role and 2FA on the server; a caller who is not
staff is redirected, a staff member refused for a reason, e.g. support asking for a run,
reads it on the page).
"""

from __future__ import annotations

import dataclasses
import functools
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


def _chain_arg(chain: Any) -> str:
    """A chain named by the page (the service refuses anything else)."""
    return chain if isinstance(chain, str) and chain in staff_custody.CHAINS else ""


class StaffReconcileState(rx.State):
    runs: list[RunRow] = []          # Ethereum's
    more: bool = False
    btc_on: bool = False             # a Bitcoin node is configured: its section is shown
    btc_runs: list[RunRow] = []
    btc_more: bool = False
    loaded: bool = False
    selected: int = 0
    issues: list[IssueRow] = []
    running: bool = False
    running_chain: str = ""
    message: str = ""
    notice: str = ""

    async def _page(self, before_id: int | None, chain: str = "ethereum") -> Any:
        out = await money_call(self, routes.STAFF_RECONCILE, staff_custody.reconcile_runs,
                               before_id, RUNS_PAGE, chain, with_context=False)
        if not out.ok:
            self.message = out.error
            return out.event
        rows = [run_row(r) for r in out.value]
        more = len(rows) == RUNS_PAGE and rows[-1].id > 1
        if chain == "bitcoin":
            self.btc_runs = rows if before_id is None else [*self.btc_runs, *rows]
            self.btc_more = more
        else:
            self.runs = rows if before_id is None else [*self.runs, *rows]
            self.more = more
        self.loaded = True
        return None

    async def _open(self) -> Any:
        out = await money_call(self, routes.STAFF_RECONCILE, staff_custody.configured_chains,
                               with_context=False)
        if not out.ok:
            self.message = out.error
            return out.event
        self.btc_on = "bitcoin" in out.value
        event = await self._page(None)
        if event is None and self.btc_on:
            event = await self._page(None, "bitcoin")
        return event

    @rx.event
    async def on_open(self):
        self.runs, self.btc_runs, self.issues, self.selected = [], [], [], 0
        self.loaded, self.message, self.notice, self.running = False, "", "", False
        return await self._open()

    @rx.event
    async def load_older(self, chain: str = "ethereum"):
        self.message = ""
        name = _chain_arg(chain)
        shown = self.btc_runs if name == "bitcoin" else self.runs
        return await self._page(shown[-1].id if shown else None, name)

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
    async def reconcile_now(self, chain: str = "ethereum"):
        """Admins: one run of ``chain`` now (it reads the chain's state: seconds, in a
        thread)."""
        if self.running:
            return
        name = _chain_arg(chain)
        self.message, self.notice, self.running, self.running_chain = "", "", True, name
        yield
        try:
            out = await money_call(self, routes.STAFF_RECONCILE, functools.partial(
                staff_custody.reconcile_now, chain=name))
        finally:
            self.running, self.running_chain = False, ""
        if not out.ok:
            self.message = out.error
            yield out.event
            return
        res = out.value
        self.notice = (f"{name.capitalize()} run #{res.run_id} at block {res.block}: "
                       f"{run_status(res.clean, len(res.issues))}.")
        yield await self._page(None, name)


def _latest_text(r: custody.RunView | None) -> str:
    return ("" if r is None else f"Run #{r.id} at block {r.block}, {fmt_when(r.finished_at)}: "
            f"{run_status(r.clean, r.issues)}")


class StaffWalletsState(rx.State):
    loaded: bool = False
    hot_address: str = ""            # Ethereum's
    safe_address: str = ""
    node: str = ""
    node_error: str = ""
    config_errors: list[str] = []
    wallets: list[WalletRow] = []
    latest: str = ""           # "Run #4 at block 120, 2026-01-02 10:00: clean"
    latest_clean: bool = True
    btc_on: bool = False             # Bitcoin's section, with a Bitcoin node
    btc_network: str = ""
    btc_hot_address: str = ""
    btc_cold: str = ""               # the cold multisig's descriptor
    btc_node: str = ""
    btc_node_error: str = ""
    btc_at_block: int = 0
    btc_config_errors: list[str] = []
    btc_wallets: list[WalletRow] = []
    btc_latest: str = ""
    btc_latest_clean: bool = True
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
        out = await money_call(self, routes.STAFF_WALLETS, staff_custody.configured_chains,
                               with_context=False)
        if not out.ok:
            self.message = out.error
            return out.event
        btc = "bitcoin" in out.value
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
        self.latest, self.latest_clean = _latest_text(o.latest), o.latest is None or \
            o.latest.clean
        if btc:
            out = await money_call(self, routes.STAFF_WALLETS, staff_custody.wallets,
                                   "bitcoin", with_context=False)
            if not out.ok:
                self.message = out.error
                return out.event
            b = out.value
            self.btc_network, self.btc_hot_address, self.btc_cold = \
                b.network, b.hot_address, b.safe_address
            self.btc_node, self.btc_node_error = b.node, b.node_error
            self.btc_at_block = b.at_block or 0
            self.btc_config_errors = list(b.config_errors)
            self.btc_wallets = [wallet_row(w) for w in b.wallets]
            self.btc_latest = _latest_text(b.latest)
            self.btc_latest_clean = b.latest is None or b.latest.clean
        self.btc_on = btc
        self.loaded = True
        return None
