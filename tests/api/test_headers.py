"""Security headers, request ids, access logs and the error shield of the outer middleware."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket

from casino_app.core.logging import request_id_var
from tests.api import assemble

EXPECTED = {
    "strict-transport-security": "max-age=63072000; includeSubDomains",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "strict-origin-when-cross-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
    "cross-origin-opener-policy": "same-origin",
}
CSP_DIRECTIVES = {
    "default-src": "'self'",
    # No build here, so no inline script hashes: our own files only.
    "script-src": "'self'",
    "script-src-attr": "'none'",
    # Emotion's <style> elements and Radix's style="" attributes (see middleware.py).
    "style-src": "'self' 'unsafe-inline'",
    "img-src": "'self' data: blob:",
    "font-src": "'self' data:",
    "manifest-src": "'self'",
    "worker-src": "'self'",
    "frame-ancestors": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "object-src": "'none'",
}


async def _page(_r: Request) -> Response:
    return PlainTextResponse("<html>page</html>", media_type="text/html",
                             headers={"Cache-Control": "public, max-age=3600"})


async def _own_csp(_r: Request) -> Response:
    return PlainTextResponse("file", headers={"Content-Security-Policy": "sandbox"})


async def _inner_boom(_r: Request) -> Response:
    raise RuntimeError("inner secret detail")


async def _ws_echo(ws: WebSocket) -> None:
    await ws.accept()
    await ws.send_text("echo:" + await ws.receive_text())
    await ws.close()


async def _raw_inner_error(scope, receive, send):  # type: ignore[no-untyped-def]
    """A raw ASGI app that fails before answering (what a framework bug looks like)."""
    raise RuntimeError("raw secret detail")


def _inner() -> Starlette:
    """Stands in for Reflex's backend: a page, a socket, a file with its own CSP."""
    return Starlette(routes=[
        Route("/", _page),
        Route("/uploaded", _own_csp),
        Route("/inner-boom", _inner_boom),
        WebSocketRoute("/_event", _ws_echo),
    ])


async def _api_boom(_r: Request) -> Response:
    raise RuntimeError("database password is hunter2")


async def _whoami(_r: Request) -> Response:
    return JSONResponse({"request_id": request_id_var.get()})


EXTRA = [Route("/api/test/boom", _api_boom), Route("/api/test/whoami", _whoami)]


@pytest.fixture
def client(base_env: Path) -> Iterator[TestClient]:
    with TestClient(assemble(_inner(), EXTRA)) as c:
        yield c


def _csp(value: str) -> dict[str, str]:
    out = {}
    for part in value.split(";"):
        name, _, rest = part.strip().partition(" ")
        out[name] = rest
    return out


def _assert_security_headers(r: Response) -> None:  # httpx.Response in practice
    for name, value in EXPECTED.items():
        assert r.headers.get(name) == value, name
    csp = _csp(r.headers["content-security-policy"])
    for name, value in CSP_DIRECTIVES.items():
        assert csp.get(name) == value, name
    assert "http:" not in csp["script-src"] and "*" not in r.headers["content-security-policy"]
    assert csp["connect-src"].startswith("'self'")


def test_every_security_header_is_on_api_responses(client: TestClient) -> None:
    r = client.get("/api/livez")
    _assert_security_headers(r)
    assert r.headers["cache-control"] == "no-store"


def test_every_security_header_is_on_pages_from_the_inner_app(client: TestClient) -> None:
    client.cookies.set("hh_bind", "b" * 32)  # a browser that was here before
    r = client.get("/")
    assert r.text == "<html>page</html>"
    _assert_security_headers(r)
    # Pages and static files keep their own caching; only /api is forced to no-store.
    assert r.headers["cache-control"] == "public, max-age=3600"


def test_security_headers_are_on_error_responses_too(client: TestClient) -> None:
    for path in ("/no-such-page", "/api/no-such-route"):
        r = client.get(path)
        assert r.status_code == 404
        _assert_security_headers(r)
    assert client.get("/api/no-such-route").json() == {"error": "not found"}


def test_an_inner_response_keeps_its_own_stricter_csp(client: TestClient) -> None:
    r = client.get("/uploaded")
    assert r.headers["content-security-policy"] == "sandbox"
    assert r.headers["x-frame-options"] == "DENY"


