"""Compiled page code that acts on what handlers send as data (in every page's shell).

The CSP allows no eval(), so a handler cannot send JavaScript to run (Reflex evaluates
``rx.toast`` / ``rx.call_script`` returned from the server). It sets a var instead, and
these React effects, compiled into the bundle, act on it:

- ``NoticeState.notice`` -> a toast (``ui/state/notice.py``), once per tab;
- ``SessionState.cookie_op`` -> POST ``/api/session/adopt`` (code) or
  ``/api/session/clear``, which set or remove the HttpOnly session cookie
  (``security/session_cookie.py``), once per tab; when it succeeds, a ``storage`` event
  tells the browser's other tabs to reload, so their new sockets carry the new cookie;
- on load, the session token that older versions kept in localStorage is removed;
- what Radix Themes leaves out for assistive technology is added as the page changes
  (a slider thumb's name, keyboard access to a table's scroll area).
"""

from __future__ import annotations

import reflex as rx
from reflex.vars import VarData
from reflex_base.constants import Dirs
from reflex_base.utils.imports import ImportVar

from casino_app.ui.state.notice import NoticeState
from casino_app.ui.state.session import SessionState

# localStorage key whose change makes the other tabs reload (its value is a random id).
SESSION_CHANGED_KEY = "hh_signed_in_changed"
LEGACY_TOKEN_KEY = "hh_session"  # noqa: S105 - a localStorage key's name, no secret

_IMPORTS = VarData(imports={
    "react": [ImportVar(tag="useEffect")],
    "sonner": [ImportVar(tag="toast", install=False)],
    "$/env.json": [ImportVar(tag="env", is_default=True)],
    f"$/{Dirs.STATE_PATH}": [ImportVar(tag="getBackendURL")],
})


def _once_per_tab(key: str) -> str:
    """JS: true the first time this tab sees ``id`` under ``key`` (sessionStorage)."""
    return (f"((id) => {{ try {{ if (sessionStorage.getItem({key!r}) === id) return false; "
            f"sessionStorage.setItem({key!r}, id); }} catch (e) {{}} return true; }})")


def _notice_hook() -> rx.Var:
    notice = NoticeState.notice
    js = f"""useEffect(() => {{
  const n = {notice!s};
  if (!n || !n.id || !{_once_per_tab("hh_notice_seen")}(n.id)) return;
  const show = typeof toast[n.level] === "function" ? toast[n.level] : toast;
  show(n.text);
}}, [{notice!s}?.id]);"""
    return rx.Var(_js_expr=js, _var_data=VarData.merge(notice._get_all_var_data(),
                                                        _IMPORTS))


def _cookie_hook() -> rx.Var:
    op = SessionState.cookie_op
    js = f"""useEffect(() => {{
  const op = {op!s};
  if (!op || !op.id || !{_once_per_tab("hh_cookie_op_seen")}(op.id)) return;
  const body = new URLSearchParams();
  if (op.code) body.set("code", op.code);
  const url = new URL("/api/session/" + (op.kind === "adopt" ? "adopt" : "clear"),
                      getBackendURL(env.UPLOAD));
  fetch(url, {{ method: "POST", body, credentials: "include", cache: "no-store" }})
    .then((r) => {{
      if (r.ok) {{ try {{ localStorage.setItem({SESSION_CHANGED_KEY!r}, op.id); }} catch (e) {{}} }}
      else {{ console.warn("HashHouse: the session cookie was not " +
                           (op.kind === "adopt" ? "set" : "removed"), r.status); }}
    }})
    .catch((e) => console.warn("HashHouse: session cookie request failed", e));
}}, [{op!s}?.id]);"""
    return rx.Var(_js_expr=js, _var_data=VarData.merge(op._get_all_var_data(), _IMPORTS))


def _other_tabs_hook() -> rx.Var:
    js = f"""useEffect(() => {{
  try {{ localStorage.removeItem({LEGACY_TOKEN_KEY!r}); }} catch (e) {{}}
  const onStorage = (e) => {{ if (e.key === {SESSION_CHANGED_KEY!r}) window.location.reload(); }};
  window.addEventListener("storage", onStorage);
  return () => window.removeEventListener("storage", onStorage);
}}, []);"""
    return rx.Var(_js_expr=js, _var_data=_IMPORTS)


def _a11y_hook() -> rx.Var:
    """What Radix Themes leaves out, added as the page changes (axe checks it on every
    page, tests/e2e/test_ux_e2e.py): a slider's thumb gets its slider's name
    (aria-input-field-name), and a table's scroll area can be reached by keyboard
    (scrollable-region-focusable)."""
    js = """useEffect(() => {
  const fix = () => {
    document.querySelectorAll(".rt-SliderRoot").forEach((root) => {
      const name = root.getAttribute("aria-label") || "Value";
      root.querySelectorAll(".rt-SliderThumb:not([aria-label])")
        .forEach((t) => t.setAttribute("aria-label", name));
    });
    document.querySelectorAll(".rt-ScrollAreaViewport:not([tabindex])").forEach((v) => {
      v.setAttribute("tabindex", "0");
      if (!v.getAttribute("aria-label")) v.setAttribute("aria-label", "Scrollable table");
      v.setAttribute("role", "region");
    });
  };
  fix();
  const seen = new MutationObserver(fix);
  seen.observe(document.body, { childList: true, subtree: true });
  return () => seen.disconnect();
}, []);"""
    return rx.Var(_js_expr=js, _var_data=_IMPORTS)


class Bridge(rx.Fragment):
    """Renders nothing; its hooks are the point (see the module doc)."""

    def add_hooks(self) -> list[str | rx.Var]:
        return [_notice_hook(), _cookie_hook(), _other_tabs_hook(), _a11y_hook()]


def bridge() -> rx.Component:
    return Bridge.create()
