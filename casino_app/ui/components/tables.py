"""Tables shared by player and staff pages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import reflex as rx


def table(headers: tuple[str, ...], rows: rx.Var, render: Callable[[Any], rx.Component],
          **props: Any) -> rx.Component:
    """A table that scrolls sideways on a phone instead of squeezing its columns."""
    return rx.box(rx.table.root(
        rx.table.header(rx.table.row(*[rx.table.column_header_cell(h) for h in headers])),
        rx.table.body(rx.foreach(rows, render)), width="100%", **props),
        overflow_x="auto", width="100%")
