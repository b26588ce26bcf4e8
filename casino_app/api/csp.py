"""The inline scripts of the built front end, as CSP hash sources.

Reflex 0.10 prerenders every page to a static HTML file under ``.web/build/client``
(React Router, ``prerender: true``, ``ssr: false``). Each file carries inline ``<script>``
blocks that must run for the page to hydrate: Reflex's colour-mode preload, our service
worker registration (``ui/pwa.py``), React Router's scroll restoration, its
``window.__reactRouterContext`` and route-module ``import`` block, and React's streaming
helpers (``$RC``, ``$RT``). They are the same for every response of a build, so instead of
``'unsafe-inline'`` the CSP lists the SHA-256 of each one (``'sha256-...'``), computed here
from the files that are served. A script that is not in the build (an injected one) has
no hash in the list and does not run.

The list is read again when the build changes (the mtime of ``index.html``), so a
rebuild behind a running process does not leave its pages without their hashes.
"""

from __future__ import annotations

import base64
import hashlib
import re
import threading
from pathlib import Path

# An inline script element and its text, exactly as the browser hashes it (the raw bytes
# between the tags: script text is not entity-decoded).
_SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script\s*>", re.S | re.I)
_SRC_ATTR = re.compile(r"\ssrc\s*=", re.I)


def hash_source(script_text: str) -> str:
    """The CSP source expression that allows exactly this inline script."""
    digest = hashlib.sha256(script_text.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def inline_script_hashes(html: str) -> set[str]:
    """The hash sources of the inline scripts in one HTML document."""
    out = set()
    for attrs, text in _SCRIPT.findall(html):
        if text and not _SRC_ATTR.search(" " + attrs):
            out.add(hash_source(text))
    return out


def build_script_hashes(build_dir: Path) -> tuple[str, ...]:
    """The hash sources of every inline script in every HTML file of a build, sorted
    (an empty tuple when there is no build)."""
    found: set[str] = set()
    if build_dir.is_dir():
        for page in build_dir.rglob("*.html"):
            found |= inline_script_hashes(page.read_text(encoding="utf-8", errors="replace"))
    return tuple(sorted(found))


class BuildScriptHashes:
    """``build_script_hashes`` of one folder, cached until its ``index.html`` changes."""

    def __init__(self, build_dir: Path | None) -> None:
        self.build_dir = build_dir
        self._key: tuple[int, int] | None = None
        self._hashes: tuple[str, ...] = ()
        self._lock = threading.Lock()

    def current(self) -> tuple[str, ...]:
        if self.build_dir is None:
            return ()
        try:
            st = (self.build_dir / "index.html").stat()
            key = (st.st_mtime_ns, st.st_size)
        except OSError:
            key = (0, 0)  # no build (yet): try again on the next request
        if key != self._key:
            with self._lock:
                if key != self._key:
                    self._hashes = build_script_hashes(self.build_dir) if key[0] else ()
                    self._key = key
        return self._hashes
