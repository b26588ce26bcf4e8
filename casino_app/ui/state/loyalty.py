"""The loyalty card of the account page: tier, progress to the next one, rewards and claims.

Every handler re-resolves the caller on the server (``caller``) and acts on the caller's
own rewards only: a reward id of someone else's is "nothing to claim".
"""

from __future__ import annotations

import asyncio
import dataclasses

import reflex as rx

from casino_app.games.loyalty import rewards
from casino_app.ui import routes
from casino_app.ui.state.bets import fmt_when
from casino_app.ui.state.notice import notify
from casino_app.ui.state.session import caller, describe, request_context
from casino_app.users import loyalty

STATES = {"available": "Ready to claim", "held": "Waiting for review", "paid": "Paid",
          "rejected": "Refused"}


@dataclasses.dataclass
class RewardRow:
    id: int
    what: str            # "Rakeback 2026-12-05 00:00 – 2026-12-06 00:00", "Level-up: Gold"
    amount: str          # "0.00012345 BTC"
    state: str
    state_text: str
    note: str
    claimable: bool


def usd(cents: int) -> str:
    return f"${cents // 100:,}.{cents % 100:02d}"


def reward_row(r: rewards.RewardView) -> RewardRow:
    what = (f"Rakeback {fmt_when(r.window_start)[:16]} – {fmt_when(r.window_end)[:16]} UTC"
            if r.kind == "rakeback" else f"Level-up bonus: {r.tier}")
    return RewardRow(r.id, what, r.amount_text, r.state, STATES.get(r.state, r.state),
                     r.note, r.state == "available")


class LoyaltyState(rx.State):
    loaded: bool = False
    tier: str = ""
    rakeback: str = ""            # "10% of the house edge"
    next_tier: str = ""
    progress: int = 0             # percent, for the bar
    volume: str = ""              # "$1,234.56 wagered (≈ $12.00 this period)"
    to_next: str = ""
    period_end: str = ""
    flagged: bool = False
    fun_only: bool = False
    rows: list[RewardRow] = []
    claimable: int = 0
    message: str = ""

    def _show(self, st: rewards.Status) -> None:
        self.tier = st.tier
        self.rakeback = f"{st.rakeback_bps / 100:g}% of the house edge back as rakeback"
        self.next_tier = st.next_tier
        self.progress = st.progress_bps // 100
        self.volume = (f"{usd(st.accrued_e2)} wagered" +
                       (f" (≈ {usd(st.pending_e2)} more this period, counted when it ends)"
                        if st.pending_e2 else ""))
        self.to_next = (f"{usd(st.to_next_e2)} more to reach {st.next_tier}"
                        if st.next_tier else "You are at the top tier.")
        self.period_end = fmt_when(st.period_end)[:16] + " UTC"
        self.flagged = st.flagged
        self.fun_only = st.fun_only
        self.rows = [reward_row(r) for r in st.rewards]
        self.claimable = sum(1 for r in st.rewards if r.state == "available")
        self.loaded = True

    async def _reload(self, token: str) -> None:
        self._show(await asyncio.to_thread(loyalty.my_status, token))

    @rx.event
    async def on_open(self):
        self.message = ""
        sess, me = await caller(self)
        if me is None:
            return rx.redirect(routes.login_then(routes.ACCOUNT))
        await self._reload(sess.token)
        return None

    async def _claim(self, reward_id: object):  # noqa: ANN202
        self.message = ""
        sess, me = await caller(self)
        if me is None:
            return rx.redirect(routes.login_then(routes.ACCOUNT))
        try:
            out = await asyncio.to_thread(loyalty.claim, sess.token, reward_id,
                                          request_context(sess))
        except Exception as exc:  # noqa: BLE001 - shown on the card
            self.message = describe(exc)[1]
            await self._reload(sess.token)
            return None
        await self._reload(sess.token)
        if out.paid:
            await notify(self, "success", "Paid to your balance: " +
                         ", ".join(r.amount_text for r in out.paid) + ".")
        if out.held:
            await notify(self, "info", "Your claim is waiting for a review by our team.")
        if not out.paid and not out.held:
            self.message = "Nothing to claim right now."
        return None

    @rx.event
    async def claim(self, reward_id: int):
        if isinstance(reward_id, str) and reward_id.isascii() and reward_id.isdigit() \
                and len(reward_id) <= 18:
            reward_id = int(reward_id)
        if isinstance(reward_id, bool) or not isinstance(reward_id, int):
            self.message = "No such reward."
            return None
        return await self._claim(reward_id)

    @rx.event
    async def claim_all(self):
        return await self._claim(None)
