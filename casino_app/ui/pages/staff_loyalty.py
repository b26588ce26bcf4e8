"""Loyalty claims held for rakeback farming: staff read them with the player's flags, an
admin approves (paid under the reward's ledger key) or rejects with a reason."""

from __future__ import annotations

import reflex as rx

from casino_app.ui import routes, styles
from casino_app.ui.components.forms import form, form_message, notice
from casino_app.ui.components.tables import table
from casino_app.ui.layout import page_title, staff_page
from casino_app.ui.state.staff_loyalty import HeldRow, StaffLoyaltyState


def _held(h: HeldRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell("#", h.id),
        rx.table.cell(rx.cond(h.player_link != "",
                              rx.link("Account #", h.user_id.to_string(), href=h.player_link),
                              "unknown")),
        rx.table.cell(rx.text(h.what, size="1")),
        rx.table.cell(rx.text(h.amount, weight="medium", white_space="nowrap")),
        rx.table.cell(rx.text(h.flags, size="1", white_space="pre-wrap")),
        rx.table.cell(rx.text(h.claimed, size="1")),
        rx.table.cell(rx.vstack(
            rx.button("Approve", size="1", color_scheme="green", high_contrast=True,
                      on_click=StaffLoyaltyState.approve(h.id),
                      aria_label="Approve #" + h.id.to_string()),
            form(rx.hstack(
                rx.el.input(type="hidden", name="reward_id", default_value=h.id.to_string()),
                rx.input(name="reason", placeholder="Reason", required=True, max_length=200,
                         size="1", aria_label="Reason to reject #" + h.id.to_string()),
                rx.button("Reject", size="1", color_scheme="red", variant="soft",
                          type="submit", aria_label="Reject #" + h.id.to_string()),
                spacing="1"),
                on_submit=StaffLoyaltyState.reject, reset_on_submit=True),
            spacing="2", align="start")),
        class_name="held-claim-row",
    )


@staff_page(routes.STAFF_LOYALTY, "Loyalty claims", on_load=[StaffLoyaltyState.on_open])
def staff_loyalty() -> rx.Component:
    return rx.vstack(
        rx.link("← Find a player", href=routes.STAFF),
        page_title("Loyalty claims held for review",
                   "Players flagged for wagering both sides of near-even dice (rakeback "
                   "farming) wait here. An admin approves a claim (it is paid once) or "
                   "rejects it with a reason the player sees."),
        form_message(StaffLoyaltyState.message),
        notice(StaffLoyaltyState.notice),
        rx.cond(
            StaffLoyaltyState.rows.length() > 0,
            table(("Claim", "Player", "Reward", "Amount", "Flags", "Claimed", ""),
                  StaffLoyaltyState.rows, _held, size="1"),
            rx.cond(StaffLoyaltyState.loaded,
                    rx.text("No claim is waiting.", color=styles.MUTED),
                    rx.spinner())),
        spacing="4", width="100%")
