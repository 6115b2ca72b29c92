"""Specification of ISO 8601 durations (aggrPeriodDuration)."""

from __future__ import annotations

import pytest

from smartcity.core.ngsild.durations import Duration, parse_duration
from smartcity.core.ngsild.errors import BadRequestData
from smartcity.core.ngsild.instants import format_instant, parse_instant

HOUR = 3_600_000_000


@pytest.mark.parametrize(("text", "expected"), [
    ("PT1H", Duration(0, HOUR)), ("P1D", Duration(0, 24 * HOUR)),
    ("P1W", Duration(0, 7 * 24 * HOUR)), ("PT0.5S", Duration(0, 500_000)),
    ("P1Y2M", Duration(14, 0)), ("P1DT1H30M", Duration(0, 25 * HOUR + 30 * 60_000_000)),
    ("PT0S", Duration()), ("P0D", Duration())])
def test_durations_are_months_and_microseconds(text: str, expected: Duration) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["bogus", "P", "PT", "1H", "P1H", "PT1D", "-P1D"])
def test_a_malformed_duration_is_a_bad_request_naming_the_parameter(text: str) -> None:
    with pytest.raises(BadRequestData, match="aggrPeriodDuration"):
        parse_duration(text, "aggrPeriodDuration")


def test_a_month_after_the_31st_ends_on_the_last_day_of_the_next_month() -> None:
    start = parse_instant("2024-01-31T10:00:00Z")
    assert format_instant(parse_duration("P1M").after(start)) == "2024-02-29T10:00:00Z"
