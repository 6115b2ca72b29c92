"""/datasets: the open-data catalogue as JSON, and its administration."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from smartcity.api.negotiation import JSON, json_response, read_json
from smartcity.api.platform import Platform, platform_of
from smartcity.core.ngsild.errors import BadRequestData
from smartcity.core.validation import validated
from smartcity.opendata.model import FORMS, Dataset, DatasetQuery, DatasetSpec

router = APIRouter(tags=["open data"])
# The forms a dataset is published in (see api/routes/distributions.py).
DISTRIBUTIONS = tuple(form.name for form in FORMS)


def dataset_body(platform: Platform, dataset: Dataset) -> dict[str, Any]:
    """A dataset as JSON, with the addresses of its distributions."""
    base = f"{platform.public_url}/datasets/{dataset.id}"
    # What the data is selected by (tenant, q) is the platform's own business.
    return {**dataset.model_dump(mode="json", exclude={"query"}), "url": base,
            "distributions": {name: f"{base}/{name}" for name in DISTRIBUTIONS},
            "downloads": platform.usage.of(dataset.id)}


def _may_publish(platform: Platform, query: DatasetQuery) -> None:
    """Publishing data is administering it, and reading it, in its tenant, type by type:
    an administrator of one tenant or type cannot publish another's."""
    for type_name in query.types:
        for action in ("administer", "read"):
            platform.require(query.tenant, action, (type_name,), f"{type_name} entities")


@router.get("/datasets", summary="The open datasets")
async def list_datasets(request: Request) -> Response:
    platform = platform_of(request)
    return json_response([dataset_body(platform, d) for d in platform.catalogue.datasets()],
                         media=JSON)


@router.get("/datasets/{dataset_id}", summary="One open dataset")
async def get_dataset(dataset_id: str, request: Request) -> Response:
    platform = platform_of(request)
    return json_response(dataset_body(platform, platform.catalogue.get(dataset_id)),
                         media=JSON)


@router.put("/datasets/{dataset_id}", summary="Publish or change a dataset")
async def put_dataset(dataset_id: str, request: Request) -> Response:
    platform = platform_of(request)
    platform.require("", "administer", what="the open-data catalogue")
    body = await read_json(request, platform.settings.max_body_bytes, (JSON,))
    if not isinstance(body, dict) or body.get("id", dataset_id) != dataset_id:
        raise BadRequestData("The body must be a dataset object whose id is the one in "
                             "the URL")
    spec = validated(DatasetSpec, {**body, "id": dataset_id}, "dataset")
    known = platform.catalogue.find(dataset_id)
    for query in (spec.query, *((known.query,) if known else ())):
        _may_publish(platform, query)
    dataset, created = await platform.catalogue.put(spec)
    platform.record_act("administer", "dataset", dataset_id,
                        detail={"created" if created else "changed": True})
    return json_response(dataset_body(platform, dataset), status=201 if created else 200,
                         media=JSON)


@router.delete("/datasets/{dataset_id}", status_code=204, summary="Withdraw a dataset")
async def delete_dataset(dataset_id: str, request: Request) -> Response:
    platform = platform_of(request)
    platform.require("", "administer", what="the open-data catalogue")
    _may_publish(platform, platform.catalogue.get(dataset_id).query)
    await platform.catalogue.remove(dataset_id)
    platform.record_act("administer", "dataset", dataset_id, detail={"removed": True})
    return Response(status_code=204)
