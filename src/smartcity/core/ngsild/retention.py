"""Retention of history: keep raw instances for a while, then only aggregates, then
nothing (issue: lighting energy reports for years, personal data for days).

Each rule names entity types and an attribute (either may be left out to mean all) and
how long raw instances stay; older ones are folded into aggregate periods (count, sum,
min, max, sum of squares per period) that aggregated queries keep answering from, and
those periods go too once older than ``keep_aggregates``. Every run logs what it
deleted, rule by rule.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from smartcity.core.clock import Clock
from smartcity.core.ngsild.durations import Duration
from smartcity.core.ngsild.errors import BadRequestData
from smartcity.core.ngsild.history_storage import HistoryStore
from smartcity.core.ngsild.instants import format_instant
from smartcity.core.ngsild.temporal import now_micros

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetentionRule:
    raw: Duration
    types: tuple[str, ...] | None = None  # type IRIs; None: every type
    attr: str | None = None  # attribute IRI; None: every attribute
    aggregate: Duration | None = None  # fixed period; None: raw instances just go
    keep_aggregates: Duration | None = None  # None: aggregates stay

    def __post_init__(self) -> None:
        if self.aggregate is not None and (self.aggregate.months or self.aggregate.zero):
            raise BadRequestData("A retention aggregate period must have a fixed, non-zero "
                                 "length (weeks, days, hours, minutes or seconds)")

    def describe(self) -> str:
        return f"{', '.join(self.types) if self.types else 'every type'} / " \
            f"{self.attr or 'every attribute'}"


@dataclass(frozen=True)
class RetentionReport:
    rule: RetentionRule
    deleted: int  # raw instances
    periods: int  # aggregate periods written
    expired: int  # aggregate periods deleted


class Retention:
    def __init__(self, store: HistoryStore, clock: Clock,
                 rules: Sequence[RetentionRule]) -> None:
        self.store = store
        self.clock = clock
        self.rules = list(rules)

    async def run(self) -> list[RetentionReport]:
        """Apply every rule once."""
        now = now_micros(self.clock)
        reports = []
        for rule in self.rules:
            cut = rule.raw.before(now)
            period = rule.aggregate.micros if rule.aggregate is not None else None
            deleted, periods = await self.store.downsample(rule.types, rule.attr, cut, period)
            expired = 0
            if rule.keep_aggregates is not None:
                expired = await self.store.expire_aggregates(
                    rule.types, rule.attr, rule.keep_aggregates.before(now))
            if deleted or expired:
                log.info("retention of %s: deleted %d raw instances observed before %s "
                         "(%d aggregate periods written), %d expired aggregate periods",
                         rule.describe(), deleted, format_instant(cut), periods, expired)
            reports.append(RetentionReport(rule, deleted, periods, expired))
        return reports
