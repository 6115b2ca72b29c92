"""Specification of instants: DateTime text <-> microseconds since the epoch."""

from __future__ import annotations

import pytest

from smartcity.core.ngsild.errors import BadRequestData
from smartcity.core.ngsild.instants import format_instant, parse_instant, read_instant


@pytest.mark.parametrize("text", ["2020-08-01T12:03:00Z", "2020-08-01T12:03:00.250Z",
                                  "2020-08-01T12:03:00.000001Z"])
def test_the_usual_forms_come_back_as_they_were_written(text: str) -> None:
    assert format_instant(parse_instant(text)) == text


def test_offsets_and_naive_times_mean_the_same_instant_in_utc() -> None:
    assert parse_instant("2020-08-01T14:03:00+02:00") == parse_instant("2020-08-01T12:03:00Z")
    assert parse_instant("2020-08-01T12:03:00") == parse_instant("2020-08-01T12:03:00Z")


def test_nanoseconds_are_cut_to_microseconds() -> None:
    assert format_instant(parse_instant("2020-08-01T12:03:00.123456789Z")) == \
        "2020-08-01T12:03:00.123456Z"


@pytest.mark.parametrize("text", ["2020-08-01", "yesterday", "", 5])
def test_a_parameter_that_is_no_datetime_is_a_bad_request(text: object) -> None:
    with pytest.raises(BadRequestData, match="timeAt"):
        read_instant(text, "timeAt")
