"""Entity change events over NATS JetStream: the event bus of production.

A write records its changes in the store's event outbox, in its own transaction; a
relay hands them to a JetStream stream, one message per change, and forgets them once
the stream has acknowledged them. Workers run the relay in turn (one at a time, so the
stream keeps the order of the outbox), and each message carries an id from the outbox,
so a relay that dies after publishing and before forgetting causes no duplicate.

Handlers (the platform's own services) read the stream through one durable consumer
shared by all workers: each change is handled by one worker, and a change whose handling
was cut short is handled again. While NATS is away writes go on; the outbox keeps the
changes until it is back. Other systems may read the stream with consumers of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

import nats
import orjson
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import StreamConfig
from nats.js.errors import NotFoundError

from smartcity.core.events import EntityChange, Handler, LocalEventBus
from smartcity.core.ngsild.storage import EntityStore

log = logging.getLogger(__name__)

RELAY_BATCH = 200  # outbox rows (writes) per round of the relay
FETCH_BATCH = 256  # messages a worker takes from the stream at once
POLL = 1.0  # seconds between looks at the outbox when nothing woke the relay
KEEP_DAYS = 7  # how long the stream keeps changes for consumers that were away


class JetStreamBus:
    durable = True

    def __init__(self, url: str, store: EntityStore, prefix: str = "smartcity") -> None:
        self.url = url
        self.store = store
        self.subject = f"{prefix}.changes"
        self.stream = f"{prefix.upper().replace('.', '_').replace('-', '_')}_CHANGES"
        self.consumer = f"{prefix}-services"
        self._handlers = LocalEventBus()
        self._wake = asyncio.Event()
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._identity = ""  # the store's, in message ids: outbox numbers repeat elsewhere

    def subscribe(self, handler: Handler) -> Callable[[], None]:
        return self._handlers.subscribe(handler)

    async def publish(self, changes: Sequence[EntityChange]) -> None:
        self._wake.set()  # the store has recorded them; the relay takes them from there

    async def start(self) -> None:
        """Connect in the background: the platform serves while NATS is away."""
        self._identity = hashlib.blake2b((await self.store.identity()).encode(),
                                         digest_size=8).hexdigest()
        self._tasks = [asyncio.create_task(self._connect())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.close()

    async def _connect(self) -> None:
        while True:
            try:
                self._nc = await nats.connect(self.url, max_reconnect_attempts=-1,
                                              reconnect_time_wait=0.5, connect_timeout=2)
                self._js = self._nc.jetstream()
                await self._ensure_stream()
                break
            except Exception as exc:
                log.warning("NATS at %s is not reachable (%s); changes wait in the "
                            "outbox", self.url, exc)
                if self._nc is not None:
                    with contextlib.suppress(Exception):
                        await self._nc.close()
                    self._nc = self._js = None
                await asyncio.sleep(POLL)
        self._tasks += [asyncio.create_task(self._relay()),
                        asyncio.create_task(self._consume())]

    async def _ensure_stream(self) -> None:
        assert self._js is not None
        try:
            await self._js.stream_info(self.stream)
        except NotFoundError:
            await self._js.add_stream(StreamConfig(
                name=self.stream, subjects=[self.subject], max_age=KEEP_DAYS * 86400.0))

    # -- outbox to stream ------------------------------------------------------
    async def _relay(self) -> None:
        failures = 0
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL)
            self._wake.clear()
            try:
                async with self.store.exclusive(f"relay\n{self.stream}") as held:
                    while held and await self._relay_round():
                        pass
                failures = 0
            except Exception as exc:
                failures += 1
                log.warning("relaying changes to NATS failed (%s); they stay in the outbox",
                            exc)
                await asyncio.sleep(min(POLL * failures, 10.0))

    async def _relay_round(self) -> bool:
        """Publish one batch of the outbox and forget it; False when it was empty."""
        assert self._js is not None
        rows = await self.store.pending_events(RELAY_BATCH)
        if not rows:
            return False
        publishing = [self._js.publish(self.subject, orjson.dumps(change),
                                       headers={"Nats-Msg-Id":
                                                f"{self._identity}.{number}.{index}"})
                      for number, events in rows
                      for index, change in enumerate(orjson.loads(events))]
        await asyncio.gather(*publishing)
        await self.store.drop_events([number for number, _ in rows])
        return True

    # -- stream to handlers ------------------------------------------------------
    async def _consume(self) -> None:
        assert self._js is not None
        subscription = None
        while True:
            try:
                if subscription is None:
                    subscription = await self._js.pull_subscribe(
                        self.subject, durable=self.consumer, stream=self.stream)
                messages = await subscription.fetch(FETCH_BATCH, timeout=POLL)
            except nats.errors.TimeoutError:
                continue
            except Exception as exc:
                log.info("reading changes from NATS failed (%s); trying again", exc)
                await asyncio.sleep(POLL)
                continue
            await self._handlers.deliver([change for change in map(_change, messages)
                                          if change is not None])
            for message in messages:
                with contextlib.suppress(Exception):  # unacknowledged: handled again
                    await message.ack()


def _change(message: Any) -> EntityChange | None:
    """The change a message carries; None (logged, then acknowledged so it is not
    redelivered for ever) for one that is not a change of this platform."""
    try:
        return EntityChange(*orjson.loads(message.data))
    except (orjson.JSONDecodeError, TypeError) as exc:
        log.warning("a message on %s is not an entity change (%s); skipped",
                    message.subject, exc)
        return None
