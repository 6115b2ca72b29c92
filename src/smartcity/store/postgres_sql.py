"""SQL building blocks shared by the PostgreSQL entity and history stores: numbered
parameters, rows as column arrays for ``unnest``, and the clauses that select entities
by ids and type expression."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson


class Params(list[Any]):
    """Query parameters, each added where it is used: ``add`` answers its ``$n``."""

    def add(self, value: Any) -> str:
        self.append(value)
        return f"${len(self)}"


def columns(rows: Sequence[Sequence[Any]], width: int | None = None) -> list[list[Any]]:
    """Rows as column arrays, for ``unnest``; ``width`` when there may be no rows."""
    if not rows:
        return [[] for _ in range(width or 0)]
    return [list(column) for column in zip(*rows, strict=True)]


def json_rows(rows: Sequence[Sequence[Any]]) -> bytes:
    """Rows as one JSON array, sent as a jsonb parameter and unpacked in SQL with
    ``jsonb_array_elements``: asyncpg encodes array parameters value by value, and for
    thousands of rows that costs the worker five times what one JSON document does."""
    return orjson.dumps(rows)


def id_and_type_clauses(alias: str, table: str, tenant: str, ids: tuple[str, ...] | None,
                        types: tuple[frozenset[str], ...] | None, params: Params) -> list[str]:
    """Clauses (to AND) keeping rows of ``alias`` (with pk and id) among ``ids`` and of a
    type expression, through ``table`` (tenant, type, entity); names are fixed, never
    client text."""
    clauses = []
    if ids is not None:
        clauses.append(f"{alias}.id = ANY({params.add(list(ids))}::text[])")
    if types is not None:
        alternatives = []
        for conjunction in types:
            parts = [f"EXISTS (SELECT 1 FROM {table} t WHERE t.tenant = {params.add(tenant)} "
                     f"AND t.type = {params.add(type_iri)} AND t.entity = {alias}.pk)"
                     for type_iri in sorted(conjunction)]
            alternatives.append("(" + " AND ".join(parts) + ")")
        clauses.append("(" + " OR ".join(alternatives) + ")")
    return clauses
