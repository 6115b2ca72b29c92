"""Specification of the write operations on internal entities (``mutations``).

Each operation takes the stored entity and returns a new one: the stored entity is
never changed, so a failing operation leaves nothing half-applied.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from smartcity.core.ngsild import mutations
from smartcity.core.ngsild.context import ContextCompiler, ContextDocuments
from smartcity.core.ngsild.errors import BadRequestData, ResourceNotFound
from smartcity.core.ngsild.model import Entity
from smartcity.core.ngsild.normalize import NULL, parse_attribute, parse_entity

CORE = ContextCompiler(ContextDocuments()).core
D = "https://uri.etsi.org/ngsi-ld/default-context/"
T0, T1 = "2024-01-01T00:00:00.000000Z", "2024-06-01T00:00:00.000000Z"
DS = "urn:ngsi-ld:Dataset:meter"


def stored(**attrs: Any) -> Entity:
    """A stored streetlight created at T0."""
    body = {"id": "urn:ngsi-ld:Streetlight:1", "type": "Streetlight", **attrs}
    return mutations.new_entity(parse_entity(body, CORE), T0)


def fragment(**attrs: Any) -> Entity:
    return parse_entity(attrs, CORE, require_id=False, require_type=False, for_update=True)


def values(entity: Entity, name: str) -> dict[str | None, Any]:
    """datasetId -> value of each instance of an attribute."""
    return {i.get("datasetId"): i.get("value") for i in entity["attrs"].get(D + name, [])}


def kept(operation: Any, entity: Entity, *args: Any, **kwargs: Any) -> Any:
    """Run an operation and check it left its input alone."""
    before = copy.deepcopy(entity)
    result = operation(entity, *args, **kwargs)
    assert entity == before
    return result


# --- creation and replacement -----------------------------------------------------------


def test_a_new_entity_gets_creation_and_modification_times_everywhere() -> None:
    entity = stored(powerState={"type": "Property", "value": "on",
                                "reliability": {"type": "Property", "value": 0.9}})
    assert entity["createdAt"] == entity["modifiedAt"] == T0
    [instance] = entity["attrs"][D + "powerState"]
    assert instance["createdAt"] == instance["modifiedAt"] == T0
    assert instance[D + "reliability"]["createdAt"] == T0


def test_new_entity_copies_its_input_unless_owned() -> None:
    parsed = parse_entity({"id": "urn:x:1", "type": "T", "a": 1}, CORE)
    snapshot = copy.deepcopy(parsed)
    mutations.new_entity(parsed, T0)
    assert parsed == snapshot


def test_replace_keeps_id_and_creation_time_and_nothing_else() -> None:
    entity = stored(powerState="on")
    new = parse_entity({"type": "Bench", "seats": 3}, CORE, require_id=False)
    result = kept(mutations.replace_entity, entity, new, T1)
    assert result["id"] == entity["id"]
    assert result["createdAt"] == T0 and result["modifiedAt"] == T1
    assert result["type"] == [D + "Bench"]
    assert set(result["attrs"]) == {D + "seats"}


# --- append -----------------------------------------------------------------------------


def test_append_adds_new_attributes_and_overwrites_existing_ones() -> None:
    entity = stored(powerState="on")
    result, outcome = kept(mutations.append_attributes, entity,
                           fragment(powerState="off", colour="warm"), T1)
    assert values(result, "powerState") == {None: "off"}
    assert values(result, "colour") == {None: "warm"}
    assert sorted(outcome.updated) == [D + "colour", D + "powerState"]
    assert outcome.not_updated == []
    assert result["modifiedAt"] == T1


def test_an_overwritten_instance_keeps_its_creation_time() -> None:
    entity = stored(powerState="on")
    result, _ = mutations.append_attributes(entity, fragment(powerState="off"), T1)
    [instance] = result["attrs"][D + "powerState"]
    assert (instance["createdAt"], instance["modifiedAt"]) == (T0, T1)


def test_append_without_overwrite_reports_what_it_left() -> None:
    entity = stored(powerState="on")
    result, outcome = mutations.append_attributes(
        entity, fragment(powerState="off", colour="warm"), T1, overwrite=False)
    assert values(result, "powerState") == {None: "on"}
    assert outcome.updated == [D + "colour"]
    [(name, reason)] = outcome.not_updated
    assert name == D + "powerState" and reason


def test_append_of_another_dataset_adds_an_instance() -> None:
    entity = stored(powerState="on")
    result, outcome = mutations.append_attributes(
        entity, fragment(powerState={"value": "off", "datasetId": DS}), T1, overwrite=False)
    assert values(result, "powerState") == {None: "on", DS: "off"}
    assert outcome.not_updated == []


def test_append_that_changes_nothing_leaves_modified_at() -> None:
    entity = stored(powerState="on")
    result, outcome = mutations.append_attributes(entity, fragment(powerState="off"), T1,
                                                  overwrite=False)
    assert result["modifiedAt"] == T0
    assert outcome.updated == []


def test_append_adds_types_and_scopes() -> None:
    entity = stored(scope="/Stockholm")
    new = parse_entity({"type": "Device", "scope": "/Sweden"}, CORE, require_id=False,
                       for_update=True)
    result, outcome = mutations.append_attributes(entity, new, T1)
    assert result["type"] == [D + "Streetlight", D + "Device"]
    assert result["scope"] == ["/Sweden"]
    assert {"type", "scope"} <= set(outcome.updated)
    result, _ = mutations.append_attributes(entity, new, T1, overwrite=False)
    assert result["scope"] == ["/Stockholm", "/Sweden"]


# --- update -----------------------------------------------------------------------------


def test_update_changes_existing_attributes_and_adds_new_ones() -> None:
    entity = stored(powerState="on")
    result, outcome = kept(mutations.update_attributes, entity,
                           fragment(powerState="off", colour="warm"), T1)
    assert values(result, "powerState") == {None: "off"}
    assert values(result, "colour") == {None: "warm"}
    assert outcome.updated == [D + "powerState", D + "colour"]
    assert outcome.not_updated == []


def test_update_with_null_removes_the_instance() -> None:
    entity = stored(powerState=[{"value": "on"}, {"value": "off", "datasetId": DS}])
    result, outcome = mutations.update_attributes(
        entity, fragment(powerState={"value": NULL, "datasetId": DS}), T1)
    assert values(result, "powerState") == {None: "on"}
    assert outcome.updated == [D + "powerState"]
    result, _ = mutations.update_attributes(result, fragment(powerState=NULL), T1)
    assert D + "powerState" not in result["attrs"]


def test_update_with_a_new_dataset_adds_that_instance() -> None:
    entity = stored(powerState="on")
    result, outcome = mutations.update_attributes(
        entity, fragment(powerState={"value": "off", "datasetId": DS}), T1)
    assert values(result, "powerState") == {None: "on", DS: "off"}
    assert outcome.not_updated == []


def test_update_of_a_scope_the_entity_lacks_is_not_updated() -> None:
    entity = stored()
    new = parse_entity({"scope": "/Sweden"}, CORE, require_id=False, require_type=False,
                       for_update=True)
    result, outcome = mutations.update_attributes(entity, new, T1)
    assert "scope" not in result
    assert [name for name, _ in outcome.not_updated] == ["scope"]


# --- partial update and replace of one attribute ----------------------------------------


def instances(raw: Any, name: str = "powerState") -> list[dict[str, Any]]:
    return parse_attribute(raw, D + name, CORE, for_update=True)


def test_partial_update_merges_into_the_instance() -> None:
    entity = stored(powerState={"type": "Property", "value": "on",
                                "reliability": {"type": "Property", "value": 0.9}})
    result = kept(mutations.partial_update, entity, D + "powerState",
                  instances({"value": "off", "observedAt": "2024-06-01T00:00:00Z"}), T1)
    [instance] = result["attrs"][D + "powerState"]
    assert instance["value"] == "off"
    assert instance["observedAt"] == "2024-06-01T00:00:00Z"
    assert instance[D + "reliability"]["value"] == 0.9
    assert (instance["createdAt"], instance["modifiedAt"]) == (T0, T1)


def test_partial_update_merges_object_values_key_by_key() -> None:
    entity = stored(address={"value": {"street": "Drottninggatan", "number": 1}})
    result = mutations.partial_update(entity, D + "address",
                                      instances({"value": {"number": 2}}, "address"), T1)
    assert values(result, "address") == {None: {"street": "Drottninggatan", "number": 2}}


def test_partial_update_can_delete_a_sub_attribute_with_null() -> None:
    entity = stored(powerState={"type": "Property", "value": "on",
                                "reliability": {"type": "Property", "value": 0.9}})
    result = mutations.partial_update(entity, D + "powerState",
                                      instances({"value": "on", "reliability": NULL}), T1)
    assert D + "reliability" not in result["attrs"][D + "powerState"][0]


@pytest.mark.parametrize(("name", "raw"), [
    ("colour", {"value": "warm"}),
    ("powerState", {"value": "off", "datasetId": DS}),
])
def test_partial_update_of_a_missing_attribute_or_dataset_is_not_found(
        name: str, raw: dict[str, Any]) -> None:
    with pytest.raises(ResourceNotFound):
        mutations.partial_update(stored(powerState="on"), D + name, instances(raw, name), T1)


def test_partial_update_cannot_change_the_kind() -> None:
    with pytest.raises(BadRequestData):
        mutations.partial_update(stored(powerState="on"), D + "powerState",
                                 instances({"type": "Relationship", "object": "urn:x:1"}), T1)


def test_replace_attribute_replaces_the_instance_whole() -> None:
    entity = stored(powerState={"type": "Property", "value": "on",
                                "reliability": {"type": "Property", "value": 0.9}})
    result = kept(mutations.replace_attribute, entity, D + "powerState",
                  instances({"type": "Property", "value": "off"}), T1)
    [instance] = result["attrs"][D + "powerState"]
    assert D + "reliability" not in instance
    assert (instance["value"], instance["createdAt"], instance["modifiedAt"]) == ("off", T0, T1)


def test_replace_of_a_missing_attribute_is_not_found() -> None:
    with pytest.raises(ResourceNotFound):
        mutations.replace_attribute(stored(), D + "colour", instances({"value": 1}), T1)


# --- merge ------------------------------------------------------------------------------


def test_merge_adds_merges_and_deletes() -> None:
    entity = stored(powerState={"type": "Property", "value": "on",
                                "reliability": {"type": "Property", "value": 0.9}},
                    colour="warm")
    patch = fragment(powerState={"type": "Property", "value": "off"}, colour=NULL, height=9)
    result = kept(mutations.merge_entity, entity, patch, T1)
    [power] = result["attrs"][D + "powerState"]
    assert (power["value"], power[D + "reliability"]["value"]) == ("off", 0.9)
    assert D + "colour" not in result["attrs"]
    assert values(result, "height") == {None: 9}
    assert result["modifiedAt"] == T1


def test_merge_with_another_kind_replaces_the_instance() -> None:
    entity = stored(feeds={"type": "Property", "value": "x",
                           "reliability": {"type": "Property", "value": 0.9}})
    result = mutations.merge_entity(
        entity, fragment(feeds={"type": "Relationship", "object": "urn:x:1"}), T1)
    assert result["attrs"][D + "feeds"][0]["type"] == "Relationship"
    assert D + "reliability" not in result["attrs"][D + "feeds"][0]


def test_merge_null_of_a_missing_attribute_is_harmless() -> None:
    entity = stored(powerState="on")
    result = mutations.merge_entity(entity, fragment(colour=NULL), T1)
    assert set(result["attrs"]) == {D + "powerState"}


def test_merge_null_scope_removes_the_scope() -> None:
    entity = stored(scope="/Stockholm")
    patch = parse_entity({"scope": NULL}, CORE, require_id=False, require_type=False,
                         for_update=True)
    assert "scope" not in mutations.merge_entity(entity, patch, T1)


def test_merge_value_follows_json_merge_patch() -> None:
    assert mutations.merge_value({"a": 1, "b": {"c": 2, "d": 3}},
                                 {"b": {"c": NULL, "e": 4}, "f": 5}) == {
        "a": 1, "b": {"d": 3, "e": 4}, "f": 5}
    assert mutations.merge_value({"a": 1}, [1, 2]) == [1, 2]
    assert mutations.merge_value(3, {"a": 1}) == {"a": 1}


# --- delete attribute -------------------------------------------------------------------


def multi() -> Entity:
    return stored(powerState=[{"value": "on"}, {"value": "off", "datasetId": DS}],
                  scope="/Stockholm")


def test_delete_attribute_removes_the_default_instance() -> None:
    result = kept(mutations.delete_attribute, multi(), D + "powerState", None, False, T1)
    assert values(result, "powerState") == {DS: "off"}
    assert result["modifiedAt"] == T1


def test_delete_attribute_removes_the_named_dataset() -> None:
    result = mutations.delete_attribute(multi(), D + "powerState", DS, False, T1)
    assert values(result, "powerState") == {None: "on"}


def test_delete_all_removes_the_attribute() -> None:
    result = mutations.delete_attribute(multi(), D + "powerState", None, True, T1)
    assert D + "powerState" not in result["attrs"]


def test_the_last_instance_removed_takes_the_attribute_with_it() -> None:
    result = mutations.delete_attribute(stored(powerState="on"), D + "powerState", None,
                                        False, T1)
    assert result["attrs"] == {}


def test_delete_of_the_scope_removes_it() -> None:
    assert "scope" not in mutations.delete_attribute(multi(), "scope", None, False, T1)
    with pytest.raises(ResourceNotFound):
        mutations.delete_attribute(stored(), "scope", None, False, T1)


@pytest.mark.parametrize(("name", "dataset"), [("colour", None),
                                               ("powerState", "urn:ngsi-ld:Dataset:z")])
def test_delete_of_a_missing_attribute_or_dataset_is_not_found(name: str,
                                                               dataset: str | None) -> None:
    with pytest.raises(ResourceNotFound):
        mutations.delete_attribute(multi(), D + name, dataset, False, T1)
