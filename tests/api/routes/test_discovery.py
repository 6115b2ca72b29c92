"""Specification of discovery: /ngsi-ld/v1/types and /ngsi-ld/v1/attributes.

ETSI GS CIM 009 V1.9.1, clauses 5.7.5-5.7.10 (what exists: entity types, attributes)
and 6.3.20 (undefined query parameters). Every test works in a tenant of its own, so
the lists it reads hold only what it created.
"""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import quote

import httpx
import pytest

ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
CORE_CONTEXT = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld"
CONTEXT_REL = "http://www.w3.org/ns/json-ld#context"
LD = {"Content-Type": "application/ld+json"}
EX = "https://example.org/city/"
TERMS = {"Lamp": EX + "Lamp", "Bench": EX + "Bench", "lux": EX + "lux",
         "powered": EX + "powered", "feeds": EX + "feeds", "seats": EX + "seats"}


@pytest.fixture(scope="module")
def context_url(server: str) -> str:
    """A @context hosted by the broker itself, defining the city terms."""
    with httpx.Client(base_url=server, timeout=10) as api:
        response = api.post("/jsonldContexts", content=json.dumps({"@context": TERMS}),
                            headers=LD)
        assert response.status_code == 201, response.text
        return str(api.base_url.join(response.headers["Location"]))


@pytest.fixture
def tenant() -> str:
    return "disc" + uuid.uuid4().hex[:12]


def headers(tenant: str, context: str | None = None, **extra: str) -> dict[str, str]:
    out = {"NGSILD-Tenant": tenant, **extra}
    if context is not None:
        out["Link"] = f'<{context}>; rel="{CONTEXT_REL}"; type="application/ld+json"'
    return out


def create(api: httpx.Client, tenant: str, entity: dict[str, Any]) -> None:
    """Create an entity written with full IRIs (no @context needed)."""
    response = api.post("/entities", json=entity, headers=headers(tenant))
    assert response.status_code == 201, response.text


def lamp(n: int, **attrs: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"id": f"urn:ngsi-ld:Lamp:{n}", "type": EX + "Lamp",
                            EX + "lux": {"type": "Property", "value": 300 + n}}
    body.update(attrs)
    return body


def bench(n: int) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:Bench:{n}", "type": EX + "Bench",
            EX + "seats": {"type": "Property", "value": 4}}


def get_json(api: httpx.Client, path: str, tenant: str, context: str | None = None,
             **params: str) -> Any:
    response = api.get(path, params=params, headers=headers(tenant, context))
    assert response.status_code == 200, response.text
    return response.json()


