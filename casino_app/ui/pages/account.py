"""The player's account: overview, security (2FA, recovery codes, password), sessions."""

import reflex as rx

from casino_app.ui import routes, styles
from casino_app.ui.components.forms import (
    card,
    code_field,
    form,
    form_message,
    link_button,
    notice,
    password_field,
    submit,
)
from casino_app.ui.components.tables import table
from casino_app.ui.layout import page_title, player_page
from casino_app.ui.state.account import SecurityState, SessionRow, SessionsState
from casino_app.ui.state.loyalty import LoyaltyState, RewardRow
from casino_app.ui.state.session import SessionState


def _row(label: str, value: rx.Var | str) -> rx.Component:
    return rx.hstack(rx.text(label, color=styles.MUTED, min_width="140px"),
                     rx.text(value, weight="medium", word_break="break-all"),
                     wrap="wrap", width="100%")


def _reward(r: RewardRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.text(r.what, size="2")),
        rx.table.cell(rx.text(r.amount, weight="medium", white_space="nowrap")),
        rx.table.cell(rx.vstack(
            rx.badge(r.state_text, color_scheme=rx.match(
                r.state, ("available", "green"), ("held", "amber"), ("paid", "gray"),
                "red")),
            rx.cond(r.note != "", rx.text(r.note, size="1", color=styles.MUTED)),
            spacing="1", align="start")),
        rx.table.cell(rx.cond(r.claimable,
                              rx.button("Claim", size="1", on_click=LoyaltyState.claim(r.id),
                                        aria_label="Claim " + r.what))),
        class_name="reward-row")


def _loyalty() -> rx.Component:
    return card(rx.vstack(
        rx.hstack(rx.heading("VIP: ", LoyaltyState.tier, size="4", id="vip-tier"),
                  rx.spacer(),
                  rx.text(LoyaltyState.rakeback, size="2", color=styles.MUTED),
                  width="100%", wrap="wrap", align="center"),
        rx.progress(value=LoyaltyState.progress, max=100, width="100%",
                    aria_label="Progress to the next tier", id="vip-progress"),
        rx.text(LoyaltyState.volume, size="2"),
        rx.text(LoyaltyState.to_next, size="2", color=styles.MUTED),
        rx.text("Rakeback and tiers count real-money bets only: play money (FUN) earns "
                "neither. This period ends at ", LoyaltyState.period_end,
                "; its rakeback can be claimed a few minutes later.", size="1",
                color=styles.MUTED),
        form_message(LoyaltyState.message),
        rx.cond(LoyaltyState.rows.length() > 0,
                table(("Reward", "Amount", "State", ""), LoyaltyState.rows, _reward,
                      size="1"),
                rx.text("No rewards yet.", size="2", color=styles.MUTED)),
        rx.cond(LoyaltyState.claimable > 1,
                rx.button("Claim all", on_click=LoyaltyState.claim_all, id="claim-all")),
        spacing="3", width="100%", align="start"), role="region", aria_label="VIP and rakeback")


@player_page(routes.ACCOUNT, "Account", signed_in=True, on_load=[LoyaltyState.on_open])
def account() -> rx.Component:
    return rx.vstack(
        page_title("Your account"),
        card(rx.vstack(
            _row("Display name", SessionState.display_name),
            _row("Email", SessionState.email),
            _row("Previous sign-in", rx.cond(SessionState.previous_login != "",
                                             SessionState.previous_login + " from " +
                                             SessionState.previous_login_ip,
                                             "none before this one")),
            _row("Two-factor", rx.cond(SessionState.totp_enabled, "On", "Off")),
            spacing="3")),
        _loyalty(),
        rx.hstack(link_button("Security and 2FA", variant="soft", href=routes.SECURITY),
                  link_button("Sessions", variant="soft", href=routes.SESSIONS),
                  spacing="3", wrap="wrap"),
        spacing="4", width="100%", max_width="760px",
    )


def _recovery_codes() -> rx.Component:
    return card(rx.vstack(
        rx.heading("Your recovery codes", size="4"),
        rx.text("Each code signs you in once if you lose your phone. Store them somewhere "
                "safe now: they will not be shown again.", color=styles.MUTED),
        # a code never breaks across lines (nowrap), two a row even on a 390 px phone
        rx.grid(rx.foreach(SecurityState.recovery_codes,
                           lambda c: rx.code(c, size="3", class_name="recovery-code",
                                             white_space="nowrap")),
                columns="2", spacing="2", width="100%", id="recovery-codes"),
        rx.hstack(
            rx.button(rx.icon("copy", size=16), "Copy codes", variant="soft", type="button",
                      on_click=[rx.set_clipboard(SecurityState.recovery_text),
                                rx.toast.success("Recovery codes copied.")]),
            rx.button(rx.icon("download", size=16), "Download", variant="soft",
                      type="button",
                      on_click=rx.download(data=SecurityState.recovery_file,
                                           filename="hashhouse-recovery-codes.txt")),
            spacing="2", wrap="wrap"),
        rx.button("I have saved them", on_click=SecurityState.cancel),
        spacing="3", align="start"))


