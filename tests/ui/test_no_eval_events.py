"""The CSP forbids eval() (api/middleware.py), and Reflex runs with eval() the JavaScript
of events that a state handler returns (``rx.toast``, ``rx.call_script``,
``rx.call_function``, ``rx.set_clipboard``, ``rx.console_log``, ``rx.window_alert``...:
the server sends the script as text) and of ``rx.call_script`` given a plain string. A
toast or script returned by a handler would fail silently in the browser, so none may
appear in a state module, and pages use only compiled forms (``rx.run_script`` with a
Var). tests/e2e/test_csp_session_e2e.py checks the result in Chromium."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import casino_app

UI = Path(casino_app.__file__).parent / "ui"
# Event helpers whose JavaScript Reflex evaluates when a handler returns them.
EVALUATED = {"toast", "call_script", "call_function", "run_script", "set_clipboard",
             "console_log", "window_alert", "scroll_to", "download", "back"}


def test_no_state_handler_returns_javascript_for_the_page_to_eval() -> None:
    found = []
    for path in sorted((UI / "state").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in EVALUATED \
                    and isinstance(node.value, ast.Name) and node.value.id == "rx":
                found.append(f"{path.name}:{node.lineno}: rx.{node.attr}")
    assert found == [], "use ui.state.notice.notify for messages:\n" + "\n".join(found)


def test_pages_run_scripts_as_compiled_code_only() -> None:
    found = []
    for path in sorted(UI.rglob("*.py")):
        text = path.read_text()
        found += [f"{path.name}: {m.group(0)}" for m in
                  re.finditer(r"rx\.call_script\(|rx\.call_function\(\s*[\"']", text)]
    assert found == [], found
