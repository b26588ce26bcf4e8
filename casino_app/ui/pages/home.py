"""The lobby: what HashHouse is, and for a signed-in player where they stand."""

import reflex as rx

from casino_app.ui import routes, styles
from casino_app.ui.components.forms import card, link_button
from casino_app.ui.layout import player_page
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


@player_page(routes.HOME, "Lobby")
def index() -> rx.Component:
    return rx.vstack(
        rx.cond(SessionState.signed_in, _player(), _guest()),
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
