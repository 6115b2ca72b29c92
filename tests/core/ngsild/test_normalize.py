"""Specification of payload parsing into the internal entity form (see ``model``).

Normalized and concise NGSI-LD (ETSI GS CIM 009 V1.9.1, clauses 4.5 and 5.2) come in;
entities with expanded names and lists of attribute instances come out.
"""

from __future__ import annotations

from typing import Any

import pytest

from smartcity.core.ngsild.context import ContextCompiler, ContextDocuments, TermMap
from smartcity.core.ngsild.errors import BadRequestData, InvalidRequest, NgsiLdError
from smartcity.core.ngsild.model import DELETE
from smartcity.core.ngsild.normalize import (
    NULL,
    check_attribute_name,
    check_datetime,
    check_entity_id,
    check_scopes,
    expand_types,
    is_uri,
    parse_attribute,
    parse_entity,
    parse_instance,
)

COMPILER = ContextCompiler(ContextDocuments())
CORE = COMPILER.core
NGSI_LD = "https://uri.etsi.org/ngsi-ld/"
DEFAULT = NGSI_LD + "default-context/"
EX = "https://example.org/city/"
POINT = {"type": "Point", "coordinates": [18.0686, 59.3293]}


@pytest.fixture(scope="module")
def city() -> TermMap:
    return COMPILER.compile({"Lamp": EX + "Lamp", "lux": EX + "lux", "ex": EX})


def attr(raw: Any, name: str = "temperature", **kwargs: Any) -> list[dict[str, Any]]:
    return parse_attribute(raw, DEFAULT + name, CORE, **kwargs)


# --- ids, names, types, scopes, times ---------------------------------------------------


@pytest.mark.parametrize("value", ["urn:ngsi-ld:Streetlight:1", "https://example.org/x/1",
                                   "urn:x:1#2", "mailto:city@example.org"])
def test_uris_are_accepted_as_entity_ids(value: str) -> None:
    assert is_uri(value)
    assert check_entity_id(value) == value


@pytest.mark.parametrize("value", ["streetlight-1", "", None, 42, "1urn:x", "urn:x:a b",
                                   "urn:x:<a>", 'urn:x:"a"', NULL, "urn:x:\u200b",
                                   "urn:x:\u0007"])
def test_non_uris_are_refused_as_entity_ids(value: Any) -> None:
    with pytest.raises(BadRequestData):
        check_entity_id(value)


@pytest.mark.parametrize("name", ["temperature", "ex:lux", "https://example.org/lux",
                                  "air_quality-index", "température"])
def test_valid_attribute_names_pass(name: str) -> None:
    assert check_attribute_name(name, CORE) == name


@pytest.mark.parametrize("name", ["a<b", "a>b", 'a"b', "a'b", "a=b", "a;b", "a(b", "a)b",
                                  "a b", "a\tb", "", "value", "object", "datasetId",
                                  "languageMap", "@id", "id", "type", "a\u200bb"])
def test_forbidden_or_reserved_attribute_names_are_refused(name: str) -> None:
    with pytest.raises(BadRequestData):
        check_attribute_name(name, CORE)


def test_types_expand_with_the_context(city: TermMap) -> None:
    assert expand_types("Streetlight", CORE) == [DEFAULT + "Streetlight"]
    assert expand_types(["Lamp", "ex:Pole", "Lamp"], city) == [EX + "Lamp", EX + "Pole"]


@pytest.mark.parametrize("value", [[], "", "1Lamp", "La mp", NULL, 42, ["Lamp", None]])
def test_invalid_types_are_refused(value: Any) -> None:
    with pytest.raises(BadRequestData):
        expand_types(value, CORE)


def test_scopes_are_paths_kept_once_each() -> None:
    assert check_scopes("/Stockholm") == ["/Stockholm"]
    assert check_scopes(["/Stockholm/Kungsholmen", "/Sweden", "/Sweden"]) == [
        "/Stockholm/Kungsholmen", "/Sweden"]


