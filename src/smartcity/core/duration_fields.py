"""ISO 8601 durations as fields of settings and policy files (pydantic types)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

from smartcity.core.ngsild.durations import parse_duration
from smartcity.core.ngsild.errors import BadRequestData


def _duration(value: str) -> str:
    try:
        parse_duration(value)
    except BadRequestData as exc:
        raise ValueError(str(exc)) from None
    return value


def _fixed(value: str) -> str:
    period = parse_duration(value)
    if period.months or period.zero:
        raise ValueError("an aggregation period must be fixed and non-zero, such as PT1H "
                         "or P1D")
    return value


DurationText = Annotated[str, AfterValidator(_duration)]
FixedPeriodText = Annotated[str, AfterValidator(_duration), AfterValidator(_fixed)]
