"""The sensative-strips decoder.

Vendor samples:
- the example of The Things Network's device repository for Sensative
  (TheThingsNetwork/lorawan-devices, ``vendor/sensative/strips-codec.yaml``);
- the example in the README of Sensative's translator
  (Sensative/strips-lora-translator-open-source, ``README.md``: ``p=1&d=ffff1201`` gives
  ``presence: true``).
Payloads marked "built from the format" are not vendor samples: they exercise one report
id of the format as Sensative's translator reads it (``raw-translate.js``).
"""

from __future__ import annotations

import pytest

from smartcity.ingest.decoders.sensative_strips import PROFILE, decode

TTN_SAMPLE = bytes.fromhex("FFFF 0150 0200EA 0300 0D00 0E00 1000")  # strips-codec.yaml
README_PRESENCE = bytes.fromhex("ffff1201")  # strips-lora-translator-open-source README


def test_profile_is_sensative_strips() -> None:
    assert PROFILE == "sensative-strips"


def test_strips_sample_gives_battery_temperature_alarms_and_a_dry_leak_sensor() -> None:
    assert decode(1, TTN_SAMPLE) == {
        "batteryLevel": 0.8, "temperature": 23.4,
        "temperatureHighAlarm": False, "temperatureLowAlarm": False,
        "wetness": 0, "waterLeak": False, "userSwitchAlarm": False,
    }


def test_strips_presence_sample_gives_presence() -> None:
    assert decode(1, README_PRESENCE) == {"presence": True}


def test_door_report_non_zero_means_closed() -> None:
    # built from the format: report 9, 1 = magnet present (closed), 0 = open
    assert decode(1, bytes.fromhex("0001 0901")) == {"doorOpen": False}
    assert decode(1, bytes.fromhex("0001 0900")) == {"doorOpen": True}


def test_history_flag_does_not_change_the_reading() -> None:
    # built from the format: report 9 with bit 7 set (also stored in history)
    assert decode(1, bytes.fromhex("0001 8900")) == {"doorOpen": True}


def test_combined_reports_give_humidity_light_and_negative_temperature() -> None:
    # built from the format: report 80 (humidity 0x5A/2, temperature -2.5 °C), report 7
    assert decode(1, bytes.fromhex("0010 505AFFE7 070190")) == {
        "relativeHumidity": 45.0, "temperature": -2.5, "illuminance": 400,
    }


def test_flood_alarm_gives_water_leak() -> None:
    # built from the format: report 13 (wetness 80 %), report 14 (flood alarm)
    assert decode(1, bytes.fromhex("0002 0D50 0E01")) == {"wetness": 80, "waterLeak": True}


def test_sequence_number_alone_gives_no_measures() -> None:
    assert decode(1, bytes.fromhex("0102")) == {}


def test_empty_payload_is_rejected() -> None:
    with pytest.raises(ValueError, match="history sequence number"):
        decode(1, b"")


def test_one_byte_payload_is_rejected() -> None:
    with pytest.raises(ValueError, match="history sequence number"):
        decode(1, b"\xff")


def test_truncated_report_is_rejected() -> None:
    with pytest.raises(ValueError, match="report 2 at byte 4 is truncated: 1 of 2 bytes"):
        decode(1, TTN_SAMPLE[:6])


def test_unknown_report_id_is_rejected_as_its_length_is_unknown() -> None:
    with pytest.raises(ValueError, match="unknown report id 99 at byte 2"):
        decode(1, bytes.fromhex("FFFF 6300"))


def test_history_and_settings_ports_are_refused() -> None:
    for port in (2, 11):
        with pytest.raises(ValueError, match=f"FPort {port} is not the report port 1"):
            decode(port, README_PRESENCE)
