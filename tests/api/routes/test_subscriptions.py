"""Specification of the Subscription API over HTTP: /ngsi-ld/v1/subscriptions.

ETSI GS CIM 009 V1.9.1, clauses 5.8.1 (create), 5.8.2 (update), 5.8.3 (retrieve),
5.8.4 (query), 5.8.5 (delete) and their HTTP binding in 6.10 and 6.11. Each test works
in its own tenant of a server shared by the module, so tests do not see each other's
subscriptions.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from smartcity.config import Settings
from tests.conftest import LiveServer

ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
CORE_CONTEXT = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld"
DEFAULT = "https://uri.etsi.org/ngsi-ld/default-context/"
ENDPOINT = {"uri": "http://receiver.example/notify", "accept": "application/json"}
CITY_CONTEXT = {"Lamp": "https://example.org/city/Lamp", "lux": "https://example.org/city/lux"}


@pytest.fixture(scope="module")
def server(module_db: str) -> Iterator[str]:
    with LiveServer(Settings(db=module_db, max_body_bytes=64 * 1024)) as url:
        yield url


@pytest.fixture
def api(server: str) -> Iterator[httpx.Client]:
    # A fresh tenant per test; it exists once the test creates a subscription in it.
    tenant = f"t{uuid.uuid4().hex[:12]}"
    with httpx.Client(base_url=server + "/ngsi-ld/v1", timeout=10,
                      headers={"NGSILD-Tenant": tenant}) as client:
        yield client


def subscription(sub_id: str | None = "urn:ngsi-ld:Subscription:lamps",
                 **members: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"id": sub_id, "type": "Subscription",
                            "entities": [{"type": "Lamp"}],
                            "notification": {"endpoint": dict(ENDPOINT)}}
    body.update(members)
    return {k: v for k, v in body.items() if v is not None}


def create(api: httpx.Client, body: dict[str, Any], **kwargs: Any) -> httpx.Response:
    return api.post("/subscriptions", json=body, **kwargs)


def assert_problem(response: httpx.Response, status: int, name: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    problem: dict[str, Any] = response.json()
    assert problem["type"] == ERRORS + name
    assert problem["title"] and problem["detail"]
    return problem


def ld_body(body: dict[str, Any]) -> dict[str, Any]:
    return {**body, "@context": [CITY_CONTEXT, CORE_CONTEXT]}


def post_ld(api: httpx.Client, body: dict[str, Any]) -> httpx.Response:
    return api.post("/subscriptions", json=ld_body(body),
                    headers={"Content-Type": "application/ld+json"})


# -- create ----------------------------------------------------------------------------


def test_create_answers_201_with_the_location(api: httpx.Client) -> None:
    response = create(api, subscription())
    assert response.status_code == 201, response.text
    assert response.headers["Location"] == \
        "/ngsi-ld/v1/subscriptions/urn:ngsi-ld:Subscription:lamps"
    assert response.content == b""


def test_a_subscription_without_id_gets_one_in_the_location(api: httpx.Client) -> None:
    response = create(api, subscription(None))
    assert response.status_code == 201
    location = response.headers["Location"]
    assert location.startswith("/ngsi-ld/v1/subscriptions/urn:ngsi-ld:Subscription:")
    assert api.get(location.removeprefix("/ngsi-ld/v1")).status_code == 200


def test_creating_an_existing_id_is_409(api: httpx.Client) -> None:
    assert create(api, subscription()).status_code == 201
    assert_problem(create(api, subscription()), 409, "AlreadyExists")


def test_the_same_id_may_exist_in_two_tenants(api: httpx.Client) -> None:
    assert create(api, subscription()).status_code == 201
    other = create(api, subscription(), headers={"NGSILD-Tenant": f"o{uuid.uuid4().hex[:8]}"})
    assert other.status_code == 201


@pytest.mark.parametrize("body", [
    {},
    subscription("invalidId"),
    subscription(""),
    subscription(type="Lamp"),
    subscription(entities=None),
    subscription(entities=[{"id": "urn:ngsi-ld:Lamp:1"}]),
    subscription(entities=[{"type": "Lamp", "idPattern": "(["}]),
    subscription(watchedAttributes=[]),
    subscription(notificationTrigger=["entityChanged"]),
    subscription(q="lux>>1"),
    subscription(scopeQ="no-slash"),
    subscription(geoQ={"georel": "near", "geometry": "Point", "coordinates": [1, 2]}),
    subscription(notification=None),
    subscription(notification={"format": "keyValues"}),
    subscription(notification={"endpoint": {"uri": "receiver/notify"}}),
    subscription(notification={"endpoint": {"uri": "ftp://receiver.example/n"}}),
    subscription(notification={"endpoint": {**ENDPOINT, "accept": "text/plain"}}),
    subscription(notification={"endpoint": ENDPOINT, "format": "raw"}),
    subscription(notification={"endpoint": ENDPOINT, "format": "keyValues",
                               "showChanges": True}),
    subscription(notification={"endpoint": ENDPOINT, "pick": ["id"], "omit": ["id"]}),
    subscription(timeInterval=-1),
    subscription(throttling="30"),
    subscription(timeInterval=10, watchedAttributes=["lux"]),
    subscription(expiresAt="tomorrow"),
    subscription(expiresAt="2000-01-01T00:00:00Z"),
    subscription(isActive="false"),
    subscription(notification={"endpoint": {**ENDPOINT,
                                            "receiverInfo": [{"key": "K", "value": 42}]}}),
    subscription(notification={"endpoint": {**ENDPOINT, "notifierInfo": [{"key": "K"}]}}),
    subscription(jsonldContext="unknownContext"),
], ids=lambda body: str(body)[:70])
def test_invalid_subscriptions_are_400_bad_request_data(api: httpx.Client,
                                                        body: dict[str, Any]) -> None:
    assert_problem(create(api, body), 400, "BadRequestData")


def test_subscription_with_both_throttling_and_time_interval_is_400(
        api: httpx.Client) -> None:
    problem = assert_problem(create(api, subscription(timeInterval=10, throttling=30)),
                             400, "BadRequestData")
    assert "throttling" in problem["detail"]


def test_a_body_that_is_not_json_is_400_invalid_request(api: httpx.Client) -> None:
    response = api.post("/subscriptions", content=b"{not json",
                        headers={"Content-Type": "application/json"})
    assert_problem(response, 400, "InvalidRequest")


def test_a_body_of_another_media_type_is_415(api: httpx.Client) -> None:
    response = api.post("/subscriptions", content=b"<subscription/>",
                        headers={"Content-Type": "application/xml"})
    assert_problem(response, 415, "UnsupportedMediaType")


def test_an_unavailable_json_ld_context_is_504(api: httpx.Client) -> None:
    # The test server has no route out: the document cannot be retrieved.
    body = subscription(jsonldContext="http://127.0.0.1:9/missing-context.jsonld")
    assert_problem(create(api, body), 504, "LdContextNotAvailable")


def test_unknown_query_parameters_are_400_invalid_request(api: httpx.Client) -> None:
    response = api.post("/subscriptions", params={"options": "keyValues"},
                        json=subscription())
    assert_problem(response, 400, "InvalidRequest")
    assert_problem(api.get("/subscriptions", params={"type": "Lamp"}), 400, "InvalidRequest")


# -- retrieve --------------------------------------------------------------------------


def test_a_subscription_is_retrieved_as_created(api: httpx.Client) -> None:
    assert create(api, subscription(timeInterval=5)).status_code == 201
    response = api.get("/subscriptions/urn:ngsi-ld:Subscription:lamps")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert CORE_CONTEXT in response.headers["Link"]
    assert response.json() == {
        "id": "urn:ngsi-ld:Subscription:lamps", "type": "Subscription",
        "entities": [{"type": "Lamp"}], "timeInterval": 5,
        "notificationTrigger": ["attributeCreated", "attributeUpdated"],
        "notification": {"format": "normalized", "endpoint": ENDPOINT},
        "status": "active"}


def test_names_are_compacted_with_the_readers_context(api: httpx.Client) -> None:
    body = subscription(watchedAttributes=["lux"],
                        notification={"endpoint": ENDPOINT, "attributes": ["lux"]})
    assert post_ld(api, body).status_code == 201
    url = "/subscriptions/urn:ngsi-ld:Subscription:lamps"
    json_ld = api.get(url, headers={"Accept": "application/ld+json"}).json()
    assert json_ld["entities"] == [{"type": "https://example.org/city/Lamp"}]
    assert json_ld["watchedAttributes"] == ["https://example.org/city/lux"]
    assert json_ld["@context"] == CORE_CONTEXT


def test_read_only_members_given_at_creation_are_ignored(api: httpx.Client) -> None:
    body = subscription(status="expired", __context="http://hijack.example/c.jsonld",
                        notification={"endpoint": ENDPOINT, "timesSent": 42})
    assert create(api, body).status_code == 201
    response = api.get("/subscriptions/urn:ngsi-ld:Subscription:lamps")
    assert response.json()["status"] == "active"
    assert "hijack" not in response.text and "timesSent" not in response.text


def test_system_timestamps_are_shown_with_options_sys_attrs(api: httpx.Client) -> None:
    assert create(api, subscription()).status_code == 201
    shown = api.get("/subscriptions/urn:ngsi-ld:Subscription:lamps",
                    params={"options": "sysAttrs"}).json()
    assert shown["createdAt"].endswith("Z") and shown["modifiedAt"] == shown["createdAt"]


def test_an_inactive_subscription_is_paused(api: httpx.Client) -> None:
    assert create(api, subscription(isActive=False)).status_code == 201
    shown = api.get("/subscriptions/urn:ngsi-ld:Subscription:lamps").json()
    assert (shown["isActive"], shown["status"]) == (False, "paused")


def test_retrieving_an_unknown_subscription_is_404(api: httpx.Client) -> None:
    assert create(api, subscription()).status_code == 201
    assert_problem(api.get("/subscriptions/urn:ngsi-ld:Subscription:unknown"), 404,
                   "ResourceNotFound")


def test_an_id_that_is_not_a_uri_is_400(api: httpx.Client) -> None:
    assert_problem(api.get("/subscriptions/InvalidUri"), 400, "BadRequestData")
    assert_problem(api.delete("/subscriptions/InvalidUri"), 400, "BadRequestData")
    assert_problem(api.patch("/subscriptions/InvalidUri", json={"isActive": False}), 400,
                   "BadRequestData")


def test_an_unknown_tenant_is_404_nonexistent_tenant(api: httpx.Client) -> None:
    assert_problem(api.get("/subscriptions"), 404, "NonexistentTenant")


def test_an_unproducible_media_type_is_406(api: httpx.Client) -> None:
    assert create(api, subscription()).status_code == 201
    response = api.get("/subscriptions/urn:ngsi-ld:Subscription:lamps",
                       headers={"Accept": "application/geo+json"})
    assert_problem(response, 406, "NotAcceptable")


def test_a_version_preference_is_applied_unaltered(api: httpx.Client) -> None:
    assert create(api, subscription()).status_code == 201
    url = "/subscriptions/urn:ngsi-ld:Subscription:lamps"
    plain = api.get(url)
    preferred = api.get(url, headers={"Prefer": 'respond-async, NGSI-LD="1.0";q=0.5'})
    assert preferred.headers["Preference-Applied"] == "ngsi-ld=1.0"
    assert preferred.json() == plain.json()
    assert "Preference-Applied" not in plain.headers


# -- query -----------------------------------------------------------------------------


def test_subscriptions_are_listed_in_creation_order_with_pagination(
        api: httpx.Client) -> None:
    for n in range(3):
        assert create(api, subscription(f"urn:ngsi-ld:Subscription:{n}")).status_code == 201
    everything = api.get("/subscriptions")
    assert [s["id"] for s in everything.json()] == \
        [f"urn:ngsi-ld:Subscription:{n}" for n in range(3)]
    middle = api.get("/subscriptions", params={"limit": 1, "offset": 1, "count": "true"},
                     headers={"Accept": "application/ld+json"})
    assert [s["id"] for s in middle.json()] == ["urn:ngsi-ld:Subscription:1"]
    assert middle.json()[0]["@context"] == CORE_CONTEXT
    assert middle.headers["NGSILD-Results-Count"] == "3"
    links = middle.headers["Link"].replace(" ", "")
    assert '</ngsi-ld/v1/subscriptions?count=true&limit=1&offset=0>;rel="prev";' \
        'type="application/ld+json"' in links
    assert '</ngsi-ld/v1/subscriptions?count=true&limit=1&offset=2>;rel="next";' \
        'type="application/ld+json"' in links


def test_bad_pagination_is_400(api: httpx.Client) -> None:
    assert_problem(api.get("/subscriptions", params={"limit": -1}), 400, "BadRequestData")
    assert_problem(api.get("/subscriptions", params={"offset": "x"}), 400, "BadRequestData")


# -- update ----------------------------------------------------------------------------


def test_patch_replaces_the_given_members_and_answers_204(api: httpx.Client) -> None:
    assert create(api, subscription(timeInterval=5)).status_code == 201
    url = "/subscriptions/urn:ngsi-ld:Subscription:lamps"
    second = {"uri": "http://second.example/notify", "accept": "application/ld+json"}
    response = api.patch(url, json={"type": "Subscription",
                                    "notification": {"endpoint": second}})
    assert response.status_code == 204 and response.content == b""
    shown = api.get(url).json()
    assert shown["notification"]["endpoint"] == second
    assert shown["timeInterval"] == 5


def test_patch_pauses_and_resumes(api: httpx.Client) -> None:
    assert create(api, subscription()).status_code == 201
    url = "/subscriptions/urn:ngsi-ld:Subscription:lamps"
    assert api.patch(url, json={"isActive": False}).status_code == 204
    assert api.get(url).json()["status"] == "paused"
    assert api.patch(url, json={"isActive": True,
                                "expiresAt": "2099-01-01T00:00:00Z"}).status_code == 204
    assert api.get(url).json()["status"] == "active"


def test_patch_expands_names_with_its_own_context(api: httpx.Client) -> None:
    assert create(api, subscription()).status_code == 201
    url = "/subscriptions/urn:ngsi-ld:Subscription:lamps"
    response = api.patch(url, json=ld_body({"entities": [{"type": "Lamp"}]}),
                         headers={"Content-Type": "application/ld+json"})
    assert response.status_code == 204
    assert api.get(url).json()["entities"] == [{"type": "https://example.org/city/Lamp"}]


@pytest.mark.parametrize("fragment", [
    {"notification": {"format": "keyValues"}},
    {"notification": {"format": "keyValues", "endpoint": None}},
    {"notification": None},
    {"expiresAt": "2020-08-01T22:07:00Z"},
    {"throttling": 10},
    {"type": "Lamp"},
])
def test_an_invalid_fragment_is_400(api: httpx.Client, fragment: dict[str, Any]) -> None:
    assert create(api, subscription(timeInterval=5)).status_code == 201
    response = api.patch("/subscriptions/urn:ngsi-ld:Subscription:lamps", json=fragment)
    assert_problem(response, 400, "BadRequestData")


def test_patching_an_unknown_subscription_is_404(api: httpx.Client) -> None:
    assert create(api, subscription()).status_code == 201
    response = api.patch("/subscriptions/urn:ngsi-ld:Subscription:unknown",
                         json={"isActive": False})
    assert_problem(response, 404, "ResourceNotFound")


def test_patch_and_delete_need_an_id(api: httpx.Client) -> None:
    assert api.patch("/subscriptions", json={"isActive": False}).status_code == 405
    assert api.delete("/subscriptions/").status_code == 405


# -- delete ----------------------------------------------------------------------------


def test_delete_answers_204_and_the_subscription_is_gone(api: httpx.Client) -> None:
    # A second subscription keeps the tenant in existence once the first is gone.
    assert create(api, subscription("urn:ngsi-ld:Subscription:other")).status_code == 201
    assert create(api, subscription()).status_code == 201
    url = "/subscriptions/urn:ngsi-ld:Subscription:lamps"
    response = api.delete(url)
    assert response.status_code == 204 and response.content == b""
    assert_problem(api.get(url), 404, "ResourceNotFound")
    assert_problem(api.delete(url), 404, "ResourceNotFound")
    assert create(api, subscription()).status_code == 201


def test_a_tenant_holding_nothing_any_more_is_gone(api: httpx.Client) -> None:
    assert create(api, subscription()).status_code == 201
    assert api.delete("/subscriptions/urn:ngsi-ld:Subscription:lamps").status_code == 204
    assert_problem(api.get("/subscriptions"), 404, "NonexistentTenant")


# -- persistence -----------------------------------------------------------------------


def test_subscriptions_survive_a_restart(db: str) -> None:
    settings = Settings(db=db)
    url = "/ngsi-ld/v1/subscriptions/urn:ngsi-ld:Subscription:lamps"
    with LiveServer(settings) as base:
        assert httpx.post(base + "/ngsi-ld/v1/subscriptions",
                          json=subscription(q="lux>100")).status_code == 201
        before = httpx.get(base + url, params={"options": "sysAttrs"}).json()
    with LiveServer(settings) as base:
        after = httpx.get(base + url, params={"options": "sysAttrs"}).json()
        assert after == before
        assert httpx.delete(base + url).status_code == 204
    with LiveServer(settings) as base:
        assert httpx.get(base + url).status_code == 404
