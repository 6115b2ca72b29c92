"""Pure functions that apply NGSI-LD write operations to internal entities.

Each takes the stored entity (never modified) and returns the new one, so a
failed operation leaves nothing half-applied. Fragments are parsed entities
(``normalize.parse_entity(..., for_update=True)``): attributes, and optionally
``type`` (types to add) and ``scope``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from smartcity.core.ngsild.errors import BadRequestData, ResourceNotFound
from smartcity.core.ngsild.model import DELETE, RESERVED_MEMBERS, Entity, Instance
from smartcity.core.ngsild.normalize import NULL

SCOPE = "scope"
TYPE = "type"


@dataclass
class AttrOutcome:
    """Which attributes a write changed and which it left, with reasons."""

    updated: list[str] = field(default_factory=list)
    not_updated: list[tuple[str, str]] = field(default_factory=list)


def stamp(instance: Instance, now: str, created: str | None = None) -> Instance:
    """Set system times on an instance and its sub-attributes."""
    instance["createdAt"] = created or now
    instance["modifiedAt"] = now
    for key, sub in instance.items():
        if key not in RESERVED_MEMBERS and isinstance(sub, dict):
            stamp(sub, now)
    return instance


def new_entity(entity: Entity, now: str, *, owned: bool = False) -> Entity:
    """The entity as first stored; ``owned`` entities (fresh from parsing) are stamped in
    place instead of copied."""
    result = entity if owned else copy.deepcopy(entity)
    result["createdAt"] = result["modifiedAt"] = now
    for instances in result["attrs"].values():
        for inst in instances:
            stamp(inst, now)
    return result


def replace_entity(stored: Entity, entity: Entity, now: str, *, owned: bool = False) -> Entity:
    result = new_entity(entity, now, owned=owned)
    result["createdAt"] = stored["createdAt"]
    result["id"] = stored["id"]
    return result


def _find(instances: list[Instance], dataset_id: str | None) -> int | None:
    for index, inst in enumerate(instances):
        if inst.get("datasetId") == dataset_id:
            return index
    return None


def _structure(stored: Entity) -> Entity:
    """A copy of an entity down to its attribute lists, sharing the instances.

    Every operation here replaces instances and never changes one in place, so a write
    copies what it changes instead of the whole entity.
    """
    return {**stored, "attrs": {iri: list(i) for iri, i in stored["attrs"].items()}}


def _remove(result: Entity, iri: str, dataset_id: str | None) -> bool:
    current = result["attrs"].get(iri)
    index = _find(current, dataset_id) if current else None
    if index is None:
        return False
    del current[index]
    if not current:
        del result["attrs"][iri]
    return True


def _members(result: Entity, fragment: Entity, *, overwrite: bool) -> list[str]:
    """Apply a fragment's type, scope and expiresAt; return the members it changed."""
    changed = []
    if "expiresAt" in fragment and (overwrite or "expiresAt" not in result):
        if fragment["expiresAt"] is None:
            result.pop("expiresAt", None)
        else:
            result["expiresAt"] = fragment["expiresAt"]
    if fragment.get(TYPE):
        merged = list(dict.fromkeys([*result["type"], *fragment[TYPE]]))
        if merged != result["type"]:
            result["type"] = merged
            changed.append(TYPE)
    if SCOPE in fragment:
        scope = fragment[SCOPE]
        if scope is None:
            if result.pop(SCOPE, None) is not None:
                changed.append(SCOPE)
        else:
            new = scope if overwrite else list(dict.fromkeys([*result.get(SCOPE, []), *scope]))
            if new != result.get(SCOPE):
                result[SCOPE] = new
                changed.append(SCOPE)
    return changed


def append_attributes(stored: Entity, fragment: Entity, now: str,
                      *, overwrite: bool = True, owned: bool = False
                      ) -> tuple[Entity, AttrOutcome]:
    """POST /entities/{id}/attrs: add attributes, replacing existing ones unless told not to;
    an ``owned`` fragment's instances are taken as they are."""
    result = _structure(stored)
    outcome = AttrOutcome(updated=_members(result, fragment, overwrite=overwrite))
    for iri, instances in fragment["attrs"].items():
        current = result["attrs"].setdefault(iri, [])
        changed = False
        for inst in instances:
            index = _find(current, inst.get("datasetId"))
            fresh = inst if owned else copy.deepcopy(inst)
            if index is None:
                current.append(stamp(fresh, now))
                changed = True
            elif overwrite:
                current[index] = stamp(fresh, now, current[index].get("createdAt"))
                changed = True
        if changed:
            outcome.updated.append(iri)
        else:
            outcome.not_updated.append((iri, "Attribute exists and noOverwrite was asked"))
    if outcome.updated:
        result["modifiedAt"] = now
    return result, outcome


def update_attributes(stored: Entity, fragment: Entity, now: str
                      ) -> tuple[Entity, AttrOutcome]:
    """PATCH /entities/{id}/attrs: replace the attribute instances the fragment names,
    adding those the entity does not have yet (as V1.9.1 clients and the ETSI suite
    expect); an instance set to NGSI-LD null is removed. A scope is only updated where
    one exists.
    """
    result = _structure(stored)
    outcome = AttrOutcome()
    if SCOPE in fragment and not stored.get(SCOPE):
        outcome.not_updated.append((SCOPE, "The entity has no scope to update"))
        fragment = {k: v for k, v in fragment.items() if k != SCOPE}
    outcome.updated.extend(_members(result, fragment, overwrite=True))
    for iri, instances in fragment["attrs"].items():
        hits = 0
        for inst in instances:
            dataset_id = inst.get("datasetId")
            if inst.get(DELETE):
                hits += _remove(result, iri, dataset_id)
                continue
            current = result["attrs"].setdefault(iri, [])
            index = _find(current, dataset_id)
            if index is None:
                current.append(stamp(copy.deepcopy(inst), now))
            else:
                current[index] = stamp(copy.deepcopy(inst), now, current[index].get("createdAt"))
            hits += 1
        if not result["attrs"].get(iri):
            result["attrs"].pop(iri, None)
        if hits:
            outcome.updated.append(iri)
        else:
            outcome.not_updated.append((iri, "Attribute (or its datasetId) does not exist"))
    if outcome.updated:
        result["modifiedAt"] = now
    return result, outcome


