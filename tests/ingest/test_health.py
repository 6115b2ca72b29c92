"""Specification of device health: silent devices and low batteries raise Alert entities
that clear when the device recovers, and operators get an overview."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from smartcity.config import Settings
from smartcity.ingest.health import LOW_BATTERY, SILENT, conditions
from smartcity.ingest.provisioning import Device, ServiceGroup
from smartcity.ingest.registry import Provisioned
from tests.conftest import LiveServer

MINUTE = 60_000_000
NOW = 1_000 * MINUTE


def device(interval: float | None = 300) -> Provisioned:
    return Provisioned("", "/", Device(device_id="s1", expected_interval=interval),
                       ServiceGroup(apikey="k"))


def kinds(provisioned: Provisioned, reported: int | None, battery: float | None) -> set[str]:
    return {c.kind for c in conditions(provisioned, reported, battery, NOW, 0.2)}


def test_a_device_is_silent_past_its_interval_and_the_minute_reports_may_lag() -> None:
    assert kinds(device(), NOW - 5 * MINUTE, None) == set()
    assert kinds(device(), NOW - 6 * MINUTE, None) == set()
    assert kinds(device(), NOW - 6 * MINUTE - 1, None) == {SILENT}


def test_without_an_interval_or_a_first_report_silence_is_no_alarm() -> None:
    assert kinds(device(None), NOW - 600 * MINUTE, None) == set()
    assert kinds(device(), None, None) == set()


@pytest.mark.parametrize(("battery", "low"), [(0.1, True), (0.5, False), (15, True),
                                              (80, False)])
def test_a_battery_is_low_below_the_threshold_as_fraction_or_percent(
        battery: float, low: bool) -> None:
    assert (LOW_BATTERY in kinds(device(), NOW, battery)) is low


SERVICE = {"fiware-service": "healthcity", "fiware-servicepath": "/"}
ALERT = "https://smartdatamodels.org/dataModel.Alert/"
DEVICE = "https://smartdatamodels.org/dataModel.Device/"


@pytest.fixture
def base(db: str) -> Iterator[str]:
    with LiveServer(Settings(db=db, health_interval=0.2)) as url:
        yield url


def report(iot: httpx.Client, apikey: str, device_id: str, when: datetime,
           **measures: Any) -> None:
    body = {"TimeInstant": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "t": 20, **measures}
    assert iot.post("/iot/json", params={"k": apikey, "i": device_id}, json=body
                    ).status_code == 200


def last_report(iot: httpx.Client, device_id: str, when: datetime) -> None:
    """Set when the device last reported, as its Device entity tells it."""
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert iot.patch(f"/ngsi-ld/v1/entities/urn:ngsi-ld:Device:{device_id}/attrs", json={
        DEVICE + "dateLastValueReported": {"type": "Property", "value": {
            "@type": "DateTime", "@value": stamp}}},
        headers={"NGSILD-Tenant": "healthcity"}).status_code == 204


def alerts(base: str, wanted: set[str], timeout: float = 10) -> set[str]:
    found: set[str] = set()
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=base + "/ngsi-ld/v1", timeout=10) as api:
        while time.monotonic() < deadline:
            response = api.get("/entities", params={"type": ALERT + "Alert"},
                               headers={"NGSILD-Tenant": "healthcity"})
            found = {e["id"] for e in response.json()}
            if found == wanted:
                break
            time.sleep(0.1)
    return found


def test_silence_and_low_battery_raise_alerts_that_clear(base: str) -> None:
    with httpx.Client(base_url=base, timeout=10) as iot:
        assert iot.post("/iot/services", headers=SERVICE, json={"services": [{
            "apikey": "hk", "resource": "/iot/json", "entity_type": "WeatherObserved",
            "expected_interval": 60}]}).status_code == 201
        now = datetime.now(UTC)
        report(iot, "hk", "quiet", now)
        report(iot, "hk", "weak", now, batteryLevel=8)
        # "quiet" last reported an hour ago (its Device entity says so; the platform
        # takes reports at their arrival, never at the device's own clock).
        last_report(iot, "quiet", now - timedelta(hours=1))
        assert alerts(base, {"urn:ngsi-ld:Alert:quiet:deviceSilent",
                             "urn:ngsi-ld:Alert:weak:lowBattery"}) == {
            "urn:ngsi-ld:Alert:quiet:deviceSilent", "urn:ngsi-ld:Alert:weak:lowBattery"}
        # Held alerts are not written again at every check (each write would notify).
        weak = "/ngsi-ld/v1/entities/urn:ngsi-ld:Alert:weak:lowBattery"
        tenant = {"NGSILD-Tenant": "healthcity", "Accept": "application/json"}
        first = iot.get(weak, params={"options": "sysAttrs"}, headers=tenant).json()
        time.sleep(0.7)
        again = iot.get(weak, params={"options": "sysAttrs"}, headers=tenant).json()
        assert again["modifiedAt"] == first["modifiedAt"]
        seen = iot.get("/iot/overview", headers=SERVICE).json()
        assert seen["devices"] == 2
        assert (seen["online"], seen["offline"]) == (1, 1)
        assert seen["alarms"] == {"deviceSilent": 1, "lowBattery": 1}
        assert seen["byEntityType"] == {"WeatherObserved": 2}
        last_report(iot, "quiet", datetime.now(UTC))
        assert alerts(base, {"urn:ngsi-ld:Alert:weak:lowBattery"}) == {
            "urn:ngsi-ld:Alert:weak:lowBattery"}
