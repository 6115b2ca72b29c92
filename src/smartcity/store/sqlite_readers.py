"""Read-only SQLite connections on worker threads.

Long scans (aggregating the history of a thousand sensors) run here instead of on the
event loop: other requests are served meanwhile, and since sqlite3 lets go of the GIL
while a statement runs, scans split across the threads use both cores. WAL mode lets
these readers run beside the writer, each on a consistent snapshot.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


class Readers:
    def __init__(self, path: str, threads: int = 2) -> None:
        self._uri = Path(path).resolve().as_uri() + "?mode=ro"
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="sqlite-reader")
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self.threads = threads

    def _connection(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self._uri, uri=True, check_same_thread=False)
            db.execute("PRAGMA cache_size=-32768")
            self._local.db = db
            with self._lock:
                self._opened.append(db)
        return db

    async def map(self, work: Callable[[sqlite3.Connection, Sequence[T]], object],
                  items: Sequence[T]) -> list[object]:
        """``work(connection, part)`` for each of up to ``threads`` parts of ``items``,
        at once; the results in part order."""
        loop = asyncio.get_running_loop()
        parts = [items[k::self.threads] for k in range(self.threads) if items[k::self.threads]]
        return list(await asyncio.gather(*(
            loop.run_in_executor(self._pool, lambda p=part: work(self._connection(), p))
            for part in parts)))

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        with self._lock:
            for db in self._opened:
                db.close()
            self._opened.clear()
