"""Specification of the batched ingest path: a message the store refuses is blamed alone,
and a database that is away fails the batch as a whole, to be tried again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from smartcity.core.ngsild.context import ContextCompiler, ContextDocuments
from smartcity.core.ngsild.entities import EntityService
from smartcity.core.ngsild.errors import InternalError
from smartcity.core.rate_limit import RateLimit
from smartcity.ingest.dead_letters import DeadLetters
from smartcity.ingest.gateways import GatewayContacts
from smartcity.ingest.ingestor import Ingestor, Message
from smartcity.ingest.provisioning import ServiceGroup
from smartcity.ingest.registry import DeviceRegistry
from smartcity.store.sqlite import SqliteStore


class Refusing(EntityService):
    """An entity service whose store refuses some entities, or all while it is away."""

    away = False

    async def batch_upsert(self, tenant: str, entities: Any, replace: bool,
                           result: Any) -> Any:
        if self.away:
            raise ConnectionError("the database is away")
        if any("poison" in e["id"] for e in entities):
            raise ValueError("the store cannot hold this")
        return await super().batch_upsert(tenant, entities, replace, result)


@pytest.fixture
async def setup() -> AsyncIterator[tuple[Ingestor, Refusing, DeadLetters]]:
    store = SqliteStore(":memory:")
    registry = DeviceRegistry(store)
    await registry.reload()
    await registry.add_groups("", "/", [ServiceGroup(apikey="k", entity_type="Thing")])
    entities = Refusing(store)
    letters = DeadLetters(store)
    ingestor = Ingestor(registry, entities, ContextCompiler(ContextDocuments()).core, letters,
                        GatewayContacts(store), RateLimit(100, 100),
                        transient=lambda exc: isinstance(exc, ConnectionError))
    yield ingestor, entities, letters
    await store.close()


def message(device_id: str) -> Message:
    return Message("MQTT", "k", device_id, "ul", b"t|1", 1_700_000_000_000_000)


async def test_a_message_the_store_refuses_is_blamed_alone(
        setup: tuple[Ingestor, Refusing, DeadLetters]) -> None:
    ingestor, entities, letters = setup
    outcomes = await ingestor.ingest([message("a"), message("poison"), message("b")])
    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], InternalError)
    assert set(await entities.store.get_many("", ["urn:ngsi-ld:Thing:a",
                                                  "urn:ngsi-ld:Thing:b"])) == {
        "urn:ngsi-ld:Thing:a", "urn:ngsi-ld:Thing:b"}
    assert [d["device_id"] for d in await letters.latest(10)] == ["poison"]


async def test_a_database_that_is_away_fails_the_batch_to_be_tried_again(
        setup: tuple[Ingestor, Refusing, DeadLetters]) -> None:
    ingestor, entities, letters = setup
    entities.away = True
    with pytest.raises(ConnectionError):
        await ingestor.ingest([message("a"), message("b")])
    assert await letters.latest(10) == []
    entities.away = False
    assert await ingestor.ingest([message("a"), message("b")]) == [None, None]
