"""A browser tab without a browser: a Socket.IO client that speaks Reflex 0.10's event
protocol to a running HashHouse (``casino run``), the way the compiled front end does.

What the front end does, and so what ``Tab`` does:

- It connects to ``/_event`` (Socket.IO path ``_event``; the URL's path is also the
  namespace, so events live in namespace ``/_event``) with ``?token=<client token>`` (one
  random id per tab) and the boot event in the CONNECT packet's auth: ``hydrate_and_load``
  with the client-storage values and the page's router data (pathname, asPath, query).
  The handshake carries the browser's cookies: ``hh_bind`` (set by the first page load)
  and the HttpOnly session cookie ``hh_session`` (on https ``__Host-``-prefixed), which
  the handlers read from the handshake.
- When a handler opens, rotates or ends a session it puts ``SessionState.cookie_op`` in
  the tab's state; the page POSTs its handoff code to ``/api/session/adopt`` (or calls
  ``/api/session/clear``) and gets the new cookie back. ``Tab`` does the same, so its
  ``token`` follows the session like the browser's cookie does (it reaches the server on
  the next handshake; until then the server uses the token it bound to this socket).
- The server answers with ``event`` messages ``{"delta": {state: {var_rx_state_: value}},
  "events": [frontend events]}``; the page's on_load handlers run, and the last one sets
  the root state's ``is_hydrated`` back to true.
- An event is ``{"name": "<state full name>.<handler>", "payload": {arg: value},
  "router_data": {...}}``. Navigating to another page sends ``update_vars_internal`` (the
  client storage again) and ``on_load_internal`` with the new page's router data.
- A handler that changes nothing gets no answer at all (no delta, no "final" message).
  ``call`` therefore sends a harmless *barrier* event after the one it wants answered:
  the server processes one tab's events in order, so once the barrier's delta is back,
  everything the first event caused has arrived.

State names are Reflex's full names (``state_name(GameState)`` or the string, e.g.
``reflex___state____state.casino_app___ui___state___games____game_state``); a var's key in
a delta is its name plus ``_rx_state_`` (``v("balance")``).

This is also an attacker's client: nothing stops a caller from sending any event name,
payload or router data, which is what tests/security does with it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

NAMESPACE = "/_event"
SOCKETIO_PATH = "_event"
FIELD = "_rx_state_"
ROOT_STATE = "reflex___state____state"
HYDRATE = f"{ROOT_STATE}.hydrate_and_load"
ON_LOAD_INTERNAL = f"{ROOT_STATE}.reflex___state____on_load_internal_state.on_load_internal"
UPDATE_VARS_STATE = f"{ROOT_STATE}.reflex___state____update_vars_internal_state"
UPDATE_VARS_INTERNAL = f"{UPDATE_VARS_STATE}.update_vars_internal"
SESSION_STATE = f"{ROOT_STATE}.casino_app___ui___state___session____session_state"
LOBBY_STATE = f"{ROOT_STATE}.casino_app___ui___state___games____lobby_state"
# The session travels as a cookie of the socket's handshake (plain http: no __Host-).
SESSION_COOKIE = "hh_session"
BIND_COOKIE = "hh_bind"
# What older versions kept in localStorage (the app ignores and deletes it): client
# storage travels keyed by the var's full name plus the field marker.
TOKEN_VAR = f"{SESSION_STATE}.token{FIELD}"
# The barrier: a lobby search only sets LobbyState.query (no database, no money), and a
# new text always changes it, so it always gets an answer.
BARRIER = f"{LOBBY_STATE}.search_games"
UA = "Mozilla/5.0 (X11; Linux x86_64) hh-tests/reflex_client"
TIMEOUT = 120.0


def v(name: str) -> str:
    """A plain state var's key in a delta."""
    return f"{name}{FIELD}"


def state_name(state: Any) -> str:
    """The full name of a state class (or a full name given as a string)."""
    return state if isinstance(state, str) else state.get_full_name()


