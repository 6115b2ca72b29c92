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
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import orjson

from smartcity.core.ngsild.errors import AlreadyExists
from smartcity.core.ngsild.history import History, HistoryEntity, HistoryInstance
from smartcity.core.ngsild.history_storage import (
    VALUES_PER_READ,
    AggregateMethod,
    Bucket,
    Grid,
    HeadSelection,
    HistoryHead,
    RawSeries,
    SeriesFilter,
    StoredInstance,
    Window,
)
from smartcity.store.history_rows import AFTER_ALL, BEFORE_ALL, decode, encode, widened
from smartcity.store.sqlite_chunks import rows_for_keys
from smartcity.store.sqlite_readers import Readers
from smartcity.store.sqlite_types import entity_clauses

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
CREATE TABLE IF NOT EXISTS history_rollups (
    sid INTEGER NOT NULL, start INTEGER NOT NULL, period INTEGER NOT NULL,
    total INTEGER NOT NULL, count INTEGER NOT NULL, sum REAL, min, max, squares REAL,
    PRIMARY KEY (sid, start)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)
    WITHOUT ROWID;
"""

# The column each time property is read from; fixed names, never client text.
_TIME_COLUMN = {"observedAt": "t", "createdAt": "created",
                "modifiedAt": "coalesce(modified, created)", "deletedAt": "deleted"}
# Numbers (and booleans, stored as 1 or 0) aggregate from ``num``; min and max also order
# strings (and so DateTimes). coalesce() stops at the number: JSON is read only when needed.
_NUMBER = "num"
_ANY = ("coalesce(num, json_extract(rest, '$.value'), json_extract(rest, '$.object'), "
        "json_extract(rest, '$.vocab'))")
_DISTINCT = (f"count(DISTINCT coalesce({_ANY}, json_extract(rest, '$.languageMap'), "
             "json_extract(rest, '$.valueList'), json_extract(rest, '$.objectList'), "
             "json_extract(rest, '$.json')))")
# What SQLite computes per period, and which of it each method needs: only that is
# asked for, since every extra aggregate costs on every row scanned.
# total() sums as REAL: sum() of large integers raises an overflow.
_MEASURE_SQL = {"total": "count(*)", "count": f"count({_NUMBER})", "sum": f"total({_NUMBER})",
                "min": f"min({_ANY})", "max": f"max({_ANY})",
                "squares": f"total({_NUMBER} * 1.0 * {_NUMBER})", "distinct": _DISTINCT}
_NEEDS = {"totalCount": ("total",), "distinctCount": ("distinct",), "sum": ("count", "sum"),
          "avg": ("count", "sum"), "min": ("min",), "max": ("max",),
          "sumsq": ("count", "squares"), "stddev": ("count", "sum", "squares")}
# Raw instances into epoch-aligned periods; a period already folded (the cut fell inside
# it last time) takes in the rest.
_FOLD = """
INSERT INTO history_rollups (sid, start, period, total, count, sum, min, max, squares)
SELECT sid, (t / ?) * ?, ?1, count(*), count(num), total(num), min(num), max(num),
       total(num * 1.0 * num)
FROM history WHERE sid = ?3 AND t < ?4 GROUP BY 2
ON CONFLICT (sid, start) DO UPDATE SET total = total + excluded.total,
    count = count + excluded.count, sum = coalesce(sum, 0) + coalesce(excluded.sum, 0),
    min = min(coalesce(min, excluded.min), coalesce(excluded.min, min)),
    max = max(coalesce(max, excluded.max), coalesce(excluded.max, max)),
    squares = coalesce(squares, 0) + coalesce(excluded.squares, 0)
