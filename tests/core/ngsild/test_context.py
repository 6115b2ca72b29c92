"""Loading @context documents and turning failures into NGSI-LD errors (clause 5.5.6)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from smartcity.core.ngsild.context import ContextCompiler, ContextDocuments
from smartcity.core.ngsild.context_registry import ContextRegistry
from smartcity.core.ngsild.errors import BadRequestData, LdContextNotAvailable

URL = "http://example.test/ctx.jsonld"
DOC = {"@context": {"A1": "urn:test:A1"}}


def setup(fetch: Any) -> tuple[ContextRegistry, ContextCompiler]:
    registry = ContextRegistry(lambda: "2026-01-01T00:00:00.000000Z")
    documents = ContextDocuments(fetch=fetch, lookup=registry.lookup, on_fetched=registry.cache)
    return registry, ContextCompiler(documents)


def test_remote_document_is_fetched_once_and_kept() -> None:
    calls: list[str] = []

    def fetch(url: str) -> Any:
        calls.append(url)
        return DOC

    registry, compiler = setup(fetch)
    assert compiler.compile(URL).expand("A1") == "urn:test:A1"
    compiler.forget()
    assert compiler.compile([URL, {"B": "urn:test:B"}]).expand("A1") == "urn:test:A1"
    assert calls == [URL]
    assert registry.find(URL)["kind"] == "Cached"


def test_each_compilation_or_reuse_is_one_hit() -> None:
    registry, compiler = setup(lambda url: DOC)
    compiler.compile(URL)
    assert registry.find(URL)["numberOfHits"] == 1
    compiler.compile(URL)  # the compiled map is reused
    compiler.compile([URL, URL])
    assert registry.find(URL)["numberOfHits"] == 3


def test_concurrent_requests_share_one_download() -> None:
    calls: list[str] = []
    gate = threading.Event()

    def fetch(url: str) -> Any:
        calls.append(url)
        gate.wait(1)
        return DOC

    _, compiler = setup(fetch)
    threads = [threading.Thread(target=compiler.compile, args=(URL,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(0.1)
    gate.set()
    for thread in threads:
        thread.join(2)
    assert calls == [URL]


@pytest.mark.parametrize("error", [ConnectionRefusedError("refused"), TimeoutError("slow"),
                                   LdContextNotAvailable("answered 404")])
def test_retrieval_failures_are_ld_context_not_available(error: Exception) -> None:
    def fetch(url: str) -> Any:
        raise error

    registry, compiler = setup(fetch)
    with pytest.raises(LdContextNotAvailable):
        compiler.compile([URL])
    assert URL not in [r["URL"] for r in registry.list(None)]


@pytest.mark.parametrize("document", [{"note": "no context"}, ["a", "list"], "text", 42])
def test_retrieved_document_that_is_not_a_context_is_bad_request_data(document: Any) -> None:
    registry, compiler = setup(lambda url: document)
    with pytest.raises(BadRequestData):
        compiler.compile(URL)
    assert URL not in [r["URL"] for r in registry.list(None)]


def test_fetcher_bad_request_data_passes_through() -> None:
    def fetch(url: str) -> Any:
        raise BadRequestData("not JSON")

    _, compiler = setup(fetch)
    with pytest.raises(BadRequestData, match="not JSON"):
        compiler.compile(URL)


def test_nested_remote_failure_keeps_its_error_type() -> None:
    inner = "http://example.test/inner.jsonld"

    def fetch(url: str) -> Any:
        if url == inner:
            raise LdContextNotAvailable("inner is down")
        return {"@context": [inner, {"A1": "urn:test:A1"}]}

    _, compiler = setup(fetch)
    with pytest.raises(LdContextNotAvailable, match="inner is down"):
        compiler.compile(URL)


def test_invalid_inline_context_is_bad_request_data() -> None:
    _, compiler = setup(None)
    with pytest.raises(BadRequestData):
        compiler.compile({"A1": {"@id": 5}})


def test_without_fetching_unknown_urls_are_not_available() -> None:
    _, compiler = setup(None)
    with pytest.raises(LdContextNotAvailable):
        compiler.compile(URL)


def test_relative_reference_names_a_context_hosted_here() -> None:
    registry, compiler = setup(None)
    record = registry.add_hosted(DOC, "http://broker.test/")
    path = f"/ngsi-ld/v1/jsonldContexts/{record['localId']}"
    assert compiler.compile(path).expand("A1") == "urn:test:A1"
    assert compiler.compile(record["URL"]).expand("A1") == "urn:test:A1"
    with pytest.raises(LdContextNotAvailable):
        compiler.compile("/ngsi-ld/v1/jsonldContexts/unknown")
    with pytest.raises(LdContextNotAvailable):
        compiler.compile("somewhere/else.jsonld")


def test_core_context_urls_never_fetch() -> None:
    def fetch(url: str) -> Any:
        raise AssertionError(f"fetched {url}")

    _, compiler = setup(fetch)
    terms = compiler.compile("https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.6.jsonld")
    assert terms.expand("location") == "https://uri.etsi.org/ngsi-ld/location"
