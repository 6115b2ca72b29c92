"""Specification of opening a SQLite file written by an earlier smartcity: its schema is
brought up to date in place, and nothing stored is lost."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson

from smartcity.security.audit import AuditLog
from smartcity.store.sqlite import SCHEMA_VERSION, SqliteStore
from tests.store.test_entity_store import entity, insert

RECORD = {"tenant": "", "id": "urn:s:1", "q": "n>3", "timesSent": 7, "timesFailed": 1,
          "lastNotification": "2026-01-01T00:00:00.000000Z"}


async def version_one(path: Path) -> None:
    """A file as version 1 left it: delivery counts inside the subscription record."""
    store = SqliteStore(path)
    await store.close()
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO subscriptions VALUES ('', 'urn:s:1', ?)", (orjson.dumps(RECORD),))
        db.execute("PRAGMA user_version=1")


async def test_delivery_counts_of_a_version_one_file_survive_its_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "city.db"
    await version_one(path)
    store = SqliteStore(path)
    try:
        [record] = await store.subscriptions()
        assert (record["timesSent"], record["timesFailed"]) == (7, 1)
        # The settings are kept apart now: saving them leaves the counts alone.
        await store.save_subscription({"tenant": "", "id": "urn:s:1", "q": "n>4"})
        await store.add_subscription_status("", "urn:s:1", {"timesSent": 1})
        [record] = await store.subscriptions()
        assert (record["q"], record["timesSent"], record["timesFailed"]) == ("n>4", 8, 1)
    finally:
        await store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


async def version_two(path: Path) -> None:
    """A file as version 2 left it: an entity and a subscription, no audit log."""
    store = SqliteStore(path)
    await store.write("", insert(entity("urn:x:1", n=1)))
    await store.add_subscription({"tenant": "", "id": "urn:s:1", "q": "n>3"})
    await store.close()
    with sqlite3.connect(path) as db:
        db.executescript("DROP TABLE audit_log; DROP TABLE audit_subjects; "
                         "DROP TABLE audit_head; PRAGMA user_version=2;")


async def test_a_version_two_file_keeps_its_rows_and_gains_an_audit_log(tmp_path: Path) -> None:
    path = tmp_path / "city.db"
    await version_two(path)
    store = SqliteStore(path)
    try:
        assert await store.get("", "urn:x:1") == entity("urn:x:1", n=1)
        assert [s["id"] for s in await store.subscriptions()] == ["urn:s:1"]
        audit = AuditLog(store, lambda: "2026-03-01T08:00:00.000000Z")
        audit.record("system", "administer", "database", "upgrade")
        await audit.flush()
        assert (await audit.verify()).entries == 1
    finally:
        await store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
