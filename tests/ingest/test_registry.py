"""Specification of the device registry: provisioning kept in the store, caught up with
other workers' changes, and a fleet provisioned one by one without a reload each."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from smartcity.core.ngsild.errors import AlreadyExists
from smartcity.core.ngsild.storage import EntityStore
from smartcity.ingest.provisioning import Device, ServiceGroup
from smartcity.ingest.registry import DeviceRegistry, UnknownDevice
from smartcity.store.backend import open_store


class CountingStore:
    """A store that counts how often the registry reads all its records."""

    def __init__(self, store: EntityStore) -> None:
        self.store = store
        self.reads = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def records(self, kind: str) -> list[dict[str, Any]]:
        self.reads += 1
        return await self.store.records(kind)


@pytest.fixture
async def store(db: str) -> AsyncIterator[EntityStore]:
    opened = await open_store(db)
    yield opened
    await opened.close()


async def test_a_fleet_provisioned_one_by_one_is_not_reloaded_each_time(
        store: EntityStore) -> None:
    counting = CountingStore(store)
    registry = DeviceRegistry(counting)  # type: ignore[arg-type]
    await registry.reload()
    await registry.add_groups("city", "/", [ServiceGroup(apikey="k")])
    reads = counting.reads
    for n in range(50):
        await registry.add_devices("city", "/", [Device(device_id=f"d{n}")])
    assert counting.reads == reads
    assert len(registry.devices("city", "/")) == 50
    assert (await registry.resolve("k", "d7")).device.device_id == "d7"


async def test_a_worker_sees_devices_another_worker_provisioned(store: EntityStore) -> None:
    mine, theirs = DeviceRegistry(store), DeviceRegistry(store)
    for registry in (mine, theirs):
        await registry.reload()
    await theirs.add_groups("city", "/", [ServiceGroup(apikey="k", autoprovision=False)])
    await theirs.add_devices("city", "/", [Device(device_id="lamp")])
    # The store's versions tell the other worker its registry is behind.
    versions = await store.cache_versions()
    assert any(versions.get(kind, 0) != mine.versions.get(kind) for kind in mine.kinds)
    await mine.reload()
    assert (await mine.resolve("k", "lamp")).tenant == "city"
    with pytest.raises(AlreadyExists):
        await mine.add_devices("city", "/", [Device(device_id="lamp")])
    await theirs.delete_device("city", "lamp")
    await mine.reload()
    with pytest.raises(UnknownDevice):
        await mine.resolve("k", "lamp")
