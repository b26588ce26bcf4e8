"""The sim's HTTP server: stdlib ``ThreadingHTTPServer`` on 127.0.0.1 only.

Routes (docs/PROVIDERS.md, "The reference provider"):

- the casino's calls, Hub88 side (RSA-signed, ``X-Hub88-Signature``):
  ``POST /operator/generic/v2/game/list``, ``.../game/url``, ``.../game/round``;
- the casino's calls, BGaming side (HMAC-signed, ``X-REQUEST-SIGN``):
  ``POST /sessions``, ``/demo``, ``/games``;
- the player's: ``GET /play/<session>`` (the game page, for an iframe), its script and
  style under ``/static/``, ``GET /api/session/<session>``, ``POST /api/session/<session>/
  spin|step|stop``, ``GET /round/<key>`` (recall page; ``.json`` for its data), thumbnails
  under ``/assets/``;
- tests and staff: ``POST /api/round`` (a whole round without a browser, every wallet call
  in the answer), ``GET|POST /sim/control`` (misbehaviour), ``GET /health``.
"""

from __future__ import annotations

import json
import logging
import re
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from ipaddress import ip_address
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from casino_app.provider_sim import catalog, pages, signing
from casino_app.provider_sim.misbehave import Misbehaviour
from casino_app.provider_sim.rounds import OPEN, PlayError, Round, Session, Studio
from casino_app.provider_sim.state import SimState, load_or_create

log = logging.getLogger("provider_sim")
MAX_BODY = 1 << 20
HUB88_PREFIX = "/operator/generic/v2/game/"
PLATFORMS = ("GPL_DESKTOP", "GPL_MOBILE")
DEMO_CURRENCY_HUB88 = "XXX"
STATIC = {"game.js": "text/javascript; charset=utf-8", "game.css": "text/css; charset=utf-8"}
ASSET = re.compile(r"/assets/(thumbs|backgrounds)/([a-z0-9-]+)\.svg")
SESSION_API = re.compile(r"/api/session/([A-Za-z0-9_-]+)(?:/(spin|step|stop))?")


