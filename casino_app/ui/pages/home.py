"""The lobby: the games (search, categories, favourites, recently played), what
HashHouse is, and for a signed-in player where they stand."""

import reflex as rx

from casino_app.ui import routes, styles
from casino_app.ui.components.forms import card, link_button
from casino_app.ui.layout import player_page
from casino_app.ui.state.games import GameTile, LobbyState
from casino_app.ui.state.session import SessionState


def _feature(icon: str, title: str, text: str) -> rx.Component:
    return card(rx.vstack(rx.icon(icon, color=styles.ACCENT, size=28),
                          rx.heading(title, size="4"),
                          rx.text(text, color=styles.MUTED, size="2"), spacing="2",
                          align="start"))


def _guest() -> rx.Component:
    return rx.vstack(
        rx.heading("Provably fair. Instantly settled. Yours to run.", size="8",
                   line_height="1.1"),
        rx.text("HashHouse is an open-source crypto casino: every round can be checked "
                "by you, every coin is accounted for in a double-entry ledger.",
                size="4", color=styles.MUTED),
        rx.hstack(link_button("Create an account", size="4", href=routes.REGISTER),
                  link_button("Sign in", size="4", variant="soft", href=routes.LOGIN),
                  spacing="3", wrap="wrap"),
        spacing="5", align="start", padding_y=["16px", "32px", "48px"],
    )


def _player() -> rx.Component:
    return rx.vstack(
        rx.heading(f"Welcome back, {SessionState.display_name}", size="7"),
        rx.cond(SessionState.previous_login != "",
                rx.text("Your previous sign-in: ", SessionState.previous_login, " from ",
                        SessionState.previous_login_ip, color=styles.MUTED)),
        rx.cond(
            SessionState.totp_enabled,
            rx.callout("Two-factor authentication protects your account.",
                       icon="shield_check", color_scheme="green", width="100%"),
            rx.callout(rx.hstack(rx.text("Protect your account with two-factor "
                                         "authentication."),
                                 rx.link("Turn it on", href=routes.SECURITY), wrap="wrap"),
                       icon="shield_alert", color_scheme="amber", width="100%"),
        ),
        spacing="3", align="start", padding_y="16px", width="100%",
    )


def _star(tile: GameTile) -> rx.Component:
    """Favourite toggle (signed-in players only; the server re-checks the caller)."""
    fav = LobbyState.favourites.contains(tile.name)
    return rx.cond(
        SessionState.signed_in,
        rx.icon_button(
            rx.icon("star", size=18, fill=rx.cond(fav, styles.ACCENT, "none")),
            on_click=LobbyState.toggle_favourite(tile.name), variant="soft", size="2",
            type="button", radius="full",
            aria_label=rx.cond(fav, "Remove " + tile.title + " from favourites",
                               "Add " + tile.title + " to favourites"),
            aria_pressed=rx.cond(fav, "true", "false"),
            style={"position": "absolute", "top": "8px", "right": "8px",
                   "color": styles.ACCENT, "background_color": "rgba(15,17,21,.7)"}),
    )


def _tile(tile: GameTile) -> rx.Component:
    return rx.box(
        rx.link(
            rx.vstack(
                # width/height reserve the space: nothing jumps while the art loads lazily
                rx.image(src=tile.image, alt="", loading="lazy", decoding="async",
                         width="100%", height="auto",
                         style={"aspect_ratio": "16 / 10", "object_fit": "cover",
                                "border_radius": "8px", "background_color": styles.SURFACE_2,
                                "display": "block"}),
                # the link's name is its text, "Play Dice ..." ("Play" for screen
                # readers only), so what is seen is what is said
                rx.flex(rx.heading(rx.el.span("Play ", style=styles.sr_only), tile.title,
                                   size="4"), rx.spacer(),
                        rx.badge(tile.category, variant="soft"), width="100%",
                        align="center", wrap="wrap", gap="4px"),
                rx.text(tile.description, size="1", color=styles.MUTED),
                spacing="2", align="start", width="100%"),
            href=tile.href, underline="none", color=styles.TEXT),
        _star(tile),
        class_name="game-tile", data_game=tile.name,
        style={**styles.card, "position": "relative", "padding": "10px"},
    )


