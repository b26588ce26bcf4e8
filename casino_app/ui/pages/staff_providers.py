"""Staff game-provider page: the providers (admins disable or enable one), declared
against measured RTP per game with the 99% interval and drift, the providers' alerts
(commit-reveal mismatches, RTP drift, bad signatures, wins for rounds not open), and the
recall of any provider round: its transactions, the calls that carried them (raw bodies,
signatures, our answers), amounts and fairness check."""

from __future__ import annotations

import reflex as rx

from casino_app.ui import routes, styles
from casino_app.ui.components.forms import card, form, form_message, notice
from casino_app.ui.components.tables import table
from casino_app.ui.layout import page_title, staff_page
from casino_app.ui.state.session import SessionState
from casino_app.ui.state.staff_providers import (
    AlertRow,
    GameRtpRow,
    MatchRow,
    ProviderRow,
    ReceiptRow,
    StaffProvidersState,
    TxRow,
)

S = StaffProvidersState


def _mono(value: rx.Var | str) -> rx.Component:
    return rx.text(value, size="1", font_family="monospace", word_break="break-all")


def _toggle_form(p: ProviderRow) -> rx.Component:
    action = rx.cond(p.enabled, "disable", "enable")
    return form(rx.hstack(
        rx.el.input(type="hidden", name="provider", default_value=p.name),
        rx.el.input(type="hidden", name="action", default_value=action),
        rx.input(name="reason", placeholder="Reason", required=True, max_length=200,
                 size="1", aria_label="Reason to " + action + " " + p.name),
        rx.button(rx.cond(p.enabled, "Disable", "Enable"), size="1", type="submit",
                  color_scheme=rx.cond(p.enabled, "red", "green"), variant="soft",
                  aria_label=rx.cond(p.enabled, "Disable ", "Enable ") + p.name),
        spacing="1", wrap="wrap"),
        on_submit=S.set_enabled, reset_on_submit=True)


def _provider(p: ProviderRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.text(p.name, weight="medium")),
        rx.table.cell(p.dialect),
        rx.table.cell(rx.cond(p.enabled, rx.badge("enabled", color_scheme="green"),
                              rx.vstack(rx.badge("disabled", color_scheme="red"),
                                        rx.text(p.disabled_at, size="1",
                                                color=styles.MUTED), spacing="1"))),
        rx.table.cell(p.currencies),
        rx.table.cell(rx.vstack(rx.hstack(rx.text("ours", size="1", color=styles.MUTED),
                                          _mono(p.wallet_url), spacing="1"),
                                rx.hstack(rx.text("theirs", size="1", color=styles.MUTED),
                                          _mono(p.base_url), spacing="1"), spacing="1")),
        rx.table.cell(rx.cond(SessionState.is_admin, _toggle_form(p))),
        class_name="provider-row")


def _game(g: GameRtpRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(g.provider),
        rx.table.cell(rx.text(g.name), _mono(g.game_code)),
        rx.table.cell(g.declared),
        rx.table.cell(g.measured),
        rx.table.cell(rx.text(g.interval, white_space="nowrap")),
        rx.table.cell(g.rounds),
        rx.table.cell(_mono(g.turnover)),
        rx.table.cell(rx.cond(g.drift, rx.badge("drift", color_scheme="red"),
                              rx.text("—", color=styles.MUTED))),
        class_name="rtp-row")


def _alert(a: AlertRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.code(a.kind)),
        rx.table.cell(rx.badge(a.severity, color_scheme=rx.match(
            a.severity, ("high", "red"), ("medium", "amber"), "gray"))),
        rx.table.cell(a.provider),
        rx.table.cell(rx.cond(a.round_like,
                              rx.button(a.subject, size="1", variant="ghost",
                                        on_click=S.look_up(a.subject),
                                        aria_label="Open round " + a.subject),
                              _mono(a.subject))),
        rx.table.cell(rx.text(a.detail, size="1", word_break="break-all")),
        rx.table.cell(a.count),
        rx.table.cell(rx.text(a.first_at, size="1", white_space="nowrap"),
                      rx.text(a.last_at, size="1", white_space="nowrap")),
        class_name="alert-row")


