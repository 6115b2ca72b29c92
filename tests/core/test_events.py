"""Specification of change events: every committed write is announced on the bus."""

from __future__ import annotations

import itertools
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from smartcity.core.events import EntityChange, LocalEventBus
from smartcity.core.ngsild.context import ContextCompiler, ContextDocuments
from smartcity.core.ngsild.entities import BatchResult, EntityService
from smartcity.core.ngsild.errors import AlreadyExists, ResourceNotFound
from smartcity.core.ngsild.model import Entity
from smartcity.core.ngsild.normalize import NULL, parse_attribute, parse_entity
from smartcity.store.sqlite import SqliteStore

CORE = ContextCompiler(ContextDocuments()).core
D = "https://uri.etsi.org/ngsi-ld/default-context/"


class Recorder:
    def __init__(self) -> None:
        self.changes: list[EntityChange] = []
        self.calls = 0

    def __call__(self, changes: Sequence[EntityChange]) -> None:
        self.calls += 1
        self.changes.extend(changes)

    def take(self) -> list[EntityChange]:
        taken, self.changes = self.changes, []
        return taken


@pytest.fixture
async def service() -> AsyncIterator[EntityService]:
    store = SqliteStore(":memory:")
    yield EntityService(store, bus=LocalEventBus())
    await store.close()


@pytest.fixture
def events(service: EntityService) -> Recorder:
    recorder = Recorder()
    service.bus.subscribe(recorder)
    return recorder


def lamp(entity_id: str = "urn:x:1", **attrs: Any) -> Entity:
    return parse_entity({"id": entity_id, "type": "Streetlight", "power": "on", **attrs}, CORE)


def fragment(**attrs: Any) -> Entity:
    return parse_entity(attrs, CORE, require_id=False, require_type=False, for_update=True)


def power(entity: Entity | None) -> Any:
    assert entity is not None
    return entity["attrs"][D + "power"][0]["value"] if D + "power" in entity["attrs"] else None


async def test_create_announces_the_new_entity(service: EntityService,
                                               events: Recorder) -> None:
    await service.create("", lamp())
    [change] = events.take()
    assert (change.kind, change.tenant, change.entity_id) == ("created", "", "urn:x:1")
    assert change.previous is None
    assert change.entity is not None and change.entity["createdAt"] == change.at
    assert power(change.entity) == "on"


async def test_updates_announce_the_entity_before_and_after(service: EntityService,
                                                            events: Recorder) -> None:
    await service.create("", lamp())
    events.take()
    await service.update_attributes("", "urn:x:1", fragment(power="off"))
    [change] = events.take()
    assert (change.kind, change.entity_id) == ("updated", "urn:x:1")
    assert power(change.previous) == "on" and power(change.entity) == "off"
    assert change.entity is not None and change.entity["modifiedAt"] == change.at


async def test_every_kind_of_write_is_announced(service: EntityService,
                                                events: Recorder) -> None:
    await service.create("", lamp(colour="warm"))
    await service.append_attributes("", "urn:x:1", fragment(height=9), overwrite=True)
    await service.merge("", "urn:x:1", fragment(colour=NULL))
    await service.partial_update("", "urn:x:1", D + "power",
                                 parse_attribute({"value": "dim"}, D + "power", CORE,
                                                 for_update=True))
    await service.replace_attribute("", "urn:x:1", D + "power",
                                    parse_attribute({"value": "off"}, D + "power", CORE))
    await service.delete_attribute("", "urn:x:1", D + "height", None, False)
    await service.replace("", "urn:x:1", lamp(power="on"))
    await service.delete("", "urn:x:1")
    changes = events.take()
    assert [c.kind for c in changes] == ["created"] + ["updated"] * 6 + ["deleted"]
    assert [power(c.entity) for c in changes[:7]] == ["on", "on", "on", "dim", "off", "off",
                                                      "on"]
    deleted = changes[-1]
    assert deleted.entity is None and power(deleted.previous) == "on"
    for before, after in itertools.pairwise(changes):
        assert after.previous == before.entity


async def test_a_write_that_changes_nothing_announces_nothing(service: EntityService,
                                                              events: Recorder) -> None:
    await service.create("", lamp())
    events.take()
    await service.append_attributes("", "urn:x:1", fragment(power="off"), overwrite=False)
    assert events.take() == []


