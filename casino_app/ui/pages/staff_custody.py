"""Staff custody pages: the reconciliation runs with their totals and issues (admins may
start a run), and the hot and cold wallets against the books and the hot band."""

from __future__ import annotations

import reflex as rx

from casino_app.ui import routes, styles
from casino_app.ui.components.forms import card, form_message, notice
from casino_app.ui.components.tables import table
from casino_app.ui.layout import page_title, staff_page
from casino_app.ui.state.session import SessionState
from casino_app.ui.state.staff_custody import (
    IssueRow,
    RunRow,
    StaffReconcileState,
    StaffWalletsState,
    TotalRow,
    WalletRow,
)


def _mono(value: rx.Var | str) -> rx.Component:
    return rx.text(value, size="1", font_family="monospace", word_break="break-all")


def _total(t: TotalRow) -> rx.Component:
    return rx.hstack(
        rx.text(t.currency, weight="medium", min_width="44px"),
        rx.text("chain", size="1", color=styles.MUTED), _mono(t.onchain),
        rx.text("books", size="1", color=styles.MUTED), _mono(t.expected),
        rx.cond(t.matches, rx.fragment(),
                rx.text("off by " + t.difference, size="1", color=styles.DANGER)),
        spacing="1", wrap="wrap", align="baseline")


def _run(r: RunRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell("#", r.id),
        rx.table.cell(rx.text(r.at, size="1", white_space="nowrap")),
        rx.table.cell(rx.text(r.block), rx.text(r.block_hash[:12], "…", size="1",
                                                 color=styles.MUTED, title=r.block_hash)),
        rx.table.cell(rx.cond(r.clean, rx.badge("clean", color_scheme="green"),
                              rx.button(r.status, size="1", color_scheme="red",
                                        variant="soft",
                                        on_click=StaffReconcileState.show_issues(r.id),
                                        aria_label="Issues of run #" + r.id.to_string()))),
        rx.table.cell(rx.vstack(rx.foreach(r.totals, _total), spacing="1")),
        class_name="run-row")


def _issue(i: IssueRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(i.currency), rx.table.cell(rx.code(i.kind)),
        rx.table.cell(rx.text(i.detail, size="1", word_break="break-all")),
        rx.table.cell(_mono(i.expected)), rx.table.cell(_mono(i.actual)))


@staff_page(routes.STAFF_RECONCILE, "Reconciliation", on_load=[StaffReconcileState.on_open])
def staff_reconcile() -> rx.Component:
    s = StaffReconcileState
    return rx.vstack(
        rx.link("← Staff", href=routes.STAFF),
        page_title("Reconciliation",
                   "Each run compares what every address we control holds on chain with "
                   "what the books say, at one block, and checks every deposit both ways."),
        rx.cond(SessionState.is_admin, rx.hstack(
            rx.button(rx.cond(s.running, "Reconciling…", "Reconcile now"),
                      loading=s.running, disabled=s.running, on_click=s.reconcile_now,
                      id="reconcile-now"),
            rx.text("Reads the chain now; takes a few seconds.", size="2",
                    color=styles.MUTED), align="center", wrap="wrap")),
        form_message(s.message),
        notice(s.notice),
        rx.cond(s.selected != 0, card(rx.vstack(
            rx.hstack(rx.heading("Issues of run #", s.selected, size="4"), rx.spacer(),
                      rx.button("Close", size="1", variant="soft", on_click=s.hide_issues),
                      width="100%"),
            table(("Currency", "Kind", "Detail", "Expected", "Actual"), s.issues, _issue,
                  size="1", id="issues"),
            spacing="3", width="100%", align="start"))),
        rx.cond(s.runs.length() > 0,
                table(("Run", "Finished", "Block", "Result", "On chain vs books"), s.runs,
                      _run, size="1", id="runs"),
                rx.cond(s.loaded, rx.text("No reconciliation has run yet.",
                                          color=styles.MUTED), rx.spinner())),
        rx.cond(s.more, rx.button("Older runs", variant="soft", on_click=s.load_older)),
        spacing="4", width="100%")


def _wallet(w: WalletRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.text(w.currency, weight="medium"),
                      rx.cond(w.token != "", _mono(w.token))),
        rx.table.cell(rx.cond(w.hot_balance != "", _mono(w.hot_balance),
                              rx.text("—", color=styles.MUTED))),
        rx.table.cell(rx.cond(w.safe_balance != "", _mono(w.safe_balance),
                              rx.text("—", color=styles.MUTED))),
        rx.table.cell(_mono(w.custody)),
        rx.table.cell(rx.cond(w.band != "", _mono(w.band),
                              rx.text("not set", size="1", color=styles.MUTED))),
        rx.table.cell(rx.match(
            w.band_status,
            ("below", rx.badge(w.advice, color_scheme="amber")),
            ("above", rx.badge(w.advice, color_scheme="amber")),
            ("within", rx.badge(w.advice, color_scheme="green")),
            rx.text("—", color=styles.MUTED))),
        class_name="wallet-row")


@staff_page(routes.STAFF_WALLETS, "Wallets", on_load=[StaffWalletsState.on_open])
def staff_wallets() -> rx.Component:
    s = StaffWalletsState
    return rx.vstack(
        rx.link("← Staff", href=routes.STAFF),
        page_title("Wallets",
                   "The hot wallet and the cold Safe, read from the node now, against what "
                   "the books say we hold."),
        form_message(s.message),
        rx.cond(s.loaded, rx.vstack(
            card(rx.vstack(
                rx.hstack(rx.text("Hot wallet", color=styles.MUTED, min_width="110px"),
                          _mono(rx.cond(s.hot_address != "", s.hot_address,
                                        "not known")), wrap="wrap"),
                rx.hstack(rx.text("Cold Safe", color=styles.MUTED, min_width="110px"),
                          _mono(rx.cond(s.safe_address != "", s.safe_address,
                                        "not configured (CASINO_ETH_SAFE_ADDRESS)")),
                          wrap="wrap"),
                rx.hstack(rx.text("Node", color=styles.MUTED, min_width="110px"),
                          rx.cond(s.node == "ok", rx.badge("reachable", color_scheme="green"),
                                  rx.badge(s.node_error, color_scheme="red")),
                          wrap="wrap", id="node-status"),
                rx.hstack(rx.text("Last reconciliation", color=styles.MUTED,
                                  min_width="110px"),
                          rx.cond(s.latest != "",
                                  rx.link(s.latest, href=routes.STAFF_RECONCILE,
                                          color=rx.cond(s.latest_clean, styles.TEXT,
                                                        styles.DANGER)),
                                  rx.text("none yet", color=styles.MUTED)),
                          wrap="wrap"),
                rx.foreach(s.config_errors,
                           lambda e: rx.text(e, size="2", color=styles.DANGER)),
                spacing="2", align="start", width="100%")),
            table(("Currency", "Hot wallet", "Cold Safe", "Books (custody)", "Hot band",
                   "Band"), s.wallets, _wallet, size="1", id="wallets"),
            rx.text("Books: what the ledger says all our addresses hold together (minus "
                    "its custody account): the deposit addresses as well as the hot wallet "
                    "and the Safe. Reconciliation compares them all, with dust.", size="1",
                    color=styles.MUTED),
            rx.button("Read again", variant="soft", on_click=s.refresh),
            spacing="4", width="100%", align="start"),
            rx.cond(s.message == "", rx.spinner())),
        spacing="4", width="100%")
