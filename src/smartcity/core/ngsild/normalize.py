"""Incoming payloads (normalized or concise NGSI-LD) into the internal entity form.

Creation is strict: NGSI-LD null (``urn:ngsi-ld:null``) is refused anywhere. Update
and merge fragments (``for_update``) accept it: an attribute, instance or sub-attribute
set to null comes out marked with ``DELETE`` so the mutation removes it.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Any

import orjson

from smartcity.core.ngsild import geo
from smartcity.core.ngsild.context import TermMap
from smartcity.core.ngsild.errors import BadRequestData, InvalidRequest
from smartcity.core.ngsild.model import (
    ATTRIBUTE_TYPES,
    DELETE,
    GEO_PROPERTY,
    JSON_PROPERTY,
    LANGUAGE_PROPERTY,
    LIST_PROPERTY,
    LIST_RELATIONSHIP,
    PROPERTY,
    RELATIONSHIP,
    SEALED_MEMBERS,
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
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s<>\"{}|\\^`\x00-\x1f\x7f]+$")
# Characters the spec forbids in names (clause 4.6.2) and that break the query language.
_FORBIDDEN_NAME = re.compile(r"[<>\"'=;()\s\[\]\\]")
_SCOPE = re.compile(r"^/[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-]+)*$")
_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?Z$")
_VALUE_MEMBERS = frozenset(VALUE_MEMBER.values())
# Entity members that are not attributes and that the server sets itself.
_IGNORED_MEMBERS = (SYSTEM_MEMBERS - {"expiresAt"}) | {"@context"}
# Core terms that can never name an attribute (they are members of attributes).
_RESERVED_NAMES = frozenset({"datasetId", "instanceId", "observedAt", "unitCode", "objectType",
                             "lang", "value", "object", "languageMap", "vocab", "valueList",
                             "objectList", "json", "previousValue", "previousObject",
                             "previousLanguageMap", "previousVocab", "previousValueList",
                             "previousObjectList", "previousJson", "@value", "@language"})
_OUTPUT_ONLY = frozenset({"previousValue", "previousObject", "previousLanguageMap",
                          "previousVocab", "previousValueList", "previousObjectList",
                          "previousJson", "instanceId"})
_UNIT_KINDS = frozenset({PROPERTY, LIST_PROPERTY})
PROOF = "https://uri.etsi.org/ngsi-ld/ngsildproof"
LANG_STRING = "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString"
# Invisible or ambiguous characters that make two different ids look the same.
_INVISIBLE = frozenset({"\u115f", "\u1160", "\u3164", "\uffa0", "\u2800"})


def is_uri(value: Any) -> bool:
    return isinstance(value, str) and bool(_URI.match(value))


_PRINTABLE_ASCII = re.compile(r"^[\x21-\x7e]*$")


def _visible(text: str) -> bool:
    if _PRINTABLE_ASCII.match(text):
        return True
    for ch in text:
        category = unicodedata.category(ch)
        if category in ("Cc", "Cf", "Cn", "Co", "Cs", "Zl", "Zp") or ch in _INVISIBLE:
            return False
        code = ord(ch)
        if 0xFE00 <= code <= 0xFE0F or 0xE0100 <= code <= 0xE01EF or (code & 0xFFFE) == 0xFFFE:
            return False
    return True


def check_entity_id(value: Any) -> str:
    if not is_uri(value) or value == NULL or not _visible(value):
        raise BadRequestData(f"Entity id must be a URI: {value!r}")
    return value


def check_name(name: Any, what: str = "Attribute name") -> str:
    if not isinstance(name, str) or not _valid_name(name):
        raise BadRequestData(f"{what} is not valid: {name!r}")
    return name


@lru_cache(maxsize=4096)
def _valid_name(name: str) -> bool:
    return bool(name) and not _FORBIDDEN_NAME.search(name) and _visible(name)


def check_attribute_name(name: Any, terms: TermMap) -> str:
    check_name(name)
    if name in _RESERVED_NAMES or name in terms.keywords or name.startswith("@"):
        raise BadRequestData(f"{name!r} is a reserved NGSI-LD term, not an attribute name")
    return name


def check_datetime(value: Any, member: str) -> str:
    """A DateTime given in UTC with the 'Z' designator (clause 4.6.3)."""
    if not isinstance(value, str) or not _UTC.match(value):
        raise BadRequestData(f"{member} must be a UTC DateTime ending in 'Z': {value!r}")
    return value


def expand_types(value: Any, terms: TermMap) -> list[str]:
    """Entity type(s) as a list of IRIs."""
    names = value if isinstance(value, list) else [value]
    if not names:
        raise BadRequestData("Entity type must not be empty")
    iris = []
    for name in names:
        check_name(name, "Entity type")
        if name in terms.keywords or name == NULL or (":" not in name and not (
                name[0].isalpha() or name[0] == "_")):
            raise BadRequestData(f"Entity type is not valid: {name!r}")
        iris.append(terms.expand(name))
    return list(dict.fromkeys(iris))


def check_scopes(value: Any) -> list[str]:
    scopes = value if isinstance(value, list) else [value]
    for scope in scopes:
        if not isinstance(scope, str) or not _SCOPE.match(scope):
            raise BadRequestData(f"Invalid scope: {scope!r}")
    return list(dict.fromkeys(scopes))


def _aliased(payload: dict[str, Any]) -> dict[str, Any]:
    """Accept the JSON-LD keywords @id and @type for id and type (clause 4.4)."""
    if "@id" not in payload and "@type" not in payload:
        return payload
    out = dict(payload)
    for keyword, member in (("@id", "id"), ("@type", "type")):
        if keyword in out:
            if member in out:
                raise BadRequestData(f"Both {keyword} and {member} are given")
            out[member] = out.pop(keyword)
    return out


def parse_entity(payload: Any, terms: TermMap, *, require_id: bool = True,
                 require_type: bool = True, for_update: bool = False,
                 temporal: bool = False) -> Entity:
    """A whole entity (or, with ``for_update``, a fragment) from a request body; a
    ``temporal`` representation may hold many instances per datasetId."""
    if not isinstance(payload, dict):
        raise InvalidRequest("An entity must be a JSON object")
    payload = _aliased(payload)
    entity: Entity = {"attrs": {}}
    if "id" in payload or require_id:
        entity["id"] = check_entity_id(payload.get("id"))
    if "type" in payload or require_type:
        if payload.get("type") is None:
            raise BadRequestData("Entity type is missing")
        entity["type"] = expand_types(payload["type"], terms)
    if "scope" in payload:
        scope = payload["scope"]
        if for_update and scope in (None, NULL):
            entity["scope"] = None
        elif temporal and (_is_instance_like(scope) or (
                isinstance(scope, list) and scope
                and all(_is_instance_like(s) for s in scope))):
            entity["attrs"]["scope"] = _scope_instances(scope)
        elif scope is not None:
            entity["scope"] = check_scopes(scope)
    if "expiresAt" in payload:
        expires = payload["expiresAt"]
        # In an update fragment NGSI-LD null removes it: the entity no longer expires.
        entity["expiresAt"] = None if for_update and expires == NULL else \
            check_datetime(expires, "expiresAt")
    entity["attrs"].update(parse_attributes(payload, terms, for_update=for_update,
                                            temporal=temporal))
    return entity


def _scope_instances(raw: Any) -> list[Instance]:
    """The history of an entity's scope, given as Property instances (temporal form)."""
    instances = []
    for item in raw if isinstance(raw, list) else [raw]:
        value = item.get("value")
        instance: Instance = {"type": PROPERTY,
                              "value": value if value == [] else check_scopes(value)}
        if "observedAt" in item:
            instance["observedAt"] = check_datetime(item["observedAt"], "observedAt")
        instances.append(instance)
    return instances


