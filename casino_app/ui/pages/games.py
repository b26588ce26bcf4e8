"""One page per house game, made for a thumb on a 360 px phone: the board, the result,
the controls with the Bet button at the bottom, and this tab's last bets of the game.

The bet key is made in the browser at click time (``BET_KEY``, a JavaScript expression
passed as the event argument): a websocket reconnect that resends the event carries the
same key, and the bet service answers a repeated key with the first bet.

Number boxes use the default text keyboard, not ``inputmode="decimal"``: some phone
keyboards then offer only a comma, and amounts take a dot (``parse_decimal``); a comma
typed anyway is refused at once with the reason under the box.
"""

from __future__ import annotations

from typing import Any

import reflex as rx
from reflex_base.utils.imports import ImportVar

from casino_app.games.house import GAMES
from casino_app.ui import routes, styles
from casino_app.ui.components.connection import OFFLINE
from casino_app.ui.components.forms import card
from casino_app.ui.layout import currency_select, player_page
from casino_app.ui.state.games import (
    KENO_RISKS,
    PLINKO_RISKS,
    PLINKO_ROWS,
    BetRow,
    Bucket,
    Cell,
    GameState,
    PegRow,
)
from casino_app.ui.state.wallet import WalletState

# A fresh random id per click, evaluated by the browser when the event is sent
# (crypto.randomUUID needs a secure context; getRandomValues works everywhere).
_RANDOM_KEY_JS = (
    "(globalThis.crypto && globalThis.crypto.randomUUID ? globalThis.crypto.randomUUID() "
    ": Array.from(globalThis.crypto.getRandomValues(new Uint8Array(16)), "
    "(b) => b.toString(16).padStart(2, \"0\")).join(\"\"))")
BET_KEY: rx.Var = rx.Var(_js_expr=_RANDOM_KEY_JS, _var_type=str)

# Short animations only (<= 350 ms); none for people who ask for reduced motion.
_CSS = """
@keyframes hh-pop{from{transform:scale(.9);opacity:.4}to{transform:none;opacity:1}}
@keyframes hh-drop{from{left:50%;top:0}to{left:var(--x);top:calc(100% - 12px)}}
.hh-pop{animation:hh-pop .25s ease-out}
.hh-drop{animation:hh-drop .35s ease-in both}
.hh-move{transition:left .3s ease-out,background-color .25s,opacity .25s}
@media (prefers-reduced-motion: reduce){.hh-pop,.hh-drop,.hh-move{animation:none!important;transition:none!important}}
"""

# the result card and its placeholder (by breakpoint, as the card's padding): the layout
# never jumps
_RESULT_HEIGHT = ["104px", "112px", "120px"]

_SELECT_STYLE = {"background_color": styles.SURFACE_2, "color": styles.TEXT,
                 "border": f"1px solid {styles.BORDER}", "border_radius": "8px",
                 "padding": "8px", "font_size": "16px", "width": "100%", "min_height": "44px"}


def _label(text: str, html_for: str) -> rx.Component:
    return rx.el.label(text, html_for=html_for,
                       style={"font_weight": "600", "font_size": "14px"})


def _select(label: str, sid: str, options: list[tuple[str, str]], value: Any,
            on_change: Any, disabled: Any = False) -> rx.Component:
    return rx.vstack(
        _label(label, sid),
        rx.el.select(*[rx.el.option(text, value=v) for v, text in options], id=sid,
                     value=value, on_change=on_change, disabled=disabled,
                     style=_SELECT_STYLE),
        spacing="1", width="100%", align="start")


def _stat(label: str, value: Any, vid: str) -> rx.Component:
    return rx.vstack(rx.text(label, size="1", color=styles.MUTED),
                     rx.text(value, id=vid, weight="bold", size="3"),
                     spacing="0", align="start")


# --- shared controls --------------------------------------------------------------------

