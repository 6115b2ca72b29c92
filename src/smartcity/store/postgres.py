"""The production store: PostgreSQL through asyncpg, the same tables as the embedded
store, shared by any number of workers.

Entities are kept whole as jsonb beside side tables that index them by type, attribute
value and geometry (PostGIS when the server has it, a native ``box`` GiST index
otherwise). A write locks the rows it reads, so concurrent workers serialise on an
entity and never on the table; bulk statements take whole arrays (``unnest``), so a
batch of a thousand entities is a handful of round trips.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import orjson

from smartcity.core.ngsild.errors import AlreadyExists, BadRequestData, Conflict
from smartcity.core.ngsild.history import History
from smartcity.core.ngsild.model import Entity
from smartcity.core.ngsild.pushdown import ValueFilter
from smartcity.core.ngsild.storage import OutboxEntry, Page, Predicate, Selection, Write
from smartcity.security.audit import AuditEntry, AuditRow
from smartcity.store.audit_rows import as_head, audit_append
from smartcity.store.discovery import type_attributes
from smartcity.store.journal_rows import bounded
from smartcity.store.paging import PredicatePager
from smartcity.store.postgres_history import PostgresHistory
from smartcity.store.postgres_migrations import LATEST, current_version, initialized
from smartcity.store.postgres_sql import Params, columns, id_and_type_clauses, json_rows
from smartcity.store.subscription_rows import WITH_STATUS, record_with_status, status_row
from smartcity.store.write_plan import (
    IndexRows,
    Plan,
    StoredRow,
    bounding_box,
    plan_writes,
    shape_keys,
)

GEO_SLOTS = 1024  # most geometries of one entity, as on SQLite
# What a lost or restarting database raises: the request may succeed once it is back.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError, asyncpg.PostgresConnectionError, asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError, asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError)


# Rights are named per schema: several stores may share one database.
_LOCK_KEY = "hashtextextended(current_schema() || '/' || $1, 0)"


class SchemaBehind(RuntimeError):
    """The database holds an older schema than this smartcity: run ``smartcity db
    upgrade`` (deliberately, after a backup) before serving."""


def is_postgres_url(db: str) -> bool:
    return urlsplit(db).scheme in ("postgresql", "postgres")


async def _setup(conn: asyncpg.Connection) -> None:
    # jsonb (in the history) travels as orjson bytes both ways: the server parses it,
    # Python never builds an intermediate str.
    await conn.set_type_codec("jsonb", schema="pg_catalog", format="binary",
                              encoder=lambda doc: b"\x01" + doc, decoder=lambda data: data[1:])


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pooled connections carry no session state (advisory locks live on a connection of
    their own, transactions always end), so a release skips asyncpg's default reset, a
    round trip of RESET ALL and friends after every statement."""


