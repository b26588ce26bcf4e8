"""My bets' "Provider rounds" section and one provider round's recall page
(``routes.PROVIDER_ROUND``).

Every handler resolves the caller from the session token on the server (``caller``) and
reads only that player's rounds: the round id in a recall URL is looked up together with
the caller's player id (``recall.round_detail(..., player_id=...)``), so another
player's round reads as "not found". The player sees their round's calls in readable
form (what each asked, what it moved, our answer), never the raw bodies or signatures:
``raw=False`` keeps them out of what the service returns. The provider's own recall page
is for staff (one outbound call per view: not something a reload may trigger).
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import reflex as rx

from casino_app.games.providers import recall
from casino_app.ui import routes
from casino_app.ui.state.bets import bet_id_from_query, fmt_when
from casino_app.ui.state.session import caller

PAGE = 10


@dataclasses.dataclass
class ProviderRoundRow:
    id: int
    link: str
    when: str
    provider: str
    game: str
    currency: str
    staked: str
    paid: str
    net: str
    won: bool
    state: str
    fair_state: str


@dataclasses.dataclass
class CallRow:
    at: str
    action: str
    moved: str
    status: str
    ok: bool


@dataclasses.dataclass
class PlayerRound:
    id: int
    provider: str
    game: str
    currency: str
    staked: str
    paid: str
    net: str
    won: bool
    state: str
    opened: str
    closed: str
    fair_scheme: str
    seed_hash: str
    seed: str
    fair_state: str
    fair_summary: str


def round_row(r: recall.RoundSummary) -> ProviderRoundRow:
    return ProviderRoundRow(r.id, routes.provider_round(r.id), fmt_when(r.opened_at),
                            r.provider, r.game_name, r.currency, r.staked_text, r.paid_text,
                            r.net_text if r.state == "closed" else "–", r.paid > r.staked,
                            r.state, r.fair_state)


def player_round(d: recall.RoundDetail) -> PlayerRound:
    r, f = d.round, d.fair
    return PlayerRound(r.id, r.provider, r.game_name, r.currency, r.staked_text,
                       r.paid_text, r.net_text if r.state == "closed" else "–",
                       r.paid > r.staked, r.state, fmt_when(r.opened_at),
                       fmt_when(r.closed_at), f.scheme, f.seed_hash, f.seed, f.state,
                       f.summary)


def call_row(c: recall.CallView) -> CallRow:
    return CallRow(fmt_when(c.at), c.action, c.moved, c.status, c.ok)


class ProviderRoundsState(rx.State):
    """The section of My bets (``routes.BETS``)."""

    rows: list[ProviderRoundRow] = []
    more: bool = False
    loaded: bool = False

    async def _load(self, before_id: int | None) -> Any:
        _, me = await caller(self)
        if me is None:
            self.rows, self.more, self.loaded = [], False, False
            return rx.redirect(routes.login_then(routes.BETS))
        found = await asyncio.to_thread(recall.player_rounds, me.player_id, PAGE + 1,
                                        before_id)
        rows = [round_row(r) for r in found[:PAGE]]
        self.rows = rows if before_id is None else [*self.rows, *rows]
        self.more = len(found) > PAGE
        self.loaded = True
        return None

    @rx.event
    async def on_open(self):
        return await self._load(None)

    @rx.event
    async def older(self):
        return await self._load(self.rows[-1].id if self.rows else None)


class ProviderRoundState(rx.State):
    """One of the caller's provider rounds: its calls, amounts and fairness check."""

    detail: PlayerRound | None = None
    calls: list[CallRow] = []
    loaded: bool = False

    @rx.event
    async def on_open(self):
        self.detail, self.calls, self.loaded = None, [], False
        raw = self.router.url.query_parameters.get("id", "")
        rid = bet_id_from_query(raw)
        _, me = await caller(self)
        if me is None:
            return rx.redirect(routes.login_then(routes.provider_round(rid) if rid
                                                 else routes.BETS))
        if rid:
            try:
                d = await asyncio.to_thread(recall.round_detail, rid, me.player_id,
                                            raw=False, provider_link=False)
            except recall.RoundNotFound:
                d = None
            if d is not None:
                self.detail = player_round(d)
                self.calls = [call_row(c) for c in d.calls]
        self.loaded = True
        return None
