"""The wallet: per currency the deposit address (QR code of its EIP-681 URI on Ethereum, of
its BIP21 URI on Bitcoin; copy button, network warning), withdrawable, pending, confirming
and (Bitcoin) incoming amounts, the withdraw form (limits, fee and total, the second factor:
the 2FA code when it is on, else the password or a mailed link; a lock after a security
change and until when), the withdrawal addresses (cooling, allow-list), the player's withdrawals and the deposits found on chain (both updated live by
ui/push.py)."""

from __future__ import annotations

import reflex as rx
from reflex.vars.function import FunctionStringVar

from casino_app.payments.currencies import AMOUNT_FORMAT, AMOUNT_PATTERN
from casino_app.ui import routes, styles
from casino_app.ui.components.forms import (
    card,
    code_field,
    field,
    form,
    form_message,
    notice,
    password_field,
    submit,
)
from casino_app.ui.components.tables import table
from casino_app.ui.layout import page_title, player_page
from casino_app.ui.pages.games import _RANDOM_KEY_JS
from casino_app.ui.state.deposits import CurrencyCard, DepositRow, DepositsState
from casino_app.ui.state.session import SessionState
from casino_app.ui.state.wallet import WalletState
from casino_app.ui.state.withdraw import (
    AddressRow,
    WithdrawalRow,
    WithdrawConfirmState,
    WithdrawOption,
    WithdrawState,
)


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
                    rx.code(c.address, id="deposit-address", size="3",
                            word_break="break-all"),
                    rx.button(rx.icon("copy", size=16), "Copy address", variant="soft",
                              on_click=[rx.set_clipboard(c.address),
                                        rx.toast.success("Address copied.")],
                              aria_label="Copy the deposit address"),
                    rx.text(c.note, size="1", color=styles.MUTED),
                    spacing="2", align="start", min_width="0", flex="1"),
                direction=rx.breakpoints(initial="column", sm="row"), gap="16px",
                align="start", width="100%"),
            rx.hstack(
                _amount("Withdrawable", c.withdrawable, c.code, "withdrawable-" + c.code),
                _amount("Pending", c.pending, c.code, "pending-" + c.code),
                _amount("Confirming", c.confirming, c.code, "confirming-" + c.code),
                rx.cond(c.incoming != "",
                        _amount("Incoming", c.incoming, c.code, "incoming-" + c.code)),
                spacing="5", wrap="wrap"),
            spacing="3", width="100%", align="start"),
            class_name="deposit-card"),
    )


def _state_badge(d: DepositRow) -> rx.Component:
    return rx.badge(d.label, class_name="deposit-state", color_scheme=rx.match(
        d.state, ("available", "green"), ("pending", "amber"), ("seen", "amber"),
        ("incoming", "blue"), ("reversed", "red"), "gray"))


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


# One random request key per form, made by the browser when the form is first submitted
# and kept until the server renews ``form_id`` (after an accepted withdrawal): a double
# click or a reconnect that resends the submit carries the same key.
WITHDRAW_KEY: rx.Var = FunctionStringVar.create(
    "((f) => { const w = globalThis.__hhWithdrawKey; if (w && w.f === f) return w.k; "
    f"const k = {_RANDOM_KEY_JS}; globalThis.__hhWithdrawKey = {{f, k}}; return k; }})"
).call(WithdrawState.form_id)


def _figure(label: str, value: rx.Var, code: rx.Var, element_id: str) -> rx.Component:
    return rx.text(label, " ", rx.text.strong(value, " ", code, id=element_id,
                                              white_space="nowrap"), size="2")


