"""Staff money: the money section of the staff player page (balances, recent bets, ledger
lines, adjustments and the request form) and the approvals page."""

from __future__ import annotations

import reflex as rx

from casino_app.payments.currencies import AMOUNT_FORMAT, SIGNED_AMOUNT_PATTERN
from casino_app.ui import routes, styles
from casino_app.ui.components.forms import card, field, form, form_message, notice, submit
from casino_app.ui.components.tables import table
from casino_app.ui.layout import page_title, staff_page
from casino_app.ui.state.bets import BetRow
from casino_app.ui.state.session import SessionState
from casino_app.ui.state.staff_money import (
    AdjustmentRow,
    BalanceRow,
    ChainDepositRow,
    EntryRow,
    HoldRow,
    LockRow,
    StaffAdjustmentsState,
    StaffMoneyState,
)


def _balance(b: BalanceRow) -> rx.Component:
    return rx.table.row(rx.table.cell(b.currency), rx.table.cell(b.balance),
                        rx.table.cell(b.reserved), rx.table.cell(b.available),
                        class_name="balance-row")


def _bet(b: BetRow) -> rx.Component:
    return rx.table.row(rx.table.cell(rx.text(b.when, size="1")), rx.table.cell(b.game),
                        rx.table.cell(b.stake + " " + b.currency), rx.table.cell(b.mult),
                        rx.table.cell(b.profit), rx.table.cell(b.result))


def _entry(e: EntryRow) -> rx.Component:
    return rx.table.row(rx.table.cell(e.entry_id), rx.table.cell(rx.text(e.at, size="1")),
                        rx.table.cell(rx.code(e.kind)), rx.table.cell(e.amount),
                        rx.table.cell(e.account),
                        rx.table.cell(rx.text(e.memo, size="1", word_break="break-all")))


def _adjustment(a: AdjustmentRow) -> rx.Component:
    return rx.table.row(rx.table.cell("#", a.id), rx.table.cell(a.amount),
                        rx.table.cell(rx.text(a.reason, size="1")),
                        rx.table.cell(a.requested_by), rx.table.cell(a.state),
                        rx.table.cell(a.decided_by))


def _release_form(h: HoldRow) -> rx.Component:
    return form(rx.hstack(
        rx.el.input(type="hidden", name="hold_id", default_value=h.id.to_string()),
        rx.input(name="note", placeholder="Note (why it is released)", required=True,
                 max_length=200, size="1", aria_label="Note to release hold #"
                 + h.id.to_string()),
        rx.button("Release hold", size="1", color_scheme="green", high_contrast=True, type="submit",
                  aria_label="Release hold #" + h.id.to_string()),
        spacing="1", wrap="wrap"),
        on_submit=StaffMoneyState.release_hold, reset_on_submit=True)


def _hold(h: HoldRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell("#", h.id),
        rx.table.cell(rx.cond(h.open, rx.badge("Open", color_scheme="red"),
                              rx.badge("Released", color_scheme="gray"))),
        rx.table.cell(rx.code(h.reason)),
        rx.table.cell(rx.text(h.detail, size="1", word_break="break-all")),
        rx.table.cell(rx.text(h.created, size="1")),
        rx.table.cell(rx.cond(h.open,
                              rx.cond(SessionState.is_admin, _release_form(h),
                                      rx.text("An admin can release it.", size="1",
                                              color=styles.MUTED)),
                              rx.text(h.released, size="1"))),
        class_name="hold-row")


def _lock(lk: LockRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell("#", lk.id),
        rx.table.cell(rx.code(lk.reason)),
        rx.table.cell(rx.text(lk.since, size="1")),
        rx.table.cell(rx.text(lk.until, size="1")),
        rx.table.cell(rx.cond(
            lk.open,
            rx.cond(SessionState.is_admin,
                    form(rx.hstack(
                        rx.el.input(type="hidden", name="lock_id",
                                    default_value=lk.id.to_string()),
                        rx.input(name="note", placeholder="Note (why it is lifted)",
                                 required=True, max_length=200, size="1",
                                 aria_label="Note to lift withdrawal lock #"
                                 + lk.id.to_string()),
                        rx.button("Lift", size="1", color_scheme="green", high_contrast=True, type="submit",
                                  aria_label="Lift withdrawal lock #" + lk.id.to_string()),
                        spacing="1", wrap="wrap"),
                        on_submit=StaffMoneyState.lift_lock, reset_on_submit=True),
                    rx.text("In force: an admin can lift it.", size="1", color=styles.MUTED)),
            rx.text(rx.cond(lk.lifted != "", "lifted " + lk.lifted, "over"), size="1"))),
        class_name="withdrawal-lock-row")