def _match(m: MatchRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.button("#", m.id.to_string(), size="1", variant="soft",
                                on_click=S.open_round(m.id))),
        rx.table.cell(m.provider), rx.table.cell(_mono(m.round_ref)),
        rx.table.cell(m.game), rx.table.cell(m.state),
        rx.table.cell(rx.text(m.opened, size="1")))


def _tx(t: TxRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.text(t.at, size="1", white_space="nowrap")),
        rx.table.cell(rx.code(t.kind)),
        rx.table.cell(_mono(t.tx_ref),
                      rx.cond(t.reference != "", rx.text("of ", t.reference, size="1",
                                                         color=styles.MUTED))),
        rx.table.cell(rx.text(t.amount, white_space="nowrap")),
        rx.table.cell(rx.cond(t.rolled_back, rx.badge("rolled back", color_scheme="amber"),
                              rx.text(""))),
        rx.table.cell(t.receipt),
        class_name="tx-row")


def _receipt(x: ReceiptRow) -> rx.Component:
    return card(rx.vstack(
        rx.hstack(rx.text("#", x.id.to_string(), weight="medium"), rx.code(x.path),
                  rx.badge(x.status, color_scheme=rx.cond(x.ok, "green", "red")),
                  rx.text(x.at, size="1", color=styles.MUTED),
                  rx.cond(x.linked, rx.fragment(),
                          rx.badge("found by round id", color_scheme="gray")),
                  rx.cond(x.same_player, rx.fragment(),
                          rx.badge("names another player", color_scheme="red")),
                  wrap="wrap", spacing="2", align="center"),
        rx.text("Body", size="1", color=styles.MUTED), _mono(x.body),
        rx.text("Signature", size="1", color=styles.MUTED), _mono(x.signature),
        rx.text("Our answer", size="1", color=styles.MUTED), _mono(x.answer),
        rx.cond(x.answer_signature != "", rx.vstack(
            rx.text("Its signature", size="1", color=styles.MUTED),
            _mono(x.answer_signature), spacing="1", width="100%")),
        spacing="1", width="100%", align="start"), class_name="receipt")


def _kv(label: str, value: rx.Var | str | rx.Component) -> rx.Component:
    content = value if isinstance(value, rx.Component) else rx.text(value,
                                                                     word_break="break-all")
    return rx.hstack(rx.text(label, color=styles.MUTED, min_width="130px"), content,
                     wrap="wrap", align="baseline", width="100%")