def _withdraw_form(o: WithdrawOption) -> rx.Component:
    return rx.cond(
        DepositsState.selected == o.code,
        card(rx.vstack(
            rx.heading("Withdraw " + o.name, size="4"),
            rx.flex(
                _figure("Withdrawable", o.available, o.code, "withdraw-available"),
                _figure("Fee", o.fee, o.code, "withdraw-fee"),
                gap="4px 20px", wrap="wrap"),
            rx.text("From ", o.minimum, " ", o.code,
                    rx.cond(o.maximum != "", " to " + o.maximum + " " + o.code, ""),
                    " per withdrawal.", size="1", color=styles.MUTED, id="withdraw-limits"),
            rx.cond(o.large != "", rx.text(
                "From ", o.large, " ", o.code, " two staff members check a withdrawal "
                "before it is paid.", size="1", color=styles.MUTED)),
            form(
                rx.el.input(type="hidden", name="currency", value=o.code),
                field("Destination address (" + o.code + " on " + o.network + ")",
                      "address", form_id="withdraw", errors=WithdrawState.errors,
                      placeholder=o.placeholder, required=True, pattern=o.pattern,
                      max_length=100, title=o.address_title, auto_complete="off",
                      spell_check=False, auto_capitalize="off"),
                field("Amount (" + o.code + ")", "amount", form_id="withdraw",
                      errors=WithdrawState.errors, required=True,
                      pattern=AMOUNT_PATTERN, max_length=40, auto_complete="off",
                      title=AMOUNT_FORMAT, value=WithdrawState.amount, spell_check=False,
                      on_change=WithdrawState.edit_amount),
                rx.hstack(
                    rx.button("Half", type="button", variant="soft", size="1",
                              on_click=WithdrawState.fill(o.code, "half")),
                    rx.button("Max", type="button", variant="soft", size="1",
                              id="withdraw-max", on_click=WithdrawState.fill(o.code, "max")),
                    spacing="2"),
                rx.text("You receive the amount; the fee of ", o.fee, " ", o.code,
                        " is added: ",
                        rx.text.strong(rx.cond(WithdrawState.totals[o.code] != "",
                                               WithdrawState.totals[o.code] + " " + o.code
                                               + " in total", "–"),
                                       id="withdraw-total", white_space="nowrap"),
                        " leaves your balance.", size="2"),
                _second_factor(),
                form_message(WithdrawState.message),
                submit("Request withdrawal", id="withdraw-submit"),
                rx.text("Check the address: a withdrawal cannot be cancelled or "
                        "reversed once requested.", size="1", color=styles.MUTED),
                display="flex", flex_direction="column", gap="12px",
                on_submit=lambda data: WithdrawState.request(data, WITHDRAW_KEY),
                key=WithdrawState.form_id, id="withdraw-form"),
            spacing="3", width="100%", align="start"),
            class_name="withdraw-card"))


def _method_item(value: str, label: str) -> rx.Component:
    return rx.el.label(rx.flex(rx.radio_group.item(value=value, id="withdraw-method-" + value),
                               rx.text(label, size="2"), gap="8px", align="center"))


def _second_factor() -> rx.Component:
    """How this withdrawal is confirmed: the 2FA code when it is on; else the player's
    choice of their password or a link mailed to them (the password is refused while the
    account's risk asks for a step-up)."""
    return rx.cond(
        WithdrawState.totp_on | SessionState.totp_enabled,
        rx.vstack(
            code_field(name="code", form_id="withdraw", errors=WithdrawState.errors),
            rx.text("Confirmed with your authenticator: the safest way.", size="1",
                    color=styles.MUTED),
            spacing="1", width="100%"),
        rx.vstack(
            rx.text("Confirm this withdrawal with", weight="bold", size="2"),
            rx.radio_group.root(
                rx.flex(_method_item("password", "My password"),
                        _method_item("mail", "A link mailed to me (the withdrawal waits, "
                                     "reserved, until you open it)"),
                        direction="column", gap="6px"),
                name="method", value=WithdrawState.method,
                on_change=WithdrawState.choose_method, id="withdraw-method"),
            rx.cond(WithdrawState.errors["method"],
                    rx.text(WithdrawState.errors["method"], role="alert", size="2",
                            color=styles.DANGER, id="withdraw-method-error")),
            rx.cond(WithdrawState.method == "password",
                    password_field("Your password", "password", WithdrawState.errors,
                                   form_id="withdraw")),
            rx.callout(
                rx.text("Recommended: turn on two-factor authentication ",
                        rx.link("in your account's security", href=routes.SECURITY),
                        "; then withdrawals are confirmed with your authenticator's code."),
                icon="shield", color_scheme="blue", size="1", width="100%",
                id="withdraw-2fa-advice"),
            spacing="2", width="100%", align="start"),
    )