class PostgresStore:
    """EntityStore on a PostgreSQL database (``open`` builds one)."""

    shared = True

    def __init__(self, pool: asyncpg.Pool, postgis: bool, url: str) -> None:
        self.pool = pool
        self.postgis = postgis
        self.url = url
        self.history = PostgresHistory(pool)
        self._locks: asyncpg.Connection | None = None  # holds the advisory locks
        self._held: dict[str, asyncpg.Connection] = {}  # right -> connection it is held on
        self._locking = asyncio.Lock()

    @classmethod
    async def open(cls, url: str, *, initialize: bool = True, postgis: bool | None = None,
                   min_size: int = 2, max_size: int = 10) -> PostgresStore:
        """Connect; an empty database gets the whole schema when ``initialize`` (with
        PostGIS if ``postgis`` and the server has it), a database at an older schema
        raises SchemaBehind."""
        pool = await asyncpg.create_pool(url, min_size=min_size, max_size=max_size,
                                         init=_setup, reset=_keep_session)
        try:
            async with pool.acquire() as conn:
                version = await initialized(conn, postgis) if initialize \
                    else await current_version(conn)
                if version < LATEST:
                    raise SchemaBehind(
                        f"the database holds schema version {version}, this smartcity "
                        f"needs {LATEST}: run 'smartcity db upgrade --db URL' first")
                elif version > LATEST:
                    raise SchemaBehind(f"the database holds schema version {version}, newer "
                                       f"than this smartcity ({LATEST}): upgrade smartcity")
                postgis = bool(await conn.fetchval(
                    "SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE "
                    "table_schema = current_schema() AND table_name = 'entity_geo' "
                    "AND column_name = 'geom')"))
        except BaseException:
            await pool.close()
            raise
        return cls(pool, postgis, url)

    async def close(self) -> None:
        if self._locks is not None:
            await self._locks.close()
        await self.pool.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        async with self.pool.acquire() as conn, conn.transaction():
            yield conn

    # -- reads ---------------------------------------------------------------
    async def get(self, tenant: str, entity_id: str) -> Entity | None:
        doc = await self.pool.fetchval("SELECT doc FROM entities WHERE tenant=$1 AND id=$2",
                                       tenant, entity_id)
        return orjson.loads(doc) if doc is not None else None

    async def get_many(self, tenant: str, entity_ids: Sequence[str]) -> dict[str, Entity]:
        rows = await self.pool.fetch("SELECT id, doc FROM entities WHERE tenant=$1 AND "
                                     "id = ANY($2::text[])", tenant, list(set(entity_ids)))
        return {entity_id: orjson.loads(doc) for entity_id, doc in rows}

    async def query(self, tenant: str, selection: Selection, predicate: Predicate | None,
                    offset: int, limit: int, count: bool) -> Page:
        params = Params()
        base = f"FROM entities e WHERE {self._where(tenant, selection, params)}"
        async with self.pool.acquire() as conn:
            if predicate is None:
                # The count and the page from one snapshot: they agree on what exists.
                async with conn.transaction(isolation="repeatable_read", readonly=True):
                    total = await conn.fetchval(f"SELECT count(*) {base}", *params) \
                        if count else None
                    # One row past the page tells whether another page follows.
                    docs = await conn.fetch(
                        f"SELECT doc {base} ORDER BY e.pk LIMIT {params.add(limit + 1)} "
                        f"OFFSET {params.add(offset)}", *params)
                rows = [orjson.loads(doc) for (doc,) in docs]
                return Page(rows[:limit], total, len(rows) > limit)
            pager = PredicatePager(predicate, offset, limit, count)
            async with conn.transaction(readonly=True):
                async for (doc,) in conn.cursor(f"SELECT doc {base} ORDER BY e.pk", *params,
                                                prefetch=500):
                    if not pager.offer(orjson.loads(doc)):
                        break
            return pager.page()

    def _where(self, tenant: str, selection: Selection, params: Params) -> str:
        clauses = [f"e.tenant = {params.add(tenant)}"]
        clauses.extend(id_and_type_clauses("e", "entity_types", tenant, selection.ids,
                                           selection.types, params))
        # Candidates from the side indexes are gathered first, every index's set once
        # and intersected (ARRAY runs its query once): a plan that probed them per
        # entity, or checked one set's members against another array, would cost
        # seconds on a large city.
        candidates = []
        if selection.attrs is not None:
            candidates.append(f"SELECT entity FROM entity_attrs WHERE tenant = "
                              f"{params.add(tenant)} AND attr = ANY("
                              f"{params.add(list(selection.attrs))}::text[])")
        for condition in selection.values:
            if any(isinstance(v, str) and "\x00" in v for v in condition.values):
                continue  # PostgreSQL text holds no NUL; the predicate decides alone
            clause = _value_clause(condition, params)
            t, a = params.add(tenant), params.add(condition.attr)
            candidates.append(f"SELECT entity FROM entity_attrs WHERE tenant = {t} AND attr = "
                              f"{a} AND {clause} UNION ALL SELECT entity FROM entity_attrs "
                              f"WHERE tenant = {t} AND attr = {a} AND complex")
        if selection.bbox is not None:
            attr, (minx, miny, maxx, maxy) = selection.bbox
            x0, y0, x1, y1 = (params.add(float(v)) for v in (minx, miny, maxx, maxy))
            overlap = f"geom && public.ST_MakeEnvelope({x0}, {y0}, {x1}, {y1}, 4326)" \
                if self.postgis else \
                f"box(point(minx, miny), point(maxx, maxy)) && box(point({x0}, {y0}), " \
                f"point({x1}, {y1}))"
            candidates.append(f"SELECT entity FROM entity_geo WHERE attr = "
                              f"{params.add(attr)} AND {overlap}")
        if candidates:
            clauses.append("e.pk = ANY(ARRAY(" + " INTERSECT ".join(
                f"({query})" for query in candidates) + "))")
        return " AND ".join(clauses)

    async def type_attributes(self, tenant: str) -> dict[str, dict[str, set[str]]]:
        async with self.pool.acquire() as conn:
            types = await conn.fetch("SELECT type, entity FROM entity_types WHERE tenant=$1",
                                     tenant)
            attrs = await conn.fetch("SELECT attr, entity, kinds FROM entity_attrs "
                                     "WHERE tenant=$1", tenant)
        return type_attributes(types, attrs)

    async def type_counts(self, tenant: str) -> dict[str, int]:
        return dict(await self.pool.fetch(
            "SELECT type, count(*) FROM entity_types WHERE tenant=$1 GROUP BY type", tenant))

    async def attribute_counts(self, tenant: str, attrs: Collection[str] | None = None,
                               types: Collection[str] | None = None) -> dict[str, int]:
        params = Params([tenant])
        sql = "SELECT attr, sum(instances) FROM entity_attrs WHERE tenant = $1"
        if attrs is not None:
            sql += f" AND attr = ANY({params.add(list(attrs))}::text[])"
        if types is not None:
            sql += (" AND entity IN (SELECT entity FROM entity_types WHERE tenant = $1 AND "
                    f"type = ANY({params.add(list(types))}::text[]))")
        return {attr: int(n) for attr, n in await self.pool.fetch(sql + " GROUP BY attr",
                                                                   *params)}

    async def tenants(self) -> list[str]:
        return [t for (t,) in await self.pool.fetch("SELECT name FROM tenants ORDER BY name")]

    async def has_tenant(self, tenant: str) -> bool:
        return bool(await self.pool.fetchval("SELECT EXISTS (SELECT 1 FROM tenants WHERE "
                                             "name=$1)", tenant))

    # -- writes --------------------------------------------------------------
    async def write(self, tenant: str, writes: Sequence[Write],
                    outbox: Sequence[OutboxEntry] = (), history: History | None = None,
                    now: int = 0, events: Sequence[bytes] = ()) -> None:
        for attempt in (1, 2):
            if history:
                # Partitions are made ahead, outside the write: DDL would lock the table.
                await self.history.prepare(history)
            try:
                await self._write(tenant, writes, outbox, history, now, events)
                return
            except BaseException as exc:
                self.history.forget_cached()
                if isinstance(exc, asyncpg.UniqueViolationError) \
                        and exc.table_name == "entities":
                    # Another worker created one of the entities since this write read them.
                    raise AlreadyExists("An entity of the request was created meanwhile") \
                        from None
                if isinstance(exc, asyncpg.TransactionRollbackError):
                    # A deadlock or serialization failure with another worker: try again.
                    raise Conflict("The write met another worker's; try again") from None
                # Retention on another worker dropped a month this one knew: make it again.
                if attempt == 2 or not isinstance(exc, asyncpg.CheckViolationError) \
                        or "no partition" not in str(exc):
                    raise

    async def _write(self, tenant: str, writes: Sequence[Write], outbox: Sequence[OutboxEntry],
                     history: History | None, now: int, events: Sequence[bytes]) -> None:
        async with self.transaction() as conn:
            plan = plan_writes(await self._rows(conn, tenant, writes), writes)
            await self._apply(conn, tenant, plan)
            if outbox:
                await conn.execute(
                    "INSERT INTO outbox (tenant, subscription_id, payload) SELECT * FROM "
                    "unnest($1::text[], $2::text[], $3::bytea[])",
                    [o.tenant for o in outbox], [o.subscription_id for o in outbox],
                    [o.payload for o in outbox])
            if events:
                await conn.execute("INSERT INTO event_outbox (events) SELECT * FROM "
                                   "unnest($1::bytea[])", list(events))
            if history:
                await self.history.insert(conn, tenant, history, now)

    async def _rows(self, conn: asyncpg.Connection, tenant: str,
                    writes: Sequence[Write]) -> dict[str, StoredRow]:
        """The stored rows the writes touch, locked until the transaction ends; in id
        order, so two workers locking overlapping batches cannot deadlock."""
        ids = sorted({w.entity_id for w in writes})
        rows = await conn.fetch("SELECT id, pk, modified_at, shape, values_sig FROM entities "
                                "WHERE tenant=$1 AND id = ANY($2::text[]) ORDER BY id "
                                "FOR UPDATE", tenant, ids)
        return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}

    async def _apply(self, conn: asyncpg.Connection, tenant: str, plan: Plan) -> None:
        new_pks: list[int] = []
        if plan.inserted:
            await conn.execute("INSERT INTO tenants VALUES ($1) ON CONFLICT DO NOTHING", tenant)
            new_pks = [pk for (pk,) in await conn.fetch(
                "SELECT nextval(pg_get_serial_sequence('entities', 'pk')) "
                "FROM generate_series(1, $1)", len(plan.inserted))]
        await self._drop_indexes(conn, tenant, plan.dropped)
        if plan.deleted:
            await conn.execute("DELETE FROM entities WHERE pk = ANY($1::bigint[])",
                               plan.deleted)
        if plan.updated:
            await conn.execute(
                "UPDATE entities e SET modified_at = u.m, shape = u.s, values_sig = u.v, "
                "doc = u.d FROM unnest($1::bigint[], $2::text[], $3::bytea[], $4::bytea[], "
                "$5::bytea[]) AS u(pk, m, s, v, d) WHERE e.pk = u.pk", *columns(plan.updated))
        if plan.inserted:
            await conn.execute(
                "INSERT INTO entities (pk, tenant, id, modified_at, shape, values_sig, doc) "
                "SELECT u.pk, $1, u.id, u.m, u.s, u.v, u.d FROM unnest($2::bigint[], "
                "$3::text[], $4::text[], $5::bytea[], $6::bytea[], $7::bytea[]) "
                "AS u(pk, id, m, s, v, d)", tenant, *columns(
                    # Keys in id order (pks keep the request's): two workers inserting
                    # the same new entities then wait for each other, never deadlock.
                    sorted(((pk, n.entity_id, n.entity["modifiedAt"], n.shape, n.signature,
                             n.doc) for pk, n in zip(new_pks, plan.inserted, strict=True)),
                           key=lambda row: row[1])))
        if plan.revalued:
            await conn.execute(
                "UPDATE entity_attrs a SET num = (u->>2)::float8, str = u->>3, "
                "complex = (u->>4)::bool, instances = (u->>5)::int "
                "FROM jsonb_array_elements($2) u WHERE a.tenant = $1 AND a.attr = u->>1 "
                "AND a.entity = (u->>0)::bigint",
                tenant, json_rows([(*r[:2], *_text_safe(*r[2:5]), r[5])
                                   for r in plan.revalued]))
        await self._add_indexes(conn, tenant, [
            *plan.reindexed, *((pk, n.index) for pk, n in zip(new_pks, plan.inserted,
                                                               strict=True))])

    async def _drop_indexes(self, conn: asyncpg.Connection, tenant: str,
                            dropped: list[tuple[int, bytes]]) -> None:
        """Delete the index rows of entities by key, from the shape stored with each."""
        if not dropped:
            return
        types: list[tuple[str, int]] = []
        attrs: list[tuple[str, int]] = []
        for pk, shape in dropped:
            type_names, attr_names, _ = shape_keys(shape)
            types.extend((t, pk) for t in type_names)
            attrs.extend((a, pk) for a in attr_names)
        await conn.execute("DELETE FROM entity_types t USING jsonb_array_elements($2) d "
                           "WHERE t.tenant = $1 AND t.type = d->>0 AND "
                           "t.entity = (d->>1)::bigint", tenant, json_rows(types))
        await conn.execute("DELETE FROM entity_attrs a USING jsonb_array_elements($2) d "
                           "WHERE a.tenant = $1 AND a.attr = d->>0 AND "
                           "a.entity = (d->>1)::bigint", tenant, json_rows(attrs))
        await conn.execute("DELETE FROM entity_geo WHERE entity = ANY($1::bigint[])",
                           [pk for pk, _ in dropped])

    async def _add_indexes(self, conn: asyncpg.Connection, tenant: str,
                           indexed: list[tuple[int, IndexRows]]) -> None:
        if not indexed:
            return
        types: list[tuple[str, int]] = []
        attrs: list[tuple[Any, ...]] = []
        boxes: list[tuple[Any, ...]] = []
        for pk, (entity_types, entity_attrs, geoms) in indexed:
            if len(geoms) > GEO_SLOTS:
                raise BadRequestData(f"An entity holds at most {GEO_SLOTS} geometries")
            types.extend((t, pk) for t in dict.fromkeys(entity_types))
            attrs.extend((a, pk, kinds, *_text_safe(num, text, complex_), count)
                         for a, kinds, num, text, complex_, count in entity_attrs)
            for slot, (attr, geometry) in enumerate(geoms):
                box = (pk, slot, attr, *bounding_box(geometry))
                boxes.append((*box, _bare(geometry)) if self.postgis else box)
        await conn.execute("INSERT INTO entity_types SELECT $1, r->>0, (r->>1)::bigint "
                           "FROM jsonb_array_elements($2) r", tenant, json_rows(types))
        await conn.execute("INSERT INTO entity_attrs SELECT $1, r->>0, (r->>1)::bigint, "
                           "r->>2, (r->>3)::float8, r->>4, (r->>5)::bool, (r->>6)::int "
                           "FROM jsonb_array_elements($2) r", tenant, json_rows(attrs))
        if not boxes:
            return
        shape = "public.ST_SetSRID(public.ST_GeomFromGeoJSON(r->7), 4326)" \
            if self.postgis else None
        await conn.execute(
            "INSERT INTO entity_geo SELECT (r->>0)::bigint, (r->>1)::int, r->>2, "
            "(r->>3)::float8, (r->>4)::float8, (r->>5)::float8, (r->>6)::float8"
            + (f", {shape}" if shape else "") + " FROM jsonb_array_elements($1) r",
            json_rows(boxes))

    # -- outbox ----------------------------------------------------------------
    async def pending_notifications(self, limit: int,
                                    subscription: tuple[str, str] | None = None
                                    ) -> list[OutboxEntry]:
        params = Params()
        where = f"WHERE tenant = {params.add(subscription[0])} AND subscription_id = " \
            f"{params.add(subscription[1])} " if subscription is not None else ""
        return [OutboxEntry(tenant, sub, payload, number) for number, tenant, sub, payload in
                await self.pool.fetch("SELECT number, tenant, subscription_id, payload FROM "
                                      f"outbox {where}ORDER BY number LIMIT "
                                      f"{params.add(limit)}", *params)]

    async def pending_subscriptions(self, limit: int) -> list[tuple[str, str]]:
        return [(t, s) for t, s in await self.pool.fetch(
            "SELECT DISTINCT tenant, subscription_id FROM outbox LIMIT $1", limit)]

    @asynccontextmanager
    async def exclusive(self, name: str) -> AsyncIterator[bool]:
        """A session advisory lock, on a connection of its own: a worker that dies closes
        it, and its locks go with it."""
        async with self._locking:
            if self._locks is None or self._locks.is_closed():
                self._locks = await asyncpg.connect(self.url)
            locks = self._locks
            held = await locks.fetchval(f"SELECT pg_try_advisory_lock({_LOCK_KEY})", name)
        if held:
            self._held[name] = locks
        try:
            yield bool(held)
        finally:
            if held and self._held.get(name) is locks:
                del self._held[name]
            if held and not locks.is_closed():
                # A connection lost meanwhile took the lock with it.
                with contextlib.suppress(OSError, asyncpg.PostgresError,
                                         asyncpg.InterfaceError):
                    async with self._locking:
                        await locks.execute(f"SELECT pg_advisory_unlock({_LOCK_KEY})", name)

    async def rights_held(self) -> bool:
        async with self._locking:
            if self._locks is None or self._locks.is_closed():
                return False
            # A right taken on a connection since lost is lost, whatever the new one holds.
            if any(conn is not self._locks for conn in self._held.values()):
                return False
            try:
                await self._locks.execute("SELECT 1")
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                return False
        return True

    async def drop_notifications(self, numbers: Sequence[int]) -> None:
        await self.pool.execute("DELETE FROM outbox WHERE number = ANY($1::bigint[])",
                                list(numbers))

    async def pending_events(self, limit: int) -> list[tuple[int, bytes]]:
        return [(n, e) for n, e in await self.pool.fetch(
            "SELECT number, events FROM event_outbox ORDER BY number LIMIT $1", limit)]

    async def drop_events(self, numbers: Sequence[int]) -> None:
        await self.pool.execute("DELETE FROM event_outbox WHERE number = ANY($1::bigint[])",
                                list(numbers))

    # -- subscriptions ---------------------------------------------------------
    async def subscriptions(self) -> list[dict[str, Any]]:
        return [record_with_status(row[0], row[1:])
                for row in await self.pool.fetch(WITH_STATUS)]

    async def subscription(self, tenant: str, subscription_id: str) -> dict[str, Any] | None:
        row = await self.pool.fetchrow(WITH_STATUS + " WHERE r.tenant = $1 AND r.id = $2",
                                       tenant, subscription_id)
        return record_with_status(row[0], row[1:]) if row is not None else None

    async def add_subscription(self, record: dict[str, Any]) -> bool:
        async with self.transaction() as conn:
            added = await conn.fetchval(
                "INSERT INTO subscriptions VALUES ($1, $2, $3) ON CONFLICT (tenant, id) "
                "DO NOTHING RETURNING true", record["tenant"], record["id"],
                orjson.dumps(record))
            if added:
                # Counts a deleted namesake's late deliveries left behind are not its own.
                await conn.execute("DELETE FROM subscription_status WHERE tenant=$1 AND "
                                   "id=$2", record["tenant"], record["id"])
                await _bump(conn, "subscriptions")
        return bool(added)

    async def save_subscription(self, record: dict[str, Any]) -> None:
        async with self.transaction() as conn:
            await conn.execute("INSERT INTO subscriptions VALUES ($1, $2, $3) ON CONFLICT "
                               "(tenant, id) DO UPDATE SET record = excluded.record",
                               record["tenant"], record["id"], orjson.dumps(record))
            await _bump(conn, "subscriptions")

    async def add_subscription_status(self, tenant: str, subscription_id: str,
                                      delta: dict[str, Any]) -> None:
        await self.pool.execute(
            "INSERT INTO subscription_status VALUES ($1, $2, $3, $4, $5, $6, $7) "
            "ON CONFLICT (tenant, id) DO UPDATE SET "
            "times_sent = subscription_status.times_sent + excluded.times_sent, "
            "times_failed = subscription_status.times_failed + excluded.times_failed, "
            "last_notification = greatest(subscription_status.last_notification, "
            "excluded.last_notification), last_success = greatest("
            "subscription_status.last_success, excluded.last_success), last_failure = "
            "greatest(subscription_status.last_failure, excluded.last_failure)",
            tenant, subscription_id, *status_row(delta))

    async def delete_subscription(self, tenant: str, subscription_id: str) -> bool:
        async with self.transaction() as conn:
            await conn.execute("DELETE FROM subscription_status WHERE tenant=$1 AND id=$2",
                               tenant, subscription_id)
            status = await conn.execute("DELETE FROM subscriptions WHERE tenant=$1 AND id=$2",
                                        tenant, subscription_id)
            await _bump(conn, "subscriptions")
        return bool(status != "DELETE 0")

    # -- @context records ----------------------------------------------------
    async def contexts(self) -> list[dict[str, Any]]:
        return [orjson.loads(r) for (r,) in await self.pool.fetch("SELECT record FROM contexts")]

    async def save_context(self, record: dict[str, Any], changed: bool = True) -> None:
        async with self.transaction() as conn:
            await conn.execute("INSERT INTO contexts VALUES ($1, $2) ON CONFLICT (local_id) "
                               "DO UPDATE SET record = excluded.record",
                               record["localId"], orjson.dumps(record))
            if changed:
                await _bump(conn, "contexts")

    async def delete_context(self, local_id: str) -> None:
        async with self.transaction() as conn:
            await conn.execute("DELETE FROM contexts WHERE local_id=$1", local_id)
            await _bump(conn, "contexts")

    # -- records of platform services ------------------------------------------
    async def records(self, kind: str) -> list[dict[str, Any]]:
        return [orjson.loads(r) for (r,) in await self.pool.fetch(
            "SELECT record FROM records WHERE kind = $1", kind)]

    async def save_record(self, kind: str, tenant: str, key: str,
                          record: dict[str, Any]) -> int:
        async with self.transaction() as conn:
            await conn.execute("INSERT INTO records VALUES ($1, $2, $3, $4) ON CONFLICT "
                               "(kind, tenant, key) DO UPDATE SET record = excluded.record",
                               kind, tenant, key, orjson.dumps(record))
            return await _bump(conn, kind)

    async def delete_record(self, kind: str, tenant: str, key: str) -> tuple[bool, int]:
        async with self.transaction() as conn:
            status = await conn.execute("DELETE FROM records WHERE kind = $1 AND tenant = $2 "
                                        "AND key = $3", kind, tenant, key)
            return status != "DELETE 0", await _bump(conn, kind)

    # -- journals ----------------------------------------------------------------
    async def append_journal(self, kind: str, entries: Sequence[dict[str, Any]], keep: int,
                             tallies: Mapping[str, int], most: int) -> None:
        async with self.transaction() as conn:
            # Workers append to a kind in turns: each numbers its entries after the last.
            await conn.execute(f"SELECT pg_advisory_xact_lock({_LOCK_KEY})", "journal/" + kind)
            last = await conn.fetchval("SELECT coalesce(max(seq), 0) FROM journal "
                                       "WHERE kind = $1", kind)
            await conn.execute("INSERT INTO journal SELECT $1, * FROM unnest($2::bigint[], "
                               "$3::bytea[])", kind,
                               list(range(last + 1, last + len(entries) + 1)),
                               [orjson.dumps(entry) for entry in entries])
            await conn.execute("DELETE FROM journal WHERE kind = $1 AND seq <= $2", kind,
                               last + len(entries) - keep)
            known = {key for (key,) in await conn.fetch(
                "SELECT key FROM tallies WHERE kind = $1 AND key = ANY($2::text[])", kind,
                list(tallies))}
            held = await conn.fetchval("SELECT count(*) FROM tallies WHERE kind = $1", kind)
            added = bounded(tallies, known, held, most)
            await conn.execute("INSERT INTO tallies SELECT $1, * FROM unnest($2::text[], "
                               "$3::bigint[]) ON CONFLICT (kind, key) DO UPDATE SET count = "
                               "tallies.count + excluded.count", kind, list(added),
                               list(added.values()))

    async def journal(self, kind: str, limit: int) -> list[dict[str, Any]]:
        return [orjson.loads(entry) for (entry,) in await self.pool.fetch(
            "SELECT entry FROM journal WHERE kind = $1 ORDER BY seq DESC LIMIT $2", kind,
            limit)]

    async def tallies(self, kind: str, keys: Collection[str]) -> dict[str, int]:
        return {key: int(count) for key, count in await self.pool.fetch(
            "SELECT key, count FROM tallies WHERE kind = $1 AND key = ANY($2::text[])", kind,
            list(keys))}

    # -- audit log ---------------------------------------------------------------
    async def append_audit(self, entries: Sequence[AuditEntry]) -> None:
        if not entries:
            return
        async with self.transaction() as conn:
            # Workers append in turns: each numbers its entries after the head it read.
            await conn.execute(f"SELECT pg_advisory_xact_lock({_LOCK_KEY})", "audit log")
            stored = await conn.fetchrow("SELECT seq, hash FROM audit_head")
            append = audit_append(as_head(stored), entries)
            await conn.execute("INSERT INTO audit_log SELECT * FROM unnest($1::bigint[], "
                               "$2::text[], $3::bytea[])", *columns(append.rows))
            await conn.execute("INSERT INTO audit_subjects SELECT * FROM unnest($1::text[], "
                               "$2::bigint[])", *columns(append.subjects, 2))
            await conn.execute("INSERT INTO audit_head VALUES (true, $1, $2) ON CONFLICT "
                               "(one) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
                               *append.head)

    async def audit_head(self) -> tuple[int, str]:
        return as_head(await self.pool.fetchrow("SELECT seq, hash FROM audit_head"))

    async def audit_rows(self, after_seq: int, limit: int) -> list[AuditRow]:
        return [AuditRow(*row) for row in await self.pool.fetch(
            "SELECT seq, hash, entry FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
            after_seq, limit)]

    async def audit_for_subject(self, subject: str, limit: int) -> list[AuditRow]:
        return [AuditRow(*row) for row in await self.pool.fetch(
            "SELECT l.seq, l.hash, l.entry FROM audit_subjects s JOIN audit_log l "
            "ON l.seq = s.seq WHERE s.subject = $1 ORDER BY s.seq DESC LIMIT $2",
            subject, limit)]

    async def identity(self) -> str:
        return str(await self.pool.fetchval("SELECT id FROM platform_identity"))

    async def cache_versions(self) -> dict[str, int]:
        return dict(await self.pool.fetch("SELECT name, version FROM cache_versions"))




