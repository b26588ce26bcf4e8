"""``/api/metrics``: the Prometheus text exposition of ``casino_app.core.metrics``.

It reveals activity counts, not secrets. With ``CASINO_METRICS_TOKEN`` set, a scraper must
send ``Authorization: Bearer <token>``; otherwise let only the monitoring network reach it
(block ``/api/metrics`` at the reverse proxy).
"""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from casino_app.core.metrics import render
from casino_app.core.settings import get_settings


def _authorised(request: Request) -> bool:
    expected = get_settings().metrics_token
    if not expected:
        return True
    given = request.headers.get("authorization", "")
    return hmac.compare_digest(given.encode(), f"Bearer {expected}".encode())


async def metrics(request: Request) -> Response:
    if not _authorised(request):
        return JSONResponse({"error": "unauthorised"}, status_code=401,
                            headers={"WWW-Authenticate": "Bearer"})
    body, content_type = render(request.headers.get("accept", ""))
    return Response(body, media_type=content_type)
