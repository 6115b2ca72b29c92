"""Temporal representations of an entity (clause 4.5.7-4.5.9, 4.5.19): normalized
(every instance, with its instanceId), simplified (``temporalValues``: [value, time]
pairs) and aggregated ([value, period start, period end] triples per method)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from smartcity.core.ngsild.context import TermMap
from smartcity.core.ngsild.history_storage import StoredInstance
from smartcity.core.ngsild.instants import format_instant
from smartcity.core.ngsild.model import (
    GEO_PROPERTY,
    JSON_PROPERTY,
    LANGUAGE_PROPERTY,
    LIST_PROPERTY,
    LIST_RELATIONSHIP,
    PROPERTY,
    RELATIONSHIP,
    VALUE_MEMBER,
    VOCAB_PROPERTY,
    Instance,
)
from smartcity.core.ngsild.render import NORMALIZED, View, render_instance
from smartcity.core.ngsild.temporal import TemporalEntity, instance_id
from smartcity.core.ngsild.temporal_query import TemporalQuery

# The member holding [value, time] pairs in the simplified form, per attribute type.
PAIRS_MEMBER = {PROPERTY: "values", GEO_PROPERTY: "values", RELATIONSHIP: "objects",
                LIST_PROPERTY: "valueLists", LIST_RELATIONSHIP: "objectLists",
                LANGUAGE_PROPERTY: "languageMaps", JSON_PROPERTY: "jsons",
                VOCAB_PROPERTY: "vocabs"}
# Types whose value goes into the pair wrapped in an object named by its member.
_WRAPPED = frozenset({LANGUAGE_PROPERTY, JSON_PROPERTY, VOCAB_PROPERTY})
_PLAIN = View(format=NORMALIZED)
_READING = {"type", "value", "observedAt"}

Group = tuple[str, str]  # attribute IRI, datasetId ("" for the default instance)


def render_temporal(entity: TemporalEntity, terms: TermMap, temporal: TemporalQuery,
                    view: View) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if view.keeps_member("id"):
        out["id"] = entity.head.entity_id
    if view.keeps_member("type") and entity.head.types:
        types = [terms.compact(t) for t in entity.head.types]
        out["type"] = types[0] if len(types) == 1 else types
    if temporal.aggregated:
        _aggregated(out, entity, terms, temporal, view)
        return out
    groups: dict[Group, list[StoredInstance]] = {}
    kinds: dict[Group, str] = {}
    for inst in entity.instances:
        groups.setdefault((inst.attr, inst.dataset_id), []).append(inst)
    for attr, dataset, kind in entity.emptied:
        groups[(attr, dataset)] = []
        kinds[(attr, dataset)] = kind
    if temporal.representation == "temporalValues":
        pairs = _pairs(temporal)
        _by_attribute(out, groups, view, terms, lambda group, items: _simplified(
            items[0].body.get("type", PROPERTY) if items else kinds[group], group[1], items,
            terms, pairs))
        return out
    for (attr, _dataset), items in groups.items():
        if view.keeps_member(attr):
            rendered = out.setdefault(terms.compact(attr), [])
            rendered.extend(_normalized(i, terms, temporal.sys_attrs) for i in items)
    return out


def _by_attribute(out: dict[str, Any], groups: dict[Group, Any], view: View, terms: TermMap,
                  render: Callable[[Group, Any], dict[str, Any]]) -> None:
    """One object per datasetId; an attribute with one is that object, else a list."""
    by_attr: dict[str, list[dict[str, Any]]] = {}
    for group, items in groups.items():
        if view.keeps_member(group[0]):
            by_attr.setdefault(group[0], []).append(render(group, items))
    for attr, objects in by_attr.items():
        out[terms.compact(attr)] = objects[0] if len(objects) == 1 else objects


def _normalized(inst: StoredInstance, terms: TermMap, sys_attrs: bool) -> dict[str, Any]:
    if inst.body.keys() == _READING and inst.body["type"] == PROPERTY and not inst.dataset_id:
        # Most of a long history: a plain reading, which renders as it is stored.
        body = dict(inst.body)
    else:
        body = render_instance(inst.body, terms, _PLAIN)
    if inst.dataset_id:
        body["datasetId"] = inst.dataset_id
    if "deletedAt" in inst.body:
        body["deletedAt"] = inst.body["deletedAt"]
    if sys_attrs:
        body["createdAt"] = format_instant(inst.created)
        body["modifiedAt"] = format_instant(inst.modified)
        if "expiresAt" in inst.body:
            body["expiresAt"] = inst.body["expiresAt"]
    body["instanceId"] = instance_id(inst.instance_id)
    return body


def _pairs(temporal: TemporalQuery) -> Callable[[StoredInstance], str]:
    """The time written in a [value, time] pair: the one the query is about."""
    prop = temporal.window.timeproperty

    def text(inst: StoredInstance) -> str:
        given = inst.body.get(prop)
        return given if isinstance(given, str) else format_instant(inst.time)
    return text


def _simplified(kind: str, dataset: str, items: list[StoredInstance], terms: TermMap,
                time_of: Callable[[StoredInstance], str]) -> dict[str, Any]:
    obj: dict[str, Any] = {"type": kind}
    if dataset:
        obj["datasetId"] = dataset
    obj[PAIRS_MEMBER.get(kind, "values")] = [[_pair_value(kind, i.body, terms), time_of(i)]
                                             for i in items]
    return obj


def _pair_value(kind: str, body: Instance, terms: TermMap) -> Any:
    member = VALUE_MEMBER.get(kind, "value")
    value = body.get(member)
    if kind == VOCAB_PROPERTY:
        value = [terms.compact(v) for v in value] if isinstance(value, list) else \
            terms.compact(value) if isinstance(value, str) else value
    return {member: value} if kind in _WRAPPED else value


def _aggregated(out: dict[str, Any], entity: TemporalEntity, terms: TermMap,
                temporal: TemporalQuery, view: View) -> None:
    groups: dict[Group, list[Any]] = {}
    for bucket in entity.buckets:
        groups.setdefault((bucket.attr, bucket.dataset_id), []).append(bucket)
    whole = temporal.period.zero

    def render(group: Group, buckets: list[Any]) -> dict[str, Any]:
        obj: dict[str, Any] = {"type": PROPERTY}
        if group[1]:
            obj["datasetId"] = group[1]
        for method in temporal.methods:
            obj[method] = [[b.values.get(method), format_instant(b.start),
                            format_instant(entity.nominal_end if whole and
                                           entity.nominal_end is not None else b.end)]
                           for b in buckets]
        return obj
    _by_attribute(out, groups, view, terms, render)
