"""Specification of the audit log: entries numbered without gaps and hash-chained, a log
that shows whoever changed it afterwards, and writing that survives the database being
away."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
from typer.testing import CliRunner

from smartcity.cli_audit import audit_app
from smartcity.core.ngsild.storage import EntityStore
from smartcity.security.audit import (
    AuditEntry,
    AuditLog,
    AuditRow,
    chain,
    encode,
    verify,
)
from smartcity.store.backend import open_store
from smartcity.store.postgres import is_postgres_url

AT = "2026-03-01T08:00:00.000000Z"
ALICE, BOB = "urn:ngsi-ld:Person:alice", "urn:ngsi-ld:Person:bob"
runner = CliRunner()


@pytest.fixture
async def store(db: str) -> AsyncIterator[EntityStore]:
    opened = await open_store(db)
    yield opened
    await opened.close()


@pytest.fixture
def audit(store: EntityStore) -> AuditLog:
    return AuditLog(store, lambda: AT)


def record_reads(audit: AuditLog, count: int, subjects: Sequence[str] = ()) -> None:
    for n in range(count):
        audit.record("user:alice", "read", "entity", f"urn:ngsi-ld:Meter:{n}",
                     roles={"operator"}, purpose="billing", subjects=subjects)


async def as_attacker(db: str, sql: str, *args: Any) -> None:
    """Run SQL straight on the database, past the audit log's triggers, as someone who
    holds the database's credentials can."""
    await run_sql(db, sql, *args, past_triggers=True)


async def run_sql(db: str, sql: str, *args: Any, past_triggers: bool = False) -> None:
    """Run SQL on the database, the audit log's triggers in place unless
    ``past_triggers``."""
    if is_postgres_url(db):
        conn = await asyncpg.connect(db)
        try:
            if past_triggers:
                for table in ("audit_log", "audit_subjects", "audit_head"):
                    await conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
            await conn.execute(numbered(sql), *args)
        finally:
            await conn.close()
        return
    with closing(sqlite3.connect(db)) as conn:
        if past_triggers:
            for (trigger,) in conn.execute("SELECT name FROM sqlite_master WHERE type = "
                                           "'trigger' AND tbl_name LIKE 'audit%'").fetchall():
                conn.execute(f"DROP TRIGGER {trigger}")
        conn.execute(sql, args)
        conn.commit()


def numbered(sql: str) -> str:
    """SQLite's ``?`` parameters as PostgreSQL's ``$1, $2 ...``."""
    first, *rest = sql.split("?")
    return first + "".join(f"${n}{part}" for n, part in enumerate(rest, 1))


async def stored_seqs(store: EntityStore) -> list[int]:
    return [row.seq for row in await store.audit_rows(0, 100_000)]


# --- numbering and chaining -------------------------------------------------------------


async def test_entries_recorded_at_once_are_numbered_without_gaps_and_verify_intact(
        store: EntityStore, audit: AuditLog) -> None:
    async def request() -> None:
        for _ in range(30):
            record_reads(audit, 1)
            await asyncio.sleep(0)
        await audit.flush()

    await asyncio.gather(*(request() for _ in range(20)))
    await audit.flush()
    assert await stored_seqs(store) == list(range(1, 601))
    result = await audit.verify(batch=64)
    assert result.intact and result.entries == 600
    assert await store.audit_head() == (600, result.head)


async def test_workers_appending_to_one_database_share_one_gapless_chain(db: str) -> None:
    stores = [await open_store(db) for _ in range(3)]
    try:
        logs = [AuditLog(store, lambda: AT, batch=7) for store in stores]
        for log in logs:
            record_reads(log, 50)
        await asyncio.gather(*(log.flush() for log in logs))
        assert await stored_seqs(stores[0]) == list(range(1, 151))
        result = await logs[1].verify()
        assert result.intact and result.entries == 150
    finally:
        for store in stores:
            await store.close()


