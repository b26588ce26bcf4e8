"""Fairness: the player's seeds (hashes, client seed, nonce, rotation, revealed seeds) and
the verifier, which recomputes an outcome entirely in the browser.

The verifier loads ``/verifier.js`` (assets/verifier.js, Web Crypto) and
``/verify-page.js``, which fills the form from the link's query string and runs the
verification when its button is clicked, with no server at all (so it works offline,
from the service worker's cache; a Reflex event would wait for the socket). The result is
written into the page with DOM text nodes (never HTML), so values from a shared link
cannot inject markup.
"""

from __future__ import annotations

import reflex as rx

from casino_app.games.house import GAMES
from casino_app.ui import routes, styles
from casino_app.ui.components.copy import long_value
from casino_app.ui.components.forms import card, field, form, form_message, notice, submit
from casino_app.ui.layout import page_title, player_page
from casino_app.ui.state.fairness import FairnessState, RevealedRow, VerifyState


def _kv(label: str, value: rx.Var | str, what: str = "", **props: object) -> rx.Component:
    """A labelled value; a long one (``what`` names it) wraps and has a copy button."""
    return rx.vstack(rx.text(label, color=styles.MUTED, size="2"),
                     long_value(value, what, **props) if what
                     else rx.code(value, word_break="break-all", **props),
                     spacing="1", align="start", width="100%", min_width="0")


def _rotate_dialog() -> rx.Component:
    return rx.alert_dialog.root(
        rx.alert_dialog.trigger(rx.button("Rotate seeds", variant="soft",
                                          disabled=~rx.State.is_hydrated
                                          | FairnessState.in_use)),
        rx.alert_dialog.content(
            rx.alert_dialog.title("Rotate your seed pair?"),
            rx.alert_dialog.description(
                "Your current server seed is revealed so you can verify every bet made "
                "with it; the next server seed becomes active with a new random client "
                "seed, and the nonce starts again at 0."),
            rx.hstack(
                rx.alert_dialog.cancel(rx.button("Cancel", variant="soft", color_scheme="gray")),
                rx.alert_dialog.action(rx.button("Rotate", on_click=FairnessState.rotate)),
                spacing="3", justify="end", margin_top="16px"),
        ),
    )


def _revealed_row(r: RevealedRow) -> rx.Component:
    """One revealed pair as a card (64-character seeds do not fit a table's cell on a
    phone): each long value wraps and has its copy button."""
    return rx.vstack(
        _kv("Server seed hash", r.server_seed_hash, "server seed hash", size="1"),
        rx.cond(r.withheld,
                rx.vstack(rx.text("Server seed", color=styles.MUTED, size="2"),
                          rx.text("Hidden until your open round ends", size="1"),
                          spacing="1"),
                _kv("Server seed", r.server_seed, "server seed", size="1",
                    class_name="revealed-seed")),
        _kv("Client seed", r.client_seed, "client seed", size="1"),
        rx.flex(rx.text("Bets: ", rx.text.strong(r.bets, class_name="revealed-bets"),
                        size="2"),
                rx.text("Revealed ", r.revealed_at, size="2", color=styles.MUTED),
                rx.cond(r.verify != "", rx.link("Verify first bet", href=r.verify,
                                                size="2")),
                rx.cond(r.first_bet != "", rx.link("Open that bet", href=r.first_bet,
                                                   size="2")),
                gap="8px 16px", wrap="wrap", align="baseline"),
        spacing="2", width="100%", class_name="revealed-row",
        style={"border_top": f"1px solid {styles.BORDER}", "padding_top": "12px"},
    )


