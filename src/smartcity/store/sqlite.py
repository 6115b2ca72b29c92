"""The embedded store: SQLite in WAL mode, R*Tree for geometry, one writer.

Entities are kept whole as JSON; side tables index them by type, attribute name
and geometry bounding box so a query reads only candidate rows. Calls run on the
event loop thread: an indexed read or a batch write takes micro- to milliseconds,
less than a thread hand-off would cost.
"""

from __future__ import annotations

import os
import sqlite3
import weakref
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson

from smartcity.core.ngsild.errors import BadRequestData
from smartcity.core.ngsild.history import History
from smartcity.core.ngsild.model import Entity
from smartcity.core.ngsild.pushdown import ValueFilter
from smartcity.core.ngsild.storage import OutboxEntry, Page, Predicate, Selection, Write
from smartcity.security.audit import AuditEntry, AuditRow
from smartcity.store.audit_rows import as_head, audit_append
from smartcity.store.discovery import type_attributes
from smartcity.store.journal_rows import bounded
from smartcity.store.paging import PredicatePager
from smartcity.store.sqlite_checkpoints import Checkpointer
from smartcity.store.sqlite_chunks import rows_for_keys
from smartcity.store.sqlite_history import SqliteHistory
from smartcity.store.sqlite_readers import Readers
from smartcity.store.sqlite_types import entity_clauses
from smartcity.store.subscription_rows import (
    WITH_STATUS,
    record_with_status,
    split_status,
    status_row,
)
from smartcity.store.write_plan import (
    IndexRows,
    StoredRow,
    bounding_box,
    plan_writes,
    shape_keys,
)