def _chain_deposit(d: ChainDepositRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(d.id), rx.table.cell(rx.text(d.at, size="1")),
        rx.table.cell(rx.text(d.amount + " " + d.currency, white_space="nowrap")),
        rx.table.cell(d.state), rx.table.cell(d.block),
        rx.table.cell(rx.code(d.tx_short, title=d.tx)),
        rx.table.cell(d.owed))


def holds_card() -> rx.Component:
    return card(rx.vstack(
        rx.heading("Holds and chain deposits", size="4"),
        rx.text("While a hold is open the player can neither bet nor withdraw.", size="2",
                color=styles.MUTED),
        rx.cond(StaffMoneyState.hold_message != "",
                form_message(StaffMoneyState.hold_message)),
        notice(StaffMoneyState.hold_notice),
        rx.cond(StaffMoneyState.holds.length() > 0,
                table(("Hold", "State", "Reason", "Detail", "Since", ""),
                      StaffMoneyState.holds, _hold, size="1", id="holds"),
                rx.text("No holds.", color=styles.MUTED)),
        rx.cond(StaffMoneyState.locks.length() > 0,
                rx.vstack(
                    rx.text("Withdrawal locks: after a password or 2FA change, and risk "
                            "holds (unusual activity: see the player's audit rows).",
                            size="2", color=styles.MUTED),
                    table(("Lock", "Reason", "Since", "Until", ""), StaffMoneyState.locks,
                          _lock, size="1", id="withdrawal-locks"),
                    spacing="2", width="100%")),
        rx.cond(StaffMoneyState.deposits.length() > 0,
                table(("Deposit", "Seen", "Amount", "State", "Block", "Transaction",
                       "Owed"), StaffMoneyState.deposits, _chain_deposit, size="1",
                      id="chain-deposits"),
                rx.text("No chain deposits.", color=styles.MUTED)),
        spacing="3", width="100%", align="start"))


def _request_form() -> rx.Component:
    return rx.fragment(form(rx.vstack(
        rx.hstack(
            rx.vstack(
                rx.el.label("Currency", html_for="adj-currency",
                            style={"font_weight": "600", "font_size": "14px"}),
                rx.el.select(rx.foreach(StaffMoneyState.currencies,
                                        lambda c: rx.el.option(c, value=c)),
                             id="adj-currency", name="currency",
                             style={"padding": "8px", "border_radius": "8px",
                                    "background_color": styles.SURFACE_2,
                                    "color": styles.TEXT,
                                    "border": f"1px solid {styles.BORDER}"}),
                rx.cond(StaffMoneyState.errors["currency"],
                        rx.text(StaffMoneyState.errors["currency"], role="alert", size="2",
                                color=styles.DANGER)),
                spacing="1", align="start"),
            rx.box(field("Amount", "amount", errors=StaffMoneyState.errors, required=True,
                         max_length=40, form_id="adj", auto_complete="off",
                         pattern=SIGNED_AMOUNT_PATTERN, title=AMOUNT_FORMAT,
                         spell_check=False,
                         hint="0.5 credits the player, -0.5 debits."), flex="1",
                   min_width="180px"),
            width="100%", align="start", wrap="wrap", spacing="3"),
        field("Reason for the adjustment", "reason", errors=StaffMoneyState.errors, required=True,
              max_length=200, form_id="adj", hint="Written to the audit log and the ledger."),
        submit("Request adjustment"),
        spacing="3", width="100%"),
        on_submit=StaffMoneyState.request, reset_on_submit=False),
        key=StaffMoneyState.form_key.to_string())


