"""/api/livez, /api/readyz and /api/metrics against real databases and a real Redis."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from tests.api import assemble
from tests.support.services import free_port

DB_CHECKS = {"identity_db", "ledger_db", "identity_migrations", "ledger_migrations"}


def _inner() -> Starlette:
    """Stands in for Reflex's backend."""
    return Starlette(routes=[Route("/", lambda _r: PlainTextResponse("page"))])


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(assemble(_inner())) as c:
        yield c


def _reset() -> None:
    from casino_app.core.db import reset_databases
    from casino_app.core.settings import reset_settings_cache

    reset_databases()
    reset_settings_cache()


def test_livez_answers_ok(base_env: Path, client: TestClient) -> None:
    r = client.get("/api/livez")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}
    assert r.headers["content-type"].startswith("application/json")


def test_readyz_is_ready_on_migrated_embedded_databases(app_env: Path,
                                                        client: TestClient) -> None:
    r = client.get("/api/readyz")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == DB_CHECKS  # no Redis configured, so no Redis check
    assert all(c["ok"] for c in body["checks"].values())


def test_readyz_names_the_database_whose_migrations_are_missing(
        base_env: Path, client: TestClient) -> None:
    from alembic import command

    from casino_app.migrations import alembic_config

    command.upgrade(alembic_config("ledger"), "head")  # identity is left empty

    r = client.get("/api/readyz")
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "fail"
    assert body["failed"] == ["identity_migrations"]
    assert body["checks"]["identity_db"]["ok"] is True
    assert "migrat" in body["checks"]["identity_migrations"]["error"]


