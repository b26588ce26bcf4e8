"""The echo floor of bench/ws_bets.py: a bare Starlette app with python-socketio, the two
libraries under Reflex's websocket, served by granian as ``casino run`` is, on one port.

  cd bench && ../.venv/bin/granian --interface asgi --host 127.0.0.1 --port 8001 \
      --workers 1 echo_server:app

A client connects like a Reflex tab (Socket.IO path ``_event``, namespace ``/_event``) and
emits ``event`` with a JSON object; the server answers ``event`` with
``{"delta": {"echo": <payload>}}`` to that client alone: the cost of the transport, with no
state, no lock and no database. ``GET /ping`` answers ``pong`` (the bench's start check).
"""

from __future__ import annotations

from typing import Any

import socketio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

NAMESPACE = "/_event"

sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins="*")


@sio.on("event", namespace=NAMESPACE)
async def event(sid: str, data: Any) -> None:
    payload = data.get("payload") if isinstance(data, dict) else data
    await sio.emit("event", {"delta": {"echo": payload}}, to=sid, namespace=NAMESPACE)


@sio.on("connect", namespace=NAMESPACE)
async def connect(sid: str, environ: dict, auth: Any = None) -> bool:
    return True


async def ping(_request: Request) -> PlainTextResponse:
    return PlainTextResponse("pong")


app = socketio.ASGIApp(sio, other_asgi_app=Starlette(routes=[Route("/ping", ping)]),
                       socketio_path="_event")