@pytest.mark.parametrize("value", ["Stockholm", "/", "/Stockholm/", "//x", "/a b", 42, [3]])
def test_malformed_scopes_are_refused(value: Any) -> None:
    with pytest.raises(BadRequestData):
        check_scopes(value)


@pytest.mark.parametrize("value", ["2024-05-01T12:00:00Z", "2024-05-01T12:00Z",
                                   "2024-05-01T12:00:00.123456Z"])
def test_utc_datetimes_are_accepted(value: str) -> None:
    assert check_datetime(value, "observedAt") == value


@pytest.mark.parametrize("value", ["2024-05-01", "2024-05-01T12:00:00", "yesterday", 0,
                                   "2024-05-01T12:00:00+02:00"])
def test_other_datetimes_are_refused(value: Any) -> None:
    with pytest.raises(BadRequestData):
        check_datetime(value, "observedAt")


# --- entities ---------------------------------------------------------------------------


def test_a_normalized_entity_becomes_the_internal_form() -> None:
    entity = parse_entity({
        "id": "urn:ngsi-ld:Streetlight:1", "type": "Streetlight",
        "scope": "/Stockholm",
        "powerState": {"type": "Property", "value": "on",
                       "observedAt": "2024-05-01T12:00:00Z",
                       "reliability": {"type": "Property", "value": 0.9}},
        "location": {"type": "GeoProperty", "value": POINT},
    }, CORE)
    assert entity == {
        "id": "urn:ngsi-ld:Streetlight:1", "type": [DEFAULT + "Streetlight"],
        "scope": ["/Stockholm"],
        "attrs": {
            DEFAULT + "powerState": [{
                "type": "Property", "value": "on", "observedAt": "2024-05-01T12:00:00Z",
                DEFAULT + "reliability": {"type": "Property", "value": 0.9}}],
            NGSI_LD + "location": [{"type": "GeoProperty", "value": POINT}],
        },
    }


def test_names_expand_with_the_given_context(city: TermMap) -> None:
    entity = parse_entity({"id": "urn:x:1", "type": "Lamp", "lux": 3, "ex:height": 9}, city)
    assert entity["type"] == [EX + "Lamp"]
    assert set(entity["attrs"]) == {EX + "lux", EX + "height"}


def test_system_members_and_context_given_by_clients_are_ignored() -> None:
    entity = parse_entity({"id": "urn:x:1", "type": "T", "createdAt": "2020-01-01T00:00:00Z",
                           "modifiedAt": "2020-01-01T00:00:00Z", "@context": []}, CORE)
    assert entity == {"id": "urn:x:1", "type": [DEFAULT + "T"], "attrs": {}}


def test_json_ld_keywords_stand_for_id_and_type() -> None:
    entity = parse_entity({"@id": "urn:x:1", "@type": "T"}, CORE)
    assert (entity["id"], entity["type"]) == ("urn:x:1", [DEFAULT + "T"])
    with pytest.raises(BadRequestData):
        parse_entity({"@id": "urn:x:1", "id": "urn:x:1", "type": "T"}, CORE)


def test_creation_needs_id_and_type() -> None:
    with pytest.raises(BadRequestData):
        parse_entity({"type": "T"}, CORE)
    with pytest.raises(BadRequestData):
        parse_entity({"id": "urn:x:1"}, CORE)
    with pytest.raises(InvalidRequest):
        parse_entity(["urn:x:1"], CORE)


def test_fragments_need_neither_id_nor_type() -> None:
    fragment = parse_entity({"powerState": "off"}, CORE, require_id=False,
                            require_type=False, for_update=True)
    assert fragment == {"attrs": {DEFAULT + "powerState": [{"type": "Property",
                                                            "value": "off"}]}}