def money_section() -> rx.Component:
    """Shown on the staff player page (pages/staff.py)."""
    return rx.vstack(
        rx.cond(StaffMoneyState.message != "", form_message(StaffMoneyState.message)),
        card(rx.vstack(
            rx.heading("Balances", size="4"),
            rx.cond(StaffMoneyState.balances.length() > 0,
                    table(("Currency", "Balance", "Reserved", "Available"),
                          StaffMoneyState.balances, _balance, size="1", id="balances"),
                    rx.text("No balances yet.", color=styles.MUTED)),
            spacing="3", width="100%", align="start")),
        holds_card(),
        card(rx.vstack(
            rx.heading("Adjust the balance", size="4"),
            rx.text("A request is applied only when a different staff member, an admin, "
                    "approves it on the ", rx.link("approvals page",
                                                   href=routes.STAFF_ADJUSTMENTS, underline="always"), ".",
                    size="2", color=styles.MUTED),
            notice(StaffMoneyState.notice),
            _request_form(),
            rx.cond(StaffMoneyState.adjustments.length() > 0,
                    table(("#", "Amount", "Reason", "Asked by", "State", "Decided by"),
                          StaffMoneyState.adjustments, _adjustment, size="1")),
            spacing="3", width="100%", align="start")),
        card(rx.vstack(
            rx.heading("Recent bets", size="4"),
            rx.cond(StaffMoneyState.bets.length() > 0,
                    table(("Time", "Game", "Stake", "Multiplier", "Profit", "Result"),
                          StaffMoneyState.bets, _bet, size="1"),
                    rx.text("No bets.", color=styles.MUTED)),
            spacing="3", width="100%", align="start")),
        card(rx.vstack(
            rx.heading("Ledger entries", size="4"),
            rx.cond(StaffMoneyState.entries.length() > 0,
                    table(("Entry", "When", "Kind", "Amount", "Account", "Memo"),
                          StaffMoneyState.entries, _entry, size="1"),
                    rx.text("No ledger entries.", color=styles.MUTED)),
            spacing="3", width="100%", align="start")),
        spacing="4", width="100%", id="money")


def _pending(a: AdjustmentRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell("#", a.id),
        rx.table.cell(rx.cond(a.player_link != "",
                              rx.link("Account #", a.user_id.to_string(), href=a.player_link),
                              "unknown")),
        rx.table.cell(rx.text(a.amount, weight="medium", white_space="nowrap")),
        rx.table.cell(rx.text(a.reason, size="1")),
        rx.table.cell(a.requested_by, " ", rx.text(a.requested_at, size="1")),
        rx.table.cell(rx.vstack(
            rx.button("Approve", size="1", color_scheme="green", high_contrast=True,
                      on_click=StaffAdjustmentsState.approve(a.id),
                      aria_label="Approve #" + a.id.to_string()),
            form(rx.hstack(
                rx.el.input(type="hidden", name="request_id",
                            default_value=a.id.to_string()),
                rx.input(name="reason", placeholder="Reason", required=True, max_length=200,
                         size="1", aria_label="Reason to reject #" + a.id.to_string()),
                rx.button("Reject", size="1", color_scheme="red", variant="soft",
                          type="submit", aria_label="Reject #" + a.id.to_string()),
                spacing="1"),
                on_submit=StaffAdjustmentsState.reject, reset_on_submit=True),
            spacing="2", align="start")),
        class_name="adjustment-row",
    )


@staff_page(routes.STAFF_ADJUSTMENTS, "Adjustments", on_load=[StaffAdjustmentsState.on_open])
def staff_adjustments() -> rx.Component:
    return rx.vstack(
        rx.link("← Find a player", href=routes.STAFF),
        page_title("Adjustments awaiting approval",
                   "Manual balance changes take two people: an admin other than the one "
                   "who asked approves or rejects each request."),
        form_message(StaffAdjustmentsState.message),
        notice(StaffAdjustmentsState.notice),
        rx.cond(
            StaffAdjustmentsState.rows.length() > 0,
            table(("Request", "Player", "Amount", "Reason", "Asked by", ""),
                  StaffAdjustmentsState.rows, _pending, size="1"),
            rx.cond(StaffAdjustmentsState.loaded,
                    rx.text("Nothing awaits approval.", color=styles.MUTED),
                    rx.spinner())),
        spacing="4", width="100%")
