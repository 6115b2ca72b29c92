"""The internal entity form out to clients: normalized, concise or keyValues, compacted."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from smartcity.core.ngsild.context import TermMap
from smartcity.core.ngsild.model import (
    GEO_PROPERTY,
    JSON_PROPERTY,
    LANGUAGE_PROPERTY,
    LIST_RELATIONSHIP,
    PROPERTY,
    RELATIONSHIP,
    RESERVED_MEMBERS,
    SYSTEM_MEMBERS,
    VALUE_MEMBER,
    VOCAB_PROPERTY,
    Entity,
    Instance,
)
from smartcity.core.ngsild.projection import Projection

NORMALIZED, CONCISE, KEY_VALUES = "normalized", "concise", "keyValues"


@dataclass(frozen=True)
class View:
    """How an entity is shown: format, system attributes, selection, language, joins.

    ``pick`` and ``omit`` are projections with expanded names (``id``, ``type`` and
    ``scope`` stay as they are); a nested projection applies to the entities the
    relationship of that name links to, when ``join`` asks for them.
    """

    format: str = NORMALIZED
    sys_attrs: bool = False
    attrs: frozenset[str] | None = None  # expanded names; None = all
    pick: Projection | None = None
    omit: Projection | None = None
    lang: str | None = None
    dataset_ids: frozenset[str] | None = None  # '@none' stands for the default instance
    join: str | None = None  # 'inline' or 'flat'
    join_level: int = 1

    def keeps(self, iri: str) -> bool:
        if self.attrs is not None and iri not in self.attrs:
            return False
        return self.keeps_member(iri)

    def keeps_member(self, member: str) -> bool:
        if self.pick is not None and member not in self.pick:
            return False
        return not (self.omit and member in self.omit and self.omit[member] is None)

    def linked(self, iri: str) -> View:
        """The view of the entities a relationship links to, one join level down."""
        pick = self.pick.get(iri) if self.pick is not None else None
        omit = self.omit.get(iri) if self.omit else None
        return replace(self, attrs=None, pick=pick, omit=omit, join_level=self.join_level - 1)

    def follows(self) -> bool:
        return self.join is not None and self.join_level > 0


Linked = dict[str, Entity]
"""Entities reachable through relationships, by id (see ``linked.resolve``)."""


def render_entity(entity: Entity, terms: TermMap, view: View,
                  linked: Linked | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if view.keeps_member("id"):
        out["id"] = entity["id"]
    if view.keeps_member("type"):
        types = [terms.compact(t) for t in entity["type"]]
        out["type"] = types[0] if len(types) == 1 else types
    if entity.get("scope") and view.keeps_member("scope"):
        scopes = entity["scope"]
        out["scope"] = scopes[0] if len(scopes) == 1 else scopes
    if view.sys_attrs and view.format != KEY_VALUES:
        for member in ("createdAt", "modifiedAt", "deletedAt", "expiresAt"):
            if member in entity:
                out[member] = entity[member]
    inline = linked if view.join == "inline" and view.follows() else None
    for iri, instances in entity["attrs"].items():
        if not view.keeps(iri):
            continue
        if view.dataset_ids is not None:
            instances = [i for i in instances
                         if i.get("datasetId", "@none") in view.dataset_ids]
        if not instances:
            continue
        rendered = [render_instance(i, terms, view) for i in instances]
        if view.format == KEY_VALUES and len(instances) > 1:
            # Several datasetIds in the simplified form (clause 4.5.4).
            out[terms.compact(iri)] = {"dataset": {
                i.get("datasetId", "@none"): r for i, r in zip(instances, rendered,
                                                              strict=True)}}
            continue
        if inline is not None:
            rendered = [_inline(r, i, terms, view.linked(iri), inline)
                        for r, i in zip(rendered, instances, strict=True)]
        out[terms.compact(iri)] = rendered[0] if len(rendered) == 1 else rendered
    return out


def _inline(rendered: Any, instance: Instance, terms: TermMap, view: View,
            linked: Linked) -> Any:
    """Put the entity a relationship links to inside it (join=inline)."""
    if instance.get("type") != RELATIONSHIP:
        return rendered
    objects = instance.get("object")
    several = isinstance(objects, list)
    targets = [linked[o] for o in (objects if several else [objects])
               if isinstance(o, str) and o in linked]
    if not targets:
        return rendered
    entities = [render_entity(t, terms, view, linked) for t in targets]
    entity: Any = entities if several else entities[0]
    if view.format == KEY_VALUES:
        return entity
    return {**rendered, "entity": entity}


def render_instance(instance: Instance, terms: TermMap, view: View) -> Any:
    kind = instance.get("type", PROPERTY)
    if view.format == KEY_VALUES:
        return simple_value(instance, terms, view.lang)
    body: dict[str, Any] = {}
    if view.format != CONCISE:
        body["type"] = kind
    member = VALUE_MEMBER.get(kind, "value")
    value = instance.get(member)
    if kind == LANGUAGE_PROPERTY and view.lang is not None:
        if view.format != CONCISE:
            body["type"] = PROPERTY
        body["value"], body["lang"] = pick_language(value, view.lang)
    elif kind == VOCAB_PROPERTY:
        body[member] = _compact_vocab(value, terms)
    elif kind == LIST_RELATIONSHIP:
        body[member] = [{"object": o} for o in value] if view.format == NORMALIZED else value
    else:
        body[member] = value
    for key, val in instance.items():
        if key in ("type", member):
            continue
        if key in SYSTEM_MEMBERS:
            if view.sys_attrs:
                body[key] = val
        elif key in ("entityTypeSealed", "valueType"):
            body[key] = terms.compact(val)
        elif key == "objectType":
            body[key] = [terms.compact(t) for t in val] if len(val) > 1 else terms.compact(val[0])
        elif key == "previousVocab":
            body[key] = _compact_vocab(val, terms)
        elif key.startswith("previous") or key in RESERVED_MEMBERS:
            body[key] = val
        else:
            body[terms.compact(key)] = render_instance(val, terms, view)
    if view.format == CONCISE and len(body) == 1 and kind in (PROPERTY, GEO_PROPERTY) \
            and "value" in body and not _looks_like_member_object(body["value"]):
        return body["value"]
    return body


def _looks_like_member_object(value: Any) -> bool:
    # A bare dict value would be read back as an attribute when it has these keys.
    return isinstance(value, dict) and bool(value.keys() & {
        "value", "object", "languageMap", "vocab", "valueList", "objectList", "json", "type"}) \
        and value.get("type") not in ("Point", "LineString", "Polygon", "MultiPoint",
                                      "MultiLineString", "MultiPolygon", "GeometryCollection")


def simple_value(instance: Instance, terms: TermMap, lang: str | None = None) -> Any:
    """The keyValues (simplified) rendering of one instance."""
    kind = instance.get("type", PROPERTY)
    value = instance.get(VALUE_MEMBER.get(kind, "value"))
    if kind == LANGUAGE_PROPERTY:
        return pick_language(value, lang)[0] if lang is not None else {"languageMap": value}
    if kind == VOCAB_PROPERTY:
        return {"vocab": _compact_vocab(value, terms)}
    if kind == JSON_PROPERTY:
        return {"json": value}
    return value


def _compact_vocab(value: Any, terms: TermMap) -> Any:
    if isinstance(value, list):
        return [terms.compact(v) for v in value]
    return terms.compact(value)


def _by_weight(lang: str) -> list[str]:
    """Language tags of a lang parameter, highest q first, then in the order given."""
    tags: list[tuple[float, int, str]] = []
    for index, part in enumerate(lang.split(",")):
        tag, _, param = part.partition(";")
        weight = 1.0
        if param.strip().startswith("q="):
            try:
                weight = float(param.strip()[2:])
            except ValueError:
                weight = 0.0
        if tag.strip() and weight > 0:
            tags.append((-weight, index, tag.strip()))
    return [tag for _, _, tag in sorted(tags)]


def pick_language(language_map: dict[str, Any], lang: str) -> tuple[Any, str]:
    """The string for the best matching language (clause 4.15): exact, '*', '@none', first."""
    if not language_map:
        return None, lang
    for wanted in _by_weight(lang):
        if wanted == "*":
            break
        if wanted in language_map:
            return language_map[wanted], wanted
        for tag, text in language_map.items():
            if tag.split("-")[0] == wanted.split("-")[0]:
                return text, tag
    if "@none" in language_map:
        return language_map["@none"], "@none"
    tag = next(iter(language_map))
    return language_map[tag], tag