def _address_row(a: AddressRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.code(a.address_short, title=a.address, size="1")),
        rx.table.cell(rx.text(a.chain, size="1")),
        rx.table.cell(rx.badge(a.note, color_scheme=rx.cond(
            a.allowed, "green", rx.cond(a.usable, "gray", "amber")),
            class_name="withdraw-address-note")),
        class_name="withdraw-address-row")


def _allow_list() -> rx.Component:
    """The player's withdrawal addresses (new ones cool for a while; the form says from
    when each is usable) and their allow-list, changed with the second factor."""
    return card(rx.vstack(
        rx.heading("Withdrawal addresses", size="4"),
        rx.text("An address you have not used before can be paid only after a cooling "
                "period, unless it is on your allow-list. Changing the allow-list takes "
                "your second factor, and we mail you each change.", size="2",
                color=styles.MUTED),
        rx.cond(WithdrawState.addresses.length() > 0,
                table(("Address", "Network", "State"), WithdrawState.addresses,
                      _address_row, size="1")),
        notice(WithdrawState.allow_notice),
        form(
            rx.el.input(type="hidden", name="currency", value=DepositsState.selected),
            field("Address", "address", form_id="allow", errors=WithdrawState.allow_errors,
                  required=True, max_length=100, auto_complete="off", spell_check=False,
                  auto_capitalize="off"),
            rx.el.select(rx.el.option("Add to my allow-list", value="add"),
                         rx.el.option("Remove from my allow-list", value="remove"),
                         name="action", id="allow-action", aria_label="Add or remove"),
            rx.cond(WithdrawState.totp_on,
                    code_field("Code from your authenticator", name="code", form_id="allow",
                               errors=WithdrawState.allow_errors),
                    password_field("Your password (allow-list)", "password",
                                   WithdrawState.allow_errors, form_id="allow")),
            form_message(WithdrawState.allow_message),
            submit("Change allow-list", id="allow-submit", variant="soft"),
            display="flex", flex_direction="column", gap="12px",
            on_submit=WithdrawState.change_allow_list, reset_on_submit=True,
            id="allow-form"),
        spacing="3", width="100%", align="start"), id="withdraw-addresses")


def _withdrawal_state(w: WithdrawalRow) -> rx.Component:
    return rx.badge(w.label, class_name="withdrawal-state", title=w.note,
                    color_scheme=rx.match(
                        w.state, ("confirmed", "green"), ("queued", "amber"),
                        ("awaiting_approval", "amber"), ("batched", "blue"),
                        ("unconfirmed", "amber"), ("cancelled", "gray"),
                        ("failed", "red"), ("rejected", "red"),
                        ("rejecting", "red"), "gray"))


def _withdrawal_row(w: WithdrawalRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.text(w.amount, " ", w.currency, white_space="nowrap",
                              class_name="withdrawal-amount")),
        rx.table.cell(_withdrawal_state(w)),
        rx.table.cell(rx.cond(w.tx != "",
                              rx.code(w.tx_short, title=w.tx, size="1",
                                      class_name="withdrawal-tx"),
                              rx.text("–", color=styles.MUTED))),
        rx.table.cell(rx.code(w.address_short, title=w.address, size="1",
                              class_name="withdrawal-address")),
        rx.table.cell(rx.text(w.fee, white_space="nowrap", class_name="withdrawal-fee")),
        rx.table.cell(rx.text(w.when, size="1", white_space="nowrap")),
        class_name="withdrawal-row",
    )


