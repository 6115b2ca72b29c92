"""Every request is authenticated before a route sees it: its principal is set for the
code that serves it (``smartcity.security.principal``), and each caller is held to a
request rate. Bad credentials are refused here, with 401 and a ProblemDetails body."""

from __future__ import annotations

import math

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from smartcity.api.negotiation import problem_response
from smartcity.api.platform import Platform
from smartcity.core.ngsild.errors import NgsiLdError, TooManyRequests, Unauthorized
from smartcity.security.principal import PUBLIC, acting_as

# Served to anyone: what a caller needs to get a token, the public register of personal
# data, and the platform's front page and API description. Devices measure with their
# provisioned API key (IoT Agent convention), checked by the ingest routes.
OPEN_PATHS = frozenset({"/", "/auth/token", "/auth/jwks.json",
                        "/.well-known/openid-configuration", "/privacy/register",
                        "/docs", "/openapi.json", "/iot/d", "/iot/json",
                        "/iot/lorawan/chirpstack", "/iot/lorawan/tts"})


def _address(scope: Scope) -> str:
    return str((scope.get("client") or ("?",))[0])


class AuthenticationMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        platform: Platform | None = getattr(scope["app"].state, "platform", None)
        if platform is None or platform.gatekeeper is None:
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            # Code run without a request's principal acts for the platform: a route
            # open to anyone (or any other kind of connection) acts for the public.
            with acting_as(PUBLIC):
                await self.app(scope, receive, send)
            return
        gatekeeper = platform.gatekeeper
        try:
            principal = await gatekeeper.authenticate(Headers(scope=scope))
        except Unauthorized as exc:
            # Bad credentials are held to a rate per address, so that guessing (and
            # the audit entries it makes) cannot flood the platform.
            if not gatekeeper.limit.admit(("unauthenticated", _address(scope))):
                await self._refuse(TooManyRequests("Too many requests with bad "
                                                   "credentials; slow down"),
                                   scope, receive, send)
                return
            gatekeeper.acts.record("authenticate", scope["method"], scope["path"],
                                   outcome="denied", detail={"reason": exc.detail},
                                   principal=PUBLIC)
            await self._refuse(exc, scope, receive, send)
            return
        caller = principal.subject if principal != PUBLIC else _address(scope)
        if not gatekeeper.limit.admit(caller):
            await self._refuse(TooManyRequests("Too many requests from this caller; slow "
                                               "down"), scope, receive, send)
            return
        with acting_as(principal):
            await self.app(scope, receive, send)

    async def _refuse(self, error: NgsiLdError, scope: Scope, receive: Receive,
                      send: Send) -> None:
        response = problem_response(error)
        if isinstance(error, Unauthorized):
            response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        else:
            platform: Platform = scope["app"].state.platform
            response.headers["Retry-After"] = str(math.ceil(
                1 / platform.settings.client_rate))
        await response(scope, receive, send)