# --- attribute kinds, normalized and concise --------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [
    (21.5, {"type": "Property", "value": 21.5}),
    ("on", {"type": "Property", "value": "on"}),
    ([1, 2], {"type": "Property", "value": [1, 2]}),
    ({"city": "Stockholm"}, {"type": "Property", "value": {"city": "Stockholm"}}),
    ({"value": 3, "unitCode": "CEL"}, {"type": "Property", "value": 3, "unitCode": "CEL"}),
    ({"object": "urn:x:1"}, {"type": "Relationship", "object": "urn:x:1"}),
    ({"languageMap": {"sv": "lykta"}}, {"type": "LanguageProperty",
                                        "languageMap": {"sv": "lykta"}}),
    ({"valueList": [3, 1]}, {"type": "ListProperty", "valueList": [3, 1]}),
    ({"json": {"a": None}}, {"type": "JsonProperty", "json": {"a": None}}),
    ({"value": POINT}, {"type": "GeoProperty", "value": POINT}),
    (POINT, {"type": "GeoProperty", "value": POINT}),
])
def test_concise_attributes_get_their_kind_from_their_members(raw: Any,
                                                             expected: dict[str, Any]) -> None:
    assert attr(raw) == [expected]


def test_a_geojson_string_value_is_parsed_as_geometry() -> None:
    parsed = attr({"type": "GeoProperty", "value": '{"type":"Point","coordinates":[1,2]}'})
    assert parsed == [{"type": "GeoProperty", "value": {"type": "Point", "coordinates": [1, 2]}}]


def test_core_geoproperties_cannot_be_plain_properties() -> None:
    with pytest.raises(BadRequestData):
        parse_attribute({"type": "Property", "value": "here"}, NGSI_LD + "location", CORE)


def test_relationship_objects_and_object_types_are_kept(city: TermMap) -> None:
    parsed = parse_attribute({"type": "Relationship", "object": ["urn:x:1", "urn:x:2"],
                              "objectType": "Lamp"}, EX + "feeds", city)
    assert parsed == [{"type": "Relationship", "object": ["urn:x:1", "urn:x:2"],
                       "objectType": [EX + "Lamp"]}]


def test_list_relationships_keep_their_targets_in_order() -> None:
    parsed = attr({"type": "ListRelationship",
                   "objectList": [{"object": "urn:x:2"}, {"object": "urn:x:1"}]})
    assert parsed == [{"type": "ListRelationship", "objectList": ["urn:x:2", "urn:x:1"]}]


def test_vocab_values_are_expanded(city: TermMap) -> None:
    assert parse_attribute({"type": "VocabProperty", "vocab": "Lamp"}, EX + "kind", city) == [
        {"type": "VocabProperty", "vocab": EX + "Lamp"}]
    assert attr({"type": "VocabProperty", "vocab": ["a", "b"]}) == [
        {"type": "VocabProperty", "vocab": [DEFAULT + "a", DEFAULT + "b"]}]


def test_property_values_are_kept_verbatim_not_expanded() -> None:
    value = {"@type": "DateTime", "@value": "2024-05-01T12:00:00Z", "type": "x"}
    assert attr({"type": "Property", "value": value}) == [{"type": "Property", "value": value}]


def test_several_dataset_ids_give_several_instances() -> None:
    parsed = attr([{"type": "Property", "value": 1},
                   {"type": "Property", "value": 2, "datasetId": "urn:ngsi-ld:Dataset:b"},
                   {"value": 3, "datasetId": "urn:ngsi-ld:Dataset:c"}])
    assert [(i.get("datasetId"), i["value"]) for i in parsed] == [
        (None, 1), ("urn:ngsi-ld:Dataset:b", 2), ("urn:ngsi-ld:Dataset:c", 3)]


def test_dataset_id_none_names_the_default_instance() -> None:
    assert attr({"value": 1, "datasetId": "@none"}) == [{"type": "Property", "value": 1}]


def test_two_instances_of_one_dataset_are_refused() -> None:
    with pytest.raises(BadRequestData):
        attr([{"value": 1}, {"value": 2}])
    with pytest.raises(BadRequestData):
        attr([{"value": 1, "datasetId": "urn:x:d"}, {"value": 2, "datasetId": "urn:x:d"}])


def test_an_array_of_plain_objects_is_one_property_value() -> None:
    value = [{"on": "18:00"}, {"off": "06:00"}]
    assert attr(value) == [{"type": "Property", "value": value}]