async def test_a_log_verified_while_entries_are_appended_reads_intact(
        store: EntityStore, audit: AuditLog) -> None:
    record_reads(audit, 100)
    await audit.flush()

    async def append() -> None:
        for _ in range(20):
            record_reads(audit, 5)
            await audit.flush()

    result, _ = await asyncio.gather(audit.verify(batch=7), append())
    assert result.intact and 100 <= result.entries <= 200
    assert (await audit.verify()).entries == 200


async def test_a_stored_entry_reads_back_as_recorded(store: EntityStore,
                                                     audit: AuditLog) -> None:
    audit.record("client:billing", "write", "entity", "urn:ngsi-ld:Meter:7", tenant="north",
                 roles=["service", "reader"], purpose="billing", subjects=[ALICE, ALICE],
                 outcome="ok", detail={"attrs": ["reading"]})
    await audit.flush()
    [row] = await store.audit_rows(0, 10)
    assert row.entry == AuditEntry(AT, "client:billing", "write", "entity",
                                   "urn:ngsi-ld:Meter:7", "north", ["reader", "service"],
                                   "billing", [ALICE], "ok", {"attrs": ["reading"]})
    assert row.hash == chain("0" * 64, 1, row.entry)


def test_the_hash_covers_the_entry_its_number_and_the_entry_before() -> None:
    entry = AuditEntry(AT, "user:alice", "read", "entity", "urn:x:1")
    first = chain("0" * 64, 1, entry)
    assert len(first) == 64
    assert chain("0" * 64, 2, entry) != first
    assert chain("1" * 64, 1, entry) != first
    assert chain("0" * 64, 1, AuditEntry(AT, "user:mallory", "read", "entity",
                                         "urn:x:1")) != first


def test_a_check_in_pages_goes_on_where_the_page_before_ended() -> None:
    entries = [AuditEntry(AT, "system", "write", "entity", f"urn:x:{n}") for n in range(4)]
    rows, previous = [], "0" * 64
    for seq, entry in enumerate(entries, 1):
        previous = chain(previous, seq, entry)
        rows.append(AuditRow(seq, previous, encode(entry)))
    assert verify(rows[2:], verify(rows[:2])) == verify(rows)
    assert verify(rows).entries == 4


def test_detail_that_is_not_json_is_refused_when_recorded() -> None:
    audit = AuditLog(None, lambda: AT)  # type: ignore[arg-type]  # never writes
    with pytest.raises(TypeError):
        audit.record("system", "write", "entity", detail={"at": object()})


# --- tampering ----------------------------------------------------------------------------


async def test_an_altered_entry_is_reported_at_its_number(db: str, store: EntityStore,
                                                          audit: AuditLog) -> None:
    record_reads(audit, 5)
    await audit.flush()
    [third] = await store.audit_rows(2, 1)
    forged = orjson.loads(third.document) | {"actor": "user:mallory"}
    await as_attacker(db, "UPDATE audit_log SET entry = ? WHERE seq = 3", orjson.dumps(forged))
    result = await audit.verify()
    assert (result.broken_at, result.entries) == (3, 2)
    assert "altered" in result.reason


async def test_an_entry_that_is_no_longer_an_entry_is_reported(db: str, store: EntityStore,
                                                               audit: AuditLog) -> None:
    record_reads(audit, 3)
    await audit.flush()
    await as_attacker(db, "UPDATE audit_log SET entry = ? WHERE seq = 2", b"[]")
    result = await audit.verify()
    assert result.broken_at == 2 and "cannot be read" in result.reason


async def test_entries_moved_to_other_places_are_reported(db: str, store: EntityStore,
                                                          audit: AuditLog) -> None:
    record_reads(audit, 4)
    await audit.flush()
    await as_attacker(db, "UPDATE audit_log SET seq = -seq WHERE seq IN (2, 3)")
    await as_attacker(db, "UPDATE audit_log SET seq = 5 + seq WHERE seq < 0")
    assert await stored_seqs(store) == [1, 2, 3, 4]
    result = await audit.verify()
    assert result.broken_at == 2 and "reordered" in result.reason


