"""The SQL of an NGSI-LD type expression over a (tenant, type, entity) index table."""

from __future__ import annotations

from typing import Any


def type_clause(table: str, entity: str, tenant: str,
                types: tuple[frozenset[str], ...]) -> tuple[str, list[Any]]:
    """(clause, parameters) keeping rows whose ``entity`` column (an entity pk) has, in
    ``table``, all the types of at least one conjunction; names are fixed, never client
    text."""
    params: list[Any] = []
    alternatives = []
    for conjunction in types:
        parts = []
        for type_iri in conjunction:
            parts.append(f"EXISTS (SELECT 1 FROM {table} t WHERE t.tenant = ? "
                         f"AND t.type = ? AND t.entity = {entity})")
            params.extend((tenant, type_iri))
        alternatives.append("(" + " AND ".join(parts) + ")")
    return "(" + " OR ".join(alternatives) + ")", params
