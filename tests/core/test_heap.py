"""The web process's heap (core/heap.py): what outlives a full collection is frozen, so
the next full collections skip it, and a thaw on schedule frees what died meanwhile."""

from __future__ import annotations

import asyncio
import gc
import weakref

from casino_app.core import heap


class _Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector frees it


def test_survivors_are_frozen_and_a_dead_frozen_cycle_is_freed_by_the_next_thaw() -> None:
    async def run() -> None:
        task = asyncio.create_task(heap.keep_survivors_frozen(period=0.01, thaw_every=0.6))
        try:
            await asyncio.sleep(0.05)
            kept = [_Node() for _ in range(2_000)]
            dead = weakref.ref(kept[0])
            frozen = gc.get_freeze_count()
            gc.collect()  # a full collection, as the collector's own would be
            await asyncio.sleep(0.1)
            assert gc.get_freeze_count() >= frozen + 2_000  # frozen after it
            kept.clear()  # the cycles die while frozen: no collection frees them now
            gc.collect()
            assert dead() is not None
            for _ in range(100):  # the thaw: one full collection of everything
                await asyncio.sleep(0.05)
                if dead() is None:
                    break
            assert dead() is None
        finally:
            task.cancel()
            gc.unfreeze()

    asyncio.run(run())
