"""The embedded identity provider: OAuth 2.0 token endpoint (client credentials and
password grants), its signing keys, and the administration of local accounts."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from smartcity.api.negotiation import JSON, json_response, read_json
from smartcity.api.platform import Platform, platform_of
from smartcity.core.ngsild.errors import (
    BadRequestData,
    ResourceNotFound,
    TooManyRequests,
    Unauthorized,
)
from smartcity.core.validation import validated
from smartcity.security.accounts import AccountSpec, Kind
from smartcity.security.gatekeeper import Gatekeeper
from smartcity.security.principal import Principal

router = APIRouter(tags=["authentication"])
MAX_FORM_BYTES = 8 * 1024
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
KINDS: dict[str, Kind] = {"users": "user", "clients": "client", "apikeys": "apikey"}


def gatekeeper_of(platform: Platform) -> Gatekeeper:
    if platform.gatekeeper is None:
        raise ResourceNotFound("Access control is off on this platform (--auth none)")
    return platform.gatekeeper


def _basic(request: Request) -> tuple[str, str] | None:
    """Client id and secret from HTTP Basic authentication (RFC 6749 section 2.3.1)."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        name, _, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthorized("Malformed Basic credentials", error="invalid_client") from None
    return unquote(name), unquote(secret)


@router.post("/auth/token", summary="Get an access token (OAuth 2.0)")
async def token(request: Request) -> Response:
    platform = platform_of(request)
    gatekeeper = gatekeeper_of(platform)
    # Guessing passwords costs one try per rate-limit token, per address.
    if not gatekeeper.limit.admit(("token", (request.client or ("?",))[0])):
        raise TooManyRequests("Too many token requests; slow down")
    if int(request.headers.get("content-length") or 0) > MAX_FORM_BYTES:
        raise BadRequestData("The token request is too large", error="invalid_request")
    if not request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"):
        raise BadRequestData("A token request is a form (application/x-www-form-"
                             "urlencoded)", error="invalid_request")
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    basic = _basic(request)
    claimed = (basic or (fields.get("client_id") or fields.get("username", ""), ""))[0]
    try:
        principal = await _grant(gatekeeper, fields, basic)
    except (BadRequestData, Unauthorized) as exc:
        gatekeeper.acts.record("login", "token", claimed, outcome="denied",
                               detail={"reason": exc.detail})
        raise
    gatekeeper.acts.record("login", "token", principal.subject, principal=principal)
    return json_response(gatekeeper.tokens.issue(principal), media=JSON, headers=NO_STORE)


async def _grant(gatekeeper: Gatekeeper, form: dict[str, str],
                 basic: tuple[str, str] | None) -> Principal:
    grant = form.get("grant_type")
    if grant == "client_credentials":
        name, secret = basic or (form.get("client_id", ""), form.get("client_secret", ""))
        principal = await gatekeeper.accounts.client(name, secret)
        if principal is None:
            raise Unauthorized("Unknown client or wrong secret", error="invalid_client")
        return principal
    if grant == "password":
        principal = await gatekeeper.accounts.password(form.get("username", ""),
                                                       form.get("password", ""))
        if principal is None:
            raise BadRequestData("Unknown user or wrong password", error="invalid_grant")
        return principal
    raise BadRequestData("grant_type must be client_credentials or password",
                         error="unsupported_grant_type")


@router.get("/auth/jwks.json", summary="The keys that sign the platform's tokens")
async def jwks(request: Request) -> Response:
    return json_response(gatekeeper_of(platform_of(request)).tokens.jwks(), media=JSON)


@router.get("/.well-known/openid-configuration", include_in_schema=False)
async def discovery(request: Request) -> Response:
    tokens = gatekeeper_of(platform_of(request)).tokens
    base = str(request.base_url).rstrip("/")
    return json_response({
        "issuer": tokens.issuer, "token_endpoint": f"{base}/auth/token",
        "jwks_uri": f"{base}/auth/jwks.json",
        "grant_types_supported": ["client_credentials", "password"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic",
                                                  "client_secret_post"],
        "id_token_signing_alg_values_supported": ["ES256"]}, media=JSON)


# -- accounts (administrators) ----------------------------------------------------------
def _administer(request: Request, kind: str) -> tuple[Gatekeeper, Kind]:
    gatekeeper = gatekeeper_of(platform_of(request))
    if kind not in KINDS:
        raise ResourceNotFound(f"No accounts of kind {kind!r}: {', '.join(KINDS)}")
    gatekeeper.guard.require("", "administer", what="accounts")
    return gatekeeper, KINDS[kind]


@router.get("/auth/{kind}", summary="List accounts (users, clients or apikeys)")
async def list_accounts(kind: str,
                        request: Request) -> Response:
    gatekeeper, account_kind = _administer(request, kind)
    return json_response(gatekeeper.accounts.list(account_kind), media=JSON)


@router.post("/auth/{kind}", status_code=201, summary="Make an account; its secret is "
             "shown once")
async def add_account(kind: str,
                      request: Request) -> Response:
    gatekeeper, account_kind = _administer(request, kind)
    platform = platform_of(request)
    spec = validated(AccountSpec, await read_json(request, platform.settings.max_body_bytes,
                                                  (JSON,)), "account")
    issued = await gatekeeper.accounts.add(account_kind, spec, platform.entities.now())
    platform.record_act("administer", "account", f"{account_kind}:{issued.name}",
                        detail={"made": True, "roles": list(spec.roles)})
    body = {"name": issued.name}
    if account_kind != "user":
        body["secret"] = issued.secret
    return json_response(body, status=201, media=JSON, headers=NO_STORE)


@router.delete("/auth/{kind}/{name}", status_code=204, summary="Remove an account")
async def remove_account(kind: str, name: str,
                         request: Request) -> Response:
    gatekeeper, account_kind = _administer(request, kind)
    await gatekeeper.accounts.remove(account_kind, name)
    platform_of(request).record_act("administer", "account", f"{account_kind}:{name}",
                                    detail={"removed": True})
    return Response(status_code=204)
