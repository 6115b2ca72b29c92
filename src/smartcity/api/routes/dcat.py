"""/datasets/dcat: the open-data catalogue as DCAT-AP-SE, where Sweden's national portal
(and anyone else) harvests it."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from smartcity.api.negotiation import accepted, allow_params
from smartcity.api.platform import platform_of
from smartcity.core.ngsild.errors import BadRequestData
from smartcity.opendata.dcat import SERIALIZATIONS, catalogue_graph, serialize

router = APIRouter(tags=["open data"])
# ?format= names a serialization for a client that cannot set Accept (a browser link).
FORMATS = {"rdf": "application/rdf+xml", "ttl": "text/turtle",
           "jsonld": "application/ld+json"}


@router.get("/datasets/dcat", summary="The catalogue as DCAT-AP-SE: RDF/XML (the "
            "default), Turtle or JSON-LD, by Accept or ?format=rdf|ttl|jsonld")
async def dcat_catalogue(request: Request) -> Response:
    allow_params(request, frozenset({"format"}))
    named = request.query_params.get("format")
    if named is None:
        media = accepted(request, tuple(SERIALIZATIONS))
    elif named in FORMATS:
        media = FORMATS[named]
    else:
        raise BadRequestData(f"Unknown format {named!r}; one of {', '.join(FORMATS)}")
    platform = platform_of(request)
    datasets = platform.catalogue.datasets()

    def render() -> bytes:
        graph = catalogue_graph(platform.settings.publisher, platform.public_url,
                                datasets)
        return serialize(graph, media)
    # Building and writing RDF for a large catalogue takes a while: off the event loop.
    body = await asyncio.to_thread(render)
    return Response(body, media_type=media, headers={"Vary": "Accept"})