"""
# Up to this many periods a series is read one range scan per period; beyond, one
# grouped scan (which sorts its rows, so costs more per row).
_SCANS_PER_SERIES = 2000

Head = tuple[int, tuple[str, ...], tuple[str, ...] | None]
SeriesKey = tuple[int, str, str, str]  # sid, entity id, attribute, dataset
# Cached series keys kept in memory before the caches start again (about 200 bytes each).
_CACHE_LIMIT = 1_000_000


def _scope(entity: HistoryEntity) -> bytes | None:
    return orjson.dumps(entity.scope) if entity.scope is not None else None


class SqliteHistory:
    """HistoryStore over the connection of a SqliteStore (which owns transactions)."""

    def __init__(self, db: sqlite3.Connection,
                 transaction: Callable[[Callable[[], Any]], Any],
                 readers: Readers | None = None) -> None:
        self.db = db
        self.readers = readers
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
        """Add history rows; the ids of entities new to the history.

        Entities and series new to the history are found and added in bulk, so a batch
        costs a few statements whatever its size.
        """
        if len(self._sids) > _CACHE_LIMIT:
            self.forget_cached()
        entities = {e.entity_id: e for e in history.entities}
        for entity_id in {i.entity_id for i in history.instances} - entities.keys():
            entities[entity_id] = HistoryEntity(entity_id, ())
        created = self._register(tenant, list(entities.values()), now)
        if not history.instances:
            return created
        sids = self._series_for(tenant, history.instances)
        first = self._take_ids(len(history.instances))
        rows = []
        for offset, (inst, sid) in enumerate(zip(history.instances, sids, strict=True)):
            num, rest = encode(inst.time, inst.body)
            deleted = inst.time if "deletedAt" in inst.body else None
            rows.append((sid, inst.time, first + offset, num, rest, now, deleted))
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
        if key not in self._heads:
            self._load_heads(tenant, [entity_id])
        return self._heads.get(key)

    def _load_heads(self, tenant: str, entity_ids: Sequence[str]) -> None:
        for entity_id, pk, types, scope in rows_for_keys(
                self.db, "SELECT id, pk, types, scope FROM history_entities WHERE tenant=? "
                "AND id IN ({keys})", entity_ids, (tenant,)):
            self._heads[(tenant, entity_id)] = (
                pk, tuple(orjson.loads(types)),
                tuple(orjson.loads(scope)) if scope is not None else None)

    def _register(self, tenant: str, entities: list[HistoryEntity], now: int) -> set[str]:
        """Add entities new to the history, update changed types or scope; the new ids."""
        self._load_heads(tenant, [e.entity_id for e in entities
                                  if (tenant, e.entity_id) not in self._heads])
        db = self.db
        fresh: list[HistoryEntity] = []
        for entity in entities:
            head = self._heads.get((tenant, entity.entity_id))
            if head is None:
                fresh.append(entity)
            elif entity.types and (not set(entity.types) <= set(head[1])
                                   or head[2] != entity.scope):
                # An entity keeps, in its history, every type it ever had.
                types = tuple(dict.fromkeys((*head[1], *entity.types)))
                db.execute("UPDATE history_entities SET types=?, scope=? WHERE pk=?",
                           (orjson.dumps(types), _scope(entity), head[0]))
                self._add_types(tenant, head[0], types)
                self._heads[(tenant, entity.entity_id)] = (head[0], types, entity.scope)
        if not fresh:
            return set()
        first = db.execute("SELECT coalesce(max(pk), 0) + 1 FROM history_entities").fetchone()[0]
        db.executemany("INSERT INTO history_entities (pk, tenant, id, types, scope, created) "
                       "VALUES (?,?,?,?,?,?)",
                       [(first + n, tenant, e.entity_id, orjson.dumps(e.types), _scope(e), now)
                        for n, e in enumerate(fresh)])
        for n, entity in enumerate(fresh):
            self._add_types(tenant, first + n, entity.types)
            self._heads[(tenant, entity.entity_id)] = (first + n, entity.types, entity.scope)
        return {e.entity_id for e in fresh}

    def _add_types(self, tenant: str, pk: int, types: tuple[str, ...]) -> None:
        self.db.executemany("INSERT OR IGNORE INTO history_types VALUES (?,?,?)",
                            [(tenant, t, pk) for t in types])

    def _series_for(self, tenant: str, instances: Sequence[HistoryInstance]) -> list[int]:
        """The sid of each instance's series, adding the series that are new."""
        keys = [(self._heads[(tenant, i.entity_id)][0], i.attr, i.dataset_id)
                for i in instances]
        missing = {k for k in keys if k not in self._sids}
        if missing:
            for sid, *key in rows_for_keys(
                    self.db, "SELECT sid, entity, attr, dataset FROM history_series "
                    "WHERE entity IN ({keys})", {k[0] for k in missing}):
                self._sids[(key[0], key[1], key[2])] = sid
            new = sorted(k for k in missing if k not in self._sids)
            if new:
                first = self.db.execute(
                    "SELECT coalesce(max(sid), 0) + 1 FROM history_series").fetchone()[0]
                self.db.executemany("INSERT INTO history_series VALUES (?,?,?,?)",
                                    [(first + n, *k) for n, k in enumerate(new)])
                self._sids.update({k: first + n for n, k in enumerate(new)})
        return [self._sids[k] for k in keys]

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
        self.db.executemany("DELETE FROM history_rollups WHERE sid=?", [(s,) for s in sids])
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
            if replacement.time != found[1] and self.db.execute(
                    "SELECT 1 FROM history WHERE sid=? AND t=?",
                    (sid, replacement.time)).fetchone() is not None:
                raise AlreadyExists("Another instance of the attribute holds that time")
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

    def _matching_series(self, types: Sequence[str] | None, attr: str | None) -> list[int]:
        """The series, of every tenant, of entities of ``types`` and attribute ``attr``."""
        sql = "SELECT s.sid FROM history_series s WHERE 1"
        params: list[Any] = []
        if attr is not None:
            sql += " AND s.attr = ?"
            params.append(attr)
        if types is not None:
            sql += (" AND s.entity IN (SELECT entity FROM history_types "
                    f"WHERE type IN ({','.join('?' * len(types))}))")
            params.extend(types)
        return [sid for (sid,) in self.db.execute(sql, params)]

    async def downsample(self, types: Sequence[str] | None, attr: str | None, before: int,
                         period: int | None) -> tuple[int, int]:
        """Fold raw instances older than ``before`` into aggregates of ``period``
        microseconds (aligned on the epoch; none when None), then delete them; (instances
        deleted, aggregate periods written)."""
        def fold() -> tuple[int, int]:
            deleted = written = 0
            for sid in self._matching_series(types, attr):
                if period is not None:
                    written += self.db.execute(_FOLD, (period, period, sid, before)).rowcount
                deleted += self.db.execute("DELETE FROM history WHERE sid=? AND t<?",
                                           (sid, before)).rowcount
            return deleted, written
        result: tuple[int, int] = self._transaction(fold)
        return result

    async def expire_aggregates(self, types: Sequence[str] | None, attr: str | None,
                                before: int) -> int:
        """Delete aggregate periods that start before ``before``; how many."""
        def expire() -> int:
            return sum(self.db.execute("DELETE FROM history_rollups WHERE sid=? AND start<?",
                                       (sid, before)).rowcount
                       for sid in self._matching_series(types, attr))
        return int(self._transaction(expire))

    # -- reads ---------------------------------------------------------------
    async def heads(self, tenant: str, selection: HeadSelection) -> list[HistoryHead]:
        clauses, params = entity_clauses("h", "history_types", tenant, selection.ids,
                                         selection.types)
        return [HistoryHead(entity_id, tuple(orjson.loads(types)),
                            tuple(orjson.loads(scope)) if scope is not None else None, created)
                for entity_id, types, scope, created in self.db.execute(
                    "SELECT id, types, scope, created FROM history_entities h WHERE "
                    + " AND ".join(clauses) + " ORDER BY h.pk", params)]

    def _series(self, tenant: str, entity_ids: Sequence[str],
                series: SeriesFilter) -> list[SeriesKey]:
        """(sid, entity id, attribute, dataset) of the selected series."""
        sql = ("SELECT s.sid, h.id, s.attr, s.dataset FROM history_series s "
               "JOIN history_entities h ON h.pk = s.entity WHERE h.tenant = ? "
               "AND h.id IN ({keys})")
        tail: list[Any] = []
        for column, values in (("s.attr", series.attrs), ("s.dataset", series.datasets)):
            if values is not None:
                sql += f" AND {column} IN ({','.join('?' * len(values))})"
                tail.extend(values)
        return list(rows_for_keys(self.db, sql + " ORDER BY s.sid", entity_ids, (tenant,),
                                  tail))

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
                   window: Window, folded: bool = False) -> dict[str, tuple[int, int]]:
        column, clause, params = self._window(window)
        # Two ordered probes: min() and max() in one statement would scan the range.
        probes = [(f"SELECT {column} FROM history WHERE sid = ?{clause} "
                   f"ORDER BY {column}{way} LIMIT 1", params) for way in ("", " DESC")]
        if folded and window.timeproperty == "observedAt":
            bounds = [BEFORE_ALL if window.start is None else window.start,
                      AFTER_ALL if window.end is None else window.end]
            probes += [("SELECT start FROM history_rollups WHERE sid = ? AND start >= ? "
                        f"AND start < ? ORDER BY start{way} LIMIT 1", bounds)
                       for way in ("", " DESC")]
        spans: dict[str, tuple[int, int]] = {}
        for sid, entity_id, _attr, _dataset in self._series(tenant, entity_ids, series):
            times = [row[0] for sql, args in probes
                     if (row := self.db.execute(sql, (sid, *args)).fetchone()) is not None]
            if times:
                spans[entity_id] = widened(spans.get(entity_id), min(times), max(times))
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

    async def values(self, tenant: str, entity_ids: Sequence[str], series: SeriesFilter,
                     start: int | None, end: int | None) -> AsyncIterator[RawSeries]:
        _column, clause, params = self._window(Window(start=start, end=end))
        # Read part after part, each after the last time read: a statement never stays
        # open on the shared connection while the download waits for its client.
        select = (f"SELECT t, num, rest FROM history WHERE sid = ?{clause} AND t > ? "
                  f"ORDER BY t LIMIT {VALUES_PER_READ}")
        for sid, entity_id, attr, _dataset in self._series(tenant, entity_ids, series):
            after = BEFORE_ALL
            while rows := self.db.execute(select, (sid, *params, after)).fetchall():
                yield entity_id, attr, rows
                if len(rows) < VALUES_PER_READ:
                    break
                after = rows[-1][0]

    async def aggregates(self, tenant: str, grids: dict[str, Grid], series: SeriesFilter,
                         window: Window, methods: Sequence[AggregateMethod]
                         ) -> dict[str, list[Bucket]]:
        selected = self._series(tenant, list(grids), series)

        def work(db: sqlite3.Connection, part: Sequence[SeriesKey]) -> list[Bucket]:
            return [b for key in part for b in _aggregate(db, key, grids[key[1]], window,
                                                           methods)]
        if self.readers is None or len(selected) < 2:
            parts: list[Any] = [work(self.db, selected)]
        else:
            parts = await self.readers.map(work, selected)
        result: dict[str, list[Bucket]] = {}
        owners = {sid: entity_id for sid, entity_id, _attr, _dataset in selected}
        for bucket in sorted((b for part in parts for b in part), key=lambda b: b.sid):
            result.setdefault(owners[bucket.sid], []).append(bucket)
        return result


