"""Temporal query parameters (clause 4.11, 5.7.3, 5.7.4): time window, lastN, the
representation asked for and its aggregation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from smartcity.core.ngsild.durations import Duration, parse_duration
from smartcity.core.ngsild.errors import BadRequestData, InvalidRequest
from smartcity.core.ngsild.history_storage import (
    AGGREGATE_METHODS,
    AggregateMethod,
    TimeProperty,
    Window,
)
from smartcity.core.ngsild.instants import read_instant

Representation = Literal["normalized", "temporalValues", "aggregatedValues"]
TIME_PROPERTIES = ("observedAt", "createdAt", "modifiedAt", "deletedAt")
TIMERELS = ("before", "after", "between")
# options a temporal request may carry; the simplified forms all mean temporalValues.
_SIMPLIFIED = {"temporalValues", "keyValues", "simplified", "concise"}
TEMPORAL_OPTIONS = frozenset({*_SIMPLIFIED, "aggregatedValues", "normalized", "sysAttrs"})
# More than any history holds: a larger lastN means the same, and stays a 64-bit integer.
MAX_LAST_N = 2**31
FORMATS = frozenset({*_SIMPLIFIED, "aggregatedValues", "normalized"})


@dataclass(frozen=True)
class TemporalQuery:
    window: Window = field(default_factory=Window)
    timerel: str | None = None
    time_at: int | None = None
    end_time_at: int | None = None
    representation: Representation = "normalized"
    methods: tuple[AggregateMethod, ...] = ()
    period: Duration = field(default_factory=Duration)
    sys_attrs: bool = False

    @property
    def aggregated(self) -> bool:
        """Whether the answer is aggregated (which also reads periods retention folded)."""
        return self.representation == "aggregatedValues"


def parse_temporal(params: Mapping[str, Any], options: set[str],
                   format_name: str | None = None) -> TemporalQuery:
    """The temporal part of a request: GET parameters or a Query's temporalQ members."""
    timerel = params.get("timerel")
    time_at = end_time_at = None
    start = end = None
    if timerel is not None:
        if timerel not in TIMERELS:
            raise BadRequestData(f"timerel must be before, after or between: {timerel!r}")
        if params.get("timeAt") is None:
            raise BadRequestData(f"timerel={timerel} needs timeAt")
        time_at = read_instant(params["timeAt"], "timeAt")
        if timerel == "between":
            if params.get("endTimeAt") is None:
                raise BadRequestData("timerel=between needs endTimeAt")
            end_time_at = read_instant(params["endTimeAt"], "endTimeAt")
            if end_time_at <= time_at:
                raise BadRequestData("endTimeAt must be later than timeAt")
            start, end = time_at, end_time_at
        elif timerel == "after":
            start = time_at
        else:
            end = time_at
    timeproperty = params.get("timeproperty") or "observedAt"
    if timeproperty not in TIME_PROPERTIES:
        raise BadRequestData(f"timeproperty must be one of {', '.join(TIME_PROPERTIES)}: "
                             f"{timeproperty!r}")
    last = _last_n(params.get("lastN"))
    representation = _representation(options, format_name)
    methods: tuple[AggregateMethod, ...] = ()
    period = Duration()
    if params.get("aggrMethods") is not None:
        methods = _methods(params["aggrMethods"])
    if params.get("aggrPeriodDuration") is not None:
        text = params["aggrPeriodDuration"]
        if not isinstance(text, str):
            raise BadRequestData("aggrPeriodDuration must be an ISO 8601 duration")
        period = parse_duration(text, "aggrPeriodDuration")
    if representation == "aggregatedValues" and not methods:
        raise BadRequestData("options=aggregatedValues needs aggrMethods")
    window = Window(cast(TimeProperty, timeproperty), start, end, last)
    return TemporalQuery(window, timerel, time_at, end_time_at, representation, methods,
                         period, "sysAttrs" in options)


def _last_n(value: Any) -> int | None:
    if value is None:
        return None
    text = str(value)
    if isinstance(value, bool) or not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise BadRequestData(f"lastN must be a positive integer: {value!r}")
    return min(int(text), MAX_LAST_N)


def _representation(options: set[str], format_name: str | None) -> Representation:
    if format_name is not None:
        if format_name not in FORMATS:
            raise InvalidRequest(f"Unknown format {format_name!r}")
        options = {format_name}
    if options & _SIMPLIFIED:
        return "temporalValues"
    if "aggregatedValues" in options:
        return "aggregatedValues"
    return "normalized"


def _methods(value: Any) -> tuple[AggregateMethod, ...]:
    names = value if isinstance(value, list) else str(value).split(",")
    methods = []
    for name in names:
        name = str(name).strip()
        if name not in AGGREGATE_METHODS:
            raise BadRequestData(f"aggrMethods: unknown aggregation method {name!r}")
        methods.append(cast(AggregateMethod, name))
    if not methods:
        raise BadRequestData("aggrMethods must name at least one method")
    return tuple(dict.fromkeys(methods))
