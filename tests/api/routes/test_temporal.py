"""Specification of the temporal API: /ngsi-ld/v1/temporal/entities and
/temporal/entityOperations/query (ETSI GS CIM 009 V1.9.1, clauses 5.6.11-5.6.20, 5.7.3,
5.7.4, 6.18-6.24), over a real socket.

Every value written through the core API lands in the history; the temporal API adds,
reads, aggregates and deletes history directly.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from smartcity.config import RetentionSetting, Settings
from tests.conftest import LiveServer

ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"


def new_id(kind: str = "Sensor") -> str:
    return f"urn:ngsi-ld:{kind}:{uuid.uuid4().hex[:12]}"


def readings(*pairs: tuple[float, str], **extra: Any) -> list[dict[str, Any]]:
    return [{"type": "Property", "value": v, "observedAt": t, **extra} for v, t in pairs]


def sensor(entity_id: str, kind: str = "Sensor", **attrs: Any) -> dict[str, Any]:
    return {"id": entity_id, "type": kind, **attrs}


def path(entity_id: str) -> str:
    return "/temporal/entities/" + quote(entity_id, safe=":")


def create(api: httpx.Client, body: dict[str, Any]) -> httpx.Response:
    response = api.post("/temporal/entities", json=body)
    assert response.status_code in (201, 204), response.text
    return response


AUG = [(120, "2020-08-01T12:03:00Z"), (80, "2020-08-01T12:05:00Z"),
       (100, "2020-08-01T12:07:00Z")]
FUEL = [(67, "2020-08-01T12:03:00Z"), (53, "2020-08-01T13:05:00Z"),
        (40, "2020-08-01T14:07:00Z")]


@pytest.fixture
def vehicle(api: httpx.Client) -> str:
    entity_id = new_id("Vehicle")
    create(api, sensor(entity_id, "Vehicle", speed=readings(*AUG), fuelLevel=readings(*FUEL)))
    return entity_id


def values(body: dict[str, Any], attr: str) -> list[Any]:
    return [i["value"] for i in body.get(attr, [])]


# -- provision --------------------------------------------------------------------------
def test_creating_a_temporal_representation_answers_201_and_then_204(api: httpx.Client) -> None:
    entity_id = new_id()
    first = api.post("/temporal/entities", json=sensor(entity_id, speed=readings(*AUG[:1])))
    assert first.status_code == 201
    assert first.headers["location"].endswith(quote(entity_id, safe=":"))
    again = api.post("/temporal/entities", json=sensor(entity_id, speed=readings(*AUG[1:])))
    assert again.status_code == 204
    assert values(api.get(path(entity_id)).json(), "speed") == [120, 80, 100]


def test_an_instance_sent_again_for_the_same_instant_replaces_the_old_one(
        api: httpx.Client, vehicle: str) -> None:
    api.post("/temporal/entities", json=sensor(vehicle, "Vehicle", speed=readings(
        (121, "2020-08-01T12:03:00Z"))))
    assert values(api.get(path(vehicle)).json(), "speed") == [121, 80, 100]


def test_history_given_by_a_client_brings_the_current_state_up_to_its_latest_values(
        api: httpx.Client, vehicle: str) -> None:
    current = api.get(f"/entities/{vehicle}").json()
    assert (current["speed"]["value"], current["fuelLevel"]["value"]) == (100, 40)
    api.post("/temporal/entities", json=sensor(vehicle, "Vehicle", speed=readings(
        (5, "2020-08-01T11:00:00Z"))))
    assert api.get(f"/entities/{vehicle}").json()["speed"]["value"] == 100  # older: history
    api.post(path(vehicle) + "/attrs", json={"speed": readings((7, "2020-08-02T00:00:00Z"))})
    assert api.get(f"/entities/{vehicle}").json()["speed"]["value"] == 7


def test_instances_carry_ids_and_system_times_only_when_asked(api: httpx.Client,
                                                               vehicle: str) -> None:
    plain = api.get(path(vehicle)).json()["speed"][0]
    assert set(plain) == {"type", "value", "observedAt", "instanceId"}
    with_sys = api.get(path(vehicle), params={"options": "sysAttrs"}).json()["speed"][0]
    assert {"createdAt", "modifiedAt"} <= set(with_sys)


def test_a_transient_attribute_shows_its_expiry_only_with_sys_attrs(api: httpx.Client) -> None:
    entity_id = new_id()
    api.post("/entities", json=sensor(entity_id, speed={
        "type": "Property", "value": 7, "expiresAt": "2100-01-01T00:00:00Z"}))
    assert "expiresAt" not in api.get(path(entity_id), params={
        "timeproperty": "createdAt"}).text
    assert api.get(path(entity_id), params={"timeproperty": "createdAt", "options": "sysAttrs"}
                   ).json()["speed"][0]["expiresAt"] == "2100-01-01T00:00:00Z"


def test_appending_attributes_adds_their_history(api: httpx.Client, vehicle: str) -> None:
    response = api.post(path(vehicle) + "/attrs", json={"heading": readings(
        (90, "2020-08-01T12:04:00Z"))})
    assert response.status_code == 204
    assert values(api.get(path(vehicle)).json(), "heading") == [90]
    missing = api.post(path(new_id()) + "/attrs", json={"heading": readings((1, AUG[0][1]))})
    assert missing.status_code == 404


def test_an_instance_is_modified_and_deleted_by_its_instance_id(api: httpx.Client,
                                                                vehicle: str) -> None:
    first = api.get(path(vehicle)).json()["speed"][0]["instanceId"]
    instance_path = f"{path(vehicle)}/attrs/speed/{first}"
    changed = api.patch(instance_path, json={"speed": {"type": "Property", "value": 129,
                                                       "observedAt": AUG[0][1]}})
    assert changed.status_code == 204
    body = api.get(path(vehicle)).json()
    assert values(body, "speed") == [129, 80, 100]
    assert body["speed"][0]["instanceId"] == first
    assert api.delete(instance_path).status_code == 204
    assert values(api.get(path(vehicle)).json(), "speed") == [80, 100]
    assert api.delete(instance_path).status_code == 404


def test_deleting_an_attribute_history_by_dataset_or_whole(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, sensor(entity_id, speed=readings(*AUG) + readings(
        (5, "2020-08-01T12:04:00Z"), datasetId="urn:ngsi-ld:Dataset:radar")))
    assert api.delete(path(entity_id) + "/attrs/speed").status_code == 204
    assert values(api.get(path(entity_id)).json(), "speed") == [5]
    assert api.delete(path(entity_id) + "/attrs/speed",
                      params={"deleteAll": "true"}).status_code == 204
    assert "speed" not in api.get(path(entity_id)).json()


def test_deleting_the_temporal_representation(api: httpx.Client, vehicle: str) -> None:
    assert api.delete(path(vehicle)).status_code == 204
    assert api.get(path(vehicle)).status_code == 404
    assert api.delete(path(vehicle)).status_code == 404


# -- history from the core API -------------------------------------------------------------
def test_every_core_write_becomes_history_in_the_same_transaction(api: httpx.Client) -> None:
    entity_id = new_id("Streetlight")
    api.post("/entities", json={"id": entity_id, "type": "Streetlight",
                                "powerState": {"type": "Property", "value": "off"},
                                "dim": {"type": "Property", "value": 10,
                                        "observedAt": "2026-01-01T18:00:00Z"}})
    api.patch(f"/entities/{entity_id}/attrs", json={"powerState": {"type": "Property",
                                                                   "value": "on"}})
    api.post("/entityOperations/upsert", json=[{
        "id": entity_id, "type": "Streetlight",
        "dim": {"type": "Property", "value": 80, "observedAt": "2026-01-01T19:00:00Z"}}],
        params={"options": "update"})
    body = api.get(path(entity_id), params={"timeproperty": "modifiedAt"}).json()
    assert values(body, "powerState") == ["off", "on"]
    assert values(body, "dim") == [10, 80]
    assert body["dim"][1]["observedAt"] == "2026-01-01T19:00:00Z"


def test_a_deleted_attribute_is_recorded_with_ngsi_ld_null(api: httpx.Client) -> None:
    entity_id = new_id("Streetlight")
    api.post("/entities", json={"id": entity_id, "type": "Streetlight",
                                "dim": {"type": "Property", "value": 10}})
    api.delete(f"/entities/{entity_id}/attrs/dim")
    deleted = api.get(path(entity_id), params={"timeproperty": "deletedAt"}).json()["dim"]
    assert [(i["value"], "deletedAt" in i) for i in deleted] == [("urn:ngsi-ld:null", True)]


def test_scope_changes_are_history_too(api: httpx.Client) -> None:
    entity_id = new_id("Streetlight")
    api.post("/entities", json={"id": entity_id, "type": "Streetlight", "scope": "/Old",
                                "dim": {"type": "Property", "value": 10}})
    api.patch(f"/entities/{entity_id}", json={"scope": "/New"})
    api.delete(f"/entities/{entity_id}/attrs/scope")
    scopes = api.get(path(entity_id), params={"timeproperty": "modifiedAt"}).json()["scope"]
    assert [i["value"] for i in scopes] == [["/Old"], ["/New"], []]


def test_the_history_outlives_the_entity(api: httpx.Client) -> None:
    entity_id = new_id("Streetlight")
    api.post("/entities", json={"id": entity_id, "type": "Streetlight",
                                "dim": {"type": "Property", "value": 10}})
    api.delete(f"/entities/{entity_id}")
    body = api.get(path(entity_id), params={"timeproperty": "createdAt"}).json()
    assert values(body, "dim") == [10]


# -- consumption -------------------------------------------------------------------------
@pytest.mark.parametrize(("params", "speeds"), [
    ({"timerel": "after", "timeAt": "2020-08-01T12:05:00Z"}, [80, 100]),
    ({"timerel": "before", "timeAt": "2020-08-01T12:05:00Z"}, [120]),
    ({"timerel": "between", "timeAt": "2020-08-01T12:03:00Z",
      "endTimeAt": "2020-08-01T12:05:00.000Z"}, [120]),
    ({"lastN": "2"}, [80, 100]),
])
def test_the_time_window_and_last_n_select_instances(api: httpx.Client, vehicle: str,
                                                     params: dict[str, str],
                                                     speeds: list[int]) -> None:
    assert values(api.get(path(vehicle), params=params).json(), "speed") == speeds


def test_an_attribute_with_nothing_in_the_window_is_left_out(api: httpx.Client,
                                                             vehicle: str) -> None:
    body = api.get(path(vehicle), params={"timerel": "after",
                                          "timeAt": "2020-08-01T13:00:00Z"}).json()
    assert "speed" not in body
    assert values(body, "fuelLevel") == [53, 40]


def test_temporal_values_are_value_and_time_pairs(api: httpx.Client, vehicle: str) -> None:
    body = api.get(path(vehicle), params={"options": "temporalValues", "attrs": "speed"}).json()
    assert body["speed"] == {"type": "Property", "values": [[v, t] for v, t in AUG]}
    assert set(body) == {"id", "type", "speed"}


def test_aggregated_values_per_period_start_at_the_first_instance(api: httpx.Client,
                                                                 vehicle: str) -> None:
    body = api.get(path(vehicle), params={"options": "aggregatedValues",
                                          "aggrMethods": "avg,max,totalCount",
                                          "aggrPeriodDuration": "PT1H"}).json()
    assert body["speed"]["avg"] == [[100.0, "2020-08-01T12:03:00Z", "2020-08-01T13:03:00Z"]]
    assert body["fuelLevel"]["max"] == [
        [67, "2020-08-01T12:03:00Z", "2020-08-01T13:03:00Z"],
        [53, "2020-08-01T13:03:00Z", "2020-08-01T14:03:00Z"],
        [40, "2020-08-01T14:03:00Z", "2020-08-01T15:03:00Z"]]
    assert body["speed"]["totalCount"][0][0] == 3


def test_aggregating_text_answers_counts_and_null_sums_never_an_error(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, sensor(entity_id, status=readings(("ok", AUG[0][1]), ("fault", AUG[1][1]))))
    response = api.get(path(entity_id), params={
        "options": "aggregatedValues", "aggrMethods": "sum,avg,distinctCount,max"})
    assert response.status_code == 200
    status = response.json()["status"]
    assert (status["sum"][0][0], status["avg"][0][0]) == (None, None)
    assert (status["distinctCount"][0][0], status["max"][0][0]) == (2, "ok")


def test_a_query_selects_entities_with_instances_in_the_window(api: httpx.Client) -> None:
    kind = "Bus" + uuid.uuid4().hex[:6]
    early, late = new_id(kind), new_id(kind)
    create(api, sensor(early, kind, speed=readings((10, "2020-08-01T12:00:00Z"))))
    create(api, sensor(late, kind, speed=readings((20, "2020-09-01T12:00:00Z"),
                                                  (90, "2020-09-01T12:01:00Z"))))
    response = api.get("/temporal/entities", params={
        "type": kind, "timerel": "after", "timeAt": "2020-08-15T00:00:00Z", "count": "true"})
    assert [e["id"] for e in response.json()] == [late]
    assert response.headers["NGSILD-Results-Count"] == "1"
    fast = api.get("/temporal/entities", params={"type": kind, "q": "speed>50"}).json()
    assert [(e["id"], values(e, "speed")) for e in fast] == [(late, [20, 90])]


def test_scope_q_holds_while_a_matching_scope_was_valid(api: httpx.Client) -> None:
    """Clause 4.18: a scope is valid from when it is set until it is replaced; only the
    instances observed meanwhile belong to a scopeQ answer."""
    kind = "Tram" + uuid.uuid4().hex[:6]
    moved, unscoped = new_id(kind), new_id(kind)
    create(api, sensor(moved, kind, scope=[
        {"type": "Property", "value": "/Depot", "observedAt": "2026-03-01T10:00:00Z"},
        {"type": "Property", "value": "/Line/4", "observedAt": "2026-03-01T12:30:00Z"}],
        speed=readings((0, "2026-03-01T12:15:00Z"), (40, "2026-03-01T12:45:00Z"))))
    create(api, sensor(unscoped, kind, speed=readings((1, "2026-03-01T12:15:00Z"))))
    window = {"type": kind, "timerel": "between", "timeAt": "2026-03-01T12:00:00Z",
              "endTimeAt": "2026-03-01T13:00:00Z"}
    depot = api.get("/temporal/entities", params={**window, "scopeQ": "/Depot"}).json()
    assert [(e["id"], values(e, "speed")) for e in depot] == [(moved, [0])]
    assert [i["value"] for i in depot[0]["scope"]] == [["/Depot"]]
    line = api.get("/temporal/entities", params={**window, "scopeQ": "/Line/#"}).json()
    assert [(e["id"], values(e, "speed")) for e in line] == [(moved, [40])]
    anywhere = api.get("/temporal/entities", params={**window, "scopeQ": "/#"}).json()
    assert [e["id"] for e in anywhere] == [moved]


def test_the_query_body_form_takes_a_temporal_q(api: httpx.Client, vehicle: str) -> None:
    response = api.post("/temporal/entityOperations/query", json={
        "type": "Query", "entities": [{"type": "Vehicle", "id": vehicle}],
        "temporalQ": {"timerel": "before", "timeAt": "2020-08-01T12:04:00Z"}})
    assert response.status_code == 200
    assert [values(e, "speed") for e in response.json()] == [[120]]


@pytest.mark.parametrize("params", [
    {"timerel": "during", "timeAt": "2020-08-01T12:00:00Z"},
    {"timerel": "between", "timeAt": "2020-08-01T12:00:00Z"},
    {"timerel": "after", "timeAt": "2020-08-01"},
    {"timerel": "between", "timeAt": "2020-08-02T00:00:00Z",
     "endTimeAt": "2020-08-01T00:00:00Z"},
    {"lastN": "0"}, {"timeproperty": "expiresAt"},
    {"options": "aggregatedValues", "aggrMethods": "avg", "aggrPeriodDuration": "P1X"},
    {"options": "aggregatedValues", "aggrMethods": "median"},
    {"lastN": "\u00b2"}, {"options": "aggregatedValues", "aggrMethods": "sum",
                           "aggrPeriodDuration": "P99999Y"},
])
def test_bad_temporal_parameters_answer_400_and_change_nothing(
        api: httpx.Client, vehicle: str, params: dict[str, str]) -> None:
    response = api.get(path(vehicle), params=params)
    assert response.status_code == 400
    assert response.json()["type"] == ERRORS + "BadRequestData"
    assert values(api.get(path(vehicle)).json(), "speed") == [120, 80, 100]


def test_a_huge_last_n_means_all_and_large_integers_aggregate(api: httpx.Client) -> None:
    entity_id = new_id()
    create(api, sensor(entity_id, count=readings(*((n * 2 * 10**18, AUG[n][1])
                                                   for n in range(3)))))
    assert len(api.get(path(entity_id), params={"lastN": "9" * 30}).json()["count"]) == 3
    response = api.get(path(entity_id), params={
        "options": "aggregatedValues", "aggrMethods": "sum,stddev"})
    assert response.status_code == 200
    assert response.json()["count"]["sum"][0][0] == 6 * 10**18


def test_moving_an_instance_onto_another_ones_time_is_refused(api: httpx.Client,
                                                              vehicle: str) -> None:
    first = api.get(path(vehicle)).json()["speed"][0]["instanceId"]
    response = api.patch(f"{path(vehicle)}/attrs/speed/{first}", json={
        "speed": {"type": "Property", "value": 1, "observedAt": AUG[1][1]}})
    assert response.status_code == 409
    assert values(api.get(path(vehicle)).json(), "speed") == [120, 80, 100]


def test_a_query_needs_a_selector(api: httpx.Client) -> None:
    response = api.get("/temporal/entities", params={"timerel": "after",
                                                     "timeAt": "2020-08-01T12:00:00Z"})
    assert response.status_code == 400


def test_an_unknown_entity_is_404_and_a_bad_id_400(api: httpx.Client) -> None:
    assert api.get(path(new_id())).status_code == 404
    assert api.get("/temporal/entities/not-a-uri").status_code == 400


# -- pagination of long histories -------------------------------------------------------------
@pytest.fixture(scope="module")
def small_pages(module_db: str) -> Iterator[str]:
    with LiveServer(Settings(db=module_db, temporal_page_size=5)) as url:
        yield url + "/ngsi-ld/v1"


def test_a_long_history_is_cut_by_time_with_a_content_range(small_pages: str) -> None:
    entity_id = new_id()
    times = [f"2020-01-01T01:{m:02d}:00Z" for m in range(1, 13)]
    with httpx.Client(base_url=small_pages) as api:
        create(api, sensor(entity_id, speed=readings(*((m, t) for m, t in enumerate(times)))))
        first = api.get(path(entity_id))
        assert first.status_code == 206
        assert values(first.json(), "speed") == [0, 1, 2, 3, 4]
        assert first.headers["Content-Range"] == f"date-time {times[0]}-{times[4]}/*"
        latest = api.get(path(entity_id), params={"lastN": "10"})
        assert values(latest.json(), "speed") == [7, 8, 9, 10, 11]
        assert latest.headers["Content-Range"] == f"date-time {times[11]}-{times[7]}/10"
        short = api.get(path(entity_id), params={"lastN": "3"})
        assert short.status_code == 200


# -- retention ----------------------------------------------------------------------------
def test_a_configured_retention_rule_is_applied_while_the_server_runs(db: str) -> None:
    rule = RetentionSetting(type="Meter", attribute="power", raw="P1D")
    recent = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    with LiveServer(Settings(db=db, retention=(rule,), retention_interval=0.2)) as url, \
            httpx.Client(base_url=url + "/ngsi-ld/v1") as api:
        create(api, sensor("urn:ngsi-ld:Meter:1", "Meter",
                           power=readings((1, "2020-01-01T00:00:00Z"), (2, recent)),
                           label=readings(("old", "2020-01-01T00:00:00Z"))))
        deadline = time.monotonic() + 10
        while values(api.get(path("urn:ngsi-ld:Meter:1")).json(), "power") != [2]:
            assert time.monotonic() < deadline, "the old reading was never deleted"
            time.sleep(0.1)
        assert values(api.get(path("urn:ngsi-ld:Meter:1")).json(), "label") == ["old"]
