"""Specification of IoT ingestion over HTTP: the FIWARE IoT Agent provisioning API,
measurements in JSON and UltraLight 2.0, and what becomes of them in NGSI-LD."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from smartcity.config import Settings
from tests.conftest import LiveServer
from tests.ingest.test_lorawan import chirpstack_event, tts_event

SDM = "https://smartdatamodels.org/dataModel.Device/"


@pytest.fixture
def iot(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.removesuffix("/ngsi-ld/v1"), timeout=10) as http:
        yield http


@pytest.fixture
def service() -> dict[str, str]:
    """A tenant of its own for each test, as the IoT Agents' headers name it."""
    return {"fiware-service": "t" + secrets.token_hex(4), "fiware-servicepath": "/lighting"}


def ngsi(service: dict[str, str]) -> dict[str, str]:
    return {"NGSILD-Tenant": service["fiware-service"]}


LAMPS = {"apikey": "", "resource": "/iot/d", "entity_type": "Streetlight",
         "attributes": [{"object_id": "l", "name": "illuminanceLevel", "type": "Number"},
                        {"object_id": "p", "name": "powerState", "type": "Text"}]}


def group(iot: httpx.Client, service: dict[str, str], **changes: Any) -> str:
    apikey = "key" + secrets.token_hex(4)
    body = {"services": [{**LAMPS, "apikey": apikey, **changes}]}
    response = iot.post("/iot/services", json=body, headers=service)
    assert response.status_code == 201, response.text
    return apikey


def measure(iot: httpx.Client, apikey: str, device_id: str, payload: str,
            ultralight: bool = True, **params: str) -> httpx.Response:
    path, media = ("/iot/d", "text/plain") if ultralight else ("/iot/json",
                                                               "application/json")
    return iot.post(path, params={"k": apikey, "i": device_id, **params}, content=payload,
                    headers={"Content-Type": media})


# -- provisioning ---------------------------------------------------------------------------
def test_a_service_group_is_provisioned_listed_changed_and_removed(
        iot: httpx.Client, service: dict[str, str]) -> None:
    apikey = group(iot, service)
    listed = iot.get("/iot/services", headers=service).json()
    assert listed["count"] == 1
    assert listed["services"][0]["apikey"] == apikey
    assert listed["services"][0]["entity_type"] == "Streetlight"
    assert iot.get("/iot/services", headers={**service, "fiware-servicepath": "/*"}
                   ).json()["count"] == 1
    assert iot.get("/iot/services", headers={**service, "fiware-servicepath": "/traffic"}
                   ).json()["count"] == 0
    params = {"resource": "/iot/d", "apikey": apikey}
    assert iot.put("/iot/services", params=params, json={"entity_type": "Lamp"},
                   headers=service).status_code == 204
    assert iot.get("/iot/services", headers=service).json()["services"][0][
        "entity_type"] == "Lamp"
    assert iot.delete("/iot/services", params=params, headers=service).status_code == 204
    assert iot.get("/iot/services", headers=service).json()["count"] == 0
    assert iot.delete("/iot/services", params=params, headers=service).status_code == 404


@pytest.mark.parametrize("body", [
    {}, {"services": []}, {"services": [{"resource": "/iot/d"}]},
    {"services": [{"apikey": "a/b", "resource": "/iot/d"}]},
    {"services": [{"apikey": "k", "resource": "/iot/d", "attributes": [{"type": "Number"}]}]},
])
def test_a_malformed_service_group_is_refused(iot: httpx.Client, service: dict[str, str],
                                              body: Any) -> None:
    response = iot.post("/iot/services", json=body, headers=service)
    assert response.status_code == 400
    assert response.json()["type"].endswith("BadRequestData")
    assert iot.get("/iot/services", headers=service).json()["count"] == 0


def test_an_apikey_serves_one_service_group(iot: httpx.Client,
                                            service: dict[str, str]) -> None:
    apikey = group(iot, service)
    again = iot.post("/iot/services", json={"services": [{**LAMPS, "apikey": apikey}]},
                     headers=service)
    assert again.status_code == 409


