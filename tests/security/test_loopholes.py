"""Ways around the policy a reviewer tried; each now fails as it should."""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import Receiver
from tests.security.conftest import City

ANNA, BERT = "urn:ngsi-ld:Person:anna-l", "urn:ngsi-ld:Person:bert-l"
SARA, TOM = "urn:ngsi-ld:Person:sara-l", "urn:ngsi-ld:Person:tom-l"
ON = {"powerState": {"type": "Property", "value": "on"}}


def _lock(number: int, owner: str, **attrs: Any) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:Lock:l{number}", "type": "Lock",
            "owner": {"type": "Property", "value": [owner]},
            "lockState": {"type": "Property", "value": "locked"}, **attrs}


@pytest.fixture(scope="module")
def people(city: City) -> dict[str, dict[str, str]]:
    with city.http(city.admin) as admin:
        for entity in (_lock(1, ANNA), _lock(2, BERT),
                       {"id": "urn:ngsi-ld:CareAssignment:l1", "type": "CareAssignment",
                        "refStaff": {"type": "Relationship", "object": SARA},
                        "refClient": {"type": "Relationship", "object": ANNA},
                        "startDate": {"type": "Property", "value": "2026-01-01T00:00:00+01:00"},
                        "endDate": {"type": "Property", "value": "2099-01-01T00:00:00+01:00"}}):
            assert admin.post("/entities", json=entity).status_code == 201
    return {"sara": city.account(["care"], person=SARA),
            "tom": city.account(["care"], person=TOM),
            "bert": city.account(["resident"], person=BERT),
            "partner": city.account(["partner"]),
            "developer": city.account(["developer"])}


def test_staff_may_not_command_a_door_of_a_resident_they_are_not_assigned_to(
        city: City, people: dict[str, dict[str, str]]) -> None:
    with city.http(people["tom"]) as http:
        for attrs in ({"unlock": {"type": "Property", "value": "now"}},
                      {"name": {"type": "Property", "value": "x"}}):
            assert http.patch("/entities/urn:ngsi-ld:Lock:l1/attrs", json=attrs
                              ).status_code == 403
        assert http.delete("/entities/urn:ngsi-ld:Lock:l1").status_code == 403
    with city.http(people["sara"]) as http:
        assert http.patch("/entities/urn:ngsi-ld:Lock:l1/attrs", json={
            "name": {"type": "Property", "value": "Front"}}).status_code == 204


def test_staff_may_not_make_themselves_assigned(
        city: City, people: dict[str, dict[str, str]]) -> None:
    forged = {"id": "urn:ngsi-ld:Lock:forged", "type": ["Lock", "CareAssignment"],
              "owner": {"type": "Property", "value": [ANNA]},
              "refStaff": {"type": "Relationship", "object": SARA},
              "refClient": {"type": "Relationship", "object": BERT}}
    with city.http(people["sara"]) as http:
        assert http.post("/entities", json=forged).status_code == 403
        assert "lockState" not in http.get("/entities/urn:ngsi-ld:Lock:l2").json()


def test_history_is_not_written_past_access_control(
        city: City, people: dict[str, dict[str, str]]) -> None:
    forged = {"lockState": [{"type": "Property", "value": "FORGED",
                             "observedAt": "2025-01-01T00:00:00Z"}]}
    url = f"{city.url}/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:Lock:l1/attrs"
    assert httpx.post(url, json=forged).status_code == 401
    assert httpx.post(url, json=forged, headers=people["developer"]).status_code == 403
    history = httpx.get(f"{city.url}/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:Lock:l1",
                        headers=city.admin).text
    assert "FORGED" not in history


def test_a_new_entity_under_an_old_id_does_not_open_the_old_history(
        city: City, people: dict[str, dict[str, str]]) -> None:
    with city.http(city.admin) as admin:
        assert admin.post("/entities", json=_lock(3, ANNA)).status_code == 201
        assert admin.delete("/entities/urn:ngsi-ld:Lock:l3").status_code == 204
    lighting = city.account(["lighting"])
    with city.http(lighting) as http:
        assert http.post("/entities", json={"id": "urn:ngsi-ld:Lock:l3",
                                            "type": "Streetlight"}).status_code == 201
    response = httpx.get(f"{city.url}/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:Lock:l3",
                         headers=lighting)
    assert response.status_code == 403 and ANNA not in response.text


def test_a_new_owner_does_not_read_the_former_owner_s_history(
        city: City, people: dict[str, dict[str, str]]) -> None:
    with city.http(city.admin) as admin:
        assert admin.post("/entities", json=_lock(4, ANNA)).status_code == 201
        assert admin.patch("/entities/urn:ngsi-ld:Lock:l4/attrs", json={
            "owner": {"type": "Property", "value": [BERT]}}).status_code == 204
    with city.http(people["bert"]) as http:
        assert http.get("/entities/urn:ngsi-ld:Lock:l4").json()["owner"]["value"] == [BERT]
    history = httpx.get(f"{city.url}/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:Lock:l4",
                        headers=people["bert"])
    assert history.status_code == 403 and ANNA not in history.text


