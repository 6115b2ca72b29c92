"""Specification of how routes are served: every declared route answers through
Starlette, an endpoint that would need FastAPI's request handling is refused at start,
and unknown paths and methods get ProblemDetails."""

from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from smartcity.api.serving import openapi, served


def test_an_endpoint_taking_more_than_path_and_request_is_refused_at_start() -> None:
    router = APIRouter()

    @router.get("/things/{thing}")
    async def thing(thing: str, limit: int, request: Request) -> Response:
        return Response()
    with pytest.raises(TypeError, match="takes 'limit'"):
        served([router])


def test_routes_keep_their_order_methods_and_description() -> None:
    router = APIRouter()

    @router.get("/things/{thing:path}", summary="Read a thing")
    async def read(thing: str, request: Request) -> Response:
        return Response(thing)

    @router.delete("/things/{thing:path}")
    async def remove() -> Response:  # names no parameter: called with none
        return Response(status_code=204)
    routes = served([router])
    assert [(r.path, r.methods) for r in routes] == [
        ("/things/{thing:path}", {"GET"}), ("/things/{thing:path}", {"DELETE"})]
    assert openapi([router])["paths"]["/things/{thing}"]["get"]["summary"] == "Read a thing"


def test_a_method_not_served_is_a_problem_naming_every_method_of_the_path(
        base_url: str) -> None:
    with httpx.Client(base_url=base_url + "/ngsi-ld/v1") as http:
        assert http.post("/entities", json={"id": "urn:ngsi-ld:Thing:h1", "type": "Thing"}
                         ).status_code == 201
        for method in ("TRACE", "HEAD", "POST"):
            wrong = http.request(method, "/entities/urn:ngsi-ld:Thing:h1")
            assert wrong.status_code == 405
            assert wrong.headers["allow"] == "DELETE, GET, PATCH, PUT"
        assert http.request("TRACE", "/entities").json()["type"].endswith(
            "MethodNotAllowed")
        assert http.request("TRACE", "/entities").headers["allow"] == \
            "DELETE, GET, PATCH, POST, PUT"
        # DELETE .../attrs/ (no attribute name) reaches an endpoint that names no
        # parameter: it answers, rather than failing on the entity id it is not given.
        no_name = http.delete("/entities/urn:ngsi-ld:Thing:h1/attrs/")
        assert no_name.status_code == 405 and "DELETE" not in no_name.headers["allow"]
        missing = http.get("/nowhere")
        assert missing.status_code == 404 and missing.json()["type"].endswith(
            "ResourceNotFound")
