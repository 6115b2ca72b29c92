"""Incoming payloads (normalized or concise NGSI-LD) into the internal entity form."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from smartcity.core.ngsild import geo
from smartcity.core.ngsild.context import TermMap
from smartcity.core.ngsild.errors import BadRequestData
from smartcity.core.ngsild.model import (
    ATTRIBUTE_TYPES,
    GEO_PROPERTY,
    JSON_PROPERTY,
    LANGUAGE_PROPERTY,
    LIST_PROPERTY,
    LIST_RELATIONSHIP,
    PROPERTY,
    RELATIONSHIP,
    SYSTEM_MEMBERS,
    VALUE_MEMBER,
    VOCAB_PROPERTY,
    Entity,
    Instance,
)

NULL = "urn:ngsi-ld:null"
GEOMETRY_TYPES = frozenset({"Point", "LineString", "Polygon", "MultiPoint", "MultiLineString",
                            "MultiPolygon", "GeometryCollection"})
# Core GeoProperties: a plain GeoJSON value under these names is a GeoProperty.
GEO_ATTRIBUTES = frozenset({"https://uri.etsi.org/ngsi-ld/location",
                            "https://uri.etsi.org/ngsi-ld/observationSpace",
                            "https://uri.etsi.org/ngsi-ld/operationSpace"})
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s<>\"{}|\\^`]+$")
# Characters the spec forbids in names (clause 4.6.2) and that break the query language.
_FORBIDDEN_NAME = re.compile(r"[<>\"'=;()\s\[\]\\]")
_SCOPE = re.compile(r"^/[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-]+)*$")
_VALUE_MEMBERS = frozenset(VALUE_MEMBER.values())
_IGNORED_MEMBERS = SYSTEM_MEMBERS | {"@context", "instanceId", "previousValue", "lang"}


def is_uri(value: Any) -> bool:
    return isinstance(value, str) and bool(_URI.match(value))


def check_entity_id(value: Any) -> str:
    if not is_uri(value):
        raise BadRequestData(f"Entity id must be a URI: {value!r}")
    return value


def check_name(name: Any, what: str = "Attribute name") -> str:
    if not isinstance(name, str) or not name or _FORBIDDEN_NAME.search(name):
        raise BadRequestData(f"{what} is not valid: {name!r}")
    return name


def check_datetime(value: Any, member: str) -> str:
    if not isinstance(value, str):
        raise BadRequestData(f"{member} must be a DateTime string")
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequestData(f"{member} is not a valid DateTime: {value!r}") from None
    return value


def expand_types(value: Any, terms: TermMap) -> list[str]:
    """Entity type(s) as a list of IRIs."""
    names = value if isinstance(value, list) else [value]
    if not names:
        raise BadRequestData("Entity type must not be empty")
    return list(dict.fromkeys(terms.expand(check_name(n, "Entity type")) for n in names))


def check_scopes(value: Any) -> list[str]:
    scopes = value if isinstance(value, list) else [value]
    for scope in scopes:
        if not isinstance(scope, str) or not _SCOPE.match(scope):
            raise BadRequestData(f"Invalid scope: {scope!r}")
    return list(dict.fromkeys(scopes))


def parse_entity(payload: Any, terms: TermMap, *, require_id: bool = True,
                 require_type: bool = True) -> Entity:
    """A whole entity from a request body, validated; no system attributes yet."""
    if not isinstance(payload, dict):
        raise BadRequestData("An entity must be a JSON object")
    entity: Entity = {"attrs": {}}
    if "id" in payload or require_id:
        entity["id"] = check_entity_id(payload.get("id"))
    if "type" in payload or require_type:
        if payload.get("type") is None:
            raise BadRequestData("Entity type is missing")
        entity["type"] = expand_types(payload["type"], terms)
    if payload.get("scope") is not None:
        entity["scope"] = check_scopes(payload["scope"])
    entity["attrs"] = parse_attributes(payload, terms)
    return entity


def parse_attributes(payload: Any, terms: TermMap, *, allow_null: bool = False
                     ) -> dict[str, list[Instance]]:
    """The attributes of a fragment (PATCH/POST attrs body), by expanded name.

    With ``allow_null`` (merge-patch), an attribute set to null is kept as ``None``
    and means "delete".
    """
    if not isinstance(payload, dict):
        raise BadRequestData("The body must be a JSON object")
    attrs: dict[str, list[Instance]] = {}
    for name, raw in payload.items():
        if name in ("id", "type", "scope", "@context") or name in _IGNORED_MEMBERS:
            continue
        iri = terms.expand(check_name(name))
        if allow_null and (raw is None or raw == NULL):
            attrs[iri] = None  # type: ignore[assignment]
            continue
        attrs[iri] = parse_attribute(raw, iri, terms, allow_null=allow_null)
    return attrs


def parse_attribute(raw: Any, iri: str, terms: TermMap, *, allow_null: bool = False
                    ) -> list[Instance]:
    """One attribute's instances (several when datasetIds are given)."""
    if isinstance(raw, list) and raw and all(_is_instance_like(i) for i in raw):
        instances = [parse_instance(i, iri, terms, allow_null=allow_null) for i in raw]
        seen: set[str | None] = set()
        for inst in instances:
            ds = inst.get("datasetId")
            if ds in seen:
                raise BadRequestData(f"Attribute {iri} has two instances with datasetId {ds}")
            seen.add(ds)
        return instances
    return [parse_instance(raw, iri, terms, allow_null=allow_null)]