@pytest.mark.parametrize("subscription", [
    {"entities": [{"type": "Door"}], "q": "refLock{lockState}==\"unlocked\""},
    {"entities": [{"type": "Lock|Door"}], "q": f"owner==\"{BERT}\""},
    {"entities": [{"type": "(Lock;Door)"}], "q": "lockState==\"unlocked\""},
])
def test_subscription_filters_may_not_reach_hidden_data(
        city: City, people: dict[str, dict[str, str]], subscription: dict[str, Any]) -> None:
    with city.http(people["partner"]) as http:
        response = http.post("/subscriptions", json={
            "type": "Subscription", **subscription,
            "notification": {"endpoint": {"uri": "http://127.0.0.1:9/none"}}})
    assert response.status_code == 403


def test_a_nul_character_in_a_resident_s_id_breaks_nothing(
        city: City, people: dict[str, dict[str, str]]) -> None:
    odd = _lock(5, "x\u0000y")
    with city.http(city.admin) as admin:
        assert admin.post("/entities", json=odd).status_code in (201, 400)
        assert admin.get("/entities", params={"type": "Lock"}).status_code == 200


def test_a_removed_account_s_token_stays_refused_when_the_name_is_reused(
        city: City) -> None:
    old = city.account(["admin"], name="lena-l")
    assert httpx.delete(f"{city.url}/auth/clients/lena-l",
                        headers=city.admin).status_code == 204
    city.account(["developer"], name="lena-l")
    assert httpx.get(f"{city.url}/me", headers=old).status_code == 401


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    endpoint = Receiver()
    yield endpoint
    endpoint.close()


def test_a_removed_account_s_subscriptions_fall_silent(city: City,
                                                       receiver: Receiver) -> None:
    gone = city.account(["lighting"], name="gone-l")
    with city.http(gone) as http:
        assert http.post("/subscriptions", json={
            "type": "Subscription", "entities": [{"type": "Streetlight"}],
            "notification": {"endpoint": {"uri": receiver.url}}}).status_code == 201
    with city.http(city.admin) as admin:
        assert admin.post("/entities", json={"id": "urn:ngsi-ld:Streetlight:l1",
                                             "type": "Streetlight", **ON}).status_code == 201
        receiver.next()
        assert httpx.delete(f"{city.url}/auth/clients/gone-l",
                            headers=city.admin).status_code == 204
        assert admin.post("/entities", json={"id": "urn:ngsi-ld:Streetlight:l2",
                                             "type": "Streetlight", **ON}).status_code == 201
    with pytest.raises(queue.Empty):
        receiver.next(timeout=1.0)


def test_purging_what_one_may_not_delete_is_refused(
        city: City, people: dict[str, dict[str, str]]) -> None:
    with city.http(people["developer"]) as http:
        assert http.delete("/entities", params={"type": "Streetlight"}).status_code == 403
    with city.http(city.admin) as admin:
        assert admin.get("/entities/urn:ngsi-ld:Streetlight:l1").status_code == 200


def test_the_time_of_a_hidden_change_is_not_shown(
        city: City, people: dict[str, dict[str, str]]) -> None:
    def modified() -> str:
        with city.http(people["partner"]) as http:
            return str(http.get("/entities/urn:ngsi-ld:Lock:l2",
                                params={"options": "sysAttrs"}).json()["modifiedAt"])
    before = modified()
    time.sleep(0.01)
    with city.http(city.admin) as admin:
        assert admin.patch("/entities/urn:ngsi-ld:Lock:l2/attrs", json={
            "lockState": {"type": "Property", "value": "unlocked"}}).status_code == 204
    assert modified() == before


def test_a_resident_limited_to_a_tenant_stays_in_it(city: City) -> None:
    with city.http(city.admin) as admin:
        assert admin.post("/entities", json=_lock(6, "urn:ngsi-ld:Person:cleo"),
                          headers={"NGSILD-Tenant": "south"}).status_code == 201
    cleo = city.account(["resident"], person="urn:ngsi-ld:Person:cleo", tenants=["north"])
    with city.http(cleo) as http:
        assert http.get("/entities/urn:ngsi-ld:Lock:l6",
                        headers={"NGSILD-Tenant": "south"}).status_code == 403


def test_anonymous_callers_learn_nothing_of_types_and_history(city: City) -> None:
    for path in ("/ngsi-ld/v1/types", "/ngsi-ld/v1/attributes",
                 "/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:Lock:l1"):
        assert httpx.get(city.url + path).status_code == 401
