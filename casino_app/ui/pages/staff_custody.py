"""Staff custody pages: the reconciliation runs with their totals and issues (admins may
start a run), and the hot and cold wallets against the books and the hot band; Ethereum's
first and, with a Bitcoin node, Bitcoin's beside them."""

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


def _reconcile_button(chain: str, label: str, button_id: str) -> rx.Component:
    s = StaffReconcileState
    return rx.cond(SessionState.is_admin, rx.hstack(
        rx.button(rx.cond(s.running & (s.running_chain == chain), "Reconciling…", label),
                  loading=s.running & (s.running_chain == chain), disabled=s.running,
                  on_click=s.reconcile_now(chain), id=button_id),
        rx.text("Reads the chain now; takes a few seconds.", size="2",
                color=styles.MUTED), align="center", wrap="wrap"))


def _runs(runs: rx.Var, more: rx.Var, chain: str, table_id: str) -> rx.Component:
    s = StaffReconcileState
    return rx.fragment(
        rx.cond(runs.length() > 0,
                table(("Run", "Finished", "Block", "Result", "On chain vs books"), runs,
                      _run, size="1", id=table_id),
                rx.cond(s.loaded, rx.text("No reconciliation has run yet.",
                                          color=styles.MUTED), rx.spinner())),
        rx.cond(more, rx.button("Older runs", variant="soft",
                                on_click=s.load_older(chain))))


@staff_page(routes.STAFF_RECONCILE, "Reconciliation", on_load=[StaffReconcileState.on_open])
def staff_reconcile() -> rx.Component:
    s = StaffReconcileState
    return rx.vstack(
        rx.link("← Staff", href=routes.STAFF),
        page_title("Reconciliation",
                   "Each run compares what every address we control holds on chain with "
                   "what the books say, at one block, and checks every deposit both ways."),
        form_message(s.message),
        notice(s.notice),
        rx.cond(s.selected != 0, card(rx.vstack(
            rx.hstack(rx.heading("Issues of run #", s.selected, size="4"), rx.spacer(),
                      rx.button("Close", size="1", variant="soft", on_click=s.hide_issues),
                      width="100%"),
            table(("Currency", "Kind", "Detail", "Expected", "Actual"), s.issues, _issue,
                  size="1", id="issues"),
            spacing="3", width="100%", align="start"))),
        rx.cond(s.btc_on, rx.heading("Ethereum", size="5")),
        _reconcile_button("ethereum", "Reconcile now", "reconcile-now"),
        _runs(s.runs, s.more, "ethereum", "runs"),
        rx.cond(s.btc_on, rx.vstack(
            rx.heading("Bitcoin", size="5"),
            _reconcile_button("bitcoin", "Reconcile Bitcoin now", "reconcile-now-bitcoin"),
            _runs(s.btc_runs, s.btc_more, "bitcoin", "btc-runs"),
            spacing="4", width="100%", align="start", id="bitcoin-runs")),
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


def _labelled(label: str, content: rx.Component, **kw: object) -> rx.Component:
    return rx.hstack(rx.text(label, color=styles.MUTED, min_width="110px"), content,
                     wrap="wrap", **kw)


def _latest(text: rx.Var, clean: rx.Var) -> rx.Component:
    return _labelled("Last reconciliation", rx.cond(
        text != "", rx.link(text, href=routes.STAFF_RECONCILE,
                            color=rx.cond(clean, styles.TEXT, styles.DANGER)),
        rx.text("none yet", color=styles.MUTED)))


def _btc_wallets() -> rx.Component:
    s = StaffWalletsState
    return rx.vstack(
        rx.heading("Bitcoin", size="5"),
        card(rx.vstack(
            _labelled("Network", rx.text(s.btc_network)),
            _labelled("Hot wallet", _mono(rx.cond(s.btc_hot_address != "", s.btc_hot_address,
                                                  "not known"))),
            _labelled("Cold multisig", _mono(rx.cond(
                s.btc_cold != "", s.btc_cold, "not configured (CASINO_BTC_COLD_KEYS)"))),
            _labelled("Node", rx.cond(
                s.btc_node == "ok",
                rx.badge("reachable, block ", s.btc_at_block.to_string(), color_scheme="green"),
                rx.text(s.btc_node_error, color=styles.DANGER, size="2")),
                id="btc-node-status"),
            _latest(s.btc_latest, s.btc_latest_clean),
            rx.foreach(s.btc_config_errors,
                       lambda e: rx.text(e, size="2", color=styles.DANGER)),
            spacing="2", align="start", width="100%")),
        table(("Currency", "Hot wallet", "Cold multisig", "Books (custody)", "Hot band",
               "Band"), s.btc_wallets, _wallet, size="1", id="btc-wallets"),
        rx.text("Hot wallet: its address and its change addresses; cold: every address of "
                "the cold descriptor (receiving and change) that holds coins; both "
                "confirmed coins at the node's block. Books: what the ledger says all our "
                "addresses hold together, the players' deposit addresses included. Hot "
                "band: CASINO_BTC_HOT_BAND.", size="1", color=styles.MUTED),
        spacing="4", width="100%", align="start", id="bitcoin-wallets")


@staff_page(routes.STAFF_WALLETS, "Wallets", on_load=[StaffWalletsState.on_open])
def staff_wallets() -> rx.Component:
    s = StaffWalletsState
    return rx.vstack(
        rx.link("← Staff", href=routes.STAFF),
        page_title("Wallets",
                   "The hot and cold wallets of each chain, read from its node now, against "
                   "what the books say we hold."),
        form_message(s.message),
        rx.cond(s.loaded, rx.vstack(
            rx.cond(s.btc_on, rx.heading("Ethereum", size="5")),
            card(rx.vstack(
                _labelled("Hot wallet", _mono(rx.cond(s.hot_address != "", s.hot_address,
                                                      "not known"))),
                _labelled("Cold Safe", _mono(rx.cond(
                    s.safe_address != "", s.safe_address,
                    "not configured (CASINO_ETH_SAFE_ADDRESS)"))),
                _labelled("Node", rx.cond(s.node == "ok",
                                          rx.badge("reachable", color_scheme="green"),
                                          rx.text(s.node_error, color=styles.DANGER,
                                                  size="2")),
                          id="node-status"),
                _latest(s.latest, s.latest_clean),
                rx.foreach(s.config_errors,
                           lambda e: rx.text(e, size="2", color=styles.DANGER)),
                spacing="2", align="start", width="100%")),
            table(("Currency", "Hot wallet", "Cold Safe", "Books (custody)", "Hot band",
                   "Band"), s.wallets, _wallet, size="1", id="wallets"),
            rx.text("Books: what the ledger says all our addresses hold together (minus "
                    "its custody account): the deposit addresses as well as the hot wallet "
                    "and the Safe. Reconciliation compares them all, with dust.", size="1",
                    color=styles.MUTED),
            rx.cond(s.btc_on, _btc_wallets()),
            rx.button("Read again", variant="soft", on_click=s.refresh),
            spacing="4", width="100%", align="start"),
            rx.cond(s.message == "", rx.spinner())),
        spacing="4", width="100%")
