"""Specification of temporal query parameters (clause 4.11): the window they select,
lastN, the representation and aggregation, and the 400s for bad values."""

from __future__ import annotations

from typing import Any

import pytest

from smartcity.core.ngsild.errors import BadRequestData, InvalidRequest
from smartcity.core.ngsild.instants import parse_instant
from smartcity.core.ngsild.temporal_query import parse_temporal

T1, T2 = "2020-08-01T12:00:00Z", "2020-08-01T13:00:00Z"


def test_after_starts_at_time_at_before_ends_there_and_between_spans_both() -> None:
    after = parse_temporal({"timerel": "after", "timeAt": T1}, set()).window
    before = parse_temporal({"timerel": "before", "timeAt": T1}, set()).window
    between = parse_temporal({"timerel": "between", "timeAt": T1, "endTimeAt": T2},
                             set()).window
    assert (after.start, after.end) == (parse_instant(T1), None)
    assert (before.start, before.end) == (None, parse_instant(T1))
    assert (between.start, between.end) == (parse_instant(T1), parse_instant(T2))


def test_no_timerel_selects_the_whole_history_by_observed_at() -> None:
    window = parse_temporal({}, set()).window
    assert (window.start, window.end, window.timeproperty) == (None, None, "observedAt")


@pytest.mark.parametrize("params", [
    {"timerel": "during", "timeAt": T1}, {"timerel": "after"},
    {"timerel": "between", "timeAt": T1}, {"timerel": "after", "timeAt": "2020-08-01"},
    {"timerel": "between", "timeAt": T2, "endTimeAt": T1},
    {"timeproperty": "expiresAt"}, {"lastN": "0"}, {"lastN": "2.5"}, {"lastN": 2.5},
    {"lastN": True}])
def test_bad_temporal_parameters_are_bad_requests(params: dict[str, Any]) -> None:
    with pytest.raises(BadRequestData):
        parse_temporal(params, set())


def test_aggregation_needs_known_methods_and_a_valid_period() -> None:
    with pytest.raises(BadRequestData, match="aggrMethods"):
        parse_temporal({"aggrMethods": "avg,bogus"}, {"aggregatedValues"})
    with pytest.raises(BadRequestData, match="aggrPeriodDuration"):
        parse_temporal({"aggrMethods": "avg", "aggrPeriodDuration": "bogus"},
                       {"aggregatedValues"})
    with pytest.raises(BadRequestData, match="aggrMethods"):
        parse_temporal({}, {"aggregatedValues"})


def test_aggregation_methods_may_be_a_list_and_default_to_the_whole_range() -> None:
    query = parse_temporal({"aggrMethods": ["avg", "max"]}, {"aggregatedValues"})
    assert (query.representation, query.methods, query.period.zero) == (
        "aggregatedValues", ("avg", "max"), True)


def test_format_wins_over_options_and_an_unknown_format_is_an_invalid_request() -> None:
    query = parse_temporal({"aggrMethods": "sum"}, {"aggregatedValues"}, "temporalValues")
    assert query.representation == "temporalValues"
    with pytest.raises(InvalidRequest):
        parse_temporal({}, set(), "invalidFormat")