def _withdrawals() -> rx.Component:
    return card(rx.vstack(
        rx.heading("Withdrawals", size="4"),
        rx.cond(
            WithdrawState.rows.length() > 0,
            table(("Amount", "State", "Transaction", "To", "Fee", "Time (UTC)"),
                  WithdrawState.rows, _withdrawal_row, size="1"),
            rx.text("No withdrawals yet.", color=styles.MUTED, size="2")),
        spacing="3", width="100%", align="start"), id="withdrawals")


def _withdraw_slot() -> rx.Component:
    return rx.vstack(
        notice(WithdrawState.notice),
        rx.cond(WithdrawState.lock != "",
                rx.callout(WithdrawState.lock, icon="lock", color_scheme="amber",
                           role="status", width="100%", id="withdraw-lock")),
        rx.cond(WithdrawState.step_up & ~WithdrawState.totp_on,
                rx.callout("After unusual activity on your account (such as a sign-in "
                           "from a new device or network), confirm withdrawals with the "
                           "link we mail you: your password alone is not enough for now.",
                           icon="shield_alert", color_scheme="amber", width="100%",
                           id="withdraw-step-up")),
        rx.foreach(WithdrawState.options, _withdraw_form),
        rx.cond(WithdrawState.options.length() > 0, _allow_list()),
        spacing="3", id="withdraw-slot", width="100%")


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
        rx.cond(DepositsState.btc_off,
                rx.text("Bitcoin (BTC) deposits are off on this server: it is not connected "
                        "to a Bitcoin node.", size="2", color=styles.MUTED,
                        id="btc-deposits-off")),
        _withdraw_slot(),
        _withdrawals(),
        _deposits(),
        spacing="4", width="100%")


def _balance(row: rx.Var) -> rx.Component:
    return rx.hstack(
        rx.vstack(rx.text(row[0], weight="bold", size="2"),
                  rx.text(row[1], size="1", color=styles.MUTED), spacing="0"),
        rx.spacer(),
        rx.text(row[2], " ", row[0], weight="medium", white_space="nowrap",
                id="balance-" + row[0].to(str)),
        width="100%", align="center", class_name="balance-row",
        style={"padding": "8px 0", "border_bottom": f"1px solid {styles.BORDER}"})


def _balances() -> rx.Component:
    """Every currency's balance (play money too), chain or no chain."""
    return card(rx.vstack(
        rx.heading("Balances", size="4"),
        rx.vstack(rx.foreach(WalletState.balance_list, _balance), spacing="0",
                  width="100%"),
        spacing="2", width="100%", align="start"), id="balances")


@player_page(routes.WALLET, "Wallet", signed_in=True, on_load=[WithdrawState.on_open])
def wallet() -> rx.Component:
    return rx.vstack(
        page_title("Wallet", "Deposit crypto to play with real money; deposits appear "
                   "here live."),
        _balances(),
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
                             "connected to a blockchain (Bitcoin and Ethereum deposits are "
                             "off). You can still play with play money.",
                             id="deposits-off"))),
            rx.spinner()),
        spacing="4", width="100%", max_width="860px")


@player_page(routes.WITHDRAWAL_CONFIRM, "Confirm withdrawal",
             on_load=[WithdrawConfirmState.on_open])
def withdrawal_confirm() -> rx.Component:
    return rx.center(rx.box(card(rx.vstack(
        rx.heading("Confirm your withdrawal", size="6"),
        rx.match(
            WithdrawConfirmState.status,
            ("done", rx.callout(WithdrawConfirmState.message, icon="circle_check",
                                color_scheme="green", role="status",
                                id="withdraw-confirm-done")),
            ("failed", form_message(WithdrawConfirmState.message)),
            rx.hstack(rx.spinner(), rx.text("Confirming…")),
        ),
        rx.link("Your wallet", href=routes.WALLET),
        spacing="4", width="100%")), width="100%", max_width=styles.FORM_WIDTH),
        width="100%")