async def test_a_failed_write_announces_nothing(service: EntityService,
                                                events: Recorder) -> None:
    await service.create("", lamp())
    events.take()
    with pytest.raises(AlreadyExists):
        await service.create("", lamp())
    with pytest.raises(ResourceNotFound):
        await service.update_attributes("", "urn:x:2", fragment(power="off"))
    assert events.take() == []


async def test_changes_carry_their_tenant(service: EntityService, events: Recorder) -> None:
    await service.create("north", lamp())
    await service.delete("north", "urn:x:1")
    assert [(c.kind, c.tenant) for c in events.take()] == [("created", "north"),
                                                            ("deleted", "north")]


async def test_a_batch_is_announced_in_one_publication(service: EntityService,
                                                       events: Recorder) -> None:
    result = await service.batch_create("", [lamp("urn:x:1"), lamp("urn:x:2")], BatchResult())
    assert result.success == ["urn:x:1", "urn:x:2"]
    assert events.calls == 1
    assert [(c.kind, c.entity_id) for c in events.take()] == [("created", "urn:x:1"),
                                                              ("created", "urn:x:2")]


async def test_batch_writes_announce_each_entity_they_commit(service: EntityService,
                                                             events: Recorder) -> None:
    await service.batch_create("", [lamp("urn:x:1"), lamp("urn:x:1")], BatchResult())
    assert [c.entity_id for c in events.take()] == ["urn:x:1"]

    await service.batch_upsert("", [lamp("urn:x:1", power="off"), lamp("urn:x:2")], True,
                               BatchResult())
    upserted = events.take()
    assert [(c.kind, c.entity_id) for c in upserted] == [("updated", "urn:x:1"),
                                                         ("created", "urn:x:2")]
    assert power(upserted[0].previous) == "on" and power(upserted[0].entity) == "off"

    update = parse_entity({"id": "urn:x:2", "power": "dim"}, CORE, require_type=False,
                          for_update=True)
    missing = parse_entity({"id": "urn:x:9", "power": "dim"}, CORE, require_type=False,
                           for_update=True)
    result = await service.batch_update("", [update, missing], True, BatchResult())
    assert [e for e, _ in result.errors] == ["urn:x:9"]
    assert [(c.kind, c.entity_id) for c in events.take()] == [("updated", "urn:x:2")]

    merge = parse_entity({"id": "urn:x:1", "power": NULL}, CORE, require_type=False,
                         for_update=True)
    await service.batch_merge("", [merge], BatchResult())
    [merged] = events.take()
    assert power(merged.previous) == "off" and power(merged.entity) is None

    await service.batch_delete("", ["urn:x:1", "urn:x:2", "urn:x:9"], BatchResult())
    deleted = events.take()
    assert [(c.kind, c.entity_id) for c in deleted] == [("deleted", "urn:x:1"),
                                                        ("deleted", "urn:x:2")]
    assert all(c.entity is None and c.previous is not None for c in deleted)


async def test_a_batch_where_everything_fails_announces_nothing(service: EntityService,
                                                                events: Recorder) -> None:
    await service.batch_delete("", ["urn:x:1"], BatchResult())
    assert events.calls == 0


async def test_a_failing_handler_breaks_neither_the_write_nor_other_handlers(
        caplog: pytest.LogCaptureFixture) -> None:
    store = SqliteStore(":memory:")
    bus = LocalEventBus()
    service = EntityService(store, bus=bus)

    def broken(changes: Sequence[EntityChange]) -> None:
        raise RuntimeError("subscriber down")

    async def broken_async(changes: Sequence[EntityChange]) -> None:
        raise RuntimeError("notifier down")

    recorder = Recorder()
    bus.subscribe(broken)
    bus.subscribe(broken_async)
    bus.subscribe(recorder)
    with caplog.at_level(logging.ERROR):
        await service.create("", lamp())
        await service.batch_create("", [lamp("urn:x:2")], BatchResult())
    assert await store.get("", "urn:x:1") is not None
    assert await store.get("", "urn:x:2") is not None
    assert [c.entity_id for c in recorder.take()] == ["urn:x:1", "urn:x:2"]
    assert "subscriber down" in caplog.text and "notifier down" in caplog.text
    await store.close()


async def test_async_handlers_are_awaited_and_can_unsubscribe(service: EntityService) -> None:
    seen: list[str] = []

    async def handler(changes: Sequence[EntityChange]) -> None:
        seen.extend(c.entity_id for c in changes)

    unsubscribe = service.bus.subscribe(handler)
    await service.create("", lamp("urn:x:1"))
    unsubscribe()
    await service.create("", lamp("urn:x:2"))
    assert seen == ["urn:x:1"]
