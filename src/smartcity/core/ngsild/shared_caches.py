"""What a worker caches of records other workers may change: subscriptions (the
matcher's index) and @contexts (documents and compiled term maps).

Each save or delete of such a record moves its kind's version in the store, in the
same transaction; a worker compares versions (one small read) before it serves a
request or delivers notifications, and reloads a kind whose version moved. A store
written by one process alone (SQLite) has nothing to compare.
"""

from __future__ import annotations

from typing import Protocol

from smartcity.core.ngsild.context import ContextCompiler
from smartcity.core.ngsild.context_registry import ContextRegistry
from smartcity.core.ngsild.storage import EntityStore
from smartcity.core.ngsild.subscription_service import SubscriptionService


class RecordCache(Protocol):
    """What a platform service caches of its records."""

    kinds: tuple[str, ...]
    versions: dict[str, int]  # the store's version of each kind the cache holds

    async def reload(self) -> None:
        """Read the records again (and the versions, before them)."""


class SharedCaches:
    def __init__(self, store: EntityStore, subscriptions: SubscriptionService,
                 contexts: ContextRegistry, compiler: ContextCompiler) -> None:
        self.store = store
        self.subscriptions = subscriptions
        self.contexts = contexts
        self.compiler = compiler
        self._contexts_version: int | None = None
        self._watched: list[RecordCache] = []

    def watch(self, cache: RecordCache) -> None:
        """Reload ``cache`` when the store's versions of its kinds of records
        (``EntityStore.records``) are not the ones it holds, and once by ``load``."""
        self._watched.append(cache)

    async def load(self) -> None:
        """Fill the caches at start-up."""
        self._contexts_version = (await self.store.cache_versions()).get("contexts", 0)
        self.contexts.load(await self.store.contexts())
        await self.subscriptions.load()
        for cache in self._watched:
            await cache.reload()

    async def refresh(self) -> None:
        if not self.store.shared:
            return
        versions = await self.store.cache_versions()
        await self.subscriptions.refresh(versions.get("subscriptions", 0))
        version = versions.get("contexts", 0)
        if version != self._contexts_version:
            self._contexts_version = version
            self.contexts.reload(await self.store.contexts())
            self.compiler.forget()
        for cache in self._watched:
            if any(versions.get(kind, 0) != cache.versions.get(kind) for kind in cache.kinds):
                await cache.reload()
