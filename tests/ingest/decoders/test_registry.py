"""The decoder plug-ins are found by their profile."""

from __future__ import annotations

from smartcity.ingest.decoders import (
    decoders,
    dragino_lht65,
    elsys_ers,
    milesight_em300,
    nas_ul20xx,
    sensative_strips,
)

MODULES = (elsys_ers, sensative_strips, milesight_em300, dragino_lht65, nas_ul20xx)


def test_registry_finds_the_five_city_sensor_profiles() -> None:
    assert {"elsys-ers", "sensative-strips", "milesight-em300", "dragino-lht65",
            "nas-ul20xx"} <= set(decoders())


def test_each_profile_maps_to_its_module_decode() -> None:
    for module in MODULES:
        assert decoders()[module.PROFILE] is module.decode
