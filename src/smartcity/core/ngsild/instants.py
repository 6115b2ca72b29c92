"""Instants as integers: microseconds since the Unix epoch, UTC.

History is kept, compared and bucketed by these integers; text appears only at the
edges. ``format_instant`` writes the shortest exact form (no fraction, milliseconds or
microseconds), so the usual client forms of observedAt come back as they were sent.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from smartcity.core.ngsild.errors import BadRequestData

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICRO = timedelta(microseconds=1)
# Python reads at most six fraction digits: nanoseconds are cut to microseconds.
LAST = (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC) - EPOCH) // MICRO
_LONG_FRACTION = re.compile(r"(\.\d{6})\d+")


@lru_cache(maxsize=65536)
def parse_instant(text: str) -> int:
    """Microseconds since the epoch of an ISO 8601 DateTime; naive means UTC."""
    try:
        moment = datetime.fromisoformat(_LONG_FRACTION.sub(r"\1", text))
    except (TypeError, ValueError):
        raise BadRequestData(f"Not a DateTime: {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH) // MICRO


def read_instant(text: object, name: str) -> int:
    """A DateTime parameter or member, or BadRequestData naming it."""
    if not isinstance(text, str) or "T" not in text:
        raise BadRequestData(f"{name} must be a DateTime: {text!r}")
    try:
        return parse_instant(text)
    except BadRequestData:
        raise BadRequestData(f"{name} must be a DateTime: {text!r}") from None


@lru_cache(maxsize=65536)
def format_instant(micros: int) -> str:
    # Past the calendar's end (a period running past year 9999) reads as its last moment.
    moment = EPOCH + min(micros, LAST) * MICRO
    fraction = micros % 1_000_000
    if fraction == 0:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    if fraction % 1000 == 0:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{fraction // 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