async def test_a_deleted_entry_is_reported(db: str, audit: AuditLog) -> None:
    record_reads(audit, 6)
    await audit.flush()
    await as_attacker(db, "DELETE FROM audit_log WHERE seq IN (3, 4)")
    result = await audit.verify(batch=2)
    assert result.broken_at == 3
    assert result.reason == "entries 3 to 4 are missing (deleted)"


async def test_deleting_the_newest_entries_is_reported_by_the_head(db: str,
                                                                   audit: AuditLog) -> None:
    record_reads(audit, 6)
    await audit.flush()
    await as_attacker(db, "DELETE FROM audit_log WHERE seq > 4")
    result = await audit.verify()
    assert (result.broken_at, result.entries) == (5, 4)
    assert "newest entries were deleted" in result.reason


async def test_a_head_moved_back_is_reported(db: str, audit: AuditLog) -> None:
    record_reads(audit, 3)
    await audit.flush()
    [second] = await audit.store.audit_rows(1, 1)
    await as_attacker(db, "UPDATE audit_head SET seq = ?, hash = ?", second.seq, second.hash)
    result = await audit.verify()
    assert result.broken_at == 3 and "the head was altered" in result.reason


@pytest.mark.parametrize("sql", [
    "UPDATE audit_log SET entry = entry WHERE seq = 1",
    "DELETE FROM audit_log WHERE seq = 1",
    "DELETE FROM audit_subjects",
    "DELETE FROM audit_head",
])
async def test_the_database_refuses_to_change_or_remove_audit_rows(
        db: str, store: EntityStore, audit: AuditLog, sql: str) -> None:
    record_reads(audit, 2, subjects=[ALICE])
    await audit.flush()
    with pytest.raises((sqlite3.DatabaseError, asyncpg.PostgresError), match="append-only"):
        await run_sql(db, sql)
    assert (await audit.verify()).entries == 2
    assert len(await audit.for_subject(ALICE)) == 2


async def test_cli_verify_exits_0_on_an_intact_log_and_1_on_a_broken_one(
        db: str, audit: AuditLog) -> None:
    record_reads(audit, 3)
    await audit.flush()
    result = await asyncio.to_thread(runner.invoke, audit_app, ["verify", "--db", db])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("audit log intact: 3 entries, head ")
    await as_attacker(db, "DELETE FROM audit_log WHERE seq = 2")
    result = await asyncio.to_thread(runner.invoke, audit_app, ["verify", "--db", db])
    assert result.exit_code == 1
    assert result.output == "audit log BROKEN at entry 2: entry 2 is missing (deleted)\n"


def test_cli_verify_refuses_a_database_that_holds_no_audit_log(tmp_path: Path) -> None:
    result = runner.invoke(audit_app, ["verify", "--db", str(tmp_path / "typo.db")])
    assert result.exit_code == 2
    assert "no audit log" in result.output and "intact" not in result.output
    assert not (tmp_path / "typo.db").exists()
    result = runner.invoke(audit_app, ["verify", "--db", "postgresql://127.0.0.1:1/nowhere"])
    assert result.exit_code == 2 and "cannot be read" in result.output


# --- residents ------------------------------------------------------------------------------


async def test_a_residents_entries_are_listed_newest_first(db: str, audit: AuditLog) -> None:
    record_reads(audit, 2, subjects=[ALICE])
    record_reads(audit, 1, subjects=[BOB])
    record_reads(audit, 1)
    audit.record("user:clerk", "write", "entity", BOB, subjects=[BOB, ALICE])
    await audit.flush()
    assert [row.seq for row in await audit.for_subject(ALICE)] == [5, 2, 1]
    assert [row.seq for row in await audit.for_subject(BOB, limit=1)] == [5]
    assert await audit.for_subject("urn:ngsi-ld:Person:carol") == []
    result = await asyncio.to_thread(runner.invoke, audit_app,
                                     ["list", "--db", db, "--subject", BOB])
    assert result.exit_code == 0, result.output
    listed = [orjson.loads(line) for line in result.output.splitlines()]
    assert [(e["seq"], e["actor"], e["subjects"]) for e in listed] == [
        (5, "user:clerk", [BOB, ALICE]), (3, "user:alice", [BOB])]


