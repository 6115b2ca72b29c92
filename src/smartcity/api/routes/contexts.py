"""/ngsi-ld/v1/jsonldContexts: @context management (clause 5.13)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from smartcity.api.negotiation import (
    JSON,
    JSON_LD,
    accepted,
    allow_params,
    json_response,
    read_json,
    tenant_of,
)
from smartcity.api.platform import platform_of
from smartcity.core.ngsild.context_registry import CACHED, PATH, details
from smartcity.core.ngsild.errors import (
    BadRequestData,
    ResourceNotFound,
)

router = APIRouter(prefix="/ngsi-ld/v1", tags=["@context"])


def _flag(request: Request, name: str) -> bool:
    value = request.query_params.get(name)
    if value is None:
        return False
    if value not in ("true", "false"):
        raise BadRequestData(f"{name} must be true or false")
    return value == "true"


@router.post("/jsonldContexts", status_code=201, summary="Add a @context to host")
async def add_context(request: Request) -> Response:
    platform = platform_of(request)
    allow_params(request, frozenset())
    tenant = tenant_of(request)
    platform.require(tenant, "write", what="@contexts")
    # A @context document is plain JSON with an @context member: the NGSI-LD payload
    # rule (no @context in application/json) does not apply to it.
    body = await read_json(request, platform.settings.max_body_bytes, (JSON, JSON_LD))
    record = platform.contexts.add_hosted(body, str(request.base_url), tenant)
    platform.record_act("administer", "@context", record["localId"], tenant=tenant)
    await platform.settle()
    return Response(status_code=201, headers={"Location": PATH + record["localId"]})


@router.get("/jsonldContexts", summary="List @contexts")
async def list_contexts(request: Request) -> Response:
    platform = platform_of(request)
    allow_params(request, frozenset({"details", "kind"}))
    media = accepted(request, (JSON, JSON_LD))
    detailed = _flag(request, "details")
    kind = request.query_params.get("kind")
    records = platform.contexts.list(kind, tenant_of(request))
    body = [details(r) for r in records] if detailed else [r["URL"] for r in records]
    return json_response(body, media=media, context=...)


@router.get("/jsonldContexts/{context_id:path}", summary="Serve a @context")
async def serve_context(context_id: str, request: Request) -> Response:
    platform = platform_of(request)
    allow_params(request, frozenset({"details"}))
    media = accepted(request, (JSON, JSON_LD))
    detailed = _flag(request, "details")
    record = platform.contexts.find(context_id, tenant_of(request))
    if detailed:
        return json_response(details(record), media=media, context=...)
    return json_response(record["document"], media=media, context=...)


@router.delete("/jsonldContexts/{context_id:path}", status_code=204,
               summary="Delete (or reload) a @context")
async def delete_context(context_id: str, request: Request) -> Response:
    """Clause 5.13.5: Hosted and ImplicitlyCreated entries are removed; a Cached one is
    removed, or with ``reload=true`` downloaded again (kept as it was if that fails).
    The core @context cannot be deleted; reloading it re-installs the bundled copy."""
    platform = platform_of(request)
    allow_params(request, frozenset({"reload"}))
    reload = _flag(request, "reload")
    tenant = tenant_of(request)
    platform.require(tenant, "administer", what="@contexts")
    contexts = platform.contexts
    if not reload:
        contexts.delete(context_id, tenant)
    else:
        try:
            record = contexts.find(context_id, tenant)
        except ResourceNotFound:
            raise BadRequestData(f"No Cached @context {context_id!r} to reload") from None
        if record["kind"] != CACHED:
            raise BadRequestData(f"Only a Cached @context can be reloaded, not a {record['kind']}")
        if not contexts.is_core(record):
            document = await asyncio.to_thread(
                platform.compiler.documents.download, record["URL"])
            contexts.replace(record, document)
    platform.compiler.forget()
    await platform.settle()
    platform.record_act("administer", "@context", context_id, tenant=tenant,
                        detail={"reloaded" if reload else "deleted": True})
    return Response(status_code=204)
