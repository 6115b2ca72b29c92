"""The forms a dataset is downloaded in: CSV, GeoJSON and NGSI-LD JSON-LD of its
current state, and CSV of its history over a period. Each is produced as a stream of
chunks from a stream of published records, so a large dataset is never held whole."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from smartcity.core.ngsild.context import CORE_CONTEXT_URL
from smartcity.core.ngsild.entities import EntityService
from smartcity.core.ngsild.history_storage import (
    HeadSelection,
    RawSeries,
    SeriesFilter,
    Window,
)
from smartcity.core.ngsild.model import Entity
from smartcity.opendata.publication import (
    Publication,
    Record,
    current,
    record,
    records,
)
from smartcity.security.policy import matches
from smartcity.security.principal import SYSTEM, acting_as

ROWS_PER_CHUNK = 1000
IDS_PER_READ = 50
PERIODS_PER_PASS = 1000
HISTORY_COLUMNS = ["id", "attribute", "observedAt", "value"]


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dict | list | bool):
        return orjson.dumps(value).decode()
    return value


async def csv_stream(columns: Sequence[str], rows: AsyncIterator[Record]
                     ) -> AsyncIterator[bytes]:
    """CSV (RFC 4180) with a header line; compound values as JSON."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    count = 0
    async for row in rows:
        writer.writerow([_cell(row.get(column)) for column in columns])
        count += 1
        if count % ROWS_PER_CHUNK == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


async def geojson_stream(publication: Publication, rows: AsyncIterator[Record]
                         ) -> AsyncIterator[bytes]:
    """A GeoJSON FeatureCollection: each record a feature at its (published) place."""
    places = ["place", *(publication.terms.compact(a) for a in sorted(publication.places))]
    yield b'{"type":"FeatureCollection","features":['
    first = True
    async for row in rows:
        geometry = next((row[name] for name in places if row.get(name)), None)
        properties = {k: v for k, v in row.items() if k not in places}
        feature = {"type": "Feature", "geometry": geometry, "properties": properties}
        if "id" in row:
            feature["id"] = row["id"]
        yield (b"" if first else b",") + orjson.dumps(feature)
        first = False
    yield b"]}"


async def ngsi_ld_stream(publication: Publication, rows: AsyncIterator[Record]
                         ) -> AsyncIterator[bytes]:
    """NGSI-LD entities (normalized, JSON-LD) as published; a group of an aggregated
    dataset is an entity of its own, named after the dataset."""
    places = {"place", *(publication.terms.compact(a) for a in publication.places)}
    yield b"["
    number = 0
    async for row in rows:
        number += 1
        entity: dict[str, Any] = {
            "id": row.get("id") or f"urn:ngsi-ld:{publication.dataset.id}:group:{number}",
            "type": row.get("type") or "Group"}
        for name, value in row.items():
            if name in ("id", "type", "observedAt") or value is None:
                continue
            attribute: dict[str, Any] = {"type": "GeoProperty" if name in places
                                         else "Property", "value": value}
            if row.get("observedAt"):
                attribute["observedAt"] = row["observedAt"]
            entity[name] = attribute
        entity["@context"] = CORE_CONTEXT_URL
        yield (b"" if number == 1 else b",") + orjson.dumps(entity)
    yield b"]"


async def history_groups(publication: Publication, service: EntityService,
                         start: int | None, end: int | None) -> AsyncIterator[Record]:
    """The history of an aggregated dataset over [start, end), widened to whole periods:
    one row per period, attribute and place, published only when at least
    ``min_group`` entities gave values to it. A group is always a whole period's, so
    that comparing windows cut inside a period tells nothing of one entity. Read
    PERIODS_PER_PASS periods at a time (only their groups are held, however long the
    history), skipping periods without values."""
    period = publication.period
    assert period is not None  # aggregation needs a time resolution
    start = None if start is None else start - start % period
    end = None if end is None else end + (-end) % period
    moments = _Moments(publication)
    span = await _span(publication, service, start, end)
    while span is not None:
        low = span[0] - span[0] % period
        high = low + period * PERIODS_PER_PASS
        if end is not None:
            high = min(high, end)
        groups: dict[tuple[str, str, str], _Group] = {}
        async for entities in _batches(publication, service):
            await _group(publication, service, entities, (low, high), groups, moments)
        for (observed, attr, place), group in sorted(groups.items()):
            if len(group.entities) >= publication.dataset.policy.min_group:
                yield {"observedAt": observed, "attribute": attr,
                       "place": orjson.loads(place), "count": len(group.entities),
                       "value": group.total / group.count if group.count else None}
        span = await _span(publication, service, high, end) if high != end else None


async def history_csv(publication: Publication, service: EntityService,
                      start: int | None, end: int | None) -> AsyncIterator[bytes]:
    """The history CSV of a dataset without aggregation over [start, end): one row per
    value, times coarsened. Read as stored values and written a batch of entities at a
    time: the fast path of the largest downloads."""
    yield (",".join(HISTORY_COLUMNS) + "\r\n").encode()
    moments = _Moments(publication)
    names = {attr: publication.terms.compact(attr) for attr in publication.attrs}
    async for entities in _batches(publication, service):
        lines: list[str] = []
        async for entity_id, attr, values in _stored_values(publication, service, entities,
                                                            start, end):
            prefix = f"{_field(entity_id)},{_field(names[attr])},"
            moments.trim()
            # A plain number (most readings) is written as its repr (as the csv module
            # would); anything else decoded, as JSON when compound.
            lines.extend([
                f"{prefix}{moments[time]},{num!r}\r\n" if rest is None else
                f"{prefix}{moments[time]},{_field(_cell(_value(publication, attr, num, rest)))}"
                "\r\n" for time, num, rest in values])
            if len(lines) >= ROWS_PER_CHUNK:
                yield "".join(lines).encode()
                lines = []
        yield "".join(lines).encode()