def _is_instance_like(item: Any) -> bool:
    return isinstance(item, dict) and (item.get("type") in ATTRIBUTE_TYPES
                                       or bool(_VALUE_MEMBERS & item.keys()))


def _infer_kind(raw: dict[str, Any], iri: str) -> str:
    for kind, member in VALUE_MEMBER.items():
        if member in raw and kind not in (PROPERTY, GEO_PROPERTY):
            return kind
    if "value" in raw:
        value = raw["value"]
        if iri in GEO_ATTRIBUTES or _looks_geometry(value):
            return GEO_PROPERTY if _looks_geometry(value) else PROPERTY
        return PROPERTY
    return GEO_PROPERTY if _looks_geometry(raw) else ""


def _looks_geometry(value: Any) -> bool:
    return (isinstance(value, dict) and value.get("type") in GEOMETRY_TYPES
            and ("coordinates" in value or "geometries" in value))


def parse_instance(raw: Any, iri: str, terms: TermMap, *, allow_null: bool = False) -> Instance:
    """A single attribute instance, from normalized or concise form."""
    if not isinstance(raw, dict):
        if raw is None:
            raise BadRequestData(f"Attribute {terms.compact(iri)} must not be null")
        return {"type": PROPERTY, "value": raw}
    kind = raw.get("type")
    if kind is None:
        kind = _infer_kind(raw, iri)
        if kind == GEO_PROPERTY and "value" not in raw:
            return {"type": GEO_PROPERTY, "value": geo.validate_geometry(raw)}
        if not kind:
            return {"type": PROPERTY, "value": raw}
    elif kind not in ATTRIBUTE_TYPES:
        raise BadRequestData(f"Attribute {terms.compact(iri)} has an unknown type: {kind!r}")
    instance: Instance = {"type": kind}
    member = VALUE_MEMBER[kind]
    if member not in raw or raw[member] is None:
        raise BadRequestData(f"{kind} {terms.compact(iri)} needs a non-null '{member}'")
    instance[member] = _check_value(kind, raw[member], iri, terms)
    for key, val in raw.items():
        if key in ("type", member) or key in _IGNORED_MEMBERS:
            continue
        if key == "observedAt":
            instance[key] = check_datetime(val, key)
        elif key == "unitCode":
            if not isinstance(val, str):
                raise BadRequestData("unitCode must be a string")
            instance[key] = val
        elif key == "datasetId":
            if not is_uri(val):
                raise BadRequestData(f"datasetId must be a URI: {val!r}")
            instance[key] = val
        elif key == "objectType":
            if kind not in (RELATIONSHIP, LIST_RELATIONSHIP):
                raise BadRequestData("objectType is only allowed on relationships")
            types = val if isinstance(val, list) else [val]
            instance[key] = [terms.expand(check_name(t, "objectType")) for t in types]
        elif key in _VALUE_MEMBERS:
            raise BadRequestData(f"'{key}' is not allowed on a {kind}")
        else:
            sub_iri = terms.expand(check_name(key))
            if allow_null and (val is None or val == NULL):
                instance[sub_iri] = None
            else:
                instance[sub_iri] = parse_instance(val, sub_iri, terms, allow_null=allow_null)
    return instance


def _check_value(kind: str, value: Any, iri: str, terms: TermMap) -> Any:
    name = terms.compact(iri)
    if kind == GEO_PROPERTY:
        return geo.validate_geometry(value)
    if kind == RELATIONSHIP:
        objects = value if isinstance(value, list) else [value]
        if not objects or not all(is_uri(o) for o in objects):
            raise BadRequestData(f"Relationship {name} must point to a URI")
        return value
    if kind == LANGUAGE_PROPERTY:
        if not isinstance(value, dict) or not all(
                isinstance(v, str) or (isinstance(v, list) and all(isinstance(s, str) for s in v))
                for v in value.values()):
            raise BadRequestData(f"LanguageProperty {name} needs a languageMap of strings")
        return value
    if kind == VOCAB_PROPERTY:
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            return [terms.expand(v) for v in value]
        if isinstance(value, str):
            return terms.expand(value)
        raise BadRequestData(f"VocabProperty {name} needs a string vocab")
    if kind == LIST_PROPERTY:
        if not isinstance(value, list):
            raise BadRequestData(f"ListProperty {name} needs a valueList array")
        return value
    if kind == LIST_RELATIONSHIP:
        if not isinstance(value, list):
            raise BadRequestData(f"ListRelationship {name} needs an objectList array")
        objects = [o.get("object") if isinstance(o, dict) else o for o in value]
        if not all(is_uri(o) for o in objects):
            raise BadRequestData(f"ListRelationship {name} must list URIs")
        return objects
    if kind == JSON_PROPERTY:
        if not isinstance(value, dict | list):
            raise BadRequestData(f"JsonProperty {name} needs a JSON object or array")
        return value
    if kind == PROPERTY and isinstance(value, dict) and value.get("@type") == "DateTime":
        check_datetime(value.get("@value"), name)
    return value
