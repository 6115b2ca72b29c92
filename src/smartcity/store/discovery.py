"""What discovery (``/types``, ``/attributes``) reads from the side indexes, the same
on every backend."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


def type_attributes(types: Iterable[Sequence[Any]],
                    attrs: Iterable[Sequence[Any]]) -> dict[str, dict[str, set[str]]]:
    """type IRI -> attribute IRI -> attribute kinds, from the index rows (type, entity)
    and (attr, entity, kinds), joined here: neither side table is indexed by entity, so
    an SQL join would scan one table once per row of the other."""
    types_of: dict[int, list[str]] = {}
    result: dict[str, dict[str, set[str]]] = {}
    for type_iri, entity in types:
        types_of.setdefault(entity, []).append(type_iri)
        result.setdefault(type_iri, {})
    split: dict[str, list[str]] = {}
    for attr, entity, kinds in attrs:
        names = split.get(kinds) or split.setdefault(kinds, kinds.split(","))
        for type_iri in types_of.get(entity, ()):
            result[type_iri].setdefault(attr, set()).update(names)
    return result
