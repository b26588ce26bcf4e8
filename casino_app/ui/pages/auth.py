"""Sign up, sign in (with the 2FA step), forgot password, reset, unlock."""

from datetime import date

import reflex as rx

from casino_app.ui import routes, styles
from casino_app.ui.components.forms import (
    card,
    code_field,
    field,
    form,
    form_message,
    link_button,
    password_field,
    submit,
)
from casino_app.ui.layout import guest_page, player_page
from casino_app.ui.state.auth import (
    ForgotState,
    LoginState,
    RegisterConfirmState,
    RegisterState,
    ResetState,
    UnlockState,
)


def _narrow(*children: rx.Component) -> rx.Component:
    return rx.center(rx.box(card(rx.vstack(*children, spacing="4", width="100%")),
                            width="100%", max_width=styles.FORM_WIDTH), width="100%")


def _done_then_sign_in(text: str) -> rx.Component:
    return rx.vstack(rx.callout(text, icon="circle_check", color_scheme="green", role="status"),
                     link_button("Sign in", href=routes.LOGIN), spacing="3")


def _latest_birthday() -> str:
    today = date.today()
    try:
        return today.replace(year=today.year - 18).isoformat()
    except ValueError:  # 29 February
        return today.replace(year=today.year - 18, day=28).isoformat()


def _check_inbox() -> rx.Component:
    """The answer to every accepted sign-up form, whether or not the address already has
    an account (the mail says which)."""
    return rx.vstack(
        rx.callout("Check your inbox to finish signing up.", icon="mail",
                   color_scheme="green", role="status"),
        rx.text("We have emailed the address you gave. Open the link in that mail and enter "
                "your password again to create your account. If the address already has "
                "an account, the mail says how to sign in instead.", color=styles.MUTED),
        rx.button("Use another address", variant="soft", on_click=RegisterState.again),
        spacing="3")


@guest_page(routes.REGISTER, "Create an account", on_load=[RegisterState.again])
def register() -> rx.Component:
    return _narrow(
        rx.heading("Create your account", size="6"),
        rx.cond(RegisterState.sent, _check_inbox(), _register_form()),
        rx.text("Already have an account? ", rx.link("Sign in", href=routes.LOGIN, underline="always"),
                size="2"),
    )


def _register_form() -> rx.Component:
    e = RegisterState.errors
    return rx.fragment(
        form(
            rx.vstack(
                form_message(RegisterState.message),
                field("Email", "email", type="email", errors=e, required=True,
                      max_length=254, auto_complete="email"),
                field("Display name", "display_name", errors=e, required=True, min_length=2,
                      max_length=40, auto_complete="nickname",
                      hint="Shown to other players. Letters, digits, spaces and . ' - _"),
                password_field("Password", "password", e, new=True),
                rx.text("8 to 128 characters. A few random words make a strong password.",
                        size="1", color=styles.MUTED),
                password_field("Repeat password", "password_confirm", e, new=True),
                field("Date of birth", "date_of_birth", type="date", errors=e, required=True,
                      max=_latest_birthday(), min="1900-01-01",
                      hint="You must be 18 or older."),
                rx.vstack(
                    rx.hstack(
                        rx.el.input(type="checkbox", id="accept_terms", name="accept_terms",
                                    required=True, style={"width": "18px", "height": "18px",
                                                          "accent_color": styles.ACCENT}),
                        rx.el.label("I am 18 or older and accept the ",
                                    rx.link("terms of service", href=routes.TERMS,
                                            is_external=True, underline="always"),
                                    html_for="accept_terms"),
                        align="center", spacing="2"),
                    rx.cond(e["accept_terms"], rx.text(e["accept_terms"], role="alert",
                                                       size="2", color=styles.DANGER)),
                    spacing="1"),
                submit("Create account"),
                spacing="3", width="100%",
            ),
            on_submit=RegisterState.submit, reset_on_submit=False, width="100%",
        ),
    )


@player_page(routes.REGISTER_CONFIRM, "Finish signing up",
             on_load=[RegisterConfirmState.on_open])
