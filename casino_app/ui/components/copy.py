"""Long values (hashes, seeds, addresses, codes) that fit a 390 px phone: they wrap at any
character instead of widening the page, and a copy button beside them copies the whole
value (compiled page code: the clipboard and a toast, no server call)."""

from __future__ import annotations

from typing import Any

import reflex as rx


def copy_button(value: Any, what: str, **props: Any) -> rx.Component:
    """An icon button that copies ``value``; its name says what (``Copy server seed``)."""
    return rx.icon_button(rx.icon("copy", size=14), size="1", variant="soft", type="button",
                          aria_label=f"Copy {what}", title=f"Copy {what}",
                          on_click=[rx.set_clipboard(value),
                                    rx.toast.success(f"{what[:1].upper()}{what[1:]} copied.")],
                          **props)


def long_value(value: Any, what: str, **props: Any) -> rx.Component:
    """``value`` in monospace, wrapping anywhere, with its copy button."""
    return rx.hstack(
        rx.code(value, word_break="break-all", white_space="normal", min_width="0",
                flex="1", **props),
        copy_button(value, what),
        spacing="2", align="start", width="100%", min_width="0")

