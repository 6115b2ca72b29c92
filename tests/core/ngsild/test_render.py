"""Specification of entity rendering: normalized, concise and keyValues, compacted.

ETSI GS CIM 009 V1.9.1, clauses 4.5.2-4.5.4 (representations), 4.15 (languages),
4.21 (pick/omit) and 4.5.23 (linked entities).
"""

from __future__ import annotations

from typing import Any

import pytest

from smartcity.core.ngsild.context import ContextCompiler, ContextDocuments
from smartcity.core.ngsild.model import Entity
from smartcity.core.ngsild.mutations import new_entity
from smartcity.core.ngsild.normalize import parse_entity
from smartcity.core.ngsild.projection import parse_projection
from smartcity.core.ngsild.render import (
    CONCISE,
    KEY_VALUES,
    View,
    pick_language,
    render_entity,
    simple_value,
)

COMPILER = ContextCompiler(ContextDocuments())
CORE = COMPILER.core
D = "https://uri.etsi.org/ngsi-ld/default-context/"
EX = "https://example.org/city/"
T0 = "2024-01-01T00:00:00.000000Z"
POINT = {"type": "Point", "coordinates": [18.0686, 59.3293]}
NAME = {"type": "LanguageProperty", "languageMap": {"en": "Lamp", "sv": "Lykta",
                                                    "@none": "L-1"}}
LAMP: dict[str, Any] = {
    "id": "urn:ngsi-ld:Streetlight:1", "type": "Streetlight",
    "powerState": {"type": "Property", "value": "on", "observedAt": "2024-05-01T12:00:00Z",
                   "reliability": {"type": "Property", "value": 0.9}},
    "illuminance": {"type": "Property", "value": 1200, "unitCode": "LUX"},
    "circuit": {"type": "Relationship", "object": "urn:ngsi-ld:Circuit:7"},
    "location": {"type": "GeoProperty", "value": POINT},
    "name": NAME,
    "category": {"type": "VocabProperty", "vocab": "street"},
    "readings": {"type": "ListProperty", "valueList": [3, 1, 2]},
    "route": {"type": "ListRelationship", "objectList": [{"object": "urn:x:2"},
                                                         {"object": "urn:x:1"}]},
    "config": {"type": "JsonProperty", "json": {"a": None}},
}


def entity(body: dict[str, Any] = LAMP) -> Entity:
    return new_entity(parse_entity(body, CORE), T0)


def render(body: dict[str, Any] = LAMP, **view: Any) -> dict[str, Any]:
    return render_entity(entity(body), CORE, View(**view))


def test_normalized_rendering_gives_back_what_was_parsed() -> None:
    assert render() == LAMP


def test_names_are_compacted_with_the_given_context() -> None:
    city = COMPILER.compile({"Lamp": EX + "Lamp", "lux": EX + "lux"})
    stored = new_entity(parse_entity({"id": "urn:x:1", "type": "Lamp", "lux": 3}, city), T0)
    assert render_entity(stored, city, View()) == {
        "id": "urn:x:1", "type": "Lamp", "lux": {"type": "Property", "value": 3}}
    assert render_entity(stored, CORE, View()) == {
        "id": "urn:x:1", "type": EX + "Lamp", EX + "lux": {"type": "Property", "value": 3}}


def test_several_types_are_an_array_and_one_type_a_string() -> None:
    assert render({"id": "urn:x:1", "type": ["A", "B"]})["type"] == ["A", "B"]
    assert render({"id": "urn:x:1", "type": ["A"]})["type"] == "A"


def test_scope_is_a_string_or_an_array() -> None:
    assert render({"id": "urn:x:1", "type": "A", "scope": "/S"})["scope"] == "/S"
    assert render({"id": "urn:x:1", "type": "A", "scope": ["/S", "/T"]})["scope"] == ["/S", "/T"]


def test_system_attributes_only_when_asked() -> None:
    plain = render()
    assert "createdAt" not in plain and "createdAt" not in plain["powerState"]
    full = render(sys_attrs=True)
    assert full["createdAt"] == full["modifiedAt"] == T0
    assert full["powerState"]["modifiedAt"] == T0
    assert full["powerState"]["reliability"]["createdAt"] == T0


def test_key_values_are_bare_values_with_special_kinds_marked() -> None:
    assert render(format=KEY_VALUES) == {
        "id": "urn:ngsi-ld:Streetlight:1", "type": "Streetlight",
        "powerState": "on", "illuminance": 1200, "circuit": "urn:ngsi-ld:Circuit:7",
        "location": POINT, "name": {"languageMap": NAME["languageMap"]},
        "category": {"vocab": "street"}, "readings": [3, 1, 2],
        "route": ["urn:x:2", "urn:x:1"], "config": {"json": {"a": None}},
    }


def test_key_values_never_show_system_attributes() -> None:
    assert "createdAt" not in render(format=KEY_VALUES, sys_attrs=True)


def test_concise_drops_attribute_types_and_keeps_the_rest() -> None:
    concise = render(format=CONCISE)
    assert concise["powerState"] == {"value": "on", "observedAt": "2024-05-01T12:00:00Z",
                                     "reliability": 0.9}
    assert concise["illuminance"] == {"value": 1200, "unitCode": "LUX"}
    assert concise["circuit"] == {"object": "urn:ngsi-ld:Circuit:7"}
    assert concise["location"] == POINT
    assert concise["name"] == {"languageMap": NAME["languageMap"]}
    assert concise["category"] == {"vocab": "street"}
    assert concise["readings"] == {"valueList": [3, 1, 2]}
    assert concise["config"] == {"json": {"a": None}}


