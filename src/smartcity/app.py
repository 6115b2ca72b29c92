"""The ASGI application: wires settings, store, core services and routes."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smartcity.api import errors
from smartcity.api.authentication import AuthenticationMiddleware
from smartcity.api.negotiation import TENANT_HEADER
from smartcity.api.platform import Platform
from smartcity.api.routes import (
    api_docs,
    auth,
    batch,
    ckan,
    contexts,
    datasets,
    dcat,
    developers,
    discovery,
    distributions,
    entities,
    identity,
    iot,
    landing,
    me,
    pages,
    privacy,
    purge,
    subscriptions,
    temporal,
)
from smartcity.api.serving import served
from smartcity.bus.jetstream import JetStreamBus
from smartcity.config import Settings
from smartcity.core.clock import Clock, SystemClock, timestamp
from smartcity.core.events import LocalEventBus
from smartcity.core.ngsild.context import ContextCompiler, ContextDocuments, Fetch
from smartcity.core.ngsild.context_registry import ContextRegistry
from smartcity.core.ngsild.durations import parse_duration
from smartcity.core.ngsild.entities import EntityService
from smartcity.core.ngsild.errors import BadRequestData, LdContextNotAvailable
from smartcity.core.ngsild.retention import Retention, RetentionRule
from smartcity.core.ngsild.shared_caches import SharedCaches
from smartcity.core.ngsild.storage import EntityStore
from smartcity.core.ngsild.subscription_service import SubscriptionService
from smartcity.core.ngsild.temporal import TemporalService, now_micros
from smartcity.core.rate_limit import RateLimit
from smartcity.ingest.commands import Commander, Post
from smartcity.ingest.dead_letters import DeadLetters
from smartcity.ingest.gateways import GatewayContacts
from smartcity.ingest.health import HealthWatch
from smartcity.ingest.ingestor import Ingestor
from smartcity.ingest.mqtt import MqttSouthbound
from smartcity.ingest.registry import DeviceRegistry
from smartcity.mqtt.embedded import EmbeddedBroker
from smartcity.notify.notifier import Notifier
from smartcity.opendata.catalogue import Catalogue
from smartcity.opendata.usage import Usage
from smartcity.security.accounts import Accounts, first_admin
from smartcity.security.assignments import AssignmentLookup
from smartcity.security.audit import AuditLog
from smartcity.security.audit_acts import AuditActs
from smartcity.security.consents import Consents
from smartcity.security.gatekeeper import Gatekeeper
from smartcity.security.guard import Guard
from smartcity.security.personal_retention import personal_retention
from smartcity.security.platform_secrets import pseudonymiser
from smartcity.security.policy import Policy, read_policy
from smartcity.security.tokens import ExternalIssuer, Tokens, signing_key
from smartcity.store.backend import open_store
from smartcity.store.postgres import UNAVAILABLE

MAX_CONTEXT_BYTES = 1024 * 1024
log = logging.getLogger(__name__)


def context_fetcher(timeout: float) -> Fetch:
    """Fetch a user @context over HTTP, bounded in time and size (clause 5.5.6).

    A document that cannot be retrieved (no connection, time-out, non-200 status,
    too large) is LdContextNotAvailable; a body that is not JSON is BadRequestData.
    """
    client = httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 2.0)),
                          follow_redirects=True, max_redirects=5,
                          headers={"Accept": "application/ld+json, application/json;q=0.9"})

    def fetch(url: str) -> Any:
        if not url.startswith(("http://", "https://")):
            raise LdContextNotAvailable(f"Cannot fetch @context {url}: not an http(s) URL")
        deadline = time.monotonic() + timeout
        try:
            with client.stream("GET", url) as response:
                if response.status_code != 200:
                    raise LdContextNotAvailable(
                        f"@context {url} answered HTTP {response.status_code}")
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_CONTEXT_BYTES:
                        raise LdContextNotAvailable(
                            f"@context {url} is larger than {MAX_CONTEXT_BYTES} bytes")
                    if time.monotonic() > deadline:
                        raise LdContextNotAvailable(
                            f"@context {url} was not received within {timeout} s")
        except httpx.HTTPError as exc:
            raise LdContextNotAvailable(
                f"@context {url} could not be retrieved: {type(exc).__name__}: {exc}") from None
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            raise BadRequestData(f"@context {url} is not a JSON document") from None
    return fetch


class EdgeMiddleware:
    """Path and header conventions for every request.

    A trailing slash names the same resource (``/entities/`` is ``/entities``), and the
    NGSILD-Tenant request header is echoed on the response (clause 6.3.14).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if len(path) > 1 and path.endswith("/"):
            scope = {**scope, "path": path.rstrip("/") or "/",
                     "raw_path": scope.get("raw_path", b"").rstrip(b"/") or b"/"}
        tenant = next((v for k, v in scope["headers"] if k == b"ngsild-tenant"), None)
        if not tenant:
            await self.app(scope, receive, send)
            return

        async def send_with_tenant(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0] != b"ngsild-tenant"]
                message["headers"] = [*headers, (TENANT_HEADER.lower().encode(), tenant)]
            await send(message)
        await self.app(scope, receive, send_with_tenant)


