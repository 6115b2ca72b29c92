"""Which store a ``db`` setting names: a ``postgresql://`` URL is the production store,
anything else a SQLite file (or ``:memory:``)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from smartcity.core.ngsild.storage import EntityStore
from smartcity.store import postgres_migrations
from smartcity.store.postgres import PostgresStore, is_postgres_url
from smartcity.store.sqlite import SCHEMA_VERSION, SqliteStore


async def open_store(db: str) -> EntityStore:
    if is_postgres_url(db):
        return await PostgresStore.open(db)
    return SqliteStore(db)


def describe(db: str) -> str:
    """The ``db`` setting as it may be shown or logged: never with its password."""
    if not is_postgres_url(db):
        return db
    parts = urlsplit(db)
    if parts.password is None:
        return db
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


async def upgrade(db: str) -> list[str]:
    """Bring the database's schema up to this smartcity's; the migrations applied."""
    if not is_postgres_url(db):
        store = SqliteStore(db)  # SQLite creates and upgrades its schema on opening
        await store.close()
        return []
    conn = await asyncpg.connect(db)
    try:
        return [f"{m.version}: {m.name}" for m in await postgres_migrations.upgrade(conn)]
    finally:
        await conn.close()


async def schema_version(db: str) -> tuple[int, int]:
    """(version the database holds, version this smartcity needs)."""
    if not is_postgres_url(db):
        if db == ":memory:" or not Path(db).exists():
            return 0, SCHEMA_VERSION
        with closing(sqlite3.connect(db)) as file:
            return int(file.execute("PRAGMA user_version").fetchone()[0]), SCHEMA_VERSION
    conn = await asyncpg.connect(db)
    try:
        return await postgres_migrations.current_version(conn), postgres_migrations.LATEST
    finally:
        await conn.close()
