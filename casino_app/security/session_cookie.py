"""The browser keeps its session token in an HttpOnly cookie; how it gets there.

Reflex runs every handler over its websocket, and a websocket message cannot set a
cookie: only an HTTP response can. Reflex (0.10) does give the server the ``Cookie``
header of the socket's handshake (``router.headers.cookie``, never sent back to the
page), so the socket can *read* the cookie, and the page needs one HTTP call to *set* it:

1. A handler that opens or rotates a session (sign-in, 2FA step, registration, password
   or 2FA change) seals the new token into a **handoff code** (AES-GCM under the
   keyring, valid ``HANDOFF_SECONDS``) bound to the **bind cookie** of that socket, and
   puts the code in the tab's state.
2. Compiled page code (``ui/components/bridge.py``) POSTs the code to
   ``/api/session/adopt`` (``api/session.py``), which opens it, checks that the request
   carries the same bind cookie and that the session is live, and answers with
   ``Set-Cookie`` for the session cookie (HttpOnly, SameSite=Strict, Secure on https).
3. Every later socket handshake of that browser carries the cookie.

The bind cookie (HttpOnly, set by ``SecurityMiddleware`` on the first response to a
browser that has none) is what a script cannot read or send elsewhere: a handoff code
that an injected script copies to another machine does not open there. (Outside
production a socket without a bind cookie, as under ``casino run --env dev`` whose pages
Vite serves, gets codes bound to ``DEVELOPMENT_BIND`` instead; in production a browser
without cookies is told to allow them.)

Cookie names: on https the ``__Host-`` prefix (the browser then refuses the cookie unless
it is Secure, for Path=/ and this exact host, so a sibling subdomain cannot plant or
overwrite it); on plain http (development and tests only: production refuses an http
public URL) the same names without the prefix and without Secure.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from casino_app.core.settings import get_settings
from casino_app.security.crypto import DecryptionError, keyring, token_hash

HANDOFF_SECONDS = 60
# What a code is bound to when the socket had no bind cookie, outside production only:
# ``casino run --env dev`` serves pages from Vite's server, which sets no cookie.
DEVELOPMENT_BIND = "development-unbound"
BIND_MAX_AGE = 400 * 24 * 3600  # what browsers cap a cookie's lifetime at
_MAX_COOKIE_VALUE = 512


@dataclass(frozen=True)
class CookieNames:
    session: str
    bind: str
    secure: bool


def cookie_names(public_url: str | None = None) -> CookieNames:
    url = public_url if public_url is not None else get_settings().public_url
    secure = urlsplit(url).scheme == "https"
    prefix = "__Host-" if secure else ""
    return CookieNames(session=f"{prefix}hh_session", bind=f"{prefix}hh_bind", secure=secure)


def parse_cookie_header(header: str | None) -> dict[str, str]:
    """``name=value; name2=value2`` as a dict (the first value of a repeated name)."""
    out: dict[str, str] = {}
    for part in (header or "").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name and name not in out:
            out[name] = value.strip().strip('"')
    return out


def cookie_value(header: str | None, name: str) -> str:
    value = parse_cookie_header(header).get(name, "")
    return value if len(value) <= _MAX_COOKIE_VALUE else ""


def set_cookie_header(name: str, value: str, *, max_age: int, secure: bool) -> str:
    """A ``Set-Cookie`` value: HttpOnly, SameSite=Strict, Path=/ (Secure on https)."""
    parts = [f"{name}={value}", "Path=/", f"Max-Age={max_age}", "HttpOnly",
             "SameSite=Strict"]
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def new_bind_value() -> str:
    return secrets.token_urlsafe(24)


def _context(bind: str) -> str:
    return "session-handoff:" + token_hash(bind)


def seal_handoff(session_token: str, bind: str, *, now: float | None = None) -> str:
    """A code that ``open_handoff`` turns back into ``session_token`` for HANDOFF_SECONDS,
    and only with the same ``bind`` value (URL-safe text)."""
    if not bind:
        raise ValueError("a handoff needs the browser's bind cookie")
    expires = int((time.time() if now is None else now) + HANDOFF_SECONDS)
    body = json.dumps({"t": session_token, "exp": expires}, separators=(",", ":")).encode()
    blob = keyring().seal(body, _context(bind))
    return base64.urlsafe_b64encode(blob).decode("ascii").rstrip("=")


class HandoffRefused(Exception):
    """The code is malformed, expired, or was made for another browser."""


def open_handoff(code: object, bind: str, *, now: float | None = None) -> str:
    """The session token sealed in ``code``; raises ``HandoffRefused`` otherwise."""
    if not isinstance(code, str) or not code or len(code) > 1024 or not bind:
        raise HandoffRefused("no code")
    try:
        blob = base64.urlsafe_b64decode(code + "=" * (-len(code) % 4))
        body = json.loads(keyring().open(blob, _context(bind)))
    except (binascii.Error, ValueError, DecryptionError) as exc:
        raise HandoffRefused("bad code") from exc
    if not isinstance(body, dict) or not isinstance(body.get("t"), str) \
            or not isinstance(body.get("exp"), int):
        raise HandoffRefused("bad code")
    if (time.time() if now is None else now) > body["exp"]:
        raise HandoffRefused("expired")
    return body["t"]