def test_a_device_is_provisioned_and_appears_as_an_ngsi_ld_device(
        iot: httpx.Client, api: httpx.Client, service: dict[str, str]) -> None:
    group(iot, service)
    device = {"device_id": "lamp1", "entity_name": "urn:ngsi-ld:Streetlight:lamp1",
              "entity_type": "Streetlight", "transport": "HTTP",
              "attributes": [{"object_id": "d", "name": "dimmingLevel", "type": "Number"}]}
    response = iot.post("/iot/devices", json={"devices": [device]}, headers=service)
    assert response.status_code == 201, response.text
    shown = iot.get("/iot/devices/lamp1", headers=service).json()
    assert shown["entity_name"] == "urn:ngsi-ld:Streetlight:lamp1"
    assert shown["service_path"] == "/lighting"
    assert iot.get("/iot/devices", headers=service).json()["count"] == 1
    entity = api.get("/entities/urn:ngsi-ld:Device:lamp1", headers=ngsi(service)).json()
    assert entity["type"] == SDM + "Device"
    assert entity[SDM + "controlledAsset"]["object"] == "urn:ngsi-ld:Streetlight:lamp1"
    assert set(entity[SDM + "controlledProperty"]["value"]) == {
        "illuminanceLevel", "powerState", "dimmingLevel"}
    again = iot.post("/iot/devices", json={"devices": [device]}, headers=service)
    assert again.status_code == 409
    assert iot.delete("/iot/devices/lamp1", headers=service).status_code == 204
    assert iot.get("/iot/devices/lamp1", headers=service).status_code == 404
    assert api.get("/entities/urn:ngsi-ld:Device:lamp1",
                   headers=ngsi(service)).status_code == 404


def test_devices_of_one_service_are_invisible_to_another(
        iot: httpx.Client, service: dict[str, str]) -> None:
    group(iot, service)
    assert iot.post("/iot/devices", json={"devices": [{"device_id": "only-mine"}]},
                    headers=service).status_code == 201
    other = {**service, "fiware-service": "other" + secrets.token_hex(3)}
    assert iot.get("/iot/devices/only-mine", headers=other).status_code == 404
    assert iot.get("/iot/devices", headers=other).json()["count"] == 0


# -- measurements ---------------------------------------------------------------------------
def test_an_ultralight_measurement_updates_the_entity_and_its_device(
        iot: httpx.Client, api: httpx.Client, service: dict[str, str]) -> None:
    apikey = group(iot, service)
    response = measure(iot, apikey, "lamp7", "l|42|p|on")
    assert response.status_code == 200, response.text
    lamp = api.get("/entities/urn:ngsi-ld:Streetlight:lamp7", headers=ngsi(service)).json()
    assert lamp["illuminanceLevel"]["value"] == 42
    assert lamp["powerState"]["value"] == "on"
    assert "observedAt" in lamp["illuminanceLevel"]
    device = api.get("/entities/urn:ngsi-ld:Device:lamp7", headers=ngsi(service)).json()
    assert device[SDM + "dateLastValueReported"]["value"]["@value"] == \
        lamp["illuminanceLevel"]["observedAt"]


def test_every_timed_group_of_a_payload_lands_in_the_history(
        iot: httpx.Client, api: httpx.Client, service: dict[str, str]) -> None:
    apikey = group(iot, service)
    payload = "2026-11-25T10:00:00Z|l|10#2026-11-25T10:05:00Z|l|20#2026-11-25T10:10:00Z|l|30"
    assert measure(iot, apikey, "lamp8", payload).status_code == 200
    history = api.get("/temporal/entities/urn:ngsi-ld:Streetlight:lamp8",
                      params={"attrs": "illuminanceLevel", "options": "temporalValues"},
                      headers=ngsi(service)).json()
    assert history["illuminanceLevel"]["values"] == [
        [10, "2026-11-25T10:00:00Z"], [20, "2026-11-25T10:05:00Z"],
        [30, "2026-11-25T10:10:00Z"]]


