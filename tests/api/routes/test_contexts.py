"""@context management (clause 5.13) and remote @context errors (clause 5.5.6), over HTTP."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote

import httpx
import orjson
import pytest

from smartcity.config import Settings
from smartcity.core.ngsild.context import CORE_CONTEXT_URL
from smartcity.core.ngsild.errors import LdContextNotAvailable
from tests.conftest import LiveServer

ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
CONTEXT_REL = "http://www.w3.org/ns/json-ld#context"
A_CONTEXT = {"@context": {"A1": "urn:test:A1", "A2": "urn:test:A2"}}


class ContextServer:
    """A tiny @context server on 127.0.0.1: path -> (status, body); counts the GETs."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, bytes]] = {}
        self.hits: dict[str, int] = {}
        routes, hits = self.routes, self.hits

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hits[self.path] = hits.get(self.path, 0) + 1
                status, body = routes.get(self.path, (404, b"not here"))
                self.send_response(status)
                self.send_header("Content-Type", "application/ld+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.running = True

    def serve(self, path: str, body: object, status: int = 200) -> str:
        raw = body if isinstance(body, bytes) else orjson.dumps(body)
        self.routes[path] = (status, raw)
        return self.base + path

    def stop(self) -> None:
        if self.running:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.running = False


@pytest.fixture
def ctx_server() -> Iterator[ContextServer]:
    server = ContextServer()
    yield server
    server.stop()


def closed_port_url() -> str:
    """A URL on a loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/context.jsonld"


def link(url: str) -> dict[str, str]:
    return {"Link": f'<{url}>; rel="{CONTEXT_REL}"; type="application/ld+json"'}


def add_context(client: httpx.Client, document: object, **headers: str) -> str:
    response = client.post("/jsonldContexts", content=orjson.dumps(document),
                           headers={"Content-Type": "application/json", **headers})
    assert response.status_code == 201, response.text
    assert response.content == b""
    location = response.headers["Location"]
    assert location.startswith("/ngsi-ld/v1/jsonldContexts/")
    return location.rsplit("/", 1)[1]


def hosted_url(client: httpx.Client, local_id: str) -> str:
    return f"{str(client.base_url).rstrip('/')}/jsonldContexts/{local_id}"


def create_entity(client: httpx.Client, entity_id: str, context: object) -> httpx.Response:
    body = {"id": entity_id, "type": "Thing", "A1": {"type": "Property", "value": 1},
            "@context": context}
    return client.post("/entities", content=orjson.dumps(body),
                       headers={"Content-Type": "application/ld+json"})


def info(client: httpx.Client, context_id: str, **headers: str) -> dict[str, object]:
    response = client.get(f"/jsonldContexts/{quote(context_id, safe='')}",
                          params={"details": "true"}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def assert_problem(response: httpx.Response, status: int, name: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["type"] == ERRORS + name


# -- adding ----------------------------------------------------------------------------
def test_added_context_is_served_back_as_json(client: httpx.Client) -> None:
    local_id = add_context(client, A_CONTEXT)
    response = client.get(f"/jsonldContexts/{local_id}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == A_CONTEXT


def test_added_context_details(client: httpx.Client) -> None:
    local_id = add_context(client, A_CONTEXT)
    details = info(client, local_id)
    assert details["localId"] == local_id
    assert details["kind"] == "Hosted"
    assert details["URL"] == hosted_url(client, local_id)
    assert details["numberOfHits"] == 0
    assert set(details) <= {"URL", "localId", "kind", "createdAt", "lastUsage",
                            "numberOfHits", "extraInfo"}


def test_body_without_context_member_is_invalid_request(client: httpx.Client) -> None:
    response = client.post("/jsonldContexts", content=b'{"A1": "urn:test:A1"}',
                           headers={"Content-Type": "application/json"})
    assert_problem(response, 400, "InvalidRequest")


def test_body_that_is_not_json_is_invalid_request(client: httpx.Client) -> None:
    response = client.post("/jsonldContexts", content=b'{"@context": {"A1": "x" "A2": "y"}}',
                           headers={"Content-Type": "application/json"})
    assert_problem(response, 400, "InvalidRequest")


@pytest.mark.parametrize("value", [42, True, None, ["https://example.org/c.jsonld", 7],
                                   "not a url", {"A1": 5}])
def test_invalid_context_value_is_bad_request_data(client: httpx.Client, value: object) -> None:
    response = client.post("/jsonldContexts", content=orjson.dumps({"@context": value}),
                           headers={"Content-Type": "application/json"})
    assert_problem(response, 400, "BadRequestData")
    assert "Location" not in response.headers
    assert all(r["kind"] != "Hosted" for r in client.get(
        "/jsonldContexts", params={"details": "true"}).json())


# -- listing ---------------------------------------------------------------------------
def test_list_filters_by_kind_and_shows_details(client: httpx.Client) -> None:
    local_id = add_context(client, A_CONTEXT)
    urls = client.get("/jsonldContexts").json()
    assert any(url.endswith(local_id) for url in urls)
    assert CORE_CONTEXT_URL in urls
    hosted = client.get("/jsonldContexts", params={"kind": "Hosted", "details": "true"}).json()
    assert [r["localId"] for r in hosted] == [local_id]
    cached = client.get("/jsonldContexts", params={"kind": "Cached"}).json()
    assert cached == [CORE_CONTEXT_URL]
    assert client.get("/jsonldContexts", params={"kind": "ImplicitlyCreated"}).json() == []


@pytest.mark.parametrize("params", [{"kind": "other"}, {"details": "other"},
                                    {"details": "true", "kind": "hosted"}])
def test_list_with_bad_parameters_is_bad_request_data(client: httpx.Client,
                                                       params: dict[str, str]) -> None:
    assert_problem(client.get("/jsonldContexts", params=params), 400, "BadRequestData")


# -- the core @context -----------------------------------------------------------------
def test_core_context_is_served_and_cannot_be_deleted(client: httpx.Client) -> None:
    core = quote(CORE_CONTEXT_URL, safe="")
    served = client.get(f"/jsonldContexts/{core}")
    assert served.status_code == 200
    assert served.json()["@context"]["Property"] == "ngsi-ld:Property"
    assert info(client, CORE_CONTEXT_URL)["kind"] == "Cached"
    assert_problem(client.delete(f"/jsonldContexts/{core}"), 400, "BadRequestData")
    assert_problem(client.delete(f"/jsonldContexts/{core}", params={"reload": "false"}),
                   400, "BadRequestData")
    # Reloading it re-installs the copy the broker ships with.
    assert client.delete(f"/jsonldContexts/{core}", params={"reload": "true"}).status_code == 204
    assert client.get(f"/jsonldContexts/{core}").status_code == 200


# -- using a hosted @context -----------------------------------------------------------
def test_hosted_context_can_be_used_in_link_header(client: httpx.Client) -> None:
    local_id = add_context(client, A_CONTEXT)
    url = hosted_url(client, local_id)
    body = {"id": "urn:ngsi-ld:Thing:h1", "type": "Thing", "A1": {"type": "Property", "value": 7}}
    created = client.post("/entities", json=body, headers=link(url))
    assert created.status_code == 201, created.text

    with_link = client.get("/entities/urn:ngsi-ld:Thing:h1", headers=link(url)).json()
    assert with_link["A1"]["value"] == 7
    without = client.get("/entities/urn:ngsi-ld:Thing:h1").json()
    assert without["urn:test:A1"]["value"] == 7

    details = info(client, local_id)
    assert details["numberOfHits"] == 2
    assert "lastUsage" in details


def test_hosted_context_can_be_named_by_its_path(client: httpx.Client) -> None:
    local_id = add_context(client, A_CONTEXT)
    created = create_entity(client, "urn:ngsi-ld:Thing:p1",
                            f"/ngsi-ld/v1/jsonldContexts/{local_id}")
    assert created.status_code == 201, created.text
    entity = client.get("/entities/urn:ngsi-ld:Thing:p1").json()
    assert "urn:test:A1" in entity
    assert info(client, local_id)["numberOfHits"] == 1


def test_deleted_hosted_context_is_gone(client: httpx.Client) -> None:
    local_id = add_context(client, A_CONTEXT)
    assert_problem(client.delete(f"/jsonldContexts/{local_id}", params={"reload": "true"}),
                   400, "BadRequestData")
    assert client.delete(f"/jsonldContexts/{local_id}").status_code == 204
    assert_problem(client.get(f"/jsonldContexts/{local_id}"), 404, "ResourceNotFound")
    assert_problem(client.delete(f"/jsonldContexts/{local_id}"), 404, "ResourceNotFound")
    # Its URL now answers 404, so using it is a @context that cannot be retrieved.
    response = create_entity(client, "urn:ngsi-ld:Thing:d1",
                             hosted_url(client, local_id))
    assert_problem(response, LdContextNotAvailable.status, "LdContextNotAvailable")


@pytest.mark.parametrize(("reload", "status", "name"), [
    ("true", 400, "BadRequestData"), ("false", 404, "ResourceNotFound"),
    (None, 404, "ResourceNotFound"), ("xxx", 400, "BadRequestData")])
def test_deleting_an_unknown_context(client: httpx.Client, reload: str | None, status: int,
                                     name: str) -> None:
    params = {"reload": reload} if reload is not None else {}
    assert_problem(client.delete("/jsonldContexts/urn:test:nothing", params=params),
                   status, name)


def test_hosted_contexts_are_private_to_their_tenant(client: httpx.Client) -> None:
    local_id = add_context(client, A_CONTEXT, **{"NGSILD-Tenant": "ctxa"})
    other = {"NGSILD-Tenant": "ctxb"}
    assert_problem(client.get(f"/jsonldContexts/{local_id}", headers=other),
                   404, "ResourceNotFound")
    assert_problem(client.get(f"/jsonldContexts/{local_id}", params={"details": "true"},
                              headers=other), 404, "ResourceNotFound")
    assert local_id not in client.get("/jsonldContexts", headers=other).text
    assert local_id not in client.get("/jsonldContexts").text  # the default tenant
    assert_problem(client.delete(f"/jsonldContexts/{local_id}", headers=other),
                   404, "ResourceNotFound")
    owner = {"NGSILD-Tenant": "ctxa"}
    assert client.get(f"/jsonldContexts/{local_id}", headers=owner).json() == A_CONTEXT
    assert client.delete(f"/jsonldContexts/{local_id}", headers=owner).status_code == 204


def test_hosted_contexts_survive_a_restart(db: str) -> None:
    settings = Settings(db=db)
    with LiveServer(settings) as url, httpx.Client(base_url=url + "/ngsi-ld/v1") as http:
        local_id = add_context(http, A_CONTEXT)
        time.sleep(0.2)  # the store writes in the background
    with LiveServer(settings) as url, httpx.Client(base_url=url + "/ngsi-ld/v1") as http:
        assert http.get(f"/jsonldContexts/{local_id}").json() == A_CONTEXT
        assert info(http, local_id)["kind"] == "Hosted"


# -- remote @contexts: Cached ----------------------------------------------------------
def test_remote_context_is_cached_once_and_counted(client: httpx.Client,
                                                   ctx_server: ContextServer) -> None:
    url = ctx_server.serve("/ctx.jsonld", A_CONTEXT)
    assert create_entity(client, "urn:ngsi-ld:Thing:c1", url).status_code == 201
    details = info(client, url)
    assert details["kind"] == "Cached"
    assert details["URL"] == url
    assert details["numberOfHits"] == 1
    assert create_entity(client, "urn:ngsi-ld:Thing:c2", url).status_code == 201
    assert info(client, url)["numberOfHits"] == 2
    assert ctx_server.hits["/ctx.jsonld"] == 1
    cached = client.get("/jsonldContexts", params={"kind": "Cached"}).json()
    assert url in cached
    # Cached @contexts are shared by every tenant.
    assert info(client, url, **{"NGSILD-Tenant": "ctxother"})["kind"] == "Cached"


def test_contexts_named_by_a_hosted_context_become_cached(client: httpx.Client,
                                                          ctx_server: ContextServer) -> None:
    remote = ctx_server.serve("/remote.jsonld", A_CONTEXT)
    local_id = add_context(client, {"@context": [remote]})
    response = client.post("/entities", json={"id": "urn:ngsi-ld:Thing:n1", "type": "Thing"},
                           headers=link(hosted_url(client, local_id)))
    assert response.status_code == 201, response.text
    assert info(client, remote)["kind"] == "Cached"
    assert info(client, local_id)["kind"] == "Hosted"


def test_reload_picks_up_a_changed_remote_context(client: httpx.Client,
                                                  ctx_server: ContextServer) -> None:
    url = ctx_server.serve("/ctx.jsonld", A_CONTEXT)
    assert create_entity(client, "urn:ngsi-ld:Thing:r1", url).status_code == 201
    ctx_server.serve("/ctx.jsonld", {"@context": {"A1": "urn:test:other"}})
    assert create_entity(client, "urn:ngsi-ld:Thing:r2", url).status_code == 201
    assert "urn:test:A1" in client.get("/entities/urn:ngsi-ld:Thing:r2").json()

    response = client.delete(f"/jsonldContexts/{quote(url, safe='')}", params={"reload": "true"})
    assert response.status_code == 204, response.text
    assert ctx_server.hits["/ctx.jsonld"] == 2
    assert client.get(f"/jsonldContexts/{quote(url, safe='')}").json() == {
        "@context": {"A1": "urn:test:other"}}
    assert create_entity(client, "urn:ngsi-ld:Thing:r3", url).status_code == 201
    assert "urn:test:other" in client.get("/entities/urn:ngsi-ld:Thing:r3").json()


def test_failed_reload_keeps_the_cached_context(client: httpx.Client,
                                                ctx_server: ContextServer) -> None:
    url = ctx_server.serve("/ctx.jsonld", A_CONTEXT)
    assert create_entity(client, "urn:ngsi-ld:Thing:k1", url).status_code == 201
    ctx_server.stop()
    path = f"/jsonldContexts/{quote(url, safe='')}"
    assert_problem(client.delete(path, params={"reload": "true"}),
                   LdContextNotAvailable.status, "LdContextNotAvailable")
    assert info(client, url)["kind"] == "Cached"
    assert client.get(path).json() == A_CONTEXT
    # Still usable without its server.
    assert create_entity(client, "urn:ngsi-ld:Thing:k2", url).status_code == 201
    assert client.delete(path).status_code == 204
    assert_problem(client.get(path, params={"details": "true"}), 404, "ResourceNotFound")


# -- remote @contexts that cannot be used ----------------------------------------------
def test_unreachable_context_url_answers_ld_context_not_available_fast(
        client: httpx.Client) -> None:
    started = time.monotonic()
    response = create_entity(client, "urn:ngsi-ld:Thing:u1", closed_port_url())
    assert time.monotonic() - started < 2.5
    assert_problem(response, LdContextNotAvailable.status, "LdContextNotAvailable")
    assert response.json()["title"]
    assert client.get("/entities/urn:ngsi-ld:Thing:u1").status_code == 404


def test_unreachable_context_in_link_header_on_a_query(client: httpx.Client) -> None:
    response = client.get("/entities", params={"type": "Thing"}, headers=link(closed_port_url()))
    assert_problem(response, LdContextNotAvailable.status, "LdContextNotAvailable")


def test_context_url_answering_404_is_not_available(client: httpx.Client,
                                                    ctx_server: ContextServer) -> None:
    response = create_entity(client, "urn:ngsi-ld:Thing:m1", ctx_server.base + "/missing.jsonld")
    assert_problem(response, LdContextNotAvailable.status, "LdContextNotAvailable")


@pytest.mark.parametrize("body", [b"this is { not json", b'{"note": "no context member"}',
                                  b'["a", "list"]'])
def test_remote_document_that_is_not_a_context_is_bad_request_data(
        client: httpx.Client, ctx_server: ContextServer, body: bytes) -> None:
    url = ctx_server.serve("/bad.jsonld", body)
    response = create_entity(client, "urn:ngsi-ld:Thing:b1", url)
    assert_problem(response, 400, "BadRequestData")
    assert client.get("/entities/urn:ngsi-ld:Thing:b1").status_code == 404
    assert url not in client.get("/jsonldContexts").json()
