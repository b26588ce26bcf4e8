"""``/api/metrics``: the Prometheus text exposition of ``casino_app.core.metrics``.

It reveals activity counts (sign-in outcomes, invariant counters), not secrets, but they
are nobody else's business. A scraper sends ``Authorization: Bearer <token>``
(``CASINO_METRICS_TOKEN`` or ``CASINO_METRICS_TOKEN_FILE``), which production requires
(``core/settings.py`` refuses to start without one); only a development set-up without a
token serves it to anyone. The token is compared in constant time: both sides are hashed
first, so neither its content nor its length shows in the answer's timing.
"""

from __future__ import annotations

import hashlib
import hmac

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from casino_app.core.metrics import render
from casino_app.core.settings import get_settings


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).digest()


def _authorised(request: Request) -> bool:
    expected = get_settings().metrics_token
    if not expected:
        return True  # development only: production refuses to start without a token
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    same = hmac.compare_digest(_digest(given.strip()), _digest(expected))
    return same and scheme.lower() == "bearer"


async def metrics(request: Request) -> Response:
    if not _authorised(request):
        return JSONResponse({"error": "unauthorised"}, status_code=401,
                            headers={"WWW-Authenticate": "Bearer"})
    body, content_type = render(request.headers.get("accept", ""))
    return Response(body, media_type=content_type)
