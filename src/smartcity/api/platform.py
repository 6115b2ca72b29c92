"""What the HTTP routes reach the core through: one object on the app's state."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from smartcity.config import Settings
from smartcity.core.ngsild.context import ContextCompiler
from smartcity.core.ngsild.context_registry import ContextRegistry
from smartcity.core.ngsild.entities import EntityService
from smartcity.core.ngsild.shared_caches import SharedCaches
from smartcity.core.ngsild.storage import EntityStore
from smartcity.core.ngsild.subscription_service import SubscriptionService
from smartcity.core.ngsild.temporal import TemporalService
from smartcity.ingest.dead_letters import DeadLetters
from smartcity.ingest.health import HealthWatch
from smartcity.ingest.ingestor import Ingestor
from smartcity.ingest.registry import DeviceRegistry
from smartcity.notify.notifier import Notifier


@dataclass
class Platform:
    settings: Settings
    store: EntityStore
    entities: EntityService
    compiler: ContextCompiler
    contexts: ContextRegistry
    subscriptions: SubscriptionService
    notifier: Notifier
    temporal: TemporalService
    caches: SharedCaches
    devices: DeviceRegistry
    ingestor: Ingestor
    dead_letters: DeadLetters
    health: HealthWatch
    background: set[asyncio.Task[Any]] = field(default_factory=set)

    async def settle(self) -> None:
        """Let what is being saved in the background land: a change other workers must
        see is answered only once it is stored."""
        await asyncio.gather(*self.background, return_exceptions=True)


def platform_of(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform
