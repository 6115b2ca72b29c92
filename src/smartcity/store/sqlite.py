"""The embedded store: SQLite in WAL mode, R*Tree for geometry, one writer.

Entities are kept whole as JSON; side tables index them by type, attribute name
and geometry bounding box so a query reads only candidate rows. Calls run on the
event loop thread: an indexed read or a batch write takes micro- to milliseconds,
less than a thread hand-off would cost.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from smartcity.core.ngsild import geo
from smartcity.core.ngsild.errors import AlreadyExists, Conflict, ResourceNotFound
from smartcity.core.ngsild.model import GEO_PROPERTY, Entity
from smartcity.core.ngsild.storage import Page, Predicate, Selection, Write

SCHEMA = """
CREATE TABLE IF NOT EXISTS entities (
    pk INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    modified_at TEXT NOT NULL,
    doc BLOB NOT NULL,
    UNIQUE (tenant, id)
);
CREATE TABLE IF NOT EXISTS entity_types (
    tenant TEXT NOT NULL, type TEXT NOT NULL, entity INTEGER NOT NULL,
    PRIMARY KEY (tenant, type, entity)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS entity_types_entity ON entity_types (entity);
CREATE TABLE IF NOT EXISTS entity_attrs (
    tenant TEXT NOT NULL, attr TEXT NOT NULL, entity INTEGER NOT NULL, kinds TEXT NOT NULL,
    PRIMARY KEY (tenant, attr, entity)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS entity_attrs_entity ON entity_attrs (entity);
CREATE VIRTUAL TABLE IF NOT EXISTS geo_boxes USING rtree (id, minx, maxx, miny, maxy);
CREATE TABLE IF NOT EXISTS geo_attrs (
    id INTEGER PRIMARY KEY, entity INTEGER NOT NULL, attr TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS geo_attrs_entity ON geo_attrs (entity);
CREATE TABLE IF NOT EXISTS tenants (name TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS contexts (
    local_id TEXT PRIMARY KEY, record BLOB NOT NULL
);
"""


def _index_rows(entity: Entity) -> tuple[list[str], list[tuple[str, str]], list[tuple[str, Any]]]:
    types = entity["type"]
    attrs: list[tuple[str, str]] = []
    geoms: list[tuple[str, Any]] = []
    for iri, instances in entity["attrs"].items():
        attrs.append((iri, ",".join(sorted({i.get("type", "Property") for i in instances}))))
        for inst in instances:
            if inst.get("type") == GEO_PROPERTY:
                geoms.append((iri, inst.get("value")))
    return types, attrs, geoms


class SqliteStore:
    """EntityStore on one SQLite file (or ':memory:')."""

    def __init__(self, path: str | Path = ":memory:") -> None:
        self.path = str(path)
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA busy_timeout=5000")
        self.db.execute("PRAGMA cache_size=-65536")
        self.db.execute("PRAGMA temp_store=MEMORY")
        self.db.executescript(SCHEMA)

    async def close(self) -> None:
        self.db.close()

    # -- reads ---------------------------------------------------------------
    async def get(self, tenant: str, entity_id: str) -> Entity | None:
        row = self.db.execute("SELECT doc FROM entities WHERE tenant=? AND id=?",
                              (tenant, entity_id)).fetchone()
        return orjson.loads(row[0]) if row else None

    async def get_many(self, tenant: str, entity_ids: Sequence[str]) -> dict[str, Entity]:
        found: dict[str, Entity] = {}
        ids = list(dict.fromkeys(entity_ids))
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for entity_id, doc in self.db.execute(
                    f"SELECT id, doc FROM entities WHERE tenant=? AND id IN ({marks})",
                    (tenant, *chunk)):
                found[entity_id] = orjson.loads(doc)
        return found

    async def query(self, tenant: str, selection: Selection, predicate: Predicate | None,
                    offset: int, limit: int, count: bool) -> Page:
        where, params = self._where(tenant, selection)
        base = f"FROM entities e WHERE {where}"
        if predicate is None:
            total = self.db.execute(f"SELECT count(*) {base}", params).fetchone()[0] \
                if count else None
            rows = self.db.execute(f"SELECT doc {base} ORDER BY e.pk LIMIT ? OFFSET ?",
                                   (*params, limit, offset))
            return Page([orjson.loads(doc) for (doc,) in rows], total)
        page: list[Entity] = []
        seen = 0
        for (doc,) in self.db.execute(f"SELECT doc {base} ORDER BY e.pk", params):
            entity = orjson.loads(doc)
            if not predicate(entity):
                continue
            if offset <= seen < offset + limit:
                page.append(entity)
            seen += 1
            if not count and seen >= offset + limit:
                break
        return Page(page, seen if count else None)

    @staticmethod
    def _where(tenant: str, selection: Selection) -> tuple[str, list[Any]]:
        clauses = ["e.tenant = ?"]
        params: list[Any] = [tenant]
        if selection.ids is not None:
            clauses.append(f"e.id IN ({','.join('?' * len(selection.ids))})")
            params.extend(selection.ids)
        if selection.types is not None:
            alternatives = []
            for conjunction in selection.types:
                parts = []
                for type_iri in conjunction:
                    parts.append("EXISTS (SELECT 1 FROM entity_types t WHERE t.tenant = ? "
                                 "AND t.type = ? AND t.entity = e.pk)")
                    params.extend((tenant, type_iri))
                alternatives.append("(" + " AND ".join(parts) + ")")
            clauses.append("(" + " OR ".join(alternatives) + ")")
        if selection.attrs is not None:
            marks = ",".join("?" * len(selection.attrs))
            clauses.append("e.pk IN (SELECT a.entity FROM entity_attrs a WHERE a.tenant = ? "
                           f"AND a.attr IN ({marks}))")
            params.extend((tenant, *selection.attrs))
        if selection.bbox is not None:
            attr, (minx, miny, maxx, maxy) = selection.bbox
            clauses.append("e.pk IN (SELECT g.entity FROM geo_boxes b JOIN geo_attrs g "
                           "ON g.id = b.id WHERE g.attr = ? AND b.maxx >= ? AND b.minx <= ? "
                           "AND b.maxy >= ? AND b.miny <= ?)")
            params.extend((attr, minx, maxx, miny, maxy))
        return " AND ".join(clauses), params

    async def type_attributes(self, tenant: str) -> dict[str, dict[str, set[str]]]:
        result: dict[str, dict[str, set[str]]] = {}
        for type_iri, in self.db.execute(
                "SELECT DISTINCT type FROM entity_types WHERE tenant=?", (tenant,)):
            result[type_iri] = {}
        for type_iri, attr, kinds in self.db.execute(
                "SELECT DISTINCT t.type, a.attr, a.kinds FROM entity_types t "
                "JOIN entity_attrs a ON a.entity = t.entity WHERE t.tenant = ?", (tenant,)):
            result[type_iri].setdefault(attr, set()).update(kinds.split(","))
        return result

    async def type_counts(self, tenant: str) -> dict[str, int]:
        return dict(self.db.execute(
            "SELECT type, count(*) FROM entity_types WHERE tenant=? GROUP BY type", (tenant,)))

    async def attribute_counts(self, tenant: str) -> dict[str, int]:
        return dict(self.db.execute(
            "SELECT attr, count(*) FROM entity_attrs WHERE tenant=? GROUP BY attr", (tenant,)))

    async def tenants(self) -> list[str]:
        return [t for (t,) in self.db.execute("SELECT name FROM tenants ORDER BY name")]

    async def has_tenant(self, tenant: str) -> bool:
        return self.db.execute("SELECT 1 FROM tenants WHERE name=?", (tenant,)).fetchone() \
            is not None

    # -- writes --------------------------------------------------------------
    async def write(self, tenant: str, writes: Sequence[Write]) -> None:
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            if any(w.op == "insert" for w in writes):
                db.execute("INSERT OR IGNORE INTO tenants VALUES (?)", (tenant,))
            for w in writes:
                self._apply(tenant, w)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _apply(self, tenant: str, w: Write) -> None:
        db = self.db
        row = db.execute("SELECT pk, modified_at FROM entities WHERE tenant=? AND id=?",
                         (tenant, w.entity_id)).fetchone()
        if w.op == "insert":
            if row is not None:
                raise AlreadyExists(f"Entity {w.entity_id} already exists")
        elif row is None:
            raise ResourceNotFound(f"Entity {w.entity_id} does not exist")
        elif w.expect is not None and row[1] != w.expect:
            raise Conflict(f"Entity {w.entity_id} changed while it was being written")
        if row is not None:
            self._drop_indexes(row[0])
        if w.op == "delete":
            db.execute("DELETE FROM entities WHERE pk=?", (row[0],))
            return
        assert w.entity is not None
        doc = orjson.dumps(w.entity)
        if row is None:
            pk = db.execute("INSERT INTO entities (tenant, id, modified_at, doc) VALUES (?,?,?,?)",
                            (tenant, w.entity_id, w.entity["modifiedAt"], doc)).lastrowid
        else:
            pk = row[0]
            db.execute("UPDATE entities SET modified_at=?, doc=? WHERE pk=?",
                       (w.entity["modifiedAt"], doc, pk))
        self._add_indexes(tenant, pk, w.entity)

    def _drop_indexes(self, pk: int) -> None:
        db = self.db
        db.execute("DELETE FROM entity_types WHERE entity=?", (pk,))
        db.execute("DELETE FROM entity_attrs WHERE entity=?", (pk,))
        geo_ids = [(i,) for (i,) in db.execute("SELECT id FROM geo_attrs WHERE entity=?", (pk,))]
        if geo_ids:
            db.executemany("DELETE FROM geo_boxes WHERE id=?", geo_ids)
            db.execute("DELETE FROM geo_attrs WHERE entity=?", (pk,))

    def _add_indexes(self, tenant: str, pk: int | None, entity: Entity) -> None:
        db = self.db
        types, attrs, geoms = _index_rows(entity)
        db.executemany("INSERT OR IGNORE INTO entity_types VALUES (?,?,?)",
                       [(tenant, t, pk) for t in types])
        db.executemany("INSERT INTO entity_attrs VALUES (?,?,?,?)",
                       [(tenant, a, pk, kinds) for a, kinds in attrs])
        for attr, geometry in geoms:
            gid = db.execute("INSERT INTO geo_attrs (entity, attr) VALUES (?,?)",
                             (pk, attr)).lastrowid
            minx, miny, maxx, maxy = geo.geometry_bbox(geometry)
            db.execute("INSERT INTO geo_boxes VALUES (?,?,?,?,?)", (gid, minx, maxx, miny, maxy))

    # -- @context records ----------------------------------------------------
    async def contexts(self) -> list[dict[str, Any]]:
        return [orjson.loads(r) for (r,) in self.db.execute("SELECT record FROM contexts")]

    async def save_context(self, record: dict[str, Any]) -> None:
        self.db.execute("INSERT OR REPLACE INTO contexts VALUES (?,?)",
                        (record["localId"], orjson.dumps(record)))

    async def delete_context(self, local_id: str) -> None:
        self.db.execute("DELETE FROM contexts WHERE local_id=?", (local_id,))


def open_store(path: str | Path | None) -> SqliteStore:
    return SqliteStore(path or ":memory:")

