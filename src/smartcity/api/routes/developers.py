"""/developer/keys: API keys for developers and businesses, taken without asking anyone
(the open data is theirs to use), each held to its own request rate."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from smartcity.api.negotiation import JSON, json_response, read_json
from smartcity.api.platform import platform_of
from smartcity.api.routes.auth import NO_STORE, gatekeeper_of
from smartcity.core.ngsild.errors import ResourceNotFound, TooManyRequests
from smartcity.core.validation import validated
from smartcity.security.accounts import ACCOUNT_NAME, EMAIL_ADDRESS, AccountSpec
from smartcity.security.guard import deny
from smartcity.security.principal import current

router = APIRouter(prefix="/developer", tags=["developers"])
DEVELOPER_ROLES = ("developer",)


class KeyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=ACCOUNT_NAME,
                      description="who the key is for: a person, an app or a business")
    email: str = Field(pattern=EMAIL_ADDRESS)


@router.post("/keys", status_code=201, summary="Get an API key for the open data (shown "
             "once)")
async def new_key(request: Request) -> Response:
    platform = platform_of(request)
    gatekeeper = gatekeeper_of(platform)
    if not gatekeeper.signups.admit((request.client or ("?",))[0]):
        raise TooManyRequests("Too many API keys asked for from this address; try again "
                              "in ten minutes")
    asked = validated(KeyRequest, await read_json(request, 16 * 1024, (JSON,)), "key request")
    issued = await gatekeeper.accounts.add(
        "apikey", AccountSpec(name=asked.name, roles=DEVELOPER_ROLES, email=asked.email),
        platform.entities.now())
    gatekeeper.acts.record("administer", "account", f"apikey:{issued.name}",
                           detail={"self-service": True, "owner": asked.name})
    return json_response({"key": issued.secret, "id": issued.name,
                          "use": "send it as the X-API-Key header",
                          "rate": {"requests_per_second": platform.settings.client_rate,
                                   "burst": platform.settings.client_burst}},
                         status=201, media=JSON, headers=NO_STORE)


def _own_key() -> str:
    principal = current()
    kind, _, key_id = principal.subject.partition(":")
    if kind != "apikey":
        raise deny(principal, "Call this with the API key itself (X-API-Key)")
    return key_id


@router.get("/keys/current", summary="The API key this request carries")
async def current_key(request: Request) -> Response:
    gatekeeper = gatekeeper_of(platform_of(request))
    key_id = _own_key()
    found = next((r for r in gatekeeper.accounts.list("apikey") if r["name"] == key_id),
                 None)
    if found is None:  # given up meanwhile, through another worker
        raise ResourceNotFound("This API key has been given up")
    return json_response(found, media=JSON)


@router.delete("/keys/current", status_code=204, summary="Give up the API key this "
               "request carries")
async def drop_key(request: Request) -> Response:
    platform = platform_of(request)
    gatekeeper = gatekeeper_of(platform)
    key_id = _own_key()
    await gatekeeper.accounts.remove("apikey", key_id)
    platform.record_act("administer", "account", f"apikey:{key_id}",
                        detail={"removed": True})
    return Response(status_code=204)
