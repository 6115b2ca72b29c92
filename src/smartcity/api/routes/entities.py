"""/ngsi-ld/v1/entities: context provision and consumption for single entities."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from smartcity.api.negotiation import (
    compile_context,
    json_response,
    link_context,
    parse_options,
    read_body,
    tenant_of,
)
from smartcity.api.platform import Platform, platform_of
from smartcity.api.views import (
    READ_OPTIONS,
    entity_answer,
    entity_media,
    pagination,
    render_many,
    view_of,
)
from smartcity.core.ngsild.context import TermMap
from smartcity.core.ngsild.errors import BadRequestData, OperationNotSupported
from smartcity.core.ngsild.mutations import AttrOutcome
from smartcity.core.ngsild.normalize import (
    check_entity_id,
    check_name,
    parse_attribute,
    parse_attributes,
    parse_entity,
)
from smartcity.core.ngsild.query import build_query
from smartcity.core.ngsild.render import render_entity

router = APIRouter(prefix="/ngsi-ld/v1", tags=["entities"])
NO_CONTENT = 204


async def _get_terms(platform: Platform, request: Request) -> tuple[TermMap, Any]:
    context = link_context(request)
    return await compile_context(platform.compiler, context), context


@router.post("/entities", status_code=201, summary="Create an entity")
async def create_entity(request: Request) -> Response:
    platform = platform_of(request)
    tenant = tenant_of(request)
    body = await read_body(request, platform.settings.max_body_bytes)
    terms = await compile_context(platform.compiler, body.context)
    entity = parse_entity(body.data, terms)
    await platform.entities.create(tenant, entity)
    return Response(status_code=201, headers={
        "Location": f"/ngsi-ld/v1/entities/{quote(entity['id'], safe=':')}"})


@router.get("/entities", summary="Query entities")
async def query_entities(request: Request) -> Response:
    platform = platform_of(request)
    tenant = tenant_of(request)
    media = entity_media(request)
    terms, context = await _get_terms(platform, request)
    options = parse_options(request, READ_OPTIONS)
    view = view_of(request, terms, options)
    offset, limit, count = pagination(request, platform.settings.default_limit,
                                      platform.settings.max_limit)
    params = dict(request.query_params)
    query = build_query(params, terms, require_filter=False)
    page = await platform.entities.query(tenant, query, offset, limit, count)
    headers = page_headers(request, offset, limit, len(page.entities), page.total)
    return entity_answer(request, render_many(page.entities, terms, view), media, context,
                         headers)


def page_headers(request: Request, offset: int, limit: int, returned: int,
                 total: int | None) -> dict[str, str]:
    """NGSILD-Results-Count and next/prev Link headers for a page of results."""
    headers: dict[str, str] = {}
    if total is not None:
        headers["NGSILD-Results-Count"] = str(total)
    links = []
    more = total > offset + limit if total is not None else returned == limit and limit > 0
    if more:
        links.append(f'<{_page_url(request, offset + limit, limit)}>; rel="next"')
    if offset > 0 and limit > 0:
        links.append(f'<{_page_url(request, max(0, offset - limit), limit)}>; rel="prev"')
    if links:
        headers["Link"] = ", ".join(links)
    return headers


def _page_url(request: Request, offset: int, limit: int) -> str:
    params = dict(request.query_params)
    params.update(offset=str(offset), limit=str(limit))
    return str(request.url.replace_query_params(**params).path) + "?" + "&".join(
        f"{k}={quote(v, safe=',;:')}" for k, v in params.items())


@router.get("/entities/{entity_id:path}/attrs/{attr}", include_in_schema=False)
async def _no_attr_get(entity_id: str, attr: str) -> Response:
    raise OperationNotSupported("GET on a single attribute is not part of the API")


@router.get("/entities/{entity_id:path}", summary="Retrieve an entity")
async def retrieve_entity(entity_id: str, request: Request) -> Response:
    platform = platform_of(request)
    tenant = tenant_of(request)
    media = entity_media(request)
    check_entity_id(entity_id)
    terms, context = await _get_terms(platform, request)
    options = parse_options(request, READ_OPTIONS)
    view = view_of(request, terms, options)
    entity = await platform.entities.retrieve(tenant, entity_id)
    return entity_answer(request, render_entity(entity, terms, view), media, context)


@router.patch("/entities/{entity_id:path}/attrs/{attr}", status_code=204,
              summary="Partially update an attribute")
async def partial_update(entity_id: str, attr: str, request: Request) -> Response:
    platform = platform_of(request)
    tenant = tenant_of(request)
    check_entity_id(entity_id)
    body = await read_body(request, platform.settings.max_body_bytes, patch=True)
    terms = await compile_context(platform.compiler, body.context)
    iri = terms.expand(check_name(attr))
    fragment = _fragment(body.data, iri, terms, allow_null=True)
    await platform.entities.partial_update(tenant, entity_id, iri, fragment)
    return Response(status_code=NO_CONTENT)


@router.put("/entities/{entity_id:path}/attrs/{attr}", status_code=204,
            summary="Replace an attribute")
async def replace_attribute(entity_id: str, attr: str, request: Request) -> Response:
    platform = platform_of(request)
    tenant = tenant_of(request)
    check_entity_id(entity_id)
    body = await read_body(request, platform.settings.max_body_bytes)
    terms = await compile_context(platform.compiler, body.context)
    iri = terms.expand(check_name(attr))
    await platform.entities.replace_attribute(tenant, entity_id, iri,
                                              _fragment(body.data, iri, terms))
    return Response(status_code=NO_CONTENT)


def _fragment(data: Any, iri: str, terms: TermMap, *, allow_null: bool = False) -> list[Any]:
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k != "@context"}
        if not data:
            raise BadRequestData("The attribute fragment is empty")
        if "type" not in data and not ({"value", "object", "languageMap", "vocab",
                                         "valueList", "objectList", "json"} & data.keys()):
            # A fragment with only sub-attributes or metadata: merge them as they are.
            return [parse_attributes(data, terms, allow_null=allow_null) | {
                k: v for k, v in data.items() if k in ("datasetId", "observedAt", "unitCode")}]
    return parse_attribute(data, iri, terms, allow_null=allow_null)


@router.patch("/entities/{entity_id:path}/attrs", summary="Update attributes")
async def update_attributes(entity_id: str, request: Request) -> Response:
    platform = platform_of(request)
    tenant = tenant_of(request)
    check_entity_id(entity_id)
    body = await read_body(request, platform.settings.max_body_bytes, patch=True)
    terms = await compile_context(platform.compiler, body.context)
    attrs = parse_attributes(body.data, terms)
    if not attrs:
        raise BadRequestData("No attribute to update")
    outcome = await platform.entities.update_attributes(tenant, entity_id, attrs)
    return outcome_response(outcome, terms)


@router.post("/entities/{entity_id:path}/attrs", summary="Append attributes")
async def append_attributes(entity_id: str, request: Request) -> Response:
    platform = platform_of(request)
    tenant = tenant_of(request)
    check_entity_id(entity_id)
    options = parse_options(request, frozenset({"noOverwrite"}))
    body = await read_body(request, platform.settings.max_body_bytes)
    terms = await compile_context(platform.compiler, body.context)
    attrs = parse_attributes(body.data, terms)
    outcome = await platform.entities.append_attributes(
        tenant, entity_id, attrs, overwrite="noOverwrite" not in options)
    return outcome_response(outcome, terms)


def outcome_response(outcome: AttrOutcome, terms: TermMap) -> Response:
    """204 when every attribute was written, else 207 with an UpdateResult."""
    if not outcome.not_updated:
        return Response(status_code=NO_CONTENT)
    return json_response({
        "updated": [terms.compact(i) for i in outcome.updated],
        "notUpdated": [{"attributeName": terms.compact(i), "reason": r}
                       for i, r in outcome.not_updated]}, status=207, context=...)


@router.patch("/entities/{entity_id:path}", status_code=204, summary="Merge an entity")
async def merge_entity(entity_id: str, request: Request) -> Response:
    platform = platform_of(request)
    tenant = tenant_of(request)
    check_entity_id(entity_id)
    body = await read_body(request, platform.settings.max_body_bytes, patch=True)
    terms = await compile_context(platform.compiler, body.context)
    if isinstance(body.data, dict) and body.data.get("id", entity_id) != entity_id:
        raise BadRequestData("The body's id differs from the entity id in the URL")
    patch = parse_entity(body.data, terms, require_id=False, require_type=False)
    patch["attrs"] = parse_attributes(body.data, terms, allow_null=True)
    await platform.entities.merge(tenant, entity_id, patch)
    return Response(status_code=NO_CONTENT)


@router.put("/entities/{entity_id:path}", status_code=204, summary="Replace an entity")
async def replace_entity(entity_id: str, request: Request) -> Response:
    platform = platform_of(request)
    tenant = tenant_of(request)
    check_entity_id(entity_id)
    body = await read_body(request, platform.settings.max_body_bytes)
    terms = await compile_context(platform.compiler, body.context)
    entity = parse_entity(body.data, terms, require_id=False)
    if entity.get("id", entity_id) != entity_id:
        raise BadRequestData("The body's id differs from the entity id in the URL")
    entity["id"] = entity_id
    await platform.entities.replace(tenant, entity_id, entity)
    return Response(status_code=NO_CONTENT)


@router.delete("/entities/{entity_id:path}/attrs/{attr}", status_code=204,
               summary="Delete an attribute")
async def delete_attribute(entity_id: str, attr: str, request: Request) -> Response:
    platform = platform_of(request)
    tenant = tenant_of(request)
    check_entity_id(entity_id)
    terms, _ = await _get_terms(platform, request)
    params = request.query_params
    delete_all = params.get("deleteAll") == "true"
    if params.get("deleteAll") not in (None, "true", "false"):
        raise BadRequestData("deleteAll must be true or false")
    await platform.entities.delete_attribute(
        tenant, entity_id, terms.expand(check_name(attr)), params.get("datasetId"), delete_all)
    return Response(status_code=NO_CONTENT)


@router.delete("/entities/{entity_id:path}", status_code=204, summary="Delete an entity")
async def delete_entity(entity_id: str, request: Request) -> Response:
    platform = platform_of(request)
    tenant = tenant_of(request)
    check_entity_id(entity_id)
    await platform.entities.delete(tenant, entity_id)
    return Response(status_code=NO_CONTENT)
