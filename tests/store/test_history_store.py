"""Specification of the history stores (``HistoryStore``) on SQLite and PostgreSQL: series
kept in time order, windows, lastN, aggregation by the database, replacement at the same
instant, deletions, retention's folded periods."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from smartcity.core.ngsild.durations import parse_duration
from smartcity.core.ngsild.history import History, HistoryEntity, HistoryInstance
from smartcity.core.ngsild.history_storage import Grid, HeadSelection, SeriesFilter, Window
from smartcity.core.ngsild.instants import format_instant, parse_instant
from smartcity.core.ngsild.storage import EntityStore
from smartcity.store import postgres_history, sqlite_history
from smartcity.store.backend import open_store

D = "https://uri.etsi.org/ngsi-ld/default-context/"
SENSOR, SPEED, NAME = D + "Sensor", D + "speed", D + "name"
MINUTE = 60_000_000
T0 = parse_instant("2024-01-01T00:00:00Z")


def at(minutes: int) -> int:
    return T0 + minutes * MINUTE


def reading(entity_id: str, minutes: int, value: Any, attr: str = SPEED,
            dataset: str = "") -> HistoryInstance:
    body = {"type": "Property", "value": value, "observedAt": format_instant(at(minutes))}
    return HistoryInstance(entity_id, attr, dataset, at(minutes), body)


def history(entity_id: str, *instances: HistoryInstance) -> History:
    return History([HistoryEntity(entity_id, (SENSOR,))], list(instances))


@pytest.fixture
async def store(db: str) -> AsyncIterator[EntityStore]:
    opened = await open_store(db)
    yield opened
    await opened.close()


ALL_TIME, ALL_SERIES = Window(), SeriesFilter()


async def values(store: EntityStore, entity_id: str, window: Window = ALL_TIME,
                 series: SeriesFilter = ALL_SERIES) -> list[Any]:
    found = await store.history.instances("", [entity_id], series, window)
    return [i.body["value"] for i in found.get(entity_id, [])]


async def test_instances_come_back_in_time_order_whatever_the_order_written(
        store: EntityStore) -> None:
    await store.history.record("", history("urn:s:1", reading("urn:s:1", 5, 50),
                                           reading("urn:s:1", 1, 10),
                                           reading("urn:s:1", 3, 30)), at(10))
    assert await values(store, "urn:s:1") == [10, 30, 50]


async def test_a_window_includes_its_start_and_excludes_its_end(store: EntityStore) -> None:
    await store.history.record("", history("urn:s:1", *(reading("urn:s:1", m, m)
                                                       for m in range(10))), at(10))
    assert await values(store, "urn:s:1", Window(start=at(3), end=at(6))) == [3, 4, 5]


async def test_last_n_keeps_the_latest_instances_in_ascending_order(
        store: EntityStore) -> None:
    await store.history.record("", history("urn:s:1", *(reading("urn:s:1", m, m)
                                                       for m in range(10))), at(10))
    assert await values(store, "urn:s:1", Window(end=at(8), last=3)) == [5, 6, 7]


async def test_an_instance_at_the_same_instant_replaces_the_stored_one(
        store: EntityStore) -> None:
    await store.history.record("", history("urn:s:1", reading("urn:s:1", 1, 10)), at(2))
    await store.history.record("", history("urn:s:1", reading("urn:s:1", 1, 11),
                                           reading("urn:s:1", 2, 20)), at(3))
    assert await values(store, "urn:s:1") == [11, 20]


async def test_integers_and_non_numeric_values_come_back_as_sent(store: EntityStore) -> None:
    relation = HistoryInstance("urn:s:1", D + "owner", "", at(1),
                               {"type": "Relationship", "object": "urn:p:1",
                                "observedAt": "2024-01-01T00:01:00.000Z"})
    await store.history.record("", history("urn:s:1", reading("urn:s:1", 1, 7),
                                           reading("urn:s:1", 2, 7.5),
                                           reading("urn:s:1", 3, {"a": [1]}), relation),
                               at(4))
    found = (await store.history.instances("", ["urn:s:1"], SeriesFilter(), Window()))["urn:s:1"]
    speeds = [i.body["value"] for i in found if i.attr == SPEED]
    assert speeds == [7, 7.5, {"a": [1]}]
    assert isinstance(speeds[0], int)
    assert [i.body for i in found if i.attr != SPEED] == [relation.body]


async def test_series_are_kept_per_dataset_and_selected_by_attribute_and_dataset(
        store: EntityStore) -> None:
    await store.history.record("", history("urn:s:1", reading("urn:s:1", 1, 1),
                                           reading("urn:s:1", 1, 2, dataset="urn:d:b"),
                                           reading("urn:s:1", 1, "x", attr=NAME)), at(2))
    assert await values(store, "urn:s:1", series=SeriesFilter(frozenset({SPEED}))) == [1, 2]
    assert await values(store, "urn:s:1", series=SeriesFilter(
        datasets=frozenset({"urn:d:b"}))) == [2]


async def test_aggregates_per_fixed_period_are_computed_by_the_database(
        store: EntityStore) -> None:
    await store.history.record("", history("urn:s:1", *(reading("urn:s:1", m, m)
                                                       for m in range(120))), at(120))
    grid = Grid(at(0), at(120), parse_duration("PT1H"))
    buckets = (await store.history.aggregates("", {"urn:s:1": grid}, SeriesFilter(), Window(),
                                              ["avg", "min", "max", "totalCount", "sum"]))
    first, second = buckets["urn:s:1"]
    assert (first.start, first.end, second.start) == (at(0), at(60), at(60))
    assert first.values == {"avg": 29.5, "min": 0, "max": 59, "totalCount": 60,
                            "sum": sum(range(60))}
    assert second.values["avg"] == 89.5


async def test_many_short_periods_give_the_same_answers_as_a_scan_per_period(
        store: EntityStore) -> None:
    await store.history.record("", history("urn:s:1", *(reading("urn:s:1", m, m)
                                                       for m in range(0, 3000, 7))), at(3000))
    grid = Grid(at(0), at(3000), parse_duration("PT1M"))
    buckets = (await store.history.aggregates("", {"urn:s:1": grid}, SeriesFilter(), Window(),
                                              ["max", "totalCount"]))["urn:s:1"]
    assert len(buckets) == len(range(0, 3000, 7))
    assert [(b.start, b.values["max"]) for b in buckets[:2]] == [(at(0), 0), (at(7), 7)]


async def test_empty_periods_are_left_out_and_calendar_months_have_their_own_length(
        store: EntityStore) -> None:
    january, march = parse_instant("2024-01-15T00:00:00Z"), parse_instant("2024-03-10T00:00:00Z")
    await store.history.record("", history(
        "urn:s:1", HistoryInstance("urn:s:1", SPEED, "", january, {"type": "Property",
                                                                    "value": 1}),
        HistoryInstance("urn:s:1", SPEED, "", march, {"type": "Property", "value": 3})), 0)
    grid = Grid(parse_instant("2024-01-01T00:00:00Z"), parse_instant("2024-04-01T00:00:00Z"),
                parse_duration("P1M"))
    buckets = (await store.history.aggregates("", {"urn:s:1": grid}, SeriesFilter(), Window(),
                                              ["totalCount"]))["urn:s:1"]
    assert [(format_instant(b.start), format_instant(b.end)) for b in buckets] == [
        ("2024-01-01T00:00:00Z", "2024-02-01T00:00:00Z"),
        ("2024-03-01T00:00:00Z", "2024-04-01T00:00:00Z")]


async def test_aggregating_strings_counts_them_and_orders_them_but_never_sums(
        store: EntityStore) -> None:
    await store.history.record("", history("urn:s:1", reading("urn:s:1", 1, "b"),
                                           reading("urn:s:1", 2, "a"),
                                           reading("urn:s:1", 3, "b")), at(4))
    grid = Grid(at(0), at(4), parse_duration("PT0S"))
    (bucket,) = (await store.history.aggregates(
        "", {"urn:s:1": grid}, SeriesFilter(), Window(),
        ["totalCount", "distinctCount", "min", "max", "sum", "avg", "stddev"]))["urn:s:1"]
    assert bucket.values == {"totalCount": 3, "distinctCount": 2, "min": "a", "max": "b",
                             "sum": None, "avg": None, "stddev": None}


async def test_heads_select_entities_by_type(store: EntityStore) -> None:
    await store.history.record("", history("urn:s:1", reading("urn:s:1", 1, 1)), at(2))
    await store.history.record("", History([HistoryEntity("urn:b:1", (D + "Bus",))]), at(2))
    heads = await store.history.heads("", HeadSelection(types=(frozenset({SENSOR}),)))
    assert [h.entity_id for h in heads] == ["urn:s:1"]


async def test_deleting_an_instance_an_attribute_or_the_entity(store: EntityStore) -> None:
    await store.history.record("", history("urn:s:1", reading("urn:s:1", 1, 1),
                                           reading("urn:s:1", 2, 2),
                                           reading("urn:s:1", 1, "x", attr=NAME)), at(3))
    found = await store.history.instances("", ["urn:s:1"], SeriesFilter(), Window())
    first = next(i for i in found["urn:s:1"] if i.attr == SPEED).instance_id
    assert await store.history.delete_instance("", "urn:s:1", SPEED, first)
    assert not await store.history.delete_instance("", "urn:s:1", SPEED, first)
    assert sorted(map(str, await values(store, "urn:s:1"))) == ["2", "x"]
    assert await store.history.delete_series("", "urn:s:1", NAME, None)
    assert await values(store, "urn:s:1") == [2]
    assert await store.history.delete_entity_history("", "urn:s:1")
    assert await store.history.heads("", HeadSelection(ids=("urn:s:1",))) == []


async def test_a_modified_instance_keeps_its_id_and_records_when_it_changed(
        store: EntityStore) -> None:
    await store.history.record("", history("urn:s:1", reading("urn:s:1", 1, 1)), at(2))
    (stored,) = (await store.history.instances("", ["urn:s:1"], SeriesFilter(),
                                               Window()))["urn:s:1"]
    assert await store.history.replace_instance("", "urn:s:1", SPEED, stored.instance_id,
                                                reading("urn:s:1", 1, 99), at(5))
    (changed,) = (await store.history.instances("", ["urn:s:1"], SeriesFilter(),
                                                Window()))["urn:s:1"]
    assert (changed.instance_id, changed.body["value"]) == (stored.instance_id, 99)
    assert (changed.created, changed.modified) == (at(2), at(5))


async def test_downsampling_deletes_only_older_instances_of_the_chosen_attribute(
        store: EntityStore) -> None:
    await store.history.record("", history("urn:s:1", *(reading("urn:s:1", m, m)
                                                       for m in range(5)),
                                           reading("urn:s:1", 0, "x", attr=NAME)), at(5))
    assert await store.history.downsample([SENSOR], SPEED, at(3), None) == (3, 0)
    assert sorted(map(str, await values(store, "urn:s:1"))) == ["3", "4", "x"]


async def test_folded_periods_still_answer_aggregated_queries(store: EntityStore) -> None:
    await store.history.record("", history("urn:s:1", *(reading("urn:s:1", m, m)
                                                       for m in range(180))), at(180))
    grid = Grid(at(0), at(180), parse_duration("PT1H"))
    methods: list[Any] = ["avg", "min", "max", "totalCount", "stddev"]
    before = (await store.history.aggregates("", {"urn:s:1": grid}, SeriesFilter(), Window(),
                                             methods))["urn:s:1"]
    # The cut falls inside the second hour: that hour is folded in two steps.
    assert await store.history.downsample(None, SPEED, at(90), 60 * MINUTE) == (90, 2)
    assert await store.history.downsample(None, SPEED, at(130), 60 * MINUTE) == (40, 2)
    assert await values(store, "urn:s:1", Window(end=at(135))) == [130, 131, 132, 133, 134]
    after = (await store.history.aggregates("", {"urn:s:1": grid}, SeriesFilter(), Window(),
                                            methods))["urn:s:1"]
    assert [b.start for b in after] == [b.start for b in before]
    for folded, raw in zip(after, before, strict=True):
        assert folded.values == pytest.approx(raw.values)
    assert await store.history.expire_aggregates([SENSOR], None, at(60)) == 1
    remaining = (await store.history.aggregates("", {"urn:s:1": grid}, SeriesFilter(),
                                                Window(), ["totalCount"]))["urn:s:1"]
    assert [b.values["totalCount"] for b in remaining] == [60, 60]


async def test_history_survives_a_restart(db: str) -> None:
    first = await open_store(db)
    await first.history.record("", history("urn:s:1", reading("urn:s:1", 1, 1)), at(2))
    await first.close()
    again = await open_store(db)
    await again.history.record("", history("urn:s:1", reading("urn:s:1", 2, 2)), at(3))
    assert await values(again, "urn:s:1") == [1, 2]
    await again.close()


async def test_a_deleted_history_leaves_no_folded_periods_behind(store: EntityStore) -> None:
    await store.history.record("", history("urn:s:1", *(reading("urn:s:1", m, m)
                                                       for m in range(5))), at(5))
    await store.history.downsample(None, None, at(5), 60 * MINUTE)
    assert await store.history.delete_entity_history("", "urn:s:1")
    await store.history.record("", history("urn:s:2", reading("urn:s:2", 1, 1)), at(5))
    grid = Grid(at(0), at(60), parse_duration("PT0S"))
    (bucket,) = (await store.history.aggregates("", {"urn:s:2": grid}, SeriesFilter(),
                                                Window(), ["totalCount"]))["urn:s:2"]
    assert bucket.values["totalCount"] == 1


async def test_stored_values_are_what_the_instances_hold_for_a_bulk_export(
        store: EntityStore) -> None:
    await store.history.record("", history(
        "urn:s:v", reading("urn:s:v", 3, 7), reading("urn:s:v", 1, 2.5),
        reading("urn:s:v", 2, "fast", attr=NAME), reading("urn:s:v", 4, {"km": 3})), at(10))
    raw = [part async for part in store.history.values("", ["urn:s:v"], ALL_SERIES, at(2),
                                                        None)]
    decoded = [(entity_id, attr, time, num if rest is None else orjson.loads(rest)["value"])
               for entity_id, attr, values in raw for time, num, rest in values]
    assert sorted(decoded, key=lambda row: (row[1], row[2])) == [
        ("urn:s:v", NAME, at(2), "fast"),
        ("urn:s:v", SPEED, at(3), 7), ("urn:s:v", SPEED, at(4), {"km": 3})]
    assert isinstance(next(r[3] for r in decoded if r[2] == at(3)), int)


async def test_a_long_series_is_read_for_export_in_parts_in_time_order(
        store: EntityStore, monkeypatch: pytest.MonkeyPatch) -> None:
    for backend in (sqlite_history, postgres_history):
        monkeypatch.setattr(backend, "VALUES_PER_READ", 10)
    await store.history.record("", history("urn:s:long", *(
        reading("urn:s:long", m, m) for m in reversed(range(25)))), at(30))
    parts = [part async for part in store.history.values("", ["urn:s:long"], ALL_SERIES,
                                                          at(1), at(24))]
    assert [len(values) for _id, _attr, values in parts] == [10, 10, 3]
    assert [num for _id, _attr, values in parts for _time, num, _rest in values] == \
        list(range(1, 24))