def parse_attributes(payload: Any, terms: TermMap, *, for_update: bool = False,
                     temporal: bool = False) -> dict[str, list[Instance]]:
    """The attributes of a body or fragment, by expanded name."""
    if not isinstance(payload, dict):
        raise BadRequestData("The body must be a JSON object")
    attrs: dict[str, list[Instance]] = {}
    for name, raw in payload.items():
        if name in ("id", "type", "scope", "@id", "@type", "expiresAt") \
                or name in _IGNORED_MEMBERS:
            continue
        iri = terms.expand(check_attribute_name(name, terms))
        attrs[iri] = parse_attribute(raw, iri, terms, for_update=for_update,
                                     temporal=temporal)
    return attrs


def parse_attribute(raw: Any, iri: str, terms: TermMap, *, for_update: bool = False,
                    temporal: bool = False) -> list[Instance]:
    """One attribute's instances (several when datasetIds are given, or any number in a
    ``temporal`` representation)."""
    if temporal and isinstance(raw, list):
        if not raw:
            raise BadRequestData(f"Attribute {terms.compact(iri)} has no instance")
        return [parse_instance(i, iri, terms, temporal=True) for i in raw]
    if isinstance(raw, list) and raw and all(_is_instance_like(i) for i in raw):
        instances = [parse_instance(i, iri, terms, for_update=for_update) for i in raw]
        seen: set[str | None] = set()
        for inst in instances:
            ds = inst.get("datasetId")
            if ds in seen:
                raise BadRequestData(f"Attribute {terms.compact(iri)} has two instances "
                                     f"with datasetId {ds}")
            seen.add(ds)
        return instances
    return [parse_instance(raw, iri, terms, for_update=for_update, temporal=temporal)]


