"""Work done every few seconds in the background (counts and notes written in batches),
and once more when the platform stops, so that nothing noted is lost at shutdown; and
writes that the workers sharing a store take in turns."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from smartcity.core.ngsild.storage import EntityStore

log = logging.getLogger(__name__)

# How long the last run at stop waits for its turn while another worker (stopping at
# the same time, as all workers of ``serve --workers N`` do) holds it.
LAST_PATIENCE = 5.0
_RETRY = 0.05


class Periodic:
    """``work(patience)`` every ``every`` seconds and once more at stop, with
    ``patience``: how long it may wait for its turn (0 while running, LAST_PATIENCE at
    stop)."""

    def __init__(self, work: Callable[[float], Awaitable[None]], every: float,
                 failure: str) -> None:
        self.work = work
        self.every = every
        self.failure = failure  # logged when the work fails; it runs again next time
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Let a run in progress finish (a cancelled one could drop what it had taken
        to write), then run once more; a failure is logged, so that the rest of the
        platform still stops."""
        self._stopping.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        try:
            await self.work(LAST_PATIENCE)
        except Exception:
            log.exception(self.failure)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.every)
            if self._stopping.is_set():
                return
            try:
                await self.work(0)
            except Exception:
                log.exception(self.failure)


async def in_turn(store: EntityStore, name: str, write: Callable[[], Awaitable[None]],
                  keep: Callable[[], None], patience: float = 0) -> None:
    """``write`` while holding the store's right ``name``, so that workers take turns,
    trying for up to ``patience`` seconds; when another worker holds it all that time,
    or the write fails or is cancelled, ``keep`` what was to be written, for the next
    time."""
    deadline = time.monotonic() + patience
    try:
        while True:
            async with store.exclusive(name) as held:
                if held:
                    await write()
                    return
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(_RETRY)
        keep()
    except BaseException:
        keep()
        raise
