"""Structured JSON logs with a request id, and a redactor so no secret reaches a line.

Every log call goes through structlog; standard-library records (uvicorn, alembic,
granian) are rendered the same way. Keys that look like secrets are replaced with
"[redacted]", and values registered with ``forget_secret``-free ``redact_value`` are
masked wherever they appear in a string.
"""

from __future__ import annotations

import logging
import re
import sys
import uuid
from contextvars import ContextVar
from typing import Any

import structlog

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

_SECRET_KEY = re.compile(
    r"pass(word)?|passwd|secret|token|otp|totp|code|cookie|authorization|api[_-]?key|"
    r"credential|seed|private|signature|session_id",
    re.IGNORECASE,
)
# Long opaque strings (tokens, keys) that might slip into a message.
_OPAQUE = re.compile(r"\b[A-Za-z0-9_\-]{32,}\b")
REDACTED = "[redacted]"
_configured = False


def new_request_id() -> str:
    rid = uuid.uuid4().hex[:16]
    request_id_var.set(rid)
    return rid


def _add_request_id(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    rid = request_id_var.get()
    if rid and "request_id" not in event:
        event["request_id"] = rid
    return event


def _scrub(value: Any, depth: int = 0) -> Any:
    if depth > 4:
        return value
    if isinstance(value, dict):
        return {k: (REDACTED if _SECRET_KEY.search(str(k)) and not _is_safe_key(k)
                    else _scrub(v, depth + 1)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v, depth + 1) for v in value]
    if isinstance(value, str):
        return _OPAQUE.sub(REDACTED, value)
    return value


_SAFE_KEYS = {"event", "request_id", "status_code", "code_path", "error_code", "logger",
              "level", "timestamp", "action", "row_hash", "prev_hash"}


def _is_safe_key(key: Any) -> bool:
    return str(key) in _SAFE_KEYS


def redact(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: mask secret-looking keys and opaque tokens in values."""
    out: dict[str, Any] = {}
    for key, value in event.items():
        if key in _SAFE_KEYS and key != "event":
            out[key] = value
        elif _SECRET_KEY.search(key) and not _is_safe_key(key):
            out[key] = REDACTED
        else:
            out[key] = _scrub(value)
    return out


def configure_logging(level: str = "INFO", json: bool = True) -> None:
    """Idempotent: sets up structlog and routes stdlib logging through the same renderer."""
    global _configured
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        _add_request_id,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact,
    ]
    renderer: Any = (structlog.processors.JSONRenderer() if json
                     else structlog.dev.ConsoleRenderer(colors=False))
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared, processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer])
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_casino", False):
            root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler._casino = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # httpx logs every request at INFO: the chain watchers would write a line per node call
    # (several a second). Their own events say what happened; the client speaks up on
    # warnings only.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    _configured = True


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)


# Security events (logins, locks, 2FA changes, staff actions) have their own stream.
def security_logger() -> Any:
    return structlog.get_logger("casino.security")
