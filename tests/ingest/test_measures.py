"""Specification of mapping measures to NGSI-LD: attribute names and types from the
device's and its group's mappings, observedAt from the measure's time."""

from __future__ import annotations

from typing import Any

import pytest

from smartcity.core.ngsild.errors import BadRequestData
from smartcity.core.ngsild.instants import parse_instant
from smartcity.ingest.measures import (
    CONTROLLED_ASSET,
    DEVICE_TYPE,
    LAST_VALUE_REPORTED,
    device_fragment,
    entity_fragment,
    observed_time,
)
from smartcity.ingest.provisioning import Device, ServiceGroup
from smartcity.ingest.registry import Provisioned

T = parse_instant("2026-11-25T10:00:00Z")
GROUP = ServiceGroup(apikey="key", entity_type="WeatherObserved", attributes=[
    {"object_id": "t", "name": "temperature", "type": "Number", "unitCode": "CEL"},
    {"object_id": "w", "name": "windy", "type": "Boolean"}])


def provisioned(**device: Any) -> Provisioned:
    return Provisioned("", "/", Device(device_id="ws1", **device), GROUP)


def test_measures_are_named_and_typed_by_the_group_mapping() -> None:
    fragment = entity_fragment(provisioned(), {"t": "21.5", "w": "false", "x": "raw"}, T)
    assert fragment["id"] == "urn:ngsi-ld:WeatherObserved:ws1"
    assert fragment["type"] == "WeatherObserved"
    assert fragment["temperature"] == {"type": "Property", "value": 21.5, "unitCode": "CEL",
                                       "observedAt": "2026-11-25T10:00:00Z"}
    assert fragment["windy"]["value"] is False
    assert fragment["x"]["value"] == "raw"  # unmapped measures keep their names


def test_a_device_mapping_overrides_its_groups_and_explicit_mappings_drop_the_rest() -> None:
    device = provisioned(entity_name="urn:ngsi-ld:WeatherObserved:roof", explicitAttrs=True,
                         attributes=[{"object_id": "t", "name": "airTemperature",
                                      "type": "Number"}])
    fragment = entity_fragment(device, {"t": "7", "x": "raw"}, T)
    assert fragment["id"] == "urn:ngsi-ld:WeatherObserved:roof"
    assert set(fragment) == {"id", "type", "airTemperature"}
    assert fragment["airTemperature"]["value"] == 7


@pytest.mark.parametrize(("kind", "raw", "expected"), [
    ("Number", "42", {"type": "Property", "value": 42}),
    ("Number", 4.5, {"type": "Property", "value": 4.5}),
    ("Text", 12, {"type": "Property", "value": "12"}),
    ("Boolean", "1", {"type": "Property", "value": True}),
    ("Relationship", "urn:ngsi-ld:Road:1", {"type": "Relationship",
                                            "object": "urn:ngsi-ld:Road:1"}),
    ("geo:point", "59.33, 18.06", {"type": "GeoProperty",
                                   "value": {"type": "Point", "coordinates": [18.06, 59.33]}}),
    ("DateTime", "2026-11-25T10:00:00Z", {"type": "Property", "value": {
        "@type": "DateTime", "@value": "2026-11-25T10:00:00Z"}}),
])
def test_attribute_types_of_the_iot_agents_become_ngsi_ld_attributes(
        kind: str, raw: Any, expected: dict[str, Any]) -> None:
    device = provisioned(attributes=[{"object_id": "m", "name": "measured", "type": kind}])
    attribute = entity_fragment(device, {"m": raw}, T)["measured"]
    del attribute["observedAt"]
    assert attribute == expected


@pytest.mark.parametrize(("kind", "raw"), [
    ("Number", "abc"), ("Number", "nan"), ("Number", True), ("Boolean", "maybe"),
    ("geo:point", "north"),
])
def test_a_measure_its_type_refuses_is_bad_request_data(kind: str, raw: Any) -> None:
    device = provisioned(attributes=[{"object_id": "m", "name": "measured", "type": kind}])
    with pytest.raises(BadRequestData):
        entity_fragment(device, {"m": raw}, T)


def test_the_time_is_the_time_instant_then_the_payloads_then_arrival() -> None:
    assert observed_time({"TimeInstant": "2026-01-01T00:00:00Z"}, T, T + 1) == \
        parse_instant("2026-01-01T00:00:00Z")
    assert observed_time({}, T, T + 1) == T
    assert observed_time({}, None, T + 1) == T + 1
    with pytest.raises(BadRequestData):
        observed_time({"TimeInstant": 5}, None, T)


def test_only_a_time_instant_is_no_measure() -> None:
    with pytest.raises(BadRequestData, match="No measure"):
        entity_fragment(provisioned(), {"TimeInstant": "2026-01-01T00:00:00Z"}, T)


def test_static_attributes_join_the_measures() -> None:
    device = provisioned(static_attributes=[{"name": "owner", "type": "Text",
                                             "value": "Stockholm"}])
    assert entity_fragment(device, {"t": "1"}, T)["owner"] == {"type": "Property",
                                                              "value": "Stockholm"}


def test_the_device_entity_points_at_what_it_feeds_and_when_it_last_reported() -> None:
    fragment = device_fragment(provisioned(location={"type": "Point",
                                                     "coordinates": [18.0, 59.3]}), T)
    assert fragment["id"] == "urn:ngsi-ld:Device:ws1"
    assert fragment["type"] == DEVICE_TYPE
    assert fragment[CONTROLLED_ASSET]["object"] == "urn:ngsi-ld:WeatherObserved:ws1"
    assert fragment[LAST_VALUE_REPORTED]["value"]["@value"] == "2026-11-25T10:00:00Z"
    assert fragment["location"]["value"]["coordinates"] == [18.0, 59.3]
