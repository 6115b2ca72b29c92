"""Specification of the PostgreSQL schema migrations and ``smartcity db``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import asyncpg
import pytest
from typer.testing import CliRunner

from smartcity.cli import app
from smartcity.core.ngsild.storage import Write
from smartcity.security.audit import AuditEntry
from smartcity.store.backend import describe
from smartcity.store.postgres import PostgresStore, SchemaBehind, _setup
from smartcity.store.postgres_migrations import LATEST, current_version, upgrade
from tests.conftest import postgres_schema
from tests.store.test_entity_store import BENCH, LAMP, entity, insert

pytestmark = pytest.mark.services
runner = CliRunner()


@pytest.fixture
def url() -> Iterator[str]:
    with postgres_schema() as schema_url:
        yield schema_url


async def test_an_empty_database_gets_the_whole_schema_when_first_opened(url: str) -> None:
    store = await PostgresStore.open(url)
    await store.close()
    conn = await asyncpg.connect(url)
    try:
        assert await current_version(conn) == LATEST
    finally:
        await conn.close()


async def version_one_with_rows(url: str) -> None:
    """A database as the first release left it, holding entities of two tenants, a
    subscription and an @context."""
    conn = await asyncpg.connect(url)
    try:
        await upgrade(conn, target=1, postgis=False)
    finally:
        await conn.close()
    pool = await asyncpg.create_pool(url, init=_setup)
    old = PostgresStore(pool, postgis=False, url=url)
    try:
        await old.write("", insert(*(entity(f"urn:x:{i}", point=[18.0, 59.0 + i / 100],
                                            n=i) for i in range(50))))
        await old.write("north", insert(entity("urn:x:1", BENCH, seats=4)))
        # As the first release stored them (its store code wrote just these rows).
        await pool.execute("INSERT INTO subscriptions VALUES ('', 'urn:s:1', $1)",
                           b'{"tenant": "", "id": "urn:s:1", "q": "n>3", "timesSent": 7}')
        await pool.execute("INSERT INTO contexts VALUES ('abc', $1)",
                           b'{"localId": "abc", "URL": "http://x/abc", "kind": "Hosted"}')
    finally:
        await pool.close()


async def row_counts(url: str) -> dict[str, int]:
    conn = await asyncpg.connect(url)
    try:
        return {table: await conn.fetchval(f"SELECT count(*) FROM {table}")
                for table in ("entities", "entity_types", "entity_attrs", "entity_geo",
                              "tenants", "subscriptions", "contexts")}
    finally:
        await conn.close()


async def test_an_upgrade_of_a_populated_database_keeps_every_row(url: str) -> None:
    await version_one_with_rows(url)
    before = await row_counts(url)
    with pytest.raises(SchemaBehind, match="smartcity db upgrade"):
        await PostgresStore.open(url)
    result = await asyncio.to_thread(runner.invoke, app, ["db", "upgrade", "--db", url])
    assert result.exit_code == 0, result.output
    assert "applied migration 2: temporal history" in result.output
    assert "applied migration 5: the audit log" in result.output
    assert f"schema version {LATEST}" in result.output
    assert await row_counts(url) == before
    store = await PostgresStore.open(url)
    try:
        stored = await store.get("north", "urn:x:1")
        assert stored is not None and stored["type"] == [BENCH]
        assert len(await store.get_many("", [f"urn:x:{i}" for i in range(50)])) == 50
        [subscription] = await store.subscriptions()
        assert (subscription["id"], subscription["timesSent"]) == ("urn:s:1", 7)
        # The count moved out of the record: saving the settings keeps it.
        await store.save_subscription({"tenant": "", "id": "urn:s:1", "q": "n>4"})
        [subscription] = await store.subscriptions()
        assert (subscription["q"], subscription["timesSent"]) == ("n>4", 7)
        # The upgraded database takes new writes, history and audit log included.
        await store.write("", [Write("replace", "urn:x:2", entity("urn:x:2", LAMP, n=99),
                                     expect=entity("urn:x:2")["modifiedAt"])])
        await store.append_audit([AuditEntry("2026-03-01T08:00:00.000000Z", "system",
                                             "administer", "database", "upgrade")])
        assert (await store.audit_head())[0] == 1
    finally:
        await store.close()


async def test_workers_upgrading_at_once_apply_each_migration_once(url: str) -> None:
    connections = [await asyncpg.connect(url) for _ in range(3)]
    try:
        applied = await asyncio.gather(*(upgrade(c) for c in connections))
        assert sorted(m.version for run in applied for m in run) == list(range(1, LATEST + 1))
    finally:
        for conn in connections:
            await conn.close()


def test_db_status_tells_how_far_behind_a_database_is(url: str) -> None:
    result = runner.invoke(app, ["db", "status", "--db", url])
    assert result.exit_code == 0
    assert f"schema version 0, this smartcity needs {LATEST}" in result.output
    assert "smartcity db upgrade" in result.output


def test_serve_refuses_a_database_at_an_older_schema(url: str) -> None:
    asyncio.run(version_one_with_rows(url))
    result = runner.invoke(app, ["serve", "--db", url])
    assert result.exit_code == 2
    assert "smartcity db upgrade" in result.output


def test_an_unreachable_database_is_a_message_not_a_traceback() -> None:
    result = runner.invoke(app, ["db", "upgrade", "--db",
                                 "postgresql://city:s3cret@127.0.0.1:1/nowhere"])
    assert result.exit_code == 2
    assert "cannot be read" in result.output
    assert "s3cret" not in result.output and "Traceback" not in result.output


def test_a_database_password_is_never_shown() -> None:
    assert describe("postgresql://city:s3cret@db.example:5432/city") == \
        "postgresql://city:***@db.example:5432/city"
    assert describe("/var/lib/smartcity/city.db") == "/var/lib/smartcity/city.db"


async def test_workers_opening_an_empty_database_at_once_all_see_the_whole_schema(
        url: str) -> None:
    stores = await asyncio.gather(*(PostgresStore.open(url) for _ in range(4)))
    for store in stores:
        await store.close()
