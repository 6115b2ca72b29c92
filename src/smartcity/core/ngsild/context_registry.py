"""@context management (clause 5.13): hosted, cached and implicitly created contexts."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from smartcity.core.ngsild.errors import BadRequestData, ResourceNotFound

HOSTED, CACHED, IMPLICIT = "Hosted", "Cached", "ImplicitlyCreated"
KINDS = (HOSTED, CACHED, IMPLICIT)
PATH = "/ngsi-ld/v1/jsonldContexts/"

Record = dict[str, Any]


class ContextRegistry:
    """Keeps @context documents and their bookkeeping (hits, last use).

    Records are plain dicts so a store can persist them as they are; ``persist``
    and ``forget`` are called on every change.
    """

    def __init__(self, now: Callable[[], str],
                 persist: Callable[[Record], None] | None = None,
                 forget: Callable[[str], None] | None = None) -> None:
        self._now = now
        self._persist = persist or (lambda record: None)
        self._forget = forget or (lambda local_id: None)
        self._records: dict[str, Record] = {}
        self._by_url: dict[str, str] = {}
        self._lock = threading.Lock()

    def load(self, records: list[Record]) -> None:
        for record in records:
            self._index(record)

    def _index(self, record: Record) -> None:
        self._records[record["localId"]] = record
        self._by_url[record["URL"]] = record["localId"]

    def _new(self, url: str, kind: str, document: Any, local_id: str | None = None) -> Record:
        record = {"URL": url, "localId": local_id or uuid.uuid4().hex, "kind": kind,
                  "createdAt": self._now(), "numberOfHits": 0, "document": document}
        with self._lock:
            self._index(record)
        self._persist(record)
        return record

    def add_hosted(self, document: Any, base_url: str) -> Record:
        if not isinstance(document, dict) or "@context" not in document:
            raise BadRequestData("The body must be a JSON object with an @context member")
        context = document["@context"]
        if not isinstance(context, dict | list | str):
            raise BadRequestData("@context must be an object, an array or a URL")
        local_id = uuid.uuid4().hex
        return self._new(base_url.rstrip("/") + PATH + local_id, HOSTED, {"@context": context},
                         local_id)

    def add_implicit(self, context: Any, base_url: str) -> Record:
        """A URL for an inline @context, so answers in plain JSON can link to it."""
        for record in self._records.values():
            if record["kind"] == IMPLICIT and record["document"]["@context"] == context:
                return record
        local_id = uuid.uuid4().hex
        return self._new(base_url.rstrip("/") + PATH + local_id, IMPLICIT,
                         {"@context": context}, local_id)

    def cache(self, url: str, document: Any) -> None:
        if url not in self._by_url:
            self._new(url, CACHED, document)

    def lookup(self, url: str) -> Any:
        """The document for a URL the registry knows (hosted here, or cached)."""
        local_id = self._by_url.get(url)
        if local_id is None and PATH in url:
            local_id = unquote(url.rsplit(PATH, 1)[1])
        record = self._records.get(local_id) if local_id else None
        if record is None:
            return None
        record["numberOfHits"] = record.get("numberOfHits", 0) + 1
        record["lastUsage"] = self._now()
        return record["document"]

    def find(self, context_id: str) -> Record:
        context_id = unquote(context_id)
        local_id = self._by_url.get(context_id, context_id)
        record = self._records.get(local_id)
        if record is None and PATH in context_id:
            record = self._records.get(context_id.rsplit(PATH, 1)[1])
        if record is None:
            raise ResourceNotFound(f"No @context {context_id!r} here")
        return record

    def list(self, kind: str | None) -> list[Record]:
        if kind is not None and kind not in KINDS:
            raise BadRequestData(f"kind must be one of {', '.join(KINDS)}")
        return [r for r in self._records.values() if kind is None or r["kind"] == kind]

    def delete(self, context_id: str) -> Record:
        record = self.find(context_id)
        with self._lock:
            self._records.pop(record["localId"], None)
            self._by_url.pop(record["URL"], None)
        self._forget(record["localId"])
        return record


def details(record: Record) -> dict[str, Any]:
    """The ContextInformation a client sees (without the document)."""
    return {k: v for k, v in record.items() if k != "document"}
