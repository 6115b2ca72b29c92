"""The dragino-lht65 decoder.

Vendor samples:
- the example of The Things Network's device repository for Dragino
  (TheThingsNetwork/lorawan-devices, ``vendor/dragino/lht65-codec.yaml``: the reading on
  FPort 2, and the same bytes on FPort 42 refused as "unknown FPort"); the LHT65 user
  manual works through the same bytes in "2.4 Uplink Payload";
- the datalog poll reply of the LHT65 user manual ("2.6 Datalog", the first 11-byte entry
  ``7FFF089801464160065F97``: Ext byte 0x41, reply data).
``MANUAL_FIELDS`` is assembled from the field examples of the LHT65/LHT65N manuals (BAT
0xCBA4 = 2980 mV good; temperature 0x0898 = 22.00 °C and humidity 0x0146 = 32.6 % of the
datalog example; DS18B20 0xF54F = -27.37 °C); other payloads marked "built from the
format" exercise one documented case.
"""

from __future__ import annotations

import pytest

from smartcity.ingest.decoders.dragino_lht65 import PROFILE, decode

TTN_SAMPLE = bytes.fromhex("CBF6 0B0D 0376 01 0ADD7FFF")  # lht65-codec.yaml
MANUAL_FIELDS = bytes.fromhex("CBA4 0898 0146 01 F54F7FFF")
DATALOG_ENTRY = bytes.fromhex("7FFF 0898 0146 41 60065F97")  # manual, 2.6 Datalog


def test_profile_is_dragino_lht65() -> None:
    assert PROFILE == "dragino-lht65"


def test_lht65_sample_gives_battery_sht_and_ds18b20_readings() -> None:
    assert decode(2, TTN_SAMPLE) == {
        "batteryVoltage": 3.062, "batteryStatus": "good", "temperature": 28.29,
        "relativeHumidity": 88.6, "externalTemperature": 27.81,
    }


def test_manual_field_examples_give_negative_probe_temperature() -> None:
    assert decode(2, MANUAL_FIELDS) == {
        "batteryVoltage": 2.98, "batteryStatus": "good", "temperature": 22.0,
        "relativeHumidity": 32.6, "externalTemperature": -27.37,
    }


def test_probe_reading_7fff_means_no_probe_connected() -> None:
    # built from the format: Ext 1 with the DS18B20 value 0x7FFF
    measures = decode(2, bytes.fromhex("CBF6 0B0D 0376 01 7FFF7FFF"))
    assert "externalTemperature" not in measures
    assert measures["temperature"] == 28.29


def test_disconnected_flag_drops_the_external_reading() -> None:
    # built from the format: Ext 0x81, bit 7 = sensor not connected
    assert "externalTemperature" not in decode(2, bytes.fromhex("CBF6 0B0D 0376 81 0ADD7FFF"))


def test_no_external_sensor_reading_may_end_after_the_ext_byte() -> None:
    # built from the format: Ext 0, "there won't be these four bytes"
    assert decode(2, bytes.fromhex("4BF6 FF38 0376 00")) == {
        "batteryVoltage": 3.062, "batteryStatus": "low", "temperature": -2.0,
        "relativeHumidity": 88.6,
    }


def test_illuminance_and_adc_external_modes() -> None:
    # built from the format: Ext 5 (lux), Ext 6 (mV)
    assert decode(2, bytes.fromhex("CBF6 0B0D 0376 05 01F40000"))["illuminance"] == 500
    assert decode(2, bytes.fromhex("CBF6 0B0D 0376 06 0CE40000"))["analogInput"] == 3.3


def test_other_fports_are_refused() -> None:
    with pytest.raises(ValueError, match="FPort 42 is not the LHT65 reading port 2"):
        decode(42, TTN_SAMPLE)


def test_datalog_poll_reply_is_refused() -> None:
    with pytest.raises(ValueError, match="datalog poll reply"):
        decode(2, DATALOG_ENTRY)


def test_empty_payload_is_rejected() -> None:
    with pytest.raises(ValueError, match="0 bytes, a reading has at least 7"):
        decode(2, b"")


def test_truncated_external_value_is_rejected() -> None:
    with pytest.raises(ValueError, match="10 bytes, a reading with an external sensor has 11"):
        decode(2, TTN_SAMPLE[:-1])


def test_unsupported_external_mode_is_rejected() -> None:
    with pytest.raises(ValueError, match="external sensor mode 9 is not supported"):
        decode(2, bytes.fromhex("0ADD 0B0D 0376 09 60065F97"))