def _grid(tiles, grid_id: str) -> rx.Component:  # noqa: ANN001
    return rx.grid(rx.foreach(tiles, _tile), id=grid_id,
                   columns=rx.breakpoints(initial="2", sm="3", lg="5"), spacing="3",
                   width="100%")


def _row(title: str, tiles, row_id: str) -> rx.Component:  # noqa: ANN001
    return rx.cond(
        tiles.length() > 0,
        rx.el.section(rx.heading(title, size="5", margin_bottom="8px"),
                      _grid(tiles, row_id), aria_label=title, style={"width": "100%"}),
    )


def _chip(name) -> rx.Component:  # noqa: ANN001 - a str Var
    on = LobbyState.category == name
    return rx.button(name, on_click=LobbyState.choose_category(name), type="button",
                     variant=rx.cond(on, "solid", "soft"), radius="full", size="2",
                     aria_pressed=rx.cond(on, "true", "false"))


def _games() -> rx.Component:
    return rx.vstack(
        rx.heading("Games", size="6"),
        rx.flex(
            rx.el.label("Search games", html_for="game-search",
                        style={"position": "absolute", "width": "1px", "height": "1px",
                               "overflow": "hidden", "clip": "rect(0 0 0 0)"}),
            rx.input(rx.input.slot(rx.icon("search", size=16)), id="game-search",
                     placeholder="Search games", value=LobbyState.query,
                     on_change=LobbyState.search_games, type="search", size="3",
                     width="100%", max_width=["100%", "320px"], auto_complete="off"),
            rx.hstack(rx.foreach(LobbyState.category_names, _chip), spacing="2",
                      wrap="wrap", aria_label="Categories"),
            rx.cond(
                LobbyState.provider_names.length() > 0,
                rx.el.label(
                    rx.text("Provider", size="2", color=styles.MUTED),
                    rx.el.select(rx.foreach(LobbyState.provider_names,
                                            lambda n: rx.el.option(n, value=n)),
                                 value=LobbyState.provider, id="game-provider",
                                 on_change=LobbyState.choose_provider,
                                 style={"padding": "6px", "border_radius": "8px",
                                        "background_color": styles.SURFACE_2,
                                        "color": styles.TEXT,
                                        "border": f"1px solid {styles.BORDER}"}),
                    style={"display": "flex", "gap": "8px", "align_items": "center"})),
            gap="12px", wrap="wrap", align="center", width="100%"),
        _row("Favourites", LobbyState.favourite_tiles, "favourite-games"),
        _row("Recently played", LobbyState.recent_tiles, "recent-games"),
        rx.el.section(
            rx.cond(LobbyState.signed_in,
                    rx.heading("All games", size="5", margin_bottom="8px")),
            rx.cond(LobbyState.tiles.length() > 0,
                    _grid(LobbyState.tiles, "all-games"),
                    rx.text("No game matches your search.", color=styles.MUTED)),
            aria_label="All games", style={"width": "100%"}),
        spacing="4", width="100%", align="start",
    )


@player_page(routes.HOME, "Lobby", on_load=[LobbyState.load])
def index() -> rx.Component:
    return rx.vstack(
        rx.cond(SessionState.signed_in, _player(), _guest()),
        _games(),
        rx.grid(
            _feature("scale", "Provably fair",
                     "Each result comes from a server seed committed before you play, "
                     "your own client seed and a nonce. Verify any round yourself."),
            _feature("zap", "Instant settlement",
                     "Bets settle in one database transaction against a double-entry "
                     "ledger that cannot lose or invent money."),
            _feature("lock", "Security first",
                     "Argon2 passwords, two-factor codes, revocable sessions and a "
                     "tamper-evident audit log of every sensitive action."),
            columns=rx.breakpoints(initial="1", sm="2", md="3"), spacing="4", width="100%",
        ),
        spacing="6", width="100%",
    )
