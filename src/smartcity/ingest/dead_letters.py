"""Rejected measurements, for operators: the latest ones (a bounded list, so a device
sending garbage cannot fill memory or the database) and a count per device.

They are kept in the store's journal, so that every worker of ``serve --workers N``
shows operators the same list. The ingest loop only notes a rejection in memory; the
notes are written a batch at a time, every FLUSH_EVERY seconds (and before a read).
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from dataclasses import asdict, dataclass
from typing import Any

from smartcity.core.ngsild.storage import OVERFLOW, EntityStore
from smartcity.core.periodic import Periodic

KIND = "dead-letters"
EXCERPT = 256  # bytes of a rejected payload kept
KEEP = 1000  # rejections listed
COUNTED = 10_000  # devices counted one by one; rejections of any further go under "*"
FLUSH_EVERY = 0.5


@dataclass(frozen=True)
class DeadLetter:
    at: str
    transport: str
    apikey: str
    device_id: str
    reason: str
    payload: str


def _device(apikey: str, device_id: str) -> str:
    """The key a device is counted under (its API key and id, apart)."""
    return f"{apikey}\n{device_id}"


class DeadLetters:
    def __init__(self, store: EntityStore) -> None:
        self.store = store
        # Not yet written; only as many as could be listed, however fast they come.
        self._noted: deque[DeadLetter] = deque(maxlen=KEEP)
        self._counts: Counter[str] = Counter()
        self._writing = asyncio.Lock()
        # A failed write loses its notes (the store is away), never the ingest loop.
        # A journal takes every worker's notes at once: no turn to wait for.
        self._flushing = Periodic(lambda _patience: self.flush(), FLUSH_EVERY,
                                  "rejected measurements could not be written")

    def add(self, at: str, transport: str, apikey: str, device_id: str, reason: str,
            payload: bytes) -> None:
        self._noted.append(DeadLetter(at, transport, apikey, device_id, reason,
                                      payload[:EXCERPT].decode("utf-8", "replace")))
        key = _device(apikey, device_id)
        if key not in self._counts and len(self._counts) >= COUNTED:
            key = OVERFLOW  # keys and ids made up by a flood must not fill memory
        self._counts[key] += 1

    async def flush(self) -> None:
        """Write what was noted since the last flush."""
        async with self._writing:
            if not self._noted:
                return
            letters, counts = list(self._noted), dict(self._counts)
            self._noted.clear()
            self._counts.clear()
            await self.store.append_journal(KIND, [asdict(letter) for letter in letters],
                                            KEEP, counts, COUNTED)

    async def latest(self, limit: int) -> list[dict[str, Any]]:
        """The latest rejections of all workers, newest first, each with its device's
        total count."""
        await self.flush()
        letters = await self.store.journal(KIND, limit)
        keys = [_device(letter["apikey"], letter["device_id"]) for letter in letters]
        counts = await self.store.tallies(KIND, {*keys, OVERFLOW})
        return [{**letter, "rejectedFromDevice": counts.get(key, counts.get(OVERFLOW, 0))}
                for letter, key in zip(letters, keys, strict=True)]

    def start(self) -> None:
        self._flushing.start()

    async def stop(self) -> None:
        await self._flushing.stop()
