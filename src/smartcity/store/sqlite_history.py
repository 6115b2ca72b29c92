"""History on SQLite: one clustered B-tree ordered by (series, time).

``history`` is a WITHOUT ROWID table keyed by (sid, t), so the instances of one series
in a time window are one contiguous range and aggregates are computed by SQLite while it
scans that range. A series holds one instance per instant: a later one replaces it.
Series and the registry of entities with history are small tables cached in memory, so
recording an instance is one B-tree insert.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from smartcity.core.ngsild.history import History, HistoryEntity, HistoryInstance
from smartcity.core.ngsild.history_storage import (
    AggregateMethod,
    Bucket,
    Grid,
    HeadSelection,
    HistoryHead,
    SeriesFilter,
    StoredInstance,
    Window,
)
from smartcity.store.history_rows import decode, encode

SCHEMA = """
CREATE TABLE IF NOT EXISTS history_entities (
    pk INTEGER PRIMARY KEY, tenant TEXT NOT NULL, id TEXT NOT NULL,
    types BLOB NOT NULL, scope BLOB, created INTEGER NOT NULL,
    UNIQUE (tenant, id)
);
CREATE TABLE IF NOT EXISTS history_types (
    tenant TEXT NOT NULL, type TEXT NOT NULL, entity INTEGER NOT NULL,
    PRIMARY KEY (tenant, type, entity)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS history_series (
    sid INTEGER PRIMARY KEY, entity INTEGER NOT NULL, attr TEXT NOT NULL,
    dataset TEXT NOT NULL, UNIQUE (entity, attr, dataset)
);
CREATE TABLE IF NOT EXISTS history (
    sid INTEGER NOT NULL, t INTEGER NOT NULL, iid INTEGER NOT NULL,
    num, rest BLOB, created INTEGER NOT NULL, modified INTEGER, deleted INTEGER,
    PRIMARY KEY (sid, t)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)
    WITHOUT ROWID;
"""

# The column each time property is read from; fixed names, never client text.
_TIME_COLUMN = {"observedAt": "t", "createdAt": "created",
                "modifiedAt": "coalesce(modified, created)", "deletedAt": "deleted"}
# Numbers aggregate as they are and booleans as 1 or 0; min and max also order strings
# (and so DateTimes). coalesce() stops at the number: JSON is read only when needed.
_NUMBER = ("coalesce(num, CASE json_type(rest, '$.value') WHEN 'true' THEN 1 "
           "WHEN 'false' THEN 0 END)")
_ANY = ("coalesce(num, json_extract(rest, '$.value'), json_extract(rest, '$.object'), "
        "json_extract(rest, '$.vocab'))")
_MEASURES = (f"count(*), count({_NUMBER}), sum({_NUMBER}), min({_ANY}), max({_ANY}), "
             f"sum({_NUMBER} * {_NUMBER})")
_DISTINCT = (f"count(DISTINCT coalesce({_ANY}, json_extract(rest, '$.languageMap'), "
             "json_extract(rest, '$.valueList'), json_extract(rest, '$.objectList'), "
             "json_extract(rest, '$.json')))")

Head = tuple[int, tuple[str, ...], tuple[str, ...] | None]


class SqliteHistory:
    """HistoryStore over the connection of a SqliteStore (which owns transactions)."""

    def __init__(self, db: sqlite3.Connection,
                 transaction: Callable[[Callable[[], Any]], Any]) -> None:
        self.db = db
        self._transaction = transaction
        db.executescript(SCHEMA)
        self._heads: dict[tuple[str, str], Head] = {}
        self._sids: dict[tuple[int, str, str], int] = {}

    def forget_cached(self) -> None:
        """After a rollback: cached keys may name rows that were never committed."""
        self._heads.clear()
        self._sids.clear()

    # -- writes (inside the caller's transaction) -----------------------------
    def insert(self, tenant: str, history: History, now: int) -> set[str]:
        """Add history rows; the ids of entities new to the history."""
        created = {e.entity_id for e in history.entities if self._head(tenant, e.entity_id)
                   is None}
        for entity in history.entities:
            self._register(tenant, entity, now)
        for inst in history.instances:
            if self._head(tenant, inst.entity_id) is None:
                created.add(inst.entity_id)
                self._register(tenant, HistoryEntity(inst.entity_id, ()), now)
        if not history.instances:
            return created
        first = self._take_ids(len(history.instances))
        rows = []
        for offset, inst in enumerate(history.instances):
            num, rest = encode(inst.time, inst.body)
            deleted = inst.time if "deletedAt" in inst.body else None
            rows.append((self._sid(tenant, inst), inst.time, first + offset, num, rest, now,
                         deleted))
        self.db.executemany("INSERT OR REPLACE INTO history (sid, t, iid, num, rest, created, "
                            "deleted) VALUES (?,?,?,?,?,?,?)", rows)
        return created

    def _take_ids(self, count: int) -> int:
        db = self.db
        row = db.execute("SELECT value FROM counters WHERE name='instance'").fetchone()
        first = row[0] if row else 1
        db.execute("INSERT OR REPLACE INTO counters VALUES ('instance', ?)", (first + count,))
        return int(first)

    def _head(self, tenant: str, entity_id: str) -> Head | None:
        key = (tenant, entity_id)
        head = self._heads.get(key)
        if head is None:
            row = self.db.execute("SELECT pk, types, scope FROM history_entities "
                                  "WHERE tenant=? AND id=?", key).fetchone()
            if row is None:
                return None
            head = (row[0], tuple(orjson.loads(row[1])),
                    tuple(orjson.loads(row[2])) if row[2] is not None else None)
            self._heads[key] = head
        return head

    def _register(self, tenant: str, entity: HistoryEntity, now: int) -> None:
        head = self._head(tenant, entity.entity_id)
        if head is not None and (head[1], head[2]) == (entity.types, entity.scope):
            return
        if head is not None and not entity.types:
            return  # an instance of a known entity: nothing to change
        db = self.db
        scope = orjson.dumps(entity.scope) if entity.scope is not None else None
        if head is None:
            pk = db.execute("INSERT INTO history_entities (tenant, id, types, scope, created) "
                            "VALUES (?,?,?,?,?)", (tenant, entity.entity_id,
                                                   orjson.dumps(entity.types), scope,
                                                   now)).lastrowid
            assert pk is not None
        else:
            pk = head[0]
            db.execute("UPDATE history_entities SET types=?, scope=? WHERE pk=?",
                       (orjson.dumps(entity.types), scope, pk))
            db.execute("DELETE FROM history_types WHERE tenant=? AND entity=?", (tenant, pk))
        db.executemany("INSERT OR IGNORE INTO history_types VALUES (?,?,?)",
                       [(tenant, t, pk) for t in entity.types])
        self._heads[(tenant, entity.entity_id)] = (pk, entity.types, entity.scope)

    def _sid(self, tenant: str, inst: HistoryInstance) -> int:
        head = self._head(tenant, inst.entity_id)
        assert head is not None
        key = (head[0], inst.attr, inst.dataset_id)
        sid = self._sids.get(key)
        if sid is None:
            row = self.db.execute("SELECT sid FROM history_series WHERE entity=? AND attr=? "
                                  "AND dataset=?", key).fetchone()
            sid = row[0] if row else self.db.execute(
                "INSERT INTO history_series (entity, attr, dataset) VALUES (?,?,?)",
                key).lastrowid
            assert sid is not None
            self._sids[key] = sid
        return sid

    # -- writes in their own transaction -------------------------------------
    async def record(self, tenant: str, history: History, now: int) -> set[str]:
        created: set[str] = self._transaction(lambda: self.insert(tenant, history, now))
        return created

    async def delete_entity_history(self, tenant: str, entity_id: str) -> bool:
        def delete() -> bool:
            head = self._head(tenant, entity_id)
            if head is None:
                return False
            pk = head[0]
            sids = [s for (s,) in self.db.execute(
                "SELECT sid FROM history_series WHERE entity=?", (pk,))]
            self._drop_series(sids)
            self.db.execute("DELETE FROM history_types WHERE tenant=? AND entity=?",
                            (tenant, pk))
            self.db.execute("DELETE FROM history_entities WHERE pk=?", (pk,))
            self._heads.pop((tenant, entity_id), None)
            self._sids = {k: v for k, v in self._sids.items() if k[0] != pk}
            return True
        return bool(self._transaction(delete))

    async def delete_series(self, tenant: str, entity_id: str, attr: str,
                            dataset_id: str | None) -> bool:
        def delete() -> bool:
            sids = self._series_ids(tenant, entity_id, attr, dataset_id)
            self._drop_series(sids)
            self._sids = {k: v for k, v in self._sids.items() if v not in sids}
            return bool(sids)
        return bool(self._transaction(delete))

    def _drop_series(self, sids: Sequence[int]) -> None:
        self.db.executemany("DELETE FROM history WHERE sid=?", [(s,) for s in sids])
        self.db.executemany("DELETE FROM history_series WHERE sid=?", [(s,) for s in sids])

    async def delete_instance(self, tenant: str, entity_id: str, attr: str,
                              instance_id: int) -> bool:
        def delete() -> bool:
            found = self._find_instance(tenant, entity_id, attr, instance_id)
            if found is None:
                return False
            self.db.execute("DELETE FROM history WHERE sid=? AND t=?", found)
            return True
        return bool(self._transaction(delete))

    async def replace_instance(self, tenant: str, entity_id: str, attr: str,
                               instance_id: int, replacement: HistoryInstance,
                               now: int) -> bool:
        def replace() -> bool:
            found = self._find_instance(tenant, entity_id, attr, instance_id)
            if found is None:
                return False
            sid = found[0]
            created = self.db.execute("SELECT created FROM history WHERE sid=? AND t=?",
                                      found).fetchone()[0]
            self.db.execute("DELETE FROM history WHERE sid=? AND t=?", found)
            num, rest = encode(replacement.time, replacement.body)
            deleted = replacement.time if "deletedAt" in replacement.body else None
            self.db.execute("INSERT OR REPLACE INTO history VALUES (?,?,?,?,?,?,?,?)",
                            (sid, replacement.time, instance_id, num, rest, created, now,
                             deleted))
            return True
        return bool(self._transaction(replace))

    def _find_instance(self, tenant: str, entity_id: str, attr: str,
                       instance_id: int) -> tuple[int, int] | None:
        """(sid, t) of an instance: instance ids are not indexed, so this scans the
        attribute's series (a rare operation, against an index on every insert)."""
        for sid in self._series_ids(tenant, entity_id, attr, None):
            row = self.db.execute("SELECT t FROM history WHERE sid=? AND iid=?",
                                  (sid, instance_id)).fetchone()
            if row is not None:
                return sid, row[0]
        return None

    def _series_ids(self, tenant: str, entity_id: str, attr: str,
                    dataset_id: str | None) -> list[int]:
        head = self._head(tenant, entity_id)
        if head is None:
            return []
        sql = "SELECT sid FROM history_series WHERE entity=? AND attr=?"
        params: list[Any] = [head[0], attr]
        if dataset_id is not None:
            sql += " AND dataset=?"
            params.append(dataset_id)
        return [s for (s,) in self.db.execute(sql, params)]

    async def prune(self, tenant: str, types: Sequence[str] | None, attr: str | None,
                    before: int) -> int:
        def prune() -> int:
            sql = ("SELECT s.sid FROM history_series s JOIN history_entities h "
                   "ON h.pk = s.entity WHERE h.tenant = ?")
            params: list[Any] = [tenant]
            if attr is not None:
                sql += " AND s.attr = ?"
                params.append(attr)
            if types is not None:
                sql += (" AND h.pk IN (SELECT entity FROM history_types WHERE tenant = ? "
                        f"AND type IN ({','.join('?' * len(types))}))")
                params.extend((tenant, *types))
            deleted = 0
            for (sid,) in self.db.execute(sql, params).fetchall():
                deleted += self.db.execute("DELETE FROM history WHERE sid=? AND t<?",
                                           (sid, before)).rowcount
            return deleted
        return int(self._transaction(prune))

    # -- reads ---------------------------------------------------------------
    async def heads(self, tenant: str, selection: HeadSelection) -> list[HistoryHead]:
        clauses = ["h.tenant = ?"]
        params: list[Any] = [tenant]
        if selection.ids is not None:
            clauses.append(f"h.id IN ({','.join('?' * len(selection.ids))})")
            params.extend(selection.ids)
        if selection.types is not None:
            alternatives = []
            for conjunction in selection.types:
                alternatives.append("(" + " AND ".join(
                    "EXISTS (SELECT 1 FROM history_types t WHERE t.tenant = ? AND t.type = ? "
                    "AND t.entity = h.pk)" for _ in conjunction) + ")")
                for type_iri in conjunction:
                    params.extend((tenant, type_iri))
            clauses.append("(" + " OR ".join(alternatives) + ")")
        return [HistoryHead(entity_id, tuple(orjson.loads(types)),
                            tuple(orjson.loads(scope)) if scope is not None else None, created)
                for entity_id, types, scope, created in self.db.execute(
                    "SELECT id, types, scope, created FROM history_entities h WHERE "
                    + " AND ".join(clauses) + " ORDER BY h.pk", params)]

    def _series(self, tenant: str, entity_ids: Sequence[str],
                series: SeriesFilter) -> list[tuple[int, str, str, str]]:
        """(sid, entity id, attribute, dataset) of the selected series."""
        found: list[tuple[int, str, str, str]] = []
        ids = list(dict.fromkeys(entity_ids))
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            sql = ("SELECT s.sid, h.id, s.attr, s.dataset FROM history_series s "
                   "JOIN history_entities h ON h.pk = s.entity WHERE h.tenant = ? "
                   f"AND h.id IN ({','.join('?' * len(chunk))})")
            params: list[Any] = [tenant, *chunk]
            for column, values in (("s.attr", series.attrs), ("s.dataset", series.datasets)):
                if values is not None:
                    sql += f" AND {column} IN ({','.join('?' * len(values))})"
                    params.extend(values)
            found.extend(self.db.execute(sql + " ORDER BY s.sid", params))
        return found

    @staticmethod
    def _window(window: Window) -> tuple[str, str, list[Any]]:
        """(time column, WHERE clause after sid, parameters) of a window."""
        column = _TIME_COLUMN[window.timeproperty]
        clause = " AND deleted IS NOT NULL" if window.timeproperty == "deletedAt" else ""
        params: list[Any] = []
        if window.start is not None:
            clause += f" AND {column} >= ?"
            params.append(window.start)
        if window.end is not None:
            clause += f" AND {column} < ?"
            params.append(window.end)
        return column, clause, params

    async def span(self, tenant: str, entity_ids: Sequence[str], series: SeriesFilter,
                   window: Window) -> dict[str, tuple[int, int]]:
        column, clause, params = self._window(window)
        sql = f"SELECT min({column}), max({column}) FROM history WHERE sid = ?{clause}"
        spans: dict[str, tuple[int, int]] = {}
        for sid, entity_id, _attr, _dataset in self._series(tenant, entity_ids, series):
            low, high = self.db.execute(sql, (sid, *params)).fetchone()
            if low is None:
                continue
            known = spans.get(entity_id)
            spans[entity_id] = (low, high) if known is None else \
                (min(known[0], low), max(known[1], high))
        return spans

    async def instances(self, tenant: str, entity_ids: Sequence[str], series: SeriesFilter,
                        window: Window) -> dict[str, list[StoredInstance]]:
        column, clause, params = self._window(window)
        select = (f"SELECT {column}, t, iid, num, rest, created, modified FROM history "
                  f"WHERE sid = ?{clause}")
        if window.last is not None:
            select += f" ORDER BY 1 DESC LIMIT {int(window.last)}"
        else:
            select += " ORDER BY 1" + (f" LIMIT {int(window.first)}"
                                       if window.first is not None else "")
        result: dict[str, list[StoredInstance]] = {}
        for sid, entity_id, attr, dataset in self._series(tenant, entity_ids, series):
            rows = self.db.execute(select, (sid, *params)).fetchall()
            if window.last is not None:
                rows.reverse()
            result.setdefault(entity_id, []).extend(
                StoredInstance(attr, dataset, iid, time, created, modified or created,
                               decode(t, num, rest))
                for time, t, iid, num, rest, created, modified in rows)
        return result

    async def aggregates(self, tenant: str, grids: dict[str, Grid], series: SeriesFilter,
                         window: Window, methods: Sequence[AggregateMethod]
                         ) -> dict[str, list[Bucket]]:
        column, clause, params = self._window(window)
        measures = _MEASURES + (f", {_DISTINCT}" if "distinctCount" in methods else "")
        result: dict[str, list[Bucket]] = {}
        for sid, entity_id, attr, dataset in self._series(tenant, list(grids), series):
            grid = grids[entity_id]
            buckets = result.setdefault(entity_id, [])
            step = grid.period.micros
            if grid.period.months == 0 and step > 0:
                # Fixed periods: one grouped range scan.
                sql = (f"SELECT ({column} - ?) / ?, {measures} FROM history WHERE sid = ? "
                       f"AND {column} >= ? AND {column} < ?{clause} GROUP BY 1 ORDER BY 1")
                for index, *measured in self.db.execute(
                        sql, (grid.start, step, sid, grid.start, grid.end, *params)):
                    start = grid.start + index * step
                    buckets.append(Bucket(attr, dataset, start, start + step,
                                          _values(measured, methods)))
                continue
            sql = (f"SELECT {measures} FROM history WHERE sid = ? AND {column} >= ? "
                   f"AND {column} < ?{clause}")
            for start, end in _periods(grid):
                measured = self.db.execute(sql, (sid, start, min(end, grid.end),
                                                 *params)).fetchone()
                if measured[0]:
                    buckets.append(Bucket(attr, dataset, start, end,
                                          _values(list(measured), methods)))
        return result


MAX_PERIODS = 100_000


def _periods(grid: Grid) -> list[tuple[int, int]]:
    """The [start, end) of each calendar period of a grid (or the whole grid for a zero
    period)."""
    if grid.period.zero:
        return [(grid.start, grid.end)]
    periods = []
    start = grid.start
    while start < grid.end and len(periods) < MAX_PERIODS:
        end = grid.period.after(start)
        periods.append((start, end))
        start = end
    return periods


def _values(measured: list[Any], methods: Sequence[AggregateMethod]) -> dict[str, Any]:
    """Aggregate values from (count, numeric count, sum, min, max, sum of squares[,
    distinct])."""
    total, count, total_sum, low, high, squares = measured[:6]
    values: dict[str, Any] = {}
    for method in methods:
        if method == "totalCount":
            values[method] = total
        elif method == "distinctCount":
            values[method] = measured[6]
        elif method in ("min", "max"):
            values[method] = low if method == "min" else high
        elif not count:
            values[method] = None
        elif method == "sum":
            values[method] = total_sum
        elif method == "avg":
            values[method] = total_sum / count
        elif method == "sumsq":
            values[method] = squares
        elif method == "stddev":
            mean = total_sum / count
            values[method] = math.sqrt(max(squares / count - mean * mean, 0.0))
    return values