async def _bump(conn: asyncpg.Connection, name: str) -> int:
    return int(await conn.fetchval(
        "INSERT INTO cache_versions VALUES ($1, 1) ON CONFLICT (name) DO UPDATE SET "
        "version = cache_versions.version + 1 RETURNING version", name))


def _bare(geometry: dict[str, Any]) -> dict[str, Any]:
    """The members of a GeoJSON geometry that PostGIS reads (other members may hold any
    text, NUL included, which jsonb refuses)."""
    bare = {k: geometry[k] for k in ("type", "coordinates") if k in geometry}
    if "geometries" in geometry:
        bare["geometries"] = [_bare(g) for g in geometry["geometries"]]
    return bare


def _text_safe(num: float | None, text: str | None,
               complex_: int) -> tuple[float | None, str | None, bool]:
    """Value-index columns PostgreSQL can hold: its text cannot contain NUL, so such a
    string is indexed as complex (always a candidate; the predicate decides)."""
    if text is not None and "\x00" in text:
        return None, None, True
    return num, text, bool(complex_)


def _value_clause(condition: ValueFilter, params: Params) -> str:
    column = condition.column  # 'num' or 'str': fixed names, never client text
    values = [float(v) if column == "num" else v for v in condition.values]
    cast = "float8" if column == "num" else "text"
    if condition.op == "in":
        return f"{column} = ANY({params.add(values)}::{cast}[])"
    if condition.op == "between":
        return f"{column} BETWEEN {params.add(values[0])} AND {params.add(values[1])}"
    return f"{column} {condition.op} {params.add(values[0])}"