def _scan() -> rx.Component:
    return card(rx.vstack(
        rx.heading("Scan this code", size="4"),
        rx.text("Scan it with an authenticator app (Aegis, Google Authenticator, 1Password…), "
                "then enter the 6-digit code it shows.", color=styles.MUTED),
        rx.image(src=SecurityState.qr, alt="QR code for your authenticator app",
                 width="220px", height="220px", background="white", border_radius="8px"),
        rx.text("Can't scan? Enter this key by hand:", size="2"),
        rx.code(SecurityState.manual_secret, id="totp-secret", size="3",
                word_break="break-all"),
        form(rx.vstack(code_field("Code from the app", "code", SecurityState.errors),
                          submit("Turn on two-factor"), spacing="3", width="100%"),
                on_submit=SecurityState.confirm_totp, reset_on_submit=True, width="100%"),
        rx.button("Cancel", variant="ghost", on_click=SecurityState.cancel),
        spacing="3", align="start", width="100%"))


def _reauth_form(action: rx.EventHandler, label: str, with_code: bool, form_id: str,
                 color: str = "amber") -> rx.Component:
    e = SecurityState.errors
    return form(
        rx.vstack(
            password_field("Current password", "current_password", e, form_id=form_id),
            code_field("Current code", "current_code", e, form_id=form_id) if with_code
            else rx.fragment(),
            submit(label, color_scheme=color), spacing="3", width="100%"),
        on_submit=action, reset_on_submit=True, width="100%")


def _two_factor() -> rx.Component:
    return card(rx.vstack(
        rx.heading("Two-factor authentication", size="4"),
        rx.text("Turning it on or off, a new authenticator or new recovery codes sign out "
                "your other devices.", size="1", color=styles.MUTED),
        rx.cond(
            SessionState.totp_enabled,
            rx.vstack(
                rx.badge("On", color_scheme="green", size="2"),
                rx.text("Recovery codes left: ", SecurityState.codes_left),
                rx.tabs.root(
                    rx.tabs.list(rx.tabs.trigger("New recovery codes", value="codes"),
                                 rx.tabs.trigger("Change authenticator", value="change"),
                                 rx.tabs.trigger("Turn off", value="off")),
                    rx.tabs.content(_reauth_form(SecurityState.regenerate_codes,
                                                 "Make new recovery codes", True, "codes"),
                                    value="codes", padding_top="12px"),
                    rx.tabs.content(_reauth_form(SecurityState.start_totp,
                                                 "Set up a new authenticator", True, "change"),
                                    value="change", padding_top="12px"),
                    rx.tabs.content(_reauth_form(SecurityState.disable_totp,
                                                 "Turn off two-factor", True, "off", "red"),
                                    value="off", padding_top="12px"),
                    default_value="codes", width="100%"),
                spacing="3", width="100%", align="start"),
            rx.vstack(
                rx.badge("Off", color_scheme="amber", size="2"),
                rx.text("Add a second step to sign-in: a code from an app on your phone.",
                        color=styles.MUTED),
                _reauth_form(SecurityState.start_totp, "Set up two-factor", False, "enrol"),
                spacing="3", width="100%", align="start"),
        ),
        spacing="3", width="100%", align="start"), role="region",
        aria_label="Two-factor authentication")


def _password() -> rx.Component:
    e = SecurityState.errors
    return card(rx.vstack(
        rx.heading("Change password", size="4"),
        form(rx.vstack(
            password_field("Current password", "current_password", e, form_id="pw"),
            password_field("New password", "new_password", e, new=True, form_id="pw"),
            password_field("Repeat new password", "new_password_confirm", e, new=True,
                           form_id="pw"),
            submit("Change password", variant="soft"), spacing="3", width="100%"),
            on_submit=SecurityState.change_password, reset_on_submit=True, width="100%"),
        spacing="3", width="100%", align="start"), role="region", aria_label="Change password")


@player_page(routes.SECURITY, "Security", signed_in=True, on_load=[SecurityState.on_open])
def security() -> rx.Component:
    return rx.vstack(
        page_title("Security", "Two-factor authentication, recovery codes and password."),
        form_message(SecurityState.message),
        notice(SecurityState.notice),
        rx.match(SecurityState.stage,
                 ("scan", _scan()),
                 ("codes", _recovery_codes()),
                 _two_factor()),
        _password(),
        spacing="4", width="100%", max_width="640px",
    )


def _session_card(row: SessionRow) -> rx.Component:
    return card(rx.hstack(
        rx.vstack(
            rx.hstack(rx.text(row.device, weight="bold"),
                      rx.cond(row.current, rx.badge("This device", color_scheme="green")),
                      wrap="wrap"),
            rx.text("IP ", row.ip, " · signed in ", row.created, size="2", color=styles.MUTED),
            rx.text("Last seen ", row.last_seen, size="2", color=styles.MUTED),
            spacing="1", align="start"),
        rx.spacer(),
        rx.button(rx.cond(row.current, "Sign out", "Revoke"), variant="soft", color_scheme="red",
                  on_click=SessionsState.revoke(row.id),
                  aria_label=rx.cond(row.current, "Sign out this session", "Revoke session")),
        width="100%", align="center", wrap="wrap", spacing="3"), class_name="session-row")


@player_page(routes.SESSIONS, "Sessions", signed_in=True, on_load=[SessionsState.on_open])
def sessions() -> rx.Component:
    return rx.vstack(
        page_title("Where you are signed in",
                   "Revoke anything you don't recognise, then change your password."),
        form_message(SessionsState.message),
        rx.foreach(SessionsState.rows, _session_card),
        rx.button("Sign out all other sessions", color_scheme="red", variant="outline",
                  on_click=SessionsState.revoke_others),
        spacing="3", width="100%", max_width="760px",
    )