def _aggregate(db: sqlite3.Connection, key: SeriesKey, grid: Grid, window: Window,
               methods: Sequence[AggregateMethod]) -> list[Bucket]:
    """The non-empty periods of one series, aggregated by SQLite from the raw instances
    and, for observedAt windows, from the periods folded by retention."""
    sid, _entity_id, attr, dataset = key
    names = list(dict.fromkeys(["total", *(n for m in methods for n in _NEEDS[m])]))
    measured = _raw_measures(db, sid, grid, window, names)
    if window.timeproperty == "observedAt" and db.execute(
            "SELECT 1 FROM history_rollups WHERE sid = ? AND start < ? LIMIT 1",
            (sid, grid.end)).fetchone() is not None:
        for start, folded in _folded_measures(db, sid, grid, window, names).items():
            raw = measured.get(start)
            measured[start] = folded if raw is None else _merge(raw, folded)
    return [Bucket(attr, dataset, start, _period_end(grid, start),
                   _values(measured[start], methods), sid) for start in sorted(measured)]


Measures = dict[str, Any]


def _raw_measures(db: sqlite3.Connection, sid: int, grid: Grid, window: Window,
                  names: list[str]) -> dict[int, Measures]:
    column, clause, params = SqliteHistory._window(window)
    measures = ", ".join(_MEASURE_SQL[n] for n in names)
    periods = _periods(grid, _SCANS_PER_SERIES)
    found: dict[int, Measures] = {}
    if periods is None:
        step = grid.period.micros
        sql = (f"SELECT ({column} - ?) / ?, {measures} FROM history WHERE sid = ? "
               f"AND {column} >= ? AND {column} < ?{clause} GROUP BY 1")
        for index, *row in db.execute(sql, (grid.start, step, sid, grid.start, grid.end,
                                            *params)):
            found[grid.start + index * step] = dict(zip(names, row, strict=True))
        return found
    sql = (f"SELECT {measures} FROM history WHERE sid = ? AND {column} >= ? "
           f"AND {column} < ?{clause}")
    for start, end in periods:
        row = db.execute(sql, (sid, start, min(end, grid.end), *params)).fetchone()
        if row[0]:
            found[start] = dict(zip(names, row, strict=True))
    return found