def _is_instance_like(item: Any) -> bool:
    return isinstance(item, dict) and (item.get("type") in ATTRIBUTE_TYPES
                                       or bool(_VALUE_MEMBERS & item.keys()))


def _infer_kind(raw: dict[str, Any]) -> str:
    for kind, member in VALUE_MEMBER.items():
        if member in raw and kind not in (PROPERTY, GEO_PROPERTY):
            return kind
    if "value" in raw:
        return GEO_PROPERTY if _looks_geometry(raw["value"]) else PROPERTY
    return GEO_PROPERTY if _looks_geometry(raw) else ""


def _looks_geometry(value: Any) -> bool:
    return (isinstance(value, dict) and value.get("type") in GEOMETRY_TYPES
            and ("coordinates" in value or "geometries" in value))


def _is_null(value: Any) -> bool:
    return value is None or value == NULL


def parse_instance(raw: Any, iri: str, terms: TermMap, *, for_update: bool = False,
                   temporal: bool = False) -> Instance:
    """A single attribute instance, from normalized or concise form; in a ``temporal``
    representation NGSI-LD null is a value (an attribute deleted at that time)."""
    name = terms.compact(iri)
    if not isinstance(raw, dict):
        if _is_null(raw):
            if for_update:
                return {"type": PROPERTY, DELETE: True}
            raise BadRequestData(f"Attribute {name} must not be null")
        return {"type": PROPERTY, "value": _no_nulls(raw, name)}
    if "@context" in raw:
        raise BadRequestData(f"Attribute {name} must not carry its own @context")
    kind = raw.get("type")
    if kind in GEOMETRY_TYPES and _looks_geometry(raw):
        kind = None  # concise GeoProperty: the GeoJSON geometry itself
    if kind is None:
        kind = _infer_kind(raw)
        if kind == GEO_PROPERTY and "value" not in raw:
            return {"type": GEO_PROPERTY, "value": check_geometry(raw, name)}
        if not kind:
            return {"type": PROPERTY, "value": _no_nulls(raw, name)}
    elif kind not in ATTRIBUTE_TYPES:
        raise BadRequestData(f"Attribute {name} has an unknown type: {kind!r}")
    if kind == PROPERTY and iri in GEO_ATTRIBUTES:
        raise BadRequestData(f"{name} is a GeoProperty, not a Property")
    instance: Instance = {"type": kind}
    member = VALUE_MEMBER[kind]
    if member not in raw:
        raise BadRequestData(f"{kind} {name} needs '{member}'")
    value = raw[member]
    if value is None:
        raise BadRequestData(f"{kind} {name}: '{member}' is JSON null; NGSI-LD null is "
                             f"'{NULL}'")
    if temporal and value == NULL:
        instance[member] = value
    elif _is_null(value) or (kind == LANGUAGE_PROPERTY and isinstance(value, dict)
                             and value and all(_is_null(v) for v in value.values())):
        if not for_update:
            raise BadRequestData(f"{kind} {name} must not be null when it is created")
        instance[DELETE] = True
    else:
        instance[member] = _check_value(kind, value, name, terms, for_update)
    for key, val in raw.items():
        if key in ("type", member) or key in _IGNORED_MEMBERS:
            continue
        if key in _OUTPUT_ONLY:
            raise BadRequestData(f"{key} is only given by the server, never by a client")
        if key in ("observedAt", "expiresAt"):
            instance[key] = check_datetime(val, key)
        elif key == "unitCode":
            if kind not in _UNIT_KINDS:
                raise BadRequestData(f"unitCode is not allowed on a {kind}")
            if not isinstance(val, str) or not val:
                raise BadRequestData("unitCode must be a non-empty string")
            instance[key] = val
        elif key == "datasetId":
            if val == "@none":
                continue
            if not is_uri(val) or val == NULL:
                raise BadRequestData(f"datasetId must be a URI: {val!r}")
            instance[key] = val
        elif key == "objectType":
            if kind not in (RELATIONSHIP, LIST_RELATIONSHIP):
                raise BadRequestData("objectType is only allowed on relationships")
            types = val if isinstance(val, list) else [val]
            instance[key] = [terms.expand(check_name(t, "objectType")) for t in types]
        elif key == "lang" and kind == PROPERTY:
            instance[key] = val
        elif key == "valueType":
            instance[key] = _value_type(val, kind, terms)
        elif key in SEALED_MEMBERS:
            if iri != PROOF:
                raise BadRequestData(f"{key} is only allowed inside ngsildproof")
            if not isinstance(val, str) or not val:
                raise BadRequestData(f"{key} must be a string")
            instance[key] = terms.expand(val) if key == "entityTypeSealed" else val
        elif key in _VALUE_MEMBERS or key in ("lang",):
            raise BadRequestData(f"'{key}' is not allowed on a {kind}")
        else:
            sub_iri = terms.expand(check_attribute_name(key, terms))
            instance[sub_iri] = parse_instance(val, sub_iri, terms, for_update=for_update)
    return instance


