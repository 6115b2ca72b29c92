"""The entity service: NGSI-LD operations over a store, announcing every change.

Inputs are already parsed into the internal form (see ``model``); outputs are
internal entities. Single-entity writes are all or nothing; batch writes commit
the valid items in one transaction and report the others one by one.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from smartcity.core.clock import Clock, SystemClock, timestamp
from smartcity.core.events import EntityChange, EventBus, LocalEventBus, encode_changes
from smartcity.core.ngsild import mutations
from smartcity.core.ngsild.access import AccessControl, OpenAccess
from smartcity.core.ngsild.errors import (
    AccessDenied,
    AlreadyExists,
    BadRequestData,
    Conflict,
    NgsiLdError,
    NonexistentTenant,
    ResourceNotFound,
)
from smartcity.core.ngsild.history import History
from smartcity.core.ngsild.history import from_changes as history_of
from smartcity.core.ngsild.instants import parse_instant
from smartcity.core.ngsild.linked import resolve
from smartcity.core.ngsild.model import Entity, Instance, value_of
from smartcity.core.ngsild.mutations import AttrOutcome
from smartcity.core.ngsild.normalize import NULL
from smartcity.core.ngsild.ordering import sort_entities
from smartcity.core.ngsild.query import EntityQuery, LinkedFilter
from smartcity.core.ngsild.query_language import LINKED
from smartcity.core.ngsild.storage import DEFAULT_TENANT, EntityStore, OutboxEntry, Page, Write
from smartcity.security.principal import SYSTEM, acting_as

_RETRIES = 5
_BATCH_RETRIES = 10
TypeGate = frozenset[str] | None
# What a batch step gives: the new entity, or it with the error to report for the entity.
Applied = Entity | tuple[Entity, NgsiLdError]


@dataclass
class BatchResult:
    success: list[str] = field(default_factory=list)
    errors: list[tuple[str, NgsiLdError]] = field(default_factory=list)
    created: list[str] = field(default_factory=list)

    def fail(self, entity_id: str, error: NgsiLdError) -> None:
        self.errors.append((entity_id, error))


class EntityService:
    def __init__(self, store: EntityStore, bus: EventBus | None = None,
                 clock: Clock | None = None) -> None:
        self.store = store
        self.bus = bus or LocalEventBus()
        self.clock = clock or SystemClock()
        self._tenants: set[str] = {DEFAULT_TENANT}
        # Set by the subscription matcher: the outbox entries a list of changes calls for,
        # and a wake-up for the notifier once they are committed.
        self.notifications: Callable[[Sequence[EntityChange]],
                                     Awaitable[list[OutboxEntry]]] | None = None
        self.on_outbox: Callable[[], None] | None = None
        # Read-modify-write cycles of this process run one at a time, so concurrent
        # requests never race on an entity. A store shared with other processes checks
        # every write (``expect``) and the write is tried again on fresh reads: then
        # this process's requests need not wait for each other either.
        self._shared = bool(getattr(store, "shared", False))
        self._writing: contextlib.AbstractAsyncContextManager[Any] = \
            contextlib.nullcontext() if self._shared else asyncio.Lock()
        self._entity_locks: dict[tuple[str, str], tuple[asyncio.Lock, int]] = {}
        # Every write adds the attribute instances it touched to the history.
        self.keep_history = True
        self.access: AccessControl = OpenAccess()
        # Told of each committed write (the audit log of callers' acts).
        self.written: Callable[[str, Sequence[EntityChange]], None] | None = None

    async def require_tenant(self, tenant: str) -> None:
        """Operations other than creation need an existing tenant (clause 5.5.10)."""
        if tenant in self._tenants:
            return
        if not await self.store.has_tenant(tenant):
            raise NonexistentTenant(f"Tenant {tenant!r} does not exist")
        self._tenants.add(tenant)

    def now(self) -> str:
        return timestamp(self.clock.now())

    @contextlib.asynccontextmanager
    async def _one(self, tenant: str, entity_id: str) -> AsyncIterator[None]:
        """Write one entity: this process's writes of it take turns (with a shared store,
        writes of other entities go on meanwhile)."""
        if not self._shared:
            async with self._writing:
                yield
            return
        key = (tenant, entity_id)
        lock, users = self._entity_locks.get(key, (asyncio.Lock(), 0))
        self._entity_locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._entity_locks[key]
            if users == 1:
                del self._entity_locks[key]
            else:
                self._entity_locks[key] = (lock, users - 1)

    # -- single entity -------------------------------------------------------
    async def create(self, tenant: str, entity: Entity) -> Entity:
        """Store a new entity; the service takes ownership of ``entity`` (as of every
        entity handed to a write method) and may change it."""
        async with self._one(tenant, entity["id"]):
            now = self.now()
            stored = mutations.new_entity(entity, now, owned=True)
            await self.access.check_write(tenant, stored, None)
            await self._commit(tenant, [Write("insert", stored["id"], stored)],
                               [("created", stored, None)], now)
        return stored

    async def retrieve(self, tenant: str, entity_id: str, types: TypeGate = None) -> Entity:
        """The entity as the caller may see it; with ``types``, only if it has one of
        them (the type selector)."""
        self.access.require(tenant, "read", what="entities")
        entity = await self._stored(tenant, entity_id, types)
        visible = await self.access.reveal(tenant, [entity])
        if not visible:
            raise AccessDenied(f"You may not read entity {entity_id}")
        return visible[0]

    async def fetch_many(self, tenant: str, entity_ids: Sequence[str]) -> dict[str, Entity]:
        """The entities found of ``entity_ids`` (linked entities of a join), as the
        caller may see them."""
        found = await self.store.get_many(tenant, entity_ids)
        return {e["id"]: e for e in await self.access.reveal(tenant, list(found.values()))}

    async def _stored(self, tenant: str, entity_id: str, types: TypeGate = None) -> Entity:
        """The entity as stored; with ``types``, only if it has one of them."""
        await self.require_tenant(tenant)
        entity = await self.store.get(tenant, entity_id)
        if entity is None or (types and not types.intersection(entity["type"])) \
                or ("expiresAt" in entity and entity["expiresAt"] < self.now()):
            raise ResourceNotFound(f"Entity {entity_id} does not exist")
        return entity

    async def query(self, tenant: str, query: EntityQuery, offset: int, limit: int,
                    count: bool) -> Page:
        """A page of the entities that match, as the caller may see them."""
        query = await self.access.readable_query(tenant, query)
        await self.require_tenant(tenant)
        page = await self._query(tenant, query, offset, limit, count)
        return Page(await self.access.reveal(tenant, page.entities), page.total, page.more)

    async def _query(self, tenant: str, query: EntityQuery, offset: int, limit: int,
                     count: bool) -> Page:
        if not query.order and query.linked is None:
            return await self.store.query(tenant, query.selection, query.predicate, offset,
                                          limit, count)
        # Ordering and linked-entity terms need every match before the page can be cut.
        matches = (await self.store.query(tenant, query.selection, query.predicate, 0,
                                          2**62, False)).entities
        if query.linked is not None:
            matches = await self._linked_matches(tenant, matches, query.linked)
        if query.order:
            matches = sort_entities(matches, query.order)
        return Page(matches[offset:offset + limit], len(matches) if count else None,
                    len(matches) > offset + limit)

    async def _linked_matches(self, tenant: str, candidates: list[Entity],
                              linked: LinkedFilter) -> list[Entity]:
        """The candidates for which a q with linked-entity terms holds."""
        reached = await resolve(candidates, lambda ids: self.fetch_many(tenant, ids),
                                linked.levels)
        shared = {e["id"]: e for e in candidates}
        shared.update((entity_id, entity) for entity_id, (entity, _) in reached.items())
        for entity in shared.values():
            entity[LINKED] = shared
        try:
            return [e for e in candidates if linked.predicate(e)]
        finally:
            for entity in shared.values():
                entity.pop(LINKED, None)

    async def delete(self, tenant: str, entity_id: str, types: TypeGate = None) -> None:
        async with self._one(tenant, entity_id):
            stored = await self._stored(tenant, entity_id, types)
            await self.access.check_write(tenant, None, stored)
            now = self.now()
            await self._commit(tenant, [Write("delete", entity_id)],
                               [("deleted", None, stored)], now)

    async def replace(self, tenant: str, entity_id: str, entity: Entity,
                      types: TypeGate = None) -> None:
        await self._modify(tenant, entity_id,
                           lambda stored, now: mutations.replace_entity(stored, entity, now),
                           types)

    async def merge(self, tenant: str, entity_id: str, patch: Entity,
                    types: TypeGate = None) -> None:
        await self._modify(tenant, entity_id,
                           lambda stored, now: mutations.merge_entity(stored, patch, now), types)

    async def append_attributes(self, tenant: str, entity_id: str, fragment: Entity,
                                overwrite: bool, types: TypeGate = None) -> AttrOutcome:
        outcome = AttrOutcome()

        def apply(stored: Entity, now: str) -> Entity:
            nonlocal outcome
            result, outcome = mutations.append_attributes(stored, fragment, now,
                                                          overwrite=overwrite)
            return result
        await self._modify(tenant, entity_id, apply, types)
        return outcome

    async def update_attributes(self, tenant: str, entity_id: str, fragment: Entity,
                                types: TypeGate = None) -> AttrOutcome:
        outcome = AttrOutcome()

        def apply(stored: Entity, now: str) -> Entity:
            nonlocal outcome
            result, outcome = mutations.update_attributes(stored, fragment, now)
            return result
        await self._modify(tenant, entity_id, apply, types)
        return outcome

    async def partial_update(self, tenant: str, entity_id: str, iri: str,
                             fragment: list[Instance], types: TypeGate = None) -> None:
        await self._modify(tenant, entity_id, lambda stored, now: mutations.partial_update(
            stored, iri, fragment, now), types)

    async def replace_attribute(self, tenant: str, entity_id: str, iri: str,
                                instances: list[Instance], types: TypeGate = None) -> None:
        await self._modify(tenant, entity_id, lambda stored, now: mutations.replace_attribute(
            stored, iri, instances, now), types)

    async def delete_attribute(self, tenant: str, entity_id: str, iri: str,
                               dataset_id: str | None, delete_all: bool,
                               types: TypeGate = None) -> None:
        await self._modify(tenant, entity_id, lambda stored, now: mutations.delete_attribute(
            stored, iri, dataset_id, delete_all, now), types)

    async def _modify(self, tenant: str, entity_id: str,
                      change: Callable[[Entity, str], Entity], types: TypeGate = None) -> Entity:
        async with self._one(tenant, entity_id):
            return await self._modify_once(tenant, entity_id, change, types)

    async def _modify_once(self, tenant: str, entity_id: str,
                           change: Callable[[Entity, str], Entity],
                           types: TypeGate) -> Entity:
        for _ in range(_RETRIES):
            stored = await self._stored(tenant, entity_id, types)
            now = self.now()
            result = change(stored, now)
            if result == stored:
                return stored
            await self.access.check_write(tenant, result, stored)
            try:
                write = Write("replace", entity_id, result, expect=stored["modifiedAt"])
                await self._commit(tenant, [write], [("updated", result, stored)], now)
            except Conflict:
                continue
            return result
        raise Conflict(f"Entity {entity_id} kept changing; try again")

    # -- batches -------------------------------------------------------------
    async def _batch(self, attempt: Callable[[Sequence[Any], BatchResult],
                                             Awaitable[BatchResult]],
                     items: Sequence[Any], result: BatchResult) -> BatchResult:
        """Run a batch; one that lost a race with another writer (an entity changed or
        appeared since it was read, so nothing was written) runs again on fresh reads,
        from the request as it came (an attempt takes ownership of what it is given)."""
        async with self._writing:
            if not self._shared:
                return await attempt(items, result)
            request = orjson.dumps(items)
            for tried in range(_BATCH_RETRIES):
                if tried:
                    # Racing batches that retry at once would collide again: spread them.
                    await asyncio.sleep(random.uniform(0, 0.01 * 2 ** tried))
                trial = BatchResult(list(result.success), list(result.errors),
                                    list(result.created))
                try:
                    done = await attempt(items, trial)
                except (Conflict, AlreadyExists, ResourceNotFound):
                    # Raised by the store: an entity changed, appeared or went away
                    # since it was read (missing ones the batch reports, never raises).
                    items = orjson.loads(request)
                    continue
                result.success, result.errors, result.created = \
                    done.success, done.errors, done.created
                return result
        raise Conflict("The entities of the batch kept changing; try again")

    async def batch_create(self, tenant: str, entities: Sequence[Entity],
                           result: BatchResult) -> BatchResult:
        return await self._batch(
            lambda items, trial: self._batch_create(tenant, items, trial), entities, result)

    async def _batch_create(self, tenant: str, entities: Sequence[Entity],
                            result: BatchResult) -> BatchResult:
        existing = await self.store.get_many(tenant, [e["id"] for e in entities])
        now = self.now()
        writes: list[Write] = []
        changes: list[tuple[str, Entity | None, Entity | None]] = []
        seen: set[str] = set()
        for entity in entities:
            entity_id = entity["id"]
            if entity_id in existing or entity_id in seen:
                result.fail(entity_id, AlreadyExists(f"Entity {entity_id} already exists"))
                continue
            stored = mutations.new_entity(entity, now, owned=True)
            try:
                await self.access.check_write(tenant, stored, None)
            except NgsiLdError as exc:
                result.fail(entity_id, exc)
                continue
            seen.add(entity_id)
            writes.append(Write("insert", entity_id, stored))
            changes.append(("created", stored, None))
            result.success.append(entity_id)
            result.created.append(entity_id)
        await self._commit(tenant, writes, changes, now)
        return result

    async def batch_upsert(self, tenant: str, entities: Sequence[Entity], replace: bool,
                           result: BatchResult) -> BatchResult:
        def apply(stored: Entity | None, entity: Entity, now: str) -> Entity:
            if stored is None:
                return mutations.new_entity(entity, now, owned=True)
            if replace:
                return mutations.replace_entity(stored, entity, now, owned=True)
            merged, _ = mutations.append_attributes(stored, entity, now, owned=True)
            return merged
        return await self._batch_modify(tenant, entities, apply, result, create=True)

    async def batch_update(self, tenant: str, entities: Sequence[Entity], overwrite: bool,
                           result: BatchResult) -> BatchResult:
        def apply(stored: Entity | None, entity: Entity, now: str) -> Applied:
            assert stored is not None
            merged, outcome = mutations.append_attributes(stored, entity, now,
                                                          overwrite=overwrite)
            if outcome.not_updated:
                # The new attributes are written; the entity is reported for the rest.
                return merged, BadRequestData("Not updated: " + "; ".join(
                    f"{name}: {reason}" for name, reason in outcome.not_updated))
            return merged
        return await self._batch_modify(tenant, entities, apply, result, create=False)

    async def batch_merge(self, tenant: str, entities: Sequence[Entity],
                          result: BatchResult) -> BatchResult:
        def apply(stored: Entity | None, entity: Entity, now: str) -> Entity:
            assert stored is not None
            return mutations.merge_entity(stored, entity, now)
        return await self._batch_modify(tenant, entities, apply, result, create=False)

    async def batch_delete(self, tenant: str, entity_ids: Sequence[str],
                           result: BatchResult) -> BatchResult:
        return await self._batch(
            lambda items, trial: self._batch_delete(tenant, items, trial), entity_ids, result)

    async def _batch_delete(self, tenant: str, entity_ids: Sequence[str],
                            result: BatchResult) -> BatchResult:
        await self.require_tenant(tenant)
        existing = await self.store.get_many(tenant, entity_ids)
        now = self.now()
        writes: list[Write] = []
        changes: list[tuple[str, Entity | None, Entity | None]] = []
        for entity_id in entity_ids:
            stored = existing.pop(entity_id, None)
            if stored is None:
                result.fail(entity_id, ResourceNotFound(f"Entity {entity_id} does not exist"))
                continue
            try:
                await self.access.check_write(tenant, None, stored)
            except NgsiLdError as exc:
                existing[entity_id] = stored  # a repeat of the id is refused alike
                result.fail(entity_id, exc)
                continue
            writes.append(Write("delete", entity_id))
            changes.append(("deleted", None, stored))
            result.success.append(entity_id)
        await self._commit(tenant, writes, changes, now)
        return result

    async def _batch_modify(self, tenant: str, entities: Sequence[Entity],
                            apply: Callable[[Entity | None, Entity, str], Applied],
                            result: BatchResult, *, create: bool) -> BatchResult:
        return await self._batch(lambda items, trial: self._batch_modify_locked(
            tenant, items, apply, trial, create=create), entities, result)

    async def _batch_modify_locked(self, tenant: str, entities: Sequence[Entity],
                                   apply: Callable[[Entity | None, Entity, str], Applied],
                                   result: BatchResult, *, create: bool) -> BatchResult:
        if not create:
            await self.require_tenant(tenant)
        existing = await self.store.get_many(tenant, [e["id"] for e in entities])
        now = self.now()
        current: dict[str, Entity] = dict(existing)
        order: list[str] = []
        partly: set[str] = set()
        # Each application is a change of its own (an entity given twice changes twice:
        # both are notified and kept in history); the store gets the final state once.
        changes: list[tuple[str, Entity | None, Entity | None]] = []
        for entity in entities:
            entity_id = entity["id"]
            stored = current.get(entity_id)
            if stored is None and not create:
                result.fail(entity_id, ResourceNotFound(f"Entity {entity_id} does not exist"))
                continue
            try:
                applied = apply(stored, entity, now)
                await self.access.check_write(
                    tenant, applied[0] if isinstance(applied, tuple) else applied, stored)
            except NgsiLdError as exc:
                result.fail(entity_id, exc)
                continue
            if isinstance(applied, tuple):
                applied, partial = applied
                result.fail(entity_id, partial)
                partly.add(entity_id)
            changes.append(("created" if stored is None else "updated", applied, stored))
            current[entity_id] = applied
            if entity_id not in order:
                order.append(entity_id)
        writes: list[Write] = []
        for entity_id in order:
            before = existing.get(entity_id)
            after = current[entity_id]
            if before is None:
                writes.append(Write("insert", entity_id, after))
                result.created.append(entity_id)
            else:
                writes.append(Write("replace", entity_id, after, expect=before["modifiedAt"]))
            if entity_id not in partly:
                result.success.append(entity_id)
        await self._commit(tenant, writes, changes, now)
        return result

    # -- history given by a client -------------------------------------------
    async def absorb_history(self, tenant: str, entity: Entity, history: History) -> None:
        """Record a temporal representation, and bring the entity's current state up to
        its latest instances: an entity new to the broker is created from them, a known
        one takes each instance newer than the one it holds (of the same datasetId)."""
        async with self._one(tenant, entity["id"]):
            now = self.now()
            stored = await self.store.get(tenant, entity["id"])
            latest = _latest_instances(entity["attrs"], stored)
            writes: list[Write] = []
            changes: list[tuple[str, Entity | None, Entity | None]] = []
            if stored is None and entity.get("type"):
                created = mutations.new_entity({**entity, "attrs": latest}, now, owned=True)
                writes.append(Write("insert", entity["id"], created))
                changes.append(("created", created, None))
            elif stored is not None and (latest or set(entity.get("type", ()))
                                         - set(stored["type"])):
                fragment = {"type": entity.get("type", []), "attrs": latest}
                merged, _ = mutations.append_attributes(stored, fragment, now, owned=True)
                writes.append(Write("replace", entity["id"], merged,
                                    expect=stored["modifiedAt"]))
                changes.append(("updated", merged, stored))
            # Every attribute given is written (to history at least), whether or not
            # the current state takes it.
            touched = _with_history(stored, entity)
            await self.access.check_write(tenant, touched, stored)
            if not writes:
                await self.store.history.record(tenant, history, parse_instant(now))
                if self.written is not None:
                    self.written(tenant, [EntityChange("updated", tenant, entity["id"],
                                                       touched, stored, now)])
                return
            await self._commit(tenant, writes, changes, now, history)

    async def _commit(self, tenant: str, writes: list[Write],
                      changes: Sequence[tuple[Any, Entity | None, Entity | None]],
                      now: str, history: History | None = None) -> None:
        """Write, with the notifications the changes call for and the history they make
        (unless given), in one transaction; then announce the changes."""
        if not writes:
            return
        events = [EntityChange(kind, tenant, (entity or previous or {})["id"], entity,
                               previous, now) for kind, entity, previous in changes]
        outbox = await self.notifications(events) if self.notifications is not None else ()
        if history is None and self.keep_history:
            history = history_of(changes, now)
        recorded = (encode_changes(events),) if self.bus.durable else ()
        await self.store.write(tenant, writes, outbox, history, parse_instant(now), recorded)
        if self.written is not None:
            self.written(tenant, events)
        if outbox and self.on_outbox is not None:
            self.on_outbox()
        # What other services do about the changes is the platform's own work, not
        # the caller's: it runs with the platform's rights.
        with acting_as(SYSTEM):
            await self.bus.publish(events)


def _with_history(stored: Entity | None, given: Entity) -> Entity:
    """The entity as it would be if it held every instance ``given`` carries: what a
    write of that history changes, for access control."""
    base = stored or {"id": given["id"], "type": [], "attrs": {}}
    attrs = dict(base["attrs"])
    for attr, instances in given["attrs"].items():
        attrs[attr] = [*attrs.get(attr, ()), *instances]
    return {**base, "type": list(dict.fromkeys([*base["type"], *given.get("type", ())])),
            "attrs": attrs}


def _latest_instances(attrs: dict[str, list[Instance]], stored: Entity | None
                      ) -> dict[str, list[Instance]]:
    """Per attribute and datasetId, the latest instance of a temporal representation,
    when it is newer than what ``stored`` holds; NGSI-LD null instances stay history."""
    latest: dict[str, list[Instance]] = {}
    for iri, instances in attrs.items():
        if iri == "scope":
            continue
        held = {i.get("datasetId"): i for i in (stored or {}).get("attrs", {}).get(iri, ())}
        newest: dict[str | None, Instance] = {}
        for inst in instances:
            key = inst.get("datasetId")
            known = newest.get(key)
            if known is None or _observed(inst) >= _observed(known):
                newest[key] = inst
        fresh = [copy.deepcopy(i) for key, i in newest.items()
                 if value_of(i) != NULL and (key not in held or _observed(i) >= _observed(
                     held[key]))]
        if fresh:
            latest[iri] = fresh
    return latest


def _observed(instance: Instance) -> int:
    observed = instance.get("observedAt")
    return parse_instant(observed) if isinstance(observed, str) else 0
