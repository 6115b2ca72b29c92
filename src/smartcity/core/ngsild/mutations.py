"""Pure functions that apply NGSI-LD write operations to internal entities.

Each takes the stored entity (never modified) and returns the new one, so a
failed operation leaves nothing half-applied.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from smartcity.core.ngsild.errors import ResourceNotFound
from smartcity.core.ngsild.model import RESERVED_MEMBERS, Entity, Instance


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


def new_entity(entity: Entity, now: str) -> Entity:
    result = copy.deepcopy(entity)
    result["createdAt"] = result["modifiedAt"] = now
    for instances in result["attrs"].values():
        for inst in instances:
            stamp(inst, now)
    return result


def replace_entity(stored: Entity, entity: Entity, now: str) -> Entity:
    result = new_entity(entity, now)
    result["createdAt"] = stored["createdAt"]
    result["id"] = stored["id"]
    return result


def _find(instances: list[Instance], dataset_id: str | None) -> int | None:
    for index, inst in enumerate(instances):
        if inst.get("datasetId") == dataset_id:
            return index
    return None


def append_attributes(stored: Entity, attrs: dict[str, list[Instance]], now: str,
                      *, overwrite: bool = True) -> tuple[Entity, AttrOutcome]:
    """POST /entities/{id}/attrs: add attributes, replacing existing ones unless told not to."""
    result = copy.deepcopy(stored)
    outcome = AttrOutcome()
    for iri, instances in attrs.items():
        current = result["attrs"].setdefault(iri, [])
        changed = False
        for inst in instances:
            index = _find(current, inst.get("datasetId"))
            if index is None:
                current.append(stamp(copy.deepcopy(inst), now))
                changed = True
            elif overwrite:
                current[index] = stamp(copy.deepcopy(inst), now, current[index].get("createdAt"))
                changed = True
        if changed:
            outcome.updated.append(iri)
        else:
            outcome.not_updated.append((iri, "Attribute exists and noOverwrite was asked"))
    if outcome.updated:
        result["modifiedAt"] = now
    return result, outcome


def update_attributes(stored: Entity, attrs: dict[str, list[Instance]], now: str
                      ) -> tuple[Entity, AttrOutcome]:
    """PATCH /entities/{id}/attrs: replace existing attribute instances, skip unknown ones."""
    result = copy.deepcopy(stored)
    outcome = AttrOutcome()
    for iri, instances in attrs.items():
        current = result["attrs"].get(iri)
        hits = 0
        for inst in instances:
            index = _find(current, inst.get("datasetId")) if current else None
            if index is None:
                continue
            merged = merge_instance(current[index], inst, now) \
                if inst.get("type") == current[index].get("type") \
                else stamp(copy.deepcopy(inst), now, current[index].get("createdAt"))
            current[index] = merged
            hits += 1
        if hits:
            outcome.updated.append(iri)
        else:
            outcome.not_updated.append((iri, "Attribute (or its datasetId) does not exist"))
    if outcome.updated:
        result["modifiedAt"] = now
    return result, outcome


def merge_instance(current: Instance, fragment: Instance, now: str) -> Instance:
    """Merge an attribute fragment into an instance; a None sub-attribute deletes it."""
    merged = copy.deepcopy(current)
    for key, val in fragment.items():
        if key in ("createdAt", "modifiedAt"):
            continue
        if val is None:
            merged.pop(key, None)
        elif key not in RESERVED_MEMBERS and isinstance(merged.get(key), dict) \
                and isinstance(val, dict):
            merged[key] = merge_instance(merged[key], val, now)
        elif key not in RESERVED_MEMBERS:
            merged[key] = stamp(copy.deepcopy(val), now)
        else:
            merged[key] = copy.deepcopy(val)
    merged["modifiedAt"] = now
    return merged


def partial_update(stored: Entity, iri: str, fragment: list[Instance], now: str) -> Entity:
    """PATCH /entities/{id}/attrs/{attrId}: merge the fragment into the named instance."""
    current = stored["attrs"].get(iri)
    if not current:
        raise ResourceNotFound(f"Attribute {iri} does not exist")
    result = copy.deepcopy(stored)
    for inst in fragment:
        index = _find(result["attrs"][iri], inst.get("datasetId"))
        if index is None:
            raise ResourceNotFound(f"Attribute {iri} has no instance with that datasetId")
        result["attrs"][iri][index] = merge_instance(result["attrs"][iri][index], inst, now)
    result["modifiedAt"] = now
    return result


def replace_attribute(stored: Entity, iri: str, instances: list[Instance], now: str) -> Entity:
    """PUT /entities/{id}/attrs/{attrId}: the attribute instance is replaced whole."""
    current = stored["attrs"].get(iri)
    if not current:
        raise ResourceNotFound(f"Attribute {iri} does not exist")
    result = copy.deepcopy(stored)
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
    result = copy.deepcopy(stored)
    if "type" in patch:
        result["type"] = list(dict.fromkeys([*result["type"], *patch["type"]]))
    if "scope" in patch:
        result["scope"] = patch["scope"]
    for iri, instances in patch["attrs"].items():
        if instances is None:
            result["attrs"].pop(iri, None)
            continue
        current = result["attrs"].setdefault(iri, [])
        for inst in instances:
            index = _find(current, inst.get("datasetId"))
            if index is None:
                current.append(stamp(_drop_nulls(inst), now))
            elif inst.get("type") == current[index].get("type"):
                current[index] = merge_instance(current[index], inst, now)
            else:
                current[index] = stamp(_drop_nulls(inst), now, current[index].get("createdAt"))
        if not current:
            result["attrs"].pop(iri)
    result["modifiedAt"] = now
    return result


def _drop_nulls(instance: Instance) -> Instance:
    return {k: copy.deepcopy(v) for k, v in instance.items() if v is not None}


def delete_attribute(stored: Entity, iri: str, dataset_id: str | None, delete_all: bool,
                     now: str) -> Entity:
    """DELETE /entities/{id}/attrs/{attrId} with optional datasetId / deleteAll."""
    current = stored["attrs"].get(iri)
    if not current:
        raise ResourceNotFound(f"Attribute {iri} does not exist")
    result = copy.deepcopy(stored)
    if delete_all:
        del result["attrs"][iri]
    else:
        index = _find(current, dataset_id)
        if index is None:
            raise ResourceNotFound(f"Attribute {iri} has no instance with that datasetId")
        del result["attrs"][iri][index]
        if not result["attrs"][iri]:
            del result["attrs"][iri]
    result["modifiedAt"] = now
    return result

