"""Entity change events: the core announces every committed change here.

Subscriptions, history and the domain services listen on an EventBus; the
embedded default delivers in-process, production backends put a real bus behind
the same protocol. A ``durable`` bus gets the changes recorded in the transaction of
the write (an outbox), so an outage of the bus delays them and loses none.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import orjson

from smartcity.core.ngsild.model import Entity

log = logging.getLogger(__name__)

ChangeKind = Literal["created", "updated", "deleted"]


@dataclass(frozen=True)
class EntityChange:
    """One committed change; ``previous`` is the entity before it (None on create)."""

    kind: ChangeKind
    tenant: str
    entity_id: str
    entity: Entity | None
    previous: Entity | None
    at: str


Handler = Callable[[Sequence[EntityChange]], Awaitable[None] | None]


def encode_changes(changes: Sequence[EntityChange]) -> bytes:
    """The changes of one write, as a durable bus keeps them."""
    return orjson.dumps([[c.kind, c.tenant, c.entity_id, c.entity, c.previous, c.at]
                         for c in changes])


def decode_changes(data: bytes) -> list[EntityChange]:
    return [EntityChange(*fields) for fields in orjson.loads(data)]


class EventBus(Protocol):
    # Whether the changes are recorded with the write (``encode_changes``) for the bus
    # to carry from there.
    durable: bool

    async def publish(self, changes: Sequence[EntityChange]) -> None:
        """Deliver changes just committed (recorded first, if durable)."""

    def subscribe(self, handler: Handler) -> Callable[[], None]: ...


class LocalEventBus:
    """In-process bus: handlers run in the publisher's task, in subscription order.

    A failing handler is logged and never stops the others or the write path.
    """

    durable = False

    def __init__(self) -> None:
        self._handlers: list[Handler] = []

    def subscribe(self, handler: Handler) -> Callable[[], None]:
        self._handlers.append(handler)
        return lambda: self._handlers.remove(handler)

    async def publish(self, changes: Sequence[EntityChange]) -> None:
        await self.deliver(changes)

    async def deliver(self, changes: Sequence[EntityChange]) -> None:
        """Run every handler on the changes, in subscription order."""
        if not changes:
            return
        for handler in list(self._handlers):
            try:
                result = handler(changes)
                if result is not None:
                    await result
            except Exception:
                log.exception("event handler %r failed", handler)
