"""Short notices ("Welcome to HashHouse!") that a handler shows as a toast.

A handler could return ``rx.toast.success(...)``, but Reflex runs a toast sent from the
server with eval(), which the CSP does not allow (``api/middleware.py``). So a handler
calls ``await notify(self, "success", text)``: the notice travels as data in this
state's ``notice`` var, and compiled page code (``ui/components/bridge.py``) shows it
once per tab (a reload does not show it again). Toasts made in the page itself
(``rx.toast`` in an ``on_click``) are compiled code and need none of this.
"""

from __future__ import annotations

import secrets
from typing import Literal

import reflex as rx

Level = Literal["success", "info", "warning", "error"]
_LEVELS = ("success", "info", "warning", "error")
_MAX_TEXT = 300


class NoticeState(rx.State):
    # {"id": random, "level": one of _LEVELS, "text": ...}; set only by the server.
    notice: dict[str, str] = {}

    def _push(self, level: Level, text: str) -> None:
        self.notice = {"id": secrets.token_hex(8),
                       "level": level if level in _LEVELS else "info",
                       "text": str(text)[:_MAX_TEXT]}


async def notify(state: rx.State, level: Level, text: str) -> None:
    """Show ``text`` as a toast in the caller's tab."""
    (await state.get_state(NoticeState))._push(level, text)
