"""Every error leaves as RFC 7807 ProblemDetails with an NGSI-LD error type."""

from __future__ import annotations

import logging

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route

from smartcity.api.negotiation import TENANT_HEADER, problem_response
from smartcity.api.platform import platform_of
from smartcity.core.ngsild.errors import (
    InternalError,
    InvalidRequest,
    NgsiLdError,
    ResourceNotFound,
)
from smartcity.store.postgres import UNAVAILABLE

log = logging.getLogger(__name__)


class MethodNotAllowed(NgsiLdError):
    name, status, title = "MethodNotAllowed", 405, "Method not allowed"


class Unavailable(NgsiLdError):
    name, status, title = "InternalError", 503, "Service unavailable"


def _with_tenant(request: Request, response: Response) -> Response:
    tenant = request.headers.get(TENANT_HEADER)
    if tenant:
        response.headers[TENANT_HEADER] = tenant
    return response


def _allowed(request: Request) -> str:
    """The Allow header of a 405: the methods of every route at the request's path (the
    router's own answer names those of the first route only), but the request's own,
    which some routes take only to refuse (DELETE .../attrs/ without a name)."""
    return ", ".join(sorted({method for route in request.app.router.routes
                             if isinstance(route, Route) and route.methods
                             and route.matches(request.scope)[0] != Match.NONE
                             for method in route.methods} - {request.method}))


def install(app: Starlette) -> None:
    async def ngsi_error(request: Request, exc: NgsiLdError) -> Response:
        response = problem_response(exc)
        if exc.status == 401:
            response.headers["WWW-Authenticate"] = "Bearer"
        if exc.status == 405:
            response.headers["Allow"] = _allowed(request)
        if exc.status in (401, 403):
            platform_of(request).record_act(
                "denied", request.method, request.url.path,
                tenant=request.headers.get(TENANT_HEADER, ""), outcome="denied",
                detail={"reason": exc.detail})
        return _with_tenant(request, response)

    async def http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 404:
            error: NgsiLdError = ResourceNotFound(f"No resource at {request.url.path}")
        elif exc.status_code == 405:
            error = MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}")
        else:
            error = InvalidRequest(str(exc.detail))
        response = problem_response(error)
        response.status_code = exc.status_code
        if exc.headers:
            response.headers.update(exc.headers)
        if exc.status_code == 405:
            response.headers["Allow"] = _allowed(request)
        return response

    async def unexpected(request: Request, exc: Exception) -> Response:
        if isinstance(exc, UNAVAILABLE):
            log.warning("the database is unavailable (%s) on %s %s", exc, request.method,
                        request.url.path)
            response = problem_response(Unavailable("The database is unavailable; try "
                                                    "again shortly"))
            response.headers["Retry-After"] = "1"
            return response
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return problem_response(InternalError("The server failed; the error has been logged"))

    app.add_exception_handler(NgsiLdError, ngsi_error)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, unexpected)
