"""Retention of personal data: the history of each attribute the register declares
personal is kept for the register's period, then deleted (or, with ``aggregate``,
folded into aggregates that name no one). Current values stay while they are in use.

The register names types and attributes as operators do (short names); the rules are
made for the IRIs the store actually holds, on every run.
"""

from __future__ import annotations

from smartcity.core.ngsild.durations import parse_duration
from smartcity.core.ngsild.retention import RetentionRule
from smartcity.core.ngsild.storage import EntityStore
from smartcity.security.policy import Register, matches


async def personal_retention(store: EntityStore, register: Register) -> list[RetentionRule]:
    held: dict[str, set[str]] = {}  # type IRI -> attribute IRIs, over every tenant
    for tenant in await store.tenants():
        for type_iri, attrs in (await store.type_attributes(tenant)).items():
            held.setdefault(type_iri, set()).update(attrs)
    rules = []
    for entry in register.entries:
        types = sorted(t for t in held if matches(frozenset({entry.type}), t))
        if not types:
            continue
        raw = parse_duration(entry.retention)
        aggregate = parse_duration(entry.aggregate) if entry.aggregate else None
        if "*" in entry.attributes:
            rules.append(RetentionRule(raw, tuple(types), None, aggregate))
            continue
        names = frozenset(entry.attributes)
        attrs = sorted({a for t in types for a in held[t] if matches(names, a)})
        rules += [RetentionRule(raw, tuple(types), attr, aggregate) for attr in attrs]
    return rules
