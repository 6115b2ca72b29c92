"""IoT ingestion over HTTP: the provisioning API of the FIWARE IoT Agents
(``/iot/services``, ``/iot/devices``), their southbound measurement endpoints
(``/iot/json`` for JSON, ``/iot/d`` for UltraLight 2.0) and the dead letters.

``Fiware-Service`` names the tenant (as ``NGSILD-Tenant`` does for the NGSI-LD API) and
``Fiware-ServicePath`` the service path (``/`` when absent).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from smartcity.api.negotiation import JSON, allow_params, json_response, read_json, read_raw
from smartcity.api.platform import Platform, platform_of
from smartcity.api.views import pagination
from smartcity.core.ngsild.entities import BatchResult
from smartcity.core.ngsild.errors import BadRequestData, InvalidRequest, ResourceNotFound
from smartcity.core.ngsild.instants import parse_instant
from smartcity.core.ngsild.normalize import parse_entity
from smartcity.core.ngsild.temporal import now_micros
from smartcity.core.validation import validated
from smartcity.ingest.ingestor import Encoding, Message
from smartcity.ingest.lorawan import Uplink, chirpstack_uplink, tts_uplink
from smartcity.ingest.measures import device_entity_id, device_fragment
from smartcity.ingest.provisioning import Device, ServiceGroup, parse_list
from smartcity.ingest.registry import Provisioned
from smartcity.security.principal import SYSTEM, acting_as

# What reading and managing devices is decided on, as far as access control goes.
DEVICE_TYPES = ("Device",)

router = APIRouter(tags=["IoT"])
_TENANT = re.compile(r"^[A-Za-z0-9_]{1,50}$")
_PATH = re.compile(r"^(/\*|/([A-Za-z0-9_-]{1,50}(/[A-Za-z0-9_-]{1,50})*(/\*)?)?)$")
TEXT = "text/plain"


def service_of(request: Request) -> tuple[str, str]:
    """(tenant, service path) of a request."""
    tenant = request.headers.get("fiware-service", "")
    if tenant and not _TENANT.fullmatch(tenant):
        raise BadRequestData(f"Invalid Fiware-Service {tenant!r}")
    path = request.headers.get("fiware-servicepath") or "/"
    if not _PATH.fullmatch(path):
        raise BadRequestData(f"Invalid Fiware-ServicePath {path!r}")
    return tenant.lower(), path


def _page(request: Request, items: list[Any]) -> list[Any]:
    offset, limit, _ = pagination(request, 20, 1000)
    return items[offset:offset + limit]


def _reading(request: Request, params: frozenset[str]) -> tuple[Platform, str, str]:
    """A read of devices or groups: its parameters checked, its tenant and service path,
    refused unless the caller may read devices there."""
    platform = platform_of(request)
    allow_params(request, params)
    tenant, path = service_of(request)
    platform.require(tenant, "read", DEVICE_TYPES, "devices")
    return platform, tenant, path


def _administer(platform: Platform, request: Request, tenant: str) -> None:
    """Provisioning is administration: allowed to those who may, and recorded."""
    platform.require(tenant, "administer", DEVICE_TYPES, "devices")
    platform.record_act("administer", "devices", f"{request.method} {request.url.path}",
                        tenant=tenant)


# -- service groups ------------------------------------------------------------------
@router.post("/iot/services", status_code=201, summary="Provision service groups")
async def add_services(request: Request) -> Response:
    platform = platform_of(request)
    tenant, path = service_of(request)
    _administer(platform, request, tenant)
    body = await read_json(request, platform.settings.max_body_bytes, (JSON,))
    await platform.devices.add_groups(tenant, path, parse_list(body, "services",
                                                               ServiceGroup))
    return Response(status_code=201)


@router.get("/iot/services", summary="List service groups")
async def list_services(request: Request) -> Response:
    platform, tenant, path = _reading(request, frozenset({"limit", "offset"}))
    groups = platform.devices.groups(tenant, path)
    return json_response({"count": len(groups), "services": [
        {**g.model_dump(exclude_unset=True), "service": tenant, "subservice": path}
        for g in _page(request, groups)]})


def _group_params(request: Request) -> tuple[str, str]:
    allow_params(request, frozenset({"resource", "apikey"}))
    resource, apikey = request.query_params.get("resource"), request.query_params.get("apikey")
    if not resource or not apikey:
        raise BadRequestData("resource and apikey query parameters name the service group")
    return resource, apikey


@router.put("/iot/services", status_code=204, summary="Change a service group")
async def update_service(request: Request) -> Response:
    platform = platform_of(request)
    tenant, path = service_of(request)
    _administer(platform, request, tenant)
    resource, apikey = _group_params(request)
    changes = await read_json(request, platform.settings.max_body_bytes, (JSON,))
    if not isinstance(changes, dict):
        raise BadRequestData("The body must be an object of the fields to change")
    await platform.devices.update_group(tenant, path, resource, apikey, changes)
    return Response(status_code=204)


@router.delete("/iot/services", status_code=204, summary="Remove a service group")
async def delete_service(request: Request) -> Response:
    platform = platform_of(request)
    tenant, path = service_of(request)
    _administer(platform, request, tenant)
    resource, apikey = _group_params(request)
    await platform.devices.delete_group(tenant, path, resource, apikey)
    return Response(status_code=204)


# -- devices -------------------------------------------------------------------------
@router.post("/iot/devices", status_code=201, summary="Provision devices")
async def add_devices(request: Request) -> Response:
    platform = platform_of(request)
    tenant, path = service_of(request)
    _administer(platform, request, tenant)
    body = await read_json(request, platform.settings.max_body_bytes, (JSON,))
    devices = parse_list(body, "devices", Device)
    added = await platform.devices.add_devices(tenant, path, devices)
    await _publish_devices(platform, added)
    return Response(status_code=201)


def _render(provisioned: Provisioned) -> dict[str, Any]:
    return {**provisioned.device.model_dump(exclude_unset=True),
            "service": provisioned.tenant, "service_path": provisioned.service_path}


@router.get("/iot/devices", summary="List devices")
async def list_devices(request: Request) -> Response:
    platform, tenant, path = _reading(request, frozenset({"limit", "offset"}))
    devices = platform.devices.devices(tenant, path)
    return json_response({"count": len(devices), "devices": [
        _render(d) for d in _page(request, devices)]})


@router.get("/iot/devices/{device_id}", summary="A device")
async def get_device(device_id: str, request: Request) -> Response:
    platform, tenant, _ = _reading(request, frozenset())
    return json_response(_render(platform.devices.device(tenant, device_id)))


@router.put("/iot/devices/{device_id}", status_code=204, summary="Change a device")
async def update_device(device_id: str, request: Request) -> Response:
    platform = platform_of(request)
    tenant, _ = service_of(request)
    _administer(platform, request, tenant)
    changes = await read_json(request, platform.settings.max_body_bytes, (JSON,))
    if not isinstance(changes, dict):
        raise BadRequestData("The body must be an object of the fields to change")
    validated(Device, {**platform.devices.device(tenant, device_id).device.model_dump(
        exclude_unset=True), **changes}, "device")
    updated = await platform.devices.update_device(tenant, device_id, changes)
    await _publish_devices(platform, [updated])
    return Response(status_code=204)


@router.delete("/iot/devices/{device_id}", status_code=204, summary="Remove a device")
async def delete_device(device_id: str, request: Request) -> Response:
    platform = platform_of(request)
    tenant, _ = service_of(request)
    _administer(platform, request, tenant)
    removed = await platform.devices.delete_device(tenant, device_id)
    # Its Device entity may have been deleted through the NGSI-LD API already.
    with contextlib.suppress(ResourceNotFound):
        await platform.entities.delete(removed.tenant, device_entity_id(device_id))
    await platform.health.forget(removed.tenant, device_id)
    return Response(status_code=204)


async def _publish_devices(platform: Platform, devices: list[Provisioned]) -> None:
    """Each provisioned device appears as an NGSI-LD ``Device`` entity (the platform's
    own write, following what an administrator provisioned)."""
    terms = platform.compiler.core
    for tenant in {d.tenant for d in devices}:
        entities = [parse_entity(device_fragment(d, None), terms)
                    for d in devices if d.tenant == tenant]
        with acting_as(SYSTEM):
            await platform.entities.batch_upsert(tenant, entities, False, BatchResult())


# -- measurements ------------------------------------------------------------------------
async def _measure(request: Request, encoding: Encoding, media: tuple[str, ...]) -> Response:
    platform = platform_of(request)
    allow_params(request, frozenset({"k", "i", "t", "getCmd"}))
    apikey, device_id = request.query_params.get("k"), request.query_params.get("i")
    if not apikey or not device_id:
        raise BadRequestData("k (the API key) and i (the device id) are required")
    stamp = request.query_params.get("t")
    payload = await read_raw(request, platform.settings.max_body_bytes, media)
    return await _ingest_one(platform, Message(
        "HTTP", apikey, device_id, encoding, payload, now_micros(platform.entities.clock),
        parse_instant(stamp) if stamp else None))


async def _ingest_one(platform: Platform, message: Message) -> Response:
    """Apply one message; the reason it was rejected is the answer's error. A device is
    authenticated by its service group's API key, which the ingestor checks; what it
    writes is what it was provisioned to write, so the write is the platform's own."""
    with acting_as(SYSTEM):
        [outcome] = await platform.ingestor.ingest([message])
    if outcome is not None:
        raise outcome
    return Response(status_code=200)


