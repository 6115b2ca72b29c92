"""Specification of Purge Entities: DELETE /ngsi-ld/v1/entities?...

ETSI GS CIM 009 V1.9.1, clause 5.6.21 and its HTTP binding (6.4.3.3): delete every
entity a query selects or, with ``keep`` / ``drop``, only some of their attributes;
refuse a purge that is too wide (no type, attribute, q, geo-query or local scope) or
that follows Linked Entities. Every test works in a tenant of its own.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from smartcity.core.ngsild import purge as purge_module

ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
CONTEXT_REL = "http://www.w3.org/ns/json-ld#context"
LD = {"Content-Type": "application/ld+json"}
EX = "https://example.org/city/"
TERMS = {"Lamp": EX + "Lamp", "Bench": EX + "Bench", "lux": EX + "lux",
         "name": EX + "name", "street": EX + "street", "owner": EX + "owner"}


@pytest.fixture(scope="module")
def context_url(server: str) -> str:
    with httpx.Client(base_url=server, timeout=10) as api:
        response = api.post("/jsonldContexts", content=json.dumps({"@context": TERMS}),
                            headers=LD)
        assert response.status_code == 201, response.text
        return str(api.base_url.join(response.headers["Location"]))


@pytest.fixture
def tenant() -> str:
    return "purge" + uuid.uuid4().hex[:12]


class Tenant:
    """Requests in one tenant, with the city @context in a Link header."""

    def __init__(self, api: httpx.Client, tenant: str, context: str) -> None:
        self.api = api
        self.headers = {"NGSILD-Tenant": tenant,
                        "Link": f'<{context}>; rel="{CONTEXT_REL}"; '
                                'type="application/ld+json"'}

    def create(self, entity: dict[str, Any]) -> str:
        response = self.api.post("/entities", json=entity, headers=self.headers)
        assert response.status_code == 201, response.text
        return str(entity["id"])

    def purge(self, **params: str) -> httpx.Response:
        return self.api.delete("/entities", params=params, headers=self.headers)

    def get(self, entity_id: str) -> dict[str, Any] | None:
        response = self.api.get(f"/entities/{entity_id}", headers=self.headers)
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def ids(self) -> set[str]:
        response = self.api.get("/entities", params={"type": "Lamp,Bench", "limit": "1000"},
                                headers=self.headers)
        assert response.status_code == 200, response.text
        return {entity["id"] for entity in response.json()}


@pytest.fixture
def city(api: httpx.Client, context_url: str, tenant: str) -> Tenant:
    return Tenant(api, tenant, context_url)


def lamp(n: int | str, **attrs: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"id": f"urn:ngsi-ld:Lamp:{n}", "type": "Lamp",
                            "lux": {"type": "Property", "value": 300},
                            "name": {"type": "Property", "value": f"lamp {n}"}}
    body.update(attrs)
    return body


def bench(n: int | str, **attrs: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"id": f"urn:ngsi-ld:Bench:{n}", "type": "Bench",
                            "name": {"type": "Property", "value": f"bench {n}"}}
    body.update(attrs)
    return body


def point(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}}


def assert_purged(response: httpx.Response) -> None:
    assert response.status_code == 204, response.text
    assert response.content == b""


def assert_problem(response: httpx.Response, status: int, name: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["type"] == ERRORS + name
    assert body["title"]


# --- what a purge deletes -----------------------------------------------------------


def test_purge_by_type_removes_only_matching_entities(city: Tenant) -> None:
    city.create(lamp(1))
    city.create(lamp(2))
    city.create(bench(1))

    assert_purged(city.purge(type="Lamp"))

    assert city.ids() == {"urn:ngsi-ld:Bench:1"}


def test_purge_by_q_deletes_the_entities_the_query_matches(city: Tenant) -> None:
    city.create(lamp(1, name={"type": "Property", "value": "Eiffel Tower"}))
    city.create(lamp(2))
    city.create(bench(1, name={"type": "Property", "value": "Eiffel Tower"}))

    assert_purged(city.purge(q='name=="Eiffel Tower"'))

    assert city.ids() == {"urn:ngsi-ld:Lamp:2"}


def test_purge_by_type_and_id_deletes_only_that_entity(city: Tenant) -> None:
    city.create(lamp(1))
    city.create(lamp(2))
    city.create(bench(1))

    assert_purged(city.purge(type="Lamp", id="urn:ngsi-ld:Lamp:1,urn:ngsi-ld:Bench:1"))

    assert city.ids() == {"urn:ngsi-ld:Lamp:2", "urn:ngsi-ld:Bench:1"}


def test_purge_by_type_and_id_pattern_narrows_to_the_pattern(city: Tenant) -> None:
    city.create(lamp("north-1"))
    city.create(lamp("north-2"))
    city.create(lamp("south-1"))

    assert_purged(city.purge(type="Lamp", idPattern="north"))

    assert city.ids() == {"urn:ngsi-ld:Lamp:south-1"}


def test_purge_by_attribute_deletes_entities_having_it(city: Tenant) -> None:
    city.create(lamp(1, street={"type": "Property", "value": "Main"}))
    city.create(lamp(2))
    city.create(bench(1, street={"type": "Property", "value": "Side"}))

    assert_purged(city.purge(attrs="street"))

    assert city.ids() == {"urn:ngsi-ld:Lamp:2"}


def test_purge_by_geo_query_deletes_entities_in_the_area(city: Tenant) -> None:
    city.create(lamp(1, location=point(18.07, 59.33)))
    city.create(lamp(2, location=point(11.97, 57.71)))

    assert_purged(city.purge(georel="within", geometry="Polygon",
                             coordinates="[[[18,59],[18.2,59],[18.2,59.5],[18,59.5],[18,59]]]"))

    assert city.ids() == {"urn:ngsi-ld:Lamp:2"}


def test_purge_with_scope_query_and_type_deletes_only_that_scope(city: Tenant) -> None:
    city.create(lamp(1, scope="/north"))
    city.create(lamp(2, scope="/south"))

    assert_purged(city.purge(type="Lamp", scopeQ="/north"))

    assert city.ids() == {"urn:ngsi-ld:Lamp:2"}


def test_purge_local_alone_deletes_every_entity_of_the_tenant_only(
        api: httpx.Client, context_url: str, city: Tenant, tenant: str) -> None:
    other = Tenant(api, tenant + "b", context_url)
    city.create(lamp(1))
    city.create(bench(1))
    other.create(lamp(1))

    assert_purged(city.purge(local="true"))

    assert city.ids() == set()
    assert other.ids() == {"urn:ngsi-ld:Lamp:1"}


def test_purge_matching_nothing_is_still_no_content(city: Tenant) -> None:
    city.create(lamp(1))

    assert_purged(city.purge(type="Bench"))

    assert city.ids() == {"urn:ngsi-ld:Lamp:1"}


def test_purge_reaches_every_match_beyond_one_page(
        city: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    # The server runs in this process: small pages and chunks exercise the paging.
    monkeypatch.setattr(purge_module, "PAGE", 3)
    monkeypatch.setattr(purge_module, "CHUNK", 2)
    for n in range(8):
        city.create(lamp(n))
    city.create(bench(1))

    assert_purged(city.purge(type="Lamp"))

    assert city.ids() == {"urn:ngsi-ld:Bench:1"}


def test_deleting_one_entity_by_id_is_not_a_purge(api: httpx.Client, city: Tenant) -> None:
    city.create(lamp(1))
    city.create(lamp(2))

    response = api.delete("/entities/urn:ngsi-ld:Lamp:1", headers=city.headers)

    assert response.status_code == 204
    assert city.ids() == {"urn:ngsi-ld:Lamp:2"}


# --- keep and drop ------------------------------------------------------------------


def test_purge_with_drop_removes_only_the_dropped_attributes(city: Tenant) -> None:
    city.create(lamp(1, street={"type": "Property", "value": "Main"}))
    city.create(bench(1))

    assert_purged(city.purge(type="Lamp", drop="name,street"))

    kept = city.get("urn:ngsi-ld:Lamp:1")
    assert kept is not None
    assert set(kept) == {"id", "type", "lux"}
    untouched = city.get("urn:ngsi-ld:Bench:1")
    assert untouched is not None and "name" in untouched


def test_purge_with_drop_removes_every_dataset_instance(city: Tenant) -> None:
    city.create(lamp(1, lux=[{"type": "Property", "value": 1},
                             {"type": "Property", "value": 2,
                              "datasetId": "urn:ngsi-ld:Dataset:night"}]))

    assert_purged(city.purge(type="Lamp", drop="lux"))

    kept = city.get("urn:ngsi-ld:Lamp:1")
    assert kept is not None and "lux" not in kept and "name" in kept


def test_purge_with_keep_removes_every_other_attribute(city: Tenant) -> None:
    city.create(lamp(1, street={"type": "Property", "value": "Main"}, scope="/north"))
    city.create(lamp(2))

    assert_purged(city.purge(type="Lamp", id="urn:ngsi-ld:Lamp:1", keep="name"))

    kept = city.get("urn:ngsi-ld:Lamp:1")
    assert kept is not None
    assert set(kept) == {"id", "type", "scope", "name"}
    assert kept["name"]["value"] == "lamp 1"
    other = city.get("urn:ngsi-ld:Lamp:2")
    assert other is not None and "lux" in other


def test_purge_with_keep_or_drop_leaves_the_entities_in_place(city: Tenant) -> None:
    city.create(lamp(1))

    assert_purged(city.purge(type="Lamp", keep="street"))

    assert city.ids() == {"urn:ngsi-ld:Lamp:1"}
    assert set(city.get("urn:ngsi-ld:Lamp:1") or {}) == {"id", "type"}


def test_purge_with_keep_and_drop_together_is_bad_request(city: Tenant) -> None:
    city.create(lamp(1))

    assert_problem(city.purge(type="Lamp", keep="name", drop="lux"), 400, "BadRequestData")

    assert set(city.get("urn:ngsi-ld:Lamp:1") or {}) == {"id", "type", "lux", "name"}


# --- refused purges -----------------------------------------------------------------


@pytest.mark.parametrize("params", [
    {},
    {"id": "urn:ngsi-ld:Lamp:1"},
    {"idPattern": ".*"},
    {"attrs": "createdAt"},
    {"q": 'modifiedAt>"2020-01-01T00:00:00Z"'},
    {"scopeQ": "/north"},
    {"local": "false"},
    {"drop": "name"},
], ids=["nothing", "id", "idPattern", "system-attrs", "system-q", "scopeQ", "local-false",
        "drop-only"])
def test_a_purge_without_a_qualifying_filter_is_refused_and_deletes_nothing(
        city: Tenant, params: dict[str, str]) -> None:
    city.create(lamp(1, scope="/north"))

    assert_problem(city.purge(**params), 400, "BadRequestData")

    assert city.get("urn:ngsi-ld:Lamp:1") is not None
    assert set(city.get("urn:ngsi-ld:Lamp:1") or {}) == {"id", "type", "scope", "lux", "name"}


@pytest.mark.parametrize("params", [
    {"type": "Lamp", "q": 'owner{name}=="x"'},
    {"type": "Lamp", "attrs": "owner{name}"},
    {"type": "Lamp", "drop": "owner{name}"},
])
def test_a_purge_following_linked_entities_is_refused(
        city: Tenant, params: dict[str, str]) -> None:
    city.create(lamp(1, owner={"type": "Relationship", "object": "urn:ngsi-ld:Person:1"}))

    assert_problem(city.purge(**params), 400, "BadRequestData")

    assert city.ids() == {"urn:ngsi-ld:Lamp:1"}


def test_a_purge_with_an_undefined_parameter_is_invalid_request(city: Tenant) -> None:
    city.create(lamp(1))

    assert_problem(city.purge(type="Lamp", limit="5"), 400, "InvalidRequest")
    assert_problem(city.purge(invalidParams="invalidValue"), 400, "InvalidRequest")

    assert city.ids() == {"urn:ngsi-ld:Lamp:1"}


@pytest.mark.parametrize("params", [{"type": "Lamp", "q": "lux>>3"},
                                    {"type": "Lamp(", "local": "true"},
                                    {"local": "yes"}])
def test_a_purge_with_an_invalid_filter_is_bad_request(
        city: Tenant, params: dict[str, str]) -> None:
    city.create(lamp(1))

    assert_problem(city.purge(**params), 400, "BadRequestData")

    assert city.ids() == {"urn:ngsi-ld:Lamp:1"}


def test_a_purge_in_a_tenant_that_does_not_exist_is_nonexistent_tenant(
        api: httpx.Client, context_url: str) -> None:
    nobody = Tenant(api, "nobody" + uuid.uuid4().hex[:12], context_url)

    assert_problem(nobody.purge(type="Lamp"), 404, "NonexistentTenant")