def test_connect_src_is_pinned_to_the_public_origin(monkeypatch: pytest.MonkeyPatch,
                                                    base_env: Path) -> None:
    from casino_app.api.middleware import content_security_policy

    csp = _csp(content_security_policy("https://play.hashhouse.example"))
    assert csp["connect-src"] == "'self' wss://play.hashhouse.example"
    dev = _csp(content_security_policy("http://localhost:3000"))
    assert dev["connect-src"] == "'self' ws://localhost:3000 wss://localhost:3000"
    assert " ws: " not in f" {dev['connect-src']} "


def test_a_valid_request_id_is_echoed_and_seen_by_the_handler(client: TestClient) -> None:
    r = client.get("/api/test/whoami", headers={"X-Request-ID": "lb-4f2a9c-01"})
    assert r.headers["x-request-id"] == "lb-4f2a9c-01"
    assert r.json() == {"request_id": "lb-4f2a9c-01"}


def test_a_missing_or_unsafe_request_id_is_replaced_by_a_new_one(client: TestClient) -> None:
    a = client.get("/api/test/whoami").headers["x-request-id"]
    b = client.get("/api/test/whoami").headers["x-request-id"]
    assert a and b and a != b
    bad = client.get("/api/test/whoami", headers={"X-Request-ID": "x\" onload=alert(1) " * 9})
    rid = bad.headers["x-request-id"]
    assert "alert" not in rid and rid == bad.json()["request_id"]


def test_non_api_responses_carry_a_request_id(client: TestClient) -> None:
    assert client.get("/", headers={"X-Request-ID": "abc12345"}).headers["x-request-id"] \
        == "abc12345"


def test_an_error_in_an_api_route_gives_json_500_with_only_the_request_id(
        client: TestClient) -> None:
    with structlog.testing.capture_logs() as logs:
        r = client.get("/api/test/boom", headers={"X-Request-ID": "req-boom-1"})
    assert r.status_code == 500
    assert r.json() == {"error": "internal server error", "request_id": "req-boom-1"}
    assert "Traceback" not in r.text and "hunter2" not in r.text
    assert r.headers["x-request-id"] == "req-boom-1"
    assert r.headers["cache-control"] == "no-store"
    _assert_security_headers(r)
    errors = [e for e in logs if e["event"] == "unhandled_exception"]
    assert len(errors) == 1 and errors[0]["request_id"] == "req-boom-1"
    assert errors[0]["log_level"] == "error"


def test_an_error_in_the_inner_app_shows_no_traceback(client: TestClient) -> None:
    r = client.get("/inner-boom")
    assert r.status_code == 500
    assert "Traceback" not in r.text and "secret" not in r.text
    _assert_security_headers(r)


def test_an_error_before_any_answer_gets_a_500_naming_the_request_id(base_env: Path) -> None:
    with TestClient(assemble(_raw_inner_error)) as c:
        r = c.get("/some/page", headers={"X-Request-ID": "req-raw-1"})
    assert r.status_code == 500
    assert "req-raw-1" in r.text
    assert "Traceback" not in r.text and "secret" not in r.text
    _assert_security_headers(r)


def test_each_api_request_is_logged_once_without_its_query_string(
        client: TestClient) -> None:
    with structlog.testing.capture_logs() as logs:
        client.get("/api/livez?token=reset-token-abcdef", headers={"X-Request-ID": "req-log-1"})
        client.get("/?token=page-token-abcdef")
    lines = [e for e in logs if e["event"] == "http_request"]
    assert len(lines) == 1  # pages are not access-logged here, only /api
    line = lines[0]
    assert line["method"] == "GET"
    assert line["path"] == "/api/livez"
    assert line["status"] == 200
    assert line["request_id"] == "req-log-1"
    assert isinstance(line["duration_ms"], float)
    assert "token" not in json.dumps(logs, default=str)


def test_websockets_pass_through_untouched(client: TestClient) -> None:
    with client.websocket_connect("/_event") as ws:
        ws.send_text("hello")
        assert ws.receive_text() == "echo:hello"


