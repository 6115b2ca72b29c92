"""Specification of what the PostgreSQL history adds to the common history behaviour:
instances partitioned by calendar month, retention that drops whole months, numbers
kept with their type, and workers registering the same entities at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from smartcity.core.ngsild.durations import parse_duration
from smartcity.core.ngsild.history import History, HistoryEntity, HistoryInstance
from smartcity.core.ngsild.history_storage import Grid, HeadSelection, SeriesFilter, Window
from smartcity.core.ngsild.instants import format_instant, parse_instant
from smartcity.store.postgres import PostgresStore
from tests.conftest import postgres_schema

D = "https://uri.etsi.org/ngsi-ld/default-context/"
SENSOR, SPEED, NAME = D + "Sensor", D + "speed", D + "name"
DAY = 86_400_000_000


def reading(entity_id: str, when: str | int, value: Any, attr: str = SPEED) -> HistoryInstance:
    time = parse_instant(when) if isinstance(when, str) else when
    return HistoryInstance(entity_id, attr, "", time, {
        "type": "Property", "value": value, "observedAt": format_instant(time)})


def history(*instances: HistoryInstance) -> History:
    ids = dict.fromkeys(i.entity_id for i in instances)
    return History([HistoryEntity(entity_id, (SENSOR,)) for entity_id in ids], list(instances))


def daily(entity_id: str, first: str, days: int) -> list[HistoryInstance]:
    start = parse_instant(first)
    return [reading(entity_id, start + n * DAY, n) for n in range(days)]


@pytest.fixture
def url() -> Iterator[str]:
    with postgres_schema() as schema_url:
        yield schema_url


@pytest.fixture
async def store(url: str) -> AsyncIterator[PostgresStore]:
    opened = await PostgresStore.open(url)
    yield opened
    await opened.close()


async def partitions(store: PostgresStore) -> list[str]:
    return [name for (name,) in await store.pool.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'history'::regclass ORDER BY 1")]


async def values(store: PostgresStore, entity_id: str, attr: str = SPEED) -> list[Any]:
    found = await store.history.instances("", [entity_id], SeriesFilter(frozenset({attr})),
                                          Window())
    return [i.body["value"] for i in found.get(entity_id, [])]


async def test_each_month_holding_instances_gets_a_partition_of_its_own(
        store: PostgresStore) -> None:
    instants = ["1969-12-31T23:59:59Z", "1970-01-15T00:00:00Z",
                "2024-01-31T23:59:59.999999Z", "2024-02-01T00:00:00Z",
                "2100-12-31T12:00:00Z"]
    await store.history.record("", history(*(reading("urn:s:1", when, n)
                                             for n, when in enumerate(instants))), 0)
    assert await partitions(store) == ["history_y1969m12", "history_y1970m01",
                                       "history_y2024m01", "history_y2024m02",
                                       "history_y2100m12"]
    assert await values(store, "urn:s:1") == [0, 1, 2, 3, 4]


async def test_retention_over_all_series_drops_old_partitions_and_keeps_newer_rows(
        store: PostgresStore) -> None:
    await store.history.record("", history(*daily("urn:s:1", "2024-01-01T06:00:00Z", 91)), 0)
    everything = Grid(parse_instant("2024-01-01T00:00:00Z"),
                      parse_instant("2024-04-01T00:00:00Z"), parse_duration("PT0S"))
    cut = parse_instant("2024-03-10T00:00:00Z")
    # January (31 days), February (29) and the first 9 days of March, each folded.
    assert await store.history.downsample(None, None, cut, DAY) == (31 + 29 + 9, 69)
    assert await partitions(store) == ["history_y2024m03"]
    assert await values(store, "urn:s:1") == list(range(69, 91))
    (whole,) = (await store.history.aggregates("", {"urn:s:1": everything}, SeriesFilter(),
                                               Window(), ["totalCount", "sum"]))["urn:s:1"]
    assert whole.values == {"totalCount": 91, "sum": sum(range(91))}


async def test_a_month_dropped_by_retention_is_made_again_for_late_instances(
        store: PostgresStore) -> None:
    await store.history.record("", history(*daily("urn:s:1", "2024-01-01T00:00:00Z", 40)), 0)
    await store.history.downsample(None, None, parse_instant("2024-02-01T00:00:00Z"), None)
    await store.history.record("", history(reading("urn:s:1", "2024-01-05T00:00:00Z", -1)),
                               0)
    assert await partitions(store) == ["history_y2024m01", "history_y2024m02"]
    assert (await values(store, "urn:s:1"))[0] == -1


async def test_retention_of_one_attribute_deletes_rows_and_keeps_every_partition(
        store: PostgresStore) -> None:
    await store.history.record("", history(*daily("urn:s:1", "2024-01-01T00:00:00Z", 40),
                                           reading("urn:s:1", "2024-01-02T00:00:00Z", "x",
                                                   attr=NAME)), 0)
    assert await store.history.downsample([SENSOR], SPEED,
                                          parse_instant("2024-02-05T00:00:00Z"), None) == (35, 0)
    assert await partitions(store) == ["history_y2024m01", "history_y2024m02"]
    assert await values(store, "urn:s:1") == list(range(35, 40))
    assert await values(store, "urn:s:1", NAME) == ["x"]


async def test_numbers_come_back_with_their_type_and_every_digit(store: PostgresStore) -> None:
    numbers = [2**53 + 1, -(2**63), 2**63 - 1, 7.0, 7, 0.1, True]
    await store.history.record("", history(*(reading("urn:s:1", 60_000_000 * n, value)
                                             for n, value in enumerate(numbers))), 0)
    found = await values(store, "urn:s:1")
    assert [(v, type(v)) for v in found] == [(v, type(v)) for v in numbers]
    grid = Grid(0, 60_000_000 * len(numbers), parse_duration("PT0S"))
    (bucket,) = (await store.history.aggregates("", {"urn:s:1": grid}, SeriesFilter(),
                                                Window(), ["min", "max"]))["urn:s:1"]
    assert bucket.values == {"min": -(2**63), "max": 2**63 - 1}


async def record_at_once(workers: list[PostgresStore], batches: list[History]) -> list[set[str]]:
    return list(await asyncio.gather(*(store.history.record("", batch, 0)
                                       for store, batch in zip(workers, batches, strict=True))))


async def test_two_workers_registering_the_same_new_entities_and_series_at_once_both_succeed(
        url: str) -> None:
    workers = [await PostgresStore.open(url), await PostgresStore.open(url)]
    try:
        ids = [f"urn:s:{n}" for n in range(50)]
        new_entities = await record_at_once(workers, [history(*(
            reading(entity_id, f"2030-01-0{1 + worker}T00:00:00Z", worker)
            for entity_id in ids)) for worker in range(2)])
        assert sorted(new_entities[0] | new_entities[1]) == sorted(ids)
        assert not new_entities[0] & new_entities[1]
        # Known entities and months, new series: both workers add the same attribute.
        await record_at_once(workers, [history(*(
            reading(entity_id, f"2030-01-0{1 + worker}T00:00:00Z", worker, attr=NAME)
            for entity_id in ids)) for worker in range(2)])
        heads = await workers[0].history.heads("", HeadSelection())
        assert sorted(h.entity_id for h in heads) == sorted(ids)
        for entity_id in ids:
            assert await values(workers[1], entity_id) == [0, 1]
            assert await values(workers[0], entity_id, NAME) == [0, 1]
    finally:
        for store in workers:
            await store.close()
