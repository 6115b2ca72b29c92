"""Property: whatever a client sends, the broker answers 2xx or a 4xx ProblemDetails.

Random JSON documents, and random documents shaped like entities, go to the write
operations; random text goes into the query parameters. No input may produce a 5xx,
and whatever a write accepted must read back.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from smartcity.config import Settings
from tests.conftest import LiveServer

ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
TARGET = "urn:ngsi-ld:Streetlight:target"
BOUNDED = settings(max_examples=100, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow])

scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**63 - 1)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20)
           | st.sampled_from(["urn:ngsi-ld:null", "urn:ngsi-ld:X:1", "2024-05-01T12:00:00Z",
                              "Point", "@none", "", "/Stockholm"]))
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=16)

plain_scalars = (st.booleans() | st.integers(min_value=-(2**53), max_value=2**53)
                 | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12))
plain_values = st.recursive(  # JSON without nulls: valid attribute values
    plain_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.from_regex(r"[a-z]{1,6}", fullmatch=True), inner, max_size=3),
    max_leaves=8)


def mostly(valid: st.SearchStrategy[Any], invalid: st.SearchStrategy[Any]
           ) -> st.SearchStrategy[Any]:
    """Valid three times in four: enough accepted writes to test what is stored."""
    return st.integers(0, 3).flatmap(lambda pick: valid if pick else invalid)


uris = st.sampled_from(["urn:ngsi-ld:Circuit:1", "https://example.org/x", "urn:x:y#z"])
weird_names = st.sampled_from(["value", "type", "id", "scope", "datasetId", "@context", "@id",
                               "a=b", "observedAt", "ex:y", "", "location",
                               "https://example.org/x"]) | st.text(max_size=10)
names = mostly(st.from_regex(r"[a-z][A-Za-z0-9_]{0,8}", fullmatch=True), weird_names)
kinds = st.sampled_from(["Property", "Relationship", "GeoProperty", "LanguageProperty",
                         "VocabProperty", "ListProperty", "ListRelationship",
                         "JsonProperty", "Point", "Polygon", "Feature"]) | st.text(max_size=8)
positions = st.tuples(st.floats(-180, 180), st.floats(-90, 90)).map(list)
geometries = st.fixed_dictionaries({"type": st.just("Point"), "coordinates": positions}) \
    | st.fixed_dictionaries({"type": st.sampled_from(["LineString", "MultiPoint"]),
                             "coordinates": st.lists(positions, min_size=1, max_size=4)}) \
    | st.fixed_dictionaries({
        "type": st.sampled_from(["Point", "LineString", "Polygon", "GeometryCollection"]),
        "coordinates": json_values})
members = {m: json_values for m in ("value", "object", "languageMap", "vocab", "valueList",
                                    "objectList", "json", "datasetId", "observedAt",
                                    "unitCode", "objectType", "lang")}
metadata = st.fixed_dictionaries({}, optional={
    "observedAt": mostly(st.just("2024-05-01T12:00:00Z"), st.just("2024-05-01")),
    "unitCode": mostly(st.just("CEL"), st.just("")),
    "datasetId": mostly(uris | st.just("@none"), st.just("d1")),
    "quality": plain_values | st.builds(lambda v: {"type": "Property", "value": v},
                                        plain_values)})
attributes = st.one_of(
    plain_values,
    geometries,
    st.builds(lambda v, m: {"type": "Property", "value": v, **m}, plain_values, metadata),
    st.builds(lambda o, m: {"type": "Relationship", "object": o, **m},
              mostly(uris | st.lists(uris, min_size=1, max_size=3), json_values), metadata),
    st.builds(lambda g, m: {"type": "GeoProperty", "value": g, **m}, geometries, metadata),
    st.builds(lambda v: {"type": "LanguageProperty", "languageMap": v}, st.dictionaries(
        st.sampled_from(["en", "sv", "@none", ""]), st.text(max_size=5) | json_values,
        max_size=3)),
    st.builds(lambda v: {"type": "VocabProperty", "vocab": v},
              st.text(max_size=6) | json_values),
    st.builds(lambda v: {"type": "ListProperty", "valueList": v},
              st.lists(plain_values, max_size=3) | json_values),
    st.builds(lambda v: {"type": "ListRelationship", "objectList": v},
              st.lists(uris | st.builds(lambda u: {"object": u}, uris), max_size=3)),
    st.builds(lambda v: {"type": "JsonProperty", "json": v}, json_values),
    st.lists(st.builds(lambda v, m: {"type": "Property", "value": v, **m}, plain_values,
                       metadata), min_size=1, max_size=3),
    st.fixed_dictionaries({"type": kinds}, optional={**members,
                                                     "value": json_values | geometries}),
    json_values,
)
entity_ids = mostly(
    st.builds("urn:ngsi-ld:Streetlight:{}".format, st.integers(0, 10**9))
    | st.sampled_from(["urn:ngsi-ld:Streetlight:1", "https://example.org/lamps/3", TARGET]),
    st.sampled_from(["not a uri", "urn:ngsi-ld:null"]) | json_values)
entities = st.fixed_dictionaries(
    {"id": entity_ids, "type": mostly(st.sampled_from(["Streetlight", ["A", "B"]]),
                                      st.sampled_from(["", "1x"]) | json_values)},
    optional={"scope": mostly(st.sampled_from(["/Stockholm", ["/a", "/b/c"]]), json_values)},
).flatmap(lambda base: st.dictionaries(names, attributes, max_size=4).map(
    lambda attrs: {**attrs, **base}))
fragments = st.dictionaries(names, attributes, min_size=1, max_size=3)


@pytest.fixture(scope="module")
def server(module_db: str) -> Iterator[str]:
    with LiveServer(Settings(db=module_db, max_body_bytes=64 * 1024)) as url, \
            httpx.Client(base_url=url + "/ngsi-ld/v1", timeout=10) as http:
        target = {"id": TARGET, "type": "Streetlight", "powerState": "on",
                  "location": {"type": "GeoProperty",
                               "value": {"type": "Point", "coordinates": [18.07, 59.33]}}}
        assert http.post("/entities", json=target).status_code == 201
        yield url + "/ngsi-ld/v1"


def client(server: str) -> httpx.Client:
    """A client per example: if an example breaks the connection, the next one is clean."""
    # Plain HTTP on loopback: verify=False skips loading CA certificates (16 ms a client).
    return httpx.Client(base_url=server, timeout=10, verify=False)


def send(api: httpx.Client, method: str, path: str, body: Any) -> httpx.Response:
    content = json.dumps(body, allow_nan=False)
    return api.request(method, path, content=content,
                       headers={"Content-Type": "application/json"})


def assert_handled(response: httpx.Response) -> None:
    """2xx, or a 4xx carrying a ProblemDetails body."""
    status = response.status_code
    event(f"status {status}")
    assert status < 500, response.text
    if status >= 400:
        problem = response.json()
        assert problem["type"].startswith(ERRORS), problem
        assert isinstance(problem["title"], str) and problem["title"]
        assert problem["status"] == status
        assert isinstance(problem["detail"], str)


def assert_readable(api: httpx.Client, entity_id: Any) -> None:
    """An entity a write accepted reads back in every representation."""
    assert isinstance(entity_id, str)
    for options in ("normalized", "concise", "keyValues", "sysAttrs"):
        response = api.get("/entities/" + quote(entity_id, safe=":"),
                           params={"options": options})
        assert response.status_code == 200, (options, response.text)
    for params in ({"join": "inline", "joinLevel": "2"}, {"join": "flat"}):
        response = api.get("/entities/" + quote(entity_id, safe=":"), params=params)
        assert response.status_code == 200, (params, response.text)
    for accept in ("application/geo+json", "application/ld+json"):
        response = api.get("/entities/" + quote(entity_id, safe=":"),
                           headers={"Accept": accept})
        assert response.status_code == 200, (accept, response.text)


def check_create(api: httpx.Client, body: Any) -> None:
    response = send(api, "POST", "/entities", body)
    assert_handled(response)
    if response.status_code == 201:
        assert_readable(api, body.get("id", body.get("@id")))
        assert api.delete(response.headers["Location"].removeprefix("/ngsi-ld/v1")) \
            .status_code == 204


def check_upsert(api: httpx.Client, body: Any) -> None:
    response = send(api, "POST", "/entityOperations/upsert", body)
    assert_handled(response)
    if response.status_code == 201:
        written = response.json()
    elif response.status_code == 207:
        written = response.json()["success"]
        assert all(isinstance(e["entityId"], str) for e in response.json()["errors"])
    else:
        written = []
    for entity_id in written:
        assert_readable(api, entity_id)


def check_patch(api: httpx.Client, body: Any) -> None:
    response = send(api, "PATCH", f"/entities/{TARGET}/attrs", body)
    assert_handled(response)
    assert_readable(api, TARGET)


@BOUNDED
@given(body=json_values)
def test_any_json_posted_as_an_entity_is_handled(server: str, body: Any) -> None:
    with client(server) as api:
        check_create(api, body)


@BOUNDED
@given(body=entities)
def test_any_entity_shaped_document_posted_as_an_entity_is_handled(
        server: str, body: dict[str, Any]) -> None:
    with client(server) as api:
        check_create(api, body)


@BOUNDED
@given(body=json_values | st.lists(entities, min_size=1, max_size=4))
def test_any_json_posted_as_a_batch_upsert_is_handled(server: str, body: Any) -> None:
    with client(server) as api:
        check_upsert(api, body)


@BOUNDED
@given(body=mostly(fragments, json_values))
def test_any_json_patched_onto_attributes_is_handled(server: str, body: Any) -> None:
    with client(server) as api:
        check_patch(api, body)


query_texts = st.text(max_size=30) | st.sampled_from([
    "a==1..", "(a", "a~=(", "a[b", "a.b.c==1", 'a=="x', "a==2024-13-45T00:00:00Z",
    "a==1,2..3", "{", "}", ";", "|", "a{b{c}}", "[]", "*", "@none"])


@BOUNDED
@given(param=st.sampled_from(["q", "type", "scopeQ", "pick", "omit", "attrs", "idPattern",
                              "lang", "georel", "coordinates", "orderBy", "joinLevel"]),
       text=query_texts)
def test_any_text_in_a_query_parameter_is_handled(server: str, param: str, text: str) -> None:
    params = {"type": "Streetlight", param: text}
    if param in ("georel", "coordinates"):
        params.update({"georel": "near;maxDistance==100", "geometry": "Point",
                       "coordinates": "[18.07,59.33]", param: text})
    with client(server) as api:
        assert_handled(api.get("/entities", params=params))


# -- NUL characters: SQLite keeps them, PostgreSQL text cannot ---------------------------
def test_a_geometry_with_a_nul_in_an_extra_member_is_kept(client: httpx.Client) -> None:
    spot = {"id": "urn:ngsi-ld:Spot:nul", "type": "Spot", "location": {
        "type": "GeoProperty",
        "value": {"type": "Point", "coordinates": [18.07, 59.33], "note": "a\u0000b"}}}
    assert client.post("/entities", json=spot).status_code == 201
    near = client.get("/entities", params={"type": "Spot", "georel": "near;maxDistance==10",
                                           "geometry": "Point",
                                           "coordinates": "[18.07,59.33]"})
    assert [e["id"] for e in near.json()] == ["urn:ngsi-ld:Spot:nul"]


def test_a_query_for_a_text_with_a_nul_answers(client: httpx.Client) -> None:
    sign = {"id": "urn:ngsi-ld:Sign:nul", "type": "Sign", "text": "stop\u0000here"}
    assert client.post("/entities", json=sign).status_code == 201
    found = client.get("/entities", params={"type": "Sign", "q": 'text=="stop\u0000here"'})
    assert found.status_code == 200
    assert [e["id"] for e in found.json()] == ["urn:ngsi-ld:Sign:nul"]


def test_a_dataset_id_with_a_nul_is_bad_request_data(client: httpx.Client) -> None:
    lamp = {"id": "urn:ngsi-ld:Streetlight:nul", "type": "Streetlight",
            "power": {"type": "Property", "value": 1, "datasetId": "urn:x:a\u0000b"}}
    response = client.post("/entities", json=lamp)
    assert response.status_code == 400
    assert response.json()["type"].endswith("BadRequestData")
