"""``GET /api/reserves/latest.json``: the newest signed proof of reserves, as published
(public; `casino reserves verify FILE` checks a downloaded copy)."""

from __future__ import annotations

import asyncio
import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from casino_app.payments import reserves


async def latest(_request: Request) -> Response:
    published = await asyncio.to_thread(reserves.latest)
    if published is None:
        return JSONResponse({"error": "no proof published yet"}, status_code=404)
    return Response(json.dumps(published, indent=1), media_type="application/json",
                    headers={"Content-Disposition":
                             'attachment; filename="hashhouse-reserves.json"'})
