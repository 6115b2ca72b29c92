"""/ngsi-ld/v1/types and /attributes: what kinds of entities and attributes exist."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from smartcity.api.negotiation import (
    JSON,
    JSON_LD,
    accepted,
    allow_params,
    json_response,
    link_terms,
    tenant_of,
)
from smartcity.api.platform import Platform, platform_of
from smartcity.core.ngsild.context import TermMap
from smartcity.core.ngsild.errors import BadRequestData, ResourceNotFound

router = APIRouter(prefix="/ngsi-ld/v1", tags=["discovery"])

# Query parameters each discovery operation defines (clause 6.3.20 refuses the rest).
# ``local`` is accepted and has no effect: this broker answers from its own store only.
LIST_PARAMS = frozenset({"details", "local"})
INFO_PARAMS = frozenset({"local"})


async def _setup(request: Request, allowed: frozenset[str]
                 ) -> tuple[Any, str, str, TermMap, Any, bool]:
    platform = platform_of(request)
    allow_params(request, allowed)
    for flag in ("details", "local"):
        if request.query_params.get(flag) not in (None, "true", "false"):
            raise BadRequestData(f"{flag} must be true or false")
    tenant = tenant_of(request)
    platform.require(tenant, "read", what="entity types")
    media = accepted(request, (JSON, JSON_LD))
    terms, context = await link_terms(platform.compiler, request)
    await platform.entities.require_tenant(tenant)
    detailed = request.query_params.get("details") == "true"
    return platform, tenant, media, terms, context, detailed


async def _type_attributes(platform: Platform, tenant: str) -> dict[str, dict[str, set[str]]]:
    """The types and attributes of the tenant that the caller may read."""
    types = await platform.store.type_attributes(tenant)
    if platform.gatekeeper is None:
        return types
    return platform.gatekeeper.guard.readable_types(tenant, types)


def _kinds(kinds: set[str]) -> list[str]:
    return sorted(kinds)


@router.get("/types", summary="Available entity types")
async def list_types(request: Request) -> Response:
    platform, tenant, media, terms, context, detailed = await _setup(request, LIST_PARAMS)
    types = await _type_attributes(platform, tenant)
    if detailed:
        body: Any = [{"id": iri, "type": "EntityType", "typeName": terms.compact(iri),
                      "attributeNames": sorted(terms.compact(a) for a in attrs)}
                     for iri, attrs in sorted(types.items())]
    else:
        body = {"id": f"urn:ngsi-ld:EntityTypeList:{uuid.uuid4()}", "type": "EntityTypeList",
                "typeList": sorted(terms.compact(iri) for iri in types)}
    return json_response(body, media=media, context=context)


@router.get("/types/{type_name:path}", summary="Information on one entity type")
async def type_info(type_name: str, request: Request) -> Response:
    platform, tenant, media, terms, context, _ = await _setup(request, INFO_PARAMS)
    iri = terms.expand(type_name)
    types = await _type_attributes(platform, tenant)
    if iri not in types:
        raise ResourceNotFound(f"No entity of type {type_name}")
    counts = await platform.store.type_counts(tenant)
    body = {"id": iri, "type": "EntityTypeInfo", "typeName": terms.compact(iri),
            "entityCount": counts.get(iri, 0),
            "attributeDetails": [
                {"id": attr, "type": "Attribute", "attributeName": terms.compact(attr),
                 "attributeTypes": _kinds(kinds)}
                for attr, kinds in sorted(types[iri].items())]}
    return json_response(body, media=media, context=context)


def _attribute_index(types: dict[str, dict[str, set[str]]]) -> dict[str, tuple[set[str],
                                                                                 set[str]]]:
    """attribute IRI -> (kinds, type IRIs having it)."""
    index: dict[str, tuple[set[str], set[str]]] = {}
    for type_iri, attrs in types.items():
        for attr, kinds in attrs.items():
            entry = index.setdefault(attr, (set(), set()))
            entry[0].update(kinds)
            entry[1].add(type_iri)
    return index


@router.get("/attributes", summary="Available attributes")
async def list_attributes(request: Request) -> Response:
    platform, tenant, media, terms, context, detailed = await _setup(request, LIST_PARAMS)
    index = _attribute_index(await _type_attributes(platform, tenant))
    if detailed:
        body: Any = [{"id": attr, "type": "Attribute", "attributeName": terms.compact(attr),
                      "typeNames": sorted(terms.compact(t) for t in types)}
                     for attr, (_, types) in sorted(index.items())]
    else:
        body = {"id": f"urn:ngsi-ld:AttributeList:{uuid.uuid4()}", "type": "AttributeList",
                "attributeList": sorted(terms.compact(a) for a in index)}
    return json_response(body, media=media, context=context)


@router.get("/attributes/{attr_name:path}", summary="Information on one attribute")
async def attribute_info(attr_name: str, request: Request) -> Response:
    platform, tenant, media, terms, context, _ = await _setup(request, INFO_PARAMS)
    iri = terms.expand(attr_name)
    index = _attribute_index(await _type_attributes(platform, tenant))
    if iri not in index:
        raise ResourceNotFound(f"No attribute {attr_name}")
    kinds, types = index[iri]
    # Only the instances the caller may know of: in entities of the types it may read.
    counts = await platform.store.attribute_counts(tenant, [iri], types)
    body = {"id": iri, "type": "Attribute", "attributeName": terms.compact(iri),
            "attributeCount": counts.get(iri, 0), "attributeTypes": _kinds(kinds),
            "typeNames": sorted(terms.compact(t) for t in types)}
    return json_response(body, media=media, context=context)
