"""My bets: history with filters, stats per currency, a cumulative-profit chart, and one
bet's recall page with its fairness inputs and a link to the in-browser verifier."""

from __future__ import annotations

from typing import Any

import reflex as rx

from casino_app.ui import routes, styles
from casino_app.ui.components.copy import long_value
from casino_app.ui.components.forms import card, form, link_button
from casino_app.ui.components.tables import table
from casino_app.ui.layout import page_title, player_page
from casino_app.ui.pages.provider_rounds import provider_rounds_section
from casino_app.ui.state.bets import (
    GAME_CHOICES,
    RESULT_CHOICES,
    BetRow,
    BetsState,
    BetState,
    StatRow,
    currency_choices,
)
from casino_app.ui.state.provider_rounds import ProviderRoundsState


def select(label: str, name: str, choices: tuple[str, ...], value: Any,
           all_label: str = "All", form_id: str = "") -> rx.Component:
    fid = f"{form_id}-{name}" if form_id else name
    return rx.vstack(
        rx.el.label(label, html_for=fid, style={"font_weight": "600", "font_size": "14px"}),
        rx.el.select(rx.el.option(all_label, value=""),
                     *[rx.el.option(c, value=c) for c in choices],
                     id=fid, name=name, default_value=value,
                     style={"padding": "8px", "border_radius": "8px", "min_width": "120px",
                            "background_color": styles.SURFACE_2, "color": styles.TEXT,
                            "border": f"1px solid {styles.BORDER}"}),
        spacing="1", align="start")


def _profit(text: rx.Var, up: rx.Var) -> rx.Component:
    return rx.text(text, color=rx.cond(up, styles.SUCCESS, styles.MUTED), weight="medium")


def _fx(value: rx.Var) -> rx.Component:
    """A converted value under an amount (display only; empty for play money)."""
    return rx.cond(value != "", rx.text(value, size="1", color=styles.MUTED,
                                        white_space="nowrap", class_name="fx"))


def result_badge(label: rx.Var, key: rx.Var) -> rx.Component:
    """won (more back than staked) green, a partial return orange, open amber, the rest
    gray; the label says it in words (never the colour alone)."""
    return rx.badge(label, class_name="bet-result", data_result=key,
                    color_scheme=rx.match(key, ("won", "green"), ("partial", "orange"),
                                          ("open", "amber"), "gray"))


def _bet_row(b: BetRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.text(b.when, size="1", white_space="nowrap")),
        rx.table.cell(b.game),
        rx.table.cell(rx.text(b.stake, " ", b.currency, white_space="nowrap"),
                      _fx(b.fx_stake)),
        rx.table.cell(b.mult),
        rx.table.cell(rx.text(b.payout, white_space="nowrap")),
        rx.table.cell(_profit(b.profit, b.won), _fx(b.fx_profit)),
        rx.table.cell(result_badge(b.result, b.result_key)),
        rx.table.cell(rx.link("Details", href=b.link,
                              aria_label="Details of bet " + b.id.to_string())),
        class_name="bet-row",
    )


def _bet_card(b: BetRow) -> rx.Component:
    """A bet on a phone: the table's eight columns as a card that fits 390 px (the table
    put Profit, Result and Details off-screen)."""
    return rx.vstack(
        rx.hstack(rx.text(b.game, weight="bold"), result_badge(b.result, b.result_key),
                  rx.spacer(),
                  rx.vstack(_profit(b.profit, b.won), _fx(b.fx_profit), spacing="0",
                            align="end"),
                  width="100%", align="center"),
        rx.hstack(rx.text(b.stake, " ", b.currency, " at ", b.mult, size="2",
                          color=styles.MUTED),
                  rx.spacer(),
                  rx.link("Details", href=b.link, size="2",
                          aria_label="Details of bet " + b.id.to_string()),
                  width="100%", align="center"),
        rx.text(b.when, " UTC", size="1", color=styles.MUTED),
        spacing="1", width="100%", class_name="bet-row bet-card",
        style={"padding": "10px 0", "border_bottom": f"1px solid {styles.BORDER}"})


def _stat_row(s: StatRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(s.currency), rx.table.cell(s.bets),
        rx.table.cell(s.wagered, _fx(s.fx_wagered)),
        rx.table.cell(_profit(s.profit, s.up), _fx(s.fx_profit)), rx.table.cell(s.best),
        rx.table.cell(rx.button("Chart", size="1", variant=rx.cond(
            BetsState.chart_currency == s.currency, "solid", "soft"),
            on_click=BetsState.show_chart(s.currency),
            aria_label="Chart of " + s.currency)),
        class_name="stat-row",
    )


def _stats() -> rx.Component:
    return card(rx.vstack(
        rx.heading("Your stats", size="4"),
        table(("Currency", "Bets", "Wagered", "Profit", "Best", ""), BetsState.stats,
              _stat_row, size="1"),
        rx.cond(BetsState.fx_caption != "",
                rx.text(BetsState.fx_caption, size="1", color=styles.MUTED, id="fx-caption")),
        rx.cond(
            BetsState.chart.length() > 0,
            rx.vstack(
                rx.text("Cumulative profit in ", BetsState.chart_unit,
                        ", last 200 settled bets", size="2", color=styles.MUTED,
                        id="chart-caption"),
                rx.recharts.line_chart(
                    rx.recharts.line(data_key="profit", stroke=styles.ACCENT, dot=False,
                                     type_="stepAfter", is_animation_active=False),
                    rx.recharts.x_axis(data_key="bet", hide=True),
                    rx.recharts.y_axis(width=80),
                    rx.recharts.reference_line(y=0, stroke=styles.BORDER),
                    rx.recharts.graphing_tooltip(),
                    data=BetsState.chart, width="100%", height=220),
                width="100%", spacing="2", id="profit-chart"),
            rx.text("Settled bets show up here as a chart.", color=styles.MUTED, size="2")),
        spacing="3", width="100%", align="start"))


