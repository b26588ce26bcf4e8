"""Labelled form fields with their error message: tests and screen readers find every
input by its label. Browser-side rules (required, lengths, types) stop bad input before
it is sent; the server checks everything again."""

from __future__ import annotations

from typing import Any

import reflex as rx

from casino_app.ui import styles
from casino_app.ui.components.connection import OFFLINE


def field(label: str, name: str, *, type: str = "text", errors: Any = None,  # noqa: A002
          hint: str = "", form_id: str = "", **attrs: Any) -> rx.Component:
    """``form_id`` keeps element ids unique when two forms on a page share a field name."""
    error = errors[name] if errors is not None else None
    fid = f"{form_id}-{name}" if form_id else name
    return rx.vstack(
        rx.el.label(label, html_for=fid, style={"font_weight": "600", "font_size": "14px"}),
        rx.input(id=fid, name=name, type=type, size="3", width="100%",
                 aria_describedby=f"{fid}-error", **attrs),
        rx.cond(hint != "", rx.text(hint, size="1", color=styles.MUTED)) if hint else rx.fragment(),
        rx.cond(error, rx.text(error, id=f"{fid}-error", role="alert", size="2",
                               color=styles.DANGER)) if errors is not None else rx.fragment(),
        spacing="1", width="100%", align="start",
    )


def password_field(label: str, name: str, errors: Any = None, *, new: bool = False,
                   **attrs: Any) -> rx.Component:
    return field(label, name, type="password", errors=errors,
                 auto_complete="new-password" if new else "current-password",
                 max_length=128 if new else 1024, min_length=8 if new else 1,
                 required=True, **attrs)


def code_field(label: str = "Authentication code", name: str = "code", errors: Any = None,
               **attrs: Any) -> rx.Component:
    return field(label, name, errors=errors, input_mode="numeric",
                 auto_complete="one-time-code", max_length=24, required=True,
                 hint="The 6-digit code from your authenticator app, or a recovery code.",
                 **attrs)


def form_message(message: Any) -> rx.Component:
    return rx.cond(message != "", rx.callout(message, icon="triangle_alert", color_scheme="red",
                                             role="alert", width="100%"))


def notice(message: Any) -> rx.Component:
    return rx.cond(message != "", rx.callout(message, icon="circle_check",
                                             color_scheme="green", role="status",
                                             width="100%"))


def submit(label: str, disabled: Any = None, **attrs: Any) -> rx.Component:
    """Disabled until the page is connected, so a click while assets load can never
    fall back to a native form submission (which would put the fields in a URL); and
    while ``disabled`` (a state var) is true."""
    off = ~rx.State.is_hydrated | OFFLINE if disabled is None \
        else ~rx.State.is_hydrated | OFFLINE | disabled
    return rx.button(label, type="submit", size="3", width="100%", disabled=off, **attrs)


def card(*children: rx.Component, **props: Any) -> rx.Component:
    return rx.box(*children, style=styles.card, **props)


def link_button(label: Any, *, href: str, **props: Any) -> rx.Component:
    """A link that looks like a button (an <a>, so it opens in a new tab and reads as a
    link to screen readers; never a button nested in a link). Its text takes the button's
    colours (a solid amber button: the page's dark background colour, 12:1), never the
    links' amber (1.16:1 on amber: "Join" and "Create an account" could not be read)."""
    solid = props.get("variant", "solid") == "solid"
    text = styles.BG if solid else styles.ACCENT
    return rx.button(rx.link(label, href=href, underline="none", style={"color": text}),
                     as_child=True, **props)


def form(*children: rx.Component, **props: Any) -> rx.Component:
    """A form whose fields never travel in a URL: POST even if it were ever submitted
    natively (the submit buttons are disabled until the page is connected)."""
    props.setdefault("width", "100%")
    return rx.form(*children, method="post", **props)
