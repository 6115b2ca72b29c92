"""Delivery of notifications from the outbox to subscribers' endpoints.

The write path only records notifications (in the transaction of the change) and wakes
this loop: a slow or dead endpoint never delays a write. Each subscription's
notifications go out in order, one at a time; different subscriptions are served
concurrently, so one slow endpoint never holds up the others. A failed delivery is
retried with backoff, then given up and counted as failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any, Protocol

import orjson

from smartcity.core.clock import Clock, timestamp
from smartcity.core.events import EntityChange
from smartcity.core.ngsild.access import AccessControl, OpenAccess
from smartcity.core.ngsild.context import CORE_CONTEXT_URL
from smartcity.core.ngsild.linked import render_linked, resolve
from smartcity.core.ngsild.matching import (
    Compiled,
    SubscriptionIndex,
    compile_subscription,
    matched,
    notification_body,
    notification_entity,
    notification_view,
    outbox_entries,
    periodic_body,
)
from smartcity.core.ngsild.model import Entity
from smartcity.core.ngsild.query_language import LINKED
from smartcity.core.ngsild.storage import EntityStore, OutboxEntry, Selection
from smartcity.core.ngsild.subscription_model import Subscription, status_of
from smartcity.core.ngsild.subscription_service import settings_of
from smartcity.notify.http import HttpSender
from smartcity.notify.mqtt import MqttSender
from smartcity.security.principal import SYSTEM, Principal, acting_as


def owner_of(record: Subscription) -> Principal:
    """Who a subscription acts for: its owner (kept when made with access control on),
    else the platform."""
    owner = record.get("owner")
    return Principal.from_record(owner) if owner else SYSTEM

log = logging.getLogger(__name__)

CONTEXT_REL = "http://www.w3.org/ns/json-ld#context"
BATCH = 500
STOP_GRACE = 5.0  # seconds deliveries under way get to finish at shutdown


class DeliveryLog(Protocol):
    async def sending(self, tenant: str, subscription_id: str, at: str) -> None:
        """Count one notification as it goes out."""

    async def delivered(self, tenant: str, subscription_id: str, ok: bool, at: str) -> None:
        """Record the outcome of one delivery in the subscription's status fields."""

    async def flush_due(self) -> None:
        """Store the counts held back long enough (called about once a second)."""


Send = Callable[[Subscription, dict[str, Any]], Awaitable[None]]


def notification_context(record: Subscription) -> Any:
    """The @context notifications are written in: the subscription's jsonldContext, else
    the one it was created with (a single URL stands for itself), else the core."""
    context = record.get("jsonldContext") or record.get("context")
    if isinstance(context, list) and len(context) == 1:
        context = context[0]
    return context or CORE_CONTEXT_URL


