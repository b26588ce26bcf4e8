"""The HTTP side of the running app, fuzzed (WSTG-INPV, WSTG-ERRH): every route it
serves besides the socket's events (health, metrics, the session cookie's two routes,
unknown /api paths, the sitemap, Reflex's /ping, /_upload and the socket's polling
path, pages) gets wrong methods, odd and oversized headers, bad tokens and bodies from
empty to megabytes, drawn by hypothesis (few, derandomized examples). Every answer is
a clean one: never a 500, never a traceback in the app's log, the app still up after.

And what the fuzzing would only find by luck, asked for directly: the metrics token is
checked whatever form it takes; ``/api/session/adopt``, which anyone may call before
they have a session, refuses a body over its limit without reading it (announced by
Content-Length, or chunked), so nobody can make the process buffer gigabytes.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.support import live

pytestmark = pytest.mark.security

ROUTES = ["/api/livez", "/api/readyz", "/api/metrics", "/api/session/adopt",
          "/api/session/clear", "/api/", "/api/x/../../etc/passwd", "/api/%00", "/sitemap.xml",
          "/ping", "/_upload", "/_event/?EIO=4&transport=polling", "/", "/login",
          "/admin/player?id=1", "/bets/bet?id=%27", "/assets/../../../etc/passwd",
          "/manifest.webmanifest", "/sw.js"]
METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND",
           "CONNECT-ISH", "get"]
HEADER_VALUES = st.one_of(
    st.sampled_from(["", "Bearer", "Bearer ", "bearer x", "Basic YWRtaW46YWRtaW4=",
                     "Bearer " + "A" * 9000, "null", "undefined", "https://evil.example",
                     "hh_session=" + "x" * 4000, "hh_bind=; hh_session=;;;=;", "*/*",
                     "application/json", "multipart/form-data; boundary=", "text/plain",
                     "127.0.0.1, 10.0.0.1", "../../", "%00", "() { :; }; echo pwned"]),
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=200))
HEADER_NAMES = ["Authorization", "Origin", "Cookie", "Content-Type", "Accept", "X-Request-ID",
                "X-Forwarded-For", "X-Forwarded-Host", "Host", "Referer", "Range",
                "Transfer-Encoding-Ish", "If-None-Match", "Accept-Encoding"]
BODIES = st.one_of(st.just(b""), st.binary(max_size=2000),
                   st.sampled_from([b"code=", b"code=" + b"A" * 5000, b"code=%ff%fe",
                                    b"{\"code\": [1, 2]}", b"code=1&" * 2000,
                                    b"--x\r\nContent-Disposition: form-data; name=\"code\""
                                    b"\r\n\r\nabc\r\n--x--\r\n"]),
                   st.integers(100_000, 3_000_000).map(lambda n: b"z" * n))


def still_up(casino: live.Casino) -> None:
    r = httpx.get(f"{casino.url}/api/livez", timeout=60)
    assert r.status_code == 200, r.text


def test_fuzzed_requests_get_clean_answers(attacked: live.Casino) -> None:
    log_from = attacked.log_size()
    seen: list[str] = []
    sizes: list[int] = []
    with httpx.Client(base_url=attacked.url, timeout=60) as http:

        @settings(max_examples=200, derandomize=True, database=None, deadline=None,
                  phases=(Phase.explicit, Phase.generate),
                  suppress_health_check=list(HealthCheck))
        @given(method=st.sampled_from(METHODS), path=st.sampled_from(ROUTES),
               headers=st.dictionaries(st.sampled_from(HEADER_NAMES), HEADER_VALUES,
                                       max_size=4),
               body=BODIES)
        def one(method: str, path: str, headers: dict[str, str], body: bytes) -> None:
            sizes.append(len(body))
            if headers.get("Host") is not None and not headers["Host"].strip():
                headers.pop("Host")
            try:
                r = http.request(method, path, headers=headers, content=body)
            except httpx.TransportError:
                # the server answered and closed the connection before it took a body it
                # would not read (or refused the request at the HTTP level); it must still
                # be up, and its log is read for errors below
                still_up(attacked)
                return
            seen.append(f"{method} {path} ({len(body)} bytes) -> {r.status_code}")
            assert r.status_code < 500, f"{method} {path} {headers} ({len(body)} bytes): " \
                f"{r.status_code} {r.text[:300]}"
            assert "Traceback" not in r.text and 'File "/' not in r.text, r.text[:300]

        one()
    still_up(attacked)
    errors = attacked.server_errors(log_from)
    assert not errors, "the server logged errors:\n" + "\n\n".join(errors[:3])
    assert len(seen) >= 100, seen
    assert sum(size >= 100_000 for size in sizes) >= 5, "the fuzzing sent few large bodies"


def test_the_api_answers_wrong_methods_and_bad_metrics_tokens_with_4xx(
        attacked: live.Casino) -> None:
    token = attacked.env["CASINO_METRICS_TOKEN"]
    with httpx.Client(base_url=attacked.url, timeout=60) as http:
        for path in ("/api/livez", "/api/readyz", "/api/metrics"):
            for method in ("POST", "PUT", "DELETE", "PATCH"):
                assert http.request(method, path).status_code == 405, (method, path)
            assert http.head(path, headers={"Authorization": f"Bearer {token}"}
                             ).status_code == 200, path
        for path in ("/api/session/adopt", "/api/session/clear"):
            assert http.get(path).status_code in (404, 405), path
        for auth in ("", "Bearer", f"Bearer {token[:-1]}", f"Bearer {token}x",
                     f"Basic {token}", f"{token}", "Bearer " + "A" * 9000,
                     f"Bearer {token.upper()}" if token.upper() != token else "Bearer -"):
            r = http.get("/api/metrics", headers={"Authorization": auth} if auth else {})
            assert r.status_code == 401 and "casino_" not in r.text, auth[:40]
            assert r.headers.get("www-authenticate") == "Bearer"
        for auth in (f"Bearer {token}", f"bearer {token}", f"Bearer   {token}"):
            r = http.get("/api/metrics", headers={"Authorization": auth})
            assert r.status_code == 200 and "casino_http_requests_total" in r.text, auth


def raw_request(url: str, head: str, body: bytes = b"") -> bytes:
    """Send ``head`` (request line and headers, no blank line) and ``body`` on a plain
    socket; the server's first answer (status line and headers). The socket's timeout
    only bounds a server that never answers (what a buffering server does while it
    waits for a body nobody sends)."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=60) as s:
        s.sendall(head.encode("latin-1") + b"\r\n\r\n" + body)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = s.recv(65536)
            if not chunk:
                break
            received += chunk
        return received


