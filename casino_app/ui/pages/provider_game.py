"""/play?g=p<id>: a provider's game in an iframe, the live balance in the header."""

import reflex as rx

from casino_app.ui import routes, styles
from casino_app.ui.components.forms import card
from casino_app.ui.layout import page_title, player_page
from casino_app.ui.state.provider_game import ProviderGameState
from casino_app.ui.state.wallet import WalletState


def _mode(value: str, label: str) -> rx.Component:
    on = ProviderGameState.mode == value
    return rx.button(label, type="button", size="2", radius="full",
                     variant=rx.cond(on, "solid", "soft"),
                     aria_pressed=rx.cond(on, "true", "false"),
                     on_click=ProviderGameState.choose_mode(value), id=f"mode-{value}")


def _controls() -> rx.Component:
    return rx.flex(
        rx.cond(ProviderGameState.signed_in, _mode("real", "Real money")),
        rx.cond(ProviderGameState.demo_available, _mode("demo", "Demo")),
        rx.cond(
            (ProviderGameState.mode == "real") & (ProviderGameState.currencies.length() > 1),
            rx.el.label(
                rx.text("Currency", size="2", color=styles.MUTED),
                rx.el.select(
                    rx.foreach(ProviderGameState.currencies,
                               lambda c: rx.el.option(c, value=c)),
                    value=ProviderGameState.code, id="provider-currency",
                    on_change=ProviderGameState.choose_currency,
                    style={"padding": "6px", "border_radius": "8px",
                           "background_color": styles.SURFACE_2, "color": styles.TEXT,
                           "border": f"1px solid {styles.BORDER}"}),
                style={"display": "flex", "gap": "8px", "align_items": "center"})),
        rx.spacer(),
        rx.text(ProviderGameState.rtp, size="2", color=styles.MUTED),
        gap="8px", wrap="wrap", align="center", width="100%")


def _frame() -> rx.Component:
    return rx.box(
        rx.el.iframe(src=ProviderGameState.frame_url, id="provider-frame",
                     title=ProviderGameState.title, allow="fullscreen",
                     referrer_policy="no-referrer",
                     sandbox="allow-scripts allow-same-origin allow-forms",
                     style={"width": "100%", "height": "100%", "border": "0",
                            "border_radius": "8px", "background_color": styles.SURFACE_2}),
        width="100%", style={"aspect_ratio": "16 / 10", "min_height": "420px"})


@player_page(routes.PROVIDER_GAME, "Game", on_load=[ProviderGameState.open])
def provider_game() -> rx.Component:
    return rx.vstack(
        rx.script(src="/provider-frame.js"),
        rx.hstack(rx.link("← Lobby", href=routes.HOME, size="2"), width="100%"),
        page_title(rx.cond(ProviderGameState.title != "", ProviderGameState.title, "Game"),
                   rx.cond(ProviderGameState.provider_name != "",
                           "by " + ProviderGameState.provider_name, "")),
        rx.cond(ProviderGameState.key != "", _controls()),
        rx.cond(
            ProviderGameState.error != "",
            rx.callout(ProviderGameState.error, icon="triangle_alert", color_scheme="amber",
                       width="100%", id="provider-error", role="alert"),
        ),
        rx.cond(ProviderGameState.down,
                rx.button("Try again", on_click=ProviderGameState.retry, type="button",
                          id="provider-retry")),
        rx.cond(ProviderGameState.loading, rx.spinner()),
        rx.cond(ProviderGameState.frame_url != "", _frame()),
        rx.cond(ProviderGameState.frame_url != "",
                card(rx.text("Rounds you play here settle in your HashHouse balance at "
                             "once; they appear in My bets with their recall.", size="2",
                             color=styles.MUTED))),
        # clicked by provider-frame.js when the game says a round ended
        rx.el.button("refresh balance", id="provider-refresh", type="button",
                     on_click=WalletState.load, tab_index=-1, aria_hidden="true",
                     style={"position": "absolute", "width": "1px", "height": "1px",
                            "overflow": "hidden", "clip": "rect(0 0 0 0)"}),
        spacing="4", width="100%", align="start",
    )
