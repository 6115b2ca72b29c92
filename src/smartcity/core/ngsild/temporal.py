"""The temporal service: the history of entities, written and read (clause 5.6.11-5.6.20,
5.7.3, 5.7.4).

Entities are selected by what they are (id, type, scope) and by their instances inside
the time window (q and geo-queries hold when some in-window instance satisfies them);
a selected entity shows all its in-window instances. A response carries at most
``page_size`` instances per entity: the rest is cut by time, and the answer says which
time range it covers (``Cut``), as the spec's Content-Range pagination asks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from smartcity.core.clock import Clock, SystemClock
from smartcity.core.ngsild.access import AccessControl, OpenAccess
from smartcity.core.ngsild.entities import EntityService
from smartcity.core.ngsild.errors import AccessDenied, BadRequestData, ResourceNotFound
from smartcity.core.ngsild.history import History, from_temporal, head
from smartcity.core.ngsild.history_storage import (
    Bucket,
    Grid,
    HeadSelection,
    HistoryHead,
    HistoryStore,
    SeriesFilter,
    StoredInstance,
    Window,
)
from smartcity.core.ngsild.instants import EPOCH, MICRO
from smartcity.core.ngsild.model import Entity, Instance
from smartcity.core.ngsild.normalize import is_uri
from smartcity.core.ngsild.query import EntityQuery
from smartcity.core.ngsild.scope_query import ScopeMatcher
from smartcity.core.ngsild.temporal_query import TemporalQuery

INSTANCE_PREFIX = "urn:ngsi-ld:Instance:"
Order = Literal["stored", "id", "id;desc"]


@dataclass
class TemporalEntity:
    """One entity's answer: its instances (or aggregated periods) in the window, and the
    attributes that pagination emptied."""

    head: HistoryHead
    instances: list[StoredInstance] = field(default_factory=list)
    buckets: list[Bucket] = field(default_factory=list)
    emptied: list[tuple[str, str, str]] = field(default_factory=list)  # attr, dataset, kind
    nominal_end: int | None = None  # end of a whole-range (zero) aggregation period


@dataclass(frozen=True)
class Cut:
    """The time range a truncated answer covers, as Content-Range states it."""

    start: int
    end: int
    size: int | None  # lastN, or None for '*'


@dataclass
class TemporalPage:
    entities: list[TemporalEntity]
    total: int | None = None
    more: bool = False
    cut: Cut | None = None


def instance_id(number: int) -> str:
    return f"{INSTANCE_PREFIX}{number}"


def now_micros(clock: Clock) -> int:
    return int((clock.now() - EPOCH) // MICRO)


class TemporalService:
    def __init__(self, store: HistoryStore, clock: Clock | None = None,
                 page_size: int = 10_000, entities: EntityService | None = None) -> None:
        self.store = store
        self.clock = clock or SystemClock()
        self.page_size = page_size
        # With the entity service, history given by clients also brings the current
        # state up to date (see EntityService.absorb_history).
        self.entities = entities
        self.access: AccessControl = OpenAccess()

    # -- provision -------------------------------------------------------------
    async def upsert(self, tenant: str, entity: Entity) -> bool:
        """Add a temporal representation; True when the entity had no history before.
        An instance at the same time as a stored one of its series replaces it."""
        known = await self.store.heads(tenant, HeadSelection(ids=(entity["id"],)))
        now = now_micros(self.clock)
        history = History([head(entity)], from_temporal(entity["id"], entity["attrs"], now))
        await self._record(tenant, entity, history, now)
        return not known

    async def append(self, tenant: str, entity_id: str,
                     attrs: dict[str, list[Instance]]) -> None:
        await self._head(tenant, entity_id)
        now = now_micros(self.clock)
        history = History(instances=from_temporal(entity_id, attrs, now))
        await self._record(tenant, {"id": entity_id, "attrs": attrs}, history, now)

    async def _record(self, tenant: str, entity: Entity, history: History, now: int) -> None:
        if self.entities is not None:
            await self.entities.absorb_history(tenant, entity, history)
        else:
            await self.store.record(tenant, history, now)

    async def delete(self, tenant: str, entity_id: str) -> None:
        await self._check_edit(tenant, await self._head(tenant, entity_id), None)
        if not await self.store.delete_entity_history(tenant, entity_id):
            raise ResourceNotFound(f"Entity {entity_id} has no temporal representation")

    async def delete_attribute(self, tenant: str, entity_id: str, attr: str,
                               dataset_id: str | None, delete_all: bool) -> None:
        await self._check_edit(tenant, await self._head(tenant, entity_id), attr)
        dataset = None if delete_all else (dataset_id or "")
        if not await self.store.delete_series(tenant, entity_id, attr, dataset):
            raise ResourceNotFound(f"Entity {entity_id} has no such attribute history")

    async def modify_instance(self, tenant: str, entity_id: str, attr: str, instance: str,
                              body: Instance) -> None:
        await self._check_edit(tenant, await self._head(tenant, entity_id), attr)
        number = _stored_instance(instance)
        now = now_micros(self.clock)
        replacement = from_temporal(entity_id, {attr: [body]}, now)[0]
        if not await self.store.replace_instance(tenant, entity_id, attr, number,
                                                 replacement, now):
            raise ResourceNotFound(f"Attribute instance {instance} does not exist")

    async def delete_instance(self, tenant: str, entity_id: str, attr: str,
                              instance: str) -> None:
        await self._check_edit(tenant, await self._head(tenant, entity_id), attr)
        if not await self.store.delete_instance(tenant, entity_id, attr,
                                                _stored_instance(instance)):
            raise ResourceNotFound(f"Attribute instance {instance} does not exist")

    async def _check_edit(self, tenant: str, entity_head: HistoryHead, attr: str | None
                          ) -> None:
        """A change of an entity's history is a write of the entity (of ``attr``, or of
        the whole entity when None) as far as access control goes."""
        current = await self._current(tenant, [entity_head])
        entity = current[entity_head.entity_id]
        if attr is None:
            await self.access.check_write(tenant, None, entity)
            return
        edited = {**entity, "attrs": {**entity["attrs"], attr: []}}
        await self.access.check_write(tenant, edited, {
            **entity, "attrs": {**entity["attrs"], attr: [{"edited": True}]}})

    async def _current(self, tenant: str, heads: Sequence[HistoryHead],
                       shown: frozenset[str] = frozenset()) -> dict[str, Entity]:
        """What access control judges the history of ``heads`` by: each entity as it
        stands (or, once deleted, its id alone), with every type its history had, and
        every value ever held by the attributes that name the resident it is about
        (its history may hold a former resident's data); ``shown`` are attributes
        whose history is being answered."""
        stored = await self.entities.store.get_many(tenant, [h.entity_id for h in heads]) \
            if self.entities is not None else {}
        found: dict[str, Entity] = {}
        for h in heads:
            entity = stored.get(h.entity_id) or {"id": h.entity_id, "type": [], "attrs": {}}
            types = list(dict.fromkeys([*entity["type"], *h.types]))
            found[h.entity_id] = {**entity, "type": types, "attrs": dict(entity["attrs"])}
        await self._add_past_subjects(tenant, found, shown)
        return found

    async def _add_past_subjects(self, tenant: str, entities: dict[str, Entity],
                                 shown: frozenset[str]) -> None:
        attrs = frozenset().union(*(self.access.subject_attributes(
            e["type"], e["attrs"].keys() | shown) for e in entities.values()))
        if not attrs:
            return
        past = await self.store.instances(tenant, list(entities), SeriesFilter(attrs=attrs),
                                          Window(timeproperty="createdAt"))
        for entity_id, instances in past.items():
            held = entities[entity_id]["attrs"]
            for stored in instances:
                held[stored.attr] = [*held.get(stored.attr, ()), stored.body]

    async def _reveal(self, tenant: str, page: TemporalPage) -> TemporalPage:
        """The page as the caller may see it: hidden attributes' instances left out."""
        if isinstance(self.access, OpenAccess):
            return page
        shown = frozenset(i.attr for e in page.entities for i in e.instances)
        current = await self._current(tenant, [e.head for e in page.entities], shown)
        sight = await self.access.visible_attributes(tenant, list(current.values()))
        visible = []
        for entity in page.entities:
            shows = sight.get(entity.head.entity_id)
            if shows is None:
                continue
            entity.instances = [i for i in entity.instances if shows(i.attr)]
            entity.buckets = [b for b in entity.buckets if shows(b.attr)]
            entity.emptied = [e for e in entity.emptied if shows(e[0])]
            visible.append(entity)
        page.entities = visible
        return page

    async def _head(self, tenant: str, entity_id: str) -> HistoryHead:
        heads = await self.store.heads(tenant, HeadSelection(ids=(entity_id,)))
        if not heads:
            raise ResourceNotFound(f"Entity {entity_id} has no temporal representation")
        return heads[0]

    # -- consumption -----------------------------------------------------------
    async def retrieve(self, tenant: str, entity_id: str, temporal: TemporalQuery,
                       series: SeriesFilter) -> tuple[TemporalEntity, Cut | None]:
        self.access.require(tenant, "read", what="entities")
        entity_head = await self._head(tenant, entity_id)
        if series.attrs is not None:
            span = await self.store.span(
                tenant, [entity_id], SeriesFilter(series.attrs),
                Window(temporal.window.timeproperty),
                folded=temporal.aggregated)
            if not span:
                raise ResourceNotFound(f"Entity {entity_id} has none of the attributes "
                                       "asked for")
        page = await self._reveal(tenant, await self._answer(tenant, [entity_head], temporal,
                                                             series))
        if not page.entities:
            raise AccessDenied(f"You may not read entity {entity_id}")
        return page.entities[0], page.cut

    async def query(self, tenant: str, query: EntityQuery, temporal: TemporalQuery,
                    series: SeriesFilter, offset: int, limit: int, count: bool,
                    order: Order = "stored") -> TemporalPage:
        query = await self.access.readable_query(tenant, query)
        heads = await self.store.heads(tenant, HeadSelection(query.selection.types,
                                                             query.selection.ids))
        ids = [h.entity_id for h in heads]
        selecting = replace(temporal.window, last=None)
        # An aggregated answer also reads the periods retention folded.
        present = await self.store.span(tenant, ids, series, selecting,
                                        folded=temporal.aggregated)
        heads = [h for h in heads if h.entity_id in present]
        if query.predicate is not None:
            loaded = await self.store.instances(tenant, [h.entity_id for h in heads],
                                                SeriesFilter(datasets=series.datasets),
                                                selecting)
            heads = [h for h in heads
                     if query.predicate(as_entity(h, loaded.get(h.entity_id, [])))]
        bounds = None
        if query.scope is not None:
            bounds = await self._scope_validity(tenant, heads, query.scope, selecting)
            heads = [h for h in heads if h.entity_id in bounds]
        if order != "stored":
            heads.sort(key=lambda h: h.entity_id, reverse=order == "id;desc")
        chosen = heads[offset:offset + limit]
        page = await self._reveal(tenant, await self._answer(tenant, chosen, temporal, series,
                                                             bounds, present))
        page.total = len(heads) if count else None
        page.more = len(heads) > offset + limit
        return page

    async def _answer(self, tenant: str, heads: Sequence[HistoryHead],
                      temporal: TemporalQuery, series: SeriesFilter,
                      bounds: dict[str, list[Validity]] | None = None,
                      spans: dict[str, tuple[int, int]] | None = None) -> TemporalPage:
        """The page of ``heads``; ``spans`` are their first and last in-window instants
        when the caller has them already."""
        if not heads:
            return TemporalPage([])
        ids = [h.entity_id for h in heads]
        if temporal.aggregated:
            return TemporalPage(await self._aggregated(tenant, heads, temporal, series,
                                                       spans))
        window = temporal.window
        if window.last is None:
            # One instance past the cap is enough to know the answer is cut.
            window = replace(window, first=self.page_size + 1)
        loaded = await self.store.instances(tenant, ids, series, window)
        if bounds is not None:
            loaded = {entity_id: _within(instances, bounds.get(entity_id, []),
                                         series.attrs is None)
                      for entity_id, instances in loaded.items()}
        entities = [TemporalEntity(h, loaded.get(h.entity_id, [])) for h in heads]
        cut = None
        for entity in entities:
            if self._truncate(entity, descending=window.last is not None):
                cut = self._cut(entities, temporal)
        return TemporalPage(entities, cut=cut)

    def _truncate(self, entity: TemporalEntity, *, descending: bool) -> bool:
        """Keep at most page_size instances, cut by time across attributes; attributes
        left empty are remembered so the answer still names them."""
        if len(entity.instances) <= self.page_size:
            return False
        times = sorted((i.time for i in entity.instances), reverse=descending)
        edge = times[self.page_size - 1]
        kept = [i for i in entity.instances
                if (i.time >= edge if descending else i.time <= edge)]
        present = {(i.attr, i.dataset_id) for i in kept}
        for inst in entity.instances:
            key = (inst.attr, inst.dataset_id)
            if key not in present:
                present.add(key)
                entity.emptied.append((*key, inst.body.get("type", "Property")))
        entity.instances = kept
        return True

    @staticmethod
    def _cut(entities: Sequence[TemporalEntity], temporal: TemporalQuery) -> Cut:
        times = [i.time for e in entities for i in e.instances]
        least, most = (min(times), max(times)) if times else (0, 0)
        last = temporal.window.last
        if last is None:
            start = temporal.time_at if temporal.timerel in ("after", "between") else least
            return Cut(start if start is not None else least, most, None)
        if temporal.timerel == "before":
            start = temporal.time_at
        elif temporal.timerel == "between":
            start = temporal.end_time_at
        else:
            start = most
        return Cut(start if start is not None else most, least, last)

    async def _scope_validity(self, tenant: str, heads: Sequence[HistoryHead],
                              matches: ScopeMatcher, window: Window
                              ) -> dict[str, list[Validity]]:
        """For each entity whose scope matched scopeQ while the window lasted, the
        stretches of time when it did (clause 4.18: a scope is valid from when it is set
        until it is replaced or removed)."""
        history = await self.store.instances(
            tenant, [h.entity_id for h in heads], SeriesFilter(frozenset({SCOPE})),
            Window(end=window.end))
        result: dict[str, list[Validity]] = {}
        for entity_head in heads:
            changes = history.get(entity_head.entity_id, [])
            following: list[StoredInstance | None] = [*changes[1:], None]
            stretches: list[Validity] = [
                (inst.time, after.time if after is not None else None, inst)
                for inst, after in zip(changes, following[:len(changes)], strict=True)]
            if not changes and entity_head.scope is not None:
                stretches = [(None, None, None)]
            valid = [(start, end, inst) for start, end, inst in stretches
                     if matches(list(entity_head.scope or ()) if inst is None
                                else _scopes(inst.body.get("value")))
                     and (window.end is None or start is None or start < window.end)
                     and (window.start is None or end is None or end > window.start)]
            if valid:
                result[entity_head.entity_id] = valid
        return result

    async def _aggregated(self, tenant: str, heads: Sequence[HistoryHead],
                          temporal: TemporalQuery, series: SeriesFilter,
                          spans: dict[str, tuple[int, int]] | None
                          ) -> list[TemporalEntity]:
        """Periods start at timeAt when the window has a start, else at the entity's first
        instance; they run to the window's end, else past its last instance."""
        window = replace(temporal.window, last=None)
        if spans is None:
            spans = await self.store.span(tenant, [h.entity_id for h in heads], series,
                                          window, folded=True)
        grids: dict[str, Grid] = {}
        nominal: dict[str, int] = {}
        for entity_id in (h.entity_id for h in heads if h.entity_id in spans):
            first, last = spans[entity_id]
            start = window.start if window.start is not None else first
            end = window.end if window.end is not None else last + 1
            grids[entity_id] = Grid(start, end, temporal.period)
            nominal[entity_id] = window.end if window.end is not None else last
        buckets = await self.store.aggregates(tenant, grids, series, window, temporal.methods)
        return [TemporalEntity(h, buckets=buckets.get(h.entity_id, []),
                               nominal_end=nominal.get(h.entity_id)) for h in heads]


def as_entity(entity_head: HistoryHead, instances: Sequence[StoredInstance]) -> Entity:
    """An entity whose attributes hold every given instance, for q and geo-queries."""
    attrs: dict[str, list[Instance]] = {}
    for inst in instances:
        attrs.setdefault(inst.attr, []).append(inst.body)
    entity: Entity = {"id": entity_head.entity_id, "type": list(entity_head.types),
                      "attrs": attrs}
    attrs.pop(SCOPE, None)  # scopeQ is judged over time apart (_scope_validity)
    return entity


def check_instance_id(text: str) -> None:
    """An instanceId given in a path must be a URI (BadRequestData)."""
    if not is_uri(text):
        raise BadRequestData(f"instanceId must be a URI: {text!r}")


def _stored_instance(text: str) -> int:
    """The stored number of an instanceId; ResourceNotFound for one never given out."""
    number = text.removeprefix(INSTANCE_PREFIX)
    if number == text or not (number.isascii() and number.isdigit()):
        raise ResourceNotFound(f"Attribute instance {text} does not exist")
    return int(number)


SCOPE = "scope"
# A stretch of time [start, end) (None: unbounded) and the scope instance that began it.
Validity = tuple[int | None, int | None, StoredInstance | None]


def _scopes(value: object) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else None


def _within(instances: list[StoredInstance], stretches: list[Validity],
            with_scope: bool) -> list[StoredInstance]:
    """The instances observed while a matching scope was valid, with those scopes."""
    kept = [i for i in instances if i.attr != SCOPE and any(
        (start is None or i.time >= start) and (end is None or i.time < end)
        for start, end, _ in stretches)]
    if with_scope:
        kept.extend(inst for _, _, inst in stretches if inst is not None)
    return kept
