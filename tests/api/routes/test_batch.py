"""Specification of batch operations: /ngsi-ld/v1/entityOperations/{create,upsert,...}.

ETSI GS CIM 009 V1.9.1, clauses 5.6.7-5.6.10 and 5.6.20 (batch create, upsert, update,
delete, merge), 5.2.16-5.2.17 (BatchOperationResult, BatchEntityError) and 6.14-6.31.
Each item of a batch succeeds or fails on its own: a bad item is reported with its
entity id and a ProblemDetails, and never keeps the good ones from being written.
"""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import quote

import httpx
import pytest

ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
CORE_CONTEXT = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld"
NULL = "urn:ngsi-ld:null"


def new_id(kind: str = "ParkingSpot") -> str:
    return f"urn:ngsi-ld:{kind}:{uuid.uuid4().hex[:12]}"


def spot(entity_id: str, status: str = "free", **attrs: Any) -> dict[str, Any]:
    return {"id": entity_id, "type": "ParkingSpot",
            "status": {"type": "Property", "value": status}, **attrs}


def batch(api: httpx.Client, operation: str, body: Any, **kwargs: Any) -> httpx.Response:
    return api.post(f"/entityOperations/{operation}", json=body, **kwargs)


def read(api: httpx.Client, entity_id: str, **kwargs: Any) -> dict[str, Any] | None:
    response = api.get("/entities/" + quote(entity_id, safe=":"), **kwargs)
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def status_of(api: httpx.Client, entity_id: str) -> Any:
    entity = read(api, entity_id)
    assert entity is not None, entity_id
    return entity["status"]["value"]


def errors_by_id(response: httpx.Response) -> dict[str, dict[str, Any]]:
    """The BatchOperationResult errors, checked for shape, by entity id."""
    assert response.status_code == 207, response.text
    result = response.json()
    assert set(result) == {"success", "errors"}
    found = {}
    for item in result["errors"]:
        problem = item["error"]
        assert problem["type"].startswith(ERRORS)
        assert problem["title"] and problem["detail"]
        assert 400 <= problem["status"] < 500
        found[item["entityId"]] = problem
    return found