def assert_problem(response: httpx.Response, status: int, name: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["type"] == ERRORS + name
    assert body["title"]


# --- /types -------------------------------------------------------------------------


def test_types_lists_each_type_once_compacted_with_the_link_context(
        api: httpx.Client, context_url: str, tenant: str) -> None:
    create(api, tenant, lamp(1))
    create(api, tenant, lamp(2))
    create(api, tenant, bench(1))

    body = get_json(api, "/types", tenant, context_url)

    assert body["type"] == "EntityTypeList"
    assert body["id"].startswith("urn:ngsi-ld:EntityTypeList:")
    assert sorted(body["typeList"]) == ["Bench", "Lamp"]


def test_types_without_a_context_are_full_iris(api: httpx.Client, tenant: str) -> None:
    create(api, tenant, lamp(1))
    create(api, tenant, bench(1))

    body = get_json(api, "/types", tenant)

    assert sorted(body["typeList"]) == [EX + "Bench", EX + "Lamp"]


def test_types_of_an_entity_with_several_types_are_all_listed(
        api: httpx.Client, context_url: str, tenant: str) -> None:
    create(api, tenant, {"id": "urn:ngsi-ld:Thing:1", "type": [EX + "Lamp", EX + "Bench"]})

    assert sorted(get_json(api, "/types", tenant, context_url)["typeList"]) == \
        ["Bench", "Lamp"]


def test_types_details_name_the_attributes_of_each_type(
        api: httpx.Client, context_url: str, tenant: str) -> None:
    create(api, tenant, lamp(1, **{EX + "powered": {"type": "Property", "value": True}}))
    create(api, tenant, lamp(2, **{EX + "feeds": {"type": "Relationship",
                                                  "object": "urn:ngsi-ld:Bench:1"}}))
    create(api, tenant, bench(1))

    body = get_json(api, "/types", tenant, context_url, details="true")

    by_id = {item["id"]: item for item in body}
    assert set(by_id) == {EX + "Lamp", EX + "Bench"}
    assert by_id[EX + "Lamp"]["type"] == "EntityType"
    assert by_id[EX + "Lamp"]["typeName"] == "Lamp"
    assert sorted(by_id[EX + "Lamp"]["attributeNames"]) == ["feeds", "lux", "powered"]
    assert by_id[EX + "Bench"]["attributeNames"] == ["seats"]


def test_a_type_with_no_attributes_is_still_a_type(
        api: httpx.Client, context_url: str, tenant: str) -> None:
    create(api, tenant, {"id": "urn:ngsi-ld:Bench:bare", "type": EX + "Bench"})

    body = get_json(api, "/types", tenant, context_url, details="true")

    assert body == [{"id": EX + "Bench", "type": "EntityType", "typeName": "Bench",
                     "attributeNames": []}]


def test_type_info_counts_entities_and_describes_each_attribute(
        api: httpx.Client, context_url: str, tenant: str) -> None:
    create(api, tenant, lamp(1, **{EX + "feeds": {"type": "Relationship",
                                                  "object": "urn:ngsi-ld:Bench:1"}}))
    create(api, tenant, lamp(2, **{EX + "feeds": {"type": "Property", "value": "grid"}}))
    create(api, tenant, bench(1))

    body = get_json(api, "/types/Lamp", tenant, context_url)

    assert body["id"] == EX + "Lamp"
    assert body["type"] == "EntityTypeInfo"
    assert body["typeName"] == "Lamp"
    assert body["entityCount"] == 2
    details = {d["attributeName"]: d for d in body["attributeDetails"]}
    assert set(details) == {"lux", "feeds"}
    assert details["lux"] == {"id": EX + "lux", "type": "Attribute", "attributeName": "lux",
                              "attributeTypes": ["Property"]}
    assert sorted(details["feeds"]["attributeTypes"]) == ["Property", "Relationship"]


def test_type_info_accepts_the_expanded_type_name(
        api: httpx.Client, context_url: str, tenant: str) -> None:
    create(api, tenant, lamp(1))

    body = get_json(api, "/types/" + quote(EX + "Lamp", safe=""), tenant, context_url)

    assert body["typeName"] == "Lamp"
    assert body["entityCount"] == 1


def test_type_info_of_a_type_no_entity_has_is_resource_not_found(
        api: httpx.Client, context_url: str, tenant: str) -> None:
    create(api, tenant, lamp(1))

    for name in ("Bench", "Lamp"):  # Lamp without the @context is another IRI
        response = api.get(f"/types/{name}", headers=headers(
            tenant, context_url if name == "Bench" else None))
        assert_problem(response, 404, "ResourceNotFound")


def test_a_type_disappears_with_its_last_entity(
        api: httpx.Client, context_url: str, tenant: str) -> None:
    create(api, tenant, lamp(1))
    create(api, tenant, bench(1))

    response = api.delete("/entities/urn:ngsi-ld:Bench:1", headers=headers(tenant))
    assert response.status_code == 204

    assert get_json(api, "/types", tenant, context_url)["typeList"] == ["Lamp"]
    assert_problem(api.get("/types/Bench", headers=headers(tenant, context_url)),
                   404, "ResourceNotFound")


def test_json_ld_answers_carry_the_context_inline(
        api: httpx.Client, context_url: str, tenant: str) -> None:
    create(api, tenant, lamp(1))

    response = api.get("/types", headers=headers(tenant, context_url,
                                                 Accept="application/ld+json"))

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/ld+json")
    assert response.json()["@context"] == context_url
    plain = api.get("/types", headers=headers(tenant, context_url))
    assert plain.headers["content-type"].startswith("application/json")
    assert context_url in plain.headers["Link"]


# --- /attributes --------------------------------------------------------------------


def test_attributes_lists_attribute_names_and_no_entity_members(
        api: httpx.Client, context_url: str, tenant: str) -> None:
    create(api, tenant, lamp(1, scope="/north"))
    create(api, tenant, bench(1))

    body = get_json(api, "/attributes", tenant, context_url)

    assert body["type"] == "AttributeList"
    assert body["id"].startswith("urn:ngsi-ld:AttributeList:")
    assert sorted(body["attributeList"]) == ["lux", "seats"]
    for member in ("id", "type", "scope", "createdAt", "modifiedAt", "deletedAt"):
        assert_problem(api.get(f"/attributes/{member}", headers=headers(tenant, context_url)),
                       404, "ResourceNotFound")


def test_attributes_details_name_the_types_having_each(
        api: httpx.Client, context_url: str, tenant: str) -> None:
    create(api, tenant, lamp(1, **{EX + "seats": {"type": "Property", "value": 1}}))
    create(api, tenant, bench(1))

    body = get_json(api, "/attributes", tenant, context_url, details="true")

    by_name = {item["attributeName"]: item for item in body}
    assert set(by_name) == {"lux", "seats"}
    assert by_name["seats"]["id"] == EX + "seats"
    assert by_name["seats"]["type"] == "Attribute"
    assert sorted(by_name["seats"]["typeNames"]) == ["Bench", "Lamp"]
    assert by_name["lux"]["typeNames"] == ["Lamp"]


def test_attribute_info_counts_every_instance_of_the_attribute(
        api: httpx.Client, context_url: str, tenant: str) -> None:
    create(api, tenant, lamp(1, **{EX + "lux": [
        {"type": "Property", "value": 1},
        {"type": "Property", "value": 2, "datasetId": "urn:ngsi-ld:Dataset:night"}]}))
    create(api, tenant, lamp(2))
    create(api, tenant, bench(1))

    body = get_json(api, "/attributes/lux", tenant, context_url)

    assert body == {"id": EX + "lux", "type": "Attribute", "attributeName": "lux",
                    "attributeCount": 3, "attributeTypes": ["Property"],
                    "typeNames": ["Lamp"]}


def test_attribute_info_accepts_the_expanded_name(api: httpx.Client, tenant: str) -> None:
    create(api, tenant, bench(1))

    body = get_json(api, "/attributes/" + quote(EX + "seats", safe=""), tenant)

    assert body["attributeName"] == EX + "seats"
    assert body["attributeCount"] == 1


def test_attribute_info_of_an_attribute_no_entity_has_is_resource_not_found(
        api: httpx.Client, context_url: str, tenant: str) -> None:
    create(api, tenant, lamp(1))

    assert_problem(api.get("/attributes/seats", headers=headers(tenant, context_url)),
                   404, "ResourceNotFound")


# --- parameters and tenants ---------------------------------------------------------


@pytest.mark.parametrize("path", ["/types?limit=5", "/types/Lamp?details=true",
                                  "/attributes?count=true&limit=1",
                                  "/attributes/lux?details=true"])
def test_discovery_refuses_query_parameters_it_does_not_define(
        api: httpx.Client, context_url: str, tenant: str, path: str) -> None:
    create(api, tenant, lamp(1))

    assert_problem(api.get(path, headers=headers(tenant, context_url)),
                   400, "InvalidRequest")


@pytest.mark.parametrize("path", ["/types?details=yes", "/attributes?local=1"])
def test_discovery_flags_must_be_true_or_false(
        api: httpx.Client, tenant: str, path: str) -> None:
    create(api, tenant, lamp(1))

    assert_problem(api.get(path, headers=headers(tenant)), 400, "BadRequestData")


def test_local_is_accepted_on_every_discovery_operation(
        api: httpx.Client, context_url: str, tenant: str) -> None:
    create(api, tenant, lamp(1))

    for path in ("/types", "/types/Lamp", "/attributes", "/attributes/lux"):
        get_json(api, path, tenant, context_url, local="true")


def test_discovery_sees_only_the_tenant_of_the_request(
        api: httpx.Client, context_url: str, tenant: str) -> None:
    other = tenant + "b"
    create(api, tenant, lamp(1))
    create(api, other, bench(1))

    assert get_json(api, "/types", tenant, context_url)["typeList"] == ["Lamp"]
    assert get_json(api, "/types", other, context_url)["typeList"] == ["Bench"]
    assert get_json(api, "/attributes", other, context_url)["attributeList"] == ["seats"]
    assert_problem(api.get("/types/Lamp", headers=headers(other, context_url)),
                   404, "ResourceNotFound")
    assert_problem(api.get("/attributes/lux", headers=headers(other, context_url)),
                   404, "ResourceNotFound")


@pytest.mark.parametrize("path", ["/types", "/attributes", "/types/Lamp", "/attributes/lux"])
def test_discovery_in_a_tenant_that_does_not_exist_is_nonexistent_tenant(
        api: httpx.Client, path: str) -> None:
    response = api.get(path, headers=headers("nobody" + uuid.uuid4().hex[:12]))

    assert_problem(response, 404, "NonexistentTenant")


def test_discovery_of_an_empty_default_tenant_answers_empty_lists(
        client: httpx.Client) -> None:
    types = client.get("/types")
    attributes = client.get("/attributes", params={"details": "true"})

    assert types.status_code == 200 and types.json()["typeList"] == []
    assert attributes.status_code == 200 and attributes.json() == []
