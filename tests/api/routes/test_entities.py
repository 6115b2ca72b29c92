"""Specification of the single-entity API: /ngsi-ld/v1/entities/{id} and its attributes.

ETSI GS CIM 009 V1.9.1, clauses 5.6 (provision), 5.7.1 (retrieval), 6.3 (HTTP binding).
Most tests share one server (starting one costs a quarter of a second) and keep out of
each other's way with fresh entity ids and tenant names; tests that need a server of
their own use the ``client`` fixture.
"""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from smartcity.config import Settings

ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
CORE_CONTEXT = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld"
CONTEXT_REL = "http://www.w3.org/ns/json-ld#context"
NULL = "urn:ngsi-ld:null"
LD = {"Content-Type": "application/ld+json"}
MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}
EX = "https://example.org/city/"


# --- fixtures and helpers ---------------------------------------------------------------


@pytest.fixture(scope="module")
def city_context(server: str) -> str:
    """The URL of a @context hosted by the broker: no network needed to use it."""
    document = {"@context": {"Lamp": EX + "Lamp", "lux": EX + "lux",
                             "street": EX + "categories/street"}}
    with httpx.Client(base_url=server, timeout=10, verify=False) as http:
        response = http.post("/jsonldContexts", content=json.dumps(document), headers=LD)
        assert response.status_code == 201, response.text
        # The Location may be relative to the server: a Link header needs the absolute URL.
        return str(http.base_url.join(response.headers["Location"]))


def link(url: str) -> dict[str, str]:
    return {"Link": f'<{url}>; rel="{CONTEXT_REL}"; type="application/ld+json"'}


def new_id(kind: str = "Streetlight") -> str:
    return f"urn:ngsi-ld:{kind}:{uuid.uuid4().hex[:12]}"


def new_tenant() -> str:
    return "t" + uuid.uuid4().hex[:12]


def streetlight(entity_id: str, **attrs: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": entity_id, "type": "Streetlight",
        "powerState": {"type": "Property", "value": "on"},
        "location": {"type": "GeoProperty",
                     "value": {"type": "Point", "coordinates": [18.0686, 59.3293]}},
    }
    body.update(attrs)
    return body


def create(api: httpx.Client, entity: dict[str, Any], **kwargs: Any) -> None:
    response = api.post("/entities", json=entity, **kwargs)
    assert response.status_code == 201, response.text


def url(entity_id: str, *rest: str) -> str:
    return "/".join(["/entities", quote(entity_id, safe=":"), *rest])


