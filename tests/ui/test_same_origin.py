"""The built pages reach the backend on their own origin (casino_app/ui/same_origin.py):
the lines added to Reflex's own ``utils/state.js`` (the installed version's template, so
a Reflex upgrade that moves them fails here, not in a browser) and ``SAME_ORIGIN`` in
env.json, on in a production build only. The real build in a browser:
tests/e2e/test_build_e2e.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import reflex_base

from casino_app.ui import same_origin
from casino_app.ui.same_origin import SameOriginPlugin, same_origin_state_js

TEMPLATE = Path(reflex_base.__file__).parent / ".templates" / "web" / "utils" / "state.js"


def test_get_backend_url_of_reflex_uses_the_page_origin_when_env_json_says_so() -> None:
    original = TEMPLATE.read_text()
    patched = same_origin_state_js(original)
    start = patched.index("export const getBackendURL")
    body = patched[start:patched.index("\n};\n", start)]
    made = body.index("const endpoint = new URL(url_str);")
    ours = body.index("if (env.SAME_ORIGIN && typeof window !== \"undefined\")")
    reflex_own = body.index("SAME_DOMAIN_HOSTNAMES.includes(endpoint.hostname)")
    assert made < ours < reflex_own  # before Reflex's own localhost rewrite
    assert "endpoint.host = window.location.host;" in body
    assert same_origin_state_js(patched) == patched  # applied at every compile: once
    assert patched.replace(same_origin._SAME_ORIGIN_JS, "") == original


def test_a_reflex_without_the_expected_lines_stops_the_build() -> None:
    with pytest.raises(RuntimeError, match="update casino_app/ui/same_origin.py"):
        same_origin_state_js("export const getBackendURL = (u) => new URL(u);\n")


@pytest.mark.parametrize(("mode", "same_origin"), [("prod", True), ("dev", False)])
def test_env_json_says_same_origin_in_a_production_build_only(
        monkeypatch: pytest.MonkeyPatch, mode: str, same_origin: bool) -> None:
    monkeypatch.setenv("REFLEX_ENV_MODE", mode)
    assert SameOriginPlugin().update_env_json() == {"SAME_ORIGIN": same_origin}


def test_the_plugin_patches_state_js_at_every_compile() -> None:
    tasks: list[tuple[str, object]] = []
    SameOriginPlugin().pre_compile(add_modify_task=lambda path, fn: tasks.append((path, fn)))
    assert tasks == [("utils/state.js", same_origin_state_js)]
