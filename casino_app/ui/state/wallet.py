"""The header's wallet: the selected currency and the player's balances, as a view.

The balances live in the ledger; this state only shows them (formatted), read with the
rest of the wallet (``payments.wallet_view``) on each page load and by the live push, and
after every bet from the bet's ``balance_after`` (so a bet costs no extra query). The
selected currency is remembered in the browser (``localStorage``) and checked against the
registry whenever it is used: a forged value is never trusted.

Other states talk to this one through the module's functions below (``selected``,
``show_bet_balance``, ``show_view``), never through its private helpers; a change of the
currency or display currency reaches the game and bet pages as their own events, listed
after this state's on the header's selects (``ui/layout.py``). This module imports no other
page state.
"""

from __future__ import annotations

import asyncio

import reflex as rx

from casino_app.core.settings import get_settings
from casino_app.payments import demo, wallet_view
from casino_app.payments.currencies import Currency, all_currencies, currency
from casino_app.payments.wallet_view import WalletView
from casino_app.ui import routes
from casino_app.ui.state import fx
from casino_app.ui.state.notice import notify
from casino_app.ui.state.session import caller, page_path

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
    # The display currency (USD, EUR, BTC, ETH or NONE), also a browser-chosen value:
    # always read through fx.quote(). Converted values are text for display only.
    display: str = rx.LocalStorage(fx.DEFAULT, name=fx.STORAGE_KEY)
    converted: dict[str, str] = {}
    fx_note: str = ""
    _available: dict[str, int] = {}

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
    def balance_list(self) -> list[list[str]]:
        """Every currency's balance for the wallet page: [code, name, amount], play money
        first, then the currencies the player holds, then the rest."""
        rows = [[c.code, c.name, self.balances.get(c.code, c.format(0))]
                for c in all_currencies()]
        return sorted(rows, key=lambda r: (r[0] != DEFAULT_CURRENCY,
                                           self._available.get(r[0], 0) == 0))

    @rx.var
    def is_fun(self) -> bool:
        return self.code == DEFAULT_CURRENCY

    @rx.var
    def display_code(self) -> str:
        return fx.quote(self.display)

    @rx.var
    def balance_fx(self) -> str:
        """The selected balance converted: ``≈ 11.40 €``, ``play money`` or nothing."""
        return self.converted.get(self.code, "")

    def _clear(self) -> None:
        self.balances, self._reserved, self.fun_low, self.loaded = {}, {}, False, False
        self.converted, self._available, self.fx_note = {}, {}, ""

    def _show(self, code: str, available: int) -> None:
        cur = currency(code)
        self.balances = {**self.balances, cur.code: cur.format(available)}
        self._available = {**self._available, cur.code: available}
        self.converted = {**self.converted, cur.code: fx.balance_fx(
            cur.code, available, fx.quote(self.display), fx.last_table())}
        if cur.code == DEFAULT_CURRENCY:
            self.fun_low = fun_is_low(available)

    def _show_view(self, view: WalletView) -> None:
        self.balances = {}
        self._reserved = {code: reserved for code, (_, reserved) in view.balances.items()}
        for cur in all_currencies():
            self._show(cur.code, view.available(cur.code))
        self.loaded = True

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
        if not fx.valid(self.display):
            self.display = fx.DEFAULT
        self._show_view(await asyncio.to_thread(wallet_view.read, me.player_id))
        self._convert(fx.quote(self.display), await fx.table())

    def _convert(self, quote: str, rates: fx.RateTable) -> None:
        """Every balance in the display currency, and how live the rates are."""
        self.converted = {code: fx.balance_fx(code, amount, quote, rates)
                          for code, amount in self._available.items()}
        self.fx_note = fx.note(quote, rates)

    @rx.event
    async def select_display(self, code: str):
        """Switch the display currency (a view choice; changes no data): the header
        converts again (the open bet lists follow with their own events). A value that is
        not a choice is ignored."""
        if not fx.valid(code):
            return
        self.display = code
        self._convert(fx.quote(code), await fx.table())

    @rx.event
    def select_currency(self, code: str):
        """Switch the shown currency (a view choice; changes no data; the game page's
        amount follows with its own event)."""
        cur = known_currency(code)
        if cur is not None:
            self.currency = cur.code

    @rx.event
    async def top_up(self, request_key: str):
        """Refill play money (only while it is low); the key comes from the browser so
        that a resent click is served once."""
        self.message = ""
        sess, me = await caller(self)
        if me is None:
            return rx.redirect(routes.login_then(page_path(sess)))
        try:
            available = await asyncio.to_thread(demo.top_up_fun, me.player_id, request_key)
        except demo.TopUpRefused as exc:
            self.message = str(exc)
            return
        fun = currency(DEFAULT_CURRENCY)
        self._show(fun.code, available)
        self.currency = fun.code  # the game page's amount follows (its own event)
        await notify(self, "success", f"Play money topped up to {fun.format(available)} FUN.")


# --- what other states may ask of the wallet ---------------------------------------------

def selected(wallet: WalletState) -> Currency:
    """The currency the header shows (the browser's choice, checked; FUN otherwise)."""
    return known_currency(wallet.currency) or currency(DEFAULT_CURRENCY)


def show_bet_balance(wallet: WalletState, code: str, balance_after: int) -> None:
    """Show the balance a bet left (no query: the settlement returned it)."""
    wallet._show(code, balance_after - wallet._reserved.get(code, 0))


def show_view(wallet: WalletState, view: WalletView) -> None:
    """Show the balances of a wallet read (``payments.wallet_view``)."""
    wallet._show_view(view)
