"""A dataset's publication policy applied to live data: only the allowed attributes
(never a personal one), locations snapped to a grid, times truncated to periods, and,
with aggregation, groups (per grid cell and period) of at least ``min_group`` entities.

The dataset names types and attributes as operators do (short names); a publication
resolves them to the IRIs the store holds, so the data is found whatever @context it
was written with.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import shapely
from shapely.geometry import mapping, shape

from smartcity.core.ngsild.context import TermMap
from smartcity.core.ngsild.durations import parse_duration
from smartcity.core.ngsild.entities import EntityService
from smartcity.core.ngsild.errors import BadRequestData, Conflict
from smartcity.core.ngsild.instants import format_instant, parse_instant
from smartcity.core.ngsild.model import GEO_PROPERTY, Entity, Instance
from smartcity.core.ngsild.query import build_query
from smartcity.core.ngsild.render import simple_value
from smartcity.opendata.catalogue import check_not_personal
from smartcity.opendata.model import Dataset
from smartcity.security.policy import Register, local_name, matches
from smartcity.security.principal import SYSTEM, acting_as

PAGE = 500
GROUP_COLUMNS = ("observedAt", "attribute", "place", "count", "value")
METRES_PER_DEGREE = 111_320.0
Record = dict[str, Any]


@dataclass(frozen=True)
class Publication:
    """What of a dataset's live data may be published, resolved against the store."""

    dataset: Dataset
    terms: TermMap  # the data's names: the core @context and the store's local names
    types: tuple[str, ...]  # type IRIs held that the dataset's types name
    attrs: tuple[str, ...]  # attribute IRIs published, in column order
    register: Register  # of personal data: judged again for each entity published
    period: int | None = None  # time resolution, in microseconds
    places: frozenset[str] = field(default_factory=frozenset)  # GeoProperty attributes

    @property
    def columns(self) -> list[str]:
        """The columns of its records: those of groups when it is aggregated."""
        if self.dataset.policy.aggregate:
            return list(GROUP_COLUMNS)
        return ["id", "type", "observedAt", *(self.terms.compact(a) for a in self.attrs)]

    def hidden(self, types: Sequence[str]) -> frozenset[str] | None:
        """What of an entity of ``types`` is never published: its personal attributes
        (None: all of it)."""
        return self.register.of(types).attrs

    def coarse_time(self, text: str | None) -> str | None:
        if not text or self.period is None:
            return text
        return self.moment(parse_instant(text))

    def moment(self, micros: int) -> str:
        """A stored time as published: truncated to the time resolution, if any."""
        return format_instant(micros - micros % self.period if self.period else micros)

    def coarse_place(self, geometry: Any) -> Any:
        """A geometry as published: with a grid, the centre of the cell holding its
        centroid (a point); without, as it is."""
        grid = self.dataset.policy.location_grid
        if grid is None or not isinstance(geometry, dict):
            return geometry
        try:
            centre = shape(geometry).centroid
        except (shapely.errors.ShapelyError, ValueError, TypeError, KeyError):
            return None
        return snap(centre.x, centre.y, grid)


def snap(lon: float, lat: float, grid: float) -> dict[str, Any]:
    """The centre of the ``grid``-metre cell holding (lon, lat), as a GeoJSON point.
    Cells are laid in metres north-south and, at that latitude, east-west."""
    y_step = grid / METRES_PER_DEGREE
    lat_cell = (math.floor(lat / y_step) + 0.5) * y_step
    x_step = grid / (METRES_PER_DEGREE * max(math.cos(math.radians(lat_cell)), 1e-6))
    lon_cell = (math.floor(lon / x_step) + 0.5) * x_step
    return mapping(shapely.Point(round(lon_cell, 7), round(lat_cell, 7)))


async def resolve(dataset: Dataset, service: EntityService, register: Register,
                  core: TermMap) -> Publication:
    """The publication of ``dataset`` against what the store holds now; refused when
    the register of personal data (which may have changed since the dataset was
    published) says the dataset would let personal data out."""
    try:
        check_not_personal(dataset, register)
    except BadRequestData as exc:  # not the caller's fault: the dataset's, as it stands
        raise Conflict(f"Dataset {dataset.id} cannot be published as it stands: "
                       f"{exc.detail}") from None
    held = await service.store.type_attributes(dataset.query.tenant)
    wanted = frozenset(dataset.query.types)
    types = tuple(sorted(t for t in held if matches(wanted, t)))
    allowed = frozenset(dataset.policy.attributes)
    attrs: set[str] = set()
    places: set[str] = set()
    for type_iri in types:
        personal = register.of([type_iri]).attrs
        for attr, kinds in held[type_iri].items():
            if not matches(allowed, attr):
                continue
            if personal is None or (personal and matches(personal, attr)):
                continue  # the catalogue refuses such datasets; the data may have changed
            attrs.add(attr)
            if GEO_PROPERTY in kinds:
                places.add(attr)
    local = {local_name(iri): iri for iri in (*types, *attrs)
             if local_name(iri) not in core.terms}
    terms = replace(core, terms={**local, **core.terms},
                    inverse={**{v: k for k, v in local.items()}, **core.inverse},
                    _expanded={}, _compacted={})
    period = parse_duration(dataset.policy.time_resolution).micros \
        if dataset.policy.time_resolution else None
    return Publication(dataset, terms, types, tuple(sorted(attrs, key=terms.compact)),
                       register, period, frozenset(places))


async def current(publication: Publication, service: EntityService) -> AsyncIterator[Entity]:
    """The entities the dataset's query selects now, page by page (never all at once)."""
    if not publication.types:
        return
    params = {"type": ",".join(publication.types)}
    if publication.dataset.query.q:
        params["q"] = publication.dataset.query.q
    try:
        query = build_query(params, publication.terms)
    except BadRequestData as exc:
        raise BadRequestData(f"The dataset's query is not valid: {exc.detail}") from None
    offset = 0
    while True:
        # The publication policy, not the caller's rights, decides what leaves.
        with acting_as(SYSTEM):
            page = await service.query(publication.dataset.query.tenant, query, offset,
                                       PAGE, False)
        for entity in page.entities:
            yield entity
        if not page.more:
            return
        offset += PAGE


def record(publication: Publication, entity: Entity) -> Record | None:
    """One entity as published (without aggregation): of the published attributes,
    those that are not personal for any of the entity's own types (an attribute may be
    personal in one type and not in another); None when the entity is personal data
    through and through."""
    personal = publication.hidden(entity["type"])
    if personal is None:
        return None
    out: Record = {"id": entity["id"],
                   "type": " ".join(publication.terms.compact(t) for t in entity["type"]
                                    if t in publication.types)}
    observed: list[str] = []
    for attr in publication.attrs:
        instances = entity["attrs"].get(attr)
        if not instances or (personal and matches(personal, attr)):
            continue
        out[publication.terms.compact(attr)] = _published_value(publication, instances[0])
        observed += [i["observedAt"] for i in instances if i.get("observedAt")]
    out["observedAt"] = publication.coarse_time(max(observed)) if observed else None
    return out


def _published_value(publication: Publication, instance: Instance) -> Any:
    if instance.get("type") == GEO_PROPERTY:
        return publication.coarse_place(instance.get("value"))
    return simple_value(instance, publication.terms)


async def records(publication: Publication, entities: AsyncIterator[Entity]
                  ) -> AsyncIterator[Record]:
    """The published records of the entities, one each (a dataset without
    aggregation; an aggregated one is published from its history, see exporters)."""
    async for entity in entities:
        published = record(publication, entity)
        if published is not None:
            yield published