def _round() -> rx.Component:
    d = S.detail
    return card(rx.vstack(
        rx.hstack(rx.heading("Round #", d.id.to_string(), size="4"), rx.spacer(),
                  rx.button("Close", size="1", variant="soft", on_click=S.close_round),
                  width="100%"),
        rx.grid(
            rx.vstack(
                _kv("Provider", d.provider + " (" + d.dialect + ")"),
                _kv("Their round id", _mono(d.round_ref)),
                _kv("Game", d.game),
                _kv("Player", rx.cond(d.player_link != "",
                                      rx.link(_mono(d.player_id), href=d.player_link),
                                      _mono(d.player_id))),
                _kv("State", rx.badge(d.state, color_scheme=rx.cond(
                    d.state == "open", "amber", "gray"))),
                _kv("Opened", d.opened),
                _kv("Closed", rx.cond(d.closed != "", d.closed, "—")),
                _kv("Staked", d.staked), _kv("Paid", d.paid), _kv("Net to player", d.net),
                spacing="1", width="100%", align="start"),
            rx.vstack(
                rx.heading("Fairness", size="3"),
                _kv("Scheme", rx.cond(d.fair_scheme != "", rx.code(d.fair_scheme), "none")),
                _kv("Commitment", _mono(rx.cond(d.seed_hash != "", d.seed_hash, "—"))),
                _kv("Seed", _mono(rx.cond(d.seed != "", d.seed, "—"))),
                _kv("Check", rx.badge(d.fair_state, color_scheme=rx.match(
                    d.fair_state, ("ok", "green"), ("mismatch", "red"),
                    ("pending", "amber"), "gray"))),
                rx.text(d.fair_summary, size="2", id="round-fair-summary"),
                rx.heading("Provider's recall", size="3"),
                rx.cond(d.recall_url != "",
                        rx.link(d.recall_url, href=d.recall_url, is_external=True,
                                word_break="break-all"),
                        rx.text(d.recall_note, size="2", color=styles.MUTED,
                                id="round-recall-note")),
                spacing="1", width="100%", align="start"),
            columns=rx.breakpoints(initial="1", md="2"), spacing="4", width="100%"),
        rx.heading("Transactions", size="3"),
        table(("Time", "Kind", "Transaction", "Amount", "", "Receipt"), S.txs, _tx,
              size="1", id="round-txs"),
        rx.heading("Calls as received", size="3"),
        rx.text(d.receipts_note, size="1", color=styles.MUTED),
        rx.foreach(S.receipts, _receipt),
        spacing="3", width="100%", align="start", id="provider-round"))


def _recall_section() -> rx.Component:
    return rx.vstack(
        rx.heading("Round recall", size="5"),
        form(rx.hstack(
            rx.input(name="round", placeholder="Our round number or the provider's round id",
                     required=True, max_length=128, size="2", width="100%",
                     aria_label="Round number or provider round id"),
            rx.button("Open", type="submit", disabled=~rx.State.is_hydrated),
            spacing="2", width="100%"),
            on_submit=S.find_round, reset_on_submit=False),
        form_message(S.round_message),
        rx.cond(S.matches.length() > 0,
                table(("Round", "Provider", "Their id", "Game", "State", "Opened"),
                      S.matches, _match, size="1", id="round-matches")),
        rx.cond(S.detail, _round()),
        spacing="3", width="100%", align="start")


@staff_page(routes.STAFF_PROVIDERS, "Game providers", on_load=[S.on_open])
def staff_providers() -> rx.Component:
    return rx.vstack(
        rx.link("← Staff", href=routes.STAFF),
        page_title("Game providers",
                   "The providers we take calls from, how their games pay against what "
                   "they declare, what they did that needs a look, and any round's calls."),
        form_message(S.message),
        notice(S.notice),
        rx.cond(S.loaded, rx.vstack(
            rx.heading("Providers", size="5"),
            rx.cond(S.providers.length() > 0,
                    table(("Provider", "Dialect", "State", "Currencies", "URLs", ""),
                          S.providers, _provider, size="1", id="providers"),
                    rx.text("No provider yet (casino provider add).", color=styles.MUTED)),
            rx.heading("Return to player", size="5"),
            rx.text("Measured over each game's last closed rounds; drift is a declared RTP "
                    "outside the 99% interval of the measured one (with enough rounds).",
                    size="2", color=styles.MUTED),
            table(("Provider", "Game", "Declared", "Measured", "99% interval", "Rounds",
                   "Turnover (base units)", "Drift"), S.games, _game, size="1",
                  id="rtp"),
            rx.heading("Alerts", size="5"),
            rx.cond(S.alerts.length() > 0,
                    table(("Kind", "Severity", "Provider", "Subject", "Detail", "Count",
                           "First / last"), S.alerts, _alert, size="1", id="alerts"),
                    rx.text("No alerts.", color=styles.MUTED)),
            rx.button("Read again", variant="soft", on_click=S.refresh),
            spacing="4", width="100%", align="start"),
            rx.cond(S.message == "", rx.spinner())),
        _recall_section(),
        spacing="4", width="100%")
