"""CKAN's Action API, the read subset portal tools harvest with, at /api/3/action/ and
/api/action/ (where the ckanapi client calls): open to anyone, each action taking its
parameters from the query string or a JSON body and answering in CKAN's envelope."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote
from weakref import WeakKeyDictionary

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from smartcity.api.negotiation import JSON, read_json
from smartcity.api.platform import Platform, platform_of
from smartcity.api.routes.datasets import DISTRIBUTIONS
from smartcity.core.ngsild.errors import NgsiLdError
from smartcity.opendata import ckan_api
from smartcity.opendata.catalogue import Catalogue

router = APIRouter(tags=["open data"])
# Each catalogue's packages, kept between requests so that only changed datasets are
# mapped again (weakly: a test process runs many platforms).
_packages: WeakKeyDictionary[Catalogue, ckan_api.Packages] = WeakKeyDictionary()


def packages_of(platform: Platform) -> ckan_api.Packages:
    packages = _packages.get(platform.catalogue)
    if packages is None:
        packages = _packages[platform.catalogue] = ckan_api.Packages(
            platform.settings.publisher, platform.public_url, DISTRIBUTIONS)
    return packages.refresh(platform.catalogue.datasets())


async def parameters(request: Request, platform: Platform) -> dict[str, Any]:
    """The query string's parameters, and over them a POSTed JSON object's."""
    found: dict[str, Any] = dict(request.query_params)
    if request.method == "POST" and request.headers.get("content-length", "0") != "0":
        try:
            body = await read_json(request, platform.settings.max_body_bytes, (JSON,))
        except NgsiLdError as exc:
            raise ckan_api.CkanError(f"Bad request - {exc.detail}", status=exc.status) \
                from None
        if not isinstance(body, dict):
            raise ckan_api.CkanError("Bad request - the body must be a JSON object")
        found.update(body)
    return found


async def ckan_action(name: str, request: Request) -> Response:
    platform = platform_of(request)
    envelope: dict[str, Any] = {
        "help": f"{platform.public_url}/api/3/action/help_show?name={quote(name)}"}
    try:
        result = ckan_api.call(name, packages_of(platform),
                               await parameters(request, platform))
    except ckan_api.CkanError as exc:
        return Response(orjson.dumps({**envelope, "success": False, "error": exc.body()}),
                        status_code=exc.code, media_type=JSON)
    return Response(orjson.dumps({**envelope, "success": True, "result": result}),
                    media_type=JSON)


# Each method a route of its own, so that each has an operation id of its own; CKAN's
# unversioned path is an alias.
for _path in ("/api/3/action/{name}", "/api/action/{name}"):
    for _method in ("GET", "POST"):
        router.add_api_route(
            _path, ckan_action, methods=[_method], include_in_schema="/3/" in _path,
            summary="A CKAN action: package_list, package_show, package_search, "
            "resource_show, organization_list, tag_list or help_show")
