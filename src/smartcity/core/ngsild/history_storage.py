"""The storage interface of the history (temporal instances).

History is kept per series: one (tenant, entity, attribute, datasetId). A store keeps
each series ordered by time so a time window is one range scan, and computes
aggregates itself; the core never loads a series to sum it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from smartcity.core.ngsild.durations import Duration
from smartcity.core.ngsild.history import History, HistoryInstance
from smartcity.core.ngsild.model import Instance

TimeProperty = Literal["observedAt", "createdAt", "modifiedAt", "deletedAt"]
AggregateMethod = Literal["totalCount", "distinctCount", "sum", "avg", "min", "max",
                          "stddev", "sumsq"]
AGGREGATE_METHODS: tuple[AggregateMethod, ...] = (
    "totalCount", "distinctCount", "sum", "avg", "min", "max", "stddev", "sumsq")


@dataclass(frozen=True)
class Window:
    """Instances whose ``timeproperty`` lies in [start, end) (None: unbounded); with
    ``last``, only the last ones of each series; with ``first``, only the first ones."""

    timeproperty: TimeProperty = "observedAt"
    start: int | None = None
    end: int | None = None
    last: int | None = None
    first: int | None = None


@dataclass(frozen=True)
class SeriesFilter:
    """Which series of the selected entities: attribute IRIs and datasetIds ("" is the
    default instance); None keeps all."""

    attrs: frozenset[str] | None = None
    datasets: frozenset[str] | None = None


@dataclass(frozen=True)
class HistoryHead:
    """A stored entity with history: what selects it (id, types, scope)."""

    entity_id: str
    types: tuple[str, ...]
    scope: tuple[str, ...] | None
    created: int


VALUES_PER_READ = 10_000

# (time observed, number, rest of the body) of a stored instance.
RawValue = tuple[int, int | float | None, bytes | None]
# (entity id, attribute IRI, values of the series in order).
RawSeries = tuple[str, str, list[RawValue]]


@dataclass(frozen=True, slots=True)
class StoredInstance:
    attr: str
    dataset_id: str
    instance_id: int
    time: int  # of the window's time property
    created: int
    modified: int
    body: Instance


@dataclass(frozen=True)
class Grid:
    """Aggregation periods: from ``start`` in steps of ``period`` until ``end``; a zero
    period is one bucket over [start, end)."""

    start: int
    end: int
    period: Duration


@dataclass(frozen=True)
class Bucket:
    """Aggregates of one series over [start, end)."""

    attr: str
    dataset_id: str
    start: int
    end: int
    values: dict[str, Any]  # method -> value (None when nothing to aggregate)
    sid: int = 0  # the store's series number, for its own bookkeeping


@dataclass(frozen=True)
class HeadSelection:
    types: tuple[frozenset[str], ...] | None = None
    ids: tuple[str, ...] | None = None


class HistoryStore(Protocol):
    async def heads(self, tenant: str, selection: HeadSelection) -> list[HistoryHead]:
        """The entities with history that the selection keeps, oldest first."""

    async def span(self, tenant: str, entity_ids: Sequence[str], series: SeriesFilter,
                   window: Window, folded: bool = False) -> dict[str, tuple[int, int]]:
        """entity id -> (first, last) time of its instances in the window (with
        ``folded``, of an observedAt window, the starts of periods folded by retention
        count as such times too); entities with none are left out."""

    async def instances(self, tenant: str, entity_ids: Sequence[str], series: SeriesFilter,
                        window: Window) -> dict[str, list[StoredInstance]]:
        """entity id -> its instances in the window, by series then time (ascending)."""

    def values(self, tenant: str, entity_ids: Sequence[str], series: SeriesFilter,
               start: int | None, end: int | None) -> AsyncIterator[RawSeries]:
        """The selected series' instances observed in [start, end), as stored (see
        ``history_rows.decode``), series after series in time order, at most
        ``VALUES_PER_READ`` at a time (a long series comes in several parts): what a bulk
        export reads, with flat memory and without building an instance for each."""

    async def aggregates(self, tenant: str, grids: dict[str, Grid], series: SeriesFilter,
                         window: Window, methods: Sequence[AggregateMethod]
                         ) -> dict[str, list[Bucket]]:
        """entity id -> the non-empty periods of its grid, aggregated per series."""

    async def record(self, tenant: str, history: History, now: int) -> set[str]:
        """Add history in its own transaction; an instance at the same time as a stored
        one of its series replaces it. The ids of entities new to the history."""

    async def delete_entity_history(self, tenant: str, entity_id: str) -> bool: ...

    async def delete_series(self, tenant: str, entity_id: str, attr: str,
                            dataset_id: str | None) -> bool:
        """Forget one series (``dataset_id``) or all series of an attribute (None)."""

    async def delete_instance(self, tenant: str, entity_id: str, attr: str,
                              instance_id: int) -> bool: ...

    async def replace_instance(self, tenant: str, entity_id: str, attr: str,
                               instance_id: int, replacement: HistoryInstance,
                               now: int) -> bool: ...

    async def downsample(self, types: Sequence[str] | None, attr: str | None, before: int,
                         period: int | None) -> tuple[int, int]:
        """Over every tenant: fold raw instances older than ``before`` into aggregate
        periods of ``period`` microseconds (none when None), then delete them; (instances
        deleted, periods written). Aggregated queries read folded periods as well."""

    async def expire_aggregates(self, types: Sequence[str] | None, attr: str | None,
                                before: int) -> int:
        """Over every tenant: delete folded periods that start before ``before``."""
