"""/ngsi-ld/v1/info/sourceIdentity: who this context source is (clause 5.15)."""

from __future__ import annotations

import time
import uuid

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from smartcity.api.negotiation import JSON, JSON_LD, accepted, json_response, tenant_of
from smartcity.api.platform import platform_of
from smartcity.core.clock import timestamp

router = APIRouter(prefix="/ngsi-ld/v1", tags=["identity"])
_STARTED = time.monotonic()
# One alias per broker instance and tenant: stable across calls, distinct per tenant.
_INSTANCE = uuid.uuid4()


def _duration(seconds: float) -> str:
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"PT{hours}H{minutes}M{secs + seconds - whole:.3f}S"


@router.get("/info/sourceIdentity", summary="Context source identity")
async def source_identity(request: Request) -> Response:
    platform = platform_of(request)
    media = accepted(request, (JSON, JSON_LD))
    tenant = tenant_of(request)
    alias = str(uuid.uuid5(_INSTANCE, tenant or "@default"))
    body = {"id": f"urn:ngsi-ld:ContextSourceIdentity:{alias}",
            "type": "ContextSourceIdentity",
            "contextSourceAlias": alias,
            "contextSourceUptime": _duration(time.monotonic() - _STARTED),
            "contextSourceTimeAt": timestamp(platform.entities.clock.now()),
            "contextSourceExtras": {"software": "smartcity"}}
    return json_response(body, media=media)
