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


KEEP_FROZEN_S = 600  # how long survivors stay out of collections before a full one


async def freeze_when_started() -> None:
    """Reflex lifespan task: once the app has started (the first turn of the loop after
    start-up), freeze what start-up made; then keep what outlives a full collection
    frozen too (``keep_survivors_frozen``)."""
    await asyncio.sleep(1)
    freeze_startup_objects()
    await keep_survivors_frozen()


async def keep_survivors_frozen(period: float = 1.0, thaw_every: float = KEEP_FROZEN_S
                                ) -> None:
    """After each full collection, freeze what survived it; every ``thaw_every`` s, one
    full collection of everything, in the loop, then freeze again.

    A web process holds each open tab's state tree (~1,000 objects a tab: 200 tabs made
    a full collection 50-72 ms, every few seconds under bets, and those pauses were the
    bet p99; bench/ws_bets.py, 2026-12-04). Objects that survived a full collection are
    mostly such long-lived state, so the next full collections skip them and see only
    what is new since. The price: a cycle of frozen objects that dies (a state tree whose
    tab expired) is freed only by the next thaw, so memory may hold up to
    ``thaw_every`` s of such garbage, and one full pause comes each ``thaw_every`` s."""
    loop = asyncio.get_running_loop()
    full = gc.get_stats()[2]["collections"]
    thawed = loop.time()
    while True:
        await asyncio.sleep(period)
        if loop.time() - thawed >= thaw_every:
            gc.unfreeze()
            freeze_startup_objects()
            thawed = loop.time()
            full = gc.get_stats()[2]["collections"]
            continue
        now = gc.get_stats()[2]["collections"]
        if now != full:
            gc.freeze()
            full = now
