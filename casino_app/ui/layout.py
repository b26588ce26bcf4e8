"""One player shell and one staff shell, applied by page decorators. A page function
only returns its own content; the decorator adds the header, navigation, theme and the
on_load checks (sign-in for player pages, staff role for staff pages)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import reflex as rx

from casino_app.ui import routes, styles
from casino_app.ui.components.bridge import bridge
from casino_app.ui.components.connection import OFFLINE
from casino_app.ui.components.forms import link_button
from casino_app.ui.state import fx
from casino_app.ui.state.bets import BetsState
from casino_app.ui.state.games import GameState
from casino_app.ui.state.session import SessionState
from casino_app.ui.state.wallet import WalletState, currency_codes


def _nav_link(label: str, href: str) -> rx.Component:
    return rx.link(label, href=href, color=styles.TEXT, weight="medium", underline="none",
                   _hover={"color": styles.ACCENT})


def _account_menu() -> rx.Component:
    return rx.menu.root(
        rx.menu.trigger(rx.button(rx.icon("user", size=16),
                                  rx.text(SessionState.display_name, max_width="120px",
                                          overflow="hidden", text_overflow="ellipsis",
                                          white_space="nowrap",
                                          display=["none", "none", "block"]),
                                  variant="soft", size="2",
                                  # the visible name is part of the accessible one
                                  aria_label="Account menu: " + SessionState.display_name)),
        rx.menu.content(
            rx.menu.item("Lobby", on_click=rx.redirect(routes.HOME)),
            rx.menu.item("Wallet", on_click=rx.redirect(routes.WALLET)),
            rx.menu.item("My bets", on_click=rx.redirect(routes.BETS)),
            rx.menu.item("Fairness", on_click=rx.redirect(routes.FAIRNESS)),
            rx.menu.item("Account", on_click=rx.redirect(routes.ACCOUNT)),
            rx.menu.item("Security and 2FA", on_click=rx.redirect(routes.SECURITY)),
            rx.menu.item("Sessions", on_click=rx.redirect(routes.SESSIONS)),
            rx.cond(SessionState.is_staff,
                    rx.menu.item("Staff", on_click=rx.redirect(routes.STAFF))),
            # what the ≈ values are, only where some are shown (never for play money)
            rx.cond((WalletState.fx_note != "") & ~WalletState.is_fun,
                    rx.text("≈ values: ", WalletState.fx_note, size="1", color=styles.MUTED,
                            padding="4px 12px", id="fx-note")),
            rx.menu.separator(),
            rx.menu.item("Sign out", color="red", on_click=SessionState.logout),
        ),
    )


def currency_select(label: str, select_id: str, **props) -> rx.Component:  # noqa: ANN003
    """A native select (thumb-friendly on phones) of the currencies, FUN included."""
    return rx.el.select(
        *[rx.el.option(code, value=code) for code in currency_codes()],
        value=WalletState.code, id=select_id,
        # the wallet first; then the game page's amount follows (one event each, in order)
        on_change=[WalletState.select_currency, GameState.follow_currency],
        aria_label=label,
        style={"background_color": styles.SURFACE_2, "color": styles.TEXT,
               "border": f"1px solid {styles.BORDER}", "border_radius": "8px",
               "padding": "4px 6px", "font_size": "14px", "min_height": "32px",
               **props.pop("style", {})},
        **props)


def display_select() -> rx.Component:
    """The display currency: converted values beside amounts (or none)."""
    return rx.el.select(
        *[rx.el.option(fx.LABELS.get(code, code), value=code) for code in fx.CHOICES],
        value=WalletState.display_code,
        # the header first; then the open bet lists convert again (one event each, in order)
        on_change=[WalletState.select_display, BetsState.follow_display,
                   GameState.follow_display],
        id="header-display", aria_label="Show values in",
        style={"background_color": styles.SURFACE_2, "color": styles.MUTED,
               "border": f"1px solid {styles.BORDER}", "border_radius": "8px",
               "padding": "4px 2px", "font_size": "12px", "min_height": "32px"})


def _wallet() -> rx.Component:
    """The live balance of the selected currency, updated after every bet, with its
    converted value (display only) under it."""
    clip = {"max_width": ["84px", "180px"], "overflow": "hidden", "white_space": "nowrap",
            "text_overflow": "ellipsis"}
    return rx.cond(
        WalletState.loaded,
        rx.hstack(
            rx.vstack(
                # the last balance known, dimmed and said to be so while reconnecting
                rx.text(WalletState.balance, id="header-balance", aria_live="polite",
                        weight="bold", size="2",
                        title=rx.cond(OFFLINE, "Last known balance (reconnecting)",
                                      WalletState.balance),
                        data_stale=rx.cond(OFFLINE, "true", "false"),
                        opacity=rx.cond(OFFLINE, "0.55", "1"), **clip),
                rx.cond(WalletState.balance_fx != "",
                        rx.text(WalletState.balance_fx, id="header-fx", size="1",
                                color=styles.MUTED, line_height="1.1",
                                title=rx.cond(WalletState.fx_note != "",
                                              WalletState.balance_fx + " · "
                                              + WalletState.fx_note,
                                              WalletState.balance_fx), **clip)),
                spacing="0", align="end"),
            currency_select("Wallet currency", "header-currency"),
            display_select(),
            spacing="1", align="center",
            style={"background_color": styles.SURFACE, "border_radius": "10px",
                   "padding": "2px 2px 2px 10px", "border": f"1px solid {styles.BORDER}"}),
    )


def _brand(staff: bool) -> rx.Component:
    name = rx.heading("HashHouse", size="5", color=styles.TEXT)
    if staff:
        return name
    # a signed-in phone needs the room for the balance: the dice icon stays
    return rx.cond(SessionState.signed_in,
                   rx.heading("HashHouse", size="5", color=styles.TEXT,
                              display=["none", "block"]),
                   name)


def header(staff: bool = False) -> rx.Component:
    return rx.el.header(
        rx.hstack(
            rx.link(rx.hstack(rx.icon("dice_5", color=styles.ACCENT, size=24),
                              _brand(staff),
                              rx.cond(staff, rx.badge("Staff", color_scheme="amber")) if staff
                              else rx.fragment(),
                              spacing="2", align="center"),
                    href=routes.STAFF if staff else routes.HOME, underline="none",
                    # a signed-in phone shows only the icon: the link still has a name
                    **({} if staff else {"aria_label": "HashHouse"})),
            rx.spacer(),
            rx.hstack(
                _nav_link("Lobby", routes.HOME),
                rx.cond(SessionState.signed_in, _nav_link("Wallet", routes.WALLET)),
                rx.cond(SessionState.signed_in, _nav_link("My bets", routes.BETS)),
                rx.cond(SessionState.signed_in, _nav_link("Fairness", routes.FAIRNESS)),
                rx.cond(SessionState.signed_in, _nav_link("Account", routes.ACCOUNT)),
                rx.cond(SessionState.is_staff, _nav_link("Staff", routes.STAFF)),
                spacing="5", display=["none", "none", "flex"], align="center"),
            rx.cond(SessionState.signed_in, _wallet()) if not staff else rx.fragment(),
            rx.cond(
                SessionState.signed_in,
                _account_menu(),
                rx.hstack(link_button("Sign in", variant="soft", size="2",
                                  href=routes.LOGIN),
                          link_button("Join", size="2", href=routes.REGISTER),
                          spacing="2"),
            ),
            align="center", width="100%", max_width=styles.MAX_WIDTH, margin_x="auto",
            padding_x=["12px", "16px", "24px"], padding_y="12px", spacing=rx.breakpoints(initial="2", sm="4"),
        ),
        style={"border_bottom": f"1px solid {styles.BORDER}", "position": "sticky", "top": "0",
               "z_index": "10", "background_color": styles.BG},
    )


def footer() -> rx.Component:
    return rx.el.footer(
        rx.hstack(
            rx.text("HashHouse · 18+ · Play responsibly", size="1", color=styles.MUTED),
            rx.spacer(),
            rx.link("Proof of reserves", href=routes.RESERVES, size="1"),
            rx.link("Terms", href=routes.TERMS, size="1"),
            width="100%", max_width=styles.MAX_WIDTH, margin_x="auto",
            padding_x=["12px", "16px", "24px"], padding_y="16px"),
        style={"border_top": f"1px solid {styles.BORDER}", "margin_top": "48px"},
    )


def shell(content: rx.Component, staff: bool = False) -> rx.Component:
    return rx.box(
        bridge(),
        header(staff),
        rx.el.main(content, style={"max_width": styles.MAX_WIDTH, "margin": "0 auto",
                                   "padding": "24px 12px", "width": "100%"}),
        footer(),
        min_height="100vh", background_color=styles.BG,
    )


def _page(route: str, title: str, on_load: list[Any], staff: bool
          ) -> Callable[[Callable[[], rx.Component]], Callable[[], rx.Component]]:
    def decorator(fn: Callable[[], rx.Component]) -> Callable[[], rx.Component]:
        def page() -> rx.Component:
            return shell(fn(), staff=staff)

        page.__name__ = fn.__name__
        rx.page(route=route, title=f"{title} · HashHouse", on_load=on_load)(page)
        return fn

    return decorator


def player_page(route: str, title: str, *, signed_in: bool = False,
                on_load: list[Any] | None = None):  # noqa: ANN201
    first = SessionState.require_player if signed_in else SessionState.refresh
    return _page(route, title, [first, WalletState.load, *(on_load or [])], staff=False)


def guest_page(route: str, title: str, on_load: list[Any] | None = None):  # noqa: ANN201
    """Sign-in and sign-up pages: a signed-in visitor goes to their account."""
    return _page(route, title, [SessionState.redirect_if_signed_in, *(on_load or [])],
                 staff=False)


def staff_page(route: str, title: str, on_load: list[Any] | None = None):  # noqa: ANN201
    return _page(route, title, [SessionState.require_staff, *(on_load or [])], staff=True)


def page_title(text: Any, sub: Any = "") -> rx.Component:
    return rx.vstack(rx.heading(text, size="7"),
                     rx.fragment() if isinstance(sub, str) and not sub
                     else rx.text(sub, color=styles.MUTED),
                     spacing="1", margin_bottom="16px", align="start")
