"""The staff withdrawal queue: large withdrawals awaiting two admin approvals (Ethereum: each
an owner signature of the Safe transaction; Bitcoin: each a cosigner's signature of the
PSBT, signed on the admin's own device and uploaded), withdrawals in flight, recent ones,
and refills of the hot wallets from the cold ones.

The signed PSBT is sent as text (base64 or hex) in the form; a file chosen in the page is
read into that text by ``/psbt-file.js`` (assets/psbt-file.js, in the browser: the file
never goes to the server as an upload of its own). The PSBT to sign is offered as a
``.psbt`` file (a data: link), its base64 text and, when small enough, a QR code."""

from __future__ import annotations

import reflex as rx

from casino_app.payments.currencies import AMOUNT_FORMAT, AMOUNT_PATTERN
from casino_app.ui import routes, styles
from casino_app.ui.components.forms import card, field, form, form_message, notice, submit
from casino_app.ui.components.tables import table
from casino_app.ui.layout import page_title, staff_page
from casino_app.ui.state.session import SessionState
from casino_app.ui.state.staff_withdrawals import (
    BtcRefillRow,
    PsbtRow,
    RefillRow,
    SafeTxRow,
    StaffWithdrawalsState,
    WithdrawalRow,
)

S = StaffWithdrawalsState
PSBT_TEXT_MAX = 500_000  # characters: users/staff_withdrawals.MAX_PSBT_TEXT


def _hidden(name: str, value: rx.Var) -> rx.Component:
    return rx.el.input(type="hidden", name=name, default_value=value.to_string())


def _kv(label: str, value: rx.Var) -> rx.Component:
    return rx.hstack(rx.text(label, size="1", color=styles.MUTED, min_width="70px"),
                     rx.code(value, size="1", word_break="break-all"), spacing="2",
                     align="start", width="100%")


def _safe_tx(t: SafeTxRow, label: rx.Var) -> rx.Component:
    """The Safe transaction to sign, and (admins) the signature form."""
    return rx.vstack(
        _kv("safeTxHash", t.safe_hash),
        _kv("nonce", t.safe_nonce.to_string()),
        _kv("to", t.to_address),
        _kv("value (wei)", t.value_wei),
        _kv("data", t.call_data),
        rx.text("Signatures: ", t.signatures, " · ", t.pay_state, size="1"),
        rx.cond(t.status != "", rx.text(t.status, size="1", color=styles.DANGER,
                                         class_name="safe-status")),
        rx.cond(t.can_sign & SessionState.is_admin, form(rx.hstack(
            _hidden("payment_id", t.payment_id),
            rx.input(name="signature", placeholder="0x… owner signature (65 bytes)",
                     required=True, max_length=200, size="1", width="320px",
                     aria_label="Owner signature for " + label, auto_complete="off"),
            rx.button("Approve and sign", size="1", color_scheme="green", high_contrast=True, type="submit",
                      aria_label="Approve and sign " + label),
            spacing="1", wrap="wrap"),
            on_submit=S.sign, reset_on_submit=True)),
        spacing="1", align="start", width="100%", class_name="safe-tx")


def _psbt(t: PsbtRow, label: rx.Var) -> rx.Component:
    """A Bitcoin cold payment: what it spends and pays, who approved, the PSBT to sign
    (file, text, QR) and, for admins, the upload of the signed one."""
    return rx.vstack(
        _kv("txid", t.txid),
        _kv("fee", t.fee),
        _kv("spends", t.spends),
        rx.text("Approvals: ", t.signatures, " · ", t.state,
                rx.cond(t.progress != "", rx.fragment(" · ", t.progress)), size="1",
                class_name="psbt-approvals"),
        rx.cond(t.status != "", rx.text(t.status, size="1", color=styles.DANGER,
                                         class_name="psbt-status")),
        rx.cond(t.can_sign, rx.vstack(
            rx.hstack(
                rx.el.a("Download the PSBT (.psbt)", href=t.href, download=t.filename,
                        class_name="psbt-download",
                        aria_label="Download the PSBT of " + label),
                rx.text("or scan, or copy the text", size="1", color=styles.MUTED),
                spacing="2", align="center", wrap="wrap"),
            rx.cond(t.qr != "", rx.image(src=t.qr, alt="QR code of the PSBT of " + label,
                                         width="260px", height="260px",
                                         class_name="psbt-qr")),
            rx.el.textarea(t.base64, read_only=True, rows=3, class_name="psbt-base64",
                           aria_label="The PSBT of " + label + " as base64 text",
                           style={"width": "100%", "font_family": "monospace",
                                  "font_size": "11px"}),
            rx.cond(SessionState.is_admin, form(rx.vstack(
                _hidden("payment_id", t.payment_id),
                rx.el.label("Signed PSBT file",
                            style={"font_size": "12px", "font_weight": "600"}),
                rx.el.input(type="file", accept=".psbt,.txt,application/octet-stream",
                            custom_attrs={"data-psbt-file": "true"},
                            aria_label="Signed PSBT file for " + label),
                rx.el.textarea(name="psbt", required=True, rows=3,
                               max_length=PSBT_TEXT_MAX, auto_complete="off",
                               spell_check=False, class_name="psbt-upload",
                               placeholder="…or paste the signed PSBT (base64 or hex)",
                               aria_label="Signed PSBT for " + label,
                               style={"width": "100%", "font_family": "monospace",
                                      "font_size": "11px"}),
                rx.button("Approve: upload the signed PSBT", size="1", color_scheme="green",
                          type="submit", aria_label="Upload the signed PSBT of " + label),
                spacing="1", align="start", width="100%"),
                on_submit=S.upload_psbt, reset_on_submit=True)),
            spacing="2", align="start", width="100%")),
        spacing="1", align="start", width="100%", class_name="psbt")


