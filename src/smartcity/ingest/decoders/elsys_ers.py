"""Elsys ERS family (ERS, ERS Lite, ERS CO2, ERS CO2 Lite, ERS Sound, ERS VOC, ERS Eye).

Every Elsys sensor sends the same format: a run of readings, each a type byte followed by
a value whose size the type fixes (big-endian): ``01 00E2`` is a temperature of 22.6 °C.
Only the type tells a reading's length, so an unknown type makes the rest of the payload
unreadable (ValueError). The FPort does not matter. A type repeated in one payload: the
last value wins.

Format: Elsys' own payload decoder, as published in The Things Network's device
repository (``vendor/elsys/elsys.js``, "ELSYS simple payload decoder", elsys.se).

| type | measure | unit |
| --- | --- | --- |
| 0x01 | temperature | °C |
| 0x02 | relativeHumidity | % (0..100) |
| 0x03 | accelerationX, accelerationY, accelerationZ | g |
| 0x04 | illuminance | lx |
| 0x05 | motion | PIR motion count since the last uplink |
| 0x06 | co2 | ppm |
| 0x07 | batteryVoltage | V |
| 0x08 | analogInput | V |
| 0x0A | pulseCount | pulses since the last uplink |
| 0x0B | pulseCountTotal | pulses |
| 0x0C | externalTemperature | °C |
| 0x0D | digitalInput | bool |
| 0x0E | distance | mm |
| 0x0F | accelerationMotion | movements since the last uplink |
| 0x10 | irInternalTemperature, irExternalTemperature | °C |
| 0x11 | occupancy | the ERS Eye's state, 0..2 (raw) |
| 0x12 | waterLeakLevel | 0..255 (raw) |
| 0x14 | atmosphericPressure | hPa |
| 0x15 | soundPeak, soundAverage | dB |
| 0x16 | pulseCount2 | pulses since the last uplink |
| 0x17 | pulseCount2Total | pulses |
| 0x18 | analogInput2 | V |
| 0x19 | externalTemperature2 | °C |
| 0x1A | digitalInput2 | bool |
| 0x1B | analogInputMicrovolts | µV |
| 0x1C | tvoc | ppb |

Read but not turned into measures: GPS (0x09, the vendor gives no scale), the Grid-EYE
thermal image (0x13, 65 bytes) and debug counters (0x3D).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

PROFILE = "elsys-ers"

Reading = Callable[[bytes], dict[str, Any]]

_ONE_G = 63  # acceleration: -128..127, 63 is 1 g


def _signed(value: bytes) -> int:
    return int.from_bytes(value, "big", signed=True)


def _unsigned(value: bytes) -> int:
    return int.from_bytes(value, "big")


def _nothing(_value: bytes) -> dict[str, Any]:
    return {}


def _acceleration(value: bytes) -> dict[str, Any]:
    x, y, z = (_signed(value[axis : axis + 1]) / _ONE_G for axis in range(3))
    return {"accelerationX": x, "accelerationY": y, "accelerationZ": z}


def _infrared(value: bytes) -> dict[str, Any]:
    return {"irInternalTemperature": _signed(value[:2]) / 10,
            "irExternalTemperature": _signed(value[2:]) / 10}


# type -> (size of the value in bytes, its measures)
_READINGS: dict[int, tuple[int, Reading]] = {
    0x01: (2, lambda v: {"temperature": _signed(v) / 10}),
    0x02: (1, lambda v: {"relativeHumidity": v[0]}),
    0x03: (3, _acceleration),
    0x04: (2, lambda v: {"illuminance": _unsigned(v)}),
    0x05: (1, lambda v: {"motion": v[0]}),
    0x06: (2, lambda v: {"co2": _unsigned(v)}),
    0x07: (2, lambda v: {"batteryVoltage": _unsigned(v) / 1000}),
    0x08: (2, lambda v: {"analogInput": _unsigned(v) / 1000}),
    0x09: (6, _nothing),
    0x0A: (2, lambda v: {"pulseCount": _unsigned(v)}),
    0x0B: (4, lambda v: {"pulseCountTotal": _unsigned(v)}),
    0x0C: (2, lambda v: {"externalTemperature": _signed(v) / 10}),
    0x0D: (1, lambda v: {"digitalInput": bool(v[0])}),
    0x0E: (2, lambda v: {"distance": _unsigned(v)}),
    0x0F: (1, lambda v: {"accelerationMotion": v[0]}),
    0x10: (4, _infrared),
    0x11: (1, lambda v: {"occupancy": v[0]}),
    0x12: (1, lambda v: {"waterLeakLevel": v[0]}),
    0x13: (65, _nothing),
    0x14: (4, lambda v: {"atmosphericPressure": _unsigned(v) / 1000}),
    0x15: (2, lambda v: {"soundPeak": v[0], "soundAverage": v[1]}),
    0x16: (2, lambda v: {"pulseCount2": _unsigned(v)}),
    0x17: (4, lambda v: {"pulseCount2Total": _unsigned(v)}),
    0x18: (2, lambda v: {"analogInput2": _unsigned(v) / 1000}),
    0x19: (2, lambda v: {"externalTemperature2": _signed(v) / 10}),
    0x1A: (1, lambda v: {"digitalInput2": bool(v[0])}),
    0x1B: (4, lambda v: {"analogInputMicrovolts": _signed(v)}),
    0x1C: (2, lambda v: {"tvoc": _unsigned(v)}),
    0x3D: (4, _nothing),
}


def decode(port: int, payload: bytes) -> dict[str, Any]:
    """The measures of an Elsys uplink (any FPort)."""
    if not payload:
        raise ValueError("empty payload")
    measures: dict[str, Any] = {}
    offset = 0
    while offset < len(payload):
        kind = payload[offset]
        if kind not in _READINGS:
            raise ValueError(f"unknown reading type 0x{kind:02X} at byte {offset}")
        size, read = _READINGS[kind]
        value = payload[offset + 1 : offset + 1 + size]
        if len(value) < size:
            raise ValueError(f"reading type 0x{kind:02X} at byte {offset} is truncated: "
                             f"{len(value)} of {size} bytes")
        measures.update(read(value))
        offset += 1 + size
    return measures
