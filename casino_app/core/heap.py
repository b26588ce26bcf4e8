"""The web process's heap at start: what it holds for its whole life (modules, the
compiled app, caches) is moved out of the garbage collector's way.

A full collection walks every tracked object. A process that has loaded the platform
holds ~140,000 of them (bench/bets.py's, measured 2026-12-04), and each full collection
then paused the event loop (and with it every answer of the settlement writer) for
85-130 ms, every few seconds under load: they were that bench's p99.
``gc.freeze`` after start-up moves them to a permanent generation that collections skip:
a full collection then takes 2-3 ms.
"""

from __future__ import annotations

import asyncio
import gc


def freeze_startup_objects() -> int:
    """Collect once, then exempt every object alive now from later collections; the
    number of objects frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


async def freeze_when_started() -> None:
    """Reflex lifespan task: once the app has started (the first turn of the loop after
    start-up), freeze what start-up made."""
    await asyncio.sleep(1)
    freeze_startup_objects()
