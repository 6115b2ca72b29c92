"""Measurements become city state: each message is matched to its device, decoded,
mapped to an update of the entity the device feeds (and of its ``Device`` entity), and
written through the entity service, so it lands in history, subscriptions and the bus
like any other write.

Messages are taken in batches: the updates of a batch go to the store as one batch
upsert per tenant (an entity updated by several messages changes once per message, so
every measure is kept in the history and notified). A bad message is rejected on its own,
kept among the dead letters, and never stops the others.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from smartcity.core.ngsild.context import TermMap
from smartcity.core.ngsild.entities import BatchResult, EntityService
from smartcity.core.ngsild.errors import BadRequestData, InternalError, NgsiLdError
from smartcity.core.ngsild.instants import format_instant
from smartcity.core.ngsild.model import Entity
from smartcity.core.ngsild.normalize import parse_entity
from smartcity.core.rate_limit import RateLimit
from smartcity.ingest.dead_letters import DeadLetters
from smartcity.ingest.decoders import decoders
from smartcity.ingest.gateways import GatewayContacts
from smartcity.ingest.measures import (
    BATTERY,
    device_fragment,
    entity_fragment,
    observed_time,
)
from smartcity.ingest.registry import DeviceRegistry
from smartcity.ingest.ultralight import parse_ultralight

log = logging.getLogger(__name__)
Encoding = Literal["json", "ul", "lorawan"]
MAX_JSON = 64 * 1024
# A device's dateLastValueReported is written at most this often (microseconds): once per
# measurement would double the writes of the whole ingest path.
REPORT_EVERY = 60_000_000


class TooManyMeasurements(NgsiLdError):
    name, status, title = "TooManyRequests", 429, "Too many measurements"


@dataclass(frozen=True)
class Message:
    transport: str  # "HTTP", "MQTT"
    apikey: str
    device_id: str
    encoding: Encoding
    payload: bytes
    received: int  # microseconds
    time: int | None = None  # a timestamp sent beside the payload
    port: int | None = None  # LoRaWAN FPort
    decoded: dict[str, Any] | None = None  # as a LoRaWAN network server decoded it
    radio: dict[str, float] | None = None  # rssi, snr of the best gateway
    gateways: tuple[str, ...] = ()  # the LoRaWAN gateways that heard it


def decode(message: Message, profile: str | None = None
           ) -> list[tuple[dict[str, Any], int | None]]:
    """The measure groups of a message: (measures, the time the payload gives);
    ``profile`` names the decoder of a LoRaWAN payload."""
    if message.encoding == "lorawan":
        return [(_lorawan_measures(message, profile), message.time)]
    if message.encoding == "ul":
        try:
            text = message.payload.decode()
        except UnicodeDecodeError:
            raise BadRequestData("An UltraLight payload must be UTF-8 text") from None
        return [(group.values, group.time if group.time is not None else message.time)
                for group in parse_ultralight(text)]
    if len(message.payload) > MAX_JSON:
        raise BadRequestData(f"A JSON payload holds at most {MAX_JSON} bytes")
    try:
        body = orjson.loads(message.payload)
    except orjson.JSONDecodeError:
        raise BadRequestData("The payload is not JSON") from None
    items = body if isinstance(body, list) else [body]
    if not items or not all(isinstance(item, dict) and item for item in items):
        raise BadRequestData("A JSON payload is an object of measures (or a list of them)")
    return [(item, message.time) for item in items]


def _lorawan_measures(message: Message, profile: str | None) -> dict[str, Any]:
    if profile is None:
        if message.decoded:
            return message.decoded
        raise BadRequestData("The device has no payload decoder and the network server "
                             "sent no decoded payload")
    if message.port is None or not message.payload:
        raise BadRequestData("The uplink carries no application payload")
    try:
        measures = decoders()[profile](message.port, message.payload)
    except ValueError as exc:
        raise BadRequestData(f"Payload {message.payload.hex()} on port {message.port} is "
                             f"not {profile}: {exc}") from None
    if not measures:
        raise BadRequestData(f"The {profile} payload holds no measures")
    return measures


class Ingestor:
    def __init__(self, registry: DeviceRegistry, entities: EntityService, terms: TermMap,
                 dead_letters: DeadLetters, gateways: GatewayContacts, limit: RateLimit,
                 transient: Callable[[BaseException], bool] = lambda exc: False) -> None:
        self.registry = registry
        # Whether a failed write may succeed later unchanged (the database is away): then
        # the caller keeps the batch and tries again, and no message is blamed.
        self.transient = transient
        self.entities = entities
        self.terms = terms
        self.dead_letters = dead_letters
        self.limit = limit
        # When each device's Device entity was last told it reported (per process).
        self._reported: dict[tuple[str, str], int] = {}
        # When each LoRaWAN gateway last forwarded one of its tenant's devices' uplinks.
        self.gateways = gateways

    async def ingest(self, messages: Sequence[Message]) -> list[NgsiLdError | None]:
        """Apply a batch of messages; per message, None or why it was rejected."""
        outcomes: list[NgsiLdError | None] = [None] * len(messages)
        updates: dict[str, list[tuple[int, list[Entity]]]] = defaultdict(list)
        for index, message in enumerate(messages):
            try:
                tenant, entities = await self._updates(message)
            except NgsiLdError as exc:
                outcomes[index] = exc
                continue
            updates[tenant].append((index, entities))
            # Gateways count as heard from only for devices they serve, in their tenant.
            for gateway in message.gateways:
                self.gateways.heard(tenant, gateway, message.received)
        for tenant, items in updates.items():
            try:
                failed = await self._write_or_split(tenant, items)
            except Exception:
                self._unreport(messages, [index for index, _ in items], tenant)
                raise
            self._unreport(messages, [index for index, _ in failed], tenant)
            for index, error in failed:
                outcomes[index] = error
        for message, outcome in zip(messages, outcomes, strict=True):
            if outcome is not None:
                self.dead_letters.add(format_instant(message.received), message.transport,
                                      message.apikey, message.device_id, str(outcome),
                                      message.payload)
        return outcomes

    def _unreport(self, messages: Sequence[Message], indexes: list[int],
                  tenant: str) -> None:
        """Forget that these messages' devices were reported (their writes failed), so
        the next message reports them."""
        for index in indexes:
            self._reported.pop((tenant, messages[index].device_id), None)

    async def _updates(self, message: Message) -> tuple[str, list[Entity]]:
        provisioned = await self.registry.resolve(message.apikey, message.device_id)
        # Held to its rate once known: strangers make no buckets.
        if not self.limit.admit((provisioned.tenant, message.device_id)):
            raise TooManyMeasurements(f"Device {message.device_id!r} sends faster than "
                                      f"{self.limit.rate:g} measurements/s")
        fragments = []
        battery = None
        for measures, given in decode(message, provisioned.decoder):
            observed = observed_time(measures, given, message.received)
            fragments.append(entity_fragment(provisioned, measures, observed))
            level = measures.get(BATTERY)
            if isinstance(level, int | float) and not isinstance(level, bool):
                battery = float(level)
        # The device reported when the message arrived: its own clock may be wrong.
        key = (provisioned.tenant, provisioned.device.device_id)
        if message.received - self._reported.get(key, -REPORT_EVERY) >= REPORT_EVERY:
            fragments.append(device_fragment(provisioned, message.received, message.radio,
                                             battery))
            # Taken as written unless the write fails (see ``ingest``).
            self._reported[key] = message.received
        return provisioned.tenant, [parse_entity(f, self.terms) for f in fragments]

    async def _write_or_split(self, tenant: str, items: list[tuple[int, list[Entity]]]
                              ) -> list[tuple[int, NgsiLdError]]:
        """Write a batch; if the store refuses it as a whole, each message on its own, so
        that one bad message is blamed and the others land."""
        try:
            return await self._write(tenant, items)
        except Exception as exc:
            if self.transient(exc):
                raise
        failed: list[tuple[int, NgsiLdError]] = []
        for item in items:
            try:
                failed.extend(await self._write(tenant, [item]))
            except NgsiLdError as exc:
                failed.append((item[0], exc))
            except Exception as exc:
                if self.transient(exc):
                    raise
                log.warning("a measurement of %s was not stored: %r", tenant or "the default "
                            "tenant", exc)
                failed.append((item[0], InternalError("The measurement could not be stored")))
        return failed

    async def _write(self, tenant: str, items: list[tuple[int, list[Entity]]]
                     ) -> list[tuple[int, NgsiLdError]]:
        """Upsert the updates of one tenant in one batch (an entity updated several times
        changes several times, each kept in the history); the failed messages, with
        why."""
        owners: dict[str, list[int]] = defaultdict(list)
        for index, entities in items:
            for entity in entities:
                owners[entity["id"]].append(index)
        result = await self.entities.batch_upsert(
            tenant, [entity for _, entities in items for entity in entities], False,
            BatchResult())
        failed: dict[int, NgsiLdError] = {}
        for entity_id, error in result.errors:
            for index in owners.get(entity_id, ()):
                failed.setdefault(index, error)
        return sorted(failed.items())
