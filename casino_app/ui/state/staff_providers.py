"""The staff game-provider page (``routes.STAFF_PROVIDERS``): providers (admins disable
or enable one), declared against measured RTP per game, the providers' alerts, and the
recall of any provider round by our number or the provider's round id.

Every handler calls one ``users.staff_providers`` function with the caller's session
token (``money_call``: the service checks role and 2FA on the server and audits what it
must; a caller who is not staff is redirected, a staff member refused for a reason, e.g.
support disabling a provider, reads it on the page).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import reflex as rx

from casino_app.games.providers import recall
from casino_app.ui import routes
from casino_app.ui.state.bets import fmt_when
from casino_app.ui.state.session import form_value
from casino_app.ui.state.staff_money import money_call
from casino_app.users import staff_providers


@dataclasses.dataclass
class ProviderRow:
    name: str
    dialect: str
    enabled: bool
    currencies: str
    base_url: str
    wallet_url: str
    disabled_at: str


@dataclasses.dataclass
class GameRtpRow:
    provider: str
    game_code: str
    name: str
    declared: str        # "96.00%"
    measured: str        # "95.12%" or "—"
    interval: str        # "93.80% – 96.44%" or "—"
    rounds: int
    turnover: str        # base units summed over currencies as counted
    drift: bool


@dataclasses.dataclass
class AlertRow:
    id: int
    provider: str
    kind: str
    severity: str
    subject: str
    detail: str
    count: int
    first_at: str
    last_at: str
    round_like: bool     # its subject is a round id: a button looks it up


@dataclasses.dataclass
class MatchRow:
    id: int
    provider: str
    round_ref: str
    game: str
    state: str
    opened: str


@dataclasses.dataclass
class RoundView:
    id: int
    provider: str
    dialect: str
    round_ref: str
    player_id: str
    player_link: str     # the staff player page, "" when no account has the player id
    game: str
    currency: str
    staked: str
    paid: str
    net: str
    state: str
    opened: str
    closed: str
    fair_scheme: str
    seed_hash: str
    seed: str
    fair_state: str
    fair_detail: str
    fair_summary: str
    recall_url: str
    recall_note: str
    receipts_note: str


@dataclasses.dataclass
class TxRow:
    id: int
    kind: str
    tx_ref: str
    reference: str
    amount: str
    rolled_back: bool
    receipt: str         # "#12" or ""
    at: str


@dataclasses.dataclass
class ReceiptRow:
    id: int
    path: str
    status: str
    ok: bool
    at: str
    linked: bool
    same_player: bool
    body: str
    signature: str
    answer: str
    answer_signature: str


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.2f}%"


def game_row(g: Any) -> GameRtpRow:
    interval = "—" if g.low is None else f"{pct(g.low)} – {pct(g.high)}"
    return GameRtpRow(g.provider, g.game_code, g.name, f"{g.declared_e4 / 10_000:.2f}%",
                      pct(g.measured), interval, g.rounds, f"{g.turnover:,}", g.drift)


def alert_row(a: Any) -> AlertRow:
    return AlertRow(a.id, a.provider, a.kind, a.severity, a.subject, a.detail, a.count,
                    fmt_when(a.first_at), fmt_when(a.last_at),
                    a.kind in ("fair_mismatch", "win_without_round"))


def provider_row(p: recall.ProviderView) -> ProviderRow:
    return ProviderRow(p.name, p.dialect, p.enabled, ", ".join(p.currencies), p.base_url,
                       p.wallet_url, fmt_when(p.disabled_at))


def match_row(r: recall.RoundSummary) -> MatchRow:
    return MatchRow(r.id, r.provider, r.round_ref, r.game_name, r.state,
                    fmt_when(r.opened_at))


def round_view(d: recall.RoundDetail, user_id: int | None) -> RoundView:
    r, f = d.round, d.fair
    return RoundView(
        r.id, r.provider, r.dialect, r.round_ref, r.player_id,
        routes.staff_player(user_id) if user_id else "", f"{r.game_name} ({r.game_code})",
        r.currency, r.staked_text, r.paid_text, r.net_text, r.state, fmt_when(r.opened_at),
        fmt_when(r.closed_at), f.scheme, f.seed_hash, f.seed, f.state, f.detail, f.summary,
        d.recall_url, d.recall_note, d.receipts_note)


def tx_row(t: recall.TxView) -> TxRow:
    return TxRow(t.id, t.kind, t.tx_ref, t.reference_ref, t.amount_text, t.rolled_back,
                 f"#{t.receipt_id}" if t.receipt_id else "", fmt_when(t.at))


def receipt_row(x: recall.ReceiptView) -> ReceiptRow:
    return ReceiptRow(x.id, x.path, x.status, x.status == "OK", fmt_when(x.at), x.linked,
                      x.same_player, x.body, x.signature, x.answer, x.answer_signature)


def _enabled_arg(value: Any) -> bool | None:
    """The form's wish: "enable" or "disable" (anything else: None, refused)."""
    return {"enable": True, "disable": False}.get(value) if isinstance(value, str) else None