def _amount() -> rx.Component:
    return rx.vstack(
        _label("Amount", "bet-amount"),
        rx.hstack(
            rx.input(id="bet-amount", value=GameState.amount, on_change=GameState.edit_amount,
                     auto_complete="off", size="3", flex="1", min_width="0", max_length=40,
                     spell_check=False, aria_invalid=GameState.amount_error != "",
                     aria_describedby="bet-amount-error bet-error"),
            rx.button("½", on_click=GameState.half_amount, variant="soft", size="3",
                      aria_label="Halve the amount", type="button", id="bet-half"),
            rx.button("2×", on_click=GameState.double_amount, variant="soft", size="3",
                      aria_label="2× (double the amount)", type="button", id="bet-double"),
            currency_select("Bet currency", "bet-currency",
                            style={"min_height": "40px", "font_size": "16px"}),
            spacing="2", width="100%", align="center"),
        # said while typing, before any bet is sent: "0,05" is refused, never read as 5
        rx.cond(GameState.amount_error != "",
                rx.text(GameState.amount_error, id="bet-amount-error", role="alert",
                        size="2", color=styles.DANGER)),
        spacing="1", width="100%", align="start")


def _top_up() -> rx.Component:
    return rx.cond(
        WalletState.is_fun & WalletState.fun_low & WalletState.loaded,
        rx.callout(
            rx.hstack(rx.text("Your play money is low."),
                      rx.button("Top up play money", size="2", type="button",
                                on_click=[WalletState.top_up(BET_KEY),
                                          GameState.follow_currency("")]),
                      align="center", wrap="wrap", spacing="3"),
            icon="coins", color_scheme="amber", width="100%"),
    )


def _errors() -> rx.Component:
    return rx.fragment(
        rx.cond(GameState.error != "",
                rx.callout(GameState.error, id="bet-error", icon="triangle_alert",
                           color_scheme="red", role="alert", width="100%")),
        rx.cond(WalletState.message != "",
                rx.callout(WalletState.message, icon="triangle_alert", color_scheme="red",
                           role="alert", width="100%")),
    )


class _Hotkeys(rx.Fragment):
    """Desktop keys as Stake players know them: Space bets, A halves and S doubles the
    amount. They press the page's own buttons (so a disabled Bet stays disabled), never
    while typing in a field or with a modifier, and Space on a focused button keeps its
    usual meaning. Compiled page code: renders nothing."""

    def add_hooks(self) -> list[str | rx.Var]:
        return ["""useEffect(() => {
  const keys = {" ": "bet-button", "a": "bet-half", "s": "bet-double"};
  const onKey = (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || e.repeat) return;
    const t = e.target;
    if (t && (/^(INPUT|SELECT|TEXTAREA|BUTTON|A)$/.test(t.tagName) || t.isContentEditable)) return;
    const id = keys[(e.key || "").toLowerCase()];
    const button = id && document.getElementById(id);
    if (!button || button.disabled) return;
    e.preventDefault();
    button.click();
  };
  window.addEventListener("keydown", onKey);
  return () => window.removeEventListener("keydown", onKey);
}, []);"""]

    def add_imports(self) -> dict[str, Any]:
        return {"react": [ImportVar(tag="useEffect")]}


def _bet_button(label: str = "Bet", disabled: Any = False) -> rx.Component:
    return rx.button(label, id="bet-button", type="button", size="4", width="100%",
                     on_click=GameState.bet(BET_KEY),
                     disabled=~rx.State.is_hydrated | ~GameState.can_bet | OFFLINE
                     | disabled)


def _result() -> rx.Component:
    """The last result, popping in briefly (a new key restarts the animation). Its box is
    there before the first bet too, at the same height, so nothing below it (on a phone:
    the Bet button) moves when a result appears."""
    return rx.cond(
        GameState.has_result,
        rx.hstack(
            rx.vstack(rx.text(GameState.result_text, id="result-text", size="3"),
                      rx.cond(GameState.result_id > 0,
                              rx.link(f"Bet #{GameState.result_id}", id="result-bet",
                                      href=f"{routes.BET}?id={GameState.result_id}",
                                      size="1")),
                      spacing="0", align="start", min_width="0"),
            rx.spacer(),
            rx.vstack(rx.text(GameState.result_mult, size="5", weight="bold"),
                      rx.text(GameState.result_profit, id="result-profit", size="2",
                              white_space="nowrap",
                              color=rx.cond(GameState.result_won, styles.SUCCESS,
                                            styles.MUTED)),
                      rx.cond(GameState.result_label != "",
                              rx.text(GameState.result_label, id="result-label", size="1",
                                      color=styles.MUTED)),
                      spacing="0", align="end"),
            key=GameState.result_seq, class_name="hh-pop", id="result", role="status",
            width="100%", align="center", min_height=_RESULT_HEIGHT,
            style={**styles.card, "border_color": rx.cond(GameState.result_won,
                                                          styles.SUCCESS, styles.BORDER)},
        ),
        rx.center(rx.text("Your result shows here.", size="2", color=styles.MUTED),
                  id="result-placeholder", width="100%", min_height=_RESULT_HEIGHT,
                  style={**styles.card, "border_style": "dashed"}),
    )


