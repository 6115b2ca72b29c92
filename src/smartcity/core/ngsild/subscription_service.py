"""Subscriptions over the store, with an in-memory registry the matcher reads.

Every subscription of every tenant is held in memory (loaded at start-up) so that
matching an entity change never reads the database; each create, update and delete
writes through to the store and then tells the listeners. When other workers share the
store, ``refresh`` reloads the registry once the store says subscriptions changed.
Delivery counters are added to the store's totals as deltas, so workers delivering
for the same subscription never overwrite each other's counts or its settings.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from smartcity.core.clock import Clock, timestamp
from smartcity.core.ngsild.errors import AlreadyExists, NonexistentTenant, ResourceNotFound
from smartcity.core.ngsild.storage import (
    DEFAULT_TENANT,
    STATUS_COUNTS,
    STATUS_TIMES,
    EntityStore,
    with_status,
)
from smartcity.core.ngsild.subscription_model import Subscription

# Called with (record, tenant, id) after a change; record is None after a delete.
SAVE_EVERY = 1.0  # seconds between stores of one subscription's delivery counters
Listener = Callable[[Subscription | None, str, str], None]


class SubscriptionService:
    def __init__(self, store: EntityStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self._registry: dict[tuple[str, str], Subscription] = {}
        self._listeners: list[Listener] = []
        self._unsaved: dict[tuple[str, str], dict[str, Any]] = {}  # status deltas
        self._saved_at: dict[tuple[str, str], float] = {}
        self._version: int | None = None

    def now(self) -> str:
        return timestamp(self.clock.now())

    async def load(self) -> None:
        """Fill the registry from the store (at start-up)."""
        self._version = (await self.store.cache_versions()).get("subscriptions", 0)
        self._registry = {(r["tenant"], r["id"]): r for r in await self.store.subscriptions()}

    async def refresh(self, version: int) -> None:
        """Reload the registry unless it is at ``version`` (the store's, see
        ``cache_versions``), telling the listeners what changed; this worker's unsaved
        counts stay on top."""
        if version == self._version:
            return
        stored_records = await self.store.subscriptions()
        # Built aside and swapped in at once: requests served meanwhile see the old one.
        before, registry = self._registry, {}
        for stored in stored_records:
            key = (stored["tenant"], stored["id"])
            registry[key] = with_status(stored, self._unsaved.get(key, {}))
        self._registry, self._version = registry, version
        for key, record in registry.items():
            if before.get(key) != record:
                self._changed(record, *key)
        for key in before.keys() - registry.keys():
            self._changed(None, *key)

    def on_change(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def records(self) -> Iterator[Subscription]:
        """Every subscription of every tenant, expired and paused ones included."""
        return iter(list(self._registry.values()))

    def _changed(self, record: Subscription | None, tenant: str, sub_id: str) -> None:
        for listener in self._listeners:
            listener(record, tenant, sub_id)

    async def create(self, tenant: str, record: Subscription) -> Subscription:
        key = (tenant, record["id"])
        # The store decides: another worker may have created it a moment ago.
        if key in self._registry or not await self.store.add_subscription(
                settings_of(record)):
            raise AlreadyExists(f"Subscription {record['id']} already exists")
        self._registry[key] = record
        self._changed(record, tenant, record["id"])
        return record

    async def _check_tenant(self, tenant: str) -> None:
        # A tenant exists once it holds entities or subscriptions (clause 4.15).
        if tenant == DEFAULT_TENANT or any(t == tenant for t, _ in self._registry):
            return
        if not await self.store.has_tenant(tenant):
            raise NonexistentTenant(f"Tenant {tenant!r} does not exist")

    async def get(self, tenant: str, sub_id: str) -> Subscription:
        record = self._registry.get((tenant, sub_id))
        if record is not None and self.store.shared:
            # Other workers count deliveries too: the store holds the totals.
            stored = await self.store.subscription(tenant, sub_id)
            record = None if stored is None else {
                **record, **_status(with_status(stored, self._unsaved.get((tenant, sub_id),
                                                                          {})))}
        if record is None:
            await self._check_tenant(tenant)
            raise ResourceNotFound(f"Subscription {sub_id} does not exist")
        return record

    async def list(self, tenant: str, offset: int, limit: int, owner: str | None = None
                   ) -> tuple[list[Subscription], int]:
        """A page of the tenant's subscriptions (of one owner's subject, if given) in
        creation order, and how many there are."""
        await self._check_tenant(tenant)
        mine = sorted((r for (t, _), r in self._registry.items() if t == tenant and (
            owner is None or (r.get("owner") or {}).get("subject") == owner)),
                      key=lambda r: (r["createdAt"], r["id"]))
        return mine[offset:offset + limit], len(mine)

    async def update(self, tenant: str, sub_id: str, record: Subscription) -> Subscription:
        await self.get(tenant, sub_id)
        await self.store.save_subscription(settings_of(record))
        self._registry[(tenant, sub_id)] = record
        self._changed(record, tenant, sub_id)
        return record

    async def delete(self, tenant: str, sub_id: str) -> None:
        await self.get(tenant, sub_id)
        await self.store.delete_subscription(tenant, sub_id)
        del self._registry[(tenant, sub_id)]
        self._changed(None, tenant, sub_id)

    async def sending(self, tenant: str, sub_id: str, at: str) -> None:
        """Count a notification as sent (timesSent, lastNotification) as it goes out, so a
        client that got it already sees it counted (clause 5.2.14)."""
        await self._count(tenant, sub_id, {"lastNotification": at, "timesSent": 1})

    async def delivered(self, tenant: str, sub_id: str, ok: bool, at: str) -> None:
        """Record how a sent notification ended: lastSuccess, or timesFailed and
        lastFailure."""
        await self._count(tenant, sub_id, {"lastSuccess": at} if ok else {
            "lastFailure": at, "timesFailed": 1})

    async def _count(self, tenant: str, sub_id: str, delta: dict[str, Any]) -> None:
        """Delivery counters change at once in memory and reach the store at most once a
        second per subscription (and on flush): a write per notification would cost
        more than the notification."""
        key = (tenant, sub_id)
        record = self._registry.get(key)
        if record is None:
            return  # deleted while its notification was on the way
        updated = with_status(record, delta)
        self._registry[key] = updated
        self._changed(updated, *key)
        self._unsaved[key] = with_status(self._unsaved.get(key, {}), delta)
        if time.monotonic() - self._saved_at.get(key, 0.0) >= SAVE_EVERY:
            await self._save(key)

    async def _save(self, key: tuple[str, str]) -> None:
        delta = self._unsaved.pop(key, None)
        self._saved_at[key] = time.monotonic()
        if delta and key in self._registry:
            await self.store.add_subscription_status(*key, delta)

    async def flush_due(self) -> None:
        """Store the delivery counters held back for a second or more, so the totals
        other workers read fall behind by about a second at most."""
        now = time.monotonic()
        for key in [k for k in self._unsaved if now - self._saved_at.get(k, 0.0) >= SAVE_EVERY]:
            await self._save(key)

    async def flush(self) -> None:
        """Store the delivery counters not saved yet (at shutdown)."""
        for key in list(self._unsaved):
            await self._save(key)


def _status(record: Subscription) -> dict[str, Any]:
    return {k: record[k] for k in (*STATUS_COUNTS, *STATUS_TIMES) if k in record}


def settings_of(record: Subscription) -> Subscription:
    """A subscription without its delivery status, as its settings are stored."""
    return {k: v for k, v in record.items() if k not in STATUS_COUNTS + STATUS_TIMES}
