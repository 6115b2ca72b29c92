"""Subscriptions over the store, with an in-memory registry the matcher reads.

Every subscription of every tenant is held in memory (loaded once at start-up) so that
matching an entity change never reads the database; each create, update and delete
writes through to the store and then tells the listeners.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from smartcity.core.clock import Clock, timestamp
from smartcity.core.ngsild.errors import AlreadyExists, NonexistentTenant, ResourceNotFound
from smartcity.core.ngsild.storage import DEFAULT_TENANT, EntityStore
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
        self._unsaved: set[tuple[str, str]] = set()
        self._saved_at: dict[tuple[str, str], float] = {}

    def now(self) -> str:
        return timestamp(self.clock.now())

    async def load(self) -> None:
        """Fill the registry from the store (once, at start-up)."""
        self._registry = {(r["tenant"], r["id"]): r for r in await self.store.subscriptions()}

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
        if key in self._registry:
            raise AlreadyExists(f"Subscription {record['id']} already exists")
        await self.store.save_subscription(record)
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
        if record is None:
            await self._check_tenant(tenant)
            raise ResourceNotFound(f"Subscription {sub_id} does not exist")
        return record

    async def list(self, tenant: str, offset: int, limit: int
                   ) -> tuple[list[Subscription], int]:
        """A page of the tenant's subscriptions in creation order, and how many there are."""
        await self._check_tenant(tenant)
        mine = sorted((r for (t, _), r in self._registry.items() if t == tenant),
                      key=lambda r: (r["createdAt"], r["id"]))
        return mine[offset:offset + limit], len(mine)

    async def update(self, tenant: str, sub_id: str, record: Subscription) -> Subscription:
        await self.get(tenant, sub_id)
        await self.store.save_subscription(record)
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
        record = self._registry.get((tenant, sub_id))
        if record is not None:
            await self._count(record, {"lastNotification": at,
                                       "timesSent": record.get("timesSent", 0) + 1})

    async def delivered(self, tenant: str, sub_id: str, ok: bool, at: str) -> None:
        """Record how a sent notification ended: lastSuccess, or timesFailed and
        lastFailure."""
        record = self._registry.get((tenant, sub_id))
        if record is None:
            return  # deleted while its notification was on the way
        await self._count(record, {"lastSuccess": at} if ok else {
            "lastFailure": at, "timesFailed": record.get("timesFailed", 0) + 1})

    async def _count(self, record: Subscription, counters: dict[str, Any]) -> None:
        """Delivery counters change at once in memory and reach the store at most once a
        second per subscription (and on flush): a write per notification would cost
        more than the notification."""
        key = (record["tenant"], record["id"])
        updated = {**record, **counters}
        self._registry[key] = updated
        self._changed(updated, *key)
        self._unsaved.add(key)
        if time.monotonic() - self._saved_at.get(key, 0.0) >= SAVE_EVERY:
            await self._save(key)

    async def _save(self, key: tuple[str, str]) -> None:
        self._unsaved.discard(key)
        self._saved_at[key] = time.monotonic()
        record = self._registry.get(key)
        if record is not None:
            await self.store.save_subscription(record)

    async def flush(self) -> None:
        """Store the delivery counters not saved yet (at shutdown)."""
        for key in list(self._unsaved):
            await self._save(key)