def _history_row(row: BetRow) -> rx.Component:
    return rx.link(
        rx.hstack(rx.text("#", row.id, size="1", color=styles.MUTED, min_width="52px"),
                  rx.text(row.outcome, size="2", flex="1", overflow="hidden",
                          white_space="nowrap", text_overflow="ellipsis"),
                  rx.text(row.mult, size="2", min_width="64px", text_align="right",
                          display=["none", "block"]),
                  rx.vstack(
                      rx.text(row.profit, size="2", text_align="right",
                              color=rx.cond(row.won, styles.SUCCESS, styles.MUTED)),
                      rx.cond(row.fx_profit != "",
                              rx.text(row.fx_profit, size="1", color=styles.MUTED,
                                      white_space="nowrap", class_name="fx")),
                      spacing="0", align="end", min_width="96px"),
                  width="100%", align="center", spacing="2"),
        href=row.href, underline="none", color=styles.TEXT, width="100%",
        style={"padding": "8px 4px", "border_bottom": f"1px solid {styles.BORDER}"},
        class_name="bet-row")


def _history() -> rx.Component:
    return rx.cond(
        GameState.game_rows.length() > 0,
        card(rx.heading("Your last bets here", size="3", margin_bottom="8px"),
             rx.vstack(rx.foreach(GameState.game_rows, _history_row), spacing="0",
                       width="100%", id="bet-history"),
             rx.link("All my bets", href=routes.BETS, size="2", margin_top="8px")),
    )


def _game_page(name: str, board: rx.Component, controls: rx.Component,
               action: rx.Component | None = None) -> rx.Component:
    game = GAMES[name]
    return rx.vstack(
        rx.el.style(_CSS),
        _Hotkeys.create(),
        rx.hstack(rx.link("← Lobby", href=routes.HOME, size="2"), rx.spacer(),
                  rx.link("Fairness", href=routes.FAIRNESS, size="2"), width="100%"),
        rx.vstack(rx.heading(game.title, size="7"),
                  rx.text(game.description, color=styles.MUTED, size="2"),
                  spacing="1", align="start"),
        rx.grid(
            rx.vstack(card(board), _result(), spacing="3", width="100%"),
            card(rx.vstack(controls, _amount(), _top_up(), _errors(),
                           action if action is not None else _bet_button(),
                           rx.text("Keys: Space bets · A halves · S doubles the amount",
                                   size="1", color=styles.MUTED, id="hotkeys",
                                   display=["none", "none", "block"]),
                           spacing="3", width="100%")),
            columns=rx.breakpoints(initial="1", md="2"), spacing="4", width="100%"),
        _history(),
        spacing="4", width="100%",
    )


# --- dice -------------------------------------------------------------------------------


def _target_box(box_id: str, value: Any, on_change: Any, allowed: Any) -> rx.Component:
    """A target box checked as it is typed: the allowed range beside it, and a target the
    game does not take is said at once (the Bet button is off until it is one)."""
    return rx.vstack(
        rx.input(id=box_id, value=value, on_change=on_change,
                 on_blur=GameState.tidy_targets, size="3", width="100%",
                 auto_complete="off", spell_check=False, max_length=40,
                 aria_invalid=GameState.target_error != "",
                 aria_describedby=f"{box_id}-range {box_id}-error"),
        rx.text("Allowed: ", allowed, id=f"{box_id}-range", size="1", color=styles.MUTED),
        rx.cond(GameState.target_error != "",
                rx.text(GameState.target_error, id=f"{box_id}-error", role="alert",
                        size="2", color=styles.DANGER)),
        spacing="1", width="100%", align="start")


