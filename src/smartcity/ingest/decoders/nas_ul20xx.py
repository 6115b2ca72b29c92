"""NAS (Nordic Automation Systems) UL20xx street-light controllers: UL2002, UL2014, UL2020,
UL2030 (NEMA), UL2033 (Zhaga)... with firmware 1.1.x, driving DALI/D4i drivers or 0-10 V.

Little-endian packets, one kind per FPort:

- 23, status: relay, faults, controller temperature, 24-hour alerts, light sensor and
  inputs, then one 4-byte dimming source per driver (address, reason, level %, DALI
  status). Its first byte is 0x00 (firmware before 1.1.4) or 0x01.
- 26, usage: one entry per meter (the controller's own, address 0xFF, or a D4i driver's),
  a bit mask then the fields it announces.
- 61, alerts: 0x83 DALI driver alert, 0x84 metering alert.

Other FPorts (60 command answers, 99 boot and errors, the 1.0.x firmware's 24 and 25) are
refused. The controller's own clock and the radio figures of the status are skipped.
Several drivers: the dimming level is the first known one, a fault flag is set if any
driver has it, and a usage field is taken from the first meter reporting it.

Format: Nordic Automation Systems' codec (nasys/nas-codecs, ``src/ul20xx_1_1_x_decoder``,
the annex of their UL20xx 1.1.x payload description).

| measure | unit |
| --- | --- |
| powerState | text: on, off (the controller's relay) |
| dimmingLevel | % (0..100) |
| lampFailure, driverError | bool (DALI driver status) |
| daliConnectionError, meteringComError | bool |
| voltageAlert, lampErrorAlert, powerAlert, powerFactorAlert | bool (raised in the last 24 h) |
| controllerTemperature | °C (the controller's MCU) |
| illuminance | lx (light sensor) |
| d4iIlluminance | lx (the luminaire's D4i light sensor) |
| ldrInput | 0..255 (raw photocell input) |
| digitalInput | bool |
| tilt | ° |
| energy | Wh (active, consumed) |
| activePower | W |
| loadSideEnergy | Wh (driver output) |
| loadSidePower | W (driver output) |
| powerFactor | 0..1 |
| voltage | V (mains) |
| driverOperatingTime, lampOnTime | s |
| overCurrentAlert, underVoltageAlert | bool (metering alert) |
| overVoltageAlert, lowPowerFactorAlert | bool (metering alert) |
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

PROFILE = "nas-ul20xx"

_STATUS_PORT = 23
_USAGE_PORT = 26
_ALERT_PORT = 61
_UNKNOWN = 0xFF  # a dimming level, DALI status, power factor or tilt the device lacks
_NO_LIGHT = 0xFFFF

# usage mask bit -> (size, measure)
_USAGE_FIELDS = (
    (4, "energy"),
    (2, "activePower"),
    (4, "loadSideEnergy"),
    (2, "loadSidePower"),
    (1, "powerFactor"),
    (1, "voltage"),
    (4, "driverOperatingTime"),
    (4, "lampOnTime"),
)
_STATUS_ALERTS = ("voltageAlert", "lampErrorAlert", "powerAlert", "powerFactorAlert")
_METERING_ALERTS = ("lampErrorAlert", "overCurrentAlert", "underVoltageAlert",
                    "overVoltageAlert", "lowPowerFactorAlert")


class _Reader:
    """A payload read from the front, little-endian."""

    def __init__(self, payload: bytes) -> None:
        self._payload = payload
        self._offset = 0

    def left(self) -> int:
        return len(self._payload) - self._offset

    def take(self, size: int) -> bytes:
        if self.left() < size:
            raise ValueError(f"truncated at byte {self._offset}: {size} more bytes needed, "
                             f"{self.left()} left")
        self._offset += size
        return self._payload[self._offset - size : self._offset]

    def uint(self, size: int = 1) -> int:
        return int.from_bytes(self.take(size), "little")

    def int8(self) -> int:
        value = self.uint()
        return value - 0x100 if value > 0x7F else value


def _flags(byte: int, names: tuple[str, ...], first_bit: int) -> dict[str, bool]:
    return {name: bool((byte >> (first_bit + bit)) & 1) for bit, name in enumerate(names)}


def _lux(raw: int) -> float:
    return round(10 ** ((raw & 0x7FFF) / 4000) / 1000, 3)


def _light(name: str, raw: int) -> dict[str, Any]:
    return {} if raw == _NO_LIGHT else {name: _lux(raw)}


# sensor reading kind -> (size, its measures)
_SENSORS: dict[int, tuple[int, Callable[[int], dict[str, Any]]]] = {
    0x01: (1, lambda raw: {"ldrInput": raw}),
    0x02: (2, lambda raw: _light("illuminance", raw)),
    0x03: (2, lambda raw: _light("d4iIlluminance", raw)),
    0x04: (1, lambda raw: {"digitalInput": bool(raw & 0x01)}),
    0x08: (1, lambda raw: {} if raw == _UNKNOWN else {"tilt": raw}),
}


def _sensor_sources(data: _Reader) -> dict[str, Any]:
    """The length-prefixed block of sensor readings."""
    measures: dict[str, Any] = {}
    left = data.uint()
    while left > 0:
        kind = data.uint()
        if kind not in _SENSORS:  # newer than this decoder: the block's length skips it
            data.take(left - 1)
            break
        size, read = _SENSORS[kind]
        measures.update(read(data.uint(size)))
        left -= 1 + size
    if left < 0:
        raise ValueError("sensor readings overrun their block")
    return measures


def _dali_flags(statuses: list[int]) -> dict[str, Any]:
    known = [status for status in statuses if status != _UNKNOWN]
    if not known:
        return {}
    return {"driverError": any(status & 0x01 for status in known),
            "lampFailure": any(status & 0x02 for status in known)}


def _dimming_sources(data: _Reader) -> dict[str, Any]:
    levels: list[int] = []
    statuses: list[int] = []
    while data.left():
        data.take(2)  # DALI address, and why it has this level (profile, calendar, sensor)
        levels.append(data.uint())
        statuses.append(data.uint())
    known = [level for level in levels if level != _UNKNOWN]
    measures = {"dimmingLevel": known[0]} if known else {}
    return measures | _dali_flags(statuses)


def _status(data: _Reader) -> dict[str, Any]:
    version = data.uint()
    if version not in (0x00, 0x01):
        raise ValueError(f"unknown status packet version {version}")
    data.take(4)  # the controller's clock
    state = data.uint()
    measures: dict[str, Any] = {
        "powerState": "on" if state & 0x80 else "off",
        "daliConnectionError": bool(state & 0x02),
        "meteringComError": bool(state & 0x20),
    }
    if version == 0x01:
        data.take(1)  # open-drain output, LumaLink connection
    else:
        measures["digitalInput"] = bool(state & 0x10)
    data.take(2)  # downlink RSSI and SNR
    measures["controllerTemperature"] = data.int8()
    alerts_follow = True
    if version == 0x00:
        sent = data.uint()
        if sent & 0x02:
            measures["ldrInput"] = data.uint()
        alerts_follow = bool(sent & 0x10)
    if alerts_follow:
        measures.update(_flags(data.uint(), _STATUS_ALERTS, 4))
    if version == 0x01:
        measures.update(_sensor_sources(data))
    return measures | _dimming_sources(data)


def _meter(data: _Reader) -> dict[str, Any]:
    data.take(1)  # 0xFF: the controller's own meter, else a driver's DALI address
    mask = data.uint()
    measures: dict[str, Any] = {}
    for bit, (size, name) in enumerate(_USAGE_FIELDS):
        if (mask >> bit) & 1:
            measures[name] = data.uint(size)
    factor = measures.pop("powerFactor", _UNKNOWN)
    return measures if factor == _UNKNOWN else measures | {"powerFactor": factor / 100}


def _usage(data: _Reader) -> dict[str, Any]:
    version = data.uint()
    if version != 0x00:
        raise ValueError(f"unknown usage packet version {version}")
    measures: dict[str, Any] = {}
    while data.left():
        measures = _meter(data) | measures  # the first meter reporting a field wins
    return measures


def _alert(data: _Reader) -> dict[str, Any]:
    kind, condition = data.uint(), data.uint()
    if kind == 0x84:
        measures: dict[str, Any] = _flags(condition, _METERING_ALERTS, 0)
        measures["activePower"] = data.uint(2)
        measures["voltage"] = data.uint(2)
        measures["powerFactor"] = data.uint() / 100
        return measures
    if kind == 0x83:
        statuses: list[int] = []
        while data.left():
            data.take(1)  # DALI address
            statuses.append(data.uint())
        return _dali_flags(statuses)
    raise ValueError(f"notification 0x{kind:02X} carries no measures this decoder reads")


_PACKETS = {_STATUS_PORT: _status, _USAGE_PORT: _usage, _ALERT_PORT: _alert}


def decode(port: int, payload: bytes) -> dict[str, Any]:
    """The measures of a UL20xx status (FPort 23), usage (26) or alert (61) packet."""
    if port not in _PACKETS:
        raise ValueError(f"FPort {port} carries no measures (status is on {_STATUS_PORT}, "
                         f"usage on {_USAGE_PORT}, alerts on {_ALERT_PORT})")
    if not payload:
        raise ValueError("empty payload")
    data = _Reader(payload)
    measures = _PACKETS[port](data)
    if data.left():
        raise ValueError(f"{data.left()} bytes left over")
    return measures
