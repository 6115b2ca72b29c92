"""The storage interface the core writes and reads through.

Backends (SQLite embedded, PostgreSQL in production) implement ``EntityStore``;
the core never sees SQL. A query hands the store what its indexes can narrow
(tenant, types, ids, attribute presence, a bounding box) plus a predicate for the
rest; the store applies the predicate while it reads, so pagination and counts
are exact.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from smartcity.core.ngsild.history import History
from smartcity.core.ngsild.history_storage import HistoryStore
from smartcity.core.ngsild.model import Entity
from smartcity.core.ngsild.pushdown import ValueFilter

if TYPE_CHECKING:  # the audit log's records; the audit log itself uses this interface
    from smartcity.security.audit import AuditEntry, AuditRow

DEFAULT_TENANT = ""


# The key of a journal's running counts that counts what comes past the bound of keys
# counted one by one (``EntityStore.append_journal``).
OVERFLOW = "*"


@dataclass(frozen=True)
class Write:
    """One change in a write transaction.

    ``expect`` is the ``modifiedAt`` the writer read: a store answers ``Conflict``
    when the row changed since (optimistic concurrency across workers).
    """

    op: Literal["insert", "replace", "delete"]
    entity_id: str
    entity: Entity | None = None
    expect: str | None = None


@dataclass(frozen=True)
class OutboxEntry:
    """A notification to deliver, recorded in the transaction of the change behind it, so
    a change committed before a crash is still notified after the restart."""

    tenant: str
    subscription_id: str
    payload: bytes
    number: int = 0  # given by the store


@dataclass(frozen=True)
class Selection:
    """What a store can narrow with its indexes before the predicate runs.

    ``types`` is a disjunction of conjunctions of type IRIs (NGSI-LD type
    expressions); ``attrs`` keeps entities that have at least one of the attributes;
    ``bbox`` = (geoproperty IRI, (minx, miny, maxx, maxy)); ``values`` are conditions
    on attribute values (see ``pushdown``) a store may use to narrow candidates.
    """

    types: tuple[frozenset[str], ...] | None = None
    ids: tuple[str, ...] | None = None
    attrs: frozenset[str] | None = None
    bbox: tuple[str, tuple[float, float, float, float]] | None = None
    values: tuple[ValueFilter, ...] = ()


Predicate = Callable[[Entity], bool]


@dataclass(frozen=True)
class Page:
    entities: list[Entity]
    total: int | None
    more: bool = False  # whether matches follow this page


# Delivery counters of a subscription (clause 5.2.12), kept apart from its settings so
# that workers counting deliveries never overwrite a change of the settings.
STATUS_COUNTS = ("timesSent", "timesFailed")
STATUS_TIMES = ("lastNotification", "lastSuccess", "lastFailure")


def with_status(record: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
    """A subscription record with a delivery status added to what it holds itself."""
    merged = dict(record)
    for name in STATUS_COUNTS:
        merged[name] = merged.get(name, 0) + (status.get(name) or 0)
    for name in STATUS_TIMES:
        if status.get(name) and status[name] > merged.get(name, ""):
            merged[name] = status[name]
    return merged


class EntityStore(Protocol):
    history: HistoryStore
    # Whether other processes write the same database (workers): then what a process
    # caches must be checked against ``cache_versions``.
    shared: bool

    async def get(self, tenant: str, entity_id: str) -> Entity | None: ...

    async def get_many(self, tenant: str, entity_ids: Sequence[str]) -> dict[str, Entity]: ...

    async def write(self, tenant: str, writes: Sequence[Write],
                    outbox: Sequence[OutboxEntry] = (), history: History | None = None,
                    now: int = 0, events: Sequence[bytes] = ()) -> None:
        """Apply all writes, and record the outbox entries, the history (recorded at
        ``now``, microseconds) and the change events for a durable bus, in one
        transaction; raise AlreadyExists/Conflict/ResourceNotFound."""

    async def pending_events(self, limit: int) -> list[tuple[int, bytes]]:
        """Recorded change events not yet handed to the bus: (number, events), oldest
        first."""

    async def drop_events(self, numbers: Sequence[int]) -> None:
        """Forget change events the bus has taken."""

    async def pending_notifications(self, limit: int,
                                    subscription: tuple[str, str] | None = None
                                    ) -> list[OutboxEntry]:
        """Outbox entries not yet delivered, oldest first; only those of one (tenant,
        subscription id) if given."""

    async def pending_subscriptions(self, limit: int) -> list[tuple[str, str]]:
        """(tenant, subscription id) of subscriptions with notifications to deliver."""

    def exclusive(self, name: str) -> AbstractAsyncContextManager[bool]:
        """Hold a named right among the processes sharing the store (True), or learn that
        another process holds it (False). A process that dies lets go of its rights."""

    async def rights_held(self) -> bool:
        """Whether the rights this process took are still held (a lost connection to the
        database loses them)."""

    async def drop_notifications(self, numbers: Sequence[int]) -> None:
        """Forget delivered (or abandoned) outbox entries."""

    async def query(self, tenant: str, selection: Selection, predicate: Predicate | None,
                    offset: int, limit: int, count: bool) -> Page: ...

    async def type_attributes(self, tenant: str) -> dict[str, dict[str, set[str]]]:
        """type IRI -> attribute IRI -> set of attribute kinds, over all entities."""

    async def type_counts(self, tenant: str) -> dict[str, int]:
        """type IRI -> number of entities of that type."""

    async def attribute_counts(self, tenant: str, attrs: Collection[str] | None = None,
                               types: Collection[str] | None = None) -> dict[str, int]:
        """attribute IRI -> number of attribute instances, only for ``attrs`` and only
        in entities of one of ``types``, if given."""

    async def tenants(self) -> list[str]: ...

    async def has_tenant(self, tenant: str) -> bool: ...

    async def subscriptions(self) -> list[dict[str, Any]]:
        """Every stored subscription record, of every tenant (``record["tenant"]``), with
        its delivery status."""

    async def subscription(self, tenant: str, subscription_id: str) -> dict[str, Any] | None:
        """One subscription record with its delivery status."""

    async def add_subscription(self, record: dict[str, Any]) -> bool:
        """Insert a subscription record unless one of its tenant and ``id`` exists
        (False then); a fresh one starts with no delivery status."""

    async def save_subscription(self, record: dict[str, Any]) -> None:
        """Insert or replace a subscription record (keyed by tenant and ``id``); its
        delivery status is kept as it is."""

    async def add_subscription_status(self, tenant: str, subscription_id: str,
                                      delta: dict[str, Any]) -> None:
        """Add counts (``STATUS_COUNTS``) to a subscription's delivery status and move its
        times (``STATUS_TIMES``) forward, never back."""

    async def delete_subscription(self, tenant: str, subscription_id: str) -> bool:
        """Remove a subscription; False when there was none."""

    async def contexts(self) -> list[dict[str, Any]]: ...

    async def save_context(self, record: dict[str, Any], changed: bool = True) -> None:
        """Insert or replace an @context record; ``changed`` False when only its usage
        counters moved (other workers need not reload their @contexts for that)."""

    async def delete_context(self, local_id: str) -> None: ...

    async def records(self, kind: str) -> list[dict[str, Any]]:
        """Every stored record of a kind (a registry of a platform service, such as the
        IoT devices), of every tenant."""

    async def save_record(self, kind: str, tenant: str, key: str,
                          record: dict[str, Any]) -> int:
        """Insert or replace a record; moves the kind's cache version, and answers the
        new one (one more than before: no other process changed the kind meanwhile)."""

    async def delete_record(self, kind: str, tenant: str, key: str) -> tuple[bool, int]:
        """Remove a record: (whether there was one, the kind's new cache version)."""

    async def append_journal(self, kind: str, entries: Sequence[dict[str, Any]], keep: int,
                             tallies: Mapping[str, int], most: int) -> None:
        """In one transaction, add entries to the kind's journal, of which only the
        newest ``keep`` stay, and ``tallies`` (key -> how many) to its running counts,
        which count at most ``most`` keys one by one (see ``journal_rows.bounded``)."""

    async def journal(self, kind: str, limit: int) -> list[dict[str, Any]]:
        """The newest entries of the kind's journal, newest first."""

    async def tallies(self, kind: str, keys: Collection[str]) -> dict[str, int]:
        """The running counts of these keys of the kind (those counted)."""

    async def append_audit(self, entries: Sequence[AuditEntry]) -> None:
        """Append entries to the audit log in one transaction, numbered and hash-chained
        after its head (which moves to the last of them); appends of all processes
        take turns."""

    async def audit_rows(self, after_seq: int, limit: int) -> list[AuditRow]:
        """Audit log rows numbered after ``after_seq``, in number order."""

    async def audit_head(self) -> tuple[int, str]:
        """(seq, hash) of the last audit log entry appended; (0, 64 zeros) before any."""

    async def audit_for_subject(self, subject: str, limit: int) -> list[AuditRow]:
        """Audit log rows whose ``subjects`` hold the entity id ``subject``, newest
        first."""

    async def identity(self) -> str:
        """A name of this database that no other has (for ids it hands to others, such
        as the event bus's message ids)."""

    async def cache_versions(self) -> dict[str, int]:
        """A number per kind of record processes cache ("subscriptions", "contexts"),
        moved by every save and delete of one."""

    async def close(self) -> None: ...