def _dice_board() -> rx.Component:
    over = GameState.dice_direction == "over"
    t = GameState.dice_target_value.to_string() + "%"
    gradient = rx.cond(
        over,
        f"linear-gradient(90deg, {styles.DANGER} 0 " + t + f", {styles.SUCCESS} " + t
        + " 100%)",
        f"linear-gradient(90deg, {styles.SUCCESS} 0 " + t + f", {styles.DANGER} " + t
        + " 100%)")
    return rx.vstack(
        rx.box(
            rx.box(rx.cond(GameState.dice_roll >= 0,
                           rx.text(GameState.dice_roll_text, size="2", weight="bold",
                                   style={"transform": "translate(-50%, -26px)",
                                          "white_space": "nowrap"})),
                   class_name="hh-move",
                   style={"position": "absolute", "top": "-4px", "left": GameState.dice_roll_left,
                          "width": "4px", "height": "20px", "margin_left": "-2px",
                          "background_color": styles.TEXT, "border_radius": "2px",
                          "opacity": rx.cond(GameState.dice_roll >= 0, "1", "0")}),
            style={"position": "relative", "height": "12px", "border_radius": "6px",
                   "background": gradient, "margin_top": "36px", "width": "100%"}),
        rx.hstack(rx.text("0", size="1"), rx.spacer(), rx.text("50", size="1"), rx.spacer(),
                  rx.text("100", size="1"), width="100%", color=styles.MUTED),
        rx.hstack(_stat("Win chance", GameState.dice_chance, "dice-chance"),
                  _stat("Multiplier", GameState.dice_multiplier, "dice-multiplier"),
                  _stat("Target", GameState.dice_target, "dice-target-shown"),
                  width="100%", justify="between"),
        spacing="3", width="100%")


def _dice_controls() -> rx.Component:
    return rx.vstack(
        rx.segmented_control.root(
            rx.segmented_control.item("Roll over", value="over"),
            rx.segmented_control.item("Roll under", value="under"),
            value=GameState.dice_direction, on_change=GameState.choose_direction,
            width="100%", size="3", aria_label="Direction"),
        _label("Target", "dice-target"),
        rx.slider(value=[GameState.dice_target_value], min=0, max=100, step=1,
                  on_change=GameState.set_dice_slider.throttle(80),
                  on_value_commit=GameState.set_dice_slider, aria_label="Target slider",
                  size="3"),
        _target_box("dice-target", GameState.dice_target_text, GameState.edit_dice_target,
                    GameState.dice_range),
        spacing="2", width="100%", align="start")


@player_page(routes.game("dice"), "Dice", signed_in=True,
             on_load=[GameState.open_game("dice")])
def dice_page() -> rx.Component:
    return _game_page("dice", _dice_board(), _dice_controls())


# --- limbo ------------------------------------------------------------------------------

def _limbo_board() -> rx.Component:
    return rx.center(
        rx.vstack(
            rx.cond(GameState.has_result,
                    rx.text(GameState.result_text, key=GameState.result_seq,
                            class_name="hh-pop", size="8", weight="bold",
                            color=rx.cond(GameState.result_won, styles.SUCCESS,
                                          styles.DANGER)),
                    rx.text("?.??×", size="8", weight="bold", color=styles.MUTED)),
            rx.hstack(_stat("Target", GameState.limbo_target + "×", "limbo-target-shown"),
                      _stat("Win chance", GameState.limbo_chance, "limbo-chance"),
                      spacing="6"),
            align="center", spacing="3"),
        min_height="160px", width="100%")


def _limbo_controls() -> rx.Component:
    return rx.vstack(
        _label("Target multiplier", "limbo-target"),
        _target_box("limbo-target", GameState.limbo_target_text,
                    GameState.edit_limbo_target, GameState.limbo_range),
        spacing="1", width="100%", align="start")


@player_page(routes.game("limbo"), "Limbo", signed_in=True,
             on_load=[GameState.open_game("limbo")])