async def published_rows(publication: Publication, service: EntityService,
                         now: int) -> AsyncIterator[Record]:
    """The dataset as it is now: each entity's record, or for an aggregated dataset
    the groups of its last closed period. Those are groups of the history download
    too, so that comparing the two tells nothing about a smaller group."""
    if not publication.dataset.policy.aggregate:
        async for row in records(publication, current(publication, service)):
            yield row
        return
    assert publication.period is not None  # aggregation needs a time resolution
    end = now - now % publication.period
    async for row in history_groups(publication, service, end - publication.period, end):
        yield row


async def _batches(publication: Publication, service: EntityService
                   ) -> AsyncIterator[list[Entity]]:
    """The dataset's entities, IDS_PER_READ at a time (whose history is read at once)."""
    if not publication.attrs:
        return
    batch: list[Entity] = []
    async for entity in current(publication, service):
        batch.append(entity)
        if len(batch) == IDS_PER_READ:
            yield batch
            batch = []
    if batch:
        yield batch


async def _stored_values(publication: Publication, service: EntityService,
                         entities: list[Entity], start: int | None, end: int | None
                         ) -> AsyncIterator[RawSeries]:
    """The stored values of the entities' published attributes in [start, end), part
    after part, leaving out attributes that are personal for any type the entity has
    had (its history may be from another type)."""
    tenant = publication.dataset.query.tenant
    ids = [e["id"] for e in entities]
    with acting_as(SYSTEM):
        heads = {h.entity_id: h.types for h in await service.store.history.heads(
            tenant, HeadSelection(ids=tuple(ids)))}
    allowed: dict[str, frozenset[str]] = {}
    for entity in entities:
        hidden = publication.hidden([*entity["type"], *heads.get(entity["id"], ())])
        allowed[entity["id"]] = frozenset() if hidden is None else frozenset(
            a for a in publication.attrs if not (hidden and matches(hidden, a)))
    async for entity_id, attr, values in service.store.history.values(
            tenant, ids, SeriesFilter(attrs=frozenset(publication.attrs)), start, end):
        if attr in allowed[entity_id]:
            yield entity_id, attr, values


def _value(publication: Publication, attr: str, num: Any, rest: bytes | None) -> Any:
    """A stored value as published (a place coarsened)."""
    if rest is None:
        return num
    body = orjson.loads(rest)
    value = body.get("value", body.get("object"))
    return publication.coarse_place(value) if attr in publication.places else value


@dataclass(slots=True)
class _Group:
    """What a period, attribute and place gathered: who gave values, and their sum."""

    entities: set[str] = field(default_factory=set)
    total: float = 0
    count: int = 0


async def _span(publication: Publication, service: EntityService, start: int | None,
                end: int | None) -> tuple[int, int] | None:
    """The first and last time of the dataset's stored values in [start, end)."""
    first = last = None
    async for entities in _batches(publication, service):
        spans = await service.store.history.span(
            publication.dataset.query.tenant, [e["id"] for e in entities],
            SeriesFilter(attrs=frozenset(publication.attrs)),
            Window(timeproperty="observedAt", start=start, end=end))
        for low, high in spans.values():
            first = low if first is None else min(first, low)
            last = high if last is None else max(last, high)
    return None if first is None or last is None else (first, last)


async def _group(publication: Publication, service: EntityService, entities: list[Entity],
                 window: tuple[int, int], groups: dict[tuple[str, str, str], _Group],
                 moments: _Moments) -> None:
    """Add the entities' stored values in the window to the groups of their period,
    attribute and place (the entity's published place now)."""
    places = {e["id"]: orjson.dumps(_place(publication, e)).decode() for e in entities}
    async for entity_id, attr, values in _stored_values(publication, service, entities,
                                                        *window):
        name = publication.terms.compact(attr)
        moments.trim()
        for time, num, rest in values:
            key = (moments[time], name, places[entity_id])
            group = groups.get(key)
            if group is None:
                group = groups[key] = _Group()
            group.entities.add(entity_id)
            value = _value(publication, attr, num, rest)
            if isinstance(value, int | float) and not isinstance(value, bool):
                group.total += value
                group.count += 1


class _Moments(dict[int, str]):
    """Published times of stored ones, remembered: the same few minutes recur in every
    series of a download. Forgotten past a bound (``trim``), so memory stays flat."""

    BOUND = 100_000

    def __init__(self, publication: Publication) -> None:
        super().__init__()
        self.publication = publication

    def __missing__(self, time: int) -> str:
        text = self[time] = self.publication.moment(time)
        return text

    def trim(self) -> None:
        if len(self) > self.BOUND:
            self.clear()


def _field(text: Any) -> str:
    """A CSV field (RFC 4180): quoted when it holds a separator, quote or line break."""
    text = str(text)
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _place(publication: Publication, entity: Entity) -> Any:
    published = record(publication, entity) or {}
    return next((published.get(publication.terms.compact(a))
                 for a in sorted(publication.places)
                 if published.get(publication.terms.compact(a))), None)
