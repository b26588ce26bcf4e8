"""The production front end, built once per release and served by every ``casino run``.

``casino build`` compiles the Reflex app and builds its pages (React Router, Vite) into
``.web/build/client``, then writes a stamp beside it (``.web/casino-build.json``): a
digest of everything that decides what the build contains (the app's Python source,
``assets/``, ``rxconfig.py``, the installed Reflex packages and Node.js, the few Reflex
settings that change the pages' URLs) and a digest of the files it produced. ``casino
run`` compares the stamp with the working tree (``status``, about 0.1 s) and starts
from the build when it is current; it builds first when it is missing or stale.

The build does not depend on the address it is served from: its pages open the
websocket and call the backend on their own origin (``casino_app/ui/same_origin.py``),
and its sitemap holds paths that the app completes with ``CASINO_PUBLIC_URL`` when it
serves ``/sitemap.xml``. One build serves every port, host and process of a release.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
STAMP_NAME = "casino-build.json"
STAMP_FORMAT = 1
# Reflex settings that, given in the environment, change the URLs the built pages use or
# how they are rendered; the rest of Reflex's configuration is rxconfig.py (hashed).
FRONTEND_ENV = ("REFLEX_FRONTEND_PATH", "REFLEX_BACKEND_PATH", "REFLEX_TRANSPORT",
                "REFLEX_SSR", "REFLEX_FRONTEND_COMPRESSION_FORMATS")
# The backend address baked into env.json: a placeholder, since the pages use their own
# origin (it only keeps the files the same whatever CASINO_PORT was at build time).
PLACEHOLDER_API_URL = "http://localhost"


class BuildFailed(RuntimeError):
    """``reflex export`` failed (its output went to this process's stdout and stderr)."""


@dataclass(frozen=True)
class BuildStatus:
    """Whether the front-end build in ``web_dir`` can be served as it is, and why not."""

    current: bool
    reason: str


def web_dir(root: Path = ROOT) -> Path:
    """Reflex's working folder for ``root`` (``REFLEX_WEB_WORKDIR``, default ``.web``)."""
    return root / os.environ.get("REFLEX_WEB_WORKDIR", ".web")


def static_dir(root: Path = ROOT) -> Path:
    """Where the built pages are (what the server mounts at /)."""
    return web_dir(root) / "build" / "client"


def stamp_path(root: Path = ROOT) -> Path:
    return web_dir(root) / STAMP_NAME


# --- what decides the build --------------------------------------------------------------

def _digest_files(root: Path, files: list[Path]) -> str:
    h = hashlib.sha256()
    for path in sorted(files):
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def _source_files(root: Path) -> list[Path]:
    return [p for p in (root / "casino_app").rglob("*.py") if "__pycache__" not in p.parts]


def _asset_files(root: Path) -> list[Path]:
    assets = root / "assets"
    if not assets.is_dir():
        return []
    # assets/external/ holds links Reflex itself makes while compiling: not an input
    return [p for p in assets.rglob("*") if p.is_file() and
            p.relative_to(assets).parts[0] != "external"]


def node_version(env: Mapping[str, str] | None = None) -> str:
    """``node --version`` with ``env``'s PATH (the Node.js the build runs), or "none"."""
    path = (env or os.environ).get("PATH")
    node = shutil.which("node", path=path)
    if node is None:
        return "none"
    try:
        done = subprocess.run([node, "--version"], capture_output=True, text=True,  # noqa: S603 - node found on PATH, no shell
                              timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "none"
    return done.stdout.strip() or "none"


def reflex_versions() -> dict[str, str]:
    """The installed Reflex distributions (reflex, reflex-base, the component packages)."""
    found = {}
    for dist in metadata.distributions():
        name = (dist.metadata["Name"] or "").lower().replace("_", "-")
        if name == "reflex" or name.startswith("reflex-"):
            found[name] = dist.version
    return dict(sorted(found.items()))


def inputs(root: Path = ROOT, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Everything that decides what the build contains, each part digested."""
    env = os.environ if env is None else env
    return {
        "source": _digest_files(root, _source_files(root)),
        "assets": _digest_files(root, _asset_files(root)),
        "rxconfig": _digest_files(root, [root / "rxconfig.py"]),
        "reflex": reflex_versions(),
        "node": node_version(env),
        "settings": {name: env[name] for name in FRONTEND_ENV if env.get(name)},
    }


_PART_NAMES = {
    "source": "the app's Python source (casino_app/)",
    "assets": "assets/",
    "rxconfig": "rxconfig.py",
    "reflex": "the installed Reflex packages",
    "node": "the Node.js version",
    "settings": "the Reflex settings in the environment (" + ", ".join(FRONTEND_ENV) + ")",
}


def output_digest(root: Path = ROOT) -> str:
    """A digest of the built files (names and contents)."""
    build = static_dir(root)
    return _digest_files(build, [p for p in build.rglob("*") if p.is_file()])


# --- the stamp ---------------------------------------------------------------------------

def read_stamp(root: Path = ROOT) -> dict[str, Any] | None:
    try:
        stamp = json.loads(stamp_path(root).read_text())
    except (OSError, ValueError):
        return None
    return stamp if isinstance(stamp, dict) and stamp.get("format") == STAMP_FORMAT else None


def status(root: Path = ROOT, env: Mapping[str, str] | None = None) -> BuildStatus:
    """Whether ``root``'s front-end build is current: built by ``casino build`` from
    what is in the tree now, and unchanged since."""
    stamp = read_stamp(root)
    if not (static_dir(root) / "index.html").is_file():
        return BuildStatus(False, "there is no front-end build yet")
    if stamp is None:
        return BuildStatus(False, f"the front-end build has no stamp ({STAMP_NAME}): it was "
                                  "not made by `casino build`")
    now = inputs(root, env)
    changed = [_PART_NAMES[k] for k in now if stamp.get("inputs", {}).get(k) != now[k]]
    if changed:
        return BuildStatus(False, "the front-end build is stale: " + ", ".join(changed)
                                  + " changed since it was built")
    if stamp.get("output") != output_digest(root):
        return BuildStatus(False, "the files of the front-end build changed since `casino "
                                  "build` made them (another build replaced them)")
    return BuildStatus(True, f"the front-end build is current (built {stamp.get('built_at')})")


@contextlib.contextmanager
def _build_lock(root: Path) -> Iterator[None]:
    """One build at a time per folder (several `casino run` may start together)."""
    with (root / ".web-build.lock").open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def build(root: Path = ROOT, env: Mapping[str, str] | None = None, force: bool = False
          ) -> BuildStatus:
    """Build the front end unless it is current (``force``: in any case) and stamp it.
    ``env`` is the environment of the Reflex CLI (Node.js on its PATH); the build's
    output goes to this process's stdout (``_export``)."""
    env = dict(os.environ if env is None else env)
    with _build_lock(root):
        if not force:  # another process may have built it while this one waited
            now = status(root, env)
            if now.current:
                return now
        made_of = inputs(root, env)
        started = time.monotonic()
        _export(root, env)
        stamp = {
            "format": STAMP_FORMAT,
            "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "seconds": round(time.monotonic() - started, 1),
            "inputs": made_of,
            "output": output_digest(root),
        }
        tmp = stamp_path(root).with_suffix(".tmp")
        tmp.write_text(json.dumps(stamp, indent=2) + "\n")
        tmp.replace(stamp_path(root))
        return status(root, env)


# What Reflex's CLI says that is not for an operator of this app: its own next steps
# ("Run `uv run reflex run` to start the app.", which the README contradicts) and the
# notice that a page is registered twice with the same component (harmless here).
_NOT_FOR_OPERATORS = re.compile(r"uv run reflex run|is being redefined with the same component")


def for_operators(line: str) -> bool:
    """Whether a line of Reflex's build output is shown (see ``_NOT_FOR_OPERATORS``)."""
    return not _NOT_FOR_OPERATORS.search(line)


def _export(root: Path, env: dict[str, str]) -> None:
    """``reflex export`` of the front end only, unzipped, in production mode; its output
    (stdout and stderr) is passed on to this process's stdout, without Reflex's hints."""
    reflex = shutil.which("reflex", path=str(Path(sys.executable).parent)) or "reflex"
    stamp_path(root).unlink(missing_ok=True)  # a half-made build is never current
    with subprocess.Popen(  # noqa: S603 - our venv's reflex, fixed arguments
            [reflex, "export", "--frontend-only", "--no-zip", "--env", "prod"], cwd=root,
            env={**env, "REFLEX_API_URL": PLACEHOLDER_API_URL}, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, errors="replace") as proc:
        for line in proc.stdout or ():
            if for_operators(line):
                sys.stdout.write(line)
                sys.stdout.flush()
    if proc.returncode != 0 or not (static_dir(root) / "index.html").is_file():
        raise BuildFailed(f"`reflex export` failed (exit status {proc.returncode}): its "
                          "output is above")
