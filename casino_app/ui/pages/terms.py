"""Terms of service: what a player accepts when opening an account."""

import reflex as rx

from casino_app.ui import routes, styles
from casino_app.ui.components.forms import card
from casino_app.ui.layout import page_title, player_page

_SECTIONS = [
    ("Eligibility", "You must be 18 or older, or older where the law of your country "
     "requires it, and gambling must be legal where you are. One account per person."),
    ("Your account", "Keep your password and second factor to yourself. You are "
     "responsible for play on your account. Tell support at once if you think someone "
     "else has used it."),
    ("Fair play", "Game outcomes are provably fair and can be verified. Collusion, "
     "bots, and exploiting faults are not allowed; winnings from them are void."),
    ("Funds", "Balances are held in the currency you deposited. Withdrawals may require "
     "identity checks and two-factor confirmation."),
    ("VIP and rakeback", "Real-money bets earn VIP volume at their US dollar value when "
     "each period is worked out; play money earns nothing. Each period you get back a "
     "share of the house edge on your bets (rakeback: the share of your tier, rounded "
     "down to the coin's smallest unit), and a one-time bonus when you first reach a tier. "
     "You claim them on your account page. Betting both sides of an even game to collect "
     "rakeback is not allowed: such claims wait for our review and may be refused."),
    ("Responsible gambling", "Set limits, take breaks, and use time-outs or "
     "self-exclusion if play stops being fun."),
    ("Privacy", "Your personal data is stored separately from money records, which "
     "only know a pseudonymous player id. We never sell your data."),
]


@player_page(routes.TERMS, "Terms")
def terms() -> rx.Component:
    return rx.vstack(
        page_title("Terms of service", "Version 2026-11"),
        *[card(rx.heading(t, size="4"), rx.text(body, color=styles.MUTED, margin_top="6px"))
          for t, body in _SECTIONS],
        spacing="3", width="100%", max_width="760px",
    )
