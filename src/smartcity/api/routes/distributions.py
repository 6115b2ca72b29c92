"""/datasets/{id}/...: an open dataset's distributions, streamed, open to anyone. What
leaves is decided by the dataset's publication policy, never by the caller's rights."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from smartcity.api.negotiation import JSON, allow_params, json_response
from smartcity.api.platform import Platform, platform_of
from smartcity.api.views import pagination
from smartcity.core.ngsild.errors import BadRequestData, ResourceNotFound
from smartcity.core.ngsild.instants import read_instant
from smartcity.core.ngsild.temporal import now_micros
from smartcity.opendata.exporters import (
    csv_stream,
    geojson_stream,
    history_csv,
    history_groups,
    ngsi_ld_stream,
    published_rows,
)
from smartcity.opendata.publication import Publication, Record, resolve

router = APIRouter(tags=["open data"])
MAX_OFFSET = 100_000  # the live view pages through a dataset; more is a download
CSV = "text/csv; charset=utf-8"


async def _publication(request: Request, dataset_id: str) -> tuple[Platform, Publication]:
    """The publication a download serves (counted as one download of it, unless the
    platform's own page fetched it to draw its map)."""
    platform = platform_of(request)
    dataset = platform.catalogue.get(dataset_id)
    if not _own_page_fetch(request):
        platform.usage.count(dataset_id, request.url.path.rsplit("/", 1)[-1])
    publication = await resolve(dataset, platform.entities, platform.register,
                                platform.compiler.core)
    return platform, publication


def _own_page_fetch(request: Request) -> bool:
    """A script of one of the platform's pages asked (browsers say so in Fetch Metadata):
    not a download. A link followed, another site's script, or any other client is one."""
    headers = request.headers
    return headers.get("sec-fetch-site") == "same-origin" and \
        headers.get("sec-fetch-mode") not in (None, "navigate")


def _stream(chunks: AsyncIterator[bytes], media: str, filename: str) -> Response:
    return StreamingResponse(chunks, media_type=media, headers={
        "Content-Disposition": f'attachment; filename="{filename}"'})


@router.get("/datasets/{dataset_id}/history.csv",
            summary="The dataset's history over a period (from, to), as CSV")
async def history_download(dataset_id: str, request: Request) -> Response:
    allow_params(request, frozenset({"from", "to"}))
    params = request.query_params
    start = read_instant(params["from"], "from") if "from" in params else None
    end = read_instant(params["to"], "to") if "to" in params else None
    if start is not None and end is not None and end <= start:
        raise BadRequestData("to must be after from")
    platform, publication = await _publication(request, dataset_id)
    chunks = csv_stream(publication.columns, history_groups(
        publication, platform.entities, start, end)) \
        if publication.dataset.policy.aggregate \
        else history_csv(publication, platform.entities, start, end)
    return _stream(chunks, CSV, f"{dataset_id}-history.csv")


@router.get("/datasets/{dataset_id}/entities",
            summary="The dataset now, as a read-only API (JSON, paged)")
async def entities_view(dataset_id: str, request: Request) -> Response:
    allow_params(request, frozenset({"offset", "limit"}))
    platform, publication = await _publication(request, dataset_id)
    offset, limit, _ = pagination(request, platform.settings.default_limit,
                                  platform.settings.max_limit)
    if offset > MAX_OFFSET:
        raise BadRequestData(f"offset must be at most {MAX_OFFSET}; download the whole "
                             "dataset instead")
    found: list[dict[str, Any]] = []
    position = 0
    async for row in _now(platform, publication):
        if position >= offset + limit:
            break
        if position >= offset:
            found.append(row)
        position += 1
    return json_response(found, media=JSON)


# The dataset's current state, by file name: how each is written, and its media type
# (after the routes of the other distributions, which the {name} would take).
CURRENT: dict[str, tuple[Callable[[Publication, AsyncIterator[Record]],
                                  AsyncIterator[bytes]], str]] = {
    "data.csv": (lambda publication, rows: csv_stream(publication.columns, rows), CSV),
    "data.geojson": (geojson_stream, "application/geo+json"),
    "data.jsonld": (ngsi_ld_stream, "application/ld+json"),
}


@router.get("/datasets/{dataset_id}/{name}", summary="The dataset now: data.csv, "
            "data.geojson or data.jsonld (NGSI-LD)")
async def current_data(dataset_id: str, name: str, request: Request) -> Response:
    if name not in CURRENT:
        raise ResourceNotFound(f"No {name!r} of a dataset: data.csv, data.geojson, "
                               "data.jsonld, history.csv or entities")
    allow_params(request, frozenset())
    write, media = CURRENT[name]
    platform, publication = await _publication(request, dataset_id)
    return _stream(write(publication, _now(platform, publication)), media,
                   f"{dataset_id}.{name.split('.')[1]}")


def _now(platform: Platform, publication: Publication) -> AsyncIterator[Record]:
    return published_rows(publication, platform.entities,
                          now_micros(platform.entities.clock))
