"""The milesight-em300 decoder.

Vendor samples: the "Example" sections of Milesight's decoder READMEs
(Milesight-IoT/SensorDecoders, ``em-series/em300-th/README.md``,
``em-series/em300-mcs/README.md``, ``em-series/em300-sld/README.md``).
Payloads marked "built from the format" are not vendor samples.
"""

from __future__ import annotations

import pytest

from smartcity.ingest.decoders.milesight_em300 import PROFILE, decode

EM300_TH = bytes.fromhex("01755C 03673401 046865")  # em300-th/README.md
EM300_TH_HISTORY = bytes.fromhex("20CE9E74466310015D00")  # em300-th/README.md
EM300_MCS = bytes.fromhex("01755C 03673401 046865 060001")  # em300-mcs/README.md
EM300_SLD = bytes.fromhex("01755C 03673401 046865 050000")  # em300-sld/README.md


def test_profile_is_milesight_em300() -> None:
    assert PROFILE == "milesight-em300"


def test_em300_th_sample_gives_battery_temperature_humidity() -> None:
    assert decode(85, EM300_TH) == {
        "batteryLevel": 0.92, "temperature": 30.8, "relativeHumidity": 50.5,
    }


def test_em300_mcs_sample_gives_an_open_door() -> None:
    assert decode(85, EM300_MCS) == {
        "batteryLevel": 0.92, "temperature": 30.8, "relativeHumidity": 50.5,
        "doorOpen": True,
    }


def test_em300_sld_sample_gives_no_water_leak() -> None:
    assert decode(85, EM300_SLD) == {
        "batteryLevel": 0.92, "temperature": 30.8, "relativeHumidity": 50.5,
        "waterLeak": False,
    }


def test_historical_record_gives_no_current_measures() -> None:
    assert decode(85, EM300_TH_HISTORY) == {}


def test_device_attributes_are_read_past() -> None:
    # built from the format: power-on, firmware version, serial number, then battery
    payload = bytes.fromhex("FF0BFF FF0A0101 FF166785C38226020003 017564")
    assert decode(85, payload) == {"batteryLevel": 1.0}


def test_negative_temperature() -> None:
    # built from the format: int16 little-endian -45 (-4.5 °C)
    assert decode(85, bytes.fromhex("0367D3FF")) == {"temperature": -4.5}


def test_empty_payload_is_rejected() -> None:
    with pytest.raises(ValueError, match="empty"):
        decode(85, b"")


def test_truncated_value_is_rejected() -> None:
    with pytest.raises(ValueError, match="0x03 0x67 at byte 3 is truncated: 1 of 2 bytes"):
        decode(85, EM300_TH[:6])


def test_channel_without_type_is_rejected() -> None:
    with pytest.raises(ValueError, match="byte 3 has an id but no type"):
        decode(85, EM300_TH[:4])


def test_unknown_channel_is_rejected_as_its_length_is_unknown() -> None:
    with pytest.raises(ValueError, match="unknown channel 0x07 0x7D at byte 3"):
        decode(85, bytes.fromhex("01755C 077D2001"))
