"""/ngsi-ld/v1/temporal: the history of entities (clause 6.18-6.24)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from smartcity.api.errors import MethodNotAllowed
from smartcity.api.negotiation import (
    JSON,
    JSON_LD,
    accepted,
    allow_params,
    compile_context,
    json_response,
    link_terms,
    parse_options,
    read_body,
    tenant_of,
)
from smartcity.api.platform import Platform, platform_of
from smartcity.api.routes.batch import query_params
from smartcity.api.routes.entities import check_attribute_path, page_headers
from smartcity.api.views import pagination, view_of
from smartcity.core.ngsild.context import TermMap
from smartcity.core.ngsild.errors import BadRequestData, ResourceNotFound
from smartcity.core.ngsild.history_storage import SeriesFilter
from smartcity.core.ngsild.instants import format_instant
from smartcity.core.ngsild.normalize import check_entity_id, parse_attributes, parse_entity
from smartcity.core.ngsild.query import build_query
from smartcity.core.ngsild.render import View
from smartcity.core.ngsild.storage import Page
from smartcity.core.ngsild.temporal import Cut, Order, check_instance_id
from smartcity.core.ngsild.temporal_query import (
    TEMPORAL_OPTIONS,
    TemporalQuery,
    parse_temporal,
)
from smartcity.core.ngsild.temporal_render import render_temporal

router = APIRouter(prefix="/ngsi-ld/v1/temporal", tags=["temporal"])
NO_CONTENT = 204
_TEMPORAL = {"timerel", "timeAt", "endTimeAt", "timeproperty", "lastN", "aggrMethods",
             "aggrPeriodDuration"}
_SHAPE = {"attrs", "options", "format", "lang", "pick", "omit", "datasetId", "local",
          "expandValues", "entityMap", "csf", "via"}
RETRIEVE_PARAMS = frozenset({*_TEMPORAL, *_SHAPE, "type"})
QUERY_PARAMS = frozenset({*_TEMPORAL, *_SHAPE, "type", "id", "idPattern", "q", "scopeQ",
                          "georel", "geometry", "coordinates", "geoproperty", "limit",
                          "offset", "count", "orderBy"})
BATCH_QUERY_PARAMS = frozenset({"options", "format", "limit", "offset", "count", "local"})


# -- provision -------------------------------------------------------------------
@router.post("/entities", summary="Create or update the temporal representation of an "
             "entity")
async def upsert_temporal(request: Request) -> Response:
    platform = platform_of(request)
    allow_params(request, frozenset({"local"}))
    tenant = tenant_of(request)
    body = await read_body(request, platform.settings.max_body_bytes)
    terms = await compile_context(platform.compiler, body.context)
    entity = parse_entity(body.data, terms, temporal=True)
    created = await platform.temporal.upsert(tenant, entity)
    if not created:
        return Response(status_code=NO_CONTENT)
    return Response(status_code=201, headers={
        "Location": f"/ngsi-ld/v1/temporal/entities/{quote(entity['id'], safe=':')}"})


@router.post("/entities/{entity_id:path}/attrs", status_code=204,
             summary="Add attributes to the temporal representation of an entity")
async def append_temporal(entity_id: str, request: Request) -> Response:
    platform = platform_of(request)
    allow_params(request, frozenset({"local"}))
    tenant = tenant_of(request)
    check_entity_id(entity_id)
    body = await read_body(request, platform.settings.max_body_bytes)
    terms = await compile_context(platform.compiler, body.context)
    fragment = parse_entity(body.data, terms, require_id=False, require_type=False,
                            temporal=True)
    if fragment.get("id", entity_id) != entity_id:
        raise BadRequestData("The body's id differs from the entity id in the URL")
    if not fragment["attrs"]:
        raise BadRequestData("The body holds no attribute")
    await platform.temporal.append(tenant, entity_id, fragment["attrs"])
    return Response(status_code=NO_CONTENT)


@router.patch("/entities/{entity_id:path}/attrs/{attr}/{instance}", status_code=204,
              summary="Modify an attribute instance")
async def modify_instance(entity_id: str, attr: str, instance: str,
                          request: Request) -> Response:
    platform = platform_of(request)
    allow_params(request, frozenset({"local"}))
    tenant = tenant_of(request)
    if not attr:
        raise MethodNotAllowed("PATCH needs an attribute name")
    check_entity_id(entity_id)
    check_instance_id(instance)
    body = await read_body(request, platform.settings.max_body_bytes, patch=True)
    terms = await compile_context(platform.compiler, body.context)
    iri = check_attribute_path(attr, terms)
    data = body.data
    if not isinstance(data, dict):
        raise BadRequestData("The body must be a JSON object")
    named = attr in data or terms.compact(iri) in data
    fragment = parse_attributes(data if named else {attr: data}, terms, temporal=True)
    instances = fragment.get(iri)
    if not instances or len(instances) != 1 or len(fragment) != 1:
        raise BadRequestData(f"The body must be one instance of {attr}")
    await platform.temporal.modify_instance(tenant, entity_id, iri, instance, instances[0])
    return _history_edited(platform, tenant, entity_id, iri, "modified")


@router.delete("/entities/{entity_id:path}/attrs/{attr}/{instance}", status_code=204,
               summary="Delete an attribute instance")
async def delete_instance(entity_id: str, attr: str, instance: str,
                          request: Request) -> Response:
    platform = platform_of(request)
    allow_params(request, frozenset({"local"}))
    tenant = tenant_of(request)
    check_entity_id(entity_id)
    terms, _ = await link_terms(platform.compiler, request)
    iri = check_attribute_path(attr, terms)
    check_instance_id(instance)
    await platform.temporal.delete_instance(tenant, entity_id, iri, instance)
    return _history_edited(platform, tenant, entity_id, iri, "deleted instance")


@router.delete("/entities/{entity_id:path}/attrs/{attr}", status_code=204,
               summary="Delete an attribute from the temporal representation")
async def delete_attribute(entity_id: str, attr: str, request: Request) -> Response:
    platform = platform_of(request)
    allow_params(request, frozenset({"local", "deleteAll", "datasetId"}))
    tenant = tenant_of(request)
    check_entity_id(entity_id)
    terms, _ = await link_terms(platform.compiler, request)
    iri = check_attribute_path(attr, terms)
    params = request.query_params
    if params.get("deleteAll") not in (None, "true", "false"):
        raise BadRequestData("deleteAll must be true or false")
    await platform.temporal.delete_attribute(tenant, entity_id, iri, params.get("datasetId"),
                                             params.get("deleteAll") == "true")
    return _history_edited(platform, tenant, entity_id, iri, "deleted attribute")


@router.delete("/entities/{entity_id:path}", status_code=204,
               summary="Delete the temporal representation of an entity")
async def delete_temporal(entity_id: str, request: Request) -> Response:
    platform = platform_of(request)
    allow_params(request, frozenset({"local"}))
    tenant = tenant_of(request)
    if not entity_id:
        raise MethodNotAllowed("DELETE needs an entity id")
    if "/attrs/" in entity_id:
        raise BadRequestData("An attribute name in the URL is empty")
    check_entity_id(entity_id)
    await platform.temporal.delete(tenant, entity_id)
    return _history_edited(platform, tenant, entity_id, None, "deleted")


def _history_edited(platform: Platform, tenant: str, entity_id: str, attr: str | None,
                    change: str) -> Response:
    """Record a change of history made through the API; the answer to it."""
    platform.record_act("write", "history", entity_id, tenant=tenant,
                        detail={"change": change, "attribute": attr})
    return Response(status_code=NO_CONTENT)


@router.delete("/entities", include_in_schema=False)
async def _no_entity_id() -> Response:
    raise MethodNotAllowed("DELETE needs an entity id: /temporal/entities/{entityId}")


# -- consumption -----------------------------------------------------------------
@router.get("/entities/{entity_id:path}", summary="Retrieve the temporal evolution of an "
            "entity")
async def retrieve_temporal(entity_id: str, request: Request) -> Response:
    platform = platform_of(request)
    allow_params(request, RETRIEVE_PARAMS)
    tenant = tenant_of(request)
    media = accepted(request)
    terms, context = await link_terms(platform.compiler, request)
    options = parse_options(request, TEMPORAL_OPTIONS)
    params = request.query_params
    view = view_of({k: v for k, v in params.items() if k not in ("format", "options")},
                   terms, set())
    temporal = parse_temporal(params, options, params.get("format"))
    check_entity_id(entity_id)
    entity, cut = await platform.temporal.retrieve(tenant, entity_id, temporal,
                                                   _series(view))
    rendered = render_temporal(entity, terms, temporal, view)
    if not rendered:
        raise ResourceNotFound(f"Entity {entity_id} has nothing the projection keeps")
    return _answer(rendered, media, context, cut)


@router.get("/entities", summary="Query the temporal evolution of entities")
async def query_temporal(request: Request) -> Response:
    platform = platform_of(request)
    allow_params(request, QUERY_PARAMS)
    tenant = tenant_of(request)
    media = accepted(request)
    terms, context = await link_terms(platform.compiler, request)
    options = parse_options(request, TEMPORAL_OPTIONS)
    params = request.query_params
    view = view_of({k: v for k, v in params.items() if k not in ("format", "options")},
                   terms, set())
    temporal = parse_temporal(params, options, params.get("format"))
    return await _query(request, platform, tenant, terms, dict(params), temporal, view,
                        media, context)


@router.post("/entityOperations/query", summary="Query the temporal evolution of entities "
             "with a Query body")
async def batch_query_temporal(request: Request) -> Response:
    platform = platform_of(request)
    allow_params(request, BATCH_QUERY_PARAMS)
    tenant = tenant_of(request)
    media = accepted(request)
    body = await read_body(request, platform.settings.max_body_bytes)
    terms = await compile_context(platform.compiler, body.context)
    data = body.data
    if not isinstance(data, dict):
        raise BadRequestData("The body must be a Query object with type 'Query'")
    params = query_params({k: v for k, v in data.items()
                           if k not in ("temporalQ", "aggrParams")}, terms)
    temporal_q = _object(data, "temporalQ")
    aggregation = _object(data, "aggrParams")
    merged = {**temporal_q, **aggregation}
    options = parse_options(request, TEMPORAL_OPTIONS)
    if merged.get("aggrMethods") is not None and not options & {"temporalValues"}:
        options.add("aggregatedValues")
    temporal = parse_temporal(merged, options, request.query_params.get("format"))
    view = view_of({k: v for k, v in params.items()
                    if k in ("attrs", "pick", "omit", "lang", "datasetId")}, terms, set())
    return await _query(request, platform, tenant, terms, params, temporal, view, media,
                        body.context if media == JSON_LD else None)


def _object(data: dict[str, Any], member: str) -> dict[str, Any]:
    value = data.get(member, {})
    if not isinstance(value, dict):
        raise BadRequestData(f"{member} must be an object")
    return value


async def _query(request: Request, platform: Platform, tenant: str, terms: TermMap,
                 params: dict[str, Any], temporal: TemporalQuery, view: View, media: str,
                 context: Any) -> Response:
    offset, limit, count = pagination(request, platform.settings.default_limit,
                                      platform.settings.max_limit)
    query = build_query(params, terms, require_filter=True, scope_in_predicate=False)
    page = await platform.temporal.query(tenant, query, temporal, _series(view), offset,
                                         limit, count, _order(params.get("orderBy")))
    headers = page_headers(request, offset, limit, Page([], page.total, page.more), media)
    rendered = [render_temporal(e, terms, temporal, view) for e in page.entities]
    return _answer(rendered, media, context, page.cut, headers)


def _order(value: Any) -> Order:
    if value is None:
        return "stored"
    text = ",".join(value) if isinstance(value, list) else str(value)
    if text in ("id", "id;asc"):
        return "id"
    if text == "id;desc":
        return "id;desc"
    raise BadRequestData(f"Temporal queries are ordered by id only: {text!r}")


def _series(view: View) -> SeriesFilter:
    datasets = frozenset("" if d == "@none" else d for d in view.dataset_ids) \
        if view.dataset_ids is not None else None
    return SeriesFilter(view.attrs, datasets)


def _answer(rendered: Any, media: str, context: Any, cut: Cut | None,
            headers: dict[str, str] | None = None) -> Response:
    headers = dict(headers or {})
    status = 200
    if cut is not None:
        status = 206
        size = str(cut.size) if cut.size is not None else "*"
        headers["Content-Range"] = (f"date-time {format_instant(cut.start)}-"
                                    f"{format_instant(cut.end)}/{size}")
    return json_response(rendered, status=status, media=media if media in (JSON, JSON_LD)
                         else JSON, context=context, headers=headers)
