"""Head tags that make HashHouse an installable PWA: manifest, icons, theme colour and
the service worker registration (the files themselves live in assets/, which Reflex
serves at the site root: /manifest.webmanifest, /sw.js, /offline.html, /icons/...).

The registration is a plain inline <script> in the document head (like Reflex's own
colour-mode preload), so it runs from the prerendered HTML before hydration and needs no
React hook; the CSP allows it by its SHA-256, read from the built pages (``api/csp.py``),
like every other inline script of the build.
"""

from __future__ import annotations

import reflex as rx

THEME_COLOR = "#0f1115"
MANIFEST_URL = "/manifest.webmanifest"
SERVICE_WORKER_URL = "/sw.js"

REGISTER_SERVICE_WORKER = """
(function () {
  if (!("serviceWorker" in navigator)) return;
  var register = function () {
    navigator.serviceWorker.register("%s", { scope: "/" }).catch(function (err) {
      console.warn("HashHouse: service worker registration failed", err);
    });
  };
  if (document.readyState === "complete") register();
  else window.addEventListener("load", register, { once: true });
})();
""" % SERVICE_WORKER_URL  # noqa: UP031 - the JS braces would need doubling in an f-string


def head_components() -> list[rx.Component]:
    """Pass to ``rx.App(head_components=...)``."""
    return [
        rx.el.link(rel="manifest", href=MANIFEST_URL),
        rx.el.meta(name="theme-color", content=THEME_COLOR),
        rx.el.meta(name="color-scheme", content="dark"),
        rx.el.link(rel="icon", href="/favicon.ico", sizes="any"),
        rx.el.link(rel="icon", type="image/png", sizes="192x192", href="/icons/icon-192.png"),
        rx.el.link(rel="apple-touch-icon", href="/apple-touch-icon.png"),
        rx.el.meta(name="mobile-web-app-capable", content="yes"),
        rx.el.meta(name="apple-mobile-web-app-capable", content="yes"),
        rx.el.meta(name="apple-mobile-web-app-title", content="HashHouse"),
        rx.el.meta(name="apple-mobile-web-app-status-bar-style", content="black"),
        rx.el.script(REGISTER_SERVICE_WORKER),
    ]
