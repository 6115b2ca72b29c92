"""Ordering of query results: ``orderBy=name;desc,type`` (clause 4.23)."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import cmp_to_key
from typing import Any

from smartcity.core.ngsild.errors import BadRequestData
from smartcity.core.ngsild.model import Entity, value_of

_ENTITY_MEMBERS = ("id", "type", "createdAt", "modifiedAt")
_INSTANCE_MEMBERS = ("createdAt", "modifiedAt", "observedAt", "unitCode", "datasetId")


@dataclass(frozen=True)
class SortKey:
    path: tuple[str, ...]  # expanded attribute names, or one entity member
    descending: bool


def parse_order_by(text: str, expand: Callable[[str], str]) -> list[SortKey]:
    keys = []
    for item in text.split(","):
        path_text, _, direction = item.strip().partition(";")
        if direction not in ("", "asc", "desc") or not path_text:
            raise BadRequestData(f"Invalid orderBy item {item!r}")
        segments = path_text.split(".")
        if any(not s for s in segments):
            raise BadRequestData(f"Invalid orderBy path {path_text!r}")
        if segments[0] in _ENTITY_MEMBERS and len(segments) == 1:
            path = (segments[0],)
        else:
            path = tuple(s if i and s in _INSTANCE_MEMBERS else expand(s)
                         for i, s in enumerate(segments))
        keys.append(SortKey(path, direction == "desc"))
    return keys


def _lookup(entity: Entity, path: tuple[str, ...]) -> Any:
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
    return value_of(node) if isinstance(node, dict) and "type" in node else node


def _rank(value: Any) -> tuple[int, Any]:
    """Comparable form: numbers, then strings (accent-insensitive first), then others."""
    if isinstance(value, bool):
        return (2, int(value))
    if isinstance(value, int | float):
        return (0, value)
    if isinstance(value, str):
        base = "".join(c for c in unicodedata.normalize("NFD", value)
                       if not unicodedata.combining(c)).casefold()
        return (1, (base, value))
    return (3, repr(value))


def sort_entities(entities: list[Entity], keys: list[SortKey]) -> list[Entity]:
    """Sort by the keys in order; entities lacking a value come last in either direction."""
    def compare(a: Entity, b: Entity) -> int:
        for key in keys:
            va, vb = _lookup(a, key.path), _lookup(b, key.path)
            if va is None or vb is None:
                if va is None and vb is None:
                    continue
                return 1 if va is None else -1
            ra, rb = _rank(va), _rank(vb)
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