def test_a_json_measurement_takes_its_time_instant(
        iot: httpx.Client, api: httpx.Client, service: dict[str, str]) -> None:
    apikey = group(iot, service, resource="/iot/json")
    body = '{"l": 12.5, "p": "off", "TimeInstant": "2026-11-25T08:00:00Z", "extra": [1, 2]}'
    assert measure(iot, apikey, "lamp9", body, ultralight=False).status_code == 200
    lamp = api.get("/entities/urn:ngsi-ld:Streetlight:lamp9", headers=ngsi(service)).json()
    assert lamp["illuminanceLevel"] == {"type": "Property", "value": 12.5,
                                        "observedAt": "2026-11-25T08:00:00Z"}
    assert lamp["extra"]["value"] == [1, 2]


def test_bad_measurements_are_refused_kept_as_dead_letters_and_change_nothing(
        iot: httpx.Client, api: httpx.Client, service: dict[str, str]) -> None:
    apikey = group(iot, service)
    assert measure(iot, apikey, "lamp10", "l|5").status_code == 200
    for payload, status in (("l|dark", 400), ("l", 400), ("", 400)):
        assert measure(iot, apikey, "lamp10", payload).status_code == status
    assert measure(iot, "no-such-key", "lamp10", "l|6").status_code == 404
    assert measure(iot, apikey, "lamp10", "{", ultralight=False).status_code == 400
    lamp = api.get("/entities/urn:ngsi-ld:Streetlight:lamp10", headers=ngsi(service)).json()
    assert lamp["illuminanceLevel"]["value"] == 5
    letters = [d for d in iot.get("/iot/deadletters").json()
               if d["device_id"] == "lamp10"]
    assert {d["reason"].split(":")[0] for d in letters} >= {"Measure 'l'",
                                                            "No device 'lamp10' for this API key"}
    assert any(d["payload"] == "l|dark" for d in letters)


def test_a_group_without_autoprovision_refuses_unknown_devices(
        iot: httpx.Client, service: dict[str, str]) -> None:
    apikey = group(iot, service, autoprovision=False)
    assert measure(iot, apikey, "stranger", "l|1").status_code == 404
    assert iot.post("/iot/devices", json={"devices": [{"device_id": "known"}]},
                    headers=service).status_code == 201
    assert measure(iot, apikey, "known", "l|1").status_code == 200


def test_measurement_parameters_are_checked(iot: httpx.Client,
                                            service: dict[str, str]) -> None:
    apikey = group(iot, service)
    assert iot.post("/iot/d", params={"k": apikey}, content="l|1",
                    headers={"Content-Type": "text/plain"}).status_code == 400
    assert measure(iot, apikey, "lamp11", "l|1", t="yesterday").status_code == 400
    assert iot.post("/iot/d", params={"k": apikey, "i": "lamp11"}, content="l|1",
                    headers={"Content-Type": "application/json"}).status_code == 415


def test_a_flooding_device_is_held_back_while_others_go_on(db: str) -> None:
    settings = Settings(db=db, ingest_rate=1, ingest_burst=3)
    service = {"fiware-service": "flood", "fiware-servicepath": "/"}
    with LiveServer(settings) as url, httpx.Client(base_url=url, timeout=10) as iot:
        apikey = group(iot, service)
        statuses = [measure(iot, apikey, "noisy", f"l|{n}").status_code for n in range(5)]
        assert statuses == [200, 200, 200, 429, 429]
        assert measure(iot, apikey, "quiet", "l|1").status_code == 200


