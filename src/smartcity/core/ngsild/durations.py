"""ISO 8601 durations (aggrPeriodDuration, retention periods).

A duration is kept as (months, microseconds): years and months are calendar steps whose
length depends on where they start, everything else has a fixed length.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from smartcity.core.ngsild.errors import BadRequestData
from smartcity.core.ngsild.instants import EPOCH, LAST, MICRO

_DURATION = re.compile(
    r"^P(?!$)(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?"
    r"(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:[.,]\d+)?)S)?)?$")
_UNITS = (7 * 86_400, 86_400, 3_600, 60)
# Longer durations mean nothing for city history, and would leave the calendar's range.
MAX_YEARS = 1000
_YEAR = 366 * 86_400 * 1_000_000


@dataclass(frozen=True)
class Duration:
    months: int = 0
    micros: int = 0

    @property
    def zero(self) -> bool:
        return self.months == 0 and self.micros == 0

    def after(self, instant: int) -> int:
        """The instant this duration after ``instant`` (microseconds)."""
        if self.months:
            instant = _add_months(instant, self.months)
        return instant + self.micros

    def before(self, instant: int) -> int:
        """The instant this duration before ``instant``."""
        if self.months:
            instant = _add_months(instant, -self.months)
        return instant - self.micros


def parse_duration(text: str, name: str = "duration") -> Duration:
    match = _DURATION.match(text)
    if match is None:
        raise BadRequestData(f"{name} is not an ISO 8601 duration: {text!r}")
    years, months, *rest = match.groups()
    seconds_text = rest[-1]
    micros = sum(int(value) * unit * 1_000_000
                 for value, unit in zip(rest[:-1], _UNITS, strict=True) if value)
    if seconds_text:
        micros += round(float(seconds_text.replace(",", ".")) * 1_000_000)
    duration = Duration(int(years or 0) * 12 + int(months or 0), micros)
    if duration.months > MAX_YEARS * 12 or duration.micros > MAX_YEARS * _YEAR:
        raise BadRequestData(f"{name} is longer than {MAX_YEARS} years: {text!r}")
    return duration


def _add_months(instant: int, months: int) -> int:
    moment = EPOCH + instant * MICRO
    total = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(total, 12)
    if not 1 <= year <= 9999:
        return LAST if year > 9999 else -LAST
    # Days past the end of the month clamp to its last day (Jan 31 + P1M = Feb 28/29).
    day = min(moment.day, _days_in(year, month + 1))
    shifted = moment.replace(year=year, month=month + 1, day=day)
    return int((shifted - EPOCH) // MICRO)


def _days_in(year: int, month: int) -> int:
    following = datetime(year + (month == 12), month % 12 + 1, 1)
    return (following - datetime(year, month, 1)).days
