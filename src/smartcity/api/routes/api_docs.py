"""The API's documentation: its OpenAPI description, and a page that reads it to
people. The page is rendered on the server and loads nothing from elsewhere (an
interactive OpenAPI viewer would fetch its scripts from a CDN)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from smartcity import __version__
from smartcity.api.serving import DESCRIPTION, openapi
from smartcity.web.templating import render

METHODS = ("get", "post", "put", "patch", "delete")


def docs_routes(routers: Sequence[APIRouter]) -> list[Route]:
    """``/openapi.json`` and ``/docs`` for the routes of ``routers`` (described on the
    first request for either, then kept)."""
    described: list[dict[str, Any]] = []

    def once() -> dict[str, Any]:
        if not described:
            described.append(openapi(routers))
        return described[0]

    async def description(request: Request) -> JSONResponse:
        return JSONResponse(once())

    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse(render("api_docs.html", version=__version__,
                                   description=DESCRIPTION, groups=operation_groups(once())))
    return [Route("/openapi.json", description, methods=["GET"]),
            Route("/docs", page, methods=["GET"])]


def operation_groups(described: dict[str, Any]) -> list[dict[str, Any]]:
    """The described operations grouped by the start of their path (for example
    ``/ngsi-ld/v1/entities``), in the order described."""
    groups: dict[str, list[dict[str, str]]] = {}
    for path, operations in described["paths"].items():
        for method in METHODS:
            if method in operations:
                operation = operations[method]
                groups.setdefault(_prefix(path), []).append({
                    "method": method.upper(), "path": path,
                    "summary": operation.get("summary", ""),
                    "description": operation.get("description", "")})
    return [{"prefix": prefix, "anchor": re.sub(r"[^a-z0-9]+", "-", prefix.lower()).strip("-")
             or "root", "operations": operations} for prefix, operations in groups.items()]


def _prefix(path: str) -> str:
    """The path up to its first parameter: three segments deep under ``/ngsi-ld/v1``
    (``/ngsi-ld/v1/entities``), two elsewhere (``/iot/devices``)."""
    segments = [s for s in path.split("/") if s][:3 if path.startswith("/ngsi-ld/") else 2]
    kept = []
    for segment in segments:
        if segment.startswith("{"):
            break
        kept.append(segment)
    return "/" + "/".join(kept)