def _reject_form(r: WithdrawalRow) -> rx.Component:
    return form(rx.hstack(
        _hidden("withdrawal_id", r.id),
        rx.input(name="reason", placeholder="Reason", required=True, max_length=200,
                 size="1", aria_label="Reason to reject withdrawal #" + r.id.to_string()),
        rx.button("Reject", size="1", color_scheme="red", variant="soft", type="submit",
                  aria_label="Reject withdrawal #" + r.id.to_string()),
        spacing="1"), on_submit=S.reject, reset_on_submit=True)


def _player(r: WithdrawalRow) -> rx.Component:
    return rx.cond(r.player_link != "",
                   rx.link("#", r.user_id.to_string(), href=r.player_link), "unknown")


def _awaiting(r: WithdrawalRow) -> rx.Component:
    label = "withdrawal #" + r.id.to_string()
    return rx.table.row(
        rx.table.cell("#", r.id, rx.text(r.when, size="1")),
        rx.table.cell(_player(r)),
        rx.table.cell(rx.text(r.amount, " ", r.currency, weight="medium",
                              white_space="nowrap"),
                      rx.text("fee ", r.fee, size="1", color=styles.MUTED)),
        rx.table.cell(rx.code(r.address, size="1", word_break="break-all")),
        rx.table.cell(rx.cond(r.approvals != "", r.approvals, "none yet")),
        rx.table.cell(rx.vstack(
            rx.cond(r.has_safe_tx, _safe_tx(r.safe, label)),
            rx.cond(r.has_psbt, _psbt(r.psbt, label)),
            rx.cond(SessionState.is_admin, rx.vstack(
                rx.cond(r.needs_prepare, form(
                    _hidden("withdrawal_id", r.id),
                    rx.button("Prepare Safe transaction", size="1", type="submit",
                              aria_label="Prepare the Safe transaction of " + label),
                    on_submit=S.prepare)),
                rx.cond(r.needs_psbt, form(
                    _hidden("withdrawal_id", r.id),
                    rx.button("Prepare the PSBT (cold wallet)", size="1", type="submit",
                              aria_label="Prepare the PSBT of " + label),
                    on_submit=S.prepare_psbt)),
                _reject_form(r), spacing="2", align="start", width="100%"),
                rx.text("Admins approve or reject.", size="1", color=styles.MUTED)),
            spacing="2", align="start", width="100%")),
        class_name="withdrawal-awaiting")


def _tx(r: WithdrawalRow) -> rx.Component:
    return rx.cond(r.tx != "", rx.code(r.tx_short, title=r.tx, size="1"), "")


def _in_flight(r: WithdrawalRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell("#", r.id), rx.table.cell(_player(r)),
        rx.table.cell(rx.text(r.amount, " ", r.currency, white_space="nowrap")),
        rx.table.cell(rx.code(r.address, size="1", word_break="break-all")),
        rx.table.cell(r.state, rx.cond(r.note != "", rx.text(
            r.note, size="1", color=styles.DANGER, class_name="withdrawal-note"))),
        rx.table.cell(_tx(r)),
        rx.table.cell(rx.cond(r.approvals != "", r.approvals, "")),
        class_name="withdrawal-in-flight")


