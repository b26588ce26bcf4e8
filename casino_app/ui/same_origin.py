"""The built pages reach the backend on their own origin (a Reflex plugin).

Reflex bakes the backend's address into the build (``env.json``: ``ws://localhost:PORT/
_event`` and the like, from ``api_url``), so a build serves one port only. With this
plugin a production build carries ``SAME_ORIGIN`` in env.json, and ``getBackendURL`` in
Reflex's ``utils/state.js`` (through which every backend URL goes: the websocket,
/_upload, /ping) uses the page's own origin then. One build then serves any port, host
or scheme (``casino_app/webbuild.py`` builds it once per release). The development
server (``casino run --env dev``: Vite on its own port) keeps Reflex's URLs.
"""

from __future__ import annotations

from typing import Any

from reflex_base.plugins.base import Plugin

# Reflex's utils/state.js turns each backend URL of env.json (the websocket, /_upload,
# /ping...) into a URL object in getBackendURL. These lines, put right after the object is
# made, replace its origin with the page's when env.json says SAME_ORIGIN.
_ANCHOR = "  const endpoint = new URL(url_str);\n"
_MARK = "casino_app/ui/same_origin.py: SAME_ORIGIN"
_SAME_ORIGIN_JS = f"""\
  // {_MARK}. The server that sent this page is the backend, whatever
  // address it is reached at: talk to the page's own origin.
  if (env.SAME_ORIGIN && typeof window !== "undefined") {{
    const secure = window.location.protocol === "https:";
    endpoint.protocol = endpoint.protocol.startsWith("ws")
      ? (secure ? "wss:" : "ws:")
      : window.location.protocol;
    endpoint.host = window.location.host;
    return endpoint;
  }}
"""


def same_origin_state_js(text: str) -> str:
    """Reflex's ``utils/state.js`` with the same-origin lines in ``getBackendURL``
    (unchanged when they are there already)."""
    if _MARK in text:
        return text
    if text.count(_ANCHOR) != 1:
        raise RuntimeError("utils/state.js of this Reflex version has no single "
                           f"{_ANCHOR.strip()!r} to patch: update casino_app/ui/same_origin.py")
    return text.replace(_ANCHOR, _ANCHOR + _SAME_ORIGIN_JS)


class SameOriginPlugin(Plugin):
    """A Reflex plugin: in a production build the pages reach the backend on their own
    origin (``SAME_ORIGIN`` in env.json, read by the lines ``same_origin_state_js`` adds),
    so the build does not hold the port or host it will be served from. The development
    server (``--env dev``, Vite on its own port) keeps Reflex's URLs."""

    def pre_compile(self, **context: Any) -> None:
        context["add_modify_task"]("utils/state.js", same_origin_state_js)

    def update_env_json(self, **context: Any) -> dict[str, Any]:
        from reflex_base import constants
        from reflex_base.environment import environment

        return {"SAME_ORIGIN": environment.REFLEX_ENV_MODE.get() != constants.Env.DEV}
