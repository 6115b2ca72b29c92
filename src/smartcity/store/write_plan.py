"""What a write transaction does to the tables, worked out before any SQL runs.

Both backends keep an entity whole beside side-index rows (types, attribute values,
geometries). Given the rows as they stand and a sequence of writes, ``plan_writes``
checks each write (AlreadyExists, ResourceNotFound, Conflict), lets later writes see
earlier ones, and keeps only the final state of each entity: the backend then applies
it in a few bulk statements.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from smartcity.core.ngsild import geo
from smartcity.core.ngsild.errors import AlreadyExists, Conflict, ResourceNotFound
from smartcity.core.ngsild.model import GEO_PROPERTY, Entity
from smartcity.core.ngsild.storage import Write

# (attr, kinds, num, str, complex, instances)
AttrRow = tuple[str, str, float | None, str | None, int, int]
IndexRows = tuple[list[str], list[AttrRow], list[tuple[str, Any]]]
# What a backend reads of a stored entity to plan a write: pk, modifiedAt, shape, values
# signature.
StoredRow = tuple[int, str, bytes, bytes]
_EXACT = 2**53  # beyond this a double no longer holds every integer


def scalar_columns(instances: list[dict[str, Any]]) -> tuple[float | None, str | None, int]:
    """(num, str, complex) of an attribute for the value index.

    Only a single Property with a plain number or string is indexed by value; any
    other attribute is 'complex' and always a candidate for value filters.
    """
    if len(instances) == 1 and instances[0].get("type", "Property") == "Property":
        value = instances[0].get("value")
        if isinstance(value, str):
            return None, value, 0
        if isinstance(value, int | float) and not isinstance(value, bool) \
                and -_EXACT < value < _EXACT:
            return float(value), None, 0
    return None, None, 1


def index_rows(entity: Entity) -> IndexRows:
    """What the side tables hold for an entity: types, attribute rows, geometries."""
    types = entity["type"]
    attrs: list[AttrRow] = []
    geoms: list[tuple[str, Any]] = []
    for iri, instances in entity["attrs"].items():
        kinds = instances[0].get("type", "Property") if len(instances) == 1 else \
            ",".join(sorted({i.get("type", "Property") for i in instances}))
        attrs.append((iri, kinds, *scalar_columns(instances), len(instances)))
        for inst in instances:
            if inst.get("type") == GEO_PROPERTY:
                geoms.append((iri, inst.get("value")))
    return types, attrs, geoms


def index_shape(rows: IndexRows) -> bytes:
    """The keys of an entity's index rows (types, attribute names and kinds, geometry
    attributes and a digest of the geometries), kept with the entity so its rows can be
    found and compared by key. Only indexed values stay out: those change in place."""
    types, attrs, geoms = rows
    where = hashlib.blake2b(orjson.dumps(geoms), digest_size=8).hexdigest() if geoms else ""
    return orjson.dumps([types, [a[:2] for a in attrs], [g[0] for g in geoms], where])


def shape_keys(shape: bytes) -> tuple[list[str], list[str], int]:
    """(types, attribute names, number of geometries) of a stored shape."""
    types, attrs, geo_names, _ = orjson.loads(shape)
    return types, [a for a, _ in attrs], len(geo_names)


_DIGEST = 8  # bytes of an attribute's digest in a values signature


def values_signature(rows: IndexRows) -> bytes:
    """A digest of each attribute's indexed values, in the order of the shape's
    attributes: an update rewrites the value rows of the attributes whose digest moved
    only (each row rewritten costs SQLite about as much as the rest of a PATCH)."""
    return b"".join(hashlib.blake2b(orjson.dumps(attr[2:]), digest_size=_DIGEST).digest()
                    for attr in rows[1])


def changed_attributes(before: bytes, after: bytes) -> list[int]:
    """Positions of the attributes whose digests differ between two signatures of one
    shape; every position when ``before`` is not such a signature (a store written by
    an earlier version kept one digest of all values)."""
    count = len(after) // _DIGEST
    if len(before) != len(after):
        return list(range(count))
    return [n for n in range(count)
            if before[n * _DIGEST:(n + 1) * _DIGEST] != after[n * _DIGEST:(n + 1) * _DIGEST]]


def bounding_box(geometry: dict[str, Any]) -> tuple[float, float, float, float]:
    if geometry.get("type") == "Point":
        lon, lat = geometry["coordinates"][:2]
        return lon, lat, lon, lat
    return geo.geometry_bbox(geometry)


@dataclass
class NewEntity:
    entity_id: str
    entity: Entity
    doc: bytes
    shape: bytes
    signature: bytes
    index: IndexRows


@dataclass
class Plan:
    """The net effect of a write transaction on the tables."""

    inserted: list[NewEntity] = field(default_factory=list)
    # pk, modifiedAt, shape, signature, doc
    updated: list[tuple[int, str, bytes, bytes, bytes]] = field(default_factory=list)
    deleted: list[int] = field(default_factory=list)
    # index rows to drop, by the shape they were written with
    dropped: list[tuple[int, bytes]] = field(default_factory=list)
    # index rows to write for entities that stay (the new ones' follow their pk)
    reindexed: list[tuple[int, IndexRows]] = field(default_factory=list)
    # pk, attr, num, str, complex, instances: values that changed in place
    revalued: list[tuple[int, str, float | None, str | None, int, int]] = field(
        default_factory=list)


def plan_writes(original: dict[str, StoredRow], writes: Sequence[Write]) -> Plan:
    """Check every write against the rows as they stand, then the net result."""
    current: dict[str, tuple[int | None, str] | None] = {
        entity_id: (row[0], row[1]) for entity_id, row in original.items()}
    final: dict[str, Entity | None] = {}
    for w in writes:
        row = current.get(w.entity_id)
        if w.op == "insert":
            if row is not None:
                raise AlreadyExists(f"Entity {w.entity_id} already exists")
        elif row is None:
            raise ResourceNotFound(f"Entity {w.entity_id} does not exist")
        elif w.expect is not None and row[1] != w.expect:
            raise Conflict(f"Entity {w.entity_id} changed while it was being written")
        if w.op == "delete":
            final[w.entity_id] = None
            current[w.entity_id] = None
            continue
        assert w.entity is not None
        final[w.entity_id] = w.entity
        current[w.entity_id] = (None, w.entity["modifiedAt"])
    return _plan(original, final)


def _plan(original: dict[str, StoredRow], final: dict[str, Entity | None]) -> Plan:
    plan = Plan()
    for entity_id, entity in final.items():
        before = original.get(entity_id)
        if entity is None:
            if before is not None:
                plan.dropped.append((before[0], before[2]))
                plan.deleted.append(before[0])
            continue
        doc = orjson.dumps(entity)
        index = index_rows(entity)
        shape, signature = index_shape(index), values_signature(index)
        if before is None:
            plan.inserted.append(NewEntity(entity_id, entity, doc, shape, signature, index))
            continue
        pk = before[0]
        plan.updated.append((pk, entity["modifiedAt"], shape, signature, doc))
        # Side indexes change only when what they hold does: rows are rebuilt when
        # types, attributes or geometry change, values updated in place.
        if before[2] != shape:
            plan.dropped.append((pk, before[2]))
            plan.reindexed.append((pk, index))
        elif before[3] != signature:
            attrs = index[1]
            plan.revalued.extend((pk, attrs[n][0], *attrs[n][2:])
                                 for n in changed_attributes(before[3], signature))
    return plan
