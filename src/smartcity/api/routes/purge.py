"""DELETE /ngsi-ld/v1/entities: Purge Entities (clause 5.6.21, HTTP binding 6.4.3.3)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from smartcity.api.negotiation import allow_params, link_terms, tenant_of
from smartcity.api.platform import platform_of
from smartcity.core.ngsild.purge import plan_purge, purge_entities

router = APIRouter(prefix="/ngsi-ld/v1", tags=["entities"])

PURGE_PARAMS = frozenset({"type", "id", "idPattern", "attrs", "q", "scopeQ", "georel",
                          "geometry", "coordinates", "geoproperty", "local", "keep", "drop"})


@router.delete("/entities", status_code=204, summary="Purge entities")
async def purge(request: Request) -> Response:
    """Delete every entity the query selects, or with keep/drop only some attributes."""
    platform = platform_of(request)
    allow_params(request, PURGE_PARAMS)
    tenant = tenant_of(request)
    platform.require(tenant, "write", what="entities")
    terms, _ = await link_terms(platform.compiler, request)
    plan = plan_purge(dict(request.query_params), terms)
    await purge_entities(platform.entities, tenant, plan)
    return Response(status_code=204)