def _recent(r: WithdrawalRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell("#", r.id, rx.text(r.when, size="1")), rx.table.cell(_player(r)),
        rx.table.cell(rx.text(r.amount, " ", r.currency, white_space="nowrap")),
        rx.table.cell(r.state), rx.table.cell(_tx(r)),
        rx.table.cell(rx.cond(r.approvals != "", r.approvals, "")),
        rx.table.cell(rx.text(r.failure, size="1")),
        class_name="withdrawal-recent")


def _cancel_form(payment_id: rx.Var, label: rx.Var, handler: rx.EventHandler
                 ) -> rx.Component:
    """Cancel a refill, with a reason (admins)."""
    return form(rx.hstack(
        _hidden("payment_id", payment_id),
        rx.input(name="reason", placeholder="Reason", required=True, max_length=200,
                 size="1", aria_label="Reason to cancel " + label),
        rx.button("Cancel", size="1", color_scheme="red", variant="soft",
                  type="submit", aria_label="Cancel " + label),
        spacing="1"), on_submit=handler, reset_on_submit=True)


def _refill(r: RefillRow) -> rx.Component:
    label = "refill #" + r.id.to_string()
    return rx.table.row(
        rx.table.cell("#", r.id, rx.text(r.when, size="1")),
        rx.table.cell(rx.text(r.amount, " ", r.currency, white_space="nowrap")),
        rx.table.cell(r.requested_by),
        rx.table.cell(rx.vstack(
            _safe_tx(r.safe, label), _tx(r),
            rx.cond(r.failure != "", rx.text(r.failure, size="1")),
            rx.cond(r.safe.can_cancel & SessionState.is_admin,
                    _cancel_form(r.id, label, S.cancel_refill)),
            spacing="1", align="start", width="100%")),
        class_name="refill-row")


def _btc_refill(r: BtcRefillRow) -> rx.Component:
    label = "Bitcoin refill #" + r.id.to_string()
    return rx.table.row(
        rx.table.cell("#", r.id, rx.text(r.when, size="1")),
        rx.table.cell(rx.text(r.amount, " BTC", white_space="nowrap")),
        rx.table.cell(r.requested_by),
        rx.table.cell(rx.vstack(
            _psbt(r.psbt, label),
            rx.cond(r.failure != "", rx.text(r.failure, size="1")),
            rx.cond(r.psbt.can_cancel & SessionState.is_admin,
                    _cancel_form(r.id, label, S.cancel_btc_refill)),
            spacing="1", align="start", width="100%")),
        class_name="btc-refill-row")


def _btc_refill_form() -> rx.Component:
    return rx.fragment(form(rx.hstack(
        rx.box(field("Amount (BTC)", "btc_amount", errors=S.errors, required=True,
                     max_length=40, form_id="btc-refill", auto_complete="off",
                     pattern=AMOUNT_PATTERN, title=AMOUNT_FORMAT, spell_check=False,
                     hint="Moved from the cold multisig to the hot wallet."), flex="1",
               min_width="180px"),
        rx.box(submit("Prepare the refill PSBT"), align_self="end"),
        width="100%", align="start", wrap="wrap", spacing="3"),
        on_submit=S.request_btc_refill, reset_on_submit=False),
        key="btc-" + S.form_key.to_string())


def _refill_form() -> rx.Component:
    return rx.fragment(form(rx.hstack(
        rx.vstack(
            rx.el.label("Currency", html_for="refill-currency",
                        style={"font_weight": "600", "font_size": "14px"}),
            rx.el.select(rx.foreach(S.currencies, lambda c: rx.el.option(c, value=c)),
                         id="refill-currency", name="currency",
                         style={"padding": "8px", "border_radius": "8px",
                                "background_color": styles.SURFACE_2, "color": styles.TEXT,
                                "border": f"1px solid {styles.BORDER}"}),
            rx.cond(S.errors["currency"], rx.text(S.errors["currency"], role="alert",
                                                  size="2", color=styles.DANGER)),
            spacing="1", align="start"),
        rx.box(field("Amount", "amount", errors=S.errors, required=True, max_length=40,
                     form_id="refill", auto_complete="off", pattern=AMOUNT_PATTERN,
                     title=AMOUNT_FORMAT, spell_check=False,
                     hint="Moved from the Safe to the hot wallet."), flex="1",
               min_width="180px"),
        rx.box(submit("Request refill"), align_self="end"),
        width="100%", align="start", wrap="wrap", spacing="3"),
        on_submit=S.request_refill, reset_on_submit=False), key=S.form_key.to_string())


