"""/ngsi-ld/v1/entities: context provision and consumption for single entities."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from smartcity.api.errors import MethodNotAllowed
from smartcity.api.negotiation import (
    allow_params,
    compile_context,
    json_response,
    link_terms,
    parse_options,
    read_body,
    tenant_of,
)
from smartcity.api.platform import Platform, platform_of
from smartcity.api.views import (
    QUERY_PARAMS,
    READ_OPTIONS,
    RETRIEVE_PARAMS,
    WRITE_PARAMS,
    entity_answer,
    entity_media,
    pagination,
    view_of,
)
from smartcity.core.ngsild.context import TermMap
from smartcity.core.ngsild.errors import BadRequestData, OperationNotSupported, ResourceNotFound
from smartcity.core.ngsild.linked import Fetch, render_linked
from smartcity.core.ngsild.model import VALUE_MEMBER
from smartcity.core.ngsild.mutations import AttrOutcome
from smartcity.core.ngsild.normalize import (
    check_attribute_name,
    check_entity_id,
    check_no_nulls,
    expand_types,
    parse_attribute,
    parse_entity,
)
from smartcity.core.ngsild.query import build_query, split_list
from smartcity.core.ngsild.render import View
from smartcity.core.ngsild.storage import Page

router = APIRouter(prefix="/ngsi-ld/v1", tags=["entities"])
NO_CONTENT = 204
VALUE_MEMBERS = frozenset(VALUE_MEMBER.values())


def type_gate(request: Request, terms: TermMap) -> frozenset[str] | None:
    """The ``type`` selector of an entity operation: act only on entities of these types."""
    names = request.query_params.get("type")
    return frozenset(expand_types(split_list(names), terms)) if names else None


def check_attribute_path(attr: str, terms: TermMap) -> str:
    """The expanded attribute named in a URL; scope and core members are not attributes,
    and a dot segment, however often percent-encoded, never names one."""
    if attr == "scope":
        raise BadRequestData("scope is an entity member, not an attribute")
    decoded, previous = attr, None
    while decoded != previous:
        previous, decoded = decoded, unquote(decoded)
    if decoded in (".", ".."):
        raise BadRequestData(f"{attr!r} is a path segment, not an attribute name")
    return terms.expand(check_attribute_name(attr, terms))


@dataclass
class EntityWrite:
    """What every write on one entity starts from: checked URL, tenant, parsed body."""

    platform: Platform
    tenant: str
    entity_id: str
    data: Any
    terms: TermMap
    types: frozenset[str] | None


async def entity_write(request: Request, entity_id: str, *, patch: bool = False
                       ) -> EntityWrite:
    platform = platform_of(request)
    allow_params(request, WRITE_PARAMS)
    tenant = tenant_of(request)
    check_entity_id(entity_id)
    body = await read_body(request, platform.settings.max_body_bytes, patch=patch)
    terms = await compile_context(platform.compiler, body.context)
    return EntityWrite(platform, tenant, entity_id, body.data, terms,
                       type_gate(request, terms))


@router.post("/entities", status_code=201, summary="Create an entity")
async def create_entity(request: Request) -> Response:
    platform = platform_of(request)
    allow_params(request, frozenset({"local"}))
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
    allow_params(request, QUERY_PARAMS)
    tenant = tenant_of(request)
    media = entity_media(request)
    terms, context = await link_terms(platform.compiler, request)
    options = parse_options(request, READ_OPTIONS)
    view = view_of(request.query_params, terms, options)
    rendered, headers = await run_query(request, platform, tenant, media, terms,
                                        dict(request.query_params), view)
    return entity_answer(request, rendered, media, context, headers)


async def run_query(request: Request, platform: Platform, tenant: str, media: str,
                    terms: TermMap, params: dict[str, Any], view: View
                    ) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """A page of a query, rendered, with its count and pagination headers (GET /entities
    and POST /entityOperations/query alike)."""
    offset, limit, count = pagination(request, platform.settings.default_limit,
                                      platform.settings.max_limit)
    query = build_query(params, terms, require_filter=True)
    page = await platform.entities.query(tenant, query, offset, limit, count)
    headers = page_headers(request, offset, limit, page, media)
    rendered = await render_linked(page.entities, terms, view, _fetcher(platform, tenant))
    return rendered, headers


def page_headers(request: Request, offset: int, limit: int, page: Page,
                 media: str) -> dict[str, str]:
    """NGSILD-Results-Count and prev/next Link headers for a page of results (clause 5.5.9)."""
    headers: dict[str, str] = {}
    if page.total is not None:
        headers["NGSILD-Results-Count"] = str(page.total)
    if limit == 0:
        return headers
    links = []
    if offset > 0:
        links.append(_page_link(request, max(0, offset - limit), limit, "prev", media))
    if page.more:
        links.append(_page_link(request, offset + limit, limit, "next", media))
    if links:
        headers["Link"] = ", ".join(links)
    return headers


def _page_link(request: Request, offset: int, limit: int, rel: str, media: str) -> str:
    params = dict(request.query_params)
    params.update(offset=str(offset), limit=str(limit))
    query = "&".join(f"{k}={quote(v, safe=_LINK_SAFE)}" for k, v in sorted(params.items()))
    return f'<{request.url.path}?{query}>; rel="{rel}";type="{media}"'


_LINK_SAFE = ":/.*;=|()[]!~'$@+-_"


@router.get("/entities/{entity_id:path}/attrs/{attr}", include_in_schema=False)
async def _no_attr_get(entity_id: str, attr: str) -> Response:
    raise OperationNotSupported("GET on a single attribute is not part of the API")


@router.get("/entities/{entity_id:path}", summary="Retrieve an entity")
async def retrieve_entity(entity_id: str, request: Request) -> Response:
    platform = platform_of(request)
    allow_params(request, RETRIEVE_PARAMS)
    tenant = tenant_of(request)
    media = entity_media(request)
    check_entity_id(entity_id)
    terms, context = await link_terms(platform.compiler, request)
    options = parse_options(request, READ_OPTIONS)
    view = view_of(request.query_params, terms, options)
    entity = await platform.entities.retrieve(tenant, entity_id, type_gate(request, terms))
    if view.attrs is not None and not view.attrs & entity["attrs"].keys():
        raise ResourceNotFound(f"Entity {entity_id} has none of the attributes asked for")
    rendered = await render_linked([entity], terms, view, _fetcher(platform, tenant))
    if not rendered or not rendered[0]:
        raise ResourceNotFound(f"Nothing of entity {entity_id} is left after pick/omit")
    # Flat joins answer a list, unless no linked entity was found.
    body = rendered if len(rendered) > 1 else rendered[0]
    return entity_answer(request, body, media, context)


def _fetcher(platform: Platform, tenant: str) -> Fetch:
    return lambda ids: platform.entities.fetch_many(tenant, ids)


@router.patch("/entities/{entity_id:path}/attrs/{attr}", status_code=204,
              summary="Partially update an attribute")
async def partial_update(entity_id: str, attr: str, request: Request) -> Response:
    write = await entity_write(request, entity_id, patch=True)
    iri = check_attribute_path(attr, write.terms)
    fragment = _fragment(write.data, iri, write.terms, for_update=True)
    check_no_nulls(fragment, attr)
    await write.platform.entities.partial_update(write.tenant, entity_id, iri, fragment,
                                                 write.types)
    return Response(status_code=NO_CONTENT)


@router.put("/entities/{entity_id:path}/attrs/{attr}", status_code=204,
            summary="Replace an attribute")
async def replace_attribute(entity_id: str, attr: str, request: Request) -> Response:
    write = await entity_write(request, entity_id)
    iri = check_attribute_path(attr, write.terms)
    await write.platform.entities.replace_attribute(
        write.tenant, entity_id, iri, _fragment(write.data, iri, write.terms), write.types)
    return Response(status_code=NO_CONTENT)


def _fragment(data: Any, iri: str, terms: TermMap, *, for_update: bool = False) -> list[Any]:
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k != "@context"}
        if not data:
            raise BadRequestData("The attribute fragment is empty")
        if for_update and "type" not in data and not VALUE_MEMBERS & data.keys():
            # Only metadata or sub-attributes: parse them as a Property's and merge them.
            instance = parse_attribute({**data, "value": 0}, iri, terms, for_update=True)[0]
            return [{k: v for k, v in instance.items() if k not in ("type", "value")}]
    return parse_attribute(data, iri, terms, for_update=for_update)


@router.patch("/entities/{entity_id:path}/attrs", summary="Update attributes")
async def update_attributes(entity_id: str, request: Request) -> Response:
    write = await entity_write(request, entity_id, patch=True)
    fragment = _entity_fragment(write.data, entity_id, write.terms)
    outcome = await write.platform.entities.update_attributes(write.tenant, entity_id,
                                                              fragment, write.types)
    return outcome_response(outcome, write.terms)


def _entity_fragment(data: Any, entity_id: str, terms: TermMap) -> dict[str, Any]:
    fragment = parse_entity(data, terms, require_id=False, require_type=False,
                            for_update=True)
    if fragment.get("id", entity_id) != entity_id:
        raise BadRequestData("The body's id differs from the entity id in the URL")
    if not (fragment["attrs"] or fragment.get("type") or "scope" in fragment
            or "expiresAt" in fragment):
        raise BadRequestData("The fragment holds no attribute")
    return fragment


@router.post("/entities/{entity_id:path}/attrs", summary="Append attributes")
async def append_attributes(entity_id: str, request: Request) -> Response:
    options = parse_options(request, frozenset({"noOverwrite"}))
    write = await entity_write(request, entity_id)
    fragment = _entity_fragment(write.data, entity_id, write.terms)
    outcome = await write.platform.entities.append_attributes(
        write.tenant, entity_id, fragment, overwrite="noOverwrite" not in options,
        types=write.types)
    return outcome_response(outcome, write.terms)


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
    write = await entity_write(request, entity_id, patch=True)
    patch = _entity_fragment(write.data, entity_id, write.terms)
    await write.platform.entities.merge(write.tenant, entity_id, patch, write.types)
    return Response(status_code=NO_CONTENT)


@router.put("/entities/{entity_id:path}", status_code=204, summary="Replace an entity")
async def replace_entity(entity_id: str, request: Request) -> Response:
    write = await entity_write(request, entity_id)
    entity = parse_entity(write.data, write.terms, require_id=False)
    if entity.get("id", entity_id) != entity_id:
        raise BadRequestData("The body's id differs from the entity id in the URL")
    entity["id"] = entity_id
    await write.platform.entities.replace(write.tenant, entity_id, entity, write.types)
    return Response(status_code=NO_CONTENT)


@router.delete("/entities/{entity_id:path}/attrs", include_in_schema=False)
async def _no_attribute_name() -> Response:
    raise MethodNotAllowed("DELETE needs an attribute name: /entities/{id}/attrs/{attrId}")


@router.delete("/entities/{entity_id:path}/attrs/{attr}", status_code=204,
               summary="Delete an attribute")
async def delete_attribute(entity_id: str, attr: str, request: Request) -> Response:
    platform = platform_of(request)
    allow_params(request, WRITE_PARAMS)
    tenant = tenant_of(request)
    check_entity_id(entity_id)
    terms, _ = await link_terms(platform.compiler, request)
    params = request.query_params
    delete_all = params.get("deleteAll") == "true"
    if params.get("deleteAll") not in (None, "true", "false"):
        raise BadRequestData("deleteAll must be true or false")
    iri = "scope" if attr == "scope" else terms.expand(check_attribute_name(attr, terms))
    await platform.entities.delete_attribute(tenant, entity_id, iri, params.get("datasetId"),
                                             delete_all, type_gate(request, terms))
    return Response(status_code=NO_CONTENT)


@router.delete("/entities/{entity_id:path}", status_code=204, summary="Delete an entity")
async def delete_entity(entity_id: str, request: Request) -> Response:
    platform = platform_of(request)
    allow_params(request, WRITE_PARAMS)
    tenant = tenant_of(request)
    check_entity_id(entity_id)
    terms, _ = await link_terms(platform.compiler, request)
    await platform.entities.delete(tenant, entity_id, type_gate(request, terms))
    return Response(status_code=NO_CONTENT)


@router.put("/entities", include_in_schema=False)
@router.patch("/entities", include_in_schema=False)
async def _no_entity_id() -> Response:
    raise BadRequestData("The entity id is missing from the URL")
