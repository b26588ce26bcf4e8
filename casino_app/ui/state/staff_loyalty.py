"""The staff page of loyalty claims held for rakeback farming (``routes.STAFF_LOYALTY``).

Every handler calls one ``users.staff_loyalty`` function with the caller's session token
(``money_call``: the service checks role and 2FA on the server and audits; support reads,
an admin approves or rejects with a reason).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import reflex as rx

from casino_app.ui import routes
from casino_app.ui.state.bets import fmt_when
from casino_app.ui.state.session import form_value
from casino_app.ui.state.staff_money import decide, money_call
from casino_app.users import staff_loyalty


@dataclasses.dataclass
class HeldRow:
    id: int
    user_id: int
    player_link: str
    what: str
    amount: str
    claimed: str
    flags: str           # the player's flags, one per line


def held_row(h: staff_loyalty.HeldRow) -> HeldRow:
    r = h.claim.reward
    what = (f"rakeback {fmt_when(r.window_start)[:16]} – {fmt_when(r.window_end)[:16]}"
            if r.kind == "rakeback" else f"level-up bonus {r.tier}")
    flags = "\n".join(f"{fmt_when(f.window_start)[:16]}: {f.detail}" for f in h.claim.flags)
    return HeldRow(r.id, h.user_id or 0,
                   routes.staff_player(h.user_id) if h.user_id else "", what,
                   r.amount_text, fmt_when(r.claimed_at), flags)


class StaffLoyaltyState(rx.State):
    rows: list[HeldRow] = []
    loaded: bool = False
    message: str = ""
    notice: str = ""

    async def _load(self) -> Any:
        out = await money_call(self, routes.STAFF_LOYALTY, staff_loyalty.held)
        if not out.ok:
            self.message = out.error
            return out.event
        self.rows = [held_row(h) for h in out.value]
        self.loaded = True
        return None

    @rx.event
    async def on_open(self):
        self.message, self.notice, self.loaded = "", "", False
        return await self._load()

    async def _decide(self, fn, *args: Any, done: str):  # noqa: ANN001, ANN202
        return await decide(self, routes.STAFF_LOYALTY, fn, *args, done=done)

    @rx.event
    async def approve(self, reward_id: int):
        return await self._decide(staff_loyalty.approve, reward_id,
                                  done="Approved #{id}: {amount} paid to the player.")

    @rx.event
    async def reject(self, form: dict):
        return await self._decide(staff_loyalty.reject, form_value(form, "reward_id"),
                                  form_value(form, "reason"),
                                  done="Rejected #{id} ({amount}).")