def get(api: httpx.Client, entity_id: str, **params: Any) -> dict[str, Any]:
    response = api.get(url(entity_id), params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def exists(api: httpx.Client, entity_id: str, **kwargs: Any) -> bool:
    status = api.get(url(entity_id), **kwargs).status_code
    assert status in (200, 404)
    return status == 200


def assert_problem(response: httpx.Response, status: int, name: str | None = None
                   ) -> dict[str, Any]:
    """The response is an RFC 7807 ProblemDetails of an NGSI-LD error type."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0] in (
        "application/json", "application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["type"].startswith(ERRORS)
    if name is not None:
        assert body["type"] == ERRORS + name
    assert isinstance(body["title"], str) and body["title"]
    assert body["status"] == status
    assert isinstance(body["detail"], str) and body["detail"]
    return body


# --- create and retrieve ----------------------------------------------------------------


def test_create_answers_201_with_the_location_of_the_new_entity(api: httpx.Client) -> None:
    entity_id = new_id()
    response = api.post("/entities", json=streetlight(entity_id))
    assert response.status_code == 201
    assert response.content == b""
    assert response.headers["Location"] == f"/ngsi-ld/v1/entities/{entity_id}"


def test_created_entity_reads_back_as_it_was_sent(api: httpx.Client) -> None:
    entity_id = new_id()
    entity = {
        "id": entity_id, "type": "Streetlight",
        "powerState": {"type": "Property", "value": "on",
                       "observedAt": "2024-05-01T12:00:00Z",
                       "reliability": {"type": "Property", "value": 0.9}},
        "illuminance": {"type": "Property", "value": 1200, "unitCode": "LUX"},
        "address": {"type": "Property",
                    "value": {"streetAddress": "Drottninggatan 1", "addressLocality": "Stockholm"}},
        "circuit": {"type": "Relationship", "object": "urn:ngsi-ld:Circuit:7",
                    "objectType": "Circuit",
                    "providedBy": {"type": "Relationship", "object": "urn:ngsi-ld:Org:city"}},
        "neighbours": {"type": "Relationship",
                       "object": ["urn:ngsi-ld:Streetlight:a", "urn:ngsi-ld:Streetlight:b"]},
        "route": {"type": "ListRelationship", "objectList": [
            {"object": "urn:ngsi-ld:Street:2"}, {"object": "urn:ngsi-ld:Street:1"}]},
        "signs": {"type": "LanguageProperty",
                  "languageMap": {"sv": ["Gågata", "Cykelväg"], "en": "Pedestrian street"}},
        "location": {"type": "GeoProperty",
                     "value": {"type": "Point", "coordinates": [18.0686, 59.3293]}},
    }
    create(api, entity)
    assert get(api, entity_id) == entity


def test_location_header_can_be_followed_for_ids_with_reserved_characters(
        api: httpx.Client) -> None:
    for entity_id in (f"{EX}lamps/{uuid.uuid4().hex}", f"urn:ngsi-ld:Lamp:{uuid.uuid4().hex}#2"):
        response = api.post("/entities", json={"id": entity_id, "type": "Lamp"})
        assert response.status_code == 201
        location = response.headers["Location"]
        followed = httpx.get(str(api.base_url.copy_with(path=location, query=None)))
        assert followed.status_code == 200, location
        assert followed.json()["id"] == entity_id


def test_creating_an_existing_entity_is_409_already_exists_and_keeps_the_first(
        api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id))
    response = api.post("/entities", json=streetlight(
        entity_id, powerState={"type": "Property", "value": "off"}))
    assert_problem(response, 409, "AlreadyExists")
    assert get(api, entity_id)["powerState"]["value"] == "on"


def test_retrieving_an_unknown_entity_is_404_resource_not_found(api: httpx.Client) -> None:
    assert_problem(api.get(url(new_id())), 404, "ResourceNotFound")


def test_retrieving_with_an_id_that_is_not_a_uri_is_400(api: httpx.Client) -> None:
    assert_problem(api.get("/entities/not-a-uri"), 400, "BadRequestData")


def test_create_accepts_the_concise_representation(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, {
        "id": entity_id, "type": "Streetlight",
        "powerState": "on",
        "illuminance": {"value": 1200, "unitCode": "LUX"},
        "tags": ["led", "smart"],
        "circuit": {"object": "urn:ngsi-ld:Circuit:7"},
        "name": {"languageMap": {"en": "Lamp", "sv": "Lampa"}},
    })
    assert get(api, entity_id) == {
        "id": entity_id, "type": "Streetlight",
        "powerState": {"type": "Property", "value": "on"},
        "illuminance": {"type": "Property", "value": 1200, "unitCode": "LUX"},
        "tags": {"type": "Property", "value": ["led", "smart"]},
        "circuit": {"type": "Relationship", "object": "urn:ngsi-ld:Circuit:7"},
        "name": {"type": "LanguageProperty", "languageMap": {"en": "Lamp", "sv": "Lampa"}},
    }


def test_create_accepts_a_concise_geoproperty_given_as_bare_geojson(api: httpx.Client) -> None:
    # Clause 4.5.3: in the concise form a GeoProperty may be just its GeoJSON geometry.
    entity_id = new_id()
    point = {"type": "Point", "coordinates": [18.0686, 59.3293]}
    response = api.post("/entities", json={"id": entity_id, "type": "Streetlight",
                                           "location": point})
    assert response.status_code == 201, response.text
    assert get(api, entity_id)["location"] == {"type": "GeoProperty", "value": point}


def test_an_entity_read_in_concise_form_can_be_created_again_unchanged(
        api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id, illuminance={"type": "Property", "value": 3,
                                                    "unitCode": "LUX"}))
    concise = get(api, entity_id, options="concise")
    copy_id = new_id()
    response = api.post("/entities", json={**concise, "id": copy_id})
    assert response.status_code == 201, response.text
    assert {**get(api, copy_id), "id": entity_id} == get(api, entity_id)


def test_client_supplied_system_attributes_are_ignored(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, {"id": entity_id, "type": "Streetlight", "createdAt": "2000-01-01T00:00:00Z",
                 "modifiedAt": "2000-01-01T00:00:00Z"})
    entity = get(api, entity_id, options="sysAttrs")
    assert entity["createdAt"] > "2020"
    assert entity["modifiedAt"] == entity["createdAt"]


def test_sys_attrs_show_that_an_update_moves_modified_at_but_not_created_at(
        api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id))
    before = get(api, entity_id, options="sysAttrs")
    assert "createdAt" not in get(api, entity_id)
    response = api.patch(url(entity_id, "attrs"),
                         json={"powerState": {"type": "Property", "value": "off"}})
    assert response.status_code == 204
    after = get(api, entity_id, options="sysAttrs")
    assert after["createdAt"] == before["createdAt"]
    assert after["modifiedAt"] > before["modifiedAt"]
    assert after["powerState"]["createdAt"] == before["powerState"]["createdAt"]
    assert after["powerState"]["modifiedAt"] > before["powerState"]["modifiedAt"]
    assert after["location"]["modifiedAt"] == before["location"]["modifiedAt"]


def test_an_entity_may_have_several_types(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, {"id": entity_id, "type": ["Streetlight", "Device"]})
    assert sorted(get(api, entity_id)["type"]) == ["Device", "Streetlight"]


def test_json_ld_id_and_type_keywords_are_accepted(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, {"@id": entity_id, "@type": "Streetlight", "powerState": "on"})
    assert get(api, entity_id)["type"] == "Streetlight"


def test_concurrent_appends_of_different_attributes_all_land(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id))

    def append(n: int) -> int:
        return api.post(url(entity_id, "attrs"), json={f"sensor{n}": n}).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(append, range(24)))
    assert statuses == [204] * 24
    entity = get(api, entity_id)
    assert {f"sensor{n}" for n in range(24)} <= set(entity)


def test_values_round_trip_exactly(api: httpx.Client) -> None:
    entity_id = new_id()
    values = {"big": 9007199254740993, "small": -(2**63), "tiny": 5e-324, "third": 1 / 3,
              "text": "Söder Mälarstrand 🚲 \"quoted\" \\ \u0000", "empty": "", "zero": -0.0,
              "nested": {"a": [1, {"b": [True, False]}], "": "empty key"}}
    create(api, streetlight(entity_id, **{k: {"type": "Property", "value": v}
                                          for k, v in values.items()}))
    entity = get(api, entity_id)
    for name, value in values.items():
        assert entity[name]["value"] == value, name
        assert type(entity[name]["value"]) is type(value), name


# --- replace, merge, delete -------------------------------------------------------------


def test_replace_entity_keeps_only_the_attributes_of_the_new_body(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id))
    response = api.put(url(entity_id), json={
        "type": "Streetlight", "colour": {"type": "Property", "value": "warm"}})
    assert response.status_code == 204
    assert get(api, entity_id) == {"id": entity_id, "type": "Streetlight",
                                   "colour": {"type": "Property", "value": "warm"}}


def test_replace_entity_keeps_its_creation_time(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id))
    created = get(api, entity_id, options="sysAttrs")["createdAt"]
    assert api.put(url(entity_id), json={"type": "Streetlight"}).status_code == 204
    assert get(api, entity_id, options="sysAttrs")["createdAt"] == created


def test_replace_with_another_id_in_the_body_is_400_and_changes_nothing(
        api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id))
    response = api.put(url(entity_id), json={"id": new_id(), "type": "Streetlight"})
    assert_problem(response, 400, "BadRequestData")
    assert get(api, entity_id)["powerState"]["value"] == "on"


def test_replace_of_an_unknown_entity_is_404(api: httpx.Client) -> None:
    response = api.put(url(new_id()), json={"type": "Streetlight"})
    assert_problem(response, 404, "ResourceNotFound")


def test_merge_adds_new_attributes_and_merges_existing_ones(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id, powerState={
        "type": "Property", "value": "on", "reliability": {"type": "Property", "value": 0.9}}))
    response = api.patch(url(entity_id), json={
        "powerState": {"type": "Property", "value": "off"},
        "colour": {"type": "Property", "value": "warm"}})
    assert response.status_code == 204, response.text
    entity = get(api, entity_id)
    assert entity["powerState"] == {"type": "Property", "value": "off",
                                    "reliability": {"type": "Property", "value": 0.9}}
    assert entity["colour"] == {"type": "Property", "value": "warm"}
    assert entity["location"]["value"]["coordinates"] == [18.0686, 59.3293]


def test_merge_with_ngsi_ld_null_deletes_the_attribute(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id, colour="warm"))
    response = api.patch(url(entity_id), json={"colour": NULL,
                                               "powerState": {"type": "Property", "value": NULL}})
    assert response.status_code == 204, response.text
    assert set(get(api, entity_id)) == {"id", "type", "location"}


def test_merge_with_ngsi_ld_null_in_a_sub_attribute_deletes_only_that(
        api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id, powerState={
        "type": "Property", "value": "on", "reliability": {"type": "Property", "value": 0.9},
        "source": {"type": "Property", "value": "meter"}}))
    response = api.patch(url(entity_id), json={"powerState": {
        "type": "Property", "value": "on", "reliability": NULL}})
    assert response.status_code == 204, response.text
    assert get(api, entity_id)["powerState"] == {
        "type": "Property", "value": "on", "source": {"type": "Property", "value": "meter"}}


def test_merge_accepts_the_merge_patch_media_type(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id))
    response = api.patch(url(entity_id), content=json.dumps({"colour": "warm"}),
                         headers=MERGE_PATCH)
    assert response.status_code == 204, response.text
    assert get(api, entity_id)["colour"] == {"type": "Property", "value": "warm"}


def test_merge_of_an_unknown_entity_is_404(api: httpx.Client) -> None:
    assert_problem(api.patch(url(new_id()), json={"colour": "warm"}), 404, "ResourceNotFound")


def test_merge_with_another_id_in_the_body_is_400(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id))
    response = api.patch(url(entity_id), json={"id": new_id(), "colour": "warm"})
    assert_problem(response, 400, "BadRequestData")
    assert "colour" not in get(api, entity_id)


def test_delete_entity_removes_it(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id))
    response = api.delete(url(entity_id))
    assert response.status_code == 204
    assert not exists(api, entity_id)
    assert_problem(api.delete(url(entity_id)), 404, "ResourceNotFound")


def test_a_deleted_entity_id_can_be_created_again(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id))
    assert api.delete(url(entity_id)).status_code == 204
    create(api, {"id": entity_id, "type": "Bench"})
    assert get(api, entity_id) == {"id": entity_id, "type": "Bench"}


# --- append (POST attrs) ----------------------------------------------------------------


def test_append_adds_and_overwrites_attributes_with_204(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id))
    response = api.post(url(entity_id, "attrs"), json={
        "powerState": {"type": "Property", "value": "off"},
        "colour": {"type": "Property", "value": "warm"}})
    assert response.status_code == 204, response.text
    entity = get(api, entity_id)
    assert entity["powerState"]["value"] == "off"
    assert entity["colour"]["value"] == "warm"


def test_append_with_no_overwrite_keeps_existing_values_and_answers_207(
        api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id))
    response = api.post(url(entity_id, "attrs"), params={"options": "noOverwrite"}, json={
        "powerState": {"type": "Property", "value": "off"},
        "colour": {"type": "Property", "value": "warm"}})
    assert response.status_code == 207, response.text
    result = response.json()
    assert result["updated"] == ["colour"]
    assert [item["attributeName"] for item in result["notUpdated"]] == ["powerState"]
    assert all(isinstance(item["reason"], str) and item["reason"]
               for item in result["notUpdated"])
    entity = get(api, entity_id)
    assert entity["powerState"]["value"] == "on"
    assert entity["colour"]["value"] == "warm"


def test_append_with_a_new_dataset_id_adds_an_instance(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id))
    response = api.post(url(entity_id, "attrs"), json={"powerState": {
        "type": "Property", "value": "off", "datasetId": "urn:ngsi-ld:Dataset:backup"}})
    assert response.status_code == 204, response.text
    instances = get(api, entity_id)["powerState"]
    assert sorted(json.dumps(i, sort_keys=True) for i in instances) == sorted(
        json.dumps(i, sort_keys=True) for i in [
            {"type": "Property", "value": "on"},
            {"type": "Property", "value": "off", "datasetId": "urn:ngsi-ld:Dataset:backup"}])


def test_append_to_an_unknown_entity_is_404(api: httpx.Client) -> None:
    response = api.post(url(new_id(), "attrs"), json={"colour": "warm"})
    assert_problem(response, 404, "ResourceNotFound")


def test_append_with_another_id_in_the_body_is_400(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id))
    response = api.post(url(entity_id, "attrs"), json={"id": new_id(), "colour": "warm"})
    assert_problem(response, 400, "BadRequestData")


def test_append_with_an_unknown_option_is_400(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id))
    response = api.post(url(entity_id, "attrs"), params={"options": "overwriteAll"},
                        json={"colour": "warm"})
    assert_problem(response, 400)
    assert "colour" not in get(api, entity_id)


# --- update (PATCH attrs) ---------------------------------------------------------------


def test_update_attributes_of_existing_attributes_is_204(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id))
    response = api.patch(url(entity_id, "attrs"),
                         json={"powerState": {"type": "Property", "value": "off"}})
    assert response.status_code == 204, response.text
    assert response.content == b""
    assert get(api, entity_id)["powerState"] == {"type": "Property", "value": "off"}


def test_update_attributes_adds_the_ones_the_entity_lacks(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id))
    response = api.patch(url(entity_id, "attrs"), json={
        "powerState": {"type": "Property", "value": "off"},
        "colour": {"type": "Property", "value": "warm"}})
    assert response.status_code == 204, response.text
    entity = get(api, entity_id)
    assert entity["powerState"]["value"] == "off"
    assert entity["colour"]["value"] == "warm"


def test_update_attribute_to_ngsi_ld_null_deletes_it(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id, colour="warm"))
    response = api.patch(url(entity_id, "attrs"), json={"colour": NULL})
    assert response.status_code == 204, response.text
    assert "colour" not in get(api, entity_id)


def test_update_attributes_of_an_unknown_entity_is_404(api: httpx.Client) -> None:
    response = api.patch(url(new_id(), "attrs"), json={"powerState": "off"})
    assert_problem(response, 404, "ResourceNotFound")


def test_update_attributes_with_an_empty_fragment_is_400(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id))
    assert_problem(api.patch(url(entity_id, "attrs"), json={}), 400)


# --- partial attribute update (PATCH attrs/{attr}) --------------------------------------


def test_partial_attribute_update_changes_the_value_and_keeps_sub_attributes(
        api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id, powerState={
        "type": "Property", "value": "on", "reliability": {"type": "Property", "value": 0.9}}))
    response = api.patch(url(entity_id, "attrs", "powerState"), json={"value": "dim"})
    assert response.status_code == 204, response.text
    assert get(api, entity_id)["powerState"] == {
        "type": "Property", "value": "dim", "reliability": {"type": "Property", "value": 0.9}}


def test_partial_update_of_metadata_alone_keeps_the_value(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id))
    response = api.patch(url(entity_id, "attrs", "powerState"),
                         json={"observedAt": "2024-06-01T12:00:00Z"})
    assert response.status_code == 204, response.text
    assert response.content == b""
    assert get(api, entity_id)["powerState"] == {"type": "Property", "value": "on",
                                                 "observedAt": "2024-06-01T12:00:00Z"}


def test_partial_update_of_a_missing_attribute_is_404(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id))
    response = api.patch(url(entity_id, "attrs", "colour"), json={"value": "warm"})
    assert_problem(response, 404, "ResourceNotFound")
    assert "colour" not in get(api, entity_id)


def test_partial_update_targets_the_instance_named_by_its_dataset_id(
        api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id, powerState=[
        {"type": "Property", "value": "on"},
        {"type": "Property", "value": "on", "datasetId": "urn:ngsi-ld:Dataset:meter"}]))
    response = api.patch(url(entity_id, "attrs", "powerState"),
                         json={"value": "off", "datasetId": "urn:ngsi-ld:Dataset:meter"})
    assert response.status_code == 204, response.text
    by_dataset = {i.get("datasetId"): i["value"] for i in get(api, entity_id)["powerState"]}
    assert by_dataset == {None: "on", "urn:ngsi-ld:Dataset:meter": "off"}


def test_partial_update_with_ngsi_ld_null_value_deletes_the_attribute(
        api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id))
    response = api.patch(url(entity_id, "attrs", "powerState"), json={"value": NULL})
    assert response.status_code == 204, response.text
    assert "powerState" not in get(api, entity_id)


def test_partial_update_cannot_change_the_attribute_kind(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id))
    response = api.patch(url(entity_id, "attrs", "powerState"),
                         json={"type": "Relationship", "object": "urn:ngsi-ld:Circuit:1"})
    assert_problem(response, 400, "BadRequestData")
    assert get(api, entity_id)["powerState"] == {"type": "Property", "value": "on"}


def test_single_attributes_cannot_be_read_on_their_own(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id))
    response = api.get(url(entity_id, "attrs", "powerState"))
    assert 400 <= response.status_code < 500
    assert_problem(response, response.status_code)


# --- replace attribute (PUT attrs/{attr}) -----------------------------------------------


def test_replace_attribute_replaces_it_whole(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id, powerState={
        "type": "Property", "value": "on", "reliability": {"type": "Property", "value": 0.9}}))
    response = api.put(url(entity_id, "attrs", "powerState"),
                       json={"type": "Property", "value": "off", "unitCode": "C62"})
    assert response.status_code == 204, response.text
    assert get(api, entity_id)["powerState"] == {"type": "Property", "value": "off",
                                                 "unitCode": "C62"}


def test_replace_of_a_missing_attribute_is_404(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id))
    response = api.put(url(entity_id, "attrs", "colour"), json={"type": "Property", "value": 1})
    assert_problem(response, 404, "ResourceNotFound")


def test_replace_attribute_refuses_the_merge_patch_media_type(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id))
    response = api.put(url(entity_id, "attrs", "powerState"),
                       content=json.dumps({"value": "off"}), headers=MERGE_PATCH)
    assert_problem(response, 415)


# --- delete attribute -------------------------------------------------------------------


def multi_instance(entity_id: str) -> dict[str, Any]:
    return streetlight(entity_id, powerState=[
        {"type": "Property", "value": "on"},
        {"type": "Property", "value": "off", "datasetId": "urn:ngsi-ld:Dataset:a"},
        {"type": "Property", "value": "dim", "datasetId": "urn:ngsi-ld:Dataset:b"}])


def datasets(entity: dict[str, Any], attr: str) -> set[str | None]:
    instances = entity.get(attr, [])
    instances = instances if isinstance(instances, list) else [instances]
    return {i.get("datasetId") for i in instances}


def test_delete_attribute_removes_the_default_instance_only(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, multi_instance(entity_id))
    assert api.delete(url(entity_id, "attrs", "powerState")).status_code == 204
    assert datasets(get(api, entity_id), "powerState") == {"urn:ngsi-ld:Dataset:a",
                                                           "urn:ngsi-ld:Dataset:b"}


def test_delete_attribute_with_a_dataset_id_removes_that_instance(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, multi_instance(entity_id))
    response = api.delete(url(entity_id, "attrs", "powerState"),
                          params={"datasetId": "urn:ngsi-ld:Dataset:a"})
    assert response.status_code == 204
    assert datasets(get(api, entity_id), "powerState") == {None, "urn:ngsi-ld:Dataset:b"}


def test_delete_attribute_with_delete_all_removes_every_instance(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, multi_instance(entity_id))
    response = api.delete(url(entity_id, "attrs", "powerState"), params={"deleteAll": "true"})
    assert response.status_code == 204
    assert "powerState" not in get(api, entity_id)


def test_delete_of_a_missing_attribute_or_dataset_is_404(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, multi_instance(entity_id))
    assert_problem(api.delete(url(entity_id, "attrs", "colour")), 404, "ResourceNotFound")
    response = api.delete(url(entity_id, "attrs", "powerState"),
                          params={"datasetId": "urn:ngsi-ld:Dataset:z"})
    assert_problem(response, 404, "ResourceNotFound")
    assert datasets(get(api, entity_id), "powerState") == {None, "urn:ngsi-ld:Dataset:a",
                                                           "urn:ngsi-ld:Dataset:b"}


def test_delete_without_dataset_id_needs_a_default_instance(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id, colour={"type": "Property", "value": "warm",
                                               "datasetId": "urn:ngsi-ld:Dataset:a"}))
    assert_problem(api.delete(url(entity_id, "attrs", "colour")), 404, "ResourceNotFound")
    assert datasets(get(api, entity_id), "colour") == {"urn:ngsi-ld:Dataset:a"}


def test_replace_attribute_replaces_only_the_instance_of_its_dataset(
        api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, multi_instance(entity_id))
    response = api.put(url(entity_id, "attrs", "powerState"), json={
        "type": "Property", "value": "flashing", "datasetId": "urn:ngsi-ld:Dataset:b"})
    assert response.status_code == 204, response.text
    by_dataset = {i.get("datasetId"): i["value"] for i in get(api, entity_id)["powerState"]}
    assert by_dataset == {None: "on", "urn:ngsi-ld:Dataset:a": "off",
                          "urn:ngsi-ld:Dataset:b": "flashing"}


def test_delete_all_must_be_true_or_false(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, multi_instance(entity_id))
    response = api.delete(url(entity_id, "attrs", "powerState"), params={"deleteAll": "yes"})
    assert_problem(response, 400)
    assert len(datasets(get(api, entity_id), "powerState")) == 3


# --- multi-instance attributes ----------------------------------------------------------


def test_multi_instance_attribute_round_trips_as_an_array(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, multi_instance(entity_id))
    assert get(api, entity_id)["powerState"] == multi_instance(entity_id)["powerState"]


def test_dataset_id_parameter_shows_only_those_instances(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, multi_instance(entity_id))
    entity = get(api, entity_id, datasetId="urn:ngsi-ld:Dataset:b")
    assert entity["powerState"] == {"type": "Property", "value": "dim",
                                    "datasetId": "urn:ngsi-ld:Dataset:b"}
    assert get(api, entity_id, datasetId="@none", attrs="powerState")["powerState"] == {
        "type": "Property", "value": "on"}


def test_two_instances_with_the_same_dataset_id_are_400(api: httpx.Client) -> None:
    entity_id = new_id()
    response = api.post("/entities", json=streetlight(entity_id, powerState=[
        {"type": "Property", "value": "on", "datasetId": "urn:ngsi-ld:Dataset:a"},
        {"type": "Property", "value": "off", "datasetId": "urn:ngsi-ld:Dataset:a"}]))
    assert_problem(response, 400, "BadRequestData")
    assert not exists(api, entity_id)


def test_key_values_of_a_multi_instance_attribute_keys_values_by_dataset(
        api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, multi_instance(entity_id))
    entity = get(api, entity_id, options="keyValues", attrs="powerState")
    assert entity["powerState"] == {"dataset": {"@none": "on", "urn:ngsi-ld:Dataset:a": "off",
                                                "urn:ngsi-ld:Dataset:b": "dim"}}


# --- attribute kinds --------------------------------------------------------------------


NAME = {"type": "LanguageProperty",
        "languageMap": {"en": "City Hall lamp", "sv": "Stadshusets lykta", "@none": "SL-1"}}


def test_language_property_round_trips(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id, name=NAME))
    assert get(api, entity_id)["name"] == NAME


def test_lang_parameter_answers_one_language_as_a_property_with_lang(
        api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id, name=NAME))
    assert get(api, entity_id, lang="sv")["name"] == {
        "type": "Property", "value": "Stadshusets lykta", "lang": "sv"}


def test_lang_parameter_prefers_the_highest_weighted_language(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id, name=NAME))
    name = get(api, entity_id, lang="sv;q=0.5,en;q=0.9")["name"]
    assert (name["value"], name["lang"]) == ("City Hall lamp", "en")


def test_lang_parameter_falls_back_to_the_none_tag(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id, name=NAME))
    assert get(api, entity_id, lang="fi")["name"]["value"] == "SL-1"


def test_lang_parameter_with_key_values_answers_the_string(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id, name=NAME))
    assert get(api, entity_id, lang="en", options="keyValues")["name"] == "City Hall lamp"


@pytest.mark.parametrize("language_map", [{}, {"en": 5}, {"": "x"}, "City Hall", ["x"]])
def test_language_property_needs_strings_under_language_tags(
        api: httpx.Client, language_map: Any) -> None:
    entity_id = new_id()
    response = api.post("/entities", json=streetlight(entity_id, name={
        "type": "LanguageProperty", "languageMap": language_map}))
    assert_problem(response, 400, "BadRequestData")
    assert not exists(api, entity_id)


def test_vocab_property_round_trips(api: httpx.Client) -> None:
    entity_id = new_id()
    category = {"type": "VocabProperty", "vocab": "street"}
    create(api, streetlight(entity_id, category=category))
    assert get(api, entity_id)["category"] == category


def test_vocab_property_terms_follow_the_context(api: httpx.Client, city_context: str) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id, category={"type": "VocabProperty", "vocab": "street"}),
           headers=link(city_context))
    # Read with the core context only, the term is shown as the IRI it was expanded to.
    assert get(api, entity_id)["category"]["vocab"] == EX + "categories/street"
    response = api.get(url(entity_id), headers=link(city_context))
    assert response.json()["category"] == {"type": "VocabProperty", "vocab": "street"}


def test_list_property_round_trips_in_order(api: httpx.Client) -> None:
    entity_id = new_id()
    readings = {"type": "ListProperty", "valueList": [3, 1, 2, 1], "unitCode": "LUX"}
    create(api, streetlight(entity_id, readings=readings))
    assert get(api, entity_id)["readings"] == readings


def test_json_property_is_kept_verbatim(api: httpx.Client) -> None:
    entity_id = new_id()
    config = {"type": "JsonProperty",
              "json": {"schedule": [{"on": "18:00", "off": None}], "@type": "raw", "id": 3}}
    create(api, streetlight(entity_id, config=config))
    assert get(api, entity_id)["config"] == config


def test_key_values_show_bare_values_and_mark_special_kinds(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(
        entity_id, name=NAME, category={"type": "VocabProperty", "vocab": "street"},
        config={"type": "JsonProperty", "json": {"a": 1}},
        circuit={"type": "Relationship", "object": "urn:ngsi-ld:Circuit:7"}))
    assert get(api, entity_id, options="keyValues") == {
        "id": entity_id, "type": "Streetlight", "powerState": "on",
        "location": {"type": "Point", "coordinates": [18.0686, 59.3293]},
        "name": {"languageMap": NAME["languageMap"]},
        "category": {"vocab": "street"},
        "config": {"json": {"a": 1}},
        "circuit": "urn:ngsi-ld:Circuit:7",
    }


def test_concise_drops_attribute_types_but_keeps_metadata(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(
        entity_id, illuminance={"type": "Property", "value": 3, "unitCode": "LUX"},
        circuit={"type": "Relationship", "object": "urn:ngsi-ld:Circuit:7"}))
    entity = get(api, entity_id, options="concise")
    assert entity["powerState"] == "on"
    assert entity["illuminance"] == {"value": 3, "unitCode": "LUX"}
    assert entity["circuit"] == {"object": "urn:ngsi-ld:Circuit:7"}


def test_format_parameter_is_the_same_as_the_option(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id))
    assert get(api, entity_id, format="keyValues") == get(api, entity_id, options="keyValues")


def test_two_representations_at_once_are_400(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id))
    assert_problem(api.get(url(entity_id), params={"options": "keyValues,concise"}), 400)


def test_an_unknown_option_is_400(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id))
    assert_problem(api.get(url(entity_id), params={"options": "prettyPrint"}), 400)


# --- attrs, pick and omit ---------------------------------------------------------------


def test_attrs_keeps_only_the_named_attributes(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id, colour="warm"))
    assert get(api, entity_id, attrs="colour,powerState") == {
        "id": entity_id, "type": "Streetlight",
        "colour": {"type": "Property", "value": "warm"},
        "powerState": {"type": "Property", "value": "on"}}


def test_attrs_naming_none_of_the_entity_attributes_is_404(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id))
    assert_problem(api.get(url(entity_id), params={"attrs": "colour"}), 404, "ResourceNotFound")
    assert set(get(api, entity_id, attrs="colour,powerState")) == {"id", "type", "powerState"}


def test_pick_keeps_only_the_named_members(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id, colour="warm"))
    assert get(api, entity_id, pick="id,colour") == {
        "id": entity_id, "colour": {"type": "Property", "value": "warm"}}


def test_pick_members_may_be_separated_by_bars(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id))
    assert get(api, entity_id, pick="id|type") == {"id": entity_id, "type": "Streetlight"}


def test_omit_removes_the_named_members(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id))
    assert get(api, entity_id, omit="type,location") == {
        "id": entity_id, "powerState": {"type": "Property", "value": "on"}}


@pytest.mark.parametrize("params", [
    {"pick": "powerState", "attrs": "powerState"},
    {"pick": "powerState", "omit": "powerState"},
    {"pick": "powerState{"},
    {"pick": ",id"},
    {"omit": ""},
])
def test_inconsistent_or_malformed_projections_are_400(api: httpx.Client,
                                                       params: dict[str, str]) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id))
    assert_problem(api.get(url(entity_id), params=params), 400, "BadRequestData")


# --- linked entities (join) -------------------------------------------------------------


@pytest.fixture
def linked(api: httpx.Client) -> dict[str, str]:
    """A streetlight on a circuit, fed by a substation; the ids by role."""
    ids = {"lamp": new_id(), "circuit": new_id("Circuit"), "substation": new_id("Substation")}
    create(api, {"id": ids["substation"], "type": "Substation", "name": "Kungsholmen"})
    create(api, {"id": ids["circuit"], "type": "Circuit", "name": "C7",
                 "fedBy": {"type": "Relationship", "object": ids["substation"]}})
    create(api, streetlight(ids["lamp"], circuit={"type": "Relationship",
                                                  "object": ids["circuit"]}))
    return ids


def test_join_inline_puts_the_linked_entity_inside_the_relationship(
        api: httpx.Client, linked: dict[str, str]) -> None:
    circuit = get(api, linked["lamp"], join="inline")["circuit"]
    assert circuit["object"] == linked["circuit"]
    assert circuit["entity"] == {
        "id": linked["circuit"], "type": "Circuit",
        "name": {"type": "Property", "value": "C7"},
        "fedBy": {"type": "Relationship", "object": linked["substation"]}}


def test_join_level_follows_relationships_further(api: httpx.Client,
                                                  linked: dict[str, str]) -> None:
    circuit = get(api, linked["lamp"], join="inline", joinLevel="2")["circuit"]
    assert circuit["entity"]["fedBy"]["entity"]["name"]["value"] == "Kungsholmen"


def test_join_flat_lists_the_linked_entities_after_the_entity(
        api: httpx.Client, linked: dict[str, str]) -> None:
    response = api.get(url(linked["lamp"]), params={"join": "flat", "joinLevel": "2"})
    assert response.status_code == 200
    body = response.json()
    assert [e["id"] for e in body] == [linked["lamp"], linked["circuit"], linked["substation"]]
    assert body[0]["circuit"] == {"type": "Relationship", "object": linked["circuit"]}


def test_join_inline_with_key_values_replaces_the_relationship_by_the_entity(
        api: httpx.Client, linked: dict[str, str]) -> None:
    lamp = get(api, linked["lamp"], join="inline", options="keyValues")
    assert lamp["circuit"] == {"id": linked["circuit"], "type": "Circuit", "name": "C7",
                               "fedBy": linked["substation"]}


def test_nested_pick_shapes_the_linked_entity(api: httpx.Client,
                                              linked: dict[str, str]) -> None:
    lamp = get(api, linked["lamp"], join="inline", pick="id,circuit{name}")
    assert lamp == {"id": linked["lamp"], "circuit": {
        "type": "Relationship", "object": linked["circuit"],
        "entity": {"name": {"type": "Property", "value": "C7"}}}}


def test_nested_pick_without_join_is_400(api: httpx.Client, linked: dict[str, str]) -> None:
    response = api.get(url(linked["lamp"]), params={"pick": "circuit{name}"})
    assert_problem(response, 400, "BadRequestData")


@pytest.mark.parametrize("params", [{"join": "sideways"}, {"join": "inline", "joinLevel": "0"},
                                    {"join": "inline", "joinLevel": "two"}])
def test_bad_join_parameters_are_400(api: httpx.Client, linked: dict[str, str],
                                     params: dict[str, str]) -> None:
    assert_problem(api.get(url(linked["lamp"]), params=params), 400, "BadRequestData")


@pytest.fixture
def carpool(api: httpx.Client) -> dict[str, str]:
    """A car whose one relationship points at two passengers."""
    ids = {"car": new_id("Car"), "anna": new_id("Person"), "erik": new_id("Person")}
    for who in ("anna", "erik"):
        create(api, {"id": ids[who], "type": "Person", "name": who.title()})
    create(api, {"id": ids["car"], "type": "Car", "passengers": {
        "type": "Relationship", "object": [ids["anna"], ids["erik"]]}})
    return ids


@pytest.mark.parametrize("options", ["normalized", "keyValues"])
def test_join_inline_follows_a_relationship_with_several_objects(
        api: httpx.Client, carpool: dict[str, str], options: str) -> None:
    response = api.get(url(carpool["car"]), params={"join": "inline", "options": options})
    assert response.status_code == 200, response.text
    passengers = response.json()["passengers"]
    linked = passengers if options == "keyValues" else passengers["entity"]
    linked = linked if isinstance(linked, list) else [linked]
    assert {e["id"] for e in linked} == {carpool["anna"], carpool["erik"]}


def test_join_flat_follows_a_relationship_with_several_objects(
        api: httpx.Client, carpool: dict[str, str]) -> None:
    body = get_list(api, carpool["car"], join="flat")
    assert [e["id"] for e in body] == [carpool["car"], carpool["anna"], carpool["erik"]]


def get_list(api: httpx.Client, entity_id: str, **params: Any) -> list[dict[str, Any]]:
    response = api.get(url(entity_id), params=params)
    assert response.status_code == 200, response.text
    body: list[dict[str, Any]] = response.json()
    return body


def test_a_dangling_relationship_is_left_as_it_is_by_a_join(api: httpx.Client) -> None:
    entity_id = new_id()
    circuit = {"type": "Relationship", "object": new_id("Circuit")}
    create(api, streetlight(entity_id, circuit=circuit))
    assert get(api, entity_id, join="inline")["circuit"] == circuit


# --- the type selector ------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "body", "params"), [
    ("GET", "", None, {}),
    ("DELETE", "", None, {}),
    ("PATCH", "", {"colour": "warm"}, {}),
    ("PUT", "", {"type": "Streetlight"}, {}),
    ("POST", "/attrs", {"colour": "warm"}, {}),
    ("PATCH", "/attrs", {"powerState": "off"}, {}),
    ("PATCH", "/attrs/powerState", {"value": "off"}, {}),
    ("PUT", "/attrs/powerState", {"type": "Property", "value": "off"}, {}),
    ("DELETE", "/attrs/powerState", None, {}),
])
def test_an_operation_with_a_type_the_entity_lacks_is_404_and_changes_nothing(
        api: httpx.Client, method: str, path: str, body: Any, params: dict[str, str]) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id))
    before = get(api, entity_id, options="sysAttrs")
    response = api.request(method, url(entity_id) + path, json=body,
                           params={**params, "type": "Bench"})
    assert_problem(response, 404, "ResourceNotFound")
    assert get(api, entity_id, options="sysAttrs") == before


def test_an_operation_with_a_type_the_entity_has_goes_ahead(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, {"id": entity_id, "type": ["Streetlight", "Device"], "powerState": "on"})
    response = api.patch(url(entity_id, "attrs"), params={"type": "Device"},
                         json={"powerState": "off"})
    assert response.status_code == 204, response.text
    assert get(api, entity_id, type="Device")["powerState"]["value"] == "off"
    assert api.delete(url(entity_id), params={"type": "Streetlight"}).status_code == 204


def test_the_type_selector_may_list_several_types(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id))
    assert api.get(url(entity_id), params={"type": "Bench,Streetlight"}).status_code == 200
    assert api.get(url(entity_id), params={"type": "Bench,Device"}).status_code == 404


# --- content negotiation and @context ---------------------------------------------------


def test_json_answers_carry_the_context_in_a_link_header(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id))
    response = api.get(url(entity_id), headers={"Accept": "application/json"})
    assert response.headers["content-type"] == "application/json"
    assert f"<{CORE_CONTEXT}>" in response.headers["Link"]
    assert f'rel="{CONTEXT_REL}"' in response.headers["Link"]
    assert "@context" not in response.json()


def test_json_ld_answers_carry_the_context_inline(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id))
    response = api.get(url(entity_id), headers={"Accept": "application/ld+json"})
    assert response.headers["content-type"] == "application/ld+json"
    assert CONTEXT_REL not in response.headers.get("Link", "")
    assert response.json()["@context"] == CORE_CONTEXT


def test_geo_json_answers_a_feature(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id))
    response = api.get(url(entity_id), headers={"Accept": "application/geo+json"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/geo+json"
    feature = response.json()
    assert feature["type"] == "Feature"
    assert feature["id"] == entity_id
    assert feature["geometry"] == {"type": "Point", "coordinates": [18.0686, 59.3293]}
    assert feature["properties"]["type"] == "Streetlight"
    assert feature["properties"]["powerState"] == {"type": "Property", "value": "on"}


def test_geometry_property_picks_the_feature_geometry(api: httpx.Client) -> None:
    entity_id = new_id()
    area = {"type": "Polygon", "coordinates": [[[18.06, 59.32], [18.07, 59.32], [18.07, 59.33],
                                                [18.06, 59.32]]]}
    create(api, streetlight(entity_id, litArea={"type": "GeoProperty", "value": area}))
    response = api.get(url(entity_id), params={"geometryProperty": "litArea"},
                       headers={"Accept": "application/geo+json"})
    assert response.json()["geometry"] == area


@pytest.mark.parametrize("options", ["keyValues", "concise"])
def test_geo_json_features_keep_their_geometry_in_other_representations(
        api: httpx.Client, options: str) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id))
    response = api.get(url(entity_id), params={"options": options},
                       headers={"Accept": "application/geo+json"})
    assert response.status_code == 200
    feature = response.json()
    assert feature["geometry"] == {"type": "Point", "coordinates": [18.0686, 59.3293]}
    assert feature["properties"]["powerState"] == "on"


def test_a_feature_without_geometry_has_a_null_geometry(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, {"id": entity_id, "type": "Bench"})
    response = api.get(url(entity_id), headers={"Accept": "application/geo+json"})
    assert response.json()["geometry"] is None


def test_accept_weights_choose_the_answer_format(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id))
    accept = "application/json;q=0.5, application/ld+json;q=0.9"
    response = api.get(url(entity_id), headers={"Accept": accept})
    assert response.headers["content-type"] == "application/ld+json"
    response = api.get(url(entity_id), headers={"Accept": "*/*"})
    assert response.headers["content-type"] == "application/json"


@pytest.mark.parametrize("accept", ["text/html", "application/xml", "application/json;q=0"])
def test_an_accept_header_the_broker_cannot_satisfy_is_406(api: httpx.Client,
                                                           accept: str) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id))
    assert_problem(api.get(url(entity_id), headers={"Accept": accept}), 406)


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml",
                                          "application/x-www-form-urlencoded"])
def test_an_unsupported_content_type_is_415_and_nothing_is_stored(
        api: httpx.Client, content_type: str) -> None:
    entity_id = new_id()
    response = api.post("/entities", content=json.dumps(streetlight(entity_id)),
                        headers={"Content-Type": content_type})
    assert_problem(response, 415)
    assert not exists(api, entity_id)


def test_json_with_a_charset_parameter_is_accepted(api: httpx.Client) -> None:
    entity_id = new_id()
    response = api.post("/entities", content=json.dumps(streetlight(entity_id)).encode(),
                        headers={"Content-Type": "application/json; charset=utf-8"})
    assert response.status_code == 201


def test_a_json_ld_body_needs_a_context(api: httpx.Client) -> None:
    entity_id = new_id()
    response = api.post("/entities", content=json.dumps(streetlight(entity_id)), headers=LD)
    assert_problem(response, 400, "BadRequestData")
    assert not exists(api, entity_id)


def test_a_json_body_must_not_carry_a_context(api: httpx.Client) -> None:
    entity_id = new_id()
    response = api.post("/entities", json={**streetlight(entity_id), "@context": CORE_CONTEXT})
    assert_problem(response, 400, "BadRequestData")
    assert not exists(api, entity_id)


def test_a_json_ld_body_must_not_also_have_a_link_header(api: httpx.Client,
                                                         city_context: str) -> None:
    entity_id = new_id()
    response = api.post("/entities",
                        content=json.dumps({**streetlight(entity_id), "@context": CORE_CONTEXT}),
                        headers={**LD, **link(city_context)})
    assert_problem(response, 400, "BadRequestData")
    assert not exists(api, entity_id)


def test_a_json_ld_body_is_read_with_its_inline_context(api: httpx.Client) -> None:
    entity_id = new_id()
    body = {"id": entity_id, "type": "Lamp", "lux": 40,
            "@context": [{"Lamp": EX + "Lamp", "lux": EX + "lux"}, CORE_CONTEXT]}
    assert api.post("/entities", content=json.dumps(body), headers=LD).status_code == 201
    assert get(api, entity_id) == {"id": entity_id, "type": EX + "Lamp",
                                   EX + "lux": {"type": "Property", "value": 40}}


def test_a_link_header_context_names_terms_on_write_and_on_read(
        api: httpx.Client, city_context: str) -> None:
    entity_id = new_id()
    create(api, {"id": entity_id, "type": "Lamp", "lux": 40}, headers=link(city_context))
    assert get(api, entity_id) == {"id": entity_id, "type": EX + "Lamp",
                                   EX + "lux": {"type": "Property", "value": 40}}
    response = api.get(url(entity_id), headers=link(city_context))
    assert response.json() == {"id": entity_id, "type": "Lamp",
                               "lux": {"type": "Property", "value": 40}}
    assert f"<{city_context}>" in response.headers["Link"]
    response = api.get(url(entity_id), headers={**link(city_context),
                                                "Accept": "application/ld+json"})
    assert response.json()["@context"] == city_context


def test_an_update_names_the_same_attribute_whatever_context_form_it_uses(
        api: httpx.Client, city_context: str) -> None:
    entity_id = new_id()
    create(api, {"id": entity_id, "type": "Lamp", "lux": 40}, headers=link(city_context))
    body = {"lux": 55, "@context": [{"lux": EX + "lux"}, CORE_CONTEXT]}
    response = api.patch(url(entity_id, "attrs"), content=json.dumps(body), headers=LD)
    assert response.status_code == 204, response.text
    response = api.patch(url(entity_id, "attrs"), json={EX + "lux": 60})
    assert response.status_code == 204, response.text
    entity = api.get(url(entity_id), headers=link(city_context)).json()
    assert entity == {"id": entity_id, "type": "Lamp", "lux": {"type": "Property", "value": 60}}


def test_the_type_selector_is_read_with_the_link_header_context(
        api: httpx.Client, city_context: str) -> None:
    entity_id = new_id()
    create(api, {"id": entity_id, "type": "Lamp"}, headers=link(city_context))
    assert api.get(url(entity_id), params={"type": "Lamp"}).status_code == 404
    response = api.get(url(entity_id), params={"type": "Lamp"}, headers=link(city_context))
    assert response.status_code == 200


def test_a_link_header_context_that_cannot_be_loaded_is_504(api: httpx.Client) -> None:
    entity_id = new_id()
    unreachable = "http://127.0.0.1:9/nowhere/context.jsonld"
    response = api.post("/entities", json=streetlight(entity_id), headers=link(unreachable))
    assert_problem(response, 504, "LdContextNotAvailable")
    assert not exists(api, entity_id)


def test_a_link_header_that_is_not_an_http_url_is_400(api: httpx.Client) -> None:
    entity_id = new_id()
    response = api.post("/entities", json=streetlight(entity_id), headers=link("file:///etc"))
    assert_problem(response, 400, "BadRequestData")
    assert not exists(api, entity_id)


# --- tenants ----------------------------------------------------------------------------


def test_entities_of_a_tenant_are_invisible_to_other_tenants(api: httpx.Client) -> None:
    entity_id, tenant, other = new_id(), new_tenant(), new_tenant()
    create(api, streetlight(entity_id), headers={"NGSILD-Tenant": tenant})
    create(api, streetlight(new_id()), headers={"NGSILD-Tenant": other})
    assert exists(api, entity_id, headers={"NGSILD-Tenant": tenant})
    assert not exists(api, entity_id)
    assert not exists(api, entity_id, headers={"NGSILD-Tenant": other})


def test_the_same_id_may_live_in_two_tenants(api: httpx.Client) -> None:
    entity_id, first, second = new_id(), new_tenant(), new_tenant()
    create(api, streetlight(entity_id), headers={"NGSILD-Tenant": first})
    create(api, {"id": entity_id, "type": "Bench"}, headers={"NGSILD-Tenant": second})
    assert api.get(url(entity_id), headers={"NGSILD-Tenant": first}).json()["type"] \
        == "Streetlight"
    assert api.get(url(entity_id), headers={"NGSILD-Tenant": second}).json()["type"] == "Bench"
    assert api.delete(url(entity_id), headers={"NGSILD-Tenant": first}).status_code == 204
    assert exists(api, entity_id, headers={"NGSILD-Tenant": second})


def test_the_tenant_header_is_echoed_on_answers(api: httpx.Client) -> None:
    entity_id, tenant = new_id(), new_tenant()
    response = api.post("/entities", json=streetlight(entity_id),
                        headers={"NGSILD-Tenant": tenant})
    assert response.headers["NGSILD-Tenant"] == tenant
    response = api.get(url(entity_id), headers={"NGSILD-Tenant": tenant})
    assert response.headers["NGSILD-Tenant"] == tenant
    response = api.get(url(new_id()), headers={"NGSILD-Tenant": tenant})
    assert response.status_code == 404
    assert response.headers["NGSILD-Tenant"] == tenant


def test_reading_from_an_unknown_tenant_is_404_nonexistent_tenant(api: httpx.Client) -> None:
    headers = {"NGSILD-Tenant": new_tenant()}
    assert_problem(api.get(url(new_id()), headers=headers), 404, "NonexistentTenant")
    response = api.get("/entities", params={"type": "Streetlight"}, headers=headers)
    assert_problem(response, 404, "NonexistentTenant")


def test_updating_in_an_unknown_tenant_is_404_nonexistent_tenant(api: httpx.Client) -> None:
    headers = {"NGSILD-Tenant": new_tenant()}
    response = api.patch(url(new_id(), "attrs"), json={"powerState": "off"}, headers=headers)
    assert_problem(response, 404, "NonexistentTenant")
    assert_problem(api.delete(url(new_id()), headers=headers), 404, "NonexistentTenant")


def test_creating_an_entity_creates_its_tenant(api: httpx.Client) -> None:
    entity_id, tenant = new_id(), new_tenant()
    create(api, streetlight(entity_id), headers={"NGSILD-Tenant": tenant})
    response = api.get("/entities", params={"type": "Streetlight"},
                       headers={"NGSILD-Tenant": tenant})
    assert [e["id"] for e in response.json()] == [entity_id]


def test_an_empty_tenant_header_names_the_default_tenant(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id), headers={"NGSILD-Tenant": ""})
    assert exists(api, entity_id)


@pytest.mark.parametrize("tenant", ["has space", "semi;colon", "x" * 300, "ü"])
def test_a_malformed_tenant_name_is_400(api: httpx.Client, tenant: str) -> None:
    entity_id = new_id()
    response = api.post("/entities", json=streetlight(entity_id),
                        headers={"NGSILD-Tenant": tenant.encode()})
    assert_problem(response, 400)


# --- bad input: a 4xx ProblemDetails, and nothing stored --------------------------------


def test_malformed_json_is_400_invalid_request(api: httpx.Client) -> None:
    response = api.post("/entities", content=b'{"id": "urn:ngsi-ld:X:1", "type": ',
                        headers={"Content-Type": "application/json"})
    assert_problem(response, 400, "InvalidRequest")
    assert not exists(api, "urn:ngsi-ld:X:1")


@pytest.mark.parametrize("body", [b"", b"[]", b"42", b'"entity"', b"null"])
def test_a_body_that_is_not_an_entity_object_is_400(api: httpx.Client, body: bytes) -> None:
    response = api.post("/entities", content=body, headers={"Content-Type": "application/json"})
    assert_problem(response, 400)


@pytest.mark.parametrize("entity_id", [
    "streetlight-1", "", 42, None, ["urn:ngsi-ld:X:1"], NULL, "urn:ngsi-ld:X: 1",
    "urn:ngsi-ld:X:<1>", "urn:ngsi-ld:X:\u200b1", "1urn:x",
])
def test_an_id_that_is_not_a_uri_is_400_and_nothing_is_stored(
        api: httpx.Client, entity_id: Any) -> None:
    response = api.post("/entities", json={"id": entity_id, "type": "Streetlight"})
    assert_problem(response, 400, "BadRequestData")


def test_an_entity_without_type_is_400(api: httpx.Client) -> None:
    entity_id = new_id()
    assert_problem(api.post("/entities", json={"id": entity_id}), 400, "BadRequestData")
    assert not exists(api, entity_id)


@pytest.mark.parametrize("name", ["power=State", "power(State)", "power<State>", "power;State",
                                  "power State", "power'State", 'power"State', "power[0]"])
def test_attribute_names_with_forbidden_characters_are_400(api: httpx.Client,
                                                           name: str) -> None:
    entity_id = new_id()
    response = api.post("/entities", json={"id": entity_id, "type": "Streetlight", name: 1})
    assert_problem(response, 400, "BadRequestData")
    assert not exists(api, entity_id)


@pytest.mark.parametrize("name", ["value", "object", "datasetId", "observedAt", "unitCode",
                                  "languageMap", "@graph"])
def test_reserved_terms_are_not_attribute_names(api: httpx.Client, name: str) -> None:
    entity_id = new_id()
    response = api.post("/entities", json={"id": entity_id, "type": "Streetlight", name: 1})
    assert_problem(response, 400, "BadRequestData")
    assert not exists(api, entity_id)


def test_forbidden_attribute_names_in_the_url_are_400(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id))
    response = api.patch(url(entity_id, "attrs", "value"), json={"value": 1})
    assert_problem(response, 400, "BadRequestData")
    response = api.delete(url(entity_id, "attrs", quote("a=b")))
    assert_problem(response, 400, "BadRequestData")


@pytest.mark.parametrize("attribute", [
    NULL,
    {"type": "Property", "value": NULL},
    {"type": "Property", "value": {"nested": NULL}},
    {"type": "Property"},
    {"type": "Temperature", "value": 3},
    {"type": "Relationship", "object": "not a uri"},
    {"type": "Relationship", "object": 42},
    {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [200, 100]}},
    {"type": "GeoProperty", "value": {"type": "Point"}},
    {"type": "GeoProperty", "value": "Stockholm"},
    {"type": "Property", "value": 1, "observedAt": "yesterday"},
    {"type": "Property", "value": 1, "datasetId": "not a uri"},
    {"type": "Property", "value": 1, "instanceId": "urn:ngsi-ld:Instance:1"},
    {"type": "Relationship", "object": "urn:ngsi-ld:X:1", "unitCode": "C62"},
    {"type": "VocabProperty", "vocab": 42},
    {"type": "ListProperty", "valueList": "not a list"},
    {"type": "JsonProperty", "json": "not an object"},
])
def test_malformed_attributes_are_400_and_nothing_is_stored(api: httpx.Client,
                                                            attribute: Any) -> None:
    entity_id = new_id()
    response = api.post("/entities", json={"id": entity_id, "type": "Streetlight",
                                           "attr": attribute})
    assert_problem(response, 400, "BadRequestData")
    assert not exists(api, entity_id)


@pytest.mark.parametrize("scope", ["Stockholm", "/Stockholm/", "/a b", 42, ["/a", 3],
                                   NULL])
def test_malformed_scopes_are_400_and_nothing_is_stored(api: httpx.Client, scope: Any) -> None:
    entity_id = new_id()
    response = api.post("/entities", json=streetlight(entity_id, scope=scope))
    assert_problem(response, 400, "BadRequestData")
    assert not exists(api, entity_id)


def test_scope_round_trips(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id, scope=["/Stockholm/Kungsholmen", "/Sweden"]))
    assert get(api, entity_id)["scope"] == ["/Stockholm/Kungsholmen", "/Sweden"]
    response = api.patch(url(entity_id), json={"scope": NULL})
    assert response.status_code == 204, response.text
    assert "scope" not in get(api, entity_id)


def test_a_body_larger_than_the_limit_is_413_and_nothing_is_stored(api: httpx.Client) -> None:
    entity_id = new_id()
    body = streetlight(entity_id, notes={"type": "Property", "value": "x" * (64 * 1024)})
    assert_problem(api.post("/entities", json=body), 413)
    assert not exists(api, entity_id)
    create(api, streetlight(entity_id))
    response = api.patch(url(entity_id, "attrs"), json={"powerState": "y" * (64 * 1024)})
    assert_problem(response, 413)
    assert get(api, entity_id)["powerState"]["value"] == "on"


def test_a_body_just_under_the_limit_is_accepted(client: httpx.Client,
                                                 settings: Settings) -> None:
    entity_id = new_id()
    padding = settings.max_body_bytes - len(json.dumps(streetlight(entity_id, notes="")))
    body = json.dumps(streetlight(entity_id, notes="x" * (padding - 10)))
    assert len(body) <= settings.max_body_bytes
    response = client.post("/entities", content=body,
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(("method", "path"), [
    ("GET", ""), ("DELETE", ""), ("POST", "/attrs"), ("PATCH", "/attrs"),
    ("PATCH", ""), ("PUT", ""),
])
def test_an_unknown_query_parameter_is_400_invalid_request(api: httpx.Client, method: str,
                                                          path: str) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id))
    body = None if method in ("GET", "DELETE") else {"type": "Streetlight", "colour": "warm"}
    response = api.request(method, url(entity_id) + path, json=body, params={"colour": "red"})
    assert_problem(response, 400, "InvalidRequest")
    assert get(api, entity_id) == streetlight(entity_id)


def test_an_unknown_query_parameter_on_create_is_400(api: httpx.Client) -> None:
    entity_id = new_id()
    response = api.post("/entities", json=streetlight(entity_id), params={"upsert": "true"})
    assert_problem(response, 400, "InvalidRequest")
    assert not exists(api, entity_id)


def test_an_unsupported_method_is_405_problem_details(api: httpx.Client) -> None:
    assert_problem(api.get("/entityOperations/create"), 405)
    assert_problem(api.patch("/entityOperations/upsert", json=[]), 405)


def test_an_unknown_path_is_404_problem_details(api: httpx.Client) -> None:
    assert_problem(api.get("/entitiez"), 404, "ResourceNotFound")


def test_a_trailing_slash_names_the_same_resource(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id))
    response = api.get(url(entity_id) + "/")
    assert response.status_code == 200
    assert response.json()["id"] == entity_id


# -- transient entities (expiresAt, clause 4.22) -------------------------------------------
def test_an_entity_past_its_expiry_is_gone(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id, expiresAt="2020-01-01T00:00:00Z"))
    assert not exists(api, entity_id)


def test_merge_patch_moves_or_removes_the_expiry(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, streetlight(entity_id, expiresAt="2099-01-01T00:00:00Z"))
    assert api.patch(url(entity_id), json={"expiresAt": "2098-01-01T00:00:00Z"}
                     ).status_code == 204
    assert get(api, entity_id, options="sysAttrs")["expiresAt"] == "2098-01-01T00:00:00Z"
    assert api.patch(url(entity_id), json={"expiresAt": NULL}).status_code == 204
    body = get(api, entity_id, options="sysAttrs")
    assert "expiresAt" not in body
    assert NULL not in json.dumps(body)


def test_a_null_expiry_is_refused_when_the_entity_is_created(api: httpx.Client) -> None:
    entity_id = new_id()
    response = api.post("/entities", json=streetlight(entity_id, expiresAt=NULL))
    assert_problem(response, 400, "BadRequestData")
    assert not exists(api, entity_id)
