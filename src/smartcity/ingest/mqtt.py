"""Measurements over MQTT, in the topic conventions of the FIWARE IoT Agents:

- ``/json/<apikey>/<device>/attrs`` (JSON), ``/ul/<apikey>/<device>/attrs`` (UltraLight),
  ``/<apikey>/<device>/attrs`` (either; the payload tells which);
- the same with ``/attrs/<measure>``: one measure, its payload the bare value.

The platform is a client of a broker: the embedded listener by default, Mosquitto in
production. Workers share the device traffic through a shared subscription
(``$share/<group>/...``): each message reaches one of them. Messages are taken in batches
(up to ``BATCH`` of them, or what arrived within ``LINGER`` seconds of the first), so a
busy network costs a few writes a second, not one per message. A lost broker is
reconnected to; a bad message is rejected on its own (see ``Ingestor``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import aiomqtt
import orjson

from smartcity.ingest.commands import CommandReply
from smartcity.ingest.ingestor import Encoding, Ingestor, Message

log = logging.getLogger(__name__)

BATCH = 2000
LINGER = 0.02  # seconds a batch waits for more messages after its first
QUEUE = 50_000  # messages waiting for their batch before the broker connection waits
FILTERS = ("+/+/attrs", "+/+/attrs/+", "json/+/+/attrs", "json/+/+/attrs/+",
           "ul/+/+/attrs", "ul/+/+/attrs/+", "+/+/cmdexe", "json/+/+/cmdexe",
           "ul/+/+/cmdexe")


def message_of(topic: str, payload: bytes, received: int) -> Message | CommandReply | None:
    """The measurement (or command answer) a topic and payload carry; None for a topic
    of another kind."""
    parts = topic.split("/")
    if parts[0] == "":
        parts = parts[1:]
    encoding: Encoding | None = None
    if parts and parts[0] in ("json", "ul"):
        encoding = "json" if parts[0] == "json" else "ul"
        parts = parts[1:]
    if len(parts) == 3 and parts[2] == "cmdexe" and parts[0] and parts[1]:
        return CommandReply(parts[0], parts[1], payload)
    if len(parts) not in (3, 4) or parts[2] != "attrs" or not parts[0] or not parts[1]:
        return None
    apikey, device_id = parts[0], parts[1]
    if len(parts) == 4:
        # One measure: its bare value, as JSON when it reads as JSON, else as text.
        try:
            value = orjson.loads(payload)
        except orjson.JSONDecodeError:
            value = payload.decode("utf-8", "replace")
        return Message("MQTT", apikey, device_id, "json", orjson.dumps({parts[3]: value}),
                       received)
    if encoding is None:
        encoding = "json" if payload.lstrip()[:1] in (b"{", b"[") else "ul"
    return Message("MQTT", apikey, device_id, encoding, payload, received)


class MqttSouthbound:
    def __init__(self, url: str, ingestor: Ingestor, now: Callable[[], int],
                 share: str | None = None,
                 replied: Callable[[CommandReply], Awaitable[None]] | None = None) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 1883
        self.username, self.password = parts.username, parts.password
        self.ingestor = ingestor
        self.now = now
        self.share = share
        self.replied = replied
        self._client: aiomqtt.Client | None = None
        self._queue: asyncio.Queue[Message] = asyncio.Queue(QUEUE)
        self._tasks: list[asyncio.Task[None]] = []
        self.connected = asyncio.Event()

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._receive()), asyncio.create_task(self._apply())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _filters(self) -> list[str]:
        prefix = f"$share/{self.share}/" if self.share else ""
        return [prefix + "/" + f for f in FILTERS] + [prefix + f for f in FILTERS]

    async def _receive(self) -> None:
        while True:
            try:
                async with aiomqtt.Client(self.host, self.port, username=self.username,
                                          password=self.password) as client:
                    for topic in self._filters():
                        await client.subscribe(topic, qos=1)
                    self._client = client
                    self.connected.set()
                    log.info("taking device measurements from mqtt://%s:%d", self.host,
                             self.port)
                    async for received in client.messages:
                        payload = received.payload
                        if not isinstance(payload, bytes | bytearray):
                            payload = str(payload).encode()
                        message = message_of(received.topic.value, bytes(payload),
                                             self.now())
                        if isinstance(message, CommandReply):
                            await self._reply(message)
                        elif message is not None:
                            await self._queue.put(message)
            except aiomqtt.MqttError as exc:
                self._client = None
                self.connected.clear()
                log.warning("MQTT broker mqtt://%s:%d lost (%s); reconnecting", self.host,
                            self.port, exc)
                await asyncio.sleep(1.0)

    async def publish(self, topic: str, payload: bytes) -> None:
        """Send to a device (a command), through the broker the measurements come from."""
        if self._client is None:
            raise ConnectionError(f"not connected to mqtt://{self.host}:{self.port}")
        await self._client.publish(topic, payload, qos=1)

    async def _reply(self, reply: CommandReply) -> None:
        if self.replied is None:
            return
        try:
            await self.replied(reply)
        except Exception as exc:  # an unknown device or a garbled answer: logged, no more
            log.info("command answer from %s not taken: %s", reply.device_id, exc)

    async def _apply(self) -> None:
        while True:
            batch = [await self._queue.get()]
            deadline = time.monotonic() + LINGER
            while len(batch) < BATCH:
                if not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                except TimeoutError:
                    break
            await self._ingest(batch)

    async def _ingest(self, batch: list[Message]) -> None:
        """Apply a batch; while the database is away, keep it and try again."""
        pause = 0.5
        while True:
            try:
                await self.ingestor.ingest(batch)
                return
            except Exception as exc:
                if not self.ingestor.transient(exc):
                    log.exception("a batch of %d measurements failed", len(batch))
                    return
                log.warning("the database is away (%s); %d measurements wait", exc,
                            len(batch))
                await asyncio.sleep(pause)
                pause = min(pause * 2, 10.0)