@dataclass(frozen=True)
class Boot:
    """What the compiled front end sends on its first connect besides the hydrate: the
    state schema and the hashes of its initial state (then the server sends only what
    differs). Both optional: without them the server sends the whole state."""

    schema: str | None = None
    hashes: list[str] | None = None

    @classmethod
    def from_build(cls, root: Path) -> Boot:
        """Read from ``root``/.web (the build the app serves)."""
        try:
            text = (root / ".web" / "utils" / "context.jsx").read_text()
        except OSError:
            return cls()
        schema = re.search(r'^export const stateSchema = "([0-9a-f]+)"', text, re.M)
        hashes = re.search(r"^export const initialStateHashes = (\[.*\])$", text, re.M)
        return cls(schema.group(1) if schema else None,
                   json.loads(hashes.group(1)) if hashes else None)


def router_data(page: str) -> dict[str, Any]:
    """What the front end sends as an event's router data on ``page`` ("/bets/bet?id=4")."""
    parts = urlsplit(page)
    data: dict[str, Any] = {"pathname": parts.path or "/", "asPath": page}
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    if query:
        data["query"] = query
    return data


def strings(value: Any) -> Iterator[str]:
    """Every string inside a JSON-like value (keys included)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, item in value.items():
            yield str(k)
            yield from strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from strings(item)


@dataclass
class Answer:
    """What the server sent in reply to one event: its deltas (merged, per state) and the
    front-end events it asked for (redirects, toasts, scripts)."""

    delta: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)

    def get(self, state: Any, name: str, default: Any = None) -> Any:
        return self.delta.get(state_name(state), {}).get(v(name), default)

    def changed(self, state: Any, name: str) -> bool:
        return v(name) in self.delta.get(state_name(state), {})

    @property
    def redirects(self) -> list[str]:
        """Paths of the ``rx.redirect`` events in the answer."""
        return [str((e.get("payload") or {}).get("path", "")) for e in self.events
                if e.get("name") == "_redirect"]

    @property
    def text(self) -> str:
        """Everything in the answer as one string (for "is X mentioned anywhere")."""
        return "\n".join(strings(self.updates))


class Tab:
    """One browser tab of one visitor: its own client token and (optional) session token.

    ``open`` connects on a page and waits for its on_load chain; ``goto`` navigates;
    ``call`` sends one event and returns its ``Answer``; ``emit`` + ``until`` are the
    lower-level pair (``until`` returns the arrival time, for benchmarks). ``seen`` is the
    tab's view: every delta received, merged; ``log`` keeps every update.
    """

    def __init__(self, url: str, token: str = "", page: str = "/", boot: Boot | None = None,
                 user_agent: str = UA, timeout: float = TIMEOUT,
                 storage: dict[str, Any] | None = None, keep_log: bool = True) -> None:
        self.url = url
        self.token = token
        # more client storage to send with the hydrate and each navigation, keyed by the
        # var's full name plus the field marker (what a browser keeps in localStorage and
        # cookies; an attacker can put anything there)
        self.storage = dict(storage or {})
        self.page = page
        self.boot = boot or Boot()
        self.user_agent = user_agent
        self.timeout = timeout
        self.client_token = str(uuid.uuid4())
        self.bind = ""  # the hh_bind cookie, fetched by the first open()
        self.inbox: asyncio.Queue[tuple[float, dict[str, Any]]] = asyncio.Queue()
        self.seen: dict[str, dict[str, Any]] = {}
        self.log: list[dict[str, Any]] = []  # every update (``call`` needs it)
        self.keep_log = keep_log              # off: a long benchmark's memory
        self.received = 0                     # updates received
        self.mismatch = False
        self._barriers = itertools.count(1)
        self.sio = self._socket()

    def _socket(self) -> Any:
        import socketio

        sio = socketio.AsyncClient(reconnection=False)
        sio.on("event", self._on_event, namespace=NAMESPACE)
        sio.on("state_mismatch", self._on_mismatch, namespace=NAMESPACE)
        sio.on("new_token", self._on_new_token, namespace=NAMESPACE)
        return sio

    # --- receiving ---

    def _on_event(self, update: Any) -> None:
        if isinstance(update, str):
            update = json.loads(update)
        self.inbox.put_nowait((time.perf_counter(), update))

    def _on_mismatch(self, *_: Any) -> None:
        self.mismatch = True

    def _on_new_token(self, token: Any) -> None:
        """The server took this tab for a copy of another (its token already had a
        socket) and gave it a new one: the browser keeps it for its next connect."""
        if isinstance(token, str) and token:
            self.client_token = token

    def _merge(self, update: dict[str, Any]) -> None:
        self.received += 1
        if self.keep_log:
            self.log.append(update)
        for sub, values in (update.get("delta") or {}).items():
            self.seen.setdefault(sub, {}).update(values)
        op = (update.get("delta") or {}).get(SESSION_STATE, {}).get(v("cookie_op"))
        if isinstance(op, dict) and op.get("id"):
            self._cookie_op(op)

    def _cookie_op(self, op: dict[str, Any]) -> None:
        """What the page's compiled code does with ``cookie_op``: POST the handoff code
        with this browser's cookies and keep the cookie the answer sets."""
        import httpx

        kind = "adopt" if op.get("kind") == "adopt" else "clear"
        r = httpx.post(f"{self.url}/api/session/{kind}",
                       data={"code": op.get("code", "")} if op.get("code") else {},
                       headers={"Origin": self.url, "Cookie": self._cookie_header(),
                                "User-Agent": self.user_agent}, timeout=self.timeout)
        if r.status_code >= 400:
            return  # a refused code sets nothing, as in the browser
        for value in r.headers.get_list("set-cookie"):
            name, _, rest = value.partition("=")
            if name.strip().endswith(SESSION_COOKIE):
                token = rest.split(";", 1)[0]
                self.token = "" if "Max-Age=0" in value else token

    def _cookie_header(self) -> str:
        parts = [f"{BIND_COOKIE}={self.bind}"] if self.bind else []
        if self.token:
            parts.append(f"{SESSION_COOKIE}={self.token}")
        return "; ".join(parts)

    def _fetch_bind_cookie(self) -> None:
        """A browser's first page load gets the bind cookie from the middleware."""
        import httpx

        r = httpx.get(f"{self.url}/", headers={"User-Agent": self.user_agent},
                      timeout=self.timeout)
        for value in r.headers.get_list("set-cookie"):
            name, _, rest = value.partition("=")
            if name.strip().endswith(BIND_COOKIE):
                self.bind = rest.split(";", 1)[0]

    async def until(self, match: Callable[[dict[str, Any]], bool],
                    timeout: float | None = None) -> tuple[float, dict[str, Any]]:
        """The first update that ``match``es (earlier ones are merged into ``seen`` and
        skipped); returns its arrival time (perf_counter) and the update."""
        deadline = time.perf_counter() + (timeout or self.timeout)
        while True:
            left = deadline - time.perf_counter()
            if left <= 0:
                raise TimeoutError(f"no matching answer within {timeout or self.timeout} s")
            try:
                t, update = await asyncio.wait_for(self.inbox.get(), left)
            except TimeoutError:
                raise TimeoutError(
                    f"no matching answer within {timeout or self.timeout} s") from None
            self._merge(update)
            if match(update):
                return t, update

    def var(self, state: Any, name: str, default: Any = None) -> Any:
        """A var as this tab last saw it."""
        return self.seen.get(state_name(state), {}).get(v(name), default)

    @property
    def hydrated(self) -> bool:
        return self.var(ROOT_STATE, "is_hydrated") is True

    # --- sending ---

    def _client_storage(self) -> dict[str, Any]:
        return dict(self.storage)

    async def open(self, page: str | None = None, timeout: float | None = None) -> float:
        """Connect on ``page`` with the hydrate in the CONNECT packet, as the browser does,
        and wait for the page's on_load chain to end (is_hydrated true). Seconds taken."""
        self.page = page or self.page
        payload: dict[str, Any] = {}
        if storage := self._client_storage():
            payload["vars"] = storage
        if self.boot.hashes:
            payload["hashes"] = self.boot.hashes
        auth: dict[str, Any] = {"event": {"name": HYDRATE, "payload": payload,
                                          "router_data": router_data(self.page)}}
        if self.boot.schema:
            auth["state_schema"] = self.boot.schema
        if not self.bind:
            await asyncio.to_thread(self._fetch_bind_cookie)
        t0 = time.perf_counter()
        headers = {"User-Agent": self.user_agent, "Origin": self.url}
        if cookie := self._cookie_header():
            headers["Cookie"] = cookie
        await self.sio.connect(f"{self.url}?token={self.client_token}",
                               socketio_path=SOCKETIO_PATH, namespaces=[NAMESPACE],
                               transports=["websocket"], auth=auth, headers=headers,
                               wait_timeout=timeout or self.timeout)
        t, _ = await self.until(self._hydrated_again, timeout)
        return t - t0

    @staticmethod
    def _hydrated_again(update: dict[str, Any]) -> bool:
        root = (update.get("delta") or {}).get(ROOT_STATE, {})
        return root.get(v("is_hydrated")) is True

    async def goto(self, page: str, timeout: float | None = None) -> Answer:
        """Navigate to ``page`` inside the app (no reconnect) and wait for its on_load
        chain; the answer holds everything the on_load handlers sent."""
        assert self.keep_log, "goto needs the tab's log"
        await self.drain()  # nothing from before the navigation counts as its answer
        self.page = page
        start = len(self.log)
        if storage := self._client_storage():
            await self.emit(UPDATE_VARS_INTERNAL, {"vars": storage})
        await self.emit(ON_LOAD_INTERNAL)
        await self.until(self._hydrated_again, timeout)
        return self._answer(start)

    async def emit(self, handler: str, payload: dict[str, Any] | None = None,
                   page: str | None = None) -> float:
        """Send one event (``handler`` is "<state full name>.<name>") with the router data
        of the tab's page (or ``page``); returns the time it was sent."""
        t0 = time.perf_counter()
        await self.sio.emit("event", {"name": handler, "payload": payload or {},
                                      "router_data": router_data(page or self.page)},
                            namespace=NAMESPACE)
        return t0

    async def barrier(self, timeout: float | None = None) -> None:
        """Return once the server has processed every event this tab sent before."""
        text = f"barrier-{next(self._barriers)}-{secrets.token_hex(3)}"
        await self.emit(BARRIER, {"text": text})

        def done(update: dict[str, Any]) -> bool:
            return (update.get("delta") or {}).get(LOBBY_STATE, {}).get(v("query")) == text

        await self.until(done, timeout)

    def _answer(self, start: int, end: int | None = None) -> Answer:
        out = Answer()
        for update in self.log[start:end]:
            out.updates.append(update)
            for sub, values in (update.get("delta") or {}).items():
                out.delta.setdefault(sub, {}).update(values)
            out.events.extend(update.get("events") or [])
        return out

    async def call(self, state: Any, handler: str, timeout: float | None = None,
                   page: str | None = None, **payload: Any) -> Answer:
        """Send ``state``.``handler`` with ``payload`` as its arguments and return what the
        server sent back for it (possibly nothing: a refused or unknown event)."""
        assert self.keep_log, "call needs the tab's log"
        await self.drain()
        start = len(self.log)
        await self.emit(f"{state_name(state)}.{handler}", payload, page=page)
        await self.barrier(timeout)
        answer = self._answer(start, len(self.log) - 1)  # without the barrier's own delta
        return answer

    async def drain(self) -> None:
        """Merge whatever already arrived (pushes, late answers) into ``seen``."""
        while not self.inbox.empty():
            self._merge(self.inbox.get_nowait()[1])

    def everything(self) -> str:
        """Every string this tab has received, as one text."""
        return "\n".join(strings(self.log))

    async def reconnect(self, timeout: float | None = None) -> float:
        """Drop the socket and connect again with the same client token, as the browser
        does after a network drop, and wait for the rehydrate (the page's on_load chain
        runs again); seconds taken. Behind several workers it may land on another one."""
        await self.close()
        await self.drain()
        self.sio = self._socket()
        return await self.open(timeout=timeout)

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()
        await asyncio.sleep(0.05)  # let aiohttp close its session inside the loop

    async def __aenter__(self) -> Tab:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def socket_owner(redis_url: str, client_token: str) -> str | None:
    """Behind several workers on Redis: the id of the worker process that holds the
    socket of the tab ``client_token`` (Reflex's ``RedisTokenManager`` keeps a record per
    connected tab, written by the worker that accepted the socket), None when no socket
    is connected."""
    import pickle

    import redis
    from reflex.utils.token_manager import RedisTokenManager

    client = redis.Redis.from_url(redis_url)
    try:
        raw = client.get(RedisTokenManager._token_socket_record_prefix + client_token)
    finally:
        client.close()
    # a record that Reflex pickled into our own private Redis
    return pickle.loads(raw).instance_id if raw else None  # noqa: S301