# -- LoRaWAN -----------------------------------------------------------------------------
def test_a_chirpstack_uplink_updates_the_entity_and_the_devices_radio_health(
        iot: httpx.Client, api: httpx.Client, service: dict[str, str]) -> None:
    apikey = group(iot, service, resource="/iot/lorawan", entity_type="AirQualityObserved")
    event = chirpstack_event(object={"temperature": 21.5, "co2": 612})
    response = iot.post("/iot/lorawan/chirpstack", params={"k": apikey, "event": "up"},
                        json=event)
    assert response.status_code == 200, response.text
    entity = api.get("/entities/urn:ngsi-ld:AirQualityObserved:0101010101010101",
                     headers=ngsi(service)).json()
    assert entity["co2"] == {"type": "Property", "value": 612,
                             "observedAt": "2022-07-18T09:34:15.775023Z"}
    device = api.get("/entities/urn:ngsi-ld:Device:0101010101010101",
                     headers=ngsi(service)).json()
    assert device[SDM + "rssi"]["value"] == -36
    assert device["snr"]["value"] == 10.5
    gateways = iot.get("/iot/overview", headers=service).json()["gateways"]
    assert [g["id"] for g in gateways] == ["0016c001f153a14c", "0016c001f153a14d"]
    assert all(g["lastContact"].startswith("20") for g in gateways)


def test_a_things_stack_uplink_is_taken_as_its_network_server_decoded_it(
        iot: httpx.Client, api: httpx.Client, service: dict[str, str]) -> None:
    apikey = group(iot, service, resource="/iot/lorawan", entity_type="WeatherObserved")
    response = iot.post("/iot/lorawan/tts", params={"k": apikey}, json=tts_event())
    assert response.status_code == 200, response.text
    entity = api.get("/entities/urn:ngsi-ld:WeatherObserved:70b3d57ed005e3a8",
                     headers=ngsi(service)).json()
    assert entity["temperature"]["value"] == 22.6


def test_lorawan_events_that_are_no_uplinks_or_are_malformed(
        iot: httpx.Client, service: dict[str, str]) -> None:
    apikey = group(iot, service, resource="/iot/lorawan")
    assert iot.post("/iot/lorawan/chirpstack", params={"k": apikey, "event": "join"},
                    json={"deviceInfo": {}}).status_code == 204
    assert iot.post("/iot/lorawan/chirpstack", params={"k": apikey},
                    json=chirpstack_event(data="not base64!")).status_code == 400
    # No decoder provisioned and nothing decoded by the network server: nothing to read.
    assert iot.post("/iot/lorawan/chirpstack", params={"k": apikey},
                    json=chirpstack_event()).status_code == 400
    assert iot.post("/iot/lorawan/tts", json=tts_event()).status_code == 400


def test_an_uplink_is_decoded_by_the_decoder_its_group_names(
        iot: httpx.Client, api: httpx.Client, service: dict[str, str]) -> None:
    apikey = group(iot, service, resource="/iot/lorawan", entity_type="IndoorEnvironment",
                   decoder="elsys-ers", attributes=[])
    # An Elsys ERS CO2 reading (Elsys' payload format document).
    payload = base64.b64encode(bytes.fromhex("0100e202290400270506060308070d62")).decode()
    response = iot.post("/iot/lorawan/chirpstack", params={"k": apikey},
                        json=chirpstack_event(data=payload, fPort=5))
    assert response.status_code == 200, response.text
    entity = api.get("/entities/urn:ngsi-ld:IndoorEnvironment:0101010101010101",
                     params={"options": "keyValues"}, headers=ngsi(service)).json()
    assert {k: entity[k] for k in ("temperature", "relativeHumidity", "co2")} == {
        "temperature": 22.6, "relativeHumidity": 41, "co2": 776}
    garbled = iot.post("/iot/lorawan/chirpstack", params={"k": apikey},
                       json=chirpstack_event(data="AQ==", fPort=5))
    assert garbled.status_code == 400
    assert "elsys-ers" in garbled.json()["detail"]


def test_a_group_naming_an_unknown_decoder_is_refused(iot: httpx.Client,
                                                      service: dict[str, str]) -> None:
    response = iot.post("/iot/services", headers=service, json={"services": [
        {"apikey": "k" + secrets.token_hex(3), "resource": "/iot/lorawan",
         "decoder": "acme-9000"}]})
    assert response.status_code == 400
    assert "acme-9000" in response.json()["detail"]
