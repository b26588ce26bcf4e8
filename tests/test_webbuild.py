"""The production front end is built once and stamped (casino_app/webbuild.py): a build is
current until what decides it changes (the app's source, assets, rxconfig.py, Reflex,
Node.js, Reflex's URL settings) or its files are replaced; a missing, unstamped, stale or
half-made build is never taken for current. Here on a small tree of its own, with Reflex's
export replaced by one that writes a few files (the real one: tests/e2e/test_build_e2e.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from casino_app import webbuild


@pytest.fixture
def exports() -> list[Path]:
    """The folders the export built, one entry a build."""
    return []


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exports: list[Path]) -> Path:
    """A project: the app's source, assets and rxconfig.py, and an export that builds."""
    root = tmp_path / "project"
    (root / "casino_app" / "ui").mkdir(parents=True)
    (root / "casino_app" / "__init__.py").write_text("")
    (root / "casino_app" / "ui" / "pages.py").write_text("TITLE = 'HashHouse'\n")
    (root / "assets" / "icons").mkdir(parents=True)
    (root / "assets" / "icons" / "icon.svg").write_text("<svg/>")
    (root / "rxconfig.py").write_text("config = None\n")
    monkeypatch.delenv("REFLEX_WEB_WORKDIR", raising=False)
    for name in webbuild.FRONTEND_ENV:
        monkeypatch.delenv(name, raising=False)

    def export(root: Path, env: dict[str, str]) -> None:
        exports.append(root)
        out = webbuild.static_dir(root)
        out.mkdir(parents=True, exist_ok=True)
        title = (root / "casino_app" / "ui" / "pages.py").read_text()
        (out / "index.html").write_text(f"<html>{title}</html>")
        (out / "assets").mkdir(exist_ok=True)
        (out / "assets" / "env.js").write_text("SAME_ORIGIN")

    monkeypatch.setattr(webbuild, "_export", export)
    return root


def test_there_is_no_build_until_one_is_made(tree: Path) -> None:
    now = webbuild.status(tree)
    assert not now.current and now.reason == "there is no front-end build yet"
    made = webbuild.build(tree)
    assert made.current and made.reason.startswith("the front-end build is current (built ")
    stamp = json.loads((tree / ".web" / "casino-build.json").read_text())
    assert set(stamp["inputs"]) == {"source", "assets", "rxconfig", "reflex", "node",
                                    "settings"}
    assert stamp["inputs"]["reflex"]["reflex"]  # the installed Reflex's version
    assert webbuild.status(tree).current


def test_a_current_build_is_not_made_again_unless_forced(tree: Path, exports: list[Path]
                                                        ) -> None:
    webbuild.build(tree)
    webbuild.build(tree)
    assert exports == [tree]
    assert webbuild.build(tree, force=True).current
    assert exports == [tree, tree]


@pytest.mark.parametrize(("change", "named"), [
    (lambda root: (root / "casino_app" / "ui" / "pages.py").write_text("TITLE = 'X'\n"),
     "the app's Python source (casino_app/)"),
    (lambda root: (root / "casino_app" / "ui" / "new_page.py").write_text(""),
     "the app's Python source (casino_app/)"),
    (lambda root: (root / "assets" / "icons" / "icon.svg").write_text("<svg></svg>"),
     "assets/"),
    (lambda root: (root / "assets" / "offline.html").write_text("offline"), "assets/"),
    (lambda root: (root / "rxconfig.py").write_text("config = 1\n"), "rxconfig.py"),
])
def test_a_change_to_what_decides_the_build_makes_it_stale_naming_it(
        tree: Path, change, named: str) -> None:  # noqa: ANN001
    webbuild.build(tree)
    change(tree)
    now = webbuild.status(tree)
    assert not now.current
    assert now.reason == f"the front-end build is stale: {named} changed since it was built"
    assert webbuild.build(tree).current  # and `casino build` makes it current again
    assert webbuild.status(tree).current


def test_compiled_python_and_reflex_links_in_assets_are_not_inputs(tree: Path) -> None:
    webbuild.build(tree)
    cache = tree / "casino_app" / "__pycache__"
    cache.mkdir()
    (cache / "pages.cpython-311.pyc").write_bytes(b"\0")
    (tree / "assets" / "external").mkdir()
    (tree / "assets" / "external" / "lib.js").write_text("made by Reflex while compiling")
    assert webbuild.status(tree).current


def test_reflex_url_settings_node_and_reflex_versions_are_part_of_the_build(
        tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    webbuild.build(tree)
    monkeypatch.setenv("REFLEX_FRONTEND_PATH", "/casino")
    assert "the Reflex settings in the environment" in webbuild.status(tree).reason
    monkeypatch.delenv("REFLEX_FRONTEND_PATH")
    node_version = webbuild.node_version
    monkeypatch.setattr(webbuild, "node_version", lambda env=None: "v24.0.0")
    assert webbuild.status(tree).reason.endswith(
        "stale: the Node.js version changed since it was built")
    monkeypatch.setattr(webbuild, "node_version", node_version)
    assert webbuild.status(tree).current
    monkeypatch.setattr(webbuild, "reflex_versions", lambda: {"reflex": "0.10.2"})
    assert "the installed Reflex packages changed" in webbuild.status(tree).reason


def test_a_build_replaced_after_casino_build_is_stale(tree: Path) -> None:
    """Another build in the folder (``reflex run --env prod``, ``reflex export``) writes
    pages for one port: never served as if ``casino build`` had made them."""
    webbuild.build(tree)
    (webbuild.static_dir(tree) / "assets" / "env.js").write_text("ws://localhost:3000")
    now = webbuild.status(tree)
    assert not now.current and now.reason == (
        "the files of the front-end build changed since `casino build` made them "
        "(another build replaced them)")


def test_a_build_without_a_stamp_is_stale(tree: Path) -> None:
    webbuild.build(tree)
    (tree / ".web" / "casino-build.json").unlink()
    assert webbuild.status(tree).reason == (
        "the front-end build has no stamp (casino-build.json): it was not made by "
        "`casino build`")
    (tree / ".web" / "casino-build.json").write_text("{not json")
    assert not webbuild.status(tree).current


def test_a_failed_build_is_never_current(tree: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    webbuild.build(tree)
    (tree / "rxconfig.py").write_text("config = 2\n")

    def broken(root: Path, env: dict[str, str]) -> None:
        webbuild.stamp_path(root).unlink(missing_ok=True)  # as the real export does first
        raise webbuild.BuildFailed("`reflex export` failed (exit status 1)")

    monkeypatch.setattr(webbuild, "_export", broken)
    with pytest.raises(webbuild.BuildFailed):
        webbuild.build(tree)
    assert not webbuild.status(tree).current


def test_the_build_output_keeps_what_an_operator_needs() -> None:
    """`casino run` showed Reflex's "Run `uv run reflex run`" (which contradicts the README)
    and its "Page ... is being redefined" notices."""
    from casino_app.webbuild import for_operators

    assert not for_operators("Success: Initialized casino_app. Run `uv run reflex run` to "
                             "start the app.\n")
    assert not for_operators("Warning: Page /games/dice is being redefined with the same "
                             "component.\n")
    assert for_operators("Creating Production Build:  100% 4/4 0:00:05\n")
    assert for_operators("Error: something failed\n")
