"""/ngsi-ld/v1/entityOperations: batch create, upsert, update, merge, delete and query."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from smartcity.api.negotiation import (
    JSON_LD,
    TENANT_HEADER,
    Body,
    allow_params,
    compile_context,
    json_response,
    parse_options,
    read_body,
    tenant_of,
)
from smartcity.api.platform import Platform, platform_of
from smartcity.api.routes.entities import run_query
from smartcity.api.views import (
    BATCH_QUERY_PARAMS,
    READ_OPTIONS,
    entity_answer,
    entity_media,
    view_of,
)
from smartcity.core.ngsild.context import TermMap
from smartcity.core.ngsild.entities import BatchResult
from smartcity.core.ngsild.errors import BadRequestData, NgsiLdError
from smartcity.core.ngsild.model import Entity
from smartcity.core.ngsild.normalize import check_entity_id, parse_entity

router = APIRouter(prefix="/ngsi-ld/v1/entityOperations", tags=["batch"])
# Members of a Query body that shape the answer rather than select entities.
VIEW_MEMBERS = frozenset({"attrs", "lang", "pick", "omit", "join", "joinLevel", "datasetId"})


async def _entities(platform: Platform, body: Body, result: BatchResult, *,
                    fragments: bool = False) -> list[Entity]:
    """Parse each entity of a batch on its own: a bad one is reported, the others go on.

    With ``fragments`` (update, merge) the items are update fragments: no type needed,
    NGSI-LD null allowed.
    """
    if not isinstance(body.data, list):
        raise BadRequestData("A batch body must be a JSON array")
    if len(body.data) == 0:
        raise BadRequestData("A batch body must not be empty")
    if any(not isinstance(item, dict) for item in body.data):
        raise BadRequestData("Every item of a batch must be an entity object")
    parsed: list[Entity] = []
    for item in body.data:
        entity_id = item.get("id", item.get("@id"))
        try:
            if body.ld and "@context" not in item:
                raise BadRequestData("An application/ld+json entity needs an @context")
            if not body.ld and "@context" in item:
                raise BadRequestData("An application/json entity must not hold an @context")
            context = item.get("@context") if body.ld else body.context
            terms = await compile_context(platform.compiler, context)
            entity = parse_entity(item, terms, require_type=not fragments,
                                  for_update=fragments)
        except NgsiLdError as exc:
            result.fail(entity_id if isinstance(entity_id, str) else "", exc)
            continue
        parsed.append(entity)
    return parsed


def batch_response(request: Request, result: BatchResult, *,
                   created_status: bool = False) -> Response:
    refused = [entity_id for entity_id, error in result.errors if error.status in (401, 403)]
    if refused:
        platform_of(request).record_act(
            "denied", "entities", refused[0] if len(refused) == 1 else
            f"{len(refused)} entities", tenant=request.headers.get(TENANT_HEADER, ""),
            outcome="denied", detail={"path": request.url.path, "entities": refused[:1000]})
    if result.errors:
        return json_response({
            "success": result.success,
            "errors": [{"entityId": entity_id, "error": error.problem()}
                       for entity_id, error in result.errors]}, status=207, context=...)
    if created_status and result.created:
        return json_response(result.created, status=201, context=...)
    return Response(status_code=204)


@router.post("/create", summary="Create a batch of entities")
async def batch_create(request: Request) -> Response:
    platform = platform_of(request)
    allow_params(request, frozenset({"options", "local"}))
    parse_options(request, frozenset())
    tenant = tenant_of(request)
    body = await read_body(request, platform.settings.max_body_bytes)
    result = BatchResult()
    entities = await _entities(platform, body, result)
    await platform.entities.batch_create(tenant, entities, result)
    if result.errors:
        return batch_response(request, result)
    return json_response(result.success, status=201, context=...)


@router.post("/upsert", summary="Create or update a batch of entities")
async def batch_upsert(request: Request) -> Response:
    platform = platform_of(request)
    allow_params(request, frozenset({"options", "local"}))
    tenant = tenant_of(request)
    options = parse_options(request, frozenset({"replace", "update"}))
    if len(options) > 1:
        raise BadRequestData("Only one of options=replace and options=update may be given")
    body = await read_body(request, platform.settings.max_body_bytes)
    result = BatchResult()
    entities = await _entities(platform, body, result)
    await platform.entities.batch_upsert(tenant, entities, "update" not in options, result)
    return batch_response(request, result, created_status=True)


@router.post("/update", summary="Update attributes of a batch of entities")
async def batch_update(request: Request) -> Response:
    platform = platform_of(request)
    allow_params(request, frozenset({"options", "local"}))
    tenant = tenant_of(request)
    options = parse_options(request, frozenset({"noOverwrite"}))
    body = await read_body(request, platform.settings.max_body_bytes)
    result = BatchResult()
    entities = await _entities(platform, body, result, fragments=True)
    await platform.entities.batch_update(tenant, entities, "noOverwrite" not in options, result)
    return batch_response(request, result)


@router.post("/merge", summary="Merge a batch of entities")
async def batch_merge(request: Request) -> Response:
    platform = platform_of(request)
    allow_params(request, frozenset({"options", "local"}))
    tenant = tenant_of(request)
    body = await read_body(request, platform.settings.max_body_bytes, patch=True)
    result = BatchResult()
    entities = await _entities(platform, body, result, fragments=True)
    await platform.entities.batch_merge(tenant, entities, result)
    return batch_response(request, result)


@router.post("/delete", summary="Delete a batch of entities")
async def batch_delete(request: Request) -> Response:
    platform = platform_of(request)
    allow_params(request, frozenset({"options", "local"}))
    tenant = tenant_of(request)
    body = await read_body(request, platform.settings.max_body_bytes)
    if not isinstance(body.data, list) or not body.data:
        raise BadRequestData("A batch delete body must be a non-empty array of entity ids")
    result = BatchResult()
    ids: list[str] = []
    for item in body.data:
        try:
            ids.append(check_entity_id(item))
        except NgsiLdError as exc:
            result.fail(item if isinstance(item, str) else str(item), exc)
    await platform.entities.batch_delete(tenant, ids, result)
    return batch_response(request, result)


@router.post("/query", summary="Query entities with a Query body")
async def batch_query(request: Request) -> Response:
    platform = platform_of(request)
    allow_params(request, BATCH_QUERY_PARAMS)
    tenant = tenant_of(request)
    media = entity_media(request)
    body = await read_body(request, platform.settings.max_body_bytes)
    terms = await compile_context(platform.compiler, body.context)
    params = query_params(body.data, terms)
    options = parse_options(request, READ_OPTIONS)
    shape = {**request.query_params, **{k: v for k, v in params.items() if k in VIEW_MEMBERS}}
    view = view_of(shape, terms, options)
    rendered, headers = await run_query(request, platform, tenant, media, terms, params, view)
    context = body.context
    if media != JSON_LD and context is not None and not isinstance(context, str):
        # A plain JSON answer links its @context: an inline one gets a URL of its own.
        context = platform.contexts.add_implicit(context, str(request.base_url), tenant)["URL"]
    return entity_answer(request, rendered, media, context, headers)


def query_params(data: Any, terms: TermMap) -> dict[str, Any]:
    """A Query data type (clause 5.2.23) as the same parameters a GET query takes."""
    if not isinstance(data, dict) or data.get("type") != "Query":
        raise BadRequestData("The body must be a Query object with type 'Query'")
    params: dict[str, Any] = {}
    selectors = data.get("entities", [])
    if not isinstance(selectors, list) or ("entities" in data and not selectors):
        raise BadRequestData("entities must be a non-empty array of EntitySelector")
    types: list[str] = []
    ids: list[str] = []
    for selector in selectors:
        if not isinstance(selector, dict) or not isinstance(selector.get("type"), str):
            raise BadRequestData("Each entity selector must be an object with a type")
        types.append(selector["type"])
        selected = selector.get("id")
        if selected is not None:
            selected = [selected] if isinstance(selected, str) else selected
            if not isinstance(selected, list) or not all(isinstance(i, str) for i in selected):
                raise BadRequestData("A selector's id must be a URI or an array of URIs")
            ids.extend(selected)
        elif selector.get("idPattern"):
            params["idPattern"] = selector["idPattern"]
    if ids:
        params.pop("idPattern", None)
    if types:
        params["type"] = ",".join(types)
    if ids:
        params["id"] = ",".join(ids)
    if "attrs" in data:
        attrs = data["attrs"]
        if not isinstance(attrs, list) or not attrs or \
                not all(isinstance(a, str) for a in attrs):
            raise BadRequestData("attrs must be a non-empty array of attribute names")
        params["attrs"] = ",".join(attrs)
    for key in ("q", "scopeQ", "lang", "pick", "omit", "join", "joinLevel", "datasetId"):
        value = data.get(key)
        if value is None:
            continue
        if key == "joinLevel" and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        elif key in ("pick", "omit", "datasetId") and isinstance(value, list) \
                and all(isinstance(v, str) for v in value):
            value = ",".join(value)
        if not isinstance(value, str):
            raise BadRequestData(f"{key} has the wrong type in the Query")
        params[key] = value
    if "ordering" in data:
        params.update(_ordering(data["ordering"]))
    if "temporalQ" in data:
        raise BadRequestData("temporalQ belongs to temporal queries only")
    geo_q = data.get("geoQ")
    if geo_q is not None:
        if not isinstance(geo_q, dict):
            raise BadRequestData("geoQ must be an object")
        params.update(georel=geo_q.get("georel"), geometry=geo_q.get("geometry"),
                      coordinates=geo_q.get("coordinates"),
                      geoproperty=geo_q.get("geoproperty"))
    return params


def _ordering(ordering: Any) -> dict[str, Any]:
    """The OrderingInfo of a Query (clause 5.2.43) as ordering parameters."""
    if not isinstance(ordering, dict):
        raise BadRequestData("ordering must be an object")
    params: dict[str, Any] = {}
    order = ordering.get("orderBy")
    if not isinstance(order, list) or not order or not all(isinstance(o, str) for o in order):
        raise BadRequestData("ordering.orderBy must be a non-empty array of strings")
    params["orderBy"] = order
    if "coordinates" in ordering:
        if not isinstance(ordering["coordinates"], list):
            raise BadRequestData("ordering.coordinates must be a JSON array")
        params["orderFrom"] = ordering["coordinates"]
    if "geometry" in ordering:
        if not isinstance(ordering["geometry"], str):
            raise BadRequestData("ordering.geometry must be a string")
        params["orderGeometry"] = ordering["geometry"]
    if "collation" in ordering:
        if not isinstance(ordering["collation"], str):
            raise BadRequestData("ordering.collation must be a string")
        params["collation"] = ordering["collation"]
    return params
