"""A provider's game, opened in an iframe: /play?g=p<id>.

The launch happens on the server (``games.providers.client.launch_url``) for the caller
re-checked there: real money for a signed-in player in one of the provider's currencies,
or the provider's demo. The frame tells the page when a round ended
(``hh-provider-round``, assets/provider-frame.js); the page then reads the balances again
from the ledger (it trusts nothing in the message)."""

from __future__ import annotations

import asyncio

import reflex as rx

from casino_app.games.providers import catalogue, client, registry
from casino_app.payments.currencies import currency
from casino_app.ui import routes
from casino_app.ui.state.session import caller
from casino_app.ui.state.wallet import WalletState, known_currency


class ProviderGameState(rx.State):
    key: str = ""
    title: str = ""
    provider_name: str = ""
    rtp: str = ""
    frame_url: str = ""
    mode: str = "real"           # "real" or "demo"
    code: str = ""               # the currency of a real-money launch
    currencies: list[str] = []
    demo_available: bool = False
    signed_in: bool = False
    error: str = ""
    down: bool = False
    loading: bool = False

    @rx.event
    async def open(self):
        """on_load: the game of ``?g=`` and a launch in the header's currency when the
        provider takes it."""
        self.frame_url, self.error, self.down = "", "", False
        key = self.router.url.query_parameters.get("g", "")
        game = await asyncio.to_thread(catalogue.by_key, key)
        if game is None:
            self.key, self.title = "", ""
            self.error = "This game is not available."
            return
        self.key, self.title, self.provider_name = game.key, game.name, game.provider
        self.rtp = f"RTP {game.rtp_e4 / 10_000:.2f}%" if game.rtp_e4 else ""
        self.currencies = list(game.currencies)
        self.demo_available = game.demo
        _, me = await caller(self)
        self.signed_in = me is not None
        wallet = await self.get_state(WalletState)
        chosen = known_currency(wallet.currency)
        if chosen is not None and chosen.code in game.currencies:
            self.code = chosen.code
        elif self.code not in game.currencies:
            self.code = game.currencies[0] if game.currencies else ""
        if me is None:
            self.mode = "demo"
        await self._launch()

    @rx.event
    async def choose_mode(self, mode: str):
        if mode not in ("real", "demo") or not self.key:
            return None
        if mode == "real":
            _, me = await caller(self)
            if me is None:
                return rx.redirect(routes.login_then(routes.provider_game(self.key)))
        self.mode = mode
        await self._launch()
        return None

    @rx.event
    async def choose_currency(self, code: str):
        if not isinstance(code, str) or code not in self.currencies:
            return
        self.code = code
        if self.mode == "real":
            await self._launch()

    @rx.event
    async def retry(self):
        await self._launch()

    async def _launch(self) -> None:
        self.frame_url, self.error, self.down = "", "", False
        game = await asyncio.to_thread(catalogue.by_key, self.key)
        if game is None:
            self.error = "This game is not available."
            return
        provider = await asyncio.to_thread(registry.by_name, game.provider)
        if provider is None or not provider.enabled:
            self.error = "This game is not available."
            return
        player_id = None
        code = None
        if self.mode == "real":
            _, me = await caller(self)
            if me is None:
                self.mode = "demo"
            else:
                player_id = me.player_id
                code = self.code if self.code in game.currencies else game.currencies[0]
                self.code = code
        if self.mode == "demo" and not game.demo:
            self.error = ("This game has no demo. Sign in to play it with play money "
                          "(FUN)." if "FUN" in game.currencies else
                          "This game has no demo mode.")
            return
        self.loading = True
        try:
            url = await asyncio.to_thread(client.launch_url, provider, player_id,
                                          game.code, code, demo=self.mode == "demo")
        except client.ProviderDown:
            self.down = True
            self.error = (f"{game.provider} is not answering right now, so the game "
                                 "cannot open. Your balance is safe. Try again in a minute.")
        else:
            self.frame_url = url
        finally:
            self.loading = False

    @rx.var
    def code_label(self) -> str:
        try:
            return currency(self.code).name if self.code else ""
        except ValueError:
            return ""
