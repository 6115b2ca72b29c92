"""Dragino LHT65 (and LHT65N) temperature and humidity sensor.

Readings come on FPort 2 in a fixed layout (big-endian)::

    BAT(2) | built-in temperature(2) | built-in humidity(2) | Ext(1) | Ext value(4)

BAT holds the battery status in bits 15-14 and the voltage in mV in bits 13-0. Ext's
low nibble names the external sensor (0: none, and then the payload may end after it);
bit 7 set means that sensor is disconnected, bit 6 set marks a datalog poll reply, whose
records are readings of another time (refused). A DS18B20 or TMP117 probe reads 0x7FFF
when none is connected: no external temperature then.

Format: the LHT65 user manual (Dragino, "2.4 Uplink Payload") and Dragino's decoders
(TheThingsNetwork/lorawan-devices ``vendor/dragino/lht65.js``,
dragino/dragino-end-node-decoder ``LHT65N``).

| measure | unit |
| --- | --- |
| batteryVoltage | V |
| batteryStatus | text: ultraLow (<= 2.50 V), low, ok, good (>= 2.65 V) |
| temperature | °C (built-in SHT sensor) |
| relativeHumidity | % (0..100, built-in SHT sensor) |
| externalTemperature | °C (Ext 1: DS18B20, Ext 2: TMP117) |
| digitalInput, interruptTriggered | bool (Ext 4: interrupt input) |
| illuminance | lx (Ext 5) |
| analogInput | V (Ext 6: ADC) |
| pulseCount | pulses (Ext 7: 16-bit, Ext 8: 32-bit counter) |

Other Ext modes (9 and up: timestamped, ID reports, SHT31 probe) are refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

PROFILE = "dragino-lht65"

Reading = Callable[[bytes], dict[str, Any]]

_PORT = 2
_FIXED = 7  # BAT, temperature, humidity, Ext
_WITH_EXTERNAL = 11
_BATTERY_STATUS = ("ultraLow", "low", "ok", "good")
_DISCONNECTED = 0x80
_POLL_REPLY = 0x40
_NO_PROBE = 0x7FFF


def _unsigned(value: bytes) -> int:
    return int.from_bytes(value, "big")


def _nothing(_value: bytes) -> dict[str, Any]:
    return {}


def _probe_temperature(value: bytes) -> dict[str, Any]:
    raw = int.from_bytes(value[:2], "big", signed=True)
    return {} if raw == _NO_PROBE else {"externalTemperature": raw / 100}


def _interrupt(value: bytes) -> dict[str, Any]:
    return {"digitalInput": bool(value[0]), "interruptTriggered": bool(value[1])}


# Ext sensor type -> the measures of the 4-byte Ext value
_EXTERNAL: dict[int, Reading] = {
    0: _nothing,
    1: _probe_temperature,
    2: _probe_temperature,
    4: _interrupt,
    5: lambda v: {"illuminance": _unsigned(v[:2])},
    6: lambda v: {"analogInput": _unsigned(v[:2]) / 1000},
    7: lambda v: {"pulseCount": _unsigned(v[:2])},
    8: lambda v: {"pulseCount": _unsigned(v)},
}


def _built_in(payload: bytes) -> dict[str, Any]:
    battery = _unsigned(payload[0:2])
    return {
        "batteryVoltage": (battery & 0x3FFF) / 1000,
        "batteryStatus": _BATTERY_STATUS[battery >> 14],
        "temperature": int.from_bytes(payload[2:4], "big", signed=True) / 100,
        "relativeHumidity": (_unsigned(payload[4:6]) & 0x0FFF) / 10,
    }


def decode(port: int, payload: bytes) -> dict[str, Any]:
    """The measures of an LHT65 reading (FPort 2)."""
    if port != _PORT:
        raise ValueError(f"FPort {port} is not the LHT65 reading port {_PORT}")
    if len(payload) < _FIXED:
        raise ValueError(f"{len(payload)} bytes, a reading has at least {_FIXED}")
    ext = payload[6]
    if ext & _POLL_REPLY:
        raise ValueError("a datalog poll reply: stored records, not a current reading")
    kind = ext & 0x0F
    if kind not in _EXTERNAL:
        raise ValueError(f"external sensor mode {kind} is not supported")
    if kind and len(payload) < _WITH_EXTERNAL:
        raise ValueError(f"{len(payload)} bytes, a reading with an external sensor has "
                         f"{_WITH_EXTERNAL}")
    measures = _built_in(payload)
    if not ext & _DISCONNECTED:
        measures.update(_EXTERNAL[kind](payload[_FIXED:_WITH_EXTERNAL]))
    return measures
