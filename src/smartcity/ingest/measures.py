"""From a device's measures to NGSI-LD: the update of the entity it feeds, and of its own
``Device`` entity (Smart Data Models).

Measure names are mapped by the device's and its group's attribute mappings
(``object_id`` to attribute name and type); unmapped measures keep their names unless the
mapping is explicit. Each attribute is observed at the measure's time: its
``TimeInstant``, else the time the payload gives, else the time it arrived.
"""

from __future__ import annotations

import math
import re
from typing import Any

from smartcity.core.ngsild.errors import BadRequestData
from smartcity.core.ngsild.instants import format_instant, parse_instant
from smartcity.ingest.provisioning import AttributeMapping, entity_id, entity_type
from smartcity.ingest.registry import Provisioned

TIME_INSTANT = "TimeInstant"
_NUMBERS = {"number", "float", "integer", "int", "double", "decimal"}
_TEXTS = {"text", "string"}
_INTEGER = re.compile(r"^[+-]?\d+$")

# Smart Data Models: dataModel.Device
SDM = "https://smartdatamodels.org/dataModel.Device/"
DEVICE_TYPE = SDM + "Device"
CONTROLLED_ASSET = SDM + "controlledAsset"
CONTROLLED_PROPERTY = SDM + "controlledProperty"
LAST_VALUE_REPORTED = SDM + "dateLastValueReported"
RSSI = SDM + "rssi"
BATTERY_LEVEL = SDM + "batteryLevel"
DEVICE_STATE = SDM + "deviceState"
BATTERY = "batteryLevel"  # the measure a device reports its battery level as
DEVICE_LOCATION = "location"


def device_entity_id(device_id: str) -> str:
    return f"urn:ngsi-ld:Device:{device_id}"


def observed_time(measures: dict[str, Any], given: int | None, received: int) -> int:
    stamp = measures.get(TIME_INSTANT)
    if isinstance(stamp, str):
        return parse_instant(stamp)
    if stamp is not None:
        raise BadRequestData(f"{TIME_INSTANT} must be an ISO 8601 date-time")
    return given if given is not None else received


def entity_fragment(provisioned: Provisioned, measures: dict[str, Any],
                    observed: int) -> dict[str, Any]:
    """The normalized NGSI-LD entity (short names, core @context) that a group of
    measures makes of the device's entity."""
    device, group = provisioned.device, provisioned.group
    mapping = {**(group.mapping() if group else {}), **device.mapping()}
    explicit = device.explicitAttrs or (group is not None and group.explicitAttrs)
    at = format_instant(observed)
    attributes: dict[str, Any] = {}
    for key, raw in measures.items():
        if key == TIME_INSTANT:
            continue
        mapped = mapping.get(key)
        if mapped is None:
            if explicit:
                continue
            mapped = AttributeMapping(name=key)
        attribute = _attribute(mapped.type, raw, key)
        attribute["observedAt"] = at
        if mapped.unitCode:
            attribute["unitCode"] = mapped.unitCode
        attributes[mapped.name] = attribute
    if not attributes:
        raise BadRequestData("No measure of the payload maps to an attribute")
    for static in (*(group.static_attributes if group else ()), *device.static_attributes):
        attributes.setdefault(static.name, _attribute(static.type, static.value, static.name))
    return {"id": entity_id(device, group), "type": entity_type(device, group), **attributes}


def device_fragment(provisioned: Provisioned, reported: int | None,
                    radio: dict[str, float] | None = None,
                    battery: float | None = None) -> dict[str, Any]:
    """The device's own ``Device`` entity: what it controls and, once it has reported,
    when it last did (and how well it was heard: ``radio``, rssi and snr)."""
    device, group = provisioned.device, provisioned.group
    names = [a.name for a in (*(group.attributes if group else ()), *device.attributes)]
    fragment: dict[str, Any] = {
        "id": device_entity_id(device.device_id), "type": DEVICE_TYPE,
        CONTROLLED_ASSET: {"type": "Relationship", "object": entity_id(device, group)}}
    if names:
        fragment[CONTROLLED_PROPERTY] = {"type": "Property",
                                         "value": list(dict.fromkeys(names))}
    if reported is not None:
        fragment[LAST_VALUE_REPORTED] = {"type": "Property", "value": {
            "@type": "DateTime", "@value": format_instant(reported)}}
    if device.location is not None:
        fragment[DEVICE_LOCATION] = {"type": "GeoProperty", "value": device.location}
    if battery is not None:
        fragment[BATTERY_LEVEL] = {"type": "Property", "value": battery}
    for name, value in (radio or {}).items():
        fragment[RSSI if name == "rssi" else name] = {"type": "Property", "value": value}
    return fragment


def _attribute(kind: str, raw: Any, key: str) -> dict[str, Any]:
    """An NGSI-LD attribute from a measure of an IoT Agent attribute type."""
    lowered = kind.lower()
    if lowered == "relationship":
        return {"type": "Relationship", "object": str(raw)}
    if lowered in ("geo:point", "geo:json", "geoproperty"):
        return {"type": "GeoProperty", "value": _geometry(lowered, raw, key)}
    if lowered in _NUMBERS:
        return {"type": "Property", "value": _number(raw, key)}
    if lowered == "boolean":
        return {"type": "Property", "value": _boolean(raw, key)}
    if lowered in _TEXTS:
        return {"type": "Property", "value": str(raw)}
    if lowered == "datetime":
        stamp = format_instant(parse_instant(str(raw)))
        return {"type": "Property", "value": {"@type": "DateTime", "@value": stamp}}
    return {"type": "Property", "value": raw}


def _number(raw: Any, key: str) -> int | float:
    if isinstance(raw, bool):
        raise BadRequestData(f"Measure {key!r}: {raw!r} is not a number")
    if isinstance(raw, int | float):
        number = raw
    elif isinstance(raw, str) and _INTEGER.fullmatch(raw.strip()):
        number = int(raw)
    else:
        try:
            number = float(raw)
        except (TypeError, ValueError):
            raise BadRequestData(f"Measure {key!r}: {raw!r} is not a number") from None
    if isinstance(number, float) and not math.isfinite(number):
        raise BadRequestData(f"Measure {key!r}: {raw!r} is not a finite number")
    return number


def _boolean(raw: Any, key: str) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise BadRequestData(f"Measure {key!r}: {raw!r} is not a boolean")


def _geometry(kind: str, raw: Any, key: str) -> dict[str, Any]:
    if kind == "geo:point" and isinstance(raw, str):
        try:
            lat, lon = (float(part) for part in raw.split(","))
        except ValueError:
            raise BadRequestData(f"Measure {key!r}: {raw!r} is not 'latitude, longitude'") \
                from None
        return {"type": "Point", "coordinates": [lon, lat]}
    if isinstance(raw, dict):
        return raw
    raise BadRequestData(f"Measure {key!r}: {raw!r} is not a GeoJSON geometry")
