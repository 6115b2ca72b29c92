"""/me: a resident's own data, consents and the log of who accessed their data."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from smartcity.api.negotiation import JSON, json_response, read_json
from smartcity.api.platform import Platform, platform_of
from smartcity.api.routes.auth import gatekeeper_of
from smartcity.core.validation import validated
from smartcity.security.consents import ConsentSpec
from smartcity.security.guard import deny
from smartcity.security.principal import PUBLIC, Principal, current
from smartcity.security.privacy_register import register_document
from smartcity.security.rights import archive, collect

router = APIRouter(prefix="/me", tags=["residents"])
ACCESS_LOG_LIMIT = 10_000


def _resident(platform: Platform) -> tuple[Principal, str]:
    gatekeeper_of(platform)
    principal = current()
    if principal.person is None:
        raise deny(principal, "This account is not a resident's: it names no person")
    return principal, principal.person


@router.get("", summary="Who I am to the platform")
async def whoami(request: Request) -> Response:
    platform = platform_of(request)
    gatekeeper_of(platform)
    principal = current()
    if principal == PUBLIC:
        raise deny(principal, "Nobody is logged in")
    return json_response({"subject": principal.subject, "roles": sorted(principal.roles),
                          "tenants": sorted(principal.tenants)
                          if principal.tenants is not None else None,
                          "person": principal.person, "client": principal.client},
                         media=JSON)


@router.get("/data", summary="A copy of everything linked to me (zip: JSON-LD and CSV)")
async def my_data(request: Request) -> Response:
    platform = platform_of(request)
    principal, person = _resident(platform)
    gatekeeper = gatekeeper_of(platform)
    tenants = sorted(principal.tenants) if principal.tenants is not None else \
        await platform.store.tenants()
    copy = await collect(platform.store, gatekeeper.policy.register, person, tenants)
    body = archive(copy, platform.compiler.core, gatekeeper.consents.of(person),
                   await _access_log(platform, person),
                   register_document(platform.register.entries,
                                     platform.settings.controller))
    platform.record_act("read", "personal data", "copy of my data", subjects=[person],
                        detail={"archive": True})
    return Response(body, media_type="application/zip", headers={
        "Content-Disposition": 'attachment; filename="my-data.zip"',
        "Cache-Control": "no-store"})


@router.get("/consents", summary="The consents I have given")
async def my_consents(request: Request) -> Response:
    platform = platform_of(request)
    _, person = _resident(platform)
    return json_response(gatekeeper_of(platform).consents.of(person), media=JSON)


@router.post("/consents", status_code=201, summary="Share my personal data with a "
             "service, for a purpose, until a date")
async def give_consent(request: Request) -> Response:
    platform = platform_of(request)
    _, person = _resident(platform)
    spec = validated(ConsentSpec, await read_json(request, platform.settings.max_body_bytes,
                                                  (JSON,)), "consent")
    record = await gatekeeper_of(platform).consents.grant(person, spec)
    platform.record_act("consent", "consent", spec.service, subjects=[person],
                        detail={"given": True, "purpose": spec.purpose,
                                "until": record["until"]})
    return json_response(record, status=201, media=JSON)


@router.delete("/consents/{service}", status_code=204, summary="Withdraw my consents to "
               "a service (for one purpose with ?purpose=)")
async def withdraw_consent(service: str, request: Request) -> Response:
    platform = platform_of(request)
    _, person = _resident(platform)
    purpose = request.query_params.get("purpose")
    await gatekeeper_of(platform).consents.withdraw(person, service, purpose)
    platform.record_act("consent", "consent", service, subjects=[person],
                        detail={"withdrawn": True, "purpose": purpose})
    return Response(status_code=204)


@router.get("/access", summary="Who accessed my personal data, newest first")
async def my_access_log(request: Request) -> Response:
    platform = platform_of(request)
    _, person = _resident(platform)
    return json_response(await _access_log(platform, person), media=JSON)


async def _access_log(platform: Platform, person: str) -> list[dict[str, object]]:
    return await platform.audit_of(person, ACCESS_LOG_LIMIT)
