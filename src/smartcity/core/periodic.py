"""Work done every few seconds in the background (counts and notes written in batches),
and once more when the platform stops, so that nothing noted is lost at shutdown; and
writes that the workers sharing a store take in turns."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from smartcity.core.ngsild.storage import EntityStore

log = logging.getLogger(__name__)


class Periodic:
    def __init__(self, work: Callable[[], Awaitable[None]], every: float,
                 failure: str) -> None:
        self.work = work
        self.every = every
        self.failure = failure  # logged when the work fails; it runs again next time
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.work()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            try:
                await self.work()
            except Exception:
                log.exception(self.failure)


async def in_turn(store: EntityStore, name: str, write: Callable[[], Awaitable[None]],
                  keep: Callable[[], None]) -> None:
    """``write`` while holding the store's right ``name``, so that workers take turns;
    when another worker holds it, or the write fails, ``keep`` what was to be written,
    for the next time."""
    try:
        async with store.exclusive(name) as held:
            if held:
                await write()
                return
        keep()
    except Exception:
        keep()
        raise
