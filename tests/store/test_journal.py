"""Specification of the stores' journals (``append_journal``, ``journal``, ``tallies``) on
SQLite and PostgreSQL: bounded lists of recent events with running counts, the same for
every process that opens the store."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from smartcity.core.ngsild.storage import OVERFLOW, EntityStore
from smartcity.ingest.dead_letters import DeadLetters
from smartcity.store.backend import open_store


@pytest.fixture
async def store(db: str) -> AsyncIterator[EntityStore]:
    opened = await open_store(db)
    yield opened
    await opened.close()


async def test_a_journal_keeps_its_newest_entries_newest_first(store: EntityStore) -> None:
    await store.append_journal("k", [{"n": 1}, {"n": 2}], 3, {}, 10)
    await store.append_journal("k", [{"n": 3}, {"n": 4}], 3, {}, 10)
    assert await store.journal("k", 10) == [{"n": 4}, {"n": 3}, {"n": 2}]
    assert await store.journal("k", 2) == [{"n": 4}, {"n": 3}]
    assert await store.journal("other", 10) == []


async def test_counts_run_on_and_keys_past_the_bound_count_together(
        store: EntityStore) -> None:
    await store.append_journal("k", [], 3, {"a": 2, "b": 1}, 3)
    await store.append_journal("k", [], 3, {"a": 1, "c": 5, "d": 7, "e": 1}, 3)
    assert await store.tallies("k", ["a", "b", "c", "d", "e", OVERFLOW]) == {
        "a": 3, "b": 1, "c": 5, OVERFLOW: 8}


async def test_every_worker_lists_the_same_rejected_measurements(db: str) -> None:
    one, two = await open_store(db), await open_store(db)
    try:
        first, second = DeadLetters(one), DeadLetters(two)
        first.add("2026-11-25T10:00:00Z", "MQTT", "key", "lamp1", "not a number", b"l|x")
        second.add("2026-11-25T10:00:01Z", "HTTP", "key", "lamp1", "not a number", b"l|y")
        await first.flush()
        await second.flush()  # as each worker's background task does
        for letters in (await first.latest(10), await second.latest(10)):
            assert [(d["payload"], d["rejectedFromDevice"]) for d in letters] == [
                ("l|y", 2), ("l|x", 2)]
    finally:
        await one.close()
        await two.close()
