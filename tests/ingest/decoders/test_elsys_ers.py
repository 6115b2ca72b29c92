"""The elsys-ers decoder.

Vendor samples: the ``examples`` of The Things Network's device repository for Elsys
(TheThingsNetwork/lorawan-devices, ``vendor/elsys/ers-co2-codec.yaml``,
``ers-sound-codec.yaml``, ``ers-lite-codec.yaml``, ``ers-co2-lite-codec.yaml``), whose
expected outputs are those of Elsys' decoder ``vendor/elsys/elsys.js``. Payloads marked
"built from the format" are not vendor samples: they exercise one documented type.
"""

from __future__ import annotations

import pytest

from smartcity.ingest.decoders.elsys_ers import PROFILE, decode

ERS_CO2 = bytes.fromhex("0100E2 0229 040027 0506 060308")  # ers-co2-codec.yaml
ERS_SOUND = bytes.fromhex("0100E2 0229 040027 0506 150101")  # ers-sound-codec.yaml
ERS_LITE = bytes.fromhex("0100E2 0229")  # ers-lite-codec.yaml
ERS_CO2_LITE = bytes.fromhex("0100E2 0229 060308")  # ers-co2-lite-codec.yaml


def test_profile_is_elsys_ers() -> None:
    assert PROFILE == "elsys-ers"


def test_elsys_ers_co2_sample_gives_temperature_humidity_light_motion_co2() -> None:
    assert decode(1, ERS_CO2) == {
        "temperature": 22.6, "relativeHumidity": 41, "illuminance": 39, "motion": 6,
        "co2": 776,
    }


def test_elsys_ers_sound_sample_gives_sound_peak_and_average() -> None:
    assert decode(1, ERS_SOUND) == {
        "temperature": 22.6, "relativeHumidity": 41, "illuminance": 39, "motion": 6,
        "soundPeak": 1, "soundAverage": 1,
    }


def test_elsys_ers_lite_sample_gives_temperature_and_humidity() -> None:
    assert decode(1, ERS_LITE) == {"temperature": 22.6, "relativeHumidity": 41}


def test_elsys_ers_co2_lite_sample_gives_temperature_humidity_co2() -> None:
    assert decode(1, ERS_CO2_LITE) == {"temperature": 22.6, "relativeHumidity": 41, "co2": 776}


def test_the_fport_does_not_change_the_reading() -> None:
    assert decode(5, ERS_CO2) == decode(1, ERS_CO2)


def test_negative_temperature_and_battery_voltage_in_volts() -> None:
    # built from the format: 0x01 int16 -200 (-20.0 °C), 0x07 3600 mV
    assert decode(1, bytes.fromhex("01FF38 070E10")) == {
        "temperature": -20.0, "batteryVoltage": 3.6,
    }


def test_voc_occupancy_and_external_temperature_types() -> None:
    # built from the format: 0x1C 350 ppb, 0x11 state 2, 0x0C int16 -55 (-5.5 °C)
    assert decode(1, bytes.fromhex("1C015E 1102 0CFFC9")) == {
        "tvoc": 350, "occupancy": 2, "externalTemperature": -5.5,
    }


def test_grid_eye_image_is_read_past_without_measures() -> None:
    # built from the format: 0x13 is one reference byte and 64 pixels
    payload = bytes([0x13]) + bytes(65) + bytes.fromhex("0229")
    assert decode(1, payload) == {"relativeHumidity": 41}


def test_empty_payload_is_rejected() -> None:
    with pytest.raises(ValueError, match="empty"):
        decode(1, b"")


def test_truncated_reading_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"0x06 at byte 10 is truncated: 1 of 2 bytes"):
        decode(1, ERS_CO2[:-1])


def test_type_byte_without_its_value_is_rejected() -> None:
    with pytest.raises(ValueError, match="truncated: 0 of 2"):
        decode(1, bytes.fromhex("01"))


def test_unknown_type_is_rejected_as_its_length_is_unknown() -> None:
    with pytest.raises(ValueError, match="unknown reading type 0x7F at byte 2"):
        decode(1, bytes.fromhex("0229 7F00"))
