"""JSON-LD @context handling: every @context is compiled once into a term map.

pyld does the full JSON-LD context processing (protected terms, prefixes, @vocab,
remote and nested contexts); the result is flattened into plain dicts so that
expanding or compacting an entity's terms is a dictionary look-up, not a JSON-LD
algorithm run per entity.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from typing import Any
from urllib.parse import urljoin

import orjson
from pyld import jsonld

from smartcity.core.ngsild.errors import BadRequestData, LdContextNotAvailable, NgsiLdError

CORE_CONTEXT_URL = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld"
NGSI_LD = "https://uri.etsi.org/ngsi-ld/"
DEFAULT_VOCAB = NGSI_LD + "default-context/"
_CORE_URL = re.compile(r"^https?://uri\.etsi\.org/ngsi-ld/v1/ngsi-ld-core-context(-v1\.\d+)?\.jsonld$")
_DATA_INTEGRITY_URL = "https://w3id.org/security/data-integrity/v2"
_IRI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")

# A relative @context reference in a request resolves against the request's URL, that is
# against this broker (JSON-LD base IRI); this origin stands for it. Only @contexts hosted
# here can be found under it; nothing is ever fetched from it.
THIS_BROKER = "http://this-broker.invalid"

Fetch = Callable[[str], Any]
"""Fetches a remote @context document by URL; returns the parsed JSON or raises."""


def _bundled(name: str) -> dict[str, Any]:
    data = resources.files("smartcity.data").joinpath("contexts", name).read_bytes()
    return orjson.loads(data)


CORE_CONTEXT: dict[str, Any] = _bundled("ngsi-ld-core-context-v1.9.jsonld")
_DATA_INTEGRITY: dict[str, Any] = _bundled("w3id-security-data-integrity-v2.jsonld")


def resolve_here(item: Any) -> Any:
    """A relative @context reference made absolute against this broker."""
    if isinstance(item, str) and not _IRI.match(item):
        return urljoin(THIS_BROKER + "/", item)
    return item


def is_core_context(url: str) -> bool:
    return bool(_CORE_URL.match(url))


def bundled_document(url: str) -> dict[str, Any] | None:
    """The bundled copy of a well-known @context URL, if it is one."""
    if is_core_context(url):
        return CORE_CONTEXT
    if url.rstrip("/") == _DATA_INTEGRITY_URL:
        return _DATA_INTEGRITY
    return None


@dataclass
class TermMap:
    """A compiled @context: term <-> IRI, with memoised look-ups."""

    context: list[Any]
    terms: dict[str, str]
    keywords: frozenset[str]  # terms that alias JSON-LD keywords (id, type, ...)
    prefixes: dict[str, str]
    vocab: str | None
    inverse: dict[str, str]
    _expanded: dict[str, str] = field(default_factory=dict, repr=False)
    _compacted: dict[str, str] = field(default_factory=dict, repr=False)

    def expand(self, term: str) -> str:
        """Vocabulary-relative IRI expansion of an attribute or type name."""
        iri = self._expanded.get(term)
        if iri is None:
            iri = self._expand(term)
            if len(self._expanded) < 100_000:
                self._expanded[term] = iri
        return iri

    def _expand(self, term: str) -> str:
        mapped = self.terms.get(term)
        if mapped is not None:
            return mapped
        if ":" in term:
            prefix, _, suffix = term.partition(":")
            if prefix in self.prefixes and not suffix.startswith("//"):
                return self.prefixes[prefix] + suffix
            if _IRI.match(term):
                return term
        return (self.vocab or "") + term

    def compact(self, iri: str) -> str:
        """The shortest name this context gives an IRI (the IRI itself if none)."""
        term = self._compacted.get(iri)
        if term is None:
            term = self._compact(iri)
            if len(self._compacted) < 100_000:
                self._compacted[iri] = term
        return term

    def _compact(self, iri: str) -> str:
        term = self.inverse.get(iri)
        if term is not None:
            return term
        if self.vocab and iri.startswith(self.vocab):
            rest = iri[len(self.vocab):]
            if rest and rest not in self.terms and ":" not in rest:
                return rest
        best: str | None = None
        for prefix, base in self.prefixes.items():
            if iri.startswith(base) and len(iri) > len(base):
                candidate = f"{prefix}:{iri[len(base):]}"
                if best is None or (len(candidate), candidate) < (len(best), best):
                    best = candidate
        return best or iri


def _flatten(active: Any, context: list[Any]) -> TermMap:
    terms: dict[str, str] = {}
    keywords: set[str] = set()
    prefixes: dict[str, str] = {}
    for term, definition in active["mappings"].items():
        iri = definition.get("@id") if definition else None
        if iri and iri.startswith("@"):
            keywords.add(term)
        if not iri or iri.startswith("@") or definition.get("reverse"):
            continue
        terms[term] = iri
        if definition.get("_prefix") or (":" not in term and iri[-1:] in "/#:"):
            prefixes[term] = iri
    inverse: dict[str, str] = {}
    for term, iri in sorted(terms.items(), key=lambda kv: (len(kv[0]), kv[0]), reverse=True):
        inverse[iri] = term
    return TermMap(context=context, terms=terms, keywords=frozenset(keywords), prefixes=prefixes,
                   vocab=active.get("@vocab"), inverse=inverse)


def context_list(context: Any) -> list[Any]:
    """Normalise a @context value to a list that ends with the core context."""
    items = list(context) if isinstance(context, list) else [] if context is None else [context]
    for item in items:
        if not isinstance(item, str | dict):
            raise BadRequestData(f"Invalid @context member: {item!r}")
    return items


def _refuse_scoped_contexts(context: Any) -> None:
    """User contexts may not carry scoped contexts (clause 5.5.7): terms stay global."""
    if is_core_document(context):
        return
    for item in context if isinstance(context, list) else [context]:
        if not isinstance(item, dict):
            continue
        for term, definition in item.items():
            if isinstance(definition, dict) and "@context" in definition:
                raise BadRequestData(f"@context term {term!r} has a scoped context, "
                                     "which NGSI-LD does not allow in user contexts")


def is_core_document(context: Any) -> bool:
    return context is CORE_CONTEXT["@context"] or context is _DATA_INTEGRITY.get("@context")


class ContextCompiler:
    """Compiles @context values into term maps, caching both documents and results.

    ``fetch`` loads user contexts given by URL; it runs at most once per URL
    (the registry keeps the document) and its failures become LdContextNotAvailable.
    """

    def __init__(self, documents: ContextDocuments, max_cached: int = 512) -> None:
        self.documents = documents
        self._compiled: OrderedDict[bytes, TermMap] = OrderedDict()
        # The non-bundled documents each compiled map was built from: reusing the map
        # is a use of each of them (numberOfHits / lastUsage, clause 5.13).
        self._sources: dict[bytes, tuple[str, ...]] = {}
        self._max = max_cached
        self._lock = threading.Lock()
        self.core = self.compile(None)

    def cached(self, context: Any) -> TermMap | None:
        """A term map already compiled for this @context, without any I/O."""
        try:
            key = orjson.dumps(context)
        except TypeError:
            return None
        with self._lock:
            hit = self._compiled.get(key)
            if hit is None:
                return None
            self._compiled.move_to_end(key)
            sources = self._sources.get(key, ())
        if sources:
            self.documents.touch(sources)
        return hit

    def compile(self, context: Any) -> TermMap:
        """Compile a @context (URL, object or list); may fetch remote documents."""
        hit = self.cached(context)
        if hit is not None:
            return hit
        # One compilation is one use of each document it reads, however often it reads it.
        with self.documents.operation():
            return self._compile(context)

    def _compile(self, context: Any) -> TermMap:
        items = context_list(context)
        for item in items:
            document = item if isinstance(item, dict) else self.documents.get(item)
            _refuse_scoped_contexts(document.get("@context", document)
                                    if isinstance(document, dict) else document)
        processor = jsonld.JsonLdProcessor()
        options = {"documentLoader": self._load, "base": "",
                   "contextResolver": jsonld.ContextResolver({}, self._load)}
        # The core context goes last: its protected terms win over user definitions.
        try:
            active = processor.process_context(
                {"mappings": {}, "processingMode": "json-ld-1.1"},
                [*map(resolve_here, items), CORE_CONTEXT_URL], options)
        except jsonld.JsonLdError as exc:
            raise self._translate(exc) from None
        except ValueError as exc:  # pyld's IRI resolution
            raise BadRequestData(f"Invalid @context: {exc}") from None
        compiled = _flatten(active, items)
        sources = self.documents.used()
        key = orjson.dumps(context)
        with self._lock:
            self._compiled[key] = compiled
            self._sources[key] = sources
            if len(self._compiled) > self._max:
                old, _ = self._compiled.popitem(last=False)
                self._sources.pop(old, None)
        return compiled

    def forget(self) -> None:
        """Drop compiled maps (after a hosted or cached @context changed)."""
        with self._lock:
            self._compiled.clear()
            self._sources.clear()
        self.core = self.compile(None)

    def _load(self, url: str, options: Any = None) -> dict[str, Any]:
        bundled = bundled_document(url)
        if bundled is not None:
            return {"contextUrl": None, "documentUrl": url, "document": bundled}
        document = self.documents.get(url)
        # pyld rewrites relative URLs in place: give it a copy, not the stored document.
        return {"contextUrl": None, "documentUrl": url,
                "document": orjson.loads(orjson.dumps(document))}

    @staticmethod
    def _translate(exc: jsonld.JsonLdError) -> Exception:
        """The NGSI-LD error for a failed @context processing (clause 5.5.6).

        A document that cannot be retrieved is LdContextNotAvailable; one that was
        retrieved but is not a valid @context, or an invalid inline @context, is
        BadRequestData.
        """
        cause: Any = exc
        seen: set[int] = set()
        while cause is not None and id(cause) not in seen:
            seen.add(id(cause))
            if isinstance(cause, NgsiLdError):
                return cause
            cause = (getattr(cause, "cause", None) or cause.__cause__ or cause.__context__)
        code = getattr(exc, "code", "") or ""
        if code in ("loading remote context failed", "loading document failed"):
            return LdContextNotAvailable(f"@context could not be loaded: {exc.args[0]}")
        return BadRequestData(f"Invalid @context: {code or exc.args[0]}")


class ContextDocuments:
    """Where @context documents come from: bundled, hosted here, or fetched once.

    ``lookup`` answers for documents the broker keeps (and counts each call as a use),
    ``fetch`` downloads the others, and ``on_fetched`` keeps what was downloaded.
    A URL is downloaded by one request at a time; others asking for it meanwhile
    wait for that download instead of starting their own.
    """

    def __init__(self, fetch: Fetch | None = None, lookup: Callable[[str], Any] | None = None,
                 on_fetched: Callable[[str, Any], None] | None = None) -> None:
        self._fetch = fetch
        self._lookup = lookup
        self._on_fetched = on_fetched
        self._lock = threading.Lock()
        self._fetching: dict[str, threading.Lock] = {}
        self._op = threading.local()

    @contextmanager
    def operation(self) -> Iterator[None]:
        """Within one operation (on this thread), each URL is looked up at most once."""
        outer = getattr(self._op, "memo", None)
        if outer is None:
            self._op.memo = {}
        try:
            yield
        finally:
            if outer is None:
                self._op.memo = None

    def used(self) -> tuple[str, ...]:
        """The kept or downloaded (not bundled) documents the current operation read."""
        memo = getattr(self._op, "memo", None) or {}
        return tuple(url for url in memo if bundled_document(url) is None)

    def _known(self, url: str) -> Any:
        doc = bundled_document(url)
        if doc is None and self._lookup is not None:
            doc = self._lookup(url)
        return doc

    def get(self, url: str) -> Any:
        url = resolve_here(url)
        memo = getattr(self._op, "memo", None)
        if memo is not None and url in memo:
            return memo[url]
        doc = self._get(url)
        if memo is not None:
            memo[url] = doc
        return doc

    def _get(self, url: str) -> Any:
        doc = self._known(url)
        if doc is not None:
            return doc
        with self._lock:
            url_lock = self._fetching.setdefault(url, threading.Lock())
        try:
            with url_lock:
                doc = self._known(url)  # downloaded by another request meanwhile
                if doc is not None:
                    return doc
                if url.startswith(THIS_BROKER + "/"):
                    raise LdContextNotAvailable(
                        f"{url[len(THIS_BROKER):]} is not a @context hosted by this broker")
                doc = self.download(url)
                if self._on_fetched is not None:
                    self._on_fetched(url, doc)
                return doc
        finally:
            with self._lock:
                if not url_lock.locked():
                    self._fetching.pop(url, None)

    def download(self, url: str) -> Any:
        """Fetch a @context document now, bypassing what is kept (for a reload).

        LdContextNotAvailable when it cannot be retrieved, BadRequestData when what
        was retrieved is not a JSON-LD @context document (clause 5.5.6).
        """
        if self._fetch is None:
            raise LdContextNotAvailable(f"@context {url} is not known and fetching is disabled")
        try:
            doc = self._fetch(url)
        except NgsiLdError:
            raise
        except Exception as exc:
            raise LdContextNotAvailable(f"@context {url} could not be fetched: {exc}") from None
        if not isinstance(doc, dict) or "@context" not in doc:
            raise BadRequestData(f"{url} is not a JSON-LD @context document "
                                 "(a JSON object with an @context member)")
        return doc

    def touch(self, urls: tuple[str, ...]) -> None:
        """Count a use of documents the broker keeps (a compiled map was reused)."""
        if self._lookup is None:
            return
        for url in urls:
            self._lookup(url)
