"""The @context registry (clause 5.13): kinds, tenants, bookkeeping, persistence hooks."""

from __future__ import annotations

from typing import Any
from unittest.mock import patch

import pytest

from smartcity.core.ngsild.context import CORE_CONTEXT_URL
from smartcity.core.ngsild.context_registry import (
    CACHED,
    HOSTED,
    ContextRegistry,
    check_context_value,
    details,
)
from smartcity.core.ngsild.errors import BadRequestData, InvalidRequest, ResourceNotFound

BASE = "http://broker.test/"
DOC = {"@context": {"A1": "urn:test:A1"}}


class Store:
    def __init__(self) -> None:
        self.saved: dict[str, dict[str, Any]] = {}
        self.changes = 0  # saves that were more than usage counters

    def persist(self, record: dict[str, Any], changed: bool) -> None:
        self.saved[record["localId"]] = record
        self.changes += changed

    def forget(self, local_id: str) -> None:
        self.saved.pop(local_id, None)


@pytest.fixture
def store() -> Store:
    return Store()


@pytest.fixture
def registry(store: Store) -> ContextRegistry:
    return ContextRegistry(lambda: "2026-01-01T00:00:00.000000Z", store.persist, store.forget)


def test_hosted_record_is_persisted_and_found_by_id_or_url(registry: ContextRegistry,
                                                           store: Store) -> None:
    record = registry.add_hosted({**DOC, "ignored": 1}, BASE)
    assert record["kind"] == HOSTED
    assert record["URL"] == f"http://broker.test/ngsi-ld/v1/jsonldContexts/{record['localId']}"
    assert record["document"] == DOC
    assert store.saved[record["localId"]]["URL"] == record["URL"]
    assert registry.find(record["localId"]) is record
    assert registry.find(record["URL"]) is record


def test_details_hide_the_document_and_the_owner(registry: ContextRegistry) -> None:
    record = registry.add_hosted(DOC, BASE, tenant="t1")
    assert set(details(record)) == {"URL", "localId", "kind", "createdAt", "numberOfHits"}


def test_body_without_context_is_invalid_request(registry: ContextRegistry) -> None:
    with pytest.raises(InvalidRequest):
        registry.add_hosted({"A1": "urn:test:A1"}, BASE)
    with pytest.raises(InvalidRequest):
        registry.add_hosted([DOC], BASE)


@pytest.mark.parametrize("value", [42, True, None, [DOC["@context"], 7], "relative.jsonld",
                                   {"A1": 5}, {"@vocab": 7}])
def test_invalid_context_values(value: Any) -> None:
    with pytest.raises(BadRequestData):
        check_context_value(value)


@pytest.mark.parametrize("value", ["https://example.org/c.jsonld", {"A1": "urn:test:A1"},
                                   ["https://example.org/c.jsonld", {"ex": "http://ex.org/"}]])
def test_valid_context_values(value: Any) -> None:
    check_context_value(value)


def test_tenants_see_their_own_hosted_contexts_and_every_cached_one(
        registry: ContextRegistry) -> None:
    mine = registry.add_hosted(DOC, BASE, tenant="a")
    registry.cache("http://example.test/c.jsonld", DOC)
    assert registry.find(mine["localId"], "a") is mine
    with pytest.raises(ResourceNotFound):
        registry.find(mine["localId"], "b")
    with pytest.raises(ResourceNotFound):
        registry.delete(mine["localId"], "b")
    assert registry.find("http://example.test/c.jsonld", "b")["kind"] == CACHED
    urls_b = [r["URL"] for r in registry.list(None, "b")]
    assert urls_b == [CORE_CONTEXT_URL, "http://example.test/c.jsonld"]
    assert mine in registry.list(HOSTED, "a")
    # Expansion finds documents by URL, whatever the tenant.
    assert registry.lookup(mine["URL"]) == DOC


def test_lookup_counts_uses(registry: ContextRegistry) -> None:
    record = registry.add_hosted(DOC, BASE)
    assert "lastUsage" not in record
    registry.lookup(record["URL"])
    registry.lookup(f"http://other-name:1026/ngsi-ld/v1/jsonldContexts/{record['localId']}")
    assert record["numberOfHits"] == 2
    assert record["lastUsage"]
    assert registry.lookup("http://example.test/unknown.jsonld") is None


def test_using_a_context_saves_its_counters_as_no_change_of_it(
        registry: ContextRegistry, store: Store) -> None:
    """Other workers reload their @contexts on a change; counting a use is none."""
    record = registry.add_hosted(DOC, BASE)
    changes = store.changes
    with patch("smartcity.core.ngsild.context_registry.PERSIST_USAGE_EVERY", 0):
        registry.lookup(record["URL"])
    assert store.saved[record["localId"]]["numberOfHits"] == 1
    assert store.changes == changes


def test_cached_on_download_counts_that_first_use(registry: ContextRegistry) -> None:
    registry.cache("http://example.test/c.jsonld", DOC)
    registry.cache("http://example.test/c.jsonld", {"@context": {}})  # already kept
    record = registry.find("http://example.test/c.jsonld")
    assert record["numberOfHits"] == 1
    assert record["document"] == DOC


def test_cached_local_id_is_not_reachable_under_the_hosting_path(
        registry: ContextRegistry) -> None:
    registry.cache("http://example.test/c.jsonld", DOC)
    local_id = registry.find("http://example.test/c.jsonld")["localId"]
    assert registry.lookup(f"http://broker.test/ngsi-ld/v1/jsonldContexts/{local_id}") is None


def test_replace_keeps_the_entry(registry: ContextRegistry, store: Store) -> None:
    registry.cache("http://example.test/c.jsonld", DOC)
    record = registry.find("http://example.test/c.jsonld")
    new = {"@context": {"A1": "urn:test:other"}}
    registry.replace(record, new)
    assert registry.find("http://example.test/c.jsonld")["document"] == new
    assert store.saved[record["localId"]]["document"] == new


def test_delete_forgets_and_core_stays(registry: ContextRegistry, store: Store) -> None:
    record = registry.add_hosted(DOC, BASE)
    registry.delete(record["localId"])
    assert record["localId"] not in store.saved
    with pytest.raises(ResourceNotFound):
        registry.find(record["localId"])
    core = registry.find("https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.6.jsonld")
    assert registry.is_core(core)
    with pytest.raises(BadRequestData):
        registry.delete(CORE_CONTEXT_URL)


def test_load_restores_records(store: Store) -> None:
    first = ContextRegistry(lambda: "t", store.persist, store.forget)
    hosted = first.add_hosted(DOC, BASE, tenant="a")
    first.cache("http://example.test/c.jsonld", DOC)
    second = ContextRegistry(lambda: "t")
    second.load(list(store.saved.values()))
    assert second.find(hosted["localId"], "a")["document"] == DOC
    assert second.lookup("http://example.test/c.jsonld") == DOC


def test_unknown_kind_is_bad_request_data(registry: ContextRegistry) -> None:
    with pytest.raises(BadRequestData):
        registry.list("hosted")
