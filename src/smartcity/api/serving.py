"""How the routes are served: declared with FastAPI's ``APIRouter`` (which also
describes them as OpenAPI), served by Starlette's router.

FastAPI 0.165's request path (its routing, its own middleware layers and the
dependency solving around each endpoint) cost about 140 µs a request on the project's
2-core machine, measured with an endpoint that only answers a constant: more than
retrieving and rendering an entity. Every endpoint here takes its path parameters (as
text) and the request, and answers a Response, so Starlette can call it directly.
``served`` checks that, so that an endpoint written otherwise fails at start-up rather
than on its first request.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from fastapi import APIRouter
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from smartcity import __version__

Endpoint = Callable[..., Awaitable[Response]]
TITLE = "smartcity"
DESCRIPTION = "NGSI-LD context broker and city platform"


def served(routers: Sequence[APIRouter]) -> list[Route]:
    """Starlette routes for every route of the routers, in their order."""
    return [_route(route) for route in _api_routes(routers)]


def _route(declared: APIRoute) -> Route:
    route = Route(declared.path, _calling(declared), methods=sorted(declared.methods),
                  name=declared.name)
    # Starlette would answer HEAD on every GET route, FastAPI did not: a HEAD of a
    # download would run the whole export (and count as a download).
    route.methods = set(declared.methods)
    return route


def openapi(routers: Sequence[APIRouter]) -> dict[str, Any]:
    """The OpenAPI description of the routers' routes."""
    return get_openapi(title=TITLE, version=__version__, description=DESCRIPTION,
                       routes=_api_routes(routers))


def _api_routes(routers: Sequence[APIRouter]) -> list[APIRoute]:
    routes = [route for router in routers for route in router.routes]
    for route in routes:
        if not isinstance(route, APIRoute):
            raise TypeError(f"{route!r} is not an API route")
    return routes  # type: ignore[return-value]


def _calling(route: APIRoute) -> Callable[[Request], Awaitable[Response]]:
    """The endpoint called with the path parameters it names, and the request if it
    names it (as FastAPI calls it)."""
    endpoint: Endpoint = route.endpoint
    names = set(inspect.signature(endpoint).parameters)
    for name in names - set(route.param_convertors) - {"request"}:
        raise TypeError(f"{endpoint.__qualname__} takes {name!r}: endpoints take their "
                        "path parameters and the request only")
    given = names & set(route.param_convertors)
    given_request = "request" in names

    async def call(request: Request) -> Response:
        params = {name: request.path_params[name] for name in given}
        if given_request:
            params["request"] = request
        return await endpoint(**params)
    return call
