"""The page for an address that is no page: inside the site's shell (header, account menu,
footer), with a way back to the lobby."""

import reflex as rx

from casino_app.ui import routes, styles
from casino_app.ui.components.forms import card, link_button
from casino_app.ui.layout import player_page


@player_page(routes.NOT_FOUND, "Page not found")
def not_found() -> rx.Component:
    return card(rx.vstack(
        rx.heading("This page does not exist", size="6", id="not-found"),
        rx.text("The address may be mistyped, or the page has moved.", color=styles.MUTED),
        rx.hstack(link_button("Go to the lobby", href=routes.HOME, size="3"),
                  link_button("My bets", href=routes.BETS, size="3", variant="soft"),
                  spacing="3", wrap="wrap"),
        spacing="3", align="start"), max_width="560px", margin="24px auto")