class Reply(Exception):
    """An answer decided early (an error): status, JSON body."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(str(body))
        self.status, self.body = status, body


def _origins(*urls: str) -> list[str]:
    """The origins of the casino's pages given at launch (the page's allowed framers), with
    localhost and 127.0.0.1 standing for each other."""
    out: list[str] = []
    for url in urls:
        parts = urlsplit(url) if isinstance(url, str) else None
        if not parts or parts.scheme not in ("http", "https") or not parts.hostname:
            continue
        port = f":{parts.port}" if parts.port else ""
        hosts = [parts.hostname]
        twins = {"localhost": "127.0.0.1", "127.0.0.1": "localhost"}
        if parts.hostname in twins:
            hosts.append(twins[parts.hostname])
        for host in hosts:
            origin = f"{parts.scheme}://{host}{port}"
            if origin not in out:
                out.append(origin)
    return out


def _text(body: dict[str, Any], name: str, *, required: bool = True) -> str:
    value = body.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise ValueError(f"{name} must be a non-empty string")
    return value


class SimServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, state: SimState, studio_args: dict[str, Any],
                 public_url: str | None, verbose: bool) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.state = state
        self.origin = (public_url or f"http://127.0.0.1:{self.server_address[1]}").rstrip("/")
        self.studio = Studio(state, self.origin, **studio_args)
        self.verbose = verbose


class Handler(BaseHTTPRequestHandler):
    server: SimServer
    server_version = "HashHouseSim/1"
    sys_version = ""

    # --- plumbing -----------------------------------------------------------------------
    def log_message(self, fmt: str, *args: Any) -> None:
        if self.server.verbose:
            log.info("%s %s", self.address_string(), fmt % args)

    @property
    def studio(self) -> Studio:
        return self.server.studio

    @property
    def state(self) -> SimState:
        return self.server.state

    def _send(self, status: int, body: bytes, content_type: str,
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if "Cache-Control" not in (headers or {}):
            self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(data).encode(), "application/json", headers)

    def _signed(self, status: int, data: Any, dialect: str) -> None:
        """An answer to the casino, signed like the dialect signs (spoiled while the
        "bad-signature" misbehaviour is on)."""
        raw = json.dumps(data, separators=(",", ":")).encode()
        if dialect == "hub88":
            header, signature = signing.HUB88_HEADER, signing.rsa_sign(self.state.hub88_key,
                                                                       raw)
        else:
            header = signing.BGAMING_HEADER
            signature = signing.hmac_sign(self.state.bgaming_secret, raw)
        if Misbehaviour.BAD_SIGNATURE in self.studio.misbehave:
            signature = signing.spoiled(signature)
        self._send(status, raw, "application/json", {header: signature})

    def _html(self, body: str, frame_origins: list[str]) -> None:
        self._send(200, body.encode(), "text/html; charset=utf-8",
                   {"Content-Security-Policy": pages.csp(frame_origins)})

    def _body(self) -> bytes:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            raise Reply(413, {"error": "body too large or without a length"})
        return self.rfile.read(length)

    @staticmethod
    def _object(raw: bytes) -> dict[str, Any]:
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise ValueError("the body is not JSON") from None
        if not isinstance(body, dict):
            raise ValueError("the body is not a JSON object")
        return body

    def _json_request(self) -> dict[str, Any]:
        """A player's or a test's POST: JSON only (a form cannot post it from another
        site without the CORS preflight this server never answers)."""
        if not (self.headers.get("Content-Type") or "").startswith("application/json"):
            raise Reply(415, {"error": "send application/json"})
        try:
            return self._object(self._body())
        except ValueError as exc:
            raise Reply(400, {"error": str(exc)}) from None

    def _loopback(self) -> bool:
        try:
            return ip_address(self.client_address[0]).is_loopback
        except ValueError:
            return False

    # --- dispatch -----------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self._dispatch(self._get)

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's name
        self._dispatch(self._get)

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self._dispatch(self._post)

    def _dispatch(self, route: Any) -> None:
        path = urlsplit(self.path).path
        try:
            route(path)
        except Reply as reply:
            self._json(reply.status, reply.body)
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception:
            log.exception("%s %s", self.command, path)
            try:
                self._json(500, {"error": "internal error"})
            except OSError:
                pass

    def _get(self, path: str) -> None:
        if path == "/health":
            return self._json(200, {"ok": True, "unsettled": self.studio.unsettled()})
        if path == "/sim/control":
            return self._json(200, {"misbehave": self.studio.misbehave,
                                    "known": list(Misbehaviour.ALL),
                                    "unsettled": self.studio.unsettled()})
        if path.startswith("/play/"):
            session = self._session(path.removeprefix("/play/"))
            return self._html(pages.play_page(session.info.name), session.frame_origins)
        if path.startswith("/static/") and path.removeprefix("/static/") in STATIC:
            name = path.removeprefix("/static/")
            data = resources.files("casino_app.provider_sim").joinpath("static", name)
            return self._send(200, data.read_bytes(), STATIC[name],
                              {"Cache-Control": "public, max-age=300"})
        asset = ASSET.fullmatch(path)
        if asset and asset[2] in catalog.GAMES:
            svg = catalog.thumbnail_svg(catalog.GAMES[asset[2]], asset[1] == "backgrounds")
            return self._send(200, svg, "image/svg+xml", {
                "Cache-Control": "public, max-age=86400",
                "Access-Control-Allow-Origin": "*",
                "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"})
        api = SESSION_API.fullmatch(path)
        if api and not api[2]:
            return self._json(200, self.studio.view(self._session(api[1])))
        if path.startswith("/round/"):
            return self._recall(path.removeprefix("/round/"))
        raise Reply(404, {"error": "not found"})

    def _post(self, path: str) -> None:
        if path.startswith(HUB88_PREFIX):
            return self._hub88(path.removeprefix(HUB88_PREFIX))
        if path in ("/sessions", "/demo", "/games"):
            return self._bgaming(path)
        if path == "/sim/control":
            return self._control()
        if path == "/api/round":
            return self._test_round()
        api = SESSION_API.fullmatch(path)
        if api and api[2]:
            return self._play(self._session(api[1]), api[2])
        raise Reply(404, {"error": "not found"})

    # --- Hub88 side: the casino calls the aggregator ------------------------------------
    def _hub88(self, action: str) -> None:
        raw = self._body()
        key = self.state.casino_public_key()
        if key is None:
            return self._signed(401, {"error": "no casino public key: write it to "
                                               "casino_public.pem in the sim's state folder"},
                                "hub88")
        if not signing.rsa_verify(key, raw, self.headers.get(signing.HUB88_HEADER)):
            log.warning("hub88 %s: bad signature", action)
            return self._signed(401, {"error": "invalid signature"}, "hub88")
        try:
            body = self._object(raw)
        except ValueError as exc:
            return self._signed(400, {"error": str(exc)}, "hub88")
        if str(body.get("operator_id")) != self.state.casino_id:
            return self._signed(403, {"error": "unknown operator_id"}, "hub88")
        try:
            status, answer = self._hub88_action(action, body)
        except ValueError as exc:
            status, answer = 400, {"error": str(exc)}
        self._signed(status, answer, "hub88")

    def _hub88_action(self, action: str, body: dict[str, Any]) -> tuple[int, Any]:
        origin = self.server.origin
        if action == "list":
            return 200, [catalog.hub88_game(g, origin) for g in catalog.GAMES.values()]
        if action == "url":
            game = _text(body, "game_code")
            if game not in catalog.GAMES:
                return 404, {"error": f"unknown game_code {game!r}"}
            platform = body.get("platform", "GPL_DESKTOP")
            if platform not in PLATFORMS:
                raise ValueError("platform must be GPL_DESKTOP or GPL_MOBILE")
            currency = _text(body, "currency")
            demo = currency == DEMO_CURRENCY_HUB88
            user = _text(body, "user", required=not demo)
            token = _text(body, "token", required=not demo)
            lobby, deposit = (_text(body, "lobby_url", required=False),
                              _text(body, "deposit_url", required=False))
            session = self.studio.new_session(
                dialect="hub88", demo=demo, game=game, currency=currency, user=user,
                token=token, lobby_url=lobby, deposit_url=deposit,
                frame_origins=_origins(lobby, deposit))
            return 200, {"url": self.studio.launch_url(session)}
        if action == "round":
            found = self.studio.find_round(_text(body, "round"))
            session = self.studio.session(found.sid) if found else None
            if found is None or session is None or found.dialect != "hub88" \
                    or session.player.user != body.get("user") \
                    or body.get("transaction_uuid") not in found.action_ids:
                return 404, {"error": "no such round for this user and transaction"}
            return 200, {"url": self.studio.recall_url(found)}
        return 404, {"error": "not found"}

    # --- BGaming side: the casino calls the studio --------------------------------------
    def _bgaming(self, path: str) -> None:
        raw = self._body()
        if not signing.hmac_verify(self.state.bgaming_secret, raw,
                                   self.headers.get(signing.BGAMING_HEADER)):
            log.warning("bgaming %s: bad signature", path)
            return self._signed(412, {"code": 403, "message": "invalid signature"}, "bgaming")
        try:
            body = self._object(raw)
        except ValueError as exc:
            return self._signed(412, {"code": 400, "message": str(exc)}, "bgaming")
        if str(body.get("casino_id")) != self.state.casino_id:
            return self._signed(412, {"code": 400, "message": "unknown casino_id"},
                                "bgaming")
        try:
            status, answer = self._bgaming_action(path, body)
        except ValueError as exc:
            status, answer = 412, {"code": 400, "message": str(exc)}
        self._signed(status, answer, "bgaming")

    def _bgaming_action(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        origin = self.server.origin
        if path == "/games":
            return 200, {"games": [catalog.bgaming_game(g, origin)
                                   for g in catalog.GAMES.values()]}
        game = _text(body, "game")
        if game not in catalog.GAMES:
            return 412, {"code": 405, "message": f"game {game!r} is not available"}
        urls = body.get("urls") if isinstance(body.get("urls"), dict) else {}
        return_url, deposit_url = (str(urls.get("return_url") or ""),
                                   str(urls.get("deposit_url") or ""))
        if path == "/demo":
            session = self.studio.new_session(
                dialect="bgaming", demo=True, game=game, currency="", user="", token="",
                lobby_url=return_url, deposit_url=deposit_url,
                frame_origins=_origins(return_url, deposit_url))
        else:
            user = body.get("user")
            if not isinstance(user, dict):
                raise ValueError("user must be an object {id, nickname}")
            session = self.studio.new_session(
                dialect="bgaming", demo=False, game=game, currency=_text(body, "currency"),
                user=_text(user, "id"), token="", session_id=_text(body, "session_id"),
                lobby_url=return_url, deposit_url=deposit_url,
                frame_origins=_origins(return_url, deposit_url))
        return 200, {"launch_options": {"game_url": self.studio.launch_url(session),
                                        "strategy": "iframe"}}

    # --- the player's page and the tests' rounds ----------------------------------------
    def _session(self, sid: str) -> Session:
        session = self.studio.session(sid)
        if session is None:
            raise Reply(404, {"error": "this game session is unknown or has ended"})
        return session

    def _play(self, session: Session, action: str) -> None:
        body = self._json_request()
        try:
            if action == "spin":
                r = self.studio.spin(session, body.get("stake"))
            elif action == "step":
                r = self.studio.step(session, body.get("stake"))
            else:
                r = self.studio.stop(session)
        except PlayError as exc:
            raise Reply(400, {"error": str(exc)}) from None
        self._json(200, {"round": r.public(session.digits),
                         "next_seed_hash": self.studio.next_seed_hash(session),
                         "recall_url": self.studio.recall_url(r)})

    def _test_round(self) -> None:
        """A whole round in one request: ``{session, stake, steps}`` (steps: the ladder's
        number of steps before stopping, 1 by default). The answer is the round's full
        record with every wallet call."""
        body = self._json_request()
        session = self._session(str(body.get("session", "")))
        try:
            if session.info.kind == "spin":
                r = self.studio.spin(session, body.get("stake"))
            else:
                steps = body.get("steps", 1)
                if not isinstance(steps, int) or not 1 <= steps <= catalog.LADDER_STEPS:
                    raise PlayError(f"steps is 1 to {catalog.LADDER_STEPS}")
                r = self.studio.step(session, body.get("stake"))
                for _ in range(steps - 1):
                    climbed = len(r.steps)
                    if r.status != OPEN or session.open_round is not r:
                        break
                    r = self.studio.step(session, body.get("stake"))
                    if len(r.steps) == climbed:  # refused (money, a limit): stop there
                        break
                if r.status == OPEN and session.open_round is r and r.bet_ids:
                    r = self.studio.stop(session)
        except PlayError as exc:
            raise Reply(400, {"error": str(exc)}) from None
        self._json(200, {**r.to_json(session.digits),
                         "recall_url": self.studio.recall_url(r),
                         "next_seed_hash": self.studio.next_seed_hash(session)})

    def _recall(self, key: str) -> None:
        as_json = key.endswith(".json")
        r: Round | None = self.studio.round_by_key(key.removesuffix(".json"))
        if r is None:
            raise Reply(404, {"error": "no such round"})
        session = self.studio.session(r.sid)
        digits = session.digits if session else 2
        if as_json:
            return self._json(200, r.public(digits))
        self._html(pages.recall_page(r, digits, session.currency if session else ""),
                   session.frame_origins if session else [])

    def _control(self) -> None:
        if not self._loopback():
            raise Reply(403, {"error": "loopback only"})
        body = self._json_request()
        try:
            names = self.studio.set_misbehave(body.get("misbehave", []))
        except ValueError as exc:
            raise Reply(400, {"error": str(exc)}) from None
        log.info("misbehave: %s", names or "none")
        self._json(200, {"misbehave": names, "known": list(Misbehaviour.ALL)})


def serve(*, port: int, state_dir: Path, hub88_wallet: str, bgaming_wallet: str,
          public_url: str | None = None, misbehave: str = "", wallet_timeout: float = 5.0,
          retry_every: float = 2.0, verbose: bool = False) -> int:
    """Start, print the ready line, serve until SIGTERM or SIGINT."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the rounds log their own calls
    state = load_or_create(state_dir)
    studio_args = {"hub88_wallet": hub88_wallet, "bgaming_wallet": bgaming_wallet,
                   "timeout": wallet_timeout, "retry_every": retry_every,
                   "misbehave": Misbehaviour.parse(misbehave)}
    server = SimServer(port, state, studio_args, public_url, verbose)
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                              name="sim-http", daemon=True)
    thread.start()
    print(json.dumps({"ready": True, "port": server.server_address[1],
                      "url": server.origin, "casino_id": state.casino_id,
                      "hub88_public_key_file": str(state.hub88_public_file.resolve()),
                      "bgaming_secret_file": str(state.bgaming_secret_file.resolve())}),
          flush=True)
    stopping.wait()
    server.shutdown()
    server.server_close()
    server.studio.close()
    return 0