def _folded_measures(db: sqlite3.Connection, sid: int, grid: Grid, window: Window,
                     names: list[str]) -> dict[int, Measures]:
    """Measures from folded periods, each counted in the period where it starts."""
    low = max(grid.start, window.start) if window.start is not None else grid.start
    high = min(grid.end, window.end) if window.end is not None else grid.end
    found: dict[int, Measures] = {}
    for start, total, count, total_sum, least, most, squares in db.execute(
            "SELECT start, total, count, sum, min, max, squares FROM history_rollups "
            "WHERE sid = ? AND start >= ? AND start < ? ORDER BY start", (sid, low, high)):
        bucket = _bucket_start(grid, start)
        folded = {"total": total, "count": count, "sum": total_sum, "min": least,
                  "max": most, "squares": squares, "distinct": None}
        folded = {n: folded[n] for n in names}
        known = found.get(bucket)
        found[bucket] = folded if known is None else _merge(known, folded)
    return found


def _bucket_start(grid: Grid, instant: int) -> int:
    if grid.period.zero:
        return grid.start
    if grid.period.months == 0:
        return grid.start + (instant - grid.start) // grid.period.micros * grid.period.micros
    start = grid.start
    while grid.period.after(start) <= instant:
        start = grid.period.after(start)
    return start


