"""/ngsi-ld/v1/subscriptions: the Subscription API (clause 5.8, HTTP binding 6.10-6.11)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

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
from smartcity.api.routes.entities import page_headers
from smartcity.api.views import pagination
from smartcity.core.ngsild.context import TermMap
from smartcity.core.ngsild.errors import BadRequestData
from smartcity.core.ngsild.normalize import is_uri
from smartcity.core.ngsild.query import parse_type_expression
from smartcity.core.ngsild.query_language import linked_attribute_names, parse_q
from smartcity.core.ngsild.storage import Page
from smartcity.core.ngsild.subscriptions import (
    merge_subscription,
    parse_subscription,
    render_subscription,
)
from smartcity.security.principal import current

router = APIRouter(prefix="/ngsi-ld/v1", tags=["subscriptions"])
NO_CONTENT = 204
READ_OPTIONS = frozenset({"sysAttrs"})
QUERY_PARAMS = frozenset({"limit", "offset", "count", "options"})


def _check_id(sub_id: str) -> None:
    if not is_uri(sub_id):
        raise BadRequestData(f"Subscription id must be a URI: {sub_id!r}")


def _version_preference(request: Request) -> dict[str, str]:
    """Preference-Applied for ``Prefer: ngsi-ld=<version>`` (clause 6.3.6, RFC 7240).

    A Subscription has no fallbacks between versions (clause 4.3.6.8 covers entity
    data only), so the preference is honoured by answering the same payload.
    """
    for preference in request.headers.get("prefer", "").split(","):
        name, _, value = preference.split(";")[0].partition("=")
        version = value.strip().strip('"')
        if name.strip().lower() == "ngsi-ld" and version:
            return {"Preference-Applied": f"ngsi-ld={version}"}
    return {}


def _check_access(platform: Platform, tenant: str, record: dict[str, Any],
                  terms: TermMap) -> None:
    """Whether the caller may subscribe so; the subscription keeps them as its owner,
    and notifies only what they may read."""
    if platform.gatekeeper is None:
        return
    q = parse_q(record["q"]) if record.get("q") else None
    filters = {terms.expand(n) for n in q.attribute_names()} if q is not None else set()
    linked = {terms.expand(n) for n in linked_attribute_names(q)} if q is not None else set()
    if record.get("geoQ"):
        filters.add(terms.expand(record["geoQ"].get("geoproperty") or "location"))
    # A selector's type is a type expression (A|B, (A;B)): each type in it counts.
    types = [t for s in record.get("entities", ()) if "type" in s
             for conjunction in parse_type_expression(s["type"], lambda name: name)
             for t in conjunction]
    owner = platform.gatekeeper.guard.check_subscription(tenant, types, frozenset(filters),
                                                         frozenset(linked))
    record["owner"] = record.get("owner") or owner.to_record()


def _may_manage(platform: Platform, tenant: str, record: dict[str, Any]) -> None:
    if platform.gatekeeper is not None:
        platform.gatekeeper.guard.may_manage(tenant, record.get("owner"))


def _listed_owner(platform: Platform, tenant: str) -> str | None:
    """Whose subscriptions the caller may list: their own, or all for those who may
    administer the tenant."""
    if platform.gatekeeper is None:
        return None
    principal = current()
    if principal.system or platform.gatekeeper.guard.decide(
            principal, tenant, (), "administer").allowed:
        return None
    return principal.subject


@router.post("/subscriptions", status_code=201, summary="Create a subscription")
async def create_subscription(request: Request) -> Response:
    platform = platform_of(request)
    allow_params(request, frozenset())
    tenant = tenant_of(request)
    body = await read_body(request, platform.settings.max_body_bytes)
    terms = await compile_context(platform.compiler, body.context)
    service = platform.subscriptions
    record = parse_subscription(body.data, terms, tenant, service.now(), body.context)
    if "jsonldContext" in record:
        # The @context for notifications must be usable now, not at the first delivery.
        await compile_context(platform.compiler, record["jsonldContext"])
    _check_access(platform, tenant, record, terms)
    await service.create(tenant, record)
    platform.record_act("subscribe", "subscription", record["id"], tenant=tenant)
    return Response(status_code=201, headers={
        "Location": f"/ngsi-ld/v1/subscriptions/{quote(record['id'], safe=':')}"})


@router.get("/subscriptions", summary="Query subscriptions")
async def query_subscriptions(request: Request) -> Response:
    platform = platform_of(request)
    allow_params(request, QUERY_PARAMS)
    tenant = tenant_of(request)
    media = accepted(request, (JSON, JSON_LD))
    options = parse_options(request, READ_OPTIONS)
    offset, limit, count = pagination(request, platform.settings.default_limit,
                                      platform.settings.max_limit)
    terms, context = await link_terms(platform.compiler, request)
    service = platform.subscriptions
    records, total = await service.list(tenant, offset, limit, _listed_owner(platform, tenant))
    page = Page(entities=records, total=total if count else None,
                more=offset + len(records) < total)
    headers = page_headers(request, offset, limit, page, media)
    now = service.now()
    body = [render_subscription(r, terms, now, "sysAttrs" in options) for r in records]
    return json_response(body, media=media, context=context, headers=headers)


@router.get("/subscriptions/{sub_id:path}", summary="Retrieve a subscription")
async def retrieve_subscription(sub_id: str, request: Request) -> Response:
    platform = platform_of(request)
    allow_params(request, frozenset({"options"}))
    tenant = tenant_of(request)
    _check_id(sub_id)
    media = accepted(request, (JSON, JSON_LD))
    options = parse_options(request, READ_OPTIONS)
    terms, context = await link_terms(platform.compiler, request)
    service = platform.subscriptions
    # A client that has just been notified sees that delivery counted.
    await platform.notifier.settle(tenant, sub_id)
    record = await service.get(tenant, sub_id)
    _may_manage(platform, tenant, record)
    body = render_subscription(record, terms, service.now(), "sysAttrs" in options)
    return json_response(body, media=media, context=context,
                         headers=_version_preference(request))


@router.patch("/subscriptions/{sub_id:path}", status_code=204,
              summary="Update a subscription")
async def update_subscription(sub_id: str, request: Request) -> Response:
    platform = platform_of(request)
    allow_params(request, frozenset())
    tenant = tenant_of(request)
    _check_id(sub_id)
    body = await read_body(request, platform.settings.max_body_bytes, patch=True)
    terms = await compile_context(platform.compiler, body.context)
    service = platform.subscriptions
    stored = await service.get(tenant, sub_id)
    _may_manage(platform, tenant, stored)
    record = merge_subscription(stored, body.data, terms, service.now(), body.context)
    if "jsonldContext" in record and record.get("jsonldContext") != stored.get("jsonldContext"):
        await compile_context(platform.compiler, record["jsonldContext"])
    _check_access(platform, tenant, record, terms)
    await service.update(tenant, sub_id, record)
    platform.record_act("subscribe", "subscription", sub_id, tenant=tenant,
                        detail={"changed": True})
    return Response(status_code=NO_CONTENT)


@router.delete("/subscriptions/{sub_id:path}", status_code=204,
               summary="Delete a subscription")
async def delete_subscription(sub_id: str, request: Request) -> Response:
    platform = platform_of(request)
    allow_params(request, frozenset())
    tenant = tenant_of(request)
    _check_id(sub_id)
    _may_manage(platform, tenant, await platform.subscriptions.get(tenant, sub_id))
    await platform.subscriptions.delete(tenant, sub_id)
    platform.record_act("subscribe", "subscription", sub_id, tenant=tenant,
                        detail={"deleted": True})
    return Response(status_code=NO_CONTENT)
