"""Specification of history retention: raw instances kept for a while, then aggregates,
then nothing; each run logs what it deleted."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from smartcity.core.ngsild.durations import parse_duration
from smartcity.core.ngsild.errors import BadRequestData
from smartcity.core.ngsild.history import History, HistoryEntity, HistoryInstance
from smartcity.core.ngsild.history_storage import Grid, SeriesFilter, Window
from smartcity.core.ngsild.instants import format_instant, parse_instant
from smartcity.core.ngsild.query import EntityQuery
from smartcity.core.ngsild.retention import Retention, RetentionRule
from smartcity.core.ngsild.storage import EntityStore, Selection
from smartcity.core.ngsild.temporal import TemporalService
from smartcity.core.ngsild.temporal_query import TemporalQuery
from smartcity.store.backend import open_store

D = "https://uri.etsi.org/ngsi-ld/default-context/"
METER, POWER, RESIDENT = D + "EnergyMeter", D + "power", D + "occupant"
HOUR = 3_600_000_000
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


class FixedClock:
    def now(self) -> datetime:
        return NOW


def hourly(entity_id: str, attr: str, hours: int) -> History:
    """One reading an hour for the ``hours`` hours before NOW."""
    end = parse_instant("2026-11-25T12:00:00Z")
    return History([HistoryEntity(entity_id, (METER,))], [
        HistoryInstance(entity_id, attr, "", end - h * HOUR,
                        {"type": "Property", "value": h,
                         "observedAt": format_instant(end - h * HOUR)})
        for h in range(1, hours + 1)])


@pytest.fixture
async def store(db: str) -> AsyncIterator[EntityStore]:
    opened = await open_store(db)
    await opened.history.record("", hourly("urn:meter:1", POWER, 24 * 10), 0)
    await opened.history.record("", hourly("urn:meter:1", RESIDENT, 24 * 10), 0)
    yield opened
    await opened.close()


async def count(store: EntityStore, attr: str) -> int:
    found = await store.history.instances("", ["urn:meter:1"], SeriesFilter(frozenset({attr})),
                                          Window())
    return len(found.get("urn:meter:1", []))


async def test_raw_instances_older_than_the_rule_become_daily_aggregates(
        store: EntityStore, caplog: pytest.LogCaptureFixture) -> None:
    rule = RetentionRule(raw=parse_duration("P3D"), types=(METER,), attr=POWER,
                         aggregate=parse_duration("P1D"))
    with caplog.at_level(logging.INFO, "smartcity.core.ngsild.retention"):
        (report,) = await Retention(store.history, FixedClock(), [rule]).run()
    assert report.deleted == 24 * 10 - 72
    assert await count(store, POWER) == 72
    assert await count(store, RESIDENT) == 240  # another attribute: untouched
    assert "deleted 168 raw instances" in caplog.text
    grid = Grid(parse_instant("2026-11-15T00:00:00Z"), parse_instant("2026-11-25T12:00:00Z"),
                parse_duration("PT0S"))
    (whole,) = (await store.history.aggregates("", {"urn:meter:1": grid},
                                               SeriesFilter(frozenset({POWER})), Window(),
                                               ["totalCount", "sum"]))["urn:meter:1"]
    assert whole.values == {"totalCount": 240, "sum": sum(range(1, 241))}


async def test_personal_data_can_go_after_a_day_without_a_trace(store: EntityStore) -> None:
    rule = RetentionRule(raw=parse_duration("P1D"), attr=RESIDENT)
    await Retention(store.history, FixedClock(), [rule]).run()
    assert await count(store, RESIDENT) == 24
    grid = Grid(0, parse_instant("2026-11-25T12:00:00Z"), parse_duration("PT0S"))
    (recent,) = (await store.history.aggregates("", {"urn:meter:1": grid},
                                                SeriesFilter(frozenset({RESIDENT})), Window(),
                                                ["totalCount"]))["urn:meter:1"]
    assert recent.values["totalCount"] == 24


async def test_aggregates_expire_too(store: EntityStore) -> None:
    rule = RetentionRule(raw=parse_duration("P1D"), attr=POWER,
                         aggregate=parse_duration("PT1H"),
                         keep_aggregates=parse_duration("P5D"))
    (report,) = await Retention(store.history, FixedClock(), [rule]).run()
    assert (report.deleted, report.periods, report.expired) == (216, 216, 120)


def test_an_aggregate_period_must_have_a_fixed_length() -> None:
    with pytest.raises(BadRequestData):
        RetentionRule(raw=parse_duration("P1D"), aggregate=parse_duration("P1M"))


def _whole_range(timerel: str | None = None, time_at: int | None = None) -> TemporalQuery:
    window = Window(start=None, end=time_at) if timerel == "before" else Window()
    return TemporalQuery(window=window, timerel=timerel, time_at=time_at,
                         representation="aggregatedValues", methods=("totalCount", "sum"),
                         period=parse_duration("PT0S"))


async def test_aggregated_queries_without_a_start_count_the_folded_periods(
        store: EntityStore) -> None:
    rule = RetentionRule(raw=parse_duration("P3D"), attr=POWER,
                         aggregate=parse_duration("P1D"))
    await Retention(store.history, FixedClock(), [rule]).run()
    temporal = TemporalService(store.history, FixedClock())
    everything = SeriesFilter(frozenset({POWER}))
    for query in (_whole_range(), _whole_range("before", parse_instant(
            "2026-11-25T12:00:00Z"))):
        answer, _ = await temporal.retrieve("", "urn:meter:1", query, everything)
        (whole,) = answer.buckets
        assert whole.values == {"totalCount": 240, "sum": sum(range(1, 241))}


async def test_an_entity_whose_raw_history_is_all_folded_still_has_aggregates(
        store: EntityStore) -> None:
    rule = RetentionRule(raw=parse_duration("PT1S"), attr=POWER,
                         aggregate=parse_duration("P1D"))
    await Retention(store.history, FixedClock(), [rule]).run()
    assert await count(store, POWER) == 0
    temporal = TemporalService(store.history, FixedClock())
    page = await temporal.query("", EntityQuery(Selection(), None, None), _whole_range(),
                                SeriesFilter(frozenset({POWER})), 0, 10, False)
    (entity,) = page.entities
    assert entity.buckets[0].values["totalCount"] == 240