def limbo_page() -> rx.Component:
    return _game_page("limbo", _limbo_board(), _limbo_controls())


# --- plinko -----------------------------------------------------------------------------

def _peg_row(row: PegRow) -> rx.Component:
    return rx.hstack(
        rx.foreach(row.pegs, lambda _: rx.box(width="5px", height="5px", border_radius="50%",
                                              background_color=styles.MUTED)),
        justify="between", style={"width": row.width, "margin": "0 auto"})


def _bucket(b: Bucket) -> rx.Component:
    return rx.box(rx.text(b.label, style={"font_size": "9px", "letter_spacing": "-0.3px"}),
                  class_name="hh-move plinko-bucket",
                  data_hit=rx.cond(b.hit, "true", "false"),
                  style={"flex": "1 1 0", "min_width": "0", "text_align": "center",
                         "padding": "4px 0", "border_radius": "4px", "overflow": "hidden",
                         "white_space": "nowrap",
                         "background_color": rx.cond(b.hit, styles.ACCENT, styles.SURFACE_2),
                         "color": rx.cond(b.hit, styles.BG, styles.TEXT)})


def _plinko_board() -> rx.Component:
    return rx.vstack(
        rx.box(
            rx.vstack(rx.foreach(GameState.plinko_peg_rows, _peg_row), spacing="2",
                      width="100%", padding_y="6px"),
            rx.cond(GameState.plinko_bucket >= 0,
                    rx.box(key=GameState.result_seq, class_name="hh-drop",
                           style={"position": "absolute", "--x": GameState.plinko_ball_left,
                                  "left": "var(--x)", "top": "calc(100% - 12px)",
                                  "width": "12px", "height": "12px", "margin_left": "-6px",
                                  "border_radius": "50%",
                                  "background_color": styles.ACCENT})),
            style={"position": "relative", "width": "100%"}),
        rx.hstack(rx.foreach(GameState.plinko_buckets, _bucket), spacing="1", width="100%",
                  id="plinko-buckets"),
        spacing="1", width="100%")


def _plinko_controls() -> rx.Component:
    return rx.grid(
        _select("Rows", "plinko-rows", [(str(r), str(r)) for r in PLINKO_ROWS],
                GameState.plinko_rows.to_string(), GameState.choose_plinko_rows),
        _select("Risk", "plinko-risk", [(r, r.title()) for r in PLINKO_RISKS],
                GameState.plinko_risk, GameState.choose_plinko_risk),
        columns="2", spacing="3", width="100%")


@player_page(routes.game("plinko"), "Plinko", signed_in=True,
             on_load=[GameState.open_game("plinko")])
def plinko_page() -> rx.Component:
    return _game_page("plinko", _plinko_board(), _plinko_controls())


# --- keno -------------------------------------------------------------------------------

# a drawn square the player did not pick is clearly drawn too: a red ring on a red tint
_KENO_BG = {"hit": styles.SUCCESS, "picked": styles.ACCENT, "miss": "#5a2a35"}


def _keno_square(cell: Cell) -> rx.Component:
    return rx.el.button(
        cell.n, type="button", on_click=GameState.keno_toggle(cell.n),
        aria_pressed=rx.cond((cell.kind == "picked") | (cell.kind == "hit"), "true", "false"),
        aria_label="Square " + cell.n.to_string()
        + rx.match(cell.kind, ("hit", ", picked, drawn: a hit"), ("miss", ", drawn"),
                   ("picked", ", picked"), "").to(str),
        class_name="hh-move keno-square", data_kind=cell.kind,
        style={"aspect_ratio": "1", "width": "100%", "border_radius": "8px",
               "border": rx.cond(cell.kind == "miss", f"2px solid {styles.DANGER}",
                                 f"1px solid {styles.BORDER}"),
               "font_weight": "700",
               "font_size": "14px", "cursor": "pointer",
               "background_color": rx.match(cell.kind, ("hit", _KENO_BG["hit"]),
                                            ("picked", _KENO_BG["picked"]),
                                            ("miss", _KENO_BG["miss"]), styles.SURFACE_2),
               "color": rx.cond((cell.kind == "hit") | (cell.kind == "picked"), styles.BG,
                                styles.TEXT)})