@pytest.mark.parametrize("raw", [
    {"type": "Property"},
    {"type": "Relationship", "value": "urn:x:1"},
    {"type": "Temperature", "value": 1},
    {"type": "Relationship", "object": "nope"},
    {"type": "Relationship", "object": []},
    {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [181, 0]}},
    {"type": "GeoProperty", "value": {"type": "GeometryCollection", "geometries": []}},
    {"type": "GeoProperty", "value": "Stockholm"},
    {"type": "LanguageProperty", "languageMap": {"sv": 1}},
    {"type": "LanguageProperty", "languageMap": {}},
    {"type": "VocabProperty", "vocab": {"a": 1}},
    {"type": "ListProperty", "valueList": {"a": 1}},
    {"type": "ListProperty", "valueList": [1, None]},
    {"type": "ListRelationship", "objectList": ["nope"]},
    {"type": "JsonProperty", "json": 3},
    {"type": "Property", "value": 1, "observedAt": "now"},
    {"type": "Property", "value": 1, "datasetId": "d1"},
    {"type": "Property", "value": 1, "unitCode": ""},
    {"type": "GeoProperty", "value": POINT, "unitCode": "MTR"},
    {"type": "Property", "value": 1, "objectType": "T"},
    {"type": "Property", "value": 1, "object": "urn:x:1"},
    {"type": "Property", "value": 1, "previousValue": 0},
    {"type": "Property", "value": 1, "instanceId": "urn:x:i"},
    {"type": "Property", "value": 1, "@context": {}},
    {"type": "Property", "value": 1, "bad name": 2},
    {"type": "Property", "value": 1, "sub": {"type": "Property"}},
])
def test_malformed_attributes_are_refused(raw: Any) -> None:
    with pytest.raises(BadRequestData):
        attr(raw)


# --- NGSI-LD null -----------------------------------------------------------------------


@pytest.mark.parametrize("raw", [NULL, None, {"type": "Property", "value": NULL},
                                 {"value": NULL}, {"type": "Relationship", "object": NULL},
                                 {"type": "Property", "value": {"a": NULL}},
                                 {"type": "Property", "value": [1, NULL]},
                                 {"type": "Property", "value": 1, "sub": NULL}])
def test_null_is_refused_on_creation(raw: Any) -> None:
    with pytest.raises(BadRequestData):
        attr(raw)


@pytest.mark.parametrize("raw", [NULL, None, {"type": "Property", "value": NULL},
                                 {"value": NULL}, {"type": "Relationship", "object": NULL},
                                 {"type": "LanguageProperty", "languageMap": {"sv": NULL}}])
def test_null_in_an_update_marks_the_instance_for_deletion(raw: Any) -> None:
    [instance] = attr(raw, for_update=True)
    assert instance[DELETE] is True


def test_null_in_an_update_keeps_the_dataset_id_it_deletes() -> None:
    [instance] = attr({"value": NULL, "datasetId": "urn:x:d"}, for_update=True)
    assert instance["datasetId"] == "urn:x:d"
    assert instance[DELETE] is True


def test_null_sub_attribute_in_an_update_is_marked_for_deletion() -> None:
    [instance] = attr({"type": "Property", "value": 1, "reliability": NULL}, for_update=True)
    assert instance[DEFAULT + "reliability"][DELETE] is True


def test_null_scope_in_an_update_removes_the_scope() -> None:
    fragment = parse_entity({"scope": NULL}, CORE, require_id=False, require_type=False,
                            for_update=True)
    assert fragment["scope"] is None


def test_parse_errors_are_ngsi_ld_errors_with_a_detail() -> None:
    with pytest.raises(NgsiLdError) as caught:
        parse_instance({"type": "Relationship", "object": "nope"}, DEFAULT + "feeds", CORE)
    problem = caught.value.problem()
    assert problem["type"] == NGSI_LD + "errors/BadRequestData"
    assert "feeds" in problem["detail"]