def test_adopt_refuses_a_huge_body_without_reading_it(attacked: live.Casino) -> None:
    host = urlsplit(attacked.url).netloc
    # announced: a gigabyte that never comes; the answer must not wait for it
    answer = raw_request(attacked.url, "\r\n".join([
        "POST /api/session/adopt HTTP/1.1", f"Host: {host}", f"Origin: {attacked.url}",
        "Content-Type: application/x-www-form-urlencoded", "Content-Length: 1073741824"]))
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    # chunked, growing past the limit: refused once it is over, the rest never read
    chunk = b"code=" + b"A" * 8000
    answer = raw_request(attacked.url, "\r\n".join([
        "POST /api/session/adopt HTTP/1.1", f"Host: {host}", f"Origin: {attacked.url}",
        "Content-Type: application/x-www-form-urlencoded", "Transfer-Encoding: chunked"]),
        f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    # a lie in the other direction, and garbage for a length
    for length in ("-1", "abc", "99999999999999999999999"):
        answer = raw_request(attacked.url, "\r\n".join([
            "POST /api/session/adopt HTTP/1.1", f"Host: {host}", f"Origin: {attacked.url}",
            f"Content-Length: {length}", "Connection: close"]))
        assert answer[:12] in (b"HTTP/1.1 400", b"HTTP/1.1 413") or answer == b"", answer[:200]
    still_up(attacked)


def test_malformed_http_gets_400_and_the_app_stays_up(attacked: live.Casino) -> None:
    host = urlsplit(attacked.url).netloc
    for head in ["GET /api/livez HTTP/1.1\r\nHost: " + host + "\r\nX-Bad: \x01\x02",
                 "GET /api/livez HTTP/1.1\r\nHost: " + host + "\r\nNoColonHeader",
                 "GET /api/livez HTTP/9.9\r\nHost: " + host,
                 "GET " + "/a" * 20000 + " HTTP/1.1\r\nHost: " + host,
                 "GET /api/livez HTTP/1.1\r\nHost: " + host + "\r\nX-Big: " + "b" * 70000,
                 "\x16\x03\x01\x00\xa5\x01\x00\x00"]:  # a TLS hello on the plain port
        answer = raw_request(attacked.url, head)
        assert not answer.startswith(b"HTTP/1.1 5"), (head[:60], answer[:200])
    still_up(attacked)
