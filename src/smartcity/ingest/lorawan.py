"""LoRaWAN uplinks as the network servers forward them: ChirpStack v4 (HTTP integration,
``up`` events) and The Things Stack v3 (webhooks, ``uplink_message``).

A device is known by its DevEUI (lower-case hex, the device id it is provisioned with).
Its payload is decoded by the decoder of its profile (``decoders/``) when it or its
group names one, else taken as the network server decoded it. The radio side (the
strongest gateway's RSSI and SNR, the gateways that heard it) travels with the message
for the device's health.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

from smartcity.core.ngsild.errors import BadRequestData
from smartcity.core.ngsild.instants import parse_instant

_EUI = re.compile(r"^[0-9A-Fa-f]{16}$")


@dataclass(frozen=True)
class Uplink:
    dev_eui: str
    port: int | None
    payload: bytes
    decoded: dict[str, Any] | None  # as the network server decoded it, if it did
    time: int | None
    rssi: float | None
    snr: float | None
    gateways: tuple[str, ...]


def chirpstack_uplink(event: Any) -> Uplink:
    """An ``up`` event of ChirpStack v4's HTTP integration (JSON marshaler)."""
    info = _object(event, "deviceInfo")
    radio = [r for r in event.get("rxInfo") or () if isinstance(r, dict)]
    return _uplink(info.get("devEui"), event.get("fPort"), event.get("data"),
                   event.get("object"), event.get("time"), radio, "gatewayId")


def tts_uplink(event: Any) -> Uplink:
    """An uplink webhook message of The Things Stack v3."""
    ids = _object(event, "end_device_ids")
    message = _object(event, "uplink_message")
    radio = [{**r, "gatewayId": (r.get("gateway_ids") or {}).get("gateway_id")}
             for r in message.get("rx_metadata") or () if isinstance(r, dict)]
    return _uplink(ids.get("dev_eui"), message.get("f_port"), message.get("frm_payload"),
                   message.get("decoded_payload"),
                   message.get("received_at") or event.get("received_at"), radio, "gatewayId")


def _object(event: Any, member: str) -> dict[str, Any]:
    if not isinstance(event, dict) or not isinstance(event.get(member), dict):
        raise BadRequestData(f"An uplink must hold a {member!r} object")
    found: dict[str, Any] = event[member]
    return found


def _uplink(dev_eui: Any, port: Any, data: Any, decoded: Any, time: Any,
            radio: list[dict[str, Any]], gateway: str) -> Uplink:
    if not isinstance(dev_eui, str) or not _EUI.fullmatch(dev_eui):
        raise BadRequestData(f"An uplink needs a DevEUI of 16 hex digits, not {dev_eui!r}")
    if port is not None and (not isinstance(port, int) or not 0 <= port <= 255):
        raise BadRequestData(f"FPort must be a number from 0 to 255, not {port!r}")
    try:
        payload = base64.b64decode(data or "", validate=True)
    except (binascii.Error, TypeError):
        raise BadRequestData("The uplink's payload is not base64") from None
    if decoded is not None and not isinstance(decoded, dict):
        raise BadRequestData("The network server's decoded payload must be an object")
    best = max(radio, key=lambda r: r.get("rssi") if isinstance(r.get("rssi"), int | float)
               else float("-inf"), default={})
    return Uplink(dev_eui.lower(), port, payload, decoded or None,
                  parse_instant(time) if isinstance(time, str) else None,
                  _number(best.get("rssi")), _number(best.get("snr")),
                  tuple(str(r[gateway]) for r in radio if r.get(gateway)))


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else None
