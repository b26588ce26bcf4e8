"""/reserves: the newest proof of reserves, and the signed-in player's own leaves."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import reflex as rx

from casino_app.payments import reserves
from casino_app.payments.currencies import currency
from casino_app.ui.state.session import caller


@dataclasses.dataclass
class ReserveRow:
    code: str
    owed: str
    held: str
    covered: bool
    root: str
    leaves: int
    block: str
    addresses: list[str]


def _rows(doc: dict) -> list[ReserveRow]:
    out = []
    for code, c in doc.get("currencies", {}).items():
        cur = currency(code)
        holding = c.get("holdings") or {}
        held = cur.format(int(holding["total"])) + f" {code}" if holding else "not known yet"
        block = f"{holding['chain']} block {holding['block']}" if holding else ""
        addrs = [f"{a['address']}: {cur.format(int(a['amount']))} {code}"
                 for a in holding.get("addresses", [])]
        out.append(ReserveRow(code, cur.format(int(c["total"])) + f" {code}", held,
                              bool(c["covered"]), c["root"], int(c["leaf_count"]), block,
                              addrs))
    return out


class ReservesState(rx.State):
    loaded: bool = False
    published_at: str = ""
    public_key: str = ""
    signature: str = ""
    rows: list[ReserveRow] = []
    signed_in: bool = False
    # the player's own leaves, salt and paths as JSON for the in-browser check
    mine_json: str = ""
    mine_count: int = 0

    @rx.event
    async def load(self):
        published = await asyncio.to_thread(reserves.latest)
        self.loaded = True
        if published is None:
            self.rows, self.published_at = [], ""
            return
        doc = published["proof"]
        self.published_at = doc["created_at"].replace("T", " ").replace("Z", " UTC")
        self.public_key, self.signature = doc["public_key"], published["signature"]
        self.rows = _rows(doc)
        _, me = await caller(self)
        self.signed_in = me is not None
        self.mine_json, self.mine_count = "", 0
        if me is not None:
            view = await asyncio.to_thread(reserves.player_view, me.player_id)
            if view is not None and view["leaves"]:
                self.mine_json = json.dumps(view)
                self.mine_count = len(view["leaves"])
