"""Ordering of query results (clause 4.23): ``orderBy=name;desc,type``.

Values rank numbers before strings before other values; entities without the value
come last in either direction. Strings compare by code point unless a collation is
asked for; ``location;dist-asc`` orders by distance from a reference geometry.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import cmp_to_key
from typing import Any

from smartcity.core.ngsild.errors import BadRequestData
from smartcity.core.ngsild.geo import GeoQuery, parse_geo_query
from smartcity.core.ngsild.model import Entity, value_of

_ENTITY_MEMBERS = ("id", "type", "createdAt", "modifiedAt")
_INSTANCE_MEMBERS = ("createdAt", "modifiedAt", "observedAt", "unitCode", "datasetId")
_DIRECTIONS = ("", "asc", "desc", "dist-asc", "dist-desc")
_ITEM = re.compile(r"^([^\[\];]+)((?:\[[^\[\]]+\])*)$")
# BCP 47 language tags, with the -u- extension that names a collation.
_BCP47 = re.compile(r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$")
# German phonebook collation spells umlauts out before comparing.
_PHONEBOOK = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe",
                            "Ü": "Ue", "ß": "ss"})


@dataclass(frozen=True)
class SortKey:
    path: tuple[str, ...]  # expanded attribute names, or one entity member
    keys: tuple[str, ...]  # a path into a compound value: address[city]
    descending: bool
    distance: bool = False


@dataclass(frozen=True)
class Ordering:
    keys: tuple[SortKey, ...]
    collation: str | None = None
    origin: GeoQuery | None = None  # reference geometry of distance ordering


def parse_order_by(text: str | list[str], expand: Callable[[str], str],
                   collation: str | None = None, origin: Any = None,
                   geometry: str | None = None) -> Ordering:
    """Parse orderBy items; ``origin`` holds the reference coordinates of dist-asc/desc."""
    items = text if isinstance(text, list) else text.split(",")
    keys = tuple(_parse_item(item, expand) for item in items)
    if collation is not None and not _BCP47.match(collation):
        raise BadRequestData(f"collation must be a BCP 47 language tag: {collation!r}")
    reference = None
    if any(k.distance for k in keys):
        if origin is None:
            raise BadRequestData("Ordering by distance needs the reference coordinates "
                                 "(orderFrom, or coordinates in a Query)")
        reference = parse_geo_query("near;minDistance==0", geometry or "Point", origin)
    return Ordering(keys, collation, reference)


def _parse_item(item: Any, expand: Callable[[str], str]) -> SortKey:
    if not isinstance(item, str):
        raise BadRequestData(f"Invalid orderBy item {item!r}")
    path_text, _, direction = item.strip().partition(";")
    match = _ITEM.match(path_text)
    if direction not in _DIRECTIONS or match is None:
        raise BadRequestData(f"Invalid orderBy item {item!r}")
    segments = match.group(1).split(".")
    if any(not s for s in segments):
        raise BadRequestData(f"Invalid orderBy path {path_text!r}")
    keys = tuple(re.findall(r"\[([^\[\]]+)\]", match.group(2)))
    if segments[0] in _ENTITY_MEMBERS and len(segments) == 1:
        path: tuple[str, ...] = (segments[0],)
    else:
        path = tuple(s if i and s in _INSTANCE_MEMBERS else expand(s)
                     for i, s in enumerate(segments))
    return SortKey(path, keys, direction.endswith("desc"), direction.startswith("dist"))


def _lookup(entity: Entity, key: SortKey, ordering: Ordering) -> Any:
    path = key.path
    if len(path) == 1 and path[0] in _ENTITY_MEMBERS:
        value = entity.get(path[0])
        return value[0] if isinstance(value, list) and value else value
    instances = entity["attrs"].get(path[0])
    if not instances:
        return None
    node: Any = instances[0]
    for segment in path[1:]:
        if not isinstance(node, dict) or segment not in node:
            return None
        node = node[segment]
    if isinstance(node, dict) and "type" in node:
        if key.distance:
            return _distance(node.get("value"), ordering.origin)
        node = value_of(node)
    for item in key.keys:
        if not isinstance(node, dict) or item not in node:
            return None
        node = node[item]
    return node


def _distance(geometry: Any, origin: GeoQuery | None) -> float | None:
    if origin is None or not isinstance(geometry, dict):
        return None
    return origin.distance(geometry)


def _text_key(text: str, collation: str | None) -> tuple[str, str]:
    """How a string sorts: by code point, or by base letters under a collation."""
    if collation is None:
        return (text, text)
    if "-co-phonebk" in collation.lower():
        text = text.translate(_PHONEBOOK)
    base = "".join(c for c in unicodedata.normalize("NFD", text)
                   if not unicodedata.combining(c)).casefold()
    return (base, text)


def _rank(value: Any, collation: str | None) -> tuple[int, Any]:
    """Comparable form: numbers, then strings, then booleans, then anything else."""
    if isinstance(value, bool):
        return (2, int(value))
    if isinstance(value, int | float):
        return (0, value)
    if isinstance(value, str):
        return (1, _text_key(value, collation))
    return (3, repr(value))


def sort_entities(entities: list[Entity], ordering: Ordering) -> list[Entity]:
    """Sort by the keys in order; entities lacking a value come last in either direction."""
    def compare(a: Entity, b: Entity) -> int:
        for key in ordering.keys:
            va, vb = _lookup(a, key, ordering), _lookup(b, key, ordering)
            if va is None or vb is None:
                if va is None and vb is None:
                    continue
                return 1 if va is None else -1
            ra, rb = _rank(va, ordering.collation), _rank(vb, ordering.collation)
            if ra == rb:
                continue
            try:
                less = ra < rb
            except TypeError:
                less = repr(ra) < repr(rb)
            result = -1 if less else 1
            return -result if key.descending else result
        return 0
    return sorted(entities, key=cmp_to_key(compare))


def order_attributes(order: Ordering | None) -> set[str]:
    """The attributes an ordering reads (not entity members such as id)."""
    return {key.path[0] for key in order.keys if key.path} if order is not None else set()