class Notifier:
    """Matches changes to subscriptions and delivers what the outbox holds."""

    def __init__(self, store: EntityStore, clock: Clock, log_delivery: DeliveryLog,
                 compile_terms: Callable[[Any], Any], *, retries: int = 3,
                 backoff: float = 0.5, timeout: float = 5.0,
                 refresh: Callable[[], Awaitable[None]] | None = None) -> None:
        self.store = store
        # Brings the subscription index up to date with other workers' changes.
        self.refresh = refresh
        self.clock = clock
        self.index = SubscriptionIndex()
        self.local = SubscriptionIndex()
        self._periodic: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._callbacks: dict[tuple[str, str], Callable[[dict[str, Any]], Any]] = {}
        self.log_delivery = log_delivery
        # A subscription notifies only what its owner may read (see _as_owner_sees),
        # and nothing once its owner's account is gone.
        self.access: AccessControl = OpenAccess()
        self.owner_active: Callable[[Principal], bool] = lambda owner: True
        self.compile_terms = compile_terms
        self.retries = retries
        self.backoff = backoff
        self.http = HttpSender(timeout)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._leading = False
        self._in_flight: dict[tuple[str, str], asyncio.Task[bool]] = {}
        self._last_sent: dict[tuple[str, str], float] = {}
        self.mqtt = MqttSender()
        self.senders: dict[str, Send] = {"http": self._post, "https": self._post,
                                         "mqtt": self.mqtt.send, "mqtts": self.mqtt.send}

    # -- subscriptions ---------------------------------------------------------
    def subscription_changed(self, record: Subscription | None, tenant: str,
                             subscription_id: str) -> None:
        key = (tenant, subscription_id)
        before = self.index.get(tenant, subscription_id)
        if record is not None and before is not None \
                and settings_of(before.record) == settings_of(record):
            # Only the delivery counters moved: no recompiling, and a running timer stays.
            self.index.put(replace(before, record=record))
            return
        self._stop_periodic(key)
        if record is None:
            self.index.remove(tenant, subscription_id)
            return
        terms = self.compile_terms(record.get("jsonldContext") or record.get("context"))
        compiled = compile_subscription(record, terms)
        self.index.put(compiled)
        if record.get("timeInterval") and self._leading:
            self._start_periodic(compiled)

    async def _link(self, changes: Sequence[EntityChange], levels: int) -> list[Entity]:
        """Give each changed entity the entities its relationships reach (``LINKED``);
        the entities that got them, for the caller to clean up."""
        if not levels:
            return []
        marked: list[Entity] = []
        tenants = {c.tenant for c in changes}
        for tenant in tenants:
            roots = [c.entity for c in changes if c.tenant == tenant and c.entity is not None]
            reached = await resolve(roots, lambda ids, t=tenant: self.store.get_many(t, ids),
                                    levels)
            shared = {e["id"]: e for e in roots}
            shared.update((entity_id, entity) for entity_id, (entity, _) in reached.items())
            for entity in shared.values():
                entity[LINKED] = shared
            marked.extend(shared.values())
        return marked

    async def outbox_for(self, changes: Sequence[EntityChange]) -> list[OutboxEntry]:
        """The notifications changes call for; joins fetch the linked entities now, so
        the notification tells the state of the moment of the change."""
        now = timestamp(self.clock.now())
        entries = []
        # Subscriptions whose q reads linked entities (rel{attr}) see them through the
        # entities of the changes, for the time of the matching only.
        linked = await self._link(changes, self.index.links)
        try:
            found = list(matched(self.index, changes, now))
        finally:
            for entity in linked:
                entity.pop(LINKED, None)
        for compiled, change, attrs in found:
            if not isinstance(self.access, OpenAccess):
                seen = await self._as_owner_sees(compiled.record, change)
                if seen is None:
                    continue
                change = seen
            notification = compiled.record["notification"]
            data = None
            if notification.get("join") in ("inline", "flat"):
                view = replace(notification_view(compiled.record), join=notification["join"],
                               join_level=int(notification.get("joinLevel") or 1))
                entity = notification_entity(compiled, change, attrs)
                data = await render_linked(
                    [entity], compiled.terms, view,
                    lambda ids, tenant=change.tenant, owner=compiled.record: self._linked(
                        owner, tenant, ids))
            body = notification_body(compiled, change, attrs, now, data)
            entries.append(OutboxEntry(change.tenant, compiled.record["id"],
                                       orjson.dumps(body)))
        return entries

    async def _as_owner_sees(self, record: Subscription, change: EntityChange
                             ) -> EntityChange | None:
        """The change as the subscription's owner may see it; None when they may see
        nothing of it, or nothing of what changed (a notification would tell them that
        something they may not read changed)."""
        owner = owner_of(record)
        if not self.owner_active(owner):
            return None
        with acting_as(owner):
            after = await self.access.reveal(change.tenant, [change.entity]) \
                if change.entity is not None else []
            before = await self.access.reveal(change.tenant, [change.previous]) \
                if change.previous is not None else []
        if not after and not before:
            return None
        if after and before and after[0]["attrs"] == before[0]["attrs"] \
                and after[0]["type"] == before[0]["type"]:
            return None
        return replace(change, entity=after[0] if after else None,
                       previous=before[0] if before else None)

    async def _linked(self, record: Subscription, tenant: str,
                      ids: Sequence[str]) -> dict[str, Entity]:
        found = await self.store.get_many(tenant, ids)
        with acting_as(owner_of(record)):
            return {e["id"]: e for e in await self.access.reveal(tenant, list(found.values()))}

    # -- timeInterval subscriptions -------------------------------------------------
    def _start_periodic(self, compiled: Compiled) -> None:
        task = asyncio.get_running_loop().create_task(self._every(compiled))
        self._periodic[compiled.key] = task

    def _stop_periodic(self, key: tuple[str, str]) -> None:
        task = self._periodic.pop(key, None)
        if task is not None:
            task.cancel()

    async def _every(self, compiled: Compiled) -> None:
        """Send what matches now, every timeInterval seconds, while the subscription is
        active (clause 5.8.4: periodic notifications)."""
        record = compiled.record
        selection = Selection(types=tuple(conj for selector in compiled.selectors
                                          for conj in selector.types) or None)
        while True:
            await asyncio.sleep(record["timeInterval"])
            now = timestamp(self.clock.now())
            owner = owner_of(record)
            if status_of(record, now) != "active" or not self.owner_active(owner):
                continue
            try:
                page = await self.store.query(record["tenant"], selection, None, 0, 2**31,
                                              False)
                with acting_as(owner):
                    shown = await self.access.reveal(record["tenant"], page.entities)
                body = periodic_body(compiled, shown, now)
                send = self.senders.get(record["notification"]["endpoint"]["uri"]
                                        .split(":", 1)[0].lower())
                ok = send is not None
                await self.log_delivery.sending(record["tenant"], record["id"], now)
                if send is not None:
                    await send(record, body)
            except Exception as exc:
                log.info("periodic notification for %s failed: %s", record["id"], exc)
                ok = False
            await self.log_delivery.delivered(record["tenant"], record["id"], ok, now)

    # -- in-process subscribers ------------------------------------------------------
    def listen(self, record: Subscription, callback: Callable[[dict[str, Any]], Any]) -> None:
        """Call ``callback`` with the Notification of every committed change that
        matches ``record`` (a subscription in the internal form, see subscription_model):
        the same matching as for endpoints, for the platform's own services.
        """
        terms = self.compile_terms(record.get("context"))
        self.local.put(compile_subscription(record, terms))
        self._callbacks[(record["tenant"], record["id"])] = callback

    def unlisten(self, tenant: str, subscription_id: str) -> None:
        self.local.remove(tenant, subscription_id)
        self._callbacks.pop((tenant, subscription_id), None)

    async def changes_committed(self, changes: Sequence[EntityChange]) -> None:
        """Event-bus handler: hand matching changes to in-process subscribers."""
        for entry in outbox_entries(self.local, changes, lambda: timestamp(self.clock.now())):
            callback = self._callbacks.get((entry.tenant, entry.subscription_id))
            if callback is None:
                continue
            try:
                result = callback(orjson.loads(entry.payload))
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                log.exception("in-process subscriber %s failed", entry.subscription_id)

    # -- delivery loop -----------------------------------------------------------
    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def lead(self) -> None:
        """Send periodic (timeInterval) notifications: one process of those sharing the
        store does, or each would send them."""
        self._leading = True
        for compiled in self.index.all():
            if compiled.record.get("timeInterval") and compiled.key not in self._periodic:
                self._start_periodic(compiled)

    def follow(self) -> None:
        """Leave periodic notifications to another process."""
        self._leading = False
        for key in list(self._periodic):
            self._stop_periodic(key)

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._periodic.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # Deliveries under way may finish (and leave the outbox) for a few seconds; one
        # retrying a dead endpoint is cut short: its notifications stay for next time.
        flying = list(self._in_flight.values())
        if flying:
            _, late = await asyncio.wait(flying, timeout=STOP_GRACE)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        await self.http.close()
        await self.mqtt.close()

    async def _run(self) -> None:
        while True:
            try:
                await self.drain()
                await self.log_delivery.flush_due()
            except Exception:
                log.exception("notification delivery failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=1.0)
            self._wake.clear()

    async def drain(self) -> None:
        """Hand each subscription with pending notifications to its own delivery task."""
        if self.refresh is not None:
            await self.refresh()
        # Every subscription with something to send, not just those of the oldest rows:
        # a long queue for a dead endpoint must not hold the others back.
        for key in await self.store.pending_subscriptions(BATCH):
            if key in self._in_flight:
                continue
            task = asyncio.get_running_loop().create_task(self._deliver_all(key))
            self._in_flight[key] = task
            task.add_done_callback(lambda done, key=key: self._finished(key, done))

    async def settle(self, tenant: str, subscription_id: str, wait: float = 0.5) -> None:
        """Let a delivery under way for the subscription finish (for at most ``wait``
        seconds), so its status fields are current when it is read."""
        task = self._in_flight.get((tenant, subscription_id))
        if task is not None:
            with contextlib.suppress(Exception):  # a time-out or a failed delivery alike
                await asyncio.wait_for(asyncio.shield(task), wait)

    def _finished(self, key: tuple[str, str], task: asyncio.Task[bool]) -> None:
        self._in_flight.pop(key, None)
        # More may have queued up behind this subscription; when another worker held it,
        # the next round comes soon enough (a wake-up now would spin on its lock).
        if task.cancelled() or task.exception() is not None or task.result():
            self.wake()

    async def _deliver_all(self, key: tuple[str, str]) -> bool:
        """Deliver a subscription's pending notifications in order, unless another worker
        is delivering them (False: it takes the newer ones too, once done)."""
        async with self.store.exclusive(f"delivery\n{key[0]}\n{key[1]}") as held:
            if not held:
                return False
            # Read under the lock: what another worker delivered before is gone by now.
            entries = await self.store.pending_notifications(BATCH, key)
            # Delivered entries leave the outbox together, in one transaction: a crash in
            # between sends some again (at least once), never loses one.
            delivered: list[int] = []
            try:
                for entry in entries:
                    await self._deliver(key, entry)
                    delivered.append(entry.number)
            finally:
                if delivered:
                    await self.store.drop_notifications(delivered)
        return True

    async def _deliver(self, key: tuple[str, str], entry: OutboxEntry) -> None:
        compiled = self.index.get(*key)
        if compiled is None:
            return  # the subscription is gone: nothing to tell anyone
        record = compiled.record
        throttling = record.get("throttling")
        loop = asyncio.get_running_loop()
        if throttling and loop.time() - self._last_sent.get(key, -1e18) < throttling:
            return
        body = orjson.loads(entry.payload)
        scheme = record["notification"]["endpoint"]["uri"].split(":", 1)[0].lower()
        send = self.senders.get(scheme)
        await self.log_delivery.sending(key[0], key[1], timestamp(self.clock.now()))
        ok = False
        for attempt in range(self.retries):
            if send is None:
                break
            try:
                await send(record, body)
                ok = True
                break
            except Exception as exc:  # any failure of the endpoint counts the same
                log.info("notification for %s failed (attempt %d): %s", key[1], attempt + 1,
                         exc)
                await asyncio.sleep(self.backoff * 2 ** attempt)
        self._last_sent[key] = loop.time()
        await self.log_delivery.delivered(key[0], key[1], ok, timestamp(self.clock.now()))

    async def _post(self, record: Subscription, body: dict[str, Any]) -> None:
        endpoint = record["notification"]["endpoint"]
        accept = endpoint.get("accept", "application/json")
        context = notification_context(record)
        headers = {info["key"]: info["value"] for info in endpoint.get("receiverInfo") or ()}
        if accept == "application/ld+json":
            # Each entity of a JSON-LD notification carries its @context (clause 5.3.1).
            body = {**body, "data": [{**e, "@context": context} for e in body["data"]]}
            headers["Content-Type"] = "application/ld+json"
        else:
            headers["Content-Type"] = "application/json"
            link = context if isinstance(context, str) else CORE_CONTEXT_URL
            headers["Link"] = f'<{link}>; rel="{CONTEXT_REL}"; type="application/ld+json"'
        if record.get("tenant"):
            headers["NGSILD-Tenant"] = record["tenant"]
        await self.http.post(endpoint["uri"], orjson.dumps(body), headers)
