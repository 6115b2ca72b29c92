"""Entity change events: the core announces every committed change here.

Subscriptions, history and the domain services listen on an EventBus; the
embedded default delivers in-process, production backends put a real bus behind
the same protocol.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

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


class EventBus(Protocol):
    async def publish(self, changes: Sequence[EntityChange]) -> None: ...

    def subscribe(self, handler: Handler) -> Callable[[], None]: ...


class LocalEventBus:
    """In-process bus: handlers run in the publisher's task, in subscription order.

    A failing handler is logged and never stops the others or the write path.
    """

    def __init__(self) -> None:
        self._handlers: list[Handler] = []

    def subscribe(self, handler: Handler) -> Callable[[], None]:
        self._handlers.append(handler)
        return lambda: self._handlers.remove(handler)

    async def publish(self, changes: Sequence[EntityChange]) -> None:
        if not changes:
            return
        for handler in list(self._handlers):
            try:
                result = handler(changes)
                if result is not None:
                    await result
            except Exception:
                log.exception("event handler %r failed", handler)