def _value_type(value: Any, kind: str, terms: TermMap) -> str:
    if not isinstance(value, str) or not value:
        raise BadRequestData("valueType must be a string")
    expanded = terms.expand(value)
    if kind == LANGUAGE_PROPERTY and value != "LangString" and expanded != LANG_STRING:
        raise BadRequestData("The valueType of a LanguageProperty is LangString")
    return expanded


def check_no_nulls(instances: list[Instance], name: str) -> None:
    """Refuse NGSI-LD null inside compound values (a partial update may not remove keys)."""
    for inst in instances:
        if "value" in inst:
            _no_nulls(inst["value"], name)


def _no_nulls(value: Any, name: str) -> Any:
    """Refuse NGSI-LD null inside a compound value (clause 5.5.4)."""
    if _is_null(value):
        raise BadRequestData(f"Attribute {name} holds a null inside its value")
    if isinstance(value, dict):
        for item in value.values():
            _no_nulls(item, name)
    elif isinstance(value, list):
        for item in value:
            _no_nulls(item, name)
    return value


def check_geometry(value: Any, name: str) -> dict[str, Any]:
    """A GeoProperty value: a GeoJSON geometry object, or its JSON string encoding."""
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise BadRequestData(f"GeoProperty {name} is not a GeoJSON geometry") from None
    if isinstance(value, dict) and value.get("type") == "GeometryCollection":
        raise BadRequestData(f"GeoProperty {name}: GeometryCollection is not supported")
    return geo.validate_geometry(value)


def _check_value(kind: str, value: Any, name: str, terms: TermMap, for_update: bool) -> Any:
    if kind == GEO_PROPERTY:
        return check_geometry(value, name)
    if kind == PROPERTY and name == "ngsildproof" and not isinstance(value, dict):
        raise BadRequestData("The value of ngsildproof is a proof object")
    if kind == RELATIONSHIP:
        objects = value if isinstance(value, list) else [value]
        if not objects or not all(is_uri(o) for o in objects):
            raise BadRequestData(f"Relationship {name} must point to a URI")
        return value
    if kind == LANGUAGE_PROPERTY:
        if not isinstance(value, dict) or not value or not all(
                isinstance(tag, str) and tag and (
                    isinstance(v, str) or (isinstance(v, list) and v
                                           and all(isinstance(s, str) for s in v)))
                for tag, v in value.items()):
            raise BadRequestData(f"LanguageProperty {name} needs a languageMap of strings "
                                 "under non-empty language tags")
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
        return _no_nulls(value, name)
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
    # A merge may null a key inside a compound value: that key is then removed.
    return value if for_update else _no_nulls(value, name)
