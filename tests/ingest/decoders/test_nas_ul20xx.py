"""The nas-ul20xx decoder (NAS UL20xx street-light controllers, firmware 1.1.x).

Vendor samples: the payloads Nordic Automation Systems' codec tests take "from DS" (their
UL20xx payload description) in nasys/nas-codecs ``test/ul20xx_1_1_x_uplink_decoder.test.js``:
"status from DS", "status from DS + unknown sensor source", "status preliminary from DS"
(version 0x00, firmware before 1.1.4), "usage from DS", "metering_alert from DS",
"dali_driver_alert from DS", "boot_packet from DS". ``RELAY_OFF`` is the codec test
"status preliminary with relay off" of the same file (not marked as from the datasheet).
"""

from __future__ import annotations

import pytest

from smartcity.ingest.decoders.nas_ul20xx import PROFILE, decode

STATUS = bytes.fromhex(
    "01 F37F205E 82 44 32 09 16 20 07 01D2 029455 0401 FE501900 12501900")
STATUS_UNKNOWN_SENSOR = bytes.fromhex(
    "01 F37F205E 82C4 32 09 16 20 09 01D2 029455 0401 2100 FE511900 123F1900")
STATUS_BEFORE_1_1_4 = bytes.fromhex("00 F37F205E 92 32 09 16 00 FE711900 12811900")
RELAY_OFF = bytes.fromhex("00F6E5853800340718000EF5FFFF")
USAGE = bytes.fromhex(
    "00 FF80D0EF2F01 12FF47940300 2A00 F94A0300 2700 5D E5 C072D902 D0EF2F01")
METERING_ALERT = bytes.fromhex("84025900e50056")
DALI_DRIVER_ALERT = bytes.fromhex("83200202")
BOOT = bytes.fromhex("000D008350010101F37F205E000CFE0104")


def test_profile_is_nas_ul20xx() -> None:
    assert PROFILE == "nas-ul20xx"


def test_status_sample_gives_relay_dimming_faults_alerts_and_sensors() -> None:
    assert decode(23, STATUS) == {
        "powerState": "on", "dimmingLevel": 25,
        "daliConnectionError": True, "meteringComError": False,
        "lampFailure": False, "driverError": False,
        "voltageAlert": False, "lampErrorAlert": True, "powerAlert": False,
        "powerFactorAlert": False,
        "controllerTemperature": 22, "ldrInput": 210, "illuminance": 299.916,
        "digitalInput": True,
    }


def test_status_sample_before_firmware_1_1_4_gives_relay_dimming_and_input() -> None:
    assert decode(23, STATUS_BEFORE_1_1_4) == {
        "powerState": "on", "dimmingLevel": 25,
        "daliConnectionError": True, "meteringComError": False,
        "lampFailure": False, "driverError": False,
        "controllerTemperature": 22, "digitalInput": True,
    }


def test_relay_off_status_gives_power_off_and_no_dimming_level() -> None:
    assert decode(23, RELAY_OFF) == {
        "powerState": "off", "daliConnectionError": False, "meteringComError": False,
        "controllerTemperature": 24, "digitalInput": False,
    }


def test_usage_sample_gives_energy_power_voltage_and_hours() -> None:
    assert decode(26, USAGE) == {
        "energy": 234567, "activePower": 42, "loadSideEnergy": 215801, "loadSidePower": 39,
        "powerFactor": 0.93, "voltage": 229, "driverOperatingTime": 47805120,
        "lampOnTime": 19918800,
    }


def test_metering_alert_sample_gives_over_current_with_power_and_voltage() -> None:
    assert decode(61, METERING_ALERT) == {
        "lampErrorAlert": False, "overCurrentAlert": True, "underVoltageAlert": False,
        "overVoltageAlert": False, "lowPowerFactorAlert": False,
        "activePower": 89, "voltage": 229, "powerFactor": 0.86,
    }


def test_dali_driver_alert_sample_gives_lamp_failure() -> None:
    assert decode(61, DALI_DRIVER_ALERT) == {"driverError": False, "lampFailure": True}


def test_unknown_sensor_reading_is_skipped_by_its_block_length() -> None:
    assert decode(23, STATUS_UNKNOWN_SENSOR) == decode(23, STATUS)


def test_boot_packet_port_is_refused() -> None:
    with pytest.raises(ValueError, match="FPort 99 carries no measures"):
        decode(99, BOOT)


def test_empty_payload_is_rejected() -> None:
    with pytest.raises(ValueError, match="empty"):
        decode(23, b"")


def test_truncated_status_is_rejected() -> None:
    with pytest.raises(ValueError, match="truncated"):
        decode(23, STATUS[:-1])


def test_truncated_usage_is_rejected() -> None:
    with pytest.raises(ValueError, match="truncated"):
        decode(26, USAGE[:10])


def test_unknown_status_version_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown status packet version 2"):
        decode(23, b"\x02" + STATUS[1:])


def test_unknown_notification_is_rejected() -> None:
    with pytest.raises(ValueError, match="notification 0x86"):
        decode(61, bytes.fromhex("8601"))


def test_trailing_bytes_are_rejected() -> None:
    with pytest.raises(ValueError, match="1 bytes left over"):
        decode(61, METERING_ALERT + b"\x00")