@player_page(routes.FAIRNESS, "Fairness", signed_in=True, on_load=[FairnessState.on_open])
def fairness() -> rx.Component:
    return rx.vstack(
        page_title("Provably fair", "Every outcome comes from a server seed we commit to "
                   "(you see its hash before you bet), your client seed and a nonce."),
        notice(FairnessState.notice),
        form_message(FairnessState.message),
        rx.cond(~FairnessState.loaded, rx.spinner()),
        card(rx.vstack(
            rx.heading("Your seeds", size="4"),
            _kv("Active server seed (hash)", FairnessState.server_seed_hash,
                "active server seed hash", id="active-hash"),
            _kv("Next server seed (hash)", FairnessState.next_server_seed_hash,
                "next server seed hash", id="next-hash"),
            _kv("Client seed", FairnessState.client_seed, "client seed", id="client-seed"),
            _kv("Nonce (bets made with this pair)", FairnessState.nonce, id="nonce"),
            rx.text("The active server seed stays secret until you rotate; then it is "
                    "revealed here and the next one becomes active.", size="2",
                    color=styles.MUTED),
            rx.cond(FairnessState.in_use,
                    rx.callout("A Mines round drawn from these seeds is open: finish it "
                               "(cash out or hit a mine) before you rotate or change your "
                               "client seed. Revealing the server seed now would show "
                               "where its mines are.", icon="info", size="1",
                               id="seeds-in-use")),
            _rotate_dialog(),
            spacing="3", align="start", width="100%")),
        card(rx.vstack(
            rx.heading("Change your client seed", size="4"),
            rx.fragment(form(rx.vstack(
                field("New client seed", "client_seed", required=True, max_length=64,
                      errors={"client_seed": FairnessState.error}, form_id="fair",
                      default_value=FairnessState.client_seed, auto_complete="off",
                      hint="1 to 64 printable characters, no spaces. Saving rotates your "
                           "seed pair: the current server seed is revealed."),
                submit("Save and rotate", disabled=FairnessState.in_use),
                spacing="3", width="100%"),
                on_submit=FairnessState.save_client_seed, reset_on_submit=False),
                key=FairnessState.form_key.to_string()),
            spacing="3", align="start", width="100%")),
        card(rx.vstack(
            rx.heading("Revealed seeds", size="4"),
            rx.cond(FairnessState.revealed.length() > 0,
                    rx.vstack(rx.foreach(FairnessState.revealed, _revealed_row),
                              spacing="3", width="100%", id="revealed-seeds"),
                    rx.text("None yet: rotate your seeds to reveal the current one.",
                            color=styles.MUTED)),
            rx.link("Open the verifier", href=routes.VERIFY),
            spacing="3", align="start", width="100%")),
        spacing="4", width="100%")


# --- verifier --------------------------------------------------------------------------------




def _vfield(label: str, name: str, hint: str = "", **attrs: object) -> rx.Component:
    return rx.vstack(
        rx.el.label(label, html_for=f"vf-{name}",
                    style={"font_weight": "600", "font_size": "14px"}),
        rx.input(id=f"vf-{name}", name=name, size="3", width="100%",
                 default_value=VerifyState.values[name], auto_complete="off",
                 spell_check=False, **attrs),
        rx.cond(hint != "", rx.text(hint, size="1", color=styles.MUTED)) if hint
        else rx.fragment(),
        spacing="1", width="100%", align="start")


def _verify_form() -> rx.Component:
    return rx.vstack(
        rx.vstack(
            rx.el.label("Game", html_for="vf-game",
                        style={"font_weight": "600", "font_size": "14px"}),
            rx.el.select(*[rx.el.option(g.title, value=name) for name, g in GAMES.items()],
                         id="vf-game", name="game", default_value=VerifyState.values["game"],
                         style={"padding": "8px", "border_radius": "8px",
                                "background_color": styles.SURFACE_2, "color": styles.TEXT,
                                "border": f"1px solid {styles.BORDER}"}),
            spacing="1", align="start"),
        _vfield("Server seed", "server_seed", "64 hexadecimal characters, as revealed on "
                "the fairness page.", max_length=64),
        _vfield("Client seed", "client_seed", max_length=64),
        _vfield("Nonce", "nonce", input_mode="numeric", max_length=19),
        rx.grid(
            _vfield("Rows (plinko)", "rows", input_mode="numeric", max_length=2),
            _vfield("Mines (mines)", "mines", input_mode="numeric", max_length=2),
            _vfield("Your picks (keno, optional)", "picks", max_length=40),
            columns=rx.breakpoints(initial="1", sm="3"), spacing="3", width="100%"),
        _vfield("Committed server seed hash (optional)", "hash",
                "Shown before you bet; the verifier checks the seed against it.",
                max_length=64),
        # run by assets/verify-page.js in the browser (a click listener of its own: it
        # works with no connection to the server)
        rx.button("Verify", size="3", type="button", id="verify-run"),
        spacing="3", width="100%", align="start")


@player_page(routes.VERIFY, "Verifier", on_load=[VerifyState.on_open])
def verify() -> rx.Component:
    return rx.vstack(
        rx.script(src="/verifier.js"),
        rx.script(src="/verify-page.js"),
        page_title("Verifier", "Recompute any round from its seeds. This runs entirely in "
                   "your browser: nothing is sent to HashHouse."),
        # no wait for the server: the form fills itself from the link (verify-page.js),
        # so the verifier works offline from the service worker's cache
        card(_verify_form()),
        card(rx.vstack(
            rx.text("Fill in the seeds and press Verify: the result appears below.",
                    color=styles.MUTED),
            # filled by verify-page.js; React renders no children here, so it never
            # touches the nodes the script puts in
            rx.el.div(id="verify-output", aria_live="polite", style={"width": "100%"}),
            spacing="2", width="100%", align="start")),
        rx.text("The same computation, in Python: ", rx.code("casino verify"),
                ". Any verifier for the widely used Stake scheme gives the same result.",
                size="2", color=styles.MUTED),
        spacing="4", width="100%", max_width="860px")
