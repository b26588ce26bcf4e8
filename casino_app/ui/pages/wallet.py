"""The wallet: per currency the deposit address (QR code of its EIP-681 URI, copy button,
network warning), withdrawable and pending amounts, the deposits found on chain (updated
live by ui/push.py), and the withdraw form."""

from __future__ import annotations

import reflex as rx

from casino_app.ui import routes, styles
from casino_app.ui.components.forms import card
from casino_app.ui.components.tables import table
from casino_app.ui.layout import page_title, player_page
from casino_app.ui.state.deposits import CurrencyCard, DepositRow, DepositsState


def _amount(label: str, value: rx.Var, code: rx.Var, element_id: rx.Var) -> rx.Component:
    return rx.vstack(
        rx.text(label, size="1", color=styles.MUTED),
        rx.text(value, " ", code, weight="bold", id=element_id, white_space="nowrap"),
        spacing="0", align="start")


def _currency_card(c: CurrencyCard) -> rx.Component:
    return rx.cond(
        DepositsState.selected == c.code,
        card(rx.vstack(
            rx.heading("Deposit " + c.name, size="4"),
            rx.callout(c.warning, icon="triangle_alert", color_scheme="amber", role="note",
                       width="100%", id="network-warning"),
            rx.flex(
                rx.image(src=c.qr, alt="QR code of your " + c.code + " deposit address",
                         width=["180px", "200px"], height=["180px", "200px"],
                         border_radius="8px", id="deposit-qr"),
                rx.vstack(
                    rx.text("Your deposit address", size="2", color=styles.MUTED),
                    rx.code(DepositsState.address, id="deposit-address", size="3",
                            word_break="break-all"),
                    rx.button(rx.icon("copy", size=16), "Copy address", variant="soft",
                              on_click=[rx.set_clipboard(DepositsState.address),
                                        rx.toast.success("Address copied.")],
                              aria_label="Copy the deposit address"),
                    rx.text("Deposits count after ", DepositsState.needed,
                            " confirmations; from the first one they are playable "
                            "(within a limit) but not withdrawable.",
                            size="1", color=styles.MUTED),
                    spacing="2", align="start", min_width="0", flex="1"),
                direction=rx.breakpoints(initial="column", sm="row"), gap="16px",
                align="start", width="100%"),
            rx.hstack(
                _amount("Withdrawable", c.withdrawable, c.code, "withdrawable-" + c.code),
                _amount("Pending", c.pending, c.code, "pending-" + c.code),
                _amount("Confirming", c.confirming, c.code, "confirming-" + c.code),
                spacing="5", wrap="wrap"),
            spacing="3", width="100%", align="start"),
            class_name="deposit-card"),
    )


def _state_badge(d: DepositRow) -> rx.Component:
    return rx.badge(d.label, class_name="deposit-state", color_scheme=rx.match(
        d.state, ("available", "green"), ("pending", "amber"), ("seen", "amber"),
        ("reversed", "red"), "gray"))


def _deposit_row(d: DepositRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.text(d.amount, " ", d.currency, white_space="nowrap",
                              class_name="deposit-amount")),
        rx.table.cell(_state_badge(d)),
        rx.table.cell(rx.text(d.confirmations, white_space="nowrap",
                              class_name="deposit-confirmations")),
        rx.table.cell(rx.code(d.tx_short, title=d.tx, size="1")),
        rx.table.cell(rx.text(d.when, size="1", white_space="nowrap")),
        class_name="deposit-row",
    )


def _deposits() -> rx.Component:
    return card(rx.vstack(
        rx.heading("Deposits", size="4"),
        rx.cond(
            DepositsState.deposits.length() > 0,
            table(("Amount", "State", "Confirmations", "Transaction", "Time (UTC)"),
                  DepositsState.deposits, _deposit_row, size="1"),
            rx.text("No deposits yet. They show up here as soon as the network sees them, "
                    "without reloading.", color=styles.MUTED, size="2")),
        spacing="3", width="100%", align="start"), id="deposits")


def _withdraw_slot() -> rx.Component:
    # WITHDRAW FORM GOES HERE: the withdrawal service (payments/eth/withdrawals.py) and
    # its form are being written separately; this box marks the place in the layout.
    return rx.box(id="withdraw-slot", width="100%")


def _enabled() -> rx.Component:
    return rx.vstack(
        rx.cond(
            DepositsState.codes.length() > 1,
            rx.segmented_control.root(
                rx.foreach(DepositsState.codes,
                           lambda code: rx.segmented_control.item(code, value=code)),
                value=DepositsState.selected, on_change=DepositsState.show,
                id="deposit-currency", aria_label="Currency"),
        ),
        rx.foreach(DepositsState.cards, _currency_card),
        _withdraw_slot(),
        _deposits(),
        spacing="4", width="100%")


@player_page(routes.WALLET, "Wallet", signed_in=True, on_load=[DepositsState.on_open])
def wallet() -> rx.Component:
    return rx.vstack(
        page_title("Wallet", "Deposit crypto to play with real money; deposits appear "
                   "here live."),
        rx.cond(
            DepositsState.message != "",
            rx.callout(DepositsState.message, icon="triangle_alert", color_scheme="red",
                       role="alert", width="100%")),
        rx.cond(
            DepositsState.loaded,
            rx.cond(
                DepositsState.enabled,
                _enabled(),
                card(rx.text("Deposits are not available on this server: it is not "
                             "connected to a blockchain. You can still play with play "
                             "money.", id="deposits-off"))),
            rx.spinner()),
        spacing="4", width="100%", max_width="860px")