@staff_page(routes.STAFF_WITHDRAWALS, "Withdrawals", on_load=[S.on_open])
def staff_withdrawals() -> rx.Component:
    return rx.vstack(
        rx.script(src="/psbt-file.js"),
        rx.link("← Staff", href=routes.STAFF),
        page_title("Withdrawal queue",
                   "Large withdrawals and hot-wallet refills are paid from the cold wallets "
                   "once two different admins approve: each with a Safe owner signature "
                   "(Ethereum) or a cosigner's signature of the PSBT (Bitcoin)."),
        form_message(S.message),
        notice(S.notice),
        card(rx.vstack(
            rx.heading("How to sign", size="4"),
            rx.text("On your own device (owner keys never go on this server), sign the "
                    "safeTxHash shown with your Safe owner key, e.g. ",
                    rx.code("cast wallet sign --no-hash <safeTxHash>"),
                    ", a wallet's personal_sign of the hash, or the EIP-712 SafeTx below "
                    "(operation 0, safeTxGas, baseGas, gasPrice 0, no gas token or refund "
                    "receiver). Paste the 65-byte signature. The server checks that it "
                    "comes from an owner.", size="2"),
            _kv("Safe", rx.cond(S.safe != "", S.safe, "not configured")),
            _kv("chain id", S.chain_id.to_string()),
            rx.text("Bitcoin: press Prepare the PSBT, download it (file, text or QR), open it "
                    "on your own signing device (Sparrow, Bitcoin Core, a hardware wallet "
                    "holding your cosigner key), check the address and the amount it shows, "
                    "sign, and upload the signed PSBT here. The server checks it against "
                    "the PSBT it built; two different admins, each with a different "
                    "cosigner, make the payment, which is then broadcast.", size="2"),
            _kv("Cold wallet", rx.cond(S.cold_wallet != "", S.cold_wallet,
                                       "not configured")),
            spacing="2", width="100%", align="start")),
        card(rx.vstack(
            rx.heading("Awaiting approval", size="4"),
            rx.cond(S.awaiting.length() > 0,
                    table(("Withdrawal", "Player", "Amount", "To", "Approved by",
                           "Cold payment"), S.awaiting, _awaiting, size="1",
                          id="awaiting"),
                    rx.cond(S.loaded, rx.text("Nothing awaits approval.", color=styles.MUTED),
                            rx.spinner())),
            spacing="3", width="100%", align="start")),
        card(rx.vstack(
            rx.heading("Queued and sending", size="4"),
            rx.cond(S.in_flight.length() > 0,
                    table(("Withdrawal", "Player", "Amount", "To", "State", "Transaction",
                           "Approved by"), S.in_flight, _in_flight, size="1",
                          id="in-flight"),
                    rx.text("No withdrawal in flight.", color=styles.MUTED)),
            spacing="3", width="100%", align="start")),
        card(rx.vstack(
            rx.heading("Refills from the Safe", size="4"),
            rx.cond(SessionState.is_admin, _refill_form(),
                    rx.text("Admins request refills.", size="2", color=styles.MUTED)),
            rx.cond(S.refills.length() > 0,
                    table(("Refill", "Amount", "Asked by", "Safe transaction"), S.refills,
                          _refill, size="1", id="refills"),
                    rx.text("No refills.", color=styles.MUTED)),
            spacing="3", width="100%", align="start")),
        card(rx.vstack(
            rx.heading("Bitcoin refills from cold", size="4"),
            rx.cond(SessionState.is_admin, _btc_refill_form(),
                    rx.text("Admins request refills.", size="2", color=styles.MUTED)),
            rx.cond(S.btc_refills.length() > 0,
                    table(("Refill", "Amount", "Asked by", "PSBT"), S.btc_refills,
                          _btc_refill, size="1", id="btc-refills"),
                    rx.text("No Bitcoin refills.", color=styles.MUTED)),
            spacing="3", width="100%", align="start")),
        card(rx.vstack(
            rx.hstack(rx.heading("Recent", size="4"),
                      rx.button("Refresh", size="1", variant="soft", on_click=S.refresh),
                      justify="between", width="100%"),
            rx.cond(S.recent.length() > 0,
                    table(("Withdrawal", "Player", "Amount", "State", "Transaction",
                           "Approved by", "Note"), S.recent, _recent, size="1", id="recent"),
                    rx.text("No finished withdrawals yet.", color=styles.MUTED)),
            spacing="3", width="100%", align="start")),
        spacing="4", width="100%")