def merge_value(current: Any, patch: Any) -> Any:
    """JSON merge-patch of a compound value: NGSI-LD null removes a key."""
    if not (isinstance(current, dict) and isinstance(patch, dict)):
        return copy.deepcopy(patch)
    merged = dict(current)
    for key, val in patch.items():
        if val is None or val == NULL:
            merged.pop(key, None)
        else:
            merged[key] = merge_value(merged.get(key), val)
    return merged


def merge_instance(current: Instance, fragment: Instance, now: str) -> Instance:
    """Merge an attribute fragment into an instance; a null sub-attribute is removed."""
    merged = copy.deepcopy(current)
    for key, val in fragment.items():
        if key in ("createdAt", "modifiedAt"):
            continue
        if key not in RESERVED_MEMBERS:
            if isinstance(val, dict) and val.get(DELETE):
                merged.pop(key, None)
            elif isinstance(merged.get(key), dict):
                merged[key] = merge_instance(merged[key], val, now)
            else:
                merged[key] = stamp(copy.deepcopy(val), now)
        elif key == "value":
            merged[key] = merge_value(merged.get(key), val)
        else:
            merged[key] = copy.deepcopy(val)
    merged["modifiedAt"] = now
    return merged


def partial_update(stored: Entity, iri: str, fragment: list[Instance], now: str) -> Entity:
    """PATCH /entities/{id}/attrs/{attrId}: merge the fragment into the named instance."""
    if not stored["attrs"].get(iri):
        raise ResourceNotFound(f"Attribute {iri} does not exist")
    result = _structure(stored)
    for inst in fragment:
        dataset_id = inst.get("datasetId")
        if inst.get(DELETE):
            if not _remove(result, iri, dataset_id):
                raise ResourceNotFound(f"Attribute {iri} has no instance with that datasetId")
            continue
        instances = result["attrs"].get(iri, [])
        index = _find(instances, dataset_id)
        if index is None:
            raise ResourceNotFound(f"Attribute {iri} has no instance with that datasetId")
        current = instances[index]
        if "type" in inst and inst["type"] != current.get("type"):
            raise BadRequestData("A partial update cannot change the attribute's type")
        instances[index] = merge_instance(current, inst, now)
    result["modifiedAt"] = now
    return result


def replace_attribute(stored: Entity, iri: str, instances: list[Instance], now: str) -> Entity:
    """PUT /entities/{id}/attrs/{attrId}: the attribute instance is replaced whole."""
    if not stored["attrs"].get(iri):
        raise ResourceNotFound(f"Attribute {iri} does not exist")
    result = _structure(stored)
    for inst in instances:
        index = _find(result["attrs"][iri], inst.get("datasetId"))
        if index is None:
            raise ResourceNotFound(f"Attribute {iri} has no instance with that datasetId")
        created = result["attrs"][iri][index].get("createdAt")
        result["attrs"][iri][index] = stamp(copy.deepcopy(inst), now, created)
    result["modifiedAt"] = now
    return result


def merge_entity(stored: Entity, patch: Entity, now: str) -> Entity:
    """PATCH /entities/{id} (merge-patch): add, merge or (with null) delete attributes."""
    result = _structure(stored)
    _members(result, patch, overwrite=True)
    for iri, instances in patch["attrs"].items():
        for inst in instances:
            dataset_id = inst.get("datasetId")
            if inst.get(DELETE):
                _remove(result, iri, dataset_id)
                continue
            current = result["attrs"].setdefault(iri, [])
            index = _find(current, dataset_id)
            if index is None:
                current.append(stamp(_without_deletions(inst), now))
            elif inst.get("type") == current[index].get("type"):
                current[index] = merge_instance(current[index], inst, now)
            else:
                current[index] = stamp(_without_deletions(inst), now,
                                       current[index].get("createdAt"))
    result["modifiedAt"] = now
    return result


def _without_deletions(instance: Instance) -> Instance:
    return {k: copy.deepcopy(v) for k, v in instance.items()
            if not (isinstance(v, dict) and v.get(DELETE))}


def delete_attribute(stored: Entity, iri: str, dataset_id: str | None, delete_all: bool,
                     now: str) -> Entity:
    """DELETE /entities/{id}/attrs/{attrId} with optional datasetId / deleteAll."""
    result = _structure(stored)
    if iri == SCOPE:
        if result.pop(SCOPE, None) is None:
            raise ResourceNotFound("The entity has no scope")
    elif not stored["attrs"].get(iri):
        raise ResourceNotFound(f"Attribute {iri} does not exist")
    elif delete_all:
        del result["attrs"][iri]
    elif not _remove(result, iri, dataset_id):
        raise ResourceNotFound(f"Attribute {iri} has no instance with that datasetId")
    result["modifiedAt"] = now
    return result
