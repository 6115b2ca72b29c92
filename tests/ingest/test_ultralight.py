"""Specification of UltraLight 2.0 parsing (the FIWARE IoT Agents' text payload)."""

from __future__ import annotations

import pytest

from smartcity.core.ngsild.errors import BadRequestData
from smartcity.core.ngsild.instants import parse_instant
from smartcity.ingest.ultralight import MAX_PAYLOAD, MeasureGroup, parse_ultralight


def test_pairs_of_a_group_become_measures_as_text() -> None:
    assert parse_ultralight("t|21.5|h|40|s|on") == [
        MeasureGroup({"t": "21.5", "h": "40", "s": "on"}, None)]


def test_groups_are_separated_by_a_hash_and_may_carry_their_own_time() -> None:
    groups = parse_ultralight("2026-11-25T10:00:00Z|t|20#2026-11-25T10:05:00Z|t|21\n")
    assert [(g.values["t"], g.time) for g in groups] == [
        ("20", parse_instant("2026-11-25T10:00:00Z")),
        ("21", parse_instant("2026-11-25T10:05:00Z"))]


def test_empty_groups_are_skipped() -> None:
    assert parse_ultralight("#t|1##") == [MeasureGroup({"t": "1"}, None)]


@pytest.mark.parametrize("payload", [
    "", "   ", "#", "t", "|5", "yesterday|t|5", "t|1|h",
])
def test_malformed_payloads_are_bad_request_data(payload: str) -> None:
    with pytest.raises(BadRequestData):
        parse_ultralight(payload)


def test_an_oversized_payload_is_refused() -> None:
    with pytest.raises(BadRequestData, match="at most"):
        parse_ultralight("t|1|" * (MAX_PAYLOAD // 4 + 1))
