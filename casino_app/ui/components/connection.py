"""The page while its connection to the server is gone: a calm "reconnecting" line instead
of Reflex's raw "Cannot connect to server: websocket error ..." toast, the balance marked
as possibly out of date, and the Bet button off until the socket is back (Reflex
reconnects by itself; ``connectErrors`` empties when it has)."""

from __future__ import annotations

import reflex as rx
from reflex_components_core.core.banner import has_connection_errors

from casino_app.ui import styles

# True while the page has no working socket (compiled page code, no server call)
OFFLINE: rx.Var = has_connection_errors


def reconnecting() -> rx.Component:
    return rx.cond(
        OFFLINE,
        rx.box(
            rx.hstack(rx.spinner(size="1"),
                      rx.text("Reconnecting… Amounts shown may be out of date; betting and "
                              "other actions resume when the connection is back.",
                              size="2"),
                      spacing="2", align="center"),
            id="reconnecting", role="status", aria_live="polite",
            style={"position": "fixed", "bottom": "16px", "left": "50%",
                   "transform": "translateX(-50%)", "z_index": "50",
                   "max_width": "min(560px, calc(100vw - 24px))",
                   "background_color": styles.SURFACE_2, "color": styles.TEXT,
                   "border": f"1px solid {styles.BORDER}", "border_radius": styles.RADIUS,
                   "padding": "10px 14px", "box_shadow": "0 4px 16px rgba(0,0,0,.4)"}),
    )
