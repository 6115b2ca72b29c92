"""/ngsi-ld/v1/jsonldContexts: @context management (clause 5.13)."""

from __future__ import annotations

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from smartcity.api.negotiation import JSON, JSON_LD, accepted, json_response, read_body
from smartcity.api.platform import platform_of
from smartcity.core.ngsild.context import bundled_document, is_core_context
from smartcity.core.ngsild.context_registry import CACHED, HOSTED, details
from smartcity.core.ngsild.errors import BadRequestData, OperationNotSupported

router = APIRouter(prefix="/ngsi-ld/v1", tags=["@context"])


def _flag(request: Request, name: str) -> bool | None:
    value = request.query_params.get(name)
    if value is None:
        return None
    if value not in ("true", "false"):
        raise BadRequestData(f"{name} must be true or false")
    return value == "true"


@router.post("/jsonldContexts", status_code=201, summary="Add a @context to host")
async def add_context(request: Request) -> Response:
    platform = platform_of(request)
    body = await read_body(request, platform.settings.max_body_bytes)
    record = platform.contexts.add_hosted(body.data, str(request.base_url))
    return Response(status_code=201, headers={"Location": record["URL"]})


@router.get("/jsonldContexts", summary="List @contexts")
async def list_contexts(request: Request) -> Response:
    platform = platform_of(request)
    accepted(request, (JSON, JSON_LD))
    detailed = _flag(request, "details")
    records = platform.contexts.list(request.query_params.get("kind") or None)
    body = [details(r) for r in records] if detailed else [r["URL"] for r in records]
    return json_response(body, context=...)


@router.get("/jsonldContexts/{context_id:path}", summary="Serve a @context")
async def serve_context(context_id: str, request: Request) -> Response:
    platform = platform_of(request)
    detailed = _flag(request, "details")
    if is_core_context(context_id) and not detailed:
        return Response(orjson.dumps(bundled_document(context_id)), media_type=JSON_LD)
    record = platform.contexts.find(context_id)
    if detailed:
        return json_response(details(record), context=...)
    return Response(orjson.dumps(record["document"]), media_type=JSON_LD)


@router.delete("/jsonldContexts/{context_id:path}", status_code=204, summary="Delete a @context")
async def delete_context(context_id: str, request: Request) -> Response:
    platform = platform_of(request)
    reload = _flag(request, "reload")
    if is_core_context(context_id):
        raise BadRequestData("The core @context cannot be deleted")
    record = platform.contexts.find(context_id) if not reload else None
    if reload:
        try:
            record = platform.contexts.find(context_id)
        except Exception:
            raise BadRequestData(f"No cached @context {context_id!r} to reload") from None
        if record["kind"] != CACHED:
            raise BadRequestData("Only a cached @context can be reloaded")
    assert record is not None
    if record["kind"] not in (HOSTED, CACHED):
        raise OperationNotSupported("Implicitly created @contexts are deleted with their data")
    platform.contexts.delete(context_id)
    platform.compiler.forget()
    if reload:
        platform.compiler.documents.get(record["URL"])
    return Response(status_code=204)