def _keno_board() -> rx.Component:
    return rx.vstack(
        rx.grid(rx.foreach(GameState.keno_cells, _keno_square), columns="8", spacing="1",
                width="100%", id="keno-grid"),
        rx.cond(GameState.keno_payouts.length() > 0,
                rx.flex(rx.foreach(GameState.keno_payouts,
                                   lambda p: rx.badge(p, variant="surface")),
                        wrap="wrap", gap="4px")),
        spacing="3", width="100%")


def _keno_controls() -> rx.Component:
    return rx.vstack(
        rx.hstack(rx.text("Picked ", GameState.keno_picks.length(), " of 10", size="2"),
                  rx.spacer(),
                  rx.button("Clear", on_click=GameState.keno_clear, variant="soft",
                            size="2", type="button"),
                  width="100%", align="center"),
        _select("Risk", "keno-risk", [(r, r.title()) for r in KENO_RISKS],
                GameState.keno_risk, GameState.choose_keno_risk),
        spacing="2", width="100%")


@player_page(routes.game("keno"), "Keno", signed_in=True,
             on_load=[GameState.open_game("keno")])
def keno_page() -> rx.Component:
    return _game_page("keno", _keno_board(),
                      _keno_controls(),
                      _bet_button(disabled=GameState.keno_picks.length() == 0))


# --- mines ------------------------------------------------------------------------------

def _mine_tile(cell: Cell) -> rx.Component:
    return rx.el.button(
        rx.match(cell.kind,
                 ("safe", rx.icon("gem", size=22)),
                 ("boom", rx.icon("bomb", size=22)),
                 ("mine", rx.icon("bomb", size=18)),
                 rx.fragment()),
        type="button", on_click=GameState.reveal(cell.n),
        disabled=~GameState.mines_open | (cell.kind != "hidden"),
        aria_label="Tile " + (cell.n + 1).to_string(), class_name="hh-move mines-tile",
        data_kind=cell.kind,
        style={"aspect_ratio": "1", "width": "100%", "border_radius": "10px",
               "border": f"1px solid {styles.BORDER}", "display": "flex",
               "align_items": "center", "justify_content": "center",
               "cursor": rx.cond(GameState.mines_open & (cell.kind == "hidden"), "pointer",
                                 "default"),
               "background_color": rx.match(cell.kind, ("safe", "#1f5f4a"),
                                            ("boom", styles.DANGER), ("mine", "#3a2630"),
                                            rx.cond(GameState.mines_open, "#2a3a48",
                                                    styles.SURFACE_2)),
               "color": rx.match(cell.kind, ("safe", styles.SUCCESS), ("boom", styles.BG),
                                 styles.DANGER)})


def _mines_board() -> rx.Component:
    return rx.vstack(
        rx.grid(rx.foreach(GameState.mines_cells, _mine_tile), columns="5", spacing="2",
                width="100%", id="mines-grid"),
        rx.cond(GameState.mines_open,
                rx.text("Round in play: pick a tile or cash out at ", GameState.mines_next,
                        id="mines-status", size="2", color=styles.MUTED),
                rx.text("Choose the number of mines and start a round.", size="2",
                        color=styles.MUTED)),
        spacing="3", width="100%")


def _mines_controls() -> rx.Component:
    return _select("Mines", "mines-count", [(str(n), str(n)) for n in range(1, 25)],
                   GameState.mines_count.to_string(), GameState.choose_mines,
                   disabled=GameState.mines_open)


def _mines_action() -> rx.Component:
    return rx.cond(
        GameState.mines_open,
        rx.button("Cash out ", GameState.mines_next, id="cash-out", type="button",
                  size="4", width="100%", color_scheme="green", high_contrast=True,
                  on_click=GameState.cash_out,
                  disabled=~rx.State.is_hydrated | (GameState.mines_revealed.length() == 0)),
        _bet_button("Start round"),
    )


@player_page(routes.game("mines"), "Mines", signed_in=True,
             on_load=[GameState.open_game("mines")])
def mines_page() -> rx.Component:
    return _game_page("mines", _mines_board(), _mines_controls(), _mines_action())
