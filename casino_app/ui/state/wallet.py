"""The header's wallet: the selected currency and the player's balances, as a view.

The balances live in the ledger; this state only shows them (formatted), refreshed on each
page load and after every bet (from the bet's ``balance_after``, so a bet costs no extra
query). The selected currency is remembered in the browser (``localStorage``) and checked
against the registry whenever it is used: a forged value is never trusted.
"""

from __future__ import annotations

import asyncio

import reflex as rx

from casino_app.core.db import ledger_tx
from casino_app.core.settings import get_settings
from casino_app.payments import demo, ledger
from casino_app.payments.currencies import Currency, all_currencies, currency
from casino_app.ui import routes
from casino_app.ui.state.session import caller

CURRENCY_STORAGE_KEY = "hh_currency"
DEFAULT_CURRENCY = "FUN"  # play money: what a new player starts with


def currency_codes() -> list[str]:
    return [c.code for c in all_currencies()]


def known_currency(code: object) -> Currency | None:
    try:
        return currency(code)
    except ValueError:
        return None


def fun_is_low(available: int) -> bool:
    """The FUN faucet tops up only below a tenth of the top-up amount (payments.demo)."""
    return available * 10 < get_settings().fun_topup_amount


class WalletState(rx.State):
    # A browser-chosen value: always re-validated with known_currency() before use.
    currency: str = rx.LocalStorage(DEFAULT_CURRENCY, name=CURRENCY_STORAGE_KEY)
    balances: dict[str, str] = {}
    fun_low: bool = False
    loaded: bool = False
    message: str = ""
    # Reserved (e.g. withdrawals in flight) per currency, so that a balance taken from a
    # bet result is shown as available, like the balances read from the ledger.
    _reserved: dict[str, int] = {}

    @rx.var
    def code(self) -> str:
        """The selected currency, or FUN when the stored value is not a currency."""
        cur = known_currency(self.currency)
        return cur.code if cur else DEFAULT_CURRENCY

    @rx.var
    def balance(self) -> str:
        cur = known_currency(self.currency) or currency(DEFAULT_CURRENCY)
        return self.balances.get(cur.code, cur.format(0))

    @rx.var
    def is_fun(self) -> bool:
        return self.code == DEFAULT_CURRENCY

    def _clear(self) -> None:
        self.balances, self._reserved, self.fun_low, self.loaded = {}, {}, False, False

    def _show(self, code: str, available: int) -> None:
        cur = currency(code)
        self.balances = {**self.balances, cur.code: cur.format(available)}
        if cur.code == DEFAULT_CURRENCY:
            self.fun_low = fun_is_low(available)

    async def _refresh(self, player_id: str) -> None:
        """Read every balance of the player from the ledger (one read-only query)."""

        def read() -> dict[str, tuple[int, int]]:
            with ledger_tx(readonly=True) as s:
                return {code: (b.available, b.reserved)
                        for code, b in ledger.player_balances(s, player_id).items()}

        found = await asyncio.to_thread(read)
        self.balances = {}
        self._reserved = {code: reserved for code, (_, reserved) in found.items()}
        for cur in all_currencies():
            self._show(cur.code, found.get(cur.code, (0, 0))[0])
        self.loaded = True

    def _after_bet(self, code: str, balance_after: int) -> None:
        """Show the balance a bet left (no query: the bet service returned it)."""
        self._show(code, balance_after - self._reserved.get(code, 0))

    def _selected(self) -> Currency:
        return known_currency(self.currency) or currency(DEFAULT_CURRENCY)

    @rx.event
    async def load(self):
        """on_load of player pages: the signed-in player's balances (guests: nothing)."""
        self.message = ""
        _, me = await caller(self)
        if me is None:
            self._clear()
            return
        if known_currency(self.currency) is None:
            self.currency = DEFAULT_CURRENCY
        await self._refresh(me.player_id)

    @rx.event
    async def select_currency(self, code: str):
        """Switch the shown currency (a view choice; changes no data)."""
        cur = known_currency(code)
        if cur is not None:
            await self._use(cur)

    async def _use(self, cur: Currency) -> None:
        self.currency = cur.code
        from casino_app.ui.state.games import GameState  # games imports this module

        games = await self.get_state(GameState)
        games._currency_changed(cur)

    @rx.event
    async def top_up(self, request_key: str):
        """Refill play money (only while it is low); the key comes from the browser so
        that a resent click is served once."""
        self.message = ""
        sess, me = await caller(self)
        if me is None:
            return rx.redirect(routes.login_then(sess._path()))
        try:
            available = await asyncio.to_thread(demo.top_up_fun, me.player_id, request_key)
        except demo.TopUpRefused as exc:
            self.message = str(exc)
            return
        fun = currency(DEFAULT_CURRENCY)
        self._show(fun.code, available)
        await self._use(fun)
        return rx.toast.success(f"Play money topped up to {fun.format(available)} FUN.")
