"""What the history keeps: one temporal instance per attribute value written.

A write through the core API records every attribute instance it touched (the ones
stamped with the write's ``modifiedAt``); the temporal API records the instances a
client sends. Either way the store gets a ``History`` in the transaction of the write,
so a committed change is never missing from the history.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from smartcity.core.ngsild.instants import parse_instant
from smartcity.core.ngsild.model import (
    LANGUAGE_PROPERTY,
    PROPERTY,
    VALUE_MEMBER,
    Entity,
    Instance,
)
from smartcity.core.ngsild.normalize import NULL

# Members an instance body may carry that the store keeps in its own columns, not in it.
NOT_KEPT = frozenset({"createdAt", "modifiedAt", "datasetId", "instanceId"})


@dataclass(frozen=True, slots=True)
class HistoryEntity:
    """The registry record of an entity that has history."""

    entity_id: str
    types: tuple[str, ...]
    scope: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class HistoryInstance:
    """One temporal instance: ``time`` is observedAt when given, else modifiedAt.

    ``body`` is the instance as the entity holds it (shared, never changed); the store
    leaves out the members in ``NOT_KEPT``.
    """

    entity_id: str
    attr: str
    dataset_id: str  # "" for the default instance
    time: int
    body: Instance


@dataclass
class History:
    entities: list[HistoryEntity] = field(default_factory=list)
    instances: list[HistoryInstance] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.entities or self.instances)


def head(entity: Entity) -> HistoryEntity:
    scope = entity.get("scope")
    return HistoryEntity(entity["id"], tuple(entity["type"]),
                         tuple(scope) if scope is not None else None)


def to_history(entity_id: str, iri: str, instance: Instance, fallback: int) -> HistoryInstance:
    observed = instance.get("observedAt")
    time = parse_instant(observed) if isinstance(observed, str) else fallback
    return HistoryInstance(entity_id, iri, instance.get("datasetId") or "", time, instance)


def from_changes(changes: Iterable[tuple[Any, Entity | None, Entity | None]],
                 now: str) -> History:
    """The history a list of committed core changes adds: every instance the write
    stamped with ``now``, and a deletion instance for every attribute instance it
    removed. Deleting an entity adds nothing: history outlives the entity."""
    history = History()
    when = parse_instant(now)
    for _kind, entity, previous in changes:
        if entity is None:
            continue
        history.entities.append(head(entity))
        entity_id = entity["id"]
        attrs = entity["attrs"]
        for iri, instances in attrs.items():
            for instance in instances:
                if instance.get("modifiedAt") == now:
                    history.instances.append(to_history(entity_id, iri, instance, when))
        if previous is not None:
            history.instances.extend(_deletions(entity_id, previous["attrs"], attrs, now,
                                                when))
        scope = entity.get("scope")
        if scope != (previous or {}).get("scope"):
            # The scope is history too: what it became, or that it was removed.
            body = {"type": PROPERTY, "value": scope, "observedAt": now} if scope else \
                {"type": PROPERTY, "value": [], "deletedAt": now}
            history.instances.append(HistoryInstance(entity_id, "scope", "", when, body))
    return history


def _deletions(entity_id: str, before: dict[str, list[Instance]],
               after: dict[str, list[Instance]], now: str, when: int
               ) -> list[HistoryInstance]:
    removed = []
    for iri, instances in before.items():
        now_held = after.get(iri, ())
        if len(instances) == 1 == len(now_held) and \
                instances[0].get("datasetId") == now_held[0].get("datasetId"):
            continue  # the usual case, decided without building sets
        kept = {i.get("datasetId") for i in now_held}
        for instance in instances:
            dataset_id = instance.get("datasetId")
            if dataset_id not in kept:
                removed.append(HistoryInstance(entity_id, iri, dataset_id or "", when,
                                               deletion(instance.get("type", PROPERTY), now)))
    return removed


def deletion(kind: str, now: str) -> Instance:
    """The instance that records an attribute's deletion (clause 4.5.7: value NGSI-LD
    null and deletedAt)."""
    member = VALUE_MEMBER.get(kind, "value")
    value: Any = {"@none": NULL} if kind == LANGUAGE_PROPERTY else NULL
    return {"type": kind, member: value, "deletedAt": now}


def from_temporal(entity_id: str, attrs: dict[str, Sequence[Instance]],
                  fallback: int) -> list[HistoryInstance]:
    """The instances of a temporal representation, as sent by a client."""
    return [to_history(entity_id, iri, instance, fallback)
            for iri, instances in attrs.items() for instance in instances]
