"""Milesight EM300 series: EM300-TH, and the EM300-MCS (door contact) and EM300-SLD/ZLD
(spot/zone leak) variants that add one channel to the EM300-TH's.

A payload is a run of channels, each a channel id, a channel type and a value whose size
the pair fixes (little-endian): ``03 67 3401`` is a temperature of 30.8 °C. Only the pair
tells a value's length, so an unknown pair makes the rest of the payload unreadable
(ValueError). The FPort does not matter.

The EM300-DI (0x05 0x00 is its GPIO) and EM300-MLD (0x06 0x00 is its leak state) give
this profile's door and leak channels other meanings: they are not covered.

Format: Milesight's decoders and their READMEs (Milesight-IoT/SensorDecoders,
``em-series/em300-th``, ``em300-mcs``, ``em300-sld``, ``em300-zld``).

| channel | measure | unit |
| --- | --- | --- |
| 0x01 0x75 | batteryLevel | fraction 0..1 (the device sends %) |
| 0x03 0x67 | temperature | °C |
| 0x04 0x68 | relativeHumidity | % (0..100) |
| 0x05 0x00 | waterLeak | bool (EM300-SLD/ZLD) |
| 0x06 0x00 | doorOpen | bool (EM300-MCS magnet switch) |

Read but not turned into measures: device attributes (channel 0xFF: protocol, hardware
and firmware versions, serial number, class, reset and power-on events) and historical
records (0x20 0xCE), which are readings of another time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

PROFILE = "milesight-em300"

Reading = Callable[[bytes], dict[str, Any]]


def _nothing(_value: bytes) -> dict[str, Any]:
    return {}


# (channel id, channel type) -> (size of the value in bytes, its measures)
_CHANNELS: dict[tuple[int, int], tuple[int, Reading]] = {
    (0x01, 0x75): (1, lambda v: {"batteryLevel": v[0] / 100}),
    (0x03, 0x67): (2, lambda v: {"temperature": int.from_bytes(v, "little", signed=True) / 10}),
    (0x04, 0x68): (1, lambda v: {"relativeHumidity": v[0] / 2}),
    (0x05, 0x00): (1, lambda v: {"waterLeak": bool(v[0])}),
    (0x06, 0x00): (1, lambda v: {"doorOpen": bool(v[0])}),
    (0x20, 0xCE): (8, _nothing),
    (0xFF, 0x01): (1, _nothing),
    (0xFF, 0x09): (2, _nothing),
    (0xFF, 0x0A): (2, _nothing),
    (0xFF, 0x0B): (1, _nothing),
    (0xFF, 0x0F): (1, _nothing),
    (0xFF, 0x16): (8, _nothing),
    (0xFF, 0xFE): (1, _nothing),
    (0xFF, 0xFF): (2, _nothing),
}


def decode(port: int, payload: bytes) -> dict[str, Any]:
    """The measures of an EM300 uplink (any FPort)."""
    if not payload:
        raise ValueError("empty payload")
    measures: dict[str, Any] = {}
    offset = 0
    while offset < len(payload):
        if offset + 2 > len(payload):
            raise ValueError(f"channel at byte {offset} has an id but no type")
        channel = (payload[offset], payload[offset + 1])
        if channel not in _CHANNELS:
            raise ValueError(f"unknown channel 0x{channel[0]:02X} 0x{channel[1]:02X} "
                             f"at byte {offset}")
        size, read = _CHANNELS[channel]
        value = payload[offset + 2 : offset + 2 + size]
        if len(value) < size:
            raise ValueError(f"channel 0x{channel[0]:02X} 0x{channel[1]:02X} at byte "
                             f"{offset} is truncated: {len(value)} of {size} bytes")
        measures.update(read(value))
        offset += 2 + size
    return measures
