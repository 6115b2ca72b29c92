"""Specification of reading LoRaWAN uplinks as ChirpStack v4 and The Things Stack v3
forward them (event shapes as their documentation shows them)."""

from __future__ import annotations

from typing import Any

import pytest

from smartcity.core.ngsild.errors import BadRequestData
from smartcity.core.ngsild.instants import parse_instant
from smartcity.ingest.lorawan import chirpstack_uplink, tts_uplink


def chirpstack_event(**changes: Any) -> dict[str, Any]:
    """A ChirpStack v4 ``up`` event (HTTP integration, JSON marshaler)."""
    return {
        "deduplicationId": "3ac7e3c4-4401-4b8d-9386-a5c902f9202d",
        "time": "2022-07-18T09:34:15.775023242+00:00",
        "deviceInfo": {"tenantId": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242",
                       "tenantName": "ChirpStack", "applicationName": "Test application",
                       "deviceProfileName": "Test device-profile",
                       "deviceName": "Test device", "devEui": "0101010101010101",
                       "tags": {"key": "value"}},
        "devAddr": "00189440", "dr": 1, "fCnt": 10, "fPort": 1, "confirmed": False,
        "data": "qg==",
        "rxInfo": [{"gatewayId": "0016c001f153a14c", "uplinkId": 4217106255, "rssi": -36,
                    "snr": 10.5, "context": "E3OWOQ=="},
                   {"gatewayId": "0016c001f153a14d", "rssi": -80, "snr": 2.0}],
        "txInfo": {"frequency": 867100000}, **changes}


def tts_event(**changes: Any) -> dict[str, Any]:
    """An uplink webhook message of The Things Stack v3."""
    return {
        "end_device_ids": {"device_id": "eui-70b3d57ed005e3a8",
                           "application_ids": {"application_id": "stockholm-sensors"},
                           "dev_eui": "70B3D57ED005E3A8", "dev_addr": "260B1F4E"},
        "received_at": "2026-11-25T10:00:01.123456789Z",
        "uplink_message": {
            "session_key_id": "AXBSH1Pk6Z0G166=", "f_port": 5, "f_cnt": 42,
            "frm_payload": "AQDiAik=", "decoded_payload": {"temperature": 22.6},
            "rx_metadata": [{"gateway_ids": {"gateway_id": "kth-roof", "eui": "B827EBFFFE8B01DD"},
                             "rssi": -42, "channel_rssi": -42, "snr": 10.75}],
            "settings": {"data_rate": {"lora": {"bandwidth": 125000,
                                                "spreading_factor": 7}}},
            "received_at": "2026-11-25T10:00:01.100000000Z"}, **changes}


def test_a_chirpstack_uplink_gives_device_port_payload_and_best_radio() -> None:
    uplink = chirpstack_uplink(chirpstack_event())
    assert (uplink.dev_eui, uplink.port, uplink.payload) == ("0101010101010101", 1, b"\xaa")
    assert uplink.time == parse_instant("2022-07-18T09:34:15.775023Z")
    assert (uplink.rssi, uplink.snr) == (-36.0, 10.5)
    assert uplink.gateways == ("0016c001f153a14c", "0016c001f153a14d")
    assert uplink.decoded is None


def test_a_things_stack_uplink_gives_the_same_and_its_decoded_payload() -> None:
    uplink = tts_uplink(tts_event())
    assert (uplink.dev_eui, uplink.port, uplink.payload) == (
        "70b3d57ed005e3a8", 5, bytes.fromhex("0100e20229"))
    assert uplink.decoded == {"temperature": 22.6}
    assert (uplink.rssi, uplink.snr, uplink.gateways) == (-42.0, 10.75, ("kth-roof",))
    assert uplink.time == parse_instant("2026-11-25T10:00:01.1Z")


@pytest.mark.parametrize("event", [
    {}, chirpstack_event(deviceInfo={"devEui": "01"}), chirpstack_event(data="@@@"),
    chirpstack_event(fPort=300), chirpstack_event(object=[1, 2]),
])
def test_malformed_chirpstack_events_are_bad_request_data(event: dict[str, Any]) -> None:
    with pytest.raises(BadRequestData):
        chirpstack_uplink(event)


def test_a_things_stack_message_without_an_uplink_is_bad_request_data() -> None:
    with pytest.raises(BadRequestData, match="uplink_message"):
        tts_uplink({"end_device_ids": {"dev_eui": "70B3D57ED005E3A8"}, "join_accept": {}})
