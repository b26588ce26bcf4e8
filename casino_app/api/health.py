"""Liveness and readiness.

``/api/livez`` answers while the process can serve requests at all (no dependencies).
``/api/readyz`` answers 200 only when this worker can do its job: both databases answer,
both are at the newest migration, and Redis answers when one is configured. Every check
has a short deadline, so a hung database makes readyz fail fast instead of hanging the
load balancer's probe. Blocking database calls run in their own daemon threads (a capped
number at a time), so a stuck check never uses up the threads the rest of the app relies
on, nor holds up shutdown.

The response names each check; error details stay in the server log (a class name only
goes to the client, never a URL or a message that could carry a host or a password).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse

from casino_app.core.logging import get_logger
from casino_app.core.settings import get_settings

log = get_logger("casino.api.health")

CHECK_TIMEOUT_SECONDS = 2.0
MAX_CHECKS_IN_FLIGHT = 16
_in_flight = threading.BoundedSemaphore(MAX_CHECKS_IN_FLIGHT)

CheckFn = Callable[[], Awaitable[None]]
# Extra readiness checks registered by other parts of the app (e.g. chain node lag).
_extra_checks: dict[str, CheckFn] = {}


class CheckFailed(Exception):
    """A check ran and found a problem; the message is safe to show to the client."""


def register_readiness_check(name: str, check: CheckFn) -> None:
    """Add a named async check to /api/readyz; it fails by raising (CheckFailed's message
    is shown, any other exception only by class name). Re-registering a name replaces it."""
    _extra_checks[name] = check


def unregister_readiness_check(name: str) -> None:
    _extra_checks.pop(name, None)


async def _in_thread(fn: Callable[[], Any]) -> Any:
    """Run a blocking check in its own daemon thread.

    Not the event loop's default executor: a check stuck in a socket call must neither
    take the threads the app needs nor hold up process exit (daemon threads don't). The
    number of checks in flight is capped, so a dependency that hangs for minutes while
    probes keep coming cannot pile up threads: past the cap, checks fail at once.
    """
    slots = _in_flight
    if not slots.acquire(blocking=False):
        raise CheckFailed("earlier checks are still waiting for an answer")
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def deliver(ok: bool, value: Any) -> None:
        if future.done():
            return
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)

    def run() -> None:
        try:
            outcome: tuple[bool, Any] = (True, fn())
        except Exception as exc:  # noqa: BLE001 - handed to the awaiting coroutine
            outcome = (False, exc)
        finally:
            slots.release()
        try:
            loop.call_soon_threadsafe(deliver, *outcome)
        except RuntimeError:  # the loop is gone (shutdown); nobody is waiting
            pass

    threading.Thread(target=run, name="readyz-check", daemon=True).start()
    return await future


def _engine(name: str) -> Any:
    from casino_app.core.db import databases

    dbs = databases()
    return dbs.identity_engine if name == "identity" else dbs.ledger_engine


def _select_one(name: str) -> None:
    with _engine(name).connect() as conn:
        conn.execute(text("SELECT 1")).scalar_one()


def _migrations_at_head(name: str) -> None:
    from casino_app.migrations import pending

    if pending(name):
        raise CheckFailed("migrations pending: run `casino migrate`")


def _database_check(name: str) -> CheckFn:
    async def check() -> None:
        await _in_thread(lambda: _select_one(name))

    return check


def _migration_check(name: str) -> CheckFn:
    async def check() -> None:
        await _in_thread(lambda: _migrations_at_head(name))

    return check


async def _redis_check() -> None:
    import redis.asyncio as aioredis

    url = get_settings().redis_url
    client = aioredis.Redis.from_url(
        url, socket_connect_timeout=CHECK_TIMEOUT_SECONDS, socket_timeout=CHECK_TIMEOUT_SECONDS,
        retry_on_timeout=False)
    try:
        if not await client.ping():
            raise CheckFailed("PING did not answer PONG")
    finally:
        await client.aclose()


def readiness_checks() -> dict[str, CheckFn]:
    """The checks /api/readyz runs, by name, for the current settings."""
    checks: dict[str, CheckFn] = {
        "identity_db": _database_check("identity"),
        "ledger_db": _database_check("ledger"),
        "identity_migrations": _migration_check("identity"),
        "ledger_migrations": _migration_check("ledger"),
    }
    if get_settings().redis_url:
        checks["redis"] = _redis_check
    checks.update(_extra_checks)
    return checks


async def _run_one(name: str, check: CheckFn, timeout: float) -> dict[str, Any]:
    start = time.perf_counter()
    result: dict[str, Any]
    try:
        await asyncio.wait_for(check(), timeout)
        result = {"ok": True}
    except TimeoutError:
        log.warning("readiness_check_failed", check=name, error="timeout", timeout_s=timeout)
        result = {"ok": False, "error": f"no answer within {timeout:g} s"}
    except CheckFailed as exc:
        log.warning("readiness_check_failed", check=name, error=str(exc))
        result = {"ok": False, "error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        log.warning("readiness_check_failed", check=name, error=type(exc).__name__,
                    detail=str(exc)[:300])
        result = {"ok": False, "error": type(exc).__name__}
    result["ms"] = round((time.perf_counter() - start) * 1000, 1)
    return result


async def run_readiness_checks(timeout: float | None = None) -> dict[str, dict[str, Any]]:
    """Run every check concurrently; returns {name: {"ok": bool, "ms": float, ["error"]}}."""
    limit = CHECK_TIMEOUT_SECONDS if timeout is None else timeout
    checks = readiness_checks()
    results = await asyncio.gather(*(_run_one(n, c, limit) for n, c in checks.items()))
    return dict(zip(checks, results, strict=True))


async def livez(_request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(_request: Request) -> JSONResponse:
    checks = await run_readiness_checks()
    failed = [name for name, result in checks.items() if not result["ok"]]
    if failed:
        return JSONResponse({"status": "fail", "failed": failed, "checks": checks},
                            status_code=503)
    return JSONResponse({"status": "ok", "checks": checks})