def _filters() -> rx.Component:
    return form(rx.hstack(
        select("Game", "game", GAME_CHOICES, BetsState.game, "All games", "bets"),
        select("Currency", "currency", currency_choices(), BetsState.currency,
               "All currencies", "bets"),
        select("Result", "result", RESULT_CHOICES, BetsState.result, "Any result", "bets"),
        rx.button("Show", type="submit", disabled=~rx.State.is_hydrated),
        align="end", wrap="wrap", spacing="3"),
        on_submit=BetsState.apply_filters, reset_on_submit=False)


@player_page(routes.BETS, "My bets", signed_in=True,
             on_load=[BetsState.on_open, ProviderRoundsState.on_open])
def my_bets() -> rx.Component:
    return rx.vstack(
        page_title("My bets", "Every round you played, newest first. Open one to see its "
                   "fairness inputs and verify it."),
        rx.cond(BetsState.stats.length() > 0, _stats()),
        _filters(),
        rx.cond(
            BetsState.rows.length() > 0,
            rx.fragment(
                # cards on a phone, the table from a tablet's width up (CSS decides)
                rx.vstack(rx.foreach(BetsState.rows, _bet_card), spacing="0",
                          width="100%", display=["flex", "flex", "none"], id="bet-cards"),
                rx.box(table(("Time", "Game", "Stake", "Multiplier", "Payout", "Profit",
                              "Result", ""), BetsState.rows, _bet_row, size="1"),
                       width="100%", display=["none", "none", "block"])),
            rx.cond(BetsState.loaded,
                    rx.vstack(rx.text("No bets match.", color=styles.MUTED),
                              rx.link("Play a game", href=routes.HOME), align="start"),
                    rx.spinner())),
        rx.cond(BetsState.more,
                rx.button("Older bets", variant="soft", on_click=BetsState.older)),
        provider_rounds_section(),
        rx.hstack(rx.link("Seeds and fairness", href=routes.FAIRNESS),
                  rx.link("Verifier", href=routes.VERIFY), spacing="4"),
        spacing="4", width="100%")


# --- recall ----------------------------------------------------------------------------------

def _kv(label: str, value: Any, mono: str = "", **props: Any) -> rx.Component:
    """A labelled value; a long one (``mono`` names it) wraps and has a copy button."""
    return rx.hstack(
        rx.text(label, color=styles.MUTED, min_width="150px"),
        rx.box(long_value(value, mono, **props), flex="1", min_width="0") if mono
        else rx.text(value, weight="medium", word_break="break-all", **props),
        wrap="wrap", width="100%", align="baseline")


def _recall() -> rx.Component:
    b = BetState.bet
    return rx.vstack(
        page_title(b.game_name + " bet #" + b.id.to_string(), b.when + " UTC"),
        rx.grid(
            card(rx.vstack(
                rx.heading("Round", size="4"),
                _kv("Result", result_badge(b.result, b.result_key)),
                _kv("Stake", b.stake + " " + b.currency),
                _kv("Settings", b.params),
                _kv("Outcome", b.outcome, id="bet-outcome"),
                rx.cond(b.revealed != "", _kv("Tiles opened", b.revealed)),
                _kv("Multiplier", b.mult),
                _kv("Payout", b.payout + " " + b.currency),
                _kv("Profit", b.profit),
                _kv("Balance before", b.balance_before + " " + b.currency),
                _kv("Balance after", b.balance_after + " " + b.currency),
                spacing="2", align="start", width="100%")),
            card(rx.vstack(
                rx.heading("Fairness", size="4"),
                _kv("Server seed hash", b.server_seed_hash, mono="server seed hash"),
                _kv("Client seed", b.client_seed, mono="client seed"),
                _kv("Nonce", b.nonce),
                rx.cond(
                    b.server_seed != "",
                    rx.vstack(_kv("Server seed", b.server_seed, mono="server seed",
                                  id="bet-seed"),
                              link_button("Verify", href=b.verify, size="3"),
                              spacing="3", width="100%", align="start"),
                    rx.vstack(_kv("Server seed", "revealed when you rotate your seeds"),
                              rx.link("Rotate your seeds on the fairness page",
                                      href=routes.FAIRNESS),
                              spacing="2", width="100%", align="start")),
                spacing="2", align="start", width="100%")),
            columns=rx.breakpoints(initial="1", md="2"), spacing="4", width="100%"),
        spacing="4", width="100%")


@player_page(routes.BET, "Bet", signed_in=True, on_load=[BetState.on_open])
def bet_recall() -> rx.Component:
    return rx.vstack(
        rx.link("← My bets", href=routes.BETS),
        rx.cond(BetState.bet, _recall(),
                rx.cond(BetState.loaded,
                        rx.callout("Bet not found. You can only open your own bets.",
                                   icon="search_x", color_scheme="gray", role="alert"),
                        rx.spinner())),
        spacing="3", width="100%")
