"""Sensative Strips (Comfort, Guard, Drip, Presence, Multi-Sensor...) on LoRaWAN.

Reports come on FPort 1: a 2-byte history sequence number, then report items, each an id
byte (bit 7 set when the item was also stored in the device's history) and a value whose
size the id fixes (big-endian). Only the id tells an item's length, so an unknown id makes
the rest of the payload unreadable (ValueError). FPort 2 (history replay with time
offsets) and FPort 11 (settings) carry no current readings and are refused.

Format: Sensative's open-source translator (Sensative/strips-lora-translator-open-source,
``raw-translate.js`` and ``strips-translate.js``); its door report is non-zero when the
door is closed (magnet present), per Sensative's "Reversed door boolean comments" fix.

| id | measure | unit |
| --- | --- | --- |
| 1 | batteryLevel | fraction 0..1 (the device sends %) |
| 2, 80, 82 | temperature | °C |
| 3 | temperatureHighAlarm, temperatureLowAlarm | bool |
| 4, 81 | averageTemperature | °C |
| 5 | averageTemperatureHighAlarm, averageTemperatureLowAlarm | bool |
| 6, 80, 81 | relativeHumidity | % (0..100) |
| 7 | illuminance | lx |
| 8 | illuminance2 | lx (the second lux report) |
| 9, 82 | doorOpen | bool |
| 10 | doorAlarm | bool |
| 11 | tamper | bool |
| 12 | tamperAlarm | bool |
| 13 | wetness | % (relative wetness of the leak sensor) |
| 14 | waterLeak | bool (flood alarm) |
| 15 | oilAlarm | bool |
| 16 | userSwitchAlarm | bool |
| 17 | doorCount | openings |
| 18 | presence | bool |
| 19 | proximity | raw IR reading |
| 20 | closeProximity | raw IR reading |
| 21 | closeProximityAlarm | bool |
| 22 | disinfectState | text: dirty, occupied, cleaning, clean |
| 112, 113, 114 | capacitanceFlood, capacitancePad, capacitanceEnd | raw |

Read but not turned into measures: the empty report (0) and the check-in confirmation
(110: firmware version and counters).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

PROFILE = "sensative-strips"

Report = Callable[[bytes], dict[str, Any]]

_REPORT_PORT = 1
_REPORT_ID = 0x7F  # bit 7 only tells the item was also stored in history
_DISINFECT_STATES = ("dirty", "occupied", "cleaning", "clean")


def _unsigned(value: bytes) -> int:
    return int.from_bytes(value, "big")


def _temperature(value: bytes) -> float:
    return int.from_bytes(value, "big", signed=True) / 10


def _door_open(value: int) -> bool:
    return value == 0  # the device reports non-zero while the door is closed


def _nothing(_value: bytes) -> dict[str, Any]:
    return {}


def _alarms(name: str) -> Report:
    def read(value: bytes) -> dict[str, Any]:
        return {f"{name}HighAlarm": bool(value[0] & 0x01),
                f"{name}LowAlarm": bool(value[0] & 0x02)}
    return read


def _disinfect(value: bytes) -> dict[str, Any]:
    if value[0] >= len(_DISINFECT_STATES):
        raise ValueError(f"unknown disinfect state {value[0]}")
    return {"disinfectState": _DISINFECT_STATES[value[0]]}


# report id -> (size of the value in bytes, its measures)
_REPORTS: dict[int, tuple[int, Report]] = {
    0: (0, _nothing),
    1: (1, lambda v: {"batteryLevel": v[0] / 100}),
    2: (2, lambda v: {"temperature": _temperature(v)}),
    3: (1, _alarms("temperature")),
    4: (2, lambda v: {"averageTemperature": _temperature(v)}),
    5: (1, _alarms("averageTemperature")),
    6: (1, lambda v: {"relativeHumidity": v[0] / 2}),
    7: (2, lambda v: {"illuminance": _unsigned(v)}),
    8: (2, lambda v: {"illuminance2": _unsigned(v)}),
    9: (1, lambda v: {"doorOpen": _door_open(v[0])}),
    10: (1, lambda v: {"doorAlarm": bool(v[0])}),
    11: (1, lambda v: {"tamper": bool(v[0])}),
    12: (1, lambda v: {"tamperAlarm": bool(v[0])}),
    13: (1, lambda v: {"wetness": v[0]}),
    14: (1, lambda v: {"waterLeak": bool(v[0])}),
    15: (1, lambda v: {"oilAlarm": bool(v[0])}),
    16: (1, lambda v: {"userSwitchAlarm": bool(v[0])}),
    17: (2, lambda v: {"doorCount": _unsigned(v)}),
    18: (1, lambda v: {"presence": bool(v[0])}),
    19: (2, lambda v: {"proximity": _unsigned(v)}),
    20: (2, lambda v: {"closeProximity": _unsigned(v)}),
    21: (1, lambda v: {"closeProximityAlarm": bool(v[0])}),
    22: (1, _disinfect),
    80: (3, lambda v: {"relativeHumidity": v[0] / 2, "temperature": _temperature(v[1:])}),
    81: (3, lambda v: {"relativeHumidity": v[0] / 2,
                       "averageTemperature": _temperature(v[1:])}),
    82: (3, lambda v: {"doorOpen": _door_open(v[0]), "temperature": _temperature(v[1:])}),
    110: (8, _nothing),
    112: (2, lambda v: {"capacitanceFlood": _unsigned(v)}),
    113: (2, lambda v: {"capacitancePad": _unsigned(v)}),
    114: (2, lambda v: {"capacitanceEnd": _unsigned(v)}),
}


def decode(port: int, payload: bytes) -> dict[str, Any]:
    """The measures of a Strips report uplink (FPort 1)."""
    if port != _REPORT_PORT:
        raise ValueError(f"FPort {port} is not the report port {_REPORT_PORT} "
                         "(2 replays the history, 11 answers settings)")
    if len(payload) < 2:
        raise ValueError("shorter than the 2-byte history sequence number")
    measures: dict[str, Any] = {}
    offset = 2
    while offset < len(payload):
        report = payload[offset] & _REPORT_ID
        if report not in _REPORTS:
            raise ValueError(f"unknown report id {report} at byte {offset}")
        size, read = _REPORTS[report]
        value = payload[offset + 1 : offset + 1 + size]
        if len(value) < size:
            raise ValueError(f"report {report} at byte {offset} is truncated: "
                             f"{len(value)} of {size} bytes")
        measures.update(read(value))
        offset += 1 + size
    return measures