def register_confirm() -> rx.Component:
    e = RegisterConfirmState.errors
    return _narrow(
        rx.heading("Finish creating your account", size="6"),
        form_message(RegisterConfirmState.message),
        rx.cond(
            RegisterConfirmState.failed,
            link_button("Sign up again", href=routes.REGISTER),
            form(
                rx.vstack(
                    rx.text("Enter the password you chose when you signed up.",
                            color=styles.MUTED),
                    password_field("Password", "password", e),
                    submit("Create my account"), spacing="3", width="100%"),
                on_submit=RegisterConfirmState.submit, reset_on_submit=True, width="100%"),
        ),
        rx.text("Did not sign up? Ignore the mail: no account is created without it.",
                size="2", color=styles.MUTED),
    )


def _password_step() -> rx.Component:
    return form(
        rx.vstack(
            field("Email", "email", type="email", required=True, max_length=254,
                  auto_complete="username"),
            password_field("Password", "password"),
            submit("Sign in"),
            rx.hstack(rx.link("Forgot your password?", href=routes.FORGOT, size="2"),
                      rx.spacer(), rx.link("Create an account", href=routes.REGISTER,
                                           size="2"), width="100%", wrap="wrap"),
            spacing="3", width="100%"),
        on_submit=LoginState.submit_password, reset_on_submit=False, width="100%",
    )


def _code_step() -> rx.Component:
    return form(
        rx.vstack(
            rx.text("Enter the code from your authenticator app to finish signing in.",
                    color=styles.MUTED),
            code_field(auto_focus=True),
            submit("Verify"),
            rx.button("Start again", type="button", variant="ghost",
                      on_click=LoginState.restart),
            spacing="3", width="100%"),
        on_submit=LoginState.submit_code, reset_on_submit=True, width="100%",
    )


@guest_page(routes.LOGIN, "Sign in", on_load=[LoginState.restart])
def login() -> rx.Component:
    return _narrow(
        rx.heading(rx.cond(LoginState.step == "code", "Two-factor check", "Sign in"), size="6"),
        form_message(LoginState.message),
        rx.cond(LoginState.step == "code", _code_step(), _password_step()),
    )


@player_page(routes.FORGOT, "Forgot password", on_load=[ForgotState.again])
def forgot() -> rx.Component:
    return _narrow(
        rx.heading("Reset your password", size="6"),
        rx.cond(
            ForgotState.sent,
            rx.vstack(
                rx.callout("If an account uses that address, we have emailed it a link to "
                           "choose a new password. The link works once, for 15 minutes.",
                           icon="mail", color_scheme="green", role="status"),
                rx.button("Send another link", variant="soft", on_click=ForgotState.again),
                spacing="3"),
            form(
                rx.vstack(
                    form_message(ForgotState.message),
                    field("Email", "email", type="email", required=True, max_length=254,
                          auto_complete="email"),
                    submit("Email me a link"), spacing="3", width="100%"),
                on_submit=ForgotState.submit, reset_on_submit=False, width="100%"),
        ),
        rx.link("Back to sign in", href=routes.LOGIN, size="2"),
    )


@player_page(routes.RESET, "Choose a new password", on_load=[ResetState.on_open])
def reset() -> rx.Component:
    e = ResetState.errors
    return _narrow(
        rx.heading("Choose a new password", size="6"),
        rx.cond(
            ResetState.done,
            _done_then_sign_in("Your password has been changed and every device was "
                               "signed out."),
            rx.cond(
                ResetState.link_gone,
                rx.vstack(form_message(ResetState.message),
                          link_button("Email me a new link", href=routes.FORGOT, size="3",
                                      id="reset-new-link"),
                          spacing="3", width="100%", align="start", id="reset-link-gone"),
                form(
                    rx.vstack(
                        form_message(ResetState.message),
                        password_field("New password", "new_password", e, new=True),
                        password_field("Repeat new password", "new_password_confirm", e,
                                       new=True),
                        submit("Change password"), spacing="3", width="100%"),
                    on_submit=ResetState.submit, reset_on_submit=False, width="100%")),
        ),
    )


@player_page(routes.UNLOCK, "Unlock account", on_load=[UnlockState.on_open])
def unlock() -> rx.Component:
    return _narrow(
        rx.heading("Unlock your account", size="6"),
        rx.match(
            UnlockState.status,
            ("done", _done_then_sign_in("Your account is unlocked. You can sign in again.")),
            ("failed", rx.vstack(form_message(UnlockState.message),
                                 rx.link("Reset your password instead", href=routes.FORGOT),
                                 spacing="3")),
            rx.hstack(rx.spinner(), rx.text("Unlocking…")),
        ),
    )
