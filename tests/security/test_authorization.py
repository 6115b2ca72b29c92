"""What each caller may do: roles, tenants, types, attributes and personal data, on
every path (entities, batch, temporal, subscriptions, discovery, devices)."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import Receiver
from tests.security.conftest import City

ANNA, BERT = "urn:ngsi-ld:Person:anna", "urn:ngsi-ld:Person:bert"
SARA, TOM = "urn:ngsi-ld:Person:sara", "urn:ngsi-ld:Person:tom"
LOCK = "urn:ngsi-ld:Lock:anna-front"
PERSONAL = {"address", "lockState"}  # and owner, which others see as a pseudonym


def _date(text: str) -> dict[str, Any]:
    return {"type": "Property", "value": {"@type": "DateTime", "@value": text}}


def _assignment(number: int, staff: str, client: str, start: str, end: str
                ) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:CareAssignment:{number}", "type": "CareAssignment",
            "refStaff": {"type": "Relationship", "object": staff},
            "refClient": {"type": "Relationship", "object": client},
            "startDate": _date(start), "endDate": _date(end)}


@pytest.fixture(scope="module")
def people(city: City) -> dict[str, dict[str, str]]:
    """Anna's front door, the staff assigned to her (Sara, now; Tom, last year), and
    the callers of the tests."""
    with city.http(city.admin) as admin:
        assert admin.post("/entities", json={
            "id": LOCK, "type": "Lock", "name": {"type": "Property", "value": "Front door"},
            "owner": {"type": "Property", "value": [ANNA]},
            "address": {"type": "Property", "value": {"streetAddress": "Hantverkargatan 3"}},
            "lockState": {"type": "Property", "value": "locked"}}).status_code == 201
        for entity in (_assignment(1, SARA, ANNA, "2026-01-01T00:00:00Z",
                                   "2030-01-01T00:00:00Z"),
                       _assignment(2, TOM, ANNA, "2025-01-01T00:00:00Z",
                                   "2025-12-31T00:00:00Z")):
            assert admin.post("/entities", json=entity).status_code == 201
    return {"sara": city.account(["care"], person=SARA),
            "tom": city.account(["care"], person=TOM),
            "anna": city.account(["resident"], person=ANNA),
            "bert": city.account(["resident"], person=BERT),
            "lighting": city.account(["lighting"]),
            "planner": city.account(["care_planner"], person="urn:ngsi-ld:Person:pia")}


def _lock(city: City, headers: dict[str, str]) -> httpx.Response:
    with city.http(headers) as http:
        return http.get(f"/entities/{LOCK}")


def test_staff_with_a_current_assignment_see_the_resident_s_address(
        city: City, people: dict[str, dict[str, str]]) -> None:
    lock = _lock(city, people["sara"]).json()
    assert lock["address"]["value"] == {"streetAddress": "Hantverkargatan 3"}
    assert lock.keys() >= PERSONAL


def test_staff_without_a_current_assignment_see_no_personal_data(
        city: City, people: dict[str, dict[str, str]]) -> None:
    lock = _lock(city, people["tom"]).json()
    assert lock["name"]["value"] == "Front door"
    assert not PERSONAL & lock.keys()
    assert ANNA not in str(lock)


def test_whose_door_it_is_is_a_pseudonym_to_those_who_may_not_know(
        city: City, people: dict[str, dict[str, str]]) -> None:
    with city.http(city.admin) as admin:
        assert admin.post("/entities", json={
            "id": "urn:ngsi-ld:Lock:anna-back", "type": "Lock",
            "owner": {"type": "Property", "value": [ANNA]}}).status_code == 201
    with city.http(people["tom"]) as http:
        doors = http.get("/entities", params={"type": "Lock"}).json()
    owners = {d["id"]: d["owner"]["value"] for d in doors}
    pseudonym = owners[LOCK]
    assert pseudonym != [ANNA] and pseudonym[0].startswith("urn:ngsi-ld:Pseudonym:")
    assert owners["urn:ngsi-ld:Lock:anna-back"] == pseudonym
    assert _lock(city, people["sara"]).json()["owner"]["value"] == [ANNA]


def test_the_resident_reads_their_own_data_and_no_one_else_s(
        city: City, people: dict[str, dict[str, str]]) -> None:
    assert _lock(city, people["anna"]).json().keys() >= PERSONAL
    refused = _lock(city, people["bert"])
    assert refused.status_code == 403
    assert "Hantverkargatan" not in refused.text


def test_other_roles_may_not_read_the_type_at_all(
        city: City, people: dict[str, dict[str, str]]) -> None:
    assert _lock(city, people["lighting"]).status_code == 403
    with city.http(people["lighting"]) as http:
        assert http.get("/entities", params={"type": "Lock"}).status_code == 403
        untyped = http.get("/entities", params={"q": "name==\"Front door\""})
        assert untyped.status_code == 403 and "type=" in untyped.json()["detail"]
        assert http.get("/entities", params={"type": "Lock,Streetlight"}).status_code == 200


def test_a_filter_on_personal_data_is_refused_to_those_who_may_not_see_it(
        city: City, people: dict[str, dict[str, str]]) -> None:
    params = {"type": "Lock", "q": "lockState==\"locked\""}
    with city.http(people["tom"]) as http:
        refused = http.get("/entities", params=params)
        assert refused.status_code == 403 and "lockState" in refused.json()["detail"]
        assert http.get("/entities", params={**params, "q": "name==\"Front door\""}
                        ).status_code == 200
    with city.http(city.admin) as admin:
        assert [e["id"] for e in admin.get("/entities", params=params).json()] == [LOCK]


def test_personal_data_is_written_only_by_those_who_may_see_it(
        city: City, people: dict[str, dict[str, str]]) -> None:
    unlock = {"lockState": {"type": "Property", "value": "unlocked"}}
    with city.http(people["tom"]) as http:
        assert http.patch(f"/entities/{LOCK}/attrs", json=unlock).status_code == 403
    assert _lock(city, city.admin).json()["lockState"]["value"] == "locked"
    with city.http(people["sara"]) as http:
        assert http.patch(f"/entities/{LOCK}/attrs", json=unlock).status_code == 204
        relock = {"lockState": {"type": "Property", "value": "locked"}}
        assert http.patch(f"/entities/{LOCK}/attrs", json=relock).status_code == 204


def test_a_batch_reports_each_refused_entity_and_writes_the_others(
        city: City, people: dict[str, dict[str, str]]) -> None:
    lamp = {"id": "urn:ngsi-ld:Streetlight:batch-1", "type": "Streetlight",
            "powerState": {"type": "Property", "value": "on"}}
    door = {"id": "urn:ngsi-ld:Lock:batch-1", "type": "Lock"}
    with city.http(people["lighting"]) as http:
        response = http.post("/entityOperations/upsert", json=[lamp, door])
    assert response.status_code == 207
    assert response.json()["success"] == [lamp["id"]]
    [error] = response.json()["errors"]
    assert error["entityId"] == door["id"] and error["error"]["status"] == 403
    with city.http(city.admin) as admin:
        assert admin.get(f"/entities/{lamp['id']}").status_code == 200
        assert admin.get(f"/entities/{door['id']}").status_code == 404


def test_a_caller_limited_to_one_tenant_cannot_reach_another(city: City) -> None:
    north = city.account(["lighting"], tenants=["north"])
    lamp = {"id": "urn:ngsi-ld:Streetlight:tenant-1", "type": "Streetlight"}
    with city.http(north) as http:
        assert http.post("/entities", json=lamp, headers={"NGSILD-Tenant": "north"}
                         ).status_code == 201
        refused = http.post("/entities", json=lamp, headers={"NGSILD-Tenant": "south"})
        assert refused.status_code == 403
        assert http.get("/entities", params={"type": "Streetlight"},
                        headers={"NGSILD-Tenant": "south"}).status_code == 403
    with city.http(city.admin) as admin:
        assert admin.get(f"/entities/{lamp['id']}", headers={"NGSILD-Tenant": "south"}
                         ).status_code in (404,)


def test_history_shows_only_what_the_caller_may_see(
        city: City, people: dict[str, dict[str, str]]) -> None:
    def attributes(headers: dict[str, str]) -> set[str]:
        with httpx.Client(base_url=city.url + "/ngsi-ld/v1/temporal", headers=headers) as t:
            response = t.get(f"/entities/{LOCK}")
            assert response.status_code == 200, response.text
            return set(response.json()) - {"id", "type"}
    assert {"address", "lockState"} <= attributes(people["sara"])
    assert not PERSONAL & attributes(people["tom"])
    with httpx.Client(base_url=city.url + "/ngsi-ld/v1/temporal",
                      headers=people["lighting"]) as temporal:
        assert temporal.get(f"/entities/{LOCK}").status_code == 403
        assert temporal.get("/entities", params={"type": "Lock"}).status_code == 403


def test_discovery_lists_only_readable_types(
        city: City, people: dict[str, dict[str, str]]) -> None:
    with city.http(people["lighting"]) as http:
        types = http.get("/types").json()["typeList"]
    assert "Lock" not in types and "CareAssignment" not in types
    with city.http(city.admin) as admin:
        assert "Lock" in admin.get("/types").json()["typeList"]


def test_an_attribute_is_counted_only_in_entities_the_caller_may_read(
        city: City, people: dict[str, dict[str, str]]) -> None:
    with city.http(city.admin) as admin:
        assert admin.post("/entities", json={
            "id": "urn:ngsi-ld:Streetlight:counted", "type": "Streetlight",
            "name": {"type": "Property", "value": "Lamp by the door"}}).status_code == 201
        everyone = admin.get("/attributes/name").json()["attributeCount"]
    with city.http(people["lighting"]) as http:
        info = http.get("/attributes/name").json()
    assert info["typeNames"] == ["Streetlight"]
    assert info["attributeCount"] < everyone  # the doors' names are not counted


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    endpoint = Receiver()
    yield endpoint
    endpoint.close()


def _subscribe(http: httpx.Client, receiver: Receiver, **extra: Any) -> httpx.Response:
    return http.post("/subscriptions", json={
        "type": "Subscription", "entities": [{"type": "Lock"}],
        "notification": {"endpoint": {"uri": receiver.url}}, **extra})


def test_a_subscription_notifies_only_what_its_owner_may_read(
        city: City, people: dict[str, dict[str, str]], receiver: Receiver) -> None:
    with city.http(people["lighting"]) as http:
        assert _subscribe(http, receiver).status_code == 403
    with city.http(people["tom"]) as http:
        assert _subscribe(http, receiver).status_code == 201
    with city.http(city.admin) as admin:
        assert admin.patch(f"/entities/{LOCK}/attrs", json={
            "name": {"type": "Property", "value": "Front door (blue)"}}).status_code == 204
        _, notification = receiver.next()
        [seen] = notification["data"]
        assert seen["name"]["value"] == "Front door (blue)"
        assert not PERSONAL & seen.keys()
        # A change of what Tom may not see is not announced to him at all.
        assert admin.patch(f"/entities/{LOCK}/attrs", json={
            "address": {"type": "Property", "value": {"streetAddress": "Fleminggatan 1"}}}
        ).status_code == 204
        with pytest.raises(queue.Empty):
            receiver.next(timeout=1.0)


def test_a_subscription_may_not_filter_on_what_its_owner_may_not_see(
        city: City, people: dict[str, dict[str, str]], receiver: Receiver) -> None:
    with city.http(people["tom"]) as http:
        refused = _subscribe(http, receiver, q="lockState==\"unlocked\"")
    assert refused.status_code == 403


def test_callers_see_and_change_only_their_own_subscriptions(
        city: City, people: dict[str, dict[str, str]], receiver: Receiver) -> None:
    with city.http(people["sara"]) as http:
        location = _subscribe(http, receiver).headers["Location"]
        mine = [s["id"] for s in http.get("/subscriptions").json()]
    sub_id = location.rsplit("/", 1)[-1]
    assert sub_id in mine
    with city.http(people["tom"]) as http:
        assert sub_id not in [s["id"] for s in http.get("/subscriptions").json()]
        assert http.get(f"/subscriptions/{sub_id}").status_code == 403
        assert http.delete(f"/subscriptions/{sub_id}").status_code == 403
    with city.http(city.admin) as admin:
        assert sub_id in [s["id"] for s in admin.get("/subscriptions",
                                                     params={"limit": 1000}).json()]


def test_a_consent_opens_personal_data_to_a_service_until_withdrawn(
        city: City, people: dict[str, dict[str, str]]) -> None:
    service = city.account(["partner"], name="homeapp")
    assert not PERSONAL & _lock(city, service).json().keys()
    consent = {"service": "homeapp", "purpose": "Let my family see if the door is locked",
               "until": "2030-01-01T00:00:00Z"}
    given = httpx.post(f"{city.url}/me/consents", json=consent, headers=people["anna"])
    assert given.status_code == 201
    assert _lock(city, service).json().keys() >= PERSONAL
    consents = httpx.get(f"{city.url}/me/consents", headers=people["anna"]).json()
    assert [c["service"] for c in consents] == ["homeapp"]
    assert httpx.delete(f"{city.url}/me/consents/homeapp",
                        headers=people["anna"]).status_code == 204
    assert not PERSONAL & _lock(city, service).json().keys()


def test_a_consent_that_has_ended_cannot_be_given(
        city: City, people: dict[str, dict[str, str]]) -> None:
    response = httpx.post(f"{city.url}/me/consents", headers=people["anna"], json={
        "service": "homeapp", "purpose": "x", "until": "2020-01-01T00:00:00Z"})
    assert response.status_code == 400


def test_devices_are_provisioned_by_administrators_only(
        city: City, people: dict[str, dict[str, str]]) -> None:
    group = {"services": [{"apikey": "k-auth", "resource": "/iot/json",
                           "entity_type": "Streetlight"}]}
    refused = httpx.post(f"{city.url}/iot/services", json=group, headers=people["lighting"])
    assert refused.status_code == 403
    assert httpx.post(f"{city.url}/iot/services", json=group,
                      headers=city.admin).status_code == 201
    assert httpx.get(f"{city.url}/iot/services",
                     headers=people["lighting"]).status_code == 200


def test_accounts_are_managed_by_administrators_only(
        city: City, people: dict[str, dict[str, str]]) -> None:
    for headers in (people["lighting"], people["anna"], {}):
        response = httpx.post(f"{city.url}/auth/clients", headers=headers,
                              json={"name": "sneaky", "roles": ["admin"]})
        assert response.status_code in (401, 403)
    names = [c["name"] for c in httpx.get(f"{city.url}/auth/clients",
                                          headers=city.admin).json()]
    assert "sneaky" not in names


def test_history_is_written_only_by_those_who_may_write_the_entity(
        city: City, people: dict[str, dict[str, str]]) -> None:
    history = {"id": "urn:ngsi-ld:Lock:history-1", "type": "Lock",
               "lockState": [{"type": "Property", "value": "locked",
                              "observedAt": "2026-01-01T00:00:00Z"}]}
    with httpx.Client(base_url=city.url + "/ngsi-ld/v1/temporal",
                      headers=people["lighting"]) as temporal:
        assert temporal.post("/entities", json=history).status_code == 403
        assert temporal.delete(f"/entities/{LOCK}").status_code == 403
    with city.http(city.admin) as admin:
        assert admin.get(f"/entities/{history['id']}").status_code == 404
    with httpx.Client(base_url=city.url + "/ngsi-ld/v1/temporal",
                      headers=city.admin) as temporal:
        assert temporal.get(f"/entities/{LOCK}").status_code == 200


def test_selecting_by_a_hidden_attribute_is_refused(
        city: City, people: dict[str, dict[str, str]]) -> None:
    with city.http(people["tom"]) as http:
        assert http.get("/entities", params={"type": "Lock", "attrs": "address"}
                        ).status_code == 403
        assert http.get("/entities", params={"type": "Lock", "attrs": "name"}
                        ).status_code == 200
        assert http.get("/entities", params={"type": "Lock", "orderBy": "lockState"}
                        ).status_code == 403