def assert_problem(response: httpx.Response, status: int, name: str | None = None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["type"].startswith(ERRORS)
    if name is not None:
        assert body["type"] == ERRORS + name
    assert body["title"] and body["status"] == status and body["detail"]


# --- create -----------------------------------------------------------------------------


def test_batch_create_answers_201_with_the_ids_created(api: httpx.Client) -> None:
    first, second = new_id(), new_id()
    response = batch(api, "create", [spot(first), spot(second, "taken")])
    assert response.status_code == 201, response.text
    assert response.json() == [first, second]
    assert status_of(api, first) == "free"
    assert status_of(api, second) == "taken"


def test_batch_create_reports_each_bad_entity_and_keeps_the_good_ones(
        api: httpx.Client) -> None:
    existing, good, other = new_id(), new_id(), new_id()
    assert batch(api, "create", [spot(existing)]).status_code == 201
    response = batch(api, "create", [
        spot(good), {"id": "not a uri", "type": "ParkingSpot"}, spot(existing, "taken"),
        {"id": new_id(), "status": "free"}, spot(other, "taken")])
    errors = errors_by_id(response)
    assert response.json()["success"] == [good, other]
    assert errors[existing]["type"] == ERRORS + "AlreadyExists"
    assert errors["not a uri"]["type"] == ERRORS + "BadRequestData"
    assert len(errors) == 3
    assert status_of(api, good) == "free"
    assert status_of(api, other) == "taken"
    assert status_of(api, existing) == "free"


def test_batch_create_with_the_same_id_twice_creates_it_once(api: httpx.Client) -> None:
    entity_id = new_id()
    response = batch(api, "create", [spot(entity_id), spot(entity_id, "taken")])
    errors = errors_by_id(response)
    assert response.json()["success"] == [entity_id]
    assert errors[entity_id]["type"] == ERRORS + "AlreadyExists"
    assert status_of(api, entity_id) == "free"


def test_batch_create_where_every_entity_fails_writes_nothing(api: httpx.Client) -> None:
    entity_id = new_id()
    response = batch(api, "create", [{"id": entity_id, "type": "ParkingSpot", "x": NULL}])
    errors = errors_by_id(response)
    assert response.json()["success"] == []
    assert set(errors) == {entity_id}
    assert read(api, entity_id) is None


def test_batch_create_commits_every_valid_entity(api: httpx.Client) -> None:
    kind = "Spot" + uuid.uuid4().hex[:8]
    entities = [{"id": f"urn:ngsi-ld:{kind}:{i}", "type": kind, "n": i} for i in range(30)]
    entities.insert(10, {"id": f"urn:ngsi-ld:{kind}:bad", "type": kind, "n": NULL})
    response = batch(api, "create", entities)
    assert len(response.json()["success"]) == 30
    found = api.get("/entities", params={"type": kind, "count": "true", "limit": 0})
    assert found.headers["NGSILD-Results-Count"] == "30"


# --- upsert -----------------------------------------------------------------------------


def test_batch_upsert_of_new_entities_answers_201_with_their_ids(api: httpx.Client) -> None:
    first, second = new_id(), new_id()
    response = batch(api, "upsert", [spot(first), spot(second)])
    assert response.status_code == 201, response.text
    assert response.json() == [first, second]


def test_batch_upsert_of_existing_entities_only_answers_204(api: httpx.Client) -> None:
    entity_id = new_id()
    assert batch(api, "create", [spot(entity_id)]).status_code == 201
    response = batch(api, "upsert", [spot(entity_id, "taken")])
    assert response.status_code == 204, response.text
    assert status_of(api, entity_id) == "taken"


def test_batch_upsert_answers_only_the_ids_it_created(api: httpx.Client) -> None:
    existing, fresh = new_id(), new_id()
    assert batch(api, "create", [spot(existing)]).status_code == 201
    response = batch(api, "upsert", [spot(existing, "taken"), spot(fresh)])
    assert response.status_code == 201, response.text
    assert response.json() == [fresh]


def test_batch_upsert_replaces_existing_entities_by_default(api: httpx.Client) -> None:
    entity_id = new_id()
    assert batch(api, "create", [spot(entity_id, charger="yes")]).status_code == 201
    for options in ({}, {"options": "replace"}):
        response = batch(api, "upsert", [spot(entity_id, "taken", width=2.5)], params=options)
        assert response.status_code == 204, response.text
        entity = read(api, entity_id)
        assert entity is not None
        assert set(entity) == {"id", "type", "status", "width"}


def test_batch_upsert_with_update_option_keeps_other_attributes(api: httpx.Client) -> None:
    entity_id = new_id()
    assert batch(api, "create", [spot(entity_id, charger="yes")]).status_code == 201
    response = batch(api, "upsert", [spot(entity_id, "taken", width=2.5)],
                     params={"options": "update"})
    assert response.status_code == 204, response.text
    entity = read(api, entity_id)
    assert entity is not None
    assert entity["status"]["value"] == "taken"
    assert entity["charger"]["value"] == "yes"
    assert entity["width"]["value"] == 2.5


def test_batch_upsert_with_update_option_still_creates_new_entities(
        api: httpx.Client) -> None:
    entity_id = new_id()
    response = batch(api, "upsert", [spot(entity_id)], params={"options": "update"})
    assert response.status_code == 201, response.text
    assert response.json() == [entity_id]
    assert status_of(api, entity_id) == "free"


def test_batch_upsert_reports_each_bad_entity_and_keeps_the_good_ones(
        api: httpx.Client) -> None:
    existing, fresh, bad = new_id(), new_id(), new_id()
    assert batch(api, "create", [spot(existing)]).status_code == 201
    response = batch(api, "upsert", [
        spot(existing, "taken"), {"id": bad, "type": "ParkingSpot", "status": NULL},
        spot(fresh), {"type": "ParkingSpot"}])
    errors = errors_by_id(response)
    assert set(response.json()["success"]) == {existing, fresh}
    assert bad in errors and len(errors) == 2
    assert status_of(api, existing) == "taken"
    assert status_of(api, fresh) == "free"
    assert read(api, bad) is None


def test_batch_upsert_with_both_options_is_400(api: httpx.Client) -> None:
    entity_id = new_id()
    response = batch(api, "upsert", [spot(entity_id)], params={"options": "replace,update"})
    assert_problem(response, 400)
    assert read(api, entity_id) is None


# --- update -----------------------------------------------------------------------------


def test_batch_update_changes_attributes_and_answers_204(api: httpx.Client) -> None:
    first, second = new_id(), new_id()
    assert batch(api, "create", [spot(first, charger="yes"), spot(second)]).status_code == 201
    response = batch(api, "update", [{"id": first, "status": "taken"},
                                     {"id": second, "type": "ParkingSpot", "width": 2.5}])
    assert response.status_code == 204, response.text
    assert status_of(api, first) == "taken"
    entity = read(api, first)
    assert entity is not None and entity["charger"]["value"] == "yes"
    entity = read(api, second)
    assert entity is not None and entity["width"]["value"] == 2.5


def test_batch_update_reports_unknown_entities_and_keeps_the_good_ones(
        api: httpx.Client) -> None:
    known, unknown = new_id(), new_id()
    assert batch(api, "create", [spot(known)]).status_code == 201
    response = batch(api, "update", [{"id": unknown, "status": "taken"},
                                     {"id": known, "status": "taken"}])
    errors = errors_by_id(response)
    assert response.json()["success"] == [known]
    assert errors[unknown]["type"] == ERRORS + "ResourceNotFound"
    assert status_of(api, known) == "taken"
    assert read(api, unknown) is None


def test_batch_update_with_no_overwrite_keeps_existing_values(api: httpx.Client) -> None:
    entity_id = new_id()
    assert batch(api, "create", [spot(entity_id)]).status_code == 201
    response = batch(api, "update", [{"id": entity_id, "status": "taken", "width": 2.5}],
                     params={"options": "noOverwrite"})
    assert response.status_code in (204, 207), response.text
    entity = read(api, entity_id)
    assert entity is not None
    assert entity["status"]["value"] == "free"
    assert entity["width"]["value"] == 2.5


# --- merge ------------------------------------------------------------------------------


def test_batch_merge_merges_and_deletes_with_ngsi_ld_null(api: httpx.Client) -> None:
    entity_id = new_id()
    assert batch(api, "create", [spot(entity_id, charger="yes")]).status_code == 201
    response = batch(api, "merge", [{"id": entity_id, "charger": NULL, "width": 2.5}])
    assert response.status_code == 204, response.text
    entity = read(api, entity_id)
    assert entity is not None
    assert set(entity) == {"id", "type", "status", "width"}


def test_batch_merge_reports_each_bad_entity_and_keeps_the_good_ones(
        api: httpx.Client) -> None:
    known, unknown = new_id(), new_id()
    assert batch(api, "create", [spot(known)]).status_code == 201
    response = batch(api, "merge", [{"id": unknown, "status": "taken"},
                                    {"id": known, "status": "taken"},
                                    {"id": known + " bad", "status": "taken"}])
    errors = errors_by_id(response)
    assert response.json()["success"] == [known]
    assert errors[unknown]["type"] == ERRORS + "ResourceNotFound"
    assert len(errors) == 2
    assert status_of(api, known) == "taken"


def test_batch_merge_accepts_the_merge_patch_media_type(api: httpx.Client) -> None:
    entity_id = new_id()
    assert batch(api, "create", [spot(entity_id)]).status_code == 201
    response = api.post("/entityOperations/merge",
                        content=json.dumps([{"id": entity_id, "status": "taken"}]),
                        headers={"Content-Type": "application/merge-patch+json"})
    assert response.status_code == 204, response.text
    assert status_of(api, entity_id) == "taken"


# --- delete -----------------------------------------------------------------------------


def test_batch_delete_removes_the_entities_and_answers_204(api: httpx.Client) -> None:
    first, second = new_id(), new_id()
    assert batch(api, "create", [spot(first), spot(second)]).status_code == 201
    response = batch(api, "delete", [first, second])
    assert response.status_code == 204, response.text
    assert read(api, first) is None
    assert read(api, second) is None


def test_batch_delete_reports_unknown_and_malformed_ids_and_deletes_the_rest(
        api: httpx.Client) -> None:
    known, unknown = new_id(), new_id()
    assert batch(api, "create", [spot(known)]).status_code == 201
    response = batch(api, "delete", [unknown, "not a uri", known])
    errors = errors_by_id(response)
    assert response.json()["success"] == [known]
    assert errors[unknown]["type"] == ERRORS + "ResourceNotFound"
    assert errors["not a uri"]["type"] == ERRORS + "BadRequestData"
    assert read(api, known) is None


# --- malformed batches ------------------------------------------------------------------


@pytest.mark.parametrize("operation", ["create", "upsert", "update", "merge", "delete"])
@pytest.mark.parametrize("body", [{}, [], "urn:ngsi-ld:X:1", None])
def test_a_batch_that_is_not_a_non_empty_array_is_400(api: httpx.Client, operation: str,
                                                      body: Any) -> None:
    response = api.post(f"/entityOperations/{operation}", content=json.dumps(body),
                        headers={"Content-Type": "application/json"})
    assert_problem(response, 400)


@pytest.mark.parametrize("operation", ["create", "upsert", "update", "merge"])
def test_batch_items_must_be_objects(api: httpx.Client, operation: str) -> None:
    entity_id = new_id()
    response = batch(api, operation, [spot(entity_id), 42])
    assert 400 <= response.status_code < 500
    if response.status_code == 207:
        assert entity_id in response.json()["success"]
    else:
        assert_problem(response, response.status_code)
        assert read(api, entity_id) is None


@pytest.mark.parametrize("operation", ["create", "upsert", "update", "merge", "delete"])
def test_malformed_json_is_400_invalid_request(api: httpx.Client, operation: str) -> None:
    response = api.post(f"/entityOperations/{operation}", content=b"[{",
                        headers={"Content-Type": "application/json"})
    assert_problem(response, 400, "InvalidRequest")


@pytest.mark.parametrize("operation", ["create", "upsert", "update", "merge", "delete"])
def test_an_unknown_query_parameter_is_400(api: httpx.Client, operation: str) -> None:
    entity_id = new_id()
    body = [entity_id] if operation == "delete" else [spot(entity_id)]
    response = batch(api, operation, body, params={"atomic": "true"})
    assert_problem(response, 400, "InvalidRequest")
    assert read(api, entity_id) is None


@pytest.mark.parametrize("operation", ["create", "upsert", "update"])
def test_an_unknown_option_is_400(api: httpx.Client, operation: str) -> None:
    entity_id = new_id()
    response = batch(api, operation, [spot(entity_id)], params={"options": "atomic"})
    assert_problem(response, 400)
    assert read(api, entity_id) is None


def test_a_batch_larger_than_the_body_limit_is_413(api: httpx.Client) -> None:
    entities = [spot(new_id(), "x" * 1000) for _ in range(80)]
    assert_problem(batch(api, "create", entities), 413)
    assert read(api, entities[0]["id"]) is None


def test_an_unsupported_content_type_is_415(api: httpx.Client) -> None:
    entity_id = new_id()
    response = api.post("/entityOperations/create", content=json.dumps([spot(entity_id)]),
                        headers={"Content-Type": "text/plain"})
    assert_problem(response, 415)
    assert read(api, entity_id) is None


# --- @context and tenants ---------------------------------------------------------------


def test_json_ld_batches_need_a_context_on_every_entity(api: httpx.Client) -> None:
    with_context, without = new_id(), new_id()
    body = [{**spot(with_context), "@context": CORE_CONTEXT}, spot(without)]
    response = api.post("/entityOperations/create", content=json.dumps(body),
                        headers={"Content-Type": "application/ld+json"})
    errors = errors_by_id(response)
    assert response.json()["success"] == [with_context]
    assert errors[without]["type"] == ERRORS + "BadRequestData"
    assert read(api, without) is None


def test_json_ld_batch_entities_are_read_with_their_own_context(api: httpx.Client) -> None:
    entity_id = new_id()
    body = [{"id": entity_id, "type": "Spot", "free": True,
             "@context": [{"Spot": "https://example.org/Spot",
                           "free": "https://example.org/free"}, CORE_CONTEXT]}]
    response = api.post("/entityOperations/upsert", content=json.dumps(body),
                        headers={"Content-Type": "application/ld+json"})
    assert response.status_code == 201, response.text
    assert read(api, entity_id) == {
        "id": entity_id, "type": "https://example.org/Spot",
        "https://example.org/free": {"type": "Property", "value": True}}


def test_json_batch_entities_must_not_carry_a_context(api: httpx.Client) -> None:
    good, bad = new_id(), new_id()
    response = batch(api, "create", [spot(good), {**spot(bad), "@context": CORE_CONTEXT}])
    errors = errors_by_id(response)
    assert response.json()["success"] == [good]
    assert bad in errors
    assert read(api, bad) is None


def test_batches_write_into_their_tenant_only(api: httpx.Client) -> None:
    entity_id, tenant = new_id(), "batch" + uuid.uuid4().hex[:8]
    headers = {"NGSILD-Tenant": tenant}
    response = batch(api, "create", [spot(entity_id)], headers=headers)
    assert response.status_code == 201
    assert response.headers["NGSILD-Tenant"] == tenant
    assert read(api, entity_id) is None
    assert read(api, entity_id, headers=headers) is not None
    assert batch(api, "delete", [entity_id], headers=headers).status_code == 204


@pytest.mark.parametrize("operation", ["update", "merge", "delete"])
def test_batches_other_than_creation_in_an_unknown_tenant_are_404(api: httpx.Client,
                                                                  operation: str) -> None:
    entity_id = new_id()
    body = [entity_id] if operation == "delete" else [{"id": entity_id, "status": "taken"}]
    response = batch(api, operation, body, headers={"NGSILD-Tenant": "nobody" + uuid.uuid4().hex})
    assert_problem(response, 404, "NonexistentTenant")
