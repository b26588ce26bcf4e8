"""My bets' "Provider rounds" section (rounds of games from game providers) and one
provider round's recall page: its calls in readable form, amounts and fairness check."""

from __future__ import annotations

from typing import Any

import reflex as rx

from casino_app.ui import routes, styles
from casino_app.ui.components.forms import card
from casino_app.ui.components.tables import table
from casino_app.ui.layout import page_title, player_page
from casino_app.ui.state.provider_rounds import (
    CallRow,
    ProviderRoundRow,
    ProviderRoundsState,
    ProviderRoundState,
)


def _fair_badge(state: rx.Var) -> rx.Component:
    return rx.badge(rx.match(state, ("ok", "verified"), ("mismatch", "mismatch"),
                             ("pending", "checking"), ("none", "—"), state),
                    color_scheme=rx.match(state, ("ok", "green"), ("mismatch", "red"),
                                          ("pending", "amber"), "gray"))


def _row(r: ProviderRoundRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.text(r.when, size="1", white_space="nowrap")),
        rx.table.cell(rx.text(r.game), rx.text(r.provider, size="1", color=styles.MUTED)),
        rx.table.cell(rx.text(r.staked, white_space="nowrap")),
        rx.table.cell(rx.text(r.paid, white_space="nowrap")),
        rx.table.cell(rx.text(r.net, white_space="nowrap",
                              color=rx.cond(r.won, styles.SUCCESS, styles.MUTED))),
        rx.table.cell(rx.badge(r.state, color_scheme=rx.cond(r.state == "open", "amber",
                                                             "gray"))),
        rx.table.cell(_fair_badge(r.fair_state)),
        rx.table.cell(rx.link("Details", href=r.link,
                              aria_label="Provider round " + r.id.to_string())),
        class_name="provider-round-row")


def provider_rounds_section() -> rx.Component:
    """The section of My bets; shown once the player has a provider round."""
    s = ProviderRoundsState
    return rx.cond(s.rows.length() > 0, rx.vstack(
        rx.heading("Provider rounds", size="5"),
        rx.text("Rounds of games from our game providers, newest first.", size="2",
                color=styles.MUTED),
        table(("Time", "Game", "Staked", "Paid", "Net", "Round", "Fairness", ""), s.rows,
              _row, size="1", id="provider-rounds"),
        rx.cond(s.more, rx.button("Older rounds", variant="soft", on_click=s.older)),
        spacing="3", width="100%", align="start", id="provider-rounds-section"))


def _kv(label: str, value: Any, mono: bool = False, **props: Any) -> rx.Component:
    return rx.hstack(
        rx.text(label, color=styles.MUTED, min_width="150px"),
        rx.code(value, word_break="break-all", **props) if mono
        else rx.text(value, weight="medium", word_break="break-all", **props),
        wrap="wrap", width="100%", align="baseline")


def _call(c: CallRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.text(c.at, size="1", white_space="nowrap")),
        rx.table.cell(c.action),
        rx.table.cell(c.moved),
        rx.table.cell(rx.badge(rx.cond(c.ok, "accepted", c.status),
                               color_scheme=rx.cond(c.ok, "green", "red"))),
        class_name="provider-call-row")


def _recall() -> rx.Component:
    d = ProviderRoundState.detail
    return rx.vstack(
        page_title(d.game + " round #" + d.id.to_string(), d.opened + " UTC · " + d.provider),
        rx.grid(
            card(rx.vstack(
                rx.heading("Round", size="4"),
                _kv("State", rx.badge(d.state, color_scheme=rx.cond(d.state == "open",
                                                                    "amber", "gray"))),
                _kv("Staked", d.staked),
                _kv("Paid", d.paid),
                _kv("Net", d.net),
                _kv("Closed", rx.cond(d.closed != "", d.closed + " UTC", "not yet")),
                spacing="2", align="start", width="100%")),
            card(rx.vstack(
                rx.heading("Fairness", size="4"),
                _kv("Scheme", rx.cond(d.fair_scheme != "", d.fair_scheme, "none published")),
                rx.cond(d.seed_hash != "", _kv("Commitment", d.seed_hash, mono=True)),
                rx.cond(d.seed != "", _kv("Revealed seed", d.seed, mono=True,
                                          id="provider-round-seed")),
                _kv("Check", _fair_badge(d.fair_state)),
                rx.text(d.fair_summary, size="2", id="provider-round-fair"),
                spacing="2", align="start", width="100%")),
            columns=rx.breakpoints(initial="1", md="2"), spacing="4", width="100%"),
        rx.heading("Calls", size="4"),
        rx.text("What the provider asked of your wallet during the round, and our answer.",
                size="2", color=styles.MUTED),
        table(("Time", "Call", "Moved", "Answer"), ProviderRoundState.calls, _call,
              size="1", id="provider-round-calls"),
        spacing="4", width="100%")


@player_page(routes.PROVIDER_ROUND, "Provider round", signed_in=True,
             on_load=[ProviderRoundState.on_open])
def provider_round() -> rx.Component:
    return rx.vstack(
        rx.link("← My bets", href=routes.BETS),
        rx.cond(ProviderRoundState.detail, _recall(),
                rx.cond(ProviderRoundState.loaded,
                        rx.callout("Round not found. You can only open your own rounds.",
                                   icon="search_x", color_scheme="gray", role="alert"),
                        rx.spinner())),
        spacing="3", width="100%")