def test_readyz_names_the_failing_database(app_env: Path, client: TestClient,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # Nothing listens on this port: the ledger database is down.
    monkeypatch.setenv("CASINO_LEDGER_DB_URL",
                       f"postgresql://casino:pw-not-shown@127.0.0.1:{free_port()}/ledger")
    _reset()

    r = client.get("/api/readyz")
    assert r.status_code == 503
    body = r.json()
    assert set(body["failed"]) == {"ledger_db", "ledger_migrations"}
    assert body["checks"]["identity_db"]["ok"] is True
    assert "pw-not-shown" not in r.text and "127.0.0.1" not in r.text


def test_readyz_names_redis_when_it_does_not_answer(app_env: Path, client: TestClient,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REFLEX_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    _reset()

    r = client.get("/api/readyz")
    assert r.status_code == 503
    body = r.json()
    assert body["failed"] == ["redis"]
    assert body["checks"]["redis"]["ok"] is False


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP server that accepts connections and never answers (a hung dependency)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    conns: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.1)
        while not stop.is_set():
            try:
                conns.append(srv.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield srv.getsockname()[1]
    stop.set()
    t.join()
    for c in conns:
        c.close()
    srv.close()


def test_readyz_gives_up_on_a_hung_dependency_quickly(
        app_env: Path, client: TestClient, monkeypatch: pytest.MonkeyPatch,
        silent_server: int) -> None:
    from casino_app.api import health

    monkeypatch.setattr(health, "CHECK_TIMEOUT_SECONDS", 0.5)
    monkeypatch.setenv("REFLEX_REDIS_URL", f"redis://127.0.0.1:{silent_server}/0")
    _reset()

    start = time.monotonic()
    r = client.get("/api/readyz")
    elapsed = time.monotonic() - start
    assert r.status_code == 503
    assert r.json()["failed"] == ["redis"]
    assert elapsed < 3.0


def test_readyz_gives_up_on_databases_that_accept_but_never_answer(
        app_env: Path, client: TestClient, monkeypatch: pytest.MonkeyPatch,
        silent_server: int) -> None:
    import threading

    from casino_app.api import health

    monkeypatch.setattr(health, "CHECK_TIMEOUT_SECONDS", 0.5)
    monkeypatch.setattr(health, "_in_flight", threading.BoundedSemaphore(4))
    hung = f"postgresql://casino@127.0.0.1:{silent_server}/db"
    monkeypatch.setenv("CASINO_IDENTITY_DB_URL", hung)
    monkeypatch.setenv("CASINO_LEDGER_DB_URL", hung + "2")
    _reset()

    start = time.monotonic()
    first = client.get("/api/readyz")
    assert time.monotonic() - start < 3.0
    assert set(first.json()["failed"]) == DB_CHECKS
    # The four connection attempts still hang and hold the four allowed threads: the
    # next probe starts no new thread and answers at once.
    start = time.monotonic()
    second = client.get("/api/readyz")
    assert time.monotonic() - start < 0.5
    assert second.status_code == 503
    assert {c["error"] for c in second.json()["checks"].values()} == {
        "earlier checks are still waiting for an answer"}


def test_readyz_runs_registered_checks_with_a_deadline(
        app_env: Path, client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from casino_app.api import health

    async def chain_node_lag() -> None:
        await asyncio.sleep(30)

    monkeypatch.setattr(health, "CHECK_TIMEOUT_SECONDS", 0.3)
    health.register_readiness_check("ethereum_node", chain_node_lag)
    try:
        start = time.monotonic()
        r = client.get("/api/readyz")
        assert time.monotonic() - start < 3.0
    finally:
        health.unregister_readiness_check("ethereum_node")
    assert r.status_code == 503
    assert r.json()["failed"] == ["ethereum_node"]
    assert client.get("/api/readyz").status_code == 200


@pytest.mark.redis
def test_readyz_is_ready_with_a_real_redis(app_env: Path, redis_env: object,
                                          client: TestClient) -> None:
    r = client.get("/api/readyz")
    assert r.status_code == 200, r.text
    assert set(r.json()["checks"]) == DB_CHECKS | {"redis"}


@pytest.mark.postgres
@pytest.mark.redis
def test_readyz_is_ready_on_postgres_and_redis(pg_env: object, redis_env: object,
                                               client: TestClient) -> None:
    from casino_app.core.settings import get_settings

    assert get_settings().ledger_url.startswith("postgresql")
    r = client.get("/api/readyz")
    assert r.status_code == 200, r.text
    assert all(c["ok"] for c in r.json()["checks"].values())


def test_metrics_are_served_in_prometheus_text_format(base_env: Path,
                                                      client: TestClient) -> None:
    client.get("/api/livez")
    r = client.get("/api/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert "version=0.0.4" in r.headers["content-type"]
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    for name in ("casino_logins", "casino_registrations", "casino_audit_events",
                 "casino_invariant_violations", "casino_job_runs", "casino_http_requests"):
        assert name in families, name
        assert families[name].type == "counter"
    livez = [s for s in families["casino_http_requests"].samples
             if s.labels.get("route") == "/api/livez" and s.name.endswith("_total")]
    assert livez and livez[0].labels == {"route": "/api/livez", "method": "GET",
                                         "status": "200"}
    assert livez[0].value >= 1


def test_invariant_violations_show_up_by_check(base_env: Path, client: TestClient) -> None:
    from casino_app.core.metrics import INVARIANT_VIOLATIONS

    INVARIANT_VIOLATIONS.labels("ledger_balanced").inc()
    text = client.get("/api/metrics").text
    assert 'casino_invariant_violations_total{check="ledger_balanced"}' in text


def test_metrics_speak_openmetrics_when_the_scraper_asks(base_env: Path,
                                                         client: TestClient) -> None:
    r = client.get("/api/metrics", headers={"Accept": "application/openmetrics-text"})
    assert r.headers["content-type"].startswith("application/openmetrics-text")
    assert r.text.rstrip().endswith("# EOF")


def test_metrics_want_the_bearer_token_when_one_is_configured(
        base_env: Path, client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from casino_app.core.settings import reset_settings_cache

    monkeypatch.setenv("CASINO_METRICS_TOKEN", "scraper-secret-123")
    reset_settings_cache()
    assert client.get("/api/metrics").status_code == 401
    assert client.get("/api/metrics",
                      headers={"Authorization": "Bearer wrong"}).status_code == 401
    ok = client.get("/api/metrics", headers={"Authorization": "Bearer scraper-secret-123"})
    assert ok.status_code == 200 and "casino_logins_total" in ok.text
    assert client.get("/api/metrics", headers={"Authorization": "bearer scraper-secret-123"}
                      ).status_code == 200   # the scheme is case-insensitive (RFC 7235)
    for wrong in ("Bearer scraper-secret-12", "Bearer scraper-secret-1234",
                  "Basic scraper-secret-123", "scraper-secret-123", "Bearer ",
                  "Bearer scraper-secret-123 extra"):
        r = client.get("/api/metrics", headers={"Authorization": wrong})
        assert r.status_code == 401 and "casino_" not in r.text, wrong
        assert r.headers["www-authenticate"] == "Bearer"


def test_the_metrics_token_is_compared_in_constant_time(
        base_env: Path, client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever is sent, one hmac.compare_digest over two SHA-256 digests decides: the
    time taken depends neither on how much of the token matches nor on its length."""
    import hmac
    from types import SimpleNamespace

    from casino_app.api import metrics
    from casino_app.core.settings import reset_settings_cache

    monkeypatch.setenv("CASINO_METRICS_TOKEN", "scraper-secret-123")
    reset_settings_cache()
    seen: list[tuple[int, int]] = []

    def spy(a: bytes, b: bytes) -> bool:
        seen.append((len(a), len(b)))
        return hmac.compare_digest(a, b)

    monkeypatch.setattr(metrics, "hmac", SimpleNamespace(compare_digest=spy))
    for header in ("Bearer s", "Bearer " + "x" * 500, "Basic abc", "",
                   "Bearer scraper-secret-123"):
        client.get("/api/metrics", headers={"Authorization": header} if header else {})
    assert seen == [(32, 32)] * 5