class StaffProvidersState(rx.State):
    loaded: bool = False
    providers: list[ProviderRow] = []
    games: list[GameRtpRow] = []
    alerts: list[AlertRow] = []
    message: str = ""
    notice: str = ""
    round_message: str = ""
    matches: list[MatchRow] = []
    detail: RoundView | None = None
    txs: list[TxRow] = []
    receipts: list[ReceiptRow] = []

    async def _load(self) -> Any:
        out = await money_call(self, routes.STAFF_PROVIDERS, staff_providers.overview,
                               with_context=False)
        if not out.ok:
            self.message = out.error
            return out.event
        o = out.value
        self.providers = [provider_row(p) for p in o.providers]
        self.games = [game_row(g) for g in o.games]
        self.alerts = [alert_row(a) for a in o.alerts]
        self.loaded = True
        return None

    def _clear_round(self) -> None:
        self.detail, self.txs, self.receipts, self.matches = None, [], [], []

    @rx.event
    async def on_open(self):
        self.loaded, self.message, self.notice, self.round_message = False, "", "", ""
        self.providers, self.games, self.alerts = [], [], []
        self._clear_round()
        event = await self._load()
        raw = self.router.url.query_parameters.get("round", "")
        if event is None and isinstance(raw, str) and raw:
            return await self._find(raw)
        return event

    @rx.event
    async def refresh(self):
        self.message, self.notice = "", ""
        return await self._load()

    @rx.event
    async def set_enabled(self, form: dict):
        """Admins: disable or enable a provider, with a reason (the service re-checks)."""
        self.message, self.notice = "", ""
        name = form_value(form, "provider")
        out = await money_call(self, routes.STAFF_PROVIDERS, staff_providers.set_enabled,
                               name, _enabled_arg(form_value(form, "action")),
                               form_value(form, "reason"))
        if not out.ok:
            self.message = out.error
            return out.event
        p = out.value
        self.notice = (f"{p.name} is enabled again." if p.enabled else
                       f"{p.name} is disabled: every call it makes is refused.")
        return await self._load()

    async def _find(self, query: Any) -> Any:
        self.round_message = ""
        self._clear_round()
        out = await money_call(self, routes.STAFF_PROVIDERS, staff_providers.find_rounds,
                               query)
        if not out.ok:
            self.round_message = out.error
            return out.event
        if len(out.value) == 1:
            return await self._open(out.value[0].id)
        if not out.value:
            self.round_message = "No round has that number or provider round id."
        self.matches = [match_row(r) for r in out.value]
        return None

    async def _open(self, round_id: Any) -> Any:
        self.round_message = ""
        out = await money_call(self, routes.STAFF_PROVIDERS, staff_providers.round_detail,
                               round_id)
        if not out.ok:
            self.round_message = out.error
            return out.event
        d = out.value.detail
        self.matches = []
        self.detail = round_view(d, out.value.user_id)
        self.txs = [tx_row(t) for t in d.txs]
        self.receipts = [receipt_row(x) for x in d.receipts]
        return None

    @rx.event
    async def find_round(self, form: dict):
        """Open a round by our number or the provider's round id (several: a list)."""
        return await self._find(form_value(form, "round"))

    @rx.event
    async def look_up(self, query: str):
        """The same from a button (an alert naming a round)."""
        return await self._find(query)

    @rx.event
    async def open_round(self, round_id: int):
        self._clear_round()
        return await self._open(round_id)

    @rx.event
    async def close_round(self):
        self.round_message = ""
        self._clear_round()