def test_cors_stays_pinned_to_the_public_origin(client: TestClient) -> None:
    ok = client.get("/api/livez", headers={"Origin": "http://localhost:3000"})
    assert ok.headers.get("access-control-allow-origin") == "http://localhost:3000"
    evil = client.get("/api/livez", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in evil.headers


# --- the CSP of a built front end --------------------------------------------------------

PAGE = """<!DOCTYPE html><html><head>
<script>document.documentElement.classList.add("dark");</script>
<script type="module" async="">import "/assets/manifest-1.js";</script>
<script src="/assets/app.js"></script>
</head><body><main>hi</main><script>$RC("B:0","S:0")</script></body></html>"""
OTHER_PAGE = "<html><body><script>window.__other = 1;</script></body></html>"


def _sha(text: str) -> str:
    import base64
    import hashlib

    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def _built(tmp: Path) -> Path:
    build = tmp / "build" / "client"
    (build / "games").mkdir(parents=True)
    (build / "index.html").write_text(PAGE, encoding="utf-8")
    (build / "games" / "dice.html").write_text(OTHER_PAGE, encoding="utf-8")
    return build


def test_script_src_allows_neither_inline_scripts_nor_eval(base_env: Path) -> None:
    """The finding of the penetration test: no 'unsafe-inline' or 'unsafe-eval' for
    scripts, in the built app's header as in the bare one."""
    with TestClient(assemble(_inner(), frontend_dir=_built(base_env))) as c:
        for path in ("/", "/api/livez", "/no-such-page"):
            csp = _csp(c.get(path).headers["content-security-policy"])
            assert "'unsafe-inline'" not in csp["script-src"], path
            assert "'unsafe-eval'" not in csp["script-src"], path
            assert "'unsafe-eval'" not in csp["default-src"]
            assert csp["script-src-attr"] == "'none'"
            assert csp["object-src"] == "'none'" and csp["frame-ancestors"] == "'none'"
            assert csp["base-uri"] == "'self'" and csp["form-action"] == "'self'"


def test_the_inline_scripts_of_the_build_are_allowed_by_their_hash(base_env: Path) -> None:
    build = _built(base_env)
    with TestClient(assemble(_inner(), frontend_dir=build)) as c:
        sources = _csp(c.get("/").headers["content-security-policy"])["script-src"].split()
    assert sources[0] == "'self'"
    assert set(sources[1:]) == {
        _sha('document.documentElement.classList.add("dark");'),
        _sha('import "/assets/manifest-1.js";'),
        _sha('$RC("B:0","S:0")'),
        _sha("window.__other = 1;"),
    }


def test_a_rebuilt_front_end_gets_its_own_hashes(base_env: Path) -> None:
    import os

    build = _built(base_env)
    with TestClient(assemble(_inner(), frontend_dir=build)) as c:
        before = c.get("/").headers["content-security-policy"]
        (build / "index.html").write_text(
            "<html><script>console.log('new build')</script></html>", encoding="utf-8")
        st = (build / "index.html").stat()
        os.utime(build / "index.html", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
        after = c.get("/").headers["content-security-policy"]
    assert _sha("console.log('new build')") in after
    assert _sha('$RC("B:0","S:0")') in before and _sha('$RC("B:0","S:0")') not in after


def test_without_a_build_only_our_own_script_files_are_allowed(base_env: Path) -> None:
    with TestClient(assemble(_inner(), frontend_dir=base_env / "missing")) as c:
        assert _csp(c.get("/").headers["content-security-policy"])["script-src"] == "'self'"


# --- the bind cookie ---------------------------------------------------------------------

def test_a_new_browser_gets_an_httponly_bind_cookie_once(client: TestClient) -> None:
    first = client.get("/")
    set_cookie = first.headers["set-cookie"]
    name, _, rest = set_cookie.partition("=")
    assert name == "hh_bind"  # http public URL here; __Host-hh_bind on https
    value = rest.split(";")[0]
    assert len(value) >= 32
    attrs = {a.strip().split("=")[0].lower() for a in set_cookie.split(";")[1:]}
    assert {"httponly", "samesite", "path", "max-age"} <= attrs
    assert "samesite=strict" in set_cookie.lower()
    # a response that hands out a browser's cookie is never kept by a shared cache
    assert first.headers["cache-control"] == "private, no-cache"
    again = client.get("/", headers={"Cookie": f"hh_bind={value}"})
    assert "set-cookie" not in again.headers
    assert again.headers["cache-control"] == "public, max-age=3600"


def test_api_responses_set_no_bind_cookie(client: TestClient) -> None:
    assert "set-cookie" not in client.get("/api/livez").headers