class SharedCacheMiddleware:
    """Before each request, catch up with what other workers changed in the records this
    one caches (see ``SharedCaches``); nothing to do on a store of one process."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            platform: Platform | None = getattr(scope["app"].state, "platform", None)
            if platform is not None and platform.store.shared:
                await platform.caches.refresh()
        await self.app(scope, receive, send)


async def build_platform(settings: Settings) -> Platform:
    store = await open_store(settings.db)
    clock = SystemClock()
    background: set[asyncio.Task[Any]] = set()
    loop = asyncio.get_running_loop()

    def run_soon(coro: Coroutine[Any, Any, None]) -> None:
        def start() -> None:
            task = loop.create_task(coro)
            background.add(task)
            task.add_done_callback(background.discard)
        try:
            on_loop = asyncio.get_running_loop() is loop
        except RuntimeError:  # called from a thread of pyld's document loader
            on_loop = False
        if on_loop:
            start()  # at once, so Platform.settle can wait for it
        else:
            loop.call_soon_threadsafe(start)

    registry = ContextRegistry(lambda: timestamp(clock.now()),
                               persist=lambda record, changed: run_soon(
                                   store.save_context(record, changed=changed)),
                               forget=lambda local_id: run_soon(store.delete_context(local_id)))
    fetch = context_fetcher(settings.context_fetch_timeout) if settings.fetch_contexts else None
    documents = ContextDocuments(fetch=fetch, lookup=registry.lookup, on_fetched=registry.cache)
    compiler = ContextCompiler(documents)
    bus = JetStreamBus(settings.event_bus, store, settings.event_bus_prefix) \
        if settings.event_bus.startswith("nats://") else LocalEventBus()
    entity_service = EntityService(store, bus, clock=clock)
    entity_service.keep_history = settings.history
    temporal_service = TemporalService(store.history, clock, settings.temporal_page_size,
                                       entity_service)
    subscription_service = SubscriptionService(store, clock)
    notifier = Notifier(store, clock, subscription_service, compiler.compile)
    # Writes record the notifications they call for; the notifier delivers them.
    entity_service.notifications = notifier.outbox_for
    entity_service.on_outbox = notifier.wake
    subscription_service.on_change(notifier.subscription_changed)
    entity_service.bus.subscribe(notifier.changes_committed)
    caches = SharedCaches(store, subscription_service, registry, compiler)
    notifier.refresh = caches.refresh
    devices = DeviceRegistry(store)
    caches.watch(devices)
    dead_letters = DeadLetters(store)
    ingestor = Ingestor(devices, entity_service, compiler.core, dead_letters,
                        GatewayContacts(store),
                        RateLimit(settings.ingest_rate, settings.ingest_burst),
                        transient=lambda exc: isinstance(exc, UNAVAILABLE))
    policy = Policy(read_policy(settings.policy))
    catalogue = Catalogue(store, policy.register, lambda: timestamp(clock.now()))
    caches.watch(catalogue)
    gatekeeper = await gatekeeper_for(settings, policy, store, clock, compiler, caches) \
        if settings.auth == "on" else None
    if gatekeeper is not None:
        entity_service.access = temporal_service.access = notifier.access = gatekeeper.guard
        entity_service.written = gatekeeper.acts.written
        notifier.owner_active = gatekeeper.active
        entity_service.bus.subscribe(gatekeeper.assignments.changes_committed)
    return Platform(settings=settings, store=store, entities=entity_service,
                    compiler=compiler, contexts=registry,
                    subscriptions=subscription_service, notifier=notifier,
                    temporal=temporal_service, caches=caches, devices=devices,
                    ingestor=ingestor, dead_letters=dead_letters,
                    health=HealthWatch(devices, entity_service, compiler.core, clock,
                                       settings.low_battery),
                    catalogue=catalogue, usage=Usage(store), register=policy.register,
                    gatekeeper=gatekeeper,
                    background=background)


async def gatekeeper_for(settings: Settings, policy: Policy, store: EntityStore, clock: Clock,
                         compiler: ContextCompiler, caches: SharedCaches) -> Gatekeeper:
    """Authentication and access control as the settings configure them."""
    accounts = Accounts(store, policy.roles)
    consents = Consents(store, clock.now)
    caches.watch(accounts)
    caches.watch(consents)
    external = ExternalIssuer(settings.oidc_issuer, settings.oidc_audience,
                              settings.oidc_jwks_url, settings.oidc_roles_claim,
                              settings.oidc_person_claim, settings.oidc_tenants_claim) \
        if settings.oidc_issuer else None
    tokens = Tokens(await signing_key(store), settings.token_issuer, settings.token_audience,
                    settings.token_lifetime, settings.clock_skew, policy.roles, external)
    audit = AuditLog(store, lambda: timestamp(clock.now()))
    acts = AuditActs(audit, policy.register)
    assignments = AssignmentLookup(store, policy.assignments, compiler.core.expand,
                                   clock.now)
    guard = Guard(policy, assignments, consents.consented, await pseudonymiser(store),
                  acts.personal_read)
    return Gatekeeper(policy, accounts, tokens, consents, guard,
                      RateLimit(settings.client_rate, settings.client_burst), audit, acts,
                      assignments)


def retention_rules(settings: Settings, expand: Callable[[str], str]) -> list[RetentionRule]:
    """The configured retention rules, with names expanded by the core @context."""
    return [RetentionRule(
        raw=parse_duration(r.raw),
        types=(expand(r.type),) if r.type else None,
        attr=expand(r.attribute) if r.attribute else None,
        aggregate=parse_duration(r.aggregate) if r.aggregate else None,
        keep_aggregates=parse_duration(r.keep_aggregates) if r.keep_aggregates else None)
        for r in settings.retention]


async def keep_retention(platform: Platform, settings: Settings) -> None:
    """Apply the retention rules (configured, and those of the register of personal
    data) at start and then every ``retention_interval``."""
    configured = retention_rules(settings, platform.compiler.core.expand)

    async def run() -> None:
        rules = configured + await personal_retention(platform.store, platform.register)
        await Retention(platform.temporal.store, platform.entities.clock, rules).run()
    await _every(settings.retention_interval, run, "retention run")


async def _every(seconds: float, job: Callable[[], Awaitable[Any]], what: str) -> None:
    """Run ``job`` now and then every ``seconds``; a failed run is logged and the next
    one tries again."""
    while True:
        try:
            await job()
        except Exception:
            log.exception("%s failed; the next run tries again", what)
        await asyncio.sleep(seconds)


def _southbound(platform: Platform, settings: Settings) -> MqttSouthbound | None:
    """Where devices' MQTT measurements come from, if anywhere: the embedded listener
    by default, else the configured broker, whose traffic the workers share."""
    if settings.iot_mqtt == "off" or (not settings.iot_mqtt and not settings.mqtt_listener):
        return None
    url = settings.iot_mqtt or f"mqtt://{settings.mqtt_host}:{settings.mqtt_port}"
    return MqttSouthbound(url, platform.ingestor, lambda: now_micros(platform.entities.clock),
                          share=settings.event_bus_prefix if settings.iot_mqtt else None)


def _poster(client: httpx.AsyncClient) -> Post:
    """POST a command to a device's endpoint; the device's answer."""
    async def post(url: str, payload: bytes, media: str) -> bytes:
        response = await client.post(url, content=payload, headers={"Content-Type": media})
        response.raise_for_status()
        return response.content
    return post


LEADER_CHECK = 2.0  # seconds between checks that the leader still holds its right


async def lead_when_chosen(platform: Platform, settings: Settings) -> None:
    """Run the work one process does for all that share the store (periodic
    notifications, retention) while this process holds the "leader" right; a leader
    that dies or loses the database lets go of it, and another process takes over."""
    while True:
        try:
            async with platform.store.exclusive("leader") as held:
                if held:
                    await _lead(platform, settings)
        except Exception:
            log.exception("leadership was lost; trying again")
        await asyncio.sleep(LEADER_CHECK)


async def _lead(platform: Platform, settings: Settings) -> None:
    platform.notifier.lead()
    duties = [asyncio.create_task(keep_retention(platform, settings)),
              asyncio.create_task(keep_health(platform, settings))]
    try:
        while await platform.store.rights_held():
            await asyncio.sleep(LEADER_CHECK)
    finally:
        for duty in duties:
            duty.cancel()
        await asyncio.gather(*duties, return_exceptions=True)
        platform.notifier.follow()


async def keep_health(platform: Platform, settings: Settings) -> None:
    """Check the devices' health every ``health_interval``, the first time after one."""
    await asyncio.sleep(settings.health_interval)
    await _every(settings.health_interval, platform.health.check, "device health check")


