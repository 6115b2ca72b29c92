"""@context management (clause 5.13): hosted, cached and implicitly created contexts.

Hosted and ImplicitlyCreated @contexts belong to the tenant they were added under:
the management API (list, serve, delete) shows them to that tenant only. Cached
@contexts are copies of public documents and are shared by every tenant. The
NGSI-LD core @context is always present, as a Cached entry that cannot be deleted.

The document store behind expansion (``lookup``) is keyed by URL alone: a hosted
@context's URL names it wherever it is used, like any other @context URL.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from pyld import jsonld

from smartcity.core.ngsild.context import CORE_CONTEXT, CORE_CONTEXT_URL, is_core_context
from smartcity.core.ngsild.errors import BadRequestData, InvalidRequest, ResourceNotFound

HOSTED, CACHED, IMPLICIT = "Hosted", "Cached", "ImplicitlyCreated"
KINDS = (HOSTED, CACHED, IMPLICIT)
PATH = "/ngsi-ld/v1/jsonldContexts/"
CORE_ID = "ngsi-ld-core-context"
PERSIST_USAGE_EVERY = 1.0  # seconds: usage counters are written back at most this often

Record = dict[str, Any]
_INTERNAL = ("document", "tenant")


def check_context_value(context: Any) -> None:
    """Reject a @context value that is not valid JSON-LD (clause 5.5.4): BadRequestData.

    Remote members are not fetched here; only the value itself and its inline
    term definitions are checked.
    """
    items = context if isinstance(context, list) else [context]
    for item in items:
        if isinstance(item, str):
            if not item.startswith(("http://", "https://")):
                raise BadRequestData(f"@context member {item!r} is not an absolute URL")
        elif not isinstance(item, dict):
            raise BadRequestData("@context must be a URL, an object, or an array of those")

    def stub(url: str, options: Any = None) -> dict[str, Any]:
        return {"contextUrl": None, "documentUrl": url, "document": {"@context": {}}}

    options = {"documentLoader": stub, "base": "",
               "contextResolver": jsonld.ContextResolver({}, stub)}
    try:
        jsonld.JsonLdProcessor().process_context(
            {"mappings": {}, "processingMode": "json-ld-1.1"}, context, options)
    except jsonld.JsonLdError as exc:
        code = getattr(exc, "code", None) or exc.type
        raise BadRequestData(f"Invalid @context: {code}") from None


class ContextRegistry:
    """Keeps @context documents and their bookkeeping (hits, last use).

    Records are plain dicts so a store can persist them as they are; ``persist``
    is called when one is added or changed (with ``changed`` False when only its usage
    counters moved, at most every PERSIST_USAGE_EVERY seconds), ``forget`` when one is
    deleted.
    """

    def __init__(self, now: Callable[[], str],
                 persist: Callable[[Record, bool], None] | None = None,
                 forget: Callable[[str], None] | None = None) -> None:
        self._now = now
        self._persist = persist or (lambda record, changed: None)
        self._forget = forget or (lambda local_id: None)
        self._records: dict[str, Record] = {}
        self._by_url: dict[str, str] = {}
        self._persisted: dict[str, float] = {}
        self._lock = threading.RLock()
        self._core: Record = {"URL": CORE_CONTEXT_URL, "localId": CORE_ID, "kind": CACHED,
                              "createdAt": now(), "document": CORE_CONTEXT}

    # -- records ----------------------------------------------------------------
    def load(self, records: list[Record]) -> None:
        with self._lock:
            for record in records:
                if record.get("kind") != CACHED:
                    record.setdefault("tenant", "")
                self._index(record)

    def reload(self, records: list[Record]) -> None:
        """Hold exactly ``records`` (another worker added or deleted some); usage counted
        here and not saved yet is kept."""
        with self._lock:
            known = dict(self._records)
            self._records.clear()
            self._by_url.clear()
            for record in records:
                mine = known.get(record["localId"])
                if mine is not None and mine.get("numberOfHits", 0) > record.get(
                        "numberOfHits", 0):
                    record = {**record, "numberOfHits": mine["numberOfHits"],
                              "lastUsage": mine.get("lastUsage")}
                if record.get("kind") != CACHED:
                    record.setdefault("tenant", "")
                self._index(record)

    def _index(self, record: Record) -> None:
        self._records[record["localId"]] = record
        self._by_url[record["URL"]] = record["localId"]

    def _save(self, record: Record, changed: bool = True) -> None:
        """Persist a snapshot (the live dict keeps changing under other threads);
        ``changed`` False when only its usage counters moved."""
        with self._lock:
            snapshot = dict(record)
            self._persisted[record["localId"]] = time.monotonic()
        self._persist(snapshot, changed)

    def _new(self, url: str, kind: str, document: Any, tenant: str | None,
             local_id: str | None = None, used: bool = False) -> Record:
        record: Record = {"URL": url, "localId": local_id or uuid.uuid4().hex, "kind": kind,
                          "createdAt": self._now(), "numberOfHits": 0, "document": document}
        if used:
            record["numberOfHits"] = 1
            record["lastUsage"] = record["createdAt"]
        if tenant is not None:
            record["tenant"] = tenant
        with self._lock:
            self._index(record)
        self._save(record)
        return record

    def add_hosted(self, document: Any, base_url: str, tenant: str = "") -> Record:
        """Host the @context of a request body (clause 5.13.2)."""
        if not isinstance(document, dict) or "@context" not in document:
            raise InvalidRequest("The body must be a JSON object with an @context member")
        context = document["@context"]
        check_context_value(context)
        local_id = uuid.uuid4().hex
        return self._new(base_url.rstrip("/") + PATH + local_id, HOSTED, {"@context": context},
                         tenant, local_id)

    def add_implicit(self, context: Any, base_url: str, tenant: str = "") -> Record:
        """A URL for an inline @context, so answers in plain JSON can link to it."""
        with self._lock:
            for record in self._records.values():
                if (record["kind"] == IMPLICIT and record.get("tenant", "") == tenant
                        and record["document"]["@context"] == context):
                    return record
        local_id = uuid.uuid4().hex
        return self._new(base_url.rstrip("/") + PATH + local_id, IMPLICIT,
                         {"@context": context}, tenant, local_id)

    def cache(self, url: str, document: Any) -> None:
        """Keep a document just downloaded for a request; that request is its first use."""
        with self._lock:
            if url in self._by_url:
                return
        self._new(url, CACHED, document, None, used=True)

    def replace(self, record: Record, document: Any) -> Record:
        """A reloaded Cached @context: same entry, new document (clause 5.13.5)."""
        with self._lock:
            record["document"] = document
            record["createdAt"] = self._now()
        self._save(record)
        return record

    # -- use by expansion -------------------------------------------------------
    def _known(self, url: str) -> Record | None:
        local_id = self._by_url.get(url)
        if local_id is not None:
            return self._records.get(local_id)
        if PATH in url:
            # Any address of this broker's jsonldContexts resource (the host a client
            # used may differ from the one the record was created under).
            record = self._records.get(unquote(url.rsplit(PATH, 1)[1]))
            if record is not None and record["kind"] != CACHED:
                return record
        return None

    def lookup(self, url: str) -> Any:
        """The document for a URL the registry knows (hosted here, or cached).

        Each call is one use of the @context: numberOfHits and lastUsage move.
        """
        with self._lock:
            record = self._known(url)
            if record is None:
                return None
            record["numberOfHits"] = record.get("numberOfHits", 0) + 1
            record["lastUsage"] = self._now()
            due = time.monotonic() - self._persisted.get(record["localId"], 0.0)
        if due >= PERSIST_USAGE_EVERY:
            self._save(record, changed=False)
        return record["document"]

    # -- management API ---------------------------------------------------------
    @staticmethod
    def _visible(record: Record, tenant: str) -> bool:
        return record["kind"] == CACHED or record.get("tenant", "") == tenant

    def find(self, context_id: str, tenant: str = "") -> Record:
        """A @context by localId or URL, as the given tenant sees it."""
        context_id = unquote(context_id)
        if context_id == CORE_ID or is_core_context(context_id):
            return self._core
        with self._lock:
            record = self._records.get(context_id)
            if record is None:
                record = self._known(context_id)
        if record is None or not self._visible(record, tenant):
            raise ResourceNotFound(f"No @context {context_id!r} here")
        return record

    def is_core(self, record: Record) -> bool:
        return record is self._core

    def list(self, kind: str | None, tenant: str = "") -> list[Record]:
        if kind is not None and kind not in KINDS:
            raise BadRequestData(f"kind must be one of {', '.join(KINDS)}")
        with self._lock:
            records = [self._core, *self._records.values()]
        return [r for r in records
                if (kind is None or r["kind"] == kind) and self._visible(r, tenant)]

    def delete(self, context_id: str, tenant: str = "") -> Record:
        record = self.find(context_id, tenant)
        if self.is_core(record):
            raise BadRequestData("The NGSI-LD core @context cannot be deleted")
        with self._lock:
            self._records.pop(record["localId"], None)
            self._by_url.pop(record["URL"], None)
            self._persisted.pop(record["localId"], None)
        self._forget(record["localId"])
        return record


def details(record: Record) -> dict[str, Any]:
    """The ContextInformation a client sees (without the document or the owner)."""
    return {k: v for k, v in record.items() if k not in _INTERNAL}