def _period_end(grid: Grid, start: int) -> int:
    return grid.end if grid.period.zero else grid.period.after(start)


def _merge(a: Measures, b: Measures) -> Measures:
    merged: Measures = {}
    for name, value in a.items():
        other = b.get(name)
        if value is None or other is None:
            merged[name] = value if other is None else other
        elif name in ("min", "max"):
            # SQLite orders numbers before text; so does this merge.
            pair = sorted((value, other), key=lambda v: (isinstance(v, str), v))
            merged[name] = pair[0] if name == "min" else pair[1]
        elif name == "distinct":
            merged[name] = value  # distinct values are not kept by folded periods
        else:
            merged[name] = value + other
    return merged


MAX_PERIODS = 100_000


def _periods(grid: Grid, most: int) -> list[tuple[int, int]] | None:
    """The [start, end) of each period of a grid (the whole grid for a zero period);
    None when fixed periods are more than ``most`` (then SQL groups them)."""
    if grid.period.zero:
        return [(grid.start, grid.end)]
    step = grid.period.micros
    if grid.period.months == 0 and (grid.end - grid.start) // step >= most:
        return None
    periods = []
    start = grid.start
    while start < grid.end and len(periods) < MAX_PERIODS:
        end = grid.period.after(start)
        periods.append((start, end))
        start = end
    return periods


def _values(measured: dict[str, Any], methods: Sequence[AggregateMethod]) -> dict[str, Any]:
    """Each method's value from the measures of one period (see ``_NEEDS``)."""
    values: dict[str, Any] = {}
    count = measured.get("count")
    for method in methods:
        if method == "totalCount":
            values[method] = measured["total"]
        elif method == "distinctCount":
            values[method] = measured["distinct"]
        elif method in ("min", "max"):
            values[method] = measured[method]
        elif not count:
            values[method] = None
        elif method == "sum":
            values[method] = measured["sum"]
        elif method == "avg":
            values[method] = measured["sum"] / count
        elif method == "sumsq":
            values[method] = measured["squares"]
        elif method == "stddev":
            mean = measured["sum"] / count
            values[method] = math.sqrt(max(measured["squares"] / count - mean * mean, 0.0))
    return values
