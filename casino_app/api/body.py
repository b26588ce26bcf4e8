"""Reading a request body with a limit, never past it."""

from __future__ import annotations

from starlette.requests import Request


class TooLarge(Exception):
    """A body over the limit (announced by its Content-Length, or read so far)."""


async def read_limited(request: Request, limit: int) -> bytes:
    """The body, refused (``TooLarge``) once it is longer than ``limit`` bytes: a longer
    one announced by its Content-Length unread, a chunked one as soon as it grows past
    the limit. Reading a whole body first would let anyone make the process buffer
    gigabytes."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.strip().isdigit() or int(declared) > limit):
        raise TooLarge()
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise TooLarge()
    return bytes(body)