async def test_cli_list_prints_the_newest_entries(db: str, audit: AuditLog) -> None:
    record_reads(audit, 5)
    await audit.flush()
    result = await asyncio.to_thread(runner.invoke, audit_app,
                                     ["list", "--db", db, "--limit", "2"])
    assert result.exit_code == 0, result.output
    assert [orjson.loads(line)["seq"] for line in result.output.splitlines()] == [5, 4]


# --- writing in the background ------------------------------------------------------------


class AwayAtFirst:
    """A store whose database is away for its first ``failures`` appends."""

    def __init__(self, store: EntityStore, failures: int) -> None:
        self.store = store
        self.failures = failures

    async def append_audit(self, entries: Sequence[AuditEntry]) -> None:
        if self.failures:
            self.failures -= 1
            raise OSError("connection refused")
        await self.store.append_audit(entries)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


async def test_entries_wait_while_the_database_is_away_and_are_written_once_back(
        store: EntityStore) -> None:
    audit = AuditLog(AwayAtFirst(store, failures=1), lambda: AT)  # type: ignore[arg-type]
    record_reads(audit, 3)
    with pytest.raises(OSError):
        await audit.flush()
    assert await stored_seqs(store) == []
    audit.record("user:bob", "login", "token")
    await audit.flush()
    rows = await store.audit_rows(0, 10)
    assert [row.entry.actor for row in rows] == ["user:alice"] * 3 + ["user:bob"]
    assert (await audit.verify()).entries == 4


async def test_the_background_writer_tries_again_until_the_database_is_back(
        store: EntityStore) -> None:
    audit = AuditLog(AwayAtFirst(store, failures=2), lambda: AT)  # type: ignore[arg-type]
    audit.start()
    try:
        record_reads(audit, 3)
        for _ in range(100):
            if len(await stored_seqs(store)) == 3:
                break
            await asyncio.sleep(0.05)
        assert await stored_seqs(store) == [1, 2, 3]
    finally:
        await audit.stop()


async def test_stopping_writes_every_entry_recorded(store: EntityStore) -> None:
    audit = AuditLog(store, lambda: AT, interval=60)
    audit.start()
    record_reads(audit, 3)
    await audit.stop()
    assert await stored_seqs(store) == [1, 2, 3]


async def test_a_full_batch_is_written_without_waiting_for_the_interval(
        store: EntityStore) -> None:
    audit = AuditLog(store, lambda: AT, interval=60, batch=10)
    audit.start()
    try:
        record_reads(audit, 10)
        for _ in range(100):
            if await stored_seqs(store):
                break
            await asyncio.sleep(0.01)
        assert await stored_seqs(store) == list(range(1, 11))
    finally:
        await audit.stop()


async def test_a_long_outage_drops_the_oldest_entries_and_the_log_says_how_many(
        store: EntityStore, caplog: pytest.LogCaptureFixture) -> None:
    audit = AuditLog(AwayAtFirst(store, failures=1), lambda: AT)  # type: ignore[arg-type]
    audit.MOST_WAITING = 5
    with caplog.at_level(logging.ERROR, "smartcity.security.audit"):
        for n in range(8):
            audit.record("user:alice", "read", "entity", f"urn:x:{n}")
    assert len(caplog.records) == 1  # said once, not once an entry
    with pytest.raises(OSError):
        await audit.flush()
    await audit.flush()
    rows = await store.audit_rows(0, 10)
    assert (rows[0].entry.action, rows[0].entry.detail) == ("lost", {"entries": 3})
    assert [row.entry.target for row in rows[1:]] == [f"urn:x:{n}" for n in range(3, 8)]
    assert (await audit.verify()).intact
