"""WAL checkpoints on a thread of their own.

A checkpoint copies the pages a WAL holds back into the database file. Run by the writer
(SQLite's automatic checkpoint), it stalls the event loop for as long as the copy takes,
once every few thousand pages; run here, with its own connection and without the GIL
(sqlite3 lets go of it while a statement runs), it takes the other core while the
writer goes on. The writer keeps its own automatic checkpoint: a WAL starts over only
after a checkpoint that found nothing left to copy, which one running beside steady
commits never does, so the writer's (by then with little left to copy) keeps the WAL
to its usual size.
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
        self._path = path
        self._wanted = threading.Event()
        self._stopping = False
        # Started at the first commit: a store that never writes has no thread.
        self._thread: threading.Thread | None = None

    def committed(self) -> None:
        """A transaction committed: its pages are to be copied soon."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="sqlite-checkpoints",
                                            daemon=True)
            self._thread.start()
        self._wanted.set()

    def _run(self) -> None:
        db = sqlite3.connect(self._path, isolation_level=None)
        try:
            db.execute("PRAGMA busy_timeout=5000")
            self._copy_while_wanted(db)
        finally:
            db.close()

    def _copy_while_wanted(self, db: sqlite3.Connection) -> None:
        # Checked after each copy: a stop asked for meanwhile is never missed, whenever
        # the clear below ran.
        while not self._stopping:
            self._wanted.wait()
            time.sleep(PAUSE)
            self._wanted.clear()
            try:
                # PASSIVE: copies what it can without waiting for readers or the writer.
                db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            except sqlite3.Error as exc:
                # The next commit asks again; the writer's own checkpoint bounds the WAL.
                log.warning("WAL checkpoint failed: %s", exc)

    def close(self) -> None:
        self._stopping = True
        self._wanted.set()
        # A dropped store is closed by the garbage collector, which may run on this
        # very thread: it then ends by itself after the copy in progress.
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