@pytest.mark.parametrize("value", [{"value": 1}, {"type": "Feature"}, {"object": "urn:x:1"},
                                   {"languageMap": {"sv": "x"}}])
def test_concise_keeps_value_when_a_bare_value_would_read_back_differently(
        value: dict[str, Any]) -> None:
    body = {"id": "urn:x:1", "type": "T", "a": {"type": "Property", "value": value}}
    assert render(body, format=CONCISE)["a"] == {"value": value}


@pytest.mark.parametrize("representation", [None, CONCISE])
def test_rendered_entities_parse_back_to_the_same_entity(representation: str | None) -> None:
    view = View(format=representation) if representation else View()
    rendered = render_entity(entity(), CORE, view)
    again = new_entity(parse_entity(rendered, CORE), T0)
    assert again == entity()


def test_several_instances_are_an_array() -> None:
    body = {"id": "urn:x:1", "type": "T", "a": [
        {"type": "Property", "value": 1}, {"type": "Property", "value": 2, "datasetId": "urn:d"}]}
    assert render(body)["a"] == body["a"]
    assert render(body, dataset_ids=frozenset({"urn:d"}))["a"] == body["a"][1]
    assert render(body, dataset_ids=frozenset({"@none"}))["a"] == body["a"][0]
    assert "a" not in render(body, dataset_ids=frozenset({"urn:other"}))
    assert render(body, format=KEY_VALUES)["a"] == {"dataset": {"@none": 1, "urn:d": 2}}


def test_attrs_keep_only_the_named_attributes() -> None:
    shown = render(attrs=frozenset({D + "powerState"}))
    assert set(shown) == {"id", "type", "powerState"}


def test_pick_and_omit_select_members() -> None:
    # The views hold expanded names (the HTTP edge expands what parse_projection reads).
    assert parse_projection("id,powerState") == {"id": None, "powerState": None}
    pick = {"id": None, D + "powerState": None}
    assert set(render(pick=pick)) == {"id", "powerState"}
    omit = {"type": None, D + "powerState": None}
    assert "type" not in render(omit=omit) and "powerState" not in render(omit=omit)
    assert "id" in render(omit=omit)


def test_lang_shows_one_language_as_a_property() -> None:
    assert render(lang="sv")["name"] == {"type": "Property", "value": "Lykta", "lang": "sv"}
    assert render(lang="sv", format=CONCISE)["name"] == {"value": "Lykta", "lang": "sv"}
    assert render(lang="sv", format=KEY_VALUES)["name"] == "Lykta"


@pytest.mark.parametrize(("lang", "expected"), [
    ("sv", ("Lykta", "sv")),
    ("sv-FI", ("Lykta", "sv")),
    ("fi,en", ("Lamp", "en")),
    ("sv;q=0.2,en;q=0.8", ("Lamp", "en")),
    ("fi", ("L-1", "@none")),
    ("*", ("L-1", "@none")),
])
def test_pick_language_finds_the_best_match(lang: str, expected: tuple[str, str]) -> None:
    assert pick_language(NAME["languageMap"], lang) == expected


def test_pick_language_without_a_none_tag_gives_some_language() -> None:
    text, tag = pick_language({"en": "Lamp", "sv": "Lykta"}, "fi")
    assert (text, tag) in {("Lamp", "en"), ("Lykta", "sv")}


def test_simple_value_of_each_kind() -> None:
    stored = entity()
    kinds = {name.rsplit("/", 1)[1]: simple_value(instances[0], CORE)
             for name, instances in stored["attrs"].items()}
    assert kinds["powerState"] == "on"
    assert kinds["circuit"] == "urn:ngsi-ld:Circuit:7"
    assert kinds["category"] == {"vocab": "street"}


def test_join_inline_puts_linked_entities_inside_relationships() -> None:
    circuit = entity({"id": "urn:ngsi-ld:Circuit:7", "type": "Circuit", "name": "C7"})
    view = View(join="inline", join_level=1)
    rendered = render_entity(entity(), CORE, view, {circuit["id"]: circuit})
    assert rendered["circuit"]["entity"] == {"id": "urn:ngsi-ld:Circuit:7", "type": "Circuit",
                                             "name": {"type": "Property", "value": "C7"}}
    key_values = render_entity(entity(), CORE, View(format=KEY_VALUES, join="inline"),
                               {circuit["id"]: circuit})
    assert key_values["circuit"] == {"id": "urn:ngsi-ld:Circuit:7", "type": "Circuit",
                                     "name": "C7"}


def test_join_without_the_linked_entity_leaves_the_relationship() -> None:
    rendered = render_entity(entity(), CORE, View(join="inline"), {})
    assert rendered["circuit"] == LAMP["circuit"]


def test_view_of_linked_entities_goes_one_level_down() -> None:
    view = View(pick={"id": None, D + "circuit": {"name": None}}, join="inline", join_level=2,
                attrs=frozenset({D + "circuit"}))
    linked = view.linked(D + "circuit")
    assert linked.pick == {"name": None}
    assert linked.attrs is None
    assert linked.join_level == 1
    assert view.follows() and not View().follows() and not View(join="flat",
                                                                join_level=0).follows()
