"""WAL checkpoints on a thread of their own.

A checkpoint copies the pages a WAL holds back into the database file. Run by the writer
(SQLite's automatic checkpoint), it stalls the event loop for as long as the copy takes,
once every few thousand pages; run here, with its own connection and without the GIL
(sqlite3 lets go of it while a statement runs), it takes the other core while the
writer goes on. The writer keeps an automatic checkpoint at a higher mark, should this
thread ever fall behind.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time

log = logging.getLogger(__name__)

# How long the thread lets commits gather before it copies their pages: one copy of a
# page written by many commits in that time.
PAUSE = 0.05


class Checkpointer:
    def __init__(self, path: str) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA busy_timeout=5000")
        self._wanted = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoints",
                                        daemon=True)
        self._thread.start()

    def committed(self) -> None:
        """A transaction committed: its pages are to be copied soon."""
        self._wanted.set()

    def _run(self) -> None:
        # Checked after each copy: a stop asked for meanwhile is never missed, whenever
        # the clear below ran.
        while not self._stopping:
            self._wanted.wait()
            time.sleep(PAUSE)
            self._wanted.clear()
            try:
                # PASSIVE: copies what it can without waiting for readers or the writer.
                self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            except sqlite3.Error as exc:
                # The next commit asks again; the writer's own checkpoint bounds the WAL.
                log.warning("WAL checkpoint failed: %s", exc)

    def close(self) -> None:
        self._stopping = True
        self._wanted.set()
        self._thread.join()
        self._db.close()
