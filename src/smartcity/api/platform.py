"""What the HTTP routes reach the core through: one object on the app's state."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
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
from smartcity.opendata.catalogue import Catalogue
from smartcity.opendata.usage import Usage
from smartcity.security.gatekeeper import Gatekeeper
from smartcity.security.policy import Register


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
    catalogue: Catalogue
    usage: Usage
    register: Register = field(default_factory=lambda: Register(()))
    gatekeeper: Gatekeeper | None = None  # None: access control is off (--auth none)
    background: set[asyncio.Task[Any]] = field(default_factory=set)

    def require(self, tenant: str, action: str, types: Sequence[str] = (),
                what: str = "this") -> None:
        """Refuse the request unless the caller may ``action`` (on ``types``) in
        ``tenant``; with access control off, everything is allowed."""
        if self.gatekeeper is not None:
            self.gatekeeper.guard.require(tenant, action, types, what)

    def record_act(self, action: str, what: str, target: str = "", *, tenant: str = "",
                   subjects: Sequence[str] = (), outcome: str = "ok",
                   detail: dict[str, Any] | None = None) -> None:
        """Record an act of the caller in the audit log (kept with access control on)."""
        if self.gatekeeper is not None:
            self.gatekeeper.acts.record(action, what, target, tenant=tenant,
                                        subjects=subjects, outcome=outcome, detail=detail)

    async def audit_of(self, person: str, limit: int) -> list[dict[str, Any]]:
        """The audit entries that touched a resident's personal data, newest first."""
        if self.gatekeeper is None:
            return []
        return [{"seq": row.seq, **orjson.loads(row.document)}
                for row in await self.gatekeeper.audit.for_subject(person, limit)]

    @property
    def public_url(self) -> str:
        """Where the platform is reached from outside: what names its datasets."""
        return (self.settings.public_url or
                f"http://{self.settings.host}:{self.settings.port}").rstrip("/")

    async def settle(self) -> None:
        """Let what is being saved in the background land: a change other workers must
        see is answered only once it is stored."""
        await asyncio.gather(*self.background, return_exceptions=True)


def platform_of(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform
