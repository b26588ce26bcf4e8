"""``/api/metrics``: the Prometheus text exposition of ``casino_app.core.metrics``.

It reveals activity counts, not secrets; still, a public deployment should let only the
monitoring network reach it (block ``/api/metrics`` at the reverse proxy).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from casino_app.core.metrics import render


async def metrics(request: Request) -> Response:
    body, content_type = render(request.headers.get("accept", ""))
    return Response(body, media_type=content_type)
