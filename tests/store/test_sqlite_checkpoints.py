"""The SQLite store copies committed pages into the database file on a thread of its own,
and its WAL stays bounded."""

from __future__ import annotations

import gc
import os
import shutil
import sqlite3
import threading
import time
from pathlib import Path

from smartcity.core.ngsild.storage import Write
from smartcity.store.sqlite import SqliteStore
from tests.store.test_entity_store import entity


def _checkpoint_threads() -> int:
    return sum(t.name == "sqlite-checkpoints" for t in threading.enumerate())


def _entities_in_main_file(folder: Path) -> int:
    """Entities in a copy of the database file alone, without its WAL."""
    shutil.copy(folder / "city.db", folder / "copy.db")
    copy = sqlite3.connect(folder / "copy.db")
    try:
        return int(copy.execute("SELECT count(*) FROM entities").fetchone()[0])
    except sqlite3.OperationalError:  # not even the tables have been copied yet
        return 0
    finally:
        copy.close()


async def _write_one(store: SqliteStore, n: int) -> None:
    lamp = entity(f"urn:x:lamp{n}", note="x" * 2000)
    await store.write("", [Write("insert", lamp["id"], lamp)])


async def test_committed_entities_reach_the_database_file_while_the_writer_goes_on(
        tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "city.db")
    try:
        await _write_one(store, 1)
        deadline = time.monotonic() + 5
        while not (found := _entities_in_main_file(tmp_path)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert found == 1
    finally:
        await store.close()


async def test_the_wal_starts_over_under_steady_writes(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "city.db")
    store.db.execute("PRAGMA wal_autocheckpoint=50")  # small, to reach it in a test
    try:
        for n in range(600):  # commits of about 11 pages each, without a pause
            await _write_one(store, n)
        # Never started over, the WAL would hold about 6,900 pages; starting over after
        # the writer's checkpoint, it stays near the mark (80-90 pages measured on an
        # idle machine, 313 under a full test run): the bound leaves room for a slow one.
        assert os.path.getsize(tmp_path / "city.db-wal") < 1000 * 8192
    finally:
        await store.close()


async def test_the_thread_starts_with_the_first_write_and_stops_at_close(
        tmp_path: Path) -> None:
    before = _checkpoint_threads()
    store = SqliteStore(tmp_path / "city.db")
    assert _checkpoint_threads() == before
    await _write_one(store, 1)
    assert _checkpoint_threads() == before + 1
    await store.close()
    assert _checkpoint_threads() == before


async def test_a_store_dropped_without_closing_stops_its_thread(tmp_path: Path) -> None:
    before = _checkpoint_threads()
    store = SqliteStore(tmp_path / "city.db")
    await _write_one(store, 1)
    del store
    gc.collect()
    assert _checkpoint_threads() == before


async def test_an_in_memory_store_has_no_checkpoint_thread() -> None:
    before = _checkpoint_threads()
    store = SqliteStore(":memory:")
    await _write_one(store, 1)
    assert _checkpoint_threads() == before
    await store.close()
