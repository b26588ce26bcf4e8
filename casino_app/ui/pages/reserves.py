"""/reserves: the newest signed proof of reserves; a signed-in player checks their own
leaf and path in the browser (assets/reserves.js, no server call)."""

from __future__ import annotations

import reflex as rx

from casino_app.ui import routes, styles
from casino_app.ui.components.forms import card
from casino_app.ui.layout import page_title, player_page
from casino_app.ui.state.reserves import ReserveRow, ReservesState

# Compiled into the page (rx.run_script with a Var: no eval); results as text nodes.
RUN_CHECK = r"""
(async function () {
  var out = document.getElementById("reserves-result");
  var data = JSON.parse(document.getElementById("reserves-mine").dataset.json || "{}");
  out.textContent = "";
  var line = function (text) {
    var p = document.createElement("p"); p.textContent = text; out.appendChild(p);
  };
  if (!window.HashHouseReserves || !data.leaves) { line("Nothing to check."); return; }
  for (var i = 0; i < data.leaves.length; i++) {
    var leaf = Object.assign({}, data.leaves[i],
                             {player_id: data.player_id, salt: data.salt});
    var r = await window.HashHouseReserves.verifyLeaf(leaf);
    line(leaf.currency + ": " + (r.ok ? "your balance is in the published total"
                                      : "DOES NOT MATCH the published proof"));
    r.steps.forEach(function (s) { line("  " + s); });
  }
})()
"""


def _row(r: ReserveRow) -> rx.Component:
    return card(rx.vstack(
        rx.hstack(rx.heading(r.code, size="4"), rx.spacer(),
                  rx.cond(r.covered,
                          rx.badge("covered", color_scheme="green"),
                          rx.badge("not covered", color_scheme="red")),
                  width="100%"),
        rx.text("Owed to players: ", rx.text.strong(r.owed), " (", r.leaves.to_string(),
                " balances)", size="2"),
        rx.text("Held on chain: ", rx.text.strong(r.held),
                rx.cond(r.block != "", " at " + r.block, ""), size="2"),
        rx.text("Root: ", rx.code(r.root, style={"word_break": "break-all"}), size="1"),
        rx.cond(r.addresses.length() > 0,
                rx.el.details(rx.el.summary("Addresses"),
                              rx.foreach(r.addresses, lambda a: rx.text(
                                  a, size="1", style={"word_break": "break-all"})))),
        spacing="2", align="start", width="100%"), id="reserves-" + r.code)


@player_page(routes.RESERVES, "Proof of reserves", on_load=[ReservesState.load])
def reserves_page() -> rx.Component:
    return rx.vstack(
        rx.script(src="/reserves.js"),
        page_title("Proof of reserves",
                   "What HashHouse owes its players, per currency, beside what its "
                   "addresses hold on chain. Published every hour and signed."),
        rx.cond(~ReservesState.loaded, rx.spinner()),
        rx.cond(ReservesState.loaded & (ReservesState.published_at == ""),
                rx.text("No proof has been published yet.", color=styles.MUTED)),
        rx.cond(ReservesState.published_at != "", rx.vstack(
            rx.text("Published ", ReservesState.published_at, size="2", color=styles.MUTED),
            rx.grid(rx.foreach(ReservesState.rows, _row),
                    columns=rx.breakpoints(initial="1", md="2"), spacing="3", width="100%"),
            card(rx.vstack(
                rx.heading("Check it yourself", size="4"),
                rx.text("Each balance is a leaf of a Merkle-sum tree under an id only its "
                        "owner can recompute (a salt shown to that player alone). The file "
                        "below has every leaf; `casino reserves verify FILE` checks the "
                        "signature, every root and every sum.", size="2"),
                rx.link("Download the signed proof (JSON)", href="/api/reserves/latest.json",
                        is_external=True),
                rx.text("Signed with Ed25519 key ", rx.code(ReservesState.public_key,
                        style={"word_break": "break-all"}), size="1"),
                spacing="2", align="start")),
            rx.cond(
                ReservesState.mine_count > 0,
                card(rx.vstack(
                    rx.heading("Your balances", size="4"),
                    rx.text("Your leaves and their paths to the published roots. The check "
                            "runs in this browser, nothing is sent.", size="2"),
                    rx.box(id="reserves-mine", data_json=ReservesState.mine_json),
                    rx.button("Check my balances", id="reserves-check", type="button",
                              on_click=rx.run_script(rx.Var(_js_expr=RUN_CHECK.strip()))),
                    rx.box(id="reserves-result", aria_live="polite",
                           style={"font_family": "monospace", "font_size": "12px",
                                  "word_break": "break-all"}),
                    spacing="2", align="start", width="100%"))),
            rx.cond(~ReservesState.signed_in,
                    rx.text(rx.link("Sign in", href=routes.login_then(routes.RESERVES), underline="always"),
                            " to check that your own balance is in the proof.", size="2")),
            spacing="4", width="100%", align="start")),
        spacing="4", width="100%", align="start",
    )