# 2: subscription delivery status kept apart from the records (version 1 kept it in them)
# 3: the audit log (its tables are new: opening an older file adds them)
# 4: journals of platform services, with running counts (new tables, added alike)
SCHEMA_VERSION = 4
SCHEMA = """
CREATE TABLE IF NOT EXISTS entities (
    pk INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    modified_at TEXT NOT NULL,
    shape BLOB NOT NULL,
    values_sig BLOB NOT NULL,
    doc BLOB NOT NULL,
    UNIQUE (tenant, id)
);
CREATE TABLE IF NOT EXISTS entity_types (
    tenant TEXT NOT NULL, type TEXT NOT NULL, entity INTEGER NOT NULL,
    PRIMARY KEY (tenant, type, entity)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS entity_attrs (
    tenant TEXT NOT NULL, attr TEXT NOT NULL, entity INTEGER NOT NULL, kinds TEXT NOT NULL,
    num REAL, str TEXT, complex INTEGER NOT NULL,
    PRIMARY KEY (tenant, attr, entity)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS entity_attrs_num ON entity_attrs (tenant, attr, num)
    WHERE num IS NOT NULL;
CREATE INDEX IF NOT EXISTS entity_attrs_str ON entity_attrs (tenant, attr, str)
    WHERE str IS NOT NULL;
CREATE INDEX IF NOT EXISTS entity_attrs_complex ON entity_attrs (tenant, attr)
    WHERE complex = 1;
CREATE VIRTUAL TABLE IF NOT EXISTS geo_boxes USING rtree (
    id, minx, maxx, miny, maxy, +entity INTEGER, +attr TEXT
);
CREATE TABLE IF NOT EXISTS tenants (name TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (
    number INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT NOT NULL,
    subscription_id TEXT NOT NULL, payload BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS subscriptions (
    tenant TEXT NOT NULL, id TEXT NOT NULL, record BLOB NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS contexts (
    local_id TEXT PRIMARY KEY, record BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
    kind TEXT NOT NULL, tenant TEXT NOT NULL, key TEXT NOT NULL, record BLOB NOT NULL,
    PRIMARY KEY (kind, tenant, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS event_outbox (
    number INTEGER PRIMARY KEY AUTOINCREMENT, events BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS subscription_status (
    tenant TEXT NOT NULL, id TEXT NOT NULL, times_sent INTEGER NOT NULL DEFAULT 0,
    times_failed INTEGER NOT NULL DEFAULT 0, last_notification TEXT, last_success TEXT,
    last_failure TEXT, PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS journal (
    kind TEXT NOT NULL, seq INTEGER NOT NULL, entry BLOB NOT NULL, PRIMARY KEY (kind, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tallies (
    kind TEXT NOT NULL, key TEXT NOT NULL, count INTEGER NOT NULL, PRIMARY KEY (kind, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS audit_log (
    seq INTEGER PRIMARY KEY, hash TEXT NOT NULL, entry BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_subjects (
    subject TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (subject, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS audit_head (
    one INTEGER PRIMARY KEY CHECK (one = 1), seq INTEGER NOT NULL, hash TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_subjects_no_update BEFORE UPDATE ON audit_subjects
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_subjects_no_delete BEFORE DELETE ON audit_subjects
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_head_no_delete BEFORE DELETE ON audit_head
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""


# Each entity owns the R*Tree ids pk * GEO_SLOTS ... pk * GEO_SLOTS + GEO_SLOTS - 1.
GEO_SLOTS = 1024


class SqliteStore:
    """EntityStore on one SQLite file (or ':memory:'), written by this process alone."""

    shared = False

    def __init__(self, path: str | Path = ":memory:") -> None:
        self.path = str(path)
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        # Larger pages: measured +25% on bulk writes (bench/).
        self.db.execute("PRAGMA page_size=8192")
        self.db.execute("PRAGMA journal_mode=WAL")
        # Checkpoints run on a thread of their own (sqlite_checkpoints); the writer's own,
        # with little left to copy by then, is what lets the WAL start over.
        self.db.execute("PRAGMA wal_autocheckpoint=10000")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA busy_timeout=5000")
        self.db.execute("PRAGMA cache_size=-65536")
        self.db.execute("PRAGMA temp_store=MEMORY")
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RuntimeError(f"{self.path} holds schema version {version}; this smartcity "
                               f"reads up to version {SCHEMA_VERSION}")
        self.db.executescript(SCHEMA)
        # Long history scans run on reader threads; an in-memory database has no second
        # connection that could see it.
        self.readers = Readers(self.path) if self.path != ":memory:" else None
        self.checkpoints = Checkpointer(self.path) if self.path != ":memory:" else None
        if self.checkpoints is not None:
            # A store dropped without close() (or failing to open) still stops its thread.
            weakref.finalize(self, self.checkpoints.close)
        self.history = SqliteHistory(self.db, self.transaction, self.readers)
        if version == 1:
            self.transaction(self._split_subscription_status)
        self.db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        self._versions: dict[str, int] = {}

    def _split_subscription_status(self) -> None:
        for tenant, subscription_id, record in self.db.execute(
                "SELECT tenant, id, record FROM subscriptions").fetchall():
            settings, status = split_status(orjson.loads(record))
            self.db.execute("UPDATE subscriptions SET record = ? WHERE tenant = ? AND id = ?",
                            (orjson.dumps(settings), tenant, subscription_id))
            self.db.execute("INSERT INTO subscription_status VALUES (?,?,?,?,?,?,?)",
                            (tenant, subscription_id, *status))

    def transaction(self, work: Callable[[], Any]) -> Any:
        """Run ``work`` in one write transaction; roll back on any error."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            result = work()
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            self.history.forget_cached()
            raise
        if self.checkpoints is not None:
            self.checkpoints.committed()
        return result

    async def close(self) -> None:
        if self.readers is not None:
            self.readers.close()
        if self.checkpoints is not None:
            self.checkpoints.close()
        self.db.close()

    # -- reads ---------------------------------------------------------------
    async def get(self, tenant: str, entity_id: str) -> Entity | None:
        row = self.db.execute("SELECT doc FROM entities WHERE tenant=? AND id=?",
                              (tenant, entity_id)).fetchone()
        return orjson.loads(row[0]) if row else None

    async def get_many(self, tenant: str, entity_ids: Sequence[str]) -> dict[str, Entity]:
        return {entity_id: orjson.loads(doc) for entity_id, doc in rows_for_keys(
            self.db, "SELECT id, doc FROM entities WHERE tenant=? AND id IN ({keys})",
            entity_ids, (tenant,))}

    async def query(self, tenant: str, selection: Selection, predicate: Predicate | None,
                    offset: int, limit: int, count: bool) -> Page:
        where, params = self._where(tenant, selection)
        base = f"FROM entities e WHERE {where}"
        if predicate is None:
            total = self.db.execute(f"SELECT count(*) {base}", params).fetchone()[0] \
                if count else None
            # One row past the page tells whether another page follows.
            rows = [orjson.loads(doc) for (doc,) in self.db.execute(
                f"SELECT doc {base} ORDER BY e.pk LIMIT ? OFFSET ?",
                (*params, limit + 1, offset))]
            return Page(rows[:limit], total, len(rows) > limit)
        pager = PredicatePager(predicate, offset, limit, count)
        for (doc,) in self.db.execute(f"SELECT doc {base} ORDER BY e.pk", params):
            if not pager.offer(orjson.loads(doc)):
                break
        return pager.page()

    @staticmethod
    def _where(tenant: str, selection: Selection) -> tuple[str, list[Any]]:
        clauses, params = entity_clauses(
            "e", "entity_types", tenant, selection.ids, selection.types,
            by_key=selection.bbox is not None or bool(selection.values))
        if selection.attrs is not None:
            marks = ",".join("?" * len(selection.attrs))
            clauses.append("e.pk IN (SELECT a.entity FROM entity_attrs a WHERE a.tenant = ? "
                           f"AND a.attr IN ({marks}))")
            params.extend((tenant, *selection.attrs))
        for condition in selection.values:
            clause, args = _value_clause(condition)
            clauses.append(f"e.pk IN (SELECT entity FROM entity_attrs WHERE tenant = ? "
                           f"AND attr = ? AND {clause} UNION ALL SELECT entity FROM "
                           f"entity_attrs WHERE tenant = ? AND attr = ? AND complex = 1)")
            params.extend((tenant, condition.attr, *args, tenant, condition.attr))
        if selection.bbox is not None:
            attr, (minx, miny, maxx, maxy) = selection.bbox
            clauses.append("e.pk IN (SELECT entity FROM geo_boxes WHERE attr = ? "
                           "AND maxx >= ? AND minx <= ? AND maxy >= ? AND miny <= ?)")
            params.extend((attr, minx, maxx, miny, maxy))
        return " AND ".join(clauses), params

    async def type_attributes(self, tenant: str) -> dict[str, dict[str, set[str]]]:
        return type_attributes(
            self.db.execute("SELECT type, entity FROM entity_types WHERE tenant=?", (tenant,)),
            self.db.execute("SELECT attr, entity, kinds FROM entity_attrs WHERE tenant=?",
                            (tenant,)))

    async def type_counts(self, tenant: str) -> dict[str, int]:
        return dict(self.db.execute(
            "SELECT type, count(*) FROM entity_types WHERE tenant=? GROUP BY type", (tenant,)))

    async def attribute_counts(self, tenant: str, attrs: Collection[str] | None = None,
                               types: Collection[str] | None = None) -> dict[str, int]:
        """attribute IRI -> number of attribute instances (one per datasetId) over all
        entities; only for ``attrs`` and in entities of ``types`` when given."""
        sql = ("SELECT a.attr, sum(json_array_length(CAST(e.doc AS TEXT), "
               "'$.attrs.\"' || a.attr || '\"')) FROM entity_attrs a "
               "JOIN entities e ON e.pk = a.entity WHERE a.tenant = ?")
        params: list[Any] = [tenant]
        if attrs is not None:
            sql += f" AND a.attr IN ({','.join('?' * len(attrs))})"
            params.extend(attrs)
        if types is not None:
            sql += (" AND a.entity IN (SELECT entity FROM entity_types WHERE tenant = ? "
                    f"AND type IN ({','.join('?' * len(types))}))")
            params.extend([tenant, *types])
        return {attr: count or 0
                for attr, count in self.db.execute(sql + " GROUP BY a.attr", params)}

    async def tenants(self) -> list[str]:
        return [t for (t,) in self.db.execute("SELECT name FROM tenants ORDER BY name")]

    async def has_tenant(self, tenant: str) -> bool:
        return self.db.execute("SELECT 1 FROM tenants WHERE name=?", (tenant,)).fetchone() \
            is not None

    # -- writes --------------------------------------------------------------
    async def write(self, tenant: str, writes: Sequence[Write],
                    outbox: Sequence[OutboxEntry] = (), history: History | None = None,
                    now: int = 0, events: Sequence[bytes] = ()) -> None:
        def work() -> None:
            self._write(tenant, writes)
            self.db.executemany("INSERT INTO outbox (tenant, subscription_id, payload) "
                                "VALUES (?,?,?)",
                                [(o.tenant, o.subscription_id, o.payload) for o in outbox])
            self.db.executemany("INSERT INTO event_outbox (events) VALUES (?)",
                                [(e,) for e in events])
            if history:
                self.history.insert(tenant, history, now)
        self.transaction(work)

    def _write(self, tenant: str, writes: Sequence[Write]) -> None:
        plan = plan_writes(self._rows(tenant, [w.entity_id for w in writes]), writes)
        db = self.db
        first = db.execute("SELECT coalesce(max(pk), 0) + 1 FROM entities").fetchone()[0]
        inserted = [(first + n, tenant, new.entity_id, new.entity["modifiedAt"], new.shape,
                     new.signature, new.doc) for n, new in enumerate(plan.inserted)]
        if inserted:
            db.execute("INSERT OR IGNORE INTO tenants VALUES (?)", (tenant,))
        self._drop_indexes(tenant, plan.dropped)
        db.executemany("DELETE FROM entities WHERE pk=?", [(pk,) for pk in plan.deleted])
        db.executemany("UPDATE entities SET modified_at=?, shape=?, values_sig=?, doc=? "
                       "WHERE pk=?", [(*row[1:], row[0]) for row in plan.updated])
        db.executemany("INSERT INTO entities (pk, tenant, id, modified_at, shape, "
                       "values_sig, doc) VALUES (?,?,?,?,?,?,?)", inserted)
        db.executemany("UPDATE entity_attrs SET num=?, str=?, complex=? "
                       "WHERE tenant=? AND attr=? AND entity=?",
                       [(num, text, complex_, tenant, attr, pk)
                        for pk, attr, num, text, complex_, _ in plan.revalued])
        self._add_indexes(tenant, [*plan.reindexed, *(
            (first + n, new.index) for n, new in enumerate(plan.inserted))])

    def _rows(self, tenant: str, entity_ids: Sequence[str]) -> dict[str, StoredRow]:
        return {entity_id: (pk, modified, shape, signature)
                for entity_id, pk, modified, shape, signature in rows_for_keys(
                    self.db, "SELECT id, pk, modified_at, shape, values_sig FROM entities "
                    "WHERE tenant=? AND id IN ({keys})", entity_ids, (tenant,))}

    def _drop_indexes(self, tenant: str, dropped: list[tuple[int, bytes]]) -> None:
        """Delete the index rows of entities by key, from the shape stored with each."""
        if not dropped:
            return
        types: list[tuple[str, str, int]] = []
        attrs: list[tuple[str, str, int]] = []
        boxes: list[tuple[int]] = []
        for pk, shape in dropped:
            type_names, attr_names, geometries = shape_keys(shape)
            types.extend((tenant, t, pk) for t in type_names)
            attrs.extend((tenant, a, pk) for a in attr_names)
            # By exact id: an R*Tree looks up single ids, but scans for id ranges.
            boxes.extend((pk * GEO_SLOTS + slot,) for slot in range(geometries))
        db = self.db
        db.executemany("DELETE FROM entity_types WHERE tenant=? AND type=? AND entity=?", types)
        db.executemany("DELETE FROM entity_attrs WHERE tenant=? AND attr=? AND entity=?", attrs)
        db.executemany("DELETE FROM geo_boxes WHERE id = ?", boxes)

    def _add_indexes(self, tenant: str, indexed: list[tuple[int, IndexRows]]) -> None:
        if not indexed:
            return
        types: list[tuple[str, str, int]] = []
        attrs: list[tuple[Any, ...]] = []
        boxes: list[tuple[Any, ...]] = []
        for pk, (entity_types, entity_attrs, geoms) in indexed:
            if len(geoms) > GEO_SLOTS:
                raise BadRequestData(f"An entity holds at most {GEO_SLOTS} geometries")
            types.extend((tenant, t, pk) for t in entity_types)
            attrs.extend((tenant, a, pk, kinds, num, text, complex_)
                         for a, kinds, num, text, complex_, _ in entity_attrs)
            boxes.extend(_boxes(pk, geoms))
        db = self.db
        db.executemany("INSERT OR IGNORE INTO entity_types VALUES (?,?,?)", types)
        db.executemany("INSERT INTO entity_attrs VALUES (?,?,?,?,?,?,?)", attrs)
        db.executemany("INSERT INTO geo_boxes VALUES (?,?,?,?,?,?,?)", boxes)

    # -- outbox ----------------------------------------------------------------
    async def pending_notifications(self, limit: int,
                                    subscription: tuple[str, str] | None = None
                                    ) -> list[OutboxEntry]:
        where, params = ("WHERE tenant=? AND subscription_id=? ", subscription) \
            if subscription is not None else ("", ())
        return [OutboxEntry(tenant, sub, payload, number) for number, tenant, sub, payload in
                self.db.execute("SELECT number, tenant, subscription_id, payload FROM outbox "
                                f"{where}ORDER BY number LIMIT ?", (*params, limit))]

    async def pending_subscriptions(self, limit: int) -> list[tuple[str, str]]:
        return [(t, s) for t, s in self.db.execute(
            "SELECT DISTINCT tenant, subscription_id FROM outbox LIMIT ?", (limit,))]

    @asynccontextmanager
    async def exclusive(self, name: str) -> AsyncIterator[bool]:
        yield True  # one process holds every right; within it, callers keep their turns

    async def rights_held(self) -> bool:
        return True

    async def drop_notifications(self, numbers: Sequence[int]) -> None:
        self.transaction(lambda: self.db.executemany("DELETE FROM outbox WHERE number=?",
                                                     [(n,) for n in numbers]))

    async def pending_events(self, limit: int) -> list[tuple[int, bytes]]:
        return self.db.execute("SELECT number, events FROM event_outbox ORDER BY number "
                               "LIMIT ?", (limit,)).fetchall()

    async def drop_events(self, numbers: Sequence[int]) -> None:
        self.transaction(lambda: self.db.executemany("DELETE FROM event_outbox WHERE number=?",
                                                     [(n,) for n in numbers]))

    # -- subscriptions ---------------------------------------------------------
    async def subscriptions(self) -> list[dict[str, Any]]:
        return [record_with_status(r, status) for r, *status in self.db.execute(WITH_STATUS)]

    async def subscription(self, tenant: str, subscription_id: str) -> dict[str, Any] | None:
        row = self.db.execute(WITH_STATUS + " WHERE r.tenant = ? AND r.id = ?",
                              (tenant, subscription_id)).fetchone()
        return record_with_status(row[0], row[1:]) if row else None

    async def add_subscription(self, record: dict[str, Any]) -> bool:
        key = (record["tenant"], record["id"])
        added = self.db.execute("INSERT OR IGNORE INTO subscriptions VALUES (?,?,?)",
                                (*key, orjson.dumps(record))).rowcount > 0
        if added:
            self.db.execute("DELETE FROM subscription_status WHERE tenant=? AND id=?", key)
            self._bump("subscriptions")
        return added

    async def save_subscription(self, record: dict[str, Any]) -> None:
        self.db.execute("INSERT OR REPLACE INTO subscriptions VALUES (?,?,?)",
                        (record["tenant"], record["id"], orjson.dumps(record)))
        self._bump("subscriptions")

    async def add_subscription_status(self, tenant: str, subscription_id: str,
                                      delta: dict[str, Any]) -> None:
        self.db.execute(
            "INSERT INTO subscription_status VALUES (?,?,?,?,?,?,?) ON CONFLICT (tenant, id) "
            "DO UPDATE SET times_sent = times_sent + excluded.times_sent, "
            "times_failed = times_failed + excluded.times_failed, "
            "last_notification = max(coalesce(last_notification, ''), "
            "coalesce(excluded.last_notification, '')), "
            "last_success = max(coalesce(last_success, ''), coalesce(excluded.last_success, "
            "'')), last_failure = max(coalesce(last_failure, ''), "
            "coalesce(excluded.last_failure, ''))", (tenant, subscription_id, *status_row(delta)))

    async def delete_subscription(self, tenant: str, subscription_id: str) -> bool:
        self.db.execute("DELETE FROM subscription_status WHERE tenant=? AND id=?",
                        (tenant, subscription_id))
        cursor = self.db.execute("DELETE FROM subscriptions WHERE tenant=? AND id=?",
                                 (tenant, subscription_id))
        self._bump("subscriptions")
        return cursor.rowcount > 0

    # -- @context records ----------------------------------------------------
    async def contexts(self) -> list[dict[str, Any]]:
        return [orjson.loads(r) for (r,) in self.db.execute("SELECT record FROM contexts")]

    async def save_context(self, record: dict[str, Any], changed: bool = True) -> None:
        self.db.execute("INSERT OR REPLACE INTO contexts VALUES (?,?)",
                        (record["localId"], orjson.dumps(record)))
        if changed:
            self._bump("contexts")

    async def delete_context(self, local_id: str) -> None:
        self.db.execute("DELETE FROM contexts WHERE local_id=?", (local_id,))
        self._bump("contexts")

    # -- records of platform services ------------------------------------------
    async def records(self, kind: str) -> list[dict[str, Any]]:
        return [orjson.loads(r) for (r,) in self.db.execute(
            "SELECT record FROM records WHERE kind = ?", (kind,))]

    async def save_record(self, kind: str, tenant: str, key: str,
                          record: dict[str, Any]) -> int:
        self.db.execute("INSERT OR REPLACE INTO records VALUES (?,?,?,?)",
                        (kind, tenant, key, orjson.dumps(record)))
        return self._bump(kind)

    async def delete_record(self, kind: str, tenant: str, key: str) -> tuple[bool, int]:
        cursor = self.db.execute("DELETE FROM records WHERE kind=? AND tenant=? AND key=?",
                                 (kind, tenant, key))
        return cursor.rowcount > 0, self._bump(kind)

    async def append_journal(self, kind: str, entries: Sequence[dict[str, Any]], keep: int,
                             tallies: Mapping[str, int], most: int) -> None:
        def work() -> None:
            db = self.db
            last = db.execute("SELECT coalesce(max(seq), 0) FROM journal WHERE kind=?",
                              (kind,)).fetchone()[0]
            db.executemany("INSERT INTO journal VALUES (?,?,?)",
                           [(kind, last + n, orjson.dumps(entry))
                            for n, entry in enumerate(entries, start=1)])
            db.execute("DELETE FROM journal WHERE kind=? AND seq<=?",
                       (kind, last + len(entries) - keep))
            known = {key for (key,) in rows_for_keys(
                db, "SELECT key FROM tallies WHERE kind=? AND key IN ({keys})", tallies,
                (kind,))}
            held = db.execute("SELECT count(*) FROM tallies WHERE kind=?", (kind,)).fetchone()[0]
            db.executemany("INSERT INTO tallies VALUES (?,?,?) ON CONFLICT (kind, key) DO "
                           "UPDATE SET count = count + excluded.count",
                           [(kind, key, count) for key, count in
                            bounded(tallies, known, held, most).items()])
        self.transaction(work)

    async def journal(self, kind: str, limit: int) -> list[dict[str, Any]]:
        return [orjson.loads(entry) for (entry,) in self.db.execute(
            "SELECT entry FROM journal WHERE kind=? ORDER BY seq DESC LIMIT ?", (kind, limit))]

    async def tallies(self, kind: str, keys: Collection[str]) -> dict[str, int]:
        return dict(rows_for_keys(
            self.db, "SELECT key, count FROM tallies WHERE kind=? AND key IN ({keys})",
            keys, (kind,)))

    def _bump(self, kind: str) -> int:
        self._versions[kind] = self._versions.get(kind, 0) + 1
        return self._versions[kind]

    # -- audit log ---------------------------------------------------------------
    async def append_audit(self, entries: Sequence[AuditEntry]) -> None:
        def work() -> None:
            # One connection, and no await inside: concurrent appends take turns.
            append = audit_append(self._audit_head(), entries)
            self.db.executemany("INSERT INTO audit_log VALUES (?,?,?)", append.rows)
            self.db.executemany("INSERT INTO audit_subjects VALUES (?,?)", append.subjects)
            self.db.execute("INSERT INTO audit_head VALUES (1,?,?) ON CONFLICT (one) DO "
                            "UPDATE SET seq = excluded.seq, hash = excluded.hash", append.head)
        if entries:
            self.transaction(work)

    def _audit_head(self) -> tuple[int, str]:
        return as_head(self.db.execute("SELECT seq, hash FROM audit_head").fetchone())

    async def audit_head(self) -> tuple[int, str]:
        return self._audit_head()

    async def audit_rows(self, after_seq: int, limit: int) -> list[AuditRow]:
        return [AuditRow(*row) for row in self.db.execute(
            "SELECT seq, hash, entry FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit))]

    async def audit_for_subject(self, subject: str, limit: int) -> list[AuditRow]:
        return [AuditRow(*row) for row in self.db.execute(
            "SELECT l.seq, l.hash, l.entry FROM audit_subjects s JOIN audit_log l "
            "ON l.seq = s.seq WHERE s.subject = ? ORDER BY s.seq DESC LIMIT ?",
            (subject, limit))]

    async def identity(self) -> str:
        # A file is known by where it lives; a database in memory lives as long as us.
        return str(Path(self.path).resolve()) if self.path != ":memory:" else \
            f"memory-{id(self)}-{os.getpid()}"

    async def cache_versions(self) -> dict[str, int]:
        return dict(self._versions)


def _boxes(pk: int, geoms: list[tuple[str, Any]]) -> list[tuple[Any, ...]]:
    """R*Tree rows of an entity's geometries, in the id slots the entity owns."""
    rows = []
    for slot, (attr, geometry) in enumerate(geoms):
        minx, miny, maxx, maxy = bounding_box(geometry)
        rows.append((pk * GEO_SLOTS + slot, minx, maxx, miny, maxy, pk, attr))
    return rows


def _value_clause(condition: ValueFilter) -> tuple[str, list[Any]]:
    column = condition.column  # 'num' or 'str': fixed names, never client text
    values = [float(v) if column == "num" else v for v in condition.values]
    if condition.op == "in":
        return f"{column} IN ({','.join('?' * len(values))})", values
    if condition.op == "between":
        return f"{column} BETWEEN ? AND ?", values
    return f"{column} {condition.op} ?", values


def open_store(path: str | Path | None) -> SqliteStore:
    return SqliteStore(path or ":memory:")