@router.post("/iot/json", summary="Measurements in JSON (IoT Agent JSON)")
async def measure_json(request: Request) -> Response:
    return await _measure(request, "json", (JSON,))


@router.post("/iot/d", summary="Measurements in UltraLight 2.0 (IoT Agent UL)")
async def measure_ultralight(request: Request) -> Response:
    return await _measure(request, "ul", (TEXT,))


def _uplink_message(request: Request, uplink: Uplink, received: int) -> Message:
    apikey = request.query_params.get("k")
    if not apikey:
        raise BadRequestData("k (the API key of the devices' service group) is required")
    radio = {name: value for name, value in (("rssi", uplink.rssi), ("snr", uplink.snr))
             if value is not None}
    return Message("LoRaWAN", apikey, uplink.dev_eui, "lorawan", uplink.payload, received,
                   uplink.time, uplink.port, uplink.decoded, radio or None, uplink.gateways)


async def _uplink(request: Request, parse: Callable[[Any], Uplink]) -> Response:
    platform = platform_of(request)
    received = now_micros(platform.entities.clock)
    event = await read_json(request, platform.settings.max_body_bytes, (JSON,))
    return await _ingest_one(platform, _uplink_message(request, parse(event), received))


@router.post("/iot/lorawan/chirpstack", summary="Uplinks from ChirpStack v4 (HTTP integration)")
async def chirpstack(request: Request) -> Response:
    allow_params(request, frozenset({"k", "event"}))
    if request.query_params.get("event", "up") != "up":
        # join, status, ack, txack, log, location: nothing to measure (yet).
        return Response(status_code=204)
    return await _uplink(request, chirpstack_uplink)


@router.post("/iot/lorawan/tts", summary="Uplinks from The Things Stack v3 (webhook)")
async def things_stack(request: Request) -> Response:
    allow_params(request, frozenset({"k"}))
    return await _uplink(request, tts_uplink)


@router.get("/iot/overview", summary="Devices and gateways at a glance, for operators")
async def overview(request: Request) -> Response:
    platform, tenant, _ = _reading(request, frozenset())
    return json_response(await platform.health.overview(
        tenant, await platform.ingestor.gateways.of(tenant)))


@router.get("/iot/deadletters", summary="Rejected measurements, newest first")
async def dead_letters(request: Request) -> Response:
    platform = platform_of(request)
    allow_params(request, frozenset({"limit"}))
    # Rejected messages of every tenant: for those who administer the platform.
    platform.require("", "administer", DEVICE_TYPES, "rejected measurements")
    text = request.query_params.get("limit", "100")
    if not text.isdigit() or not 0 < int(text) <= 1000:
        raise InvalidRequest("limit must be a whole number from 1 to 1000")
    return json_response(await platform.dead_letters.latest(int(text)))