async def announce_first_admin(gatekeeper: Gatekeeper, settings: Settings, now: str) -> None:
    """Make the first administrator credential of a new platform, and show its secret
    on the console this once (never in a log)."""
    issued = await first_admin(gatekeeper.accounts, now)
    if issued is None:
        return
    url = f"http://{settings.host}:{settings.port}/auth/token"
    sys.stdout.write(
        "\nFirst start: an administrator client was made. Its secret is shown only now; "
        "keep it safe.\n"
        f"  client_id:     {issued.name}\n  client_secret: {issued.secret}\n"
        f"Get a token:  curl -u {issued.name}:<secret> -d grant_type=client_credentials "
        f"{url}\n\n")
    sys.stdout.flush()


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        platform = await build_platform(settings)
        await platform.caches.load()
        if platform.gatekeeper is not None:
            await announce_first_admin(platform.gatekeeper, settings, platform.entities.now())
            platform.gatekeeper.audit.start()
        for record in platform.subscriptions.records():
            platform.notifier.subscription_changed(record, record["tenant"], record["id"])
        listener = EmbeddedBroker(settings.mqtt_host, settings.mqtt_port) \
            if settings.mqtt_listener else None
        if listener is not None:
            await listener.start()
        southbound = _southbound(platform, settings)
        devices_http = httpx.AsyncClient(timeout=settings.command_timeout)
        commander = Commander(platform.devices, platform.entities, platform.compiler.core,
                              southbound.publish if southbound is not None else None,
                              _poster(devices_http), settings.command_timeout)
        platform.entities.bus.subscribe(commander.changes_committed)
        if southbound is not None:
            southbound.replied = commander.replied
            southbound.start()
        app.state.southbound = southbound
        await platform.usage.load()
        platform.usage.start()
        platform.dead_letters.start()
        platform.ingestor.gateways.start()
        platform.notifier.start()
        if isinstance(platform.entities.bus, JetStreamBus):
            await platform.entities.bus.start()
        leadership = asyncio.create_task(lead_when_chosen(platform, settings))
        app.state.platform = platform
        yield
        leadership.cancel()
        await asyncio.gather(leadership, return_exceptions=True)
        if isinstance(platform.entities.bus, JetStreamBus):
            await platform.entities.bus.stop()
        await platform.notifier.stop()
        await commander.stop()
        await devices_http.aclose()
        if southbound is not None:
            await southbound.stop()
        if listener is not None:
            await listener.stop()
        await platform.subscriptions.flush()
        await platform.usage.stop()
        await platform.dead_letters.stop()
        await platform.ingestor.gateways.stop()
        if platform.gatekeeper is not None:
            await platform.gatekeeper.audit.stop()
        # @context bookkeeping is saved in the background: let it land before closing.
        await asyncio.gather(*platform.background, return_exceptions=True)
        await platform.store.close()

    # Routes are matched one after another: the NGSI-LD ones, which carry the city's
    # traffic, first. /datasets/dcat before /datasets/{id}.
    routers = [module.router for module in (
        entities, batch, temporal, subscriptions, discovery, purge, contexts, identity, iot,
        landing, pages, auth, me, privacy, developers, dcat, distributions, datasets, ckan)]
    app = Starlette(
        routes=[*served(routers), *api_docs.docs_routes(routers),
                Mount("/static", StaticFiles(packages=[("smartcity.web", "static")]),
                      name="static")],
        middleware=[Middleware(EdgeMiddleware), Middleware(SharedCacheMiddleware),
                    Middleware(AuthenticationMiddleware)],
        lifespan=lifespan)
    errors.install(app)
    return app


# The environment variable that hands the settings to worker processes.
WORKER_SETTINGS = "SMARTCITY_WORKER_SETTINGS"


def worker_app() -> Starlette:
    """The app of one worker process of ``smartcity serve --workers N``."""
    return create_app(Settings(**orjson.loads(os.environ[WORKER_SETTINGS])))
