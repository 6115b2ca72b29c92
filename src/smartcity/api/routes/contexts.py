"""/ngsi-ld/v1/jsonldContexts: @context management (clause 5.13)."""

from __future__ import annotations

import asyncio

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from smartcity.api.negotiation import (
    JSON,
    JSON_LD,
    accepted,
    allow_params,
    json_response,
    tenant_of,
)
from smartcity.api.platform import platform_of
from smartcity.core.ngsild.context_registry import CACHED, PATH, details
from smartcity.core.ngsild.errors import (
    BadRequestData,
    InvalidRequest,
    LengthRequired,
    PayloadTooLarge,
    ResourceNotFound,
    UnsupportedMediaType,
)

router = APIRouter(prefix="/ngsi-ld/v1", tags=["@context"])


def _flag(request: Request, name: str) -> bool:
    value = request.query_params.get(name)
    if value is None:
        return False
    if value not in ("true", "false"):
        raise BadRequestData(f"{name} must be true or false")
    return value == "true"


async def _json_body(request: Request, max_bytes: int) -> object:
    """The request body as JSON: a @context document is plain JSON with an @context member,
    so the media-type rules for NGSI-LD payloads (no @context in application/json) do
    not apply here."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in (JSON, JSON_LD):
        raise UnsupportedMediaType(f"Content-Type must be {JSON} or {JSON_LD}")
    length = request.headers.get("content-length")
    if length is None:
        raise LengthRequired("A request body needs a Content-Length header")
    if length.isdigit() and int(length) > max_bytes:
        raise PayloadTooLarge(f"The body is larger than {max_bytes} bytes")
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > max_bytes:
            raise PayloadTooLarge(f"The body is larger than {max_bytes} bytes")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The body is not valid JSON: {exc}") from None


@router.post("/jsonldContexts", status_code=201, summary="Add a @context to host")
async def add_context(request: Request) -> Response:
    platform = platform_of(request)
    allow_params(request, frozenset())
    tenant = tenant_of(request)
    body = await _json_body(request, platform.settings.max_body_bytes)
    record = platform.contexts.add_hosted(body, str(request.base_url), tenant)
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
    return Response(status_code=204)
