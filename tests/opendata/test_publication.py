"""Publication policies: what of live data may leave, and how coarse. A property-based
test proves that no policy, however configured, lets a personal attribute or a group
smaller than its minimum out."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smartcity.core.ngsild.context import ContextCompiler, ContextDocuments
from smartcity.core.ngsild.errors import BadRequestData, Conflict
from smartcity.core.ngsild.history_storage import HistoryHead, RawSeries
from smartcity.core.ngsild.instants import parse_instant
from smartcity.core.ngsild.storage import Page
from smartcity.opendata.catalogue import check_not_personal
from smartcity.opendata.exporters import published_rows
from smartcity.opendata.model import Dataset, DatasetSpec
from smartcity.opendata.publication import resolve, snap
from smartcity.security.policy import Policy, read_policy

CORE = ContextCompiler(ContextDocuments()).core
REGISTER = Policy(read_policy(None)).register
NGSI = "https://uri.etsi.org/ngsi-ld/"
NOW = parse_instant("2026-11-25T12:30:00Z")
DEFAULT = NGSI + "default-context/"


def spec(types: tuple[str, ...] = ("Streetlight",), **policy: Any) -> dict[str, Any]:
    return {"id": "lamps", "title": {"sv": "Gatubelysning", "en": "Street lights"},
            "description": {"sv": "Lampor", "en": "Lamps"}, "themes": ["ENER"],
            "contact": {"name": "Open data", "email": "data@example.org"},
            "query": {"types": types},
            "policy": {"attributes": ["powerState"], **policy}}


def dataset(types: tuple[str, ...] = ("Streetlight",), **policy: Any) -> Dataset:
    return Dataset(**spec(types, **policy), issued="2026-01-01T00:00:00Z",
                   modified="2026-01-01T00:00:00Z")


def test_snapping_puts_nearby_points_in_one_cell_and_far_ones_apart() -> None:
    a = snap(18.06861, 59.32931, 500)["coordinates"]
    b = snap(18.06870, 59.32940, 500)["coordinates"]
    c = snap(18.10000, 59.32931, 500)["coordinates"]
    assert a == b != c
    # The cell's centre is within a cell's diagonal of the point.
    assert math.dist((a[0] * 56_900, a[1] * 111_320), (18.06861 * 56_900, 59.32931 * 111_320)) \
        < 500


@pytest.mark.parametrize(("types", "attributes", "problem"), [
    (("Lock",), ["lockState"], "lockState of Lock is personal"),
    (("Lock",), ["address", "name"], "address of Lock is personal"),
    (("LockCode",), ["name"], "personal data through and through"),
])
def test_a_dataset_that_would_publish_personal_data_is_refused(
        types: tuple[str, ...], attributes: list[str], problem: str) -> None:
    with pytest.raises(BadRequestData, match=problem):
        check_not_personal(DatasetSpec(**{**spec(types), "policy": {"attributes": attributes}}),
                           REGISTER)


@pytest.mark.parametrize(("q", "problem"), [
    ('lockState=="unlocked"', "q reads lockState"),
    ('owner=="urn:ngsi-ld:Person:anna"', "q reads owner"),
    ("refDoor{lockState}==1", "cannot read linked entities"),
    ("name==", "q is not valid"),
])
def test_a_dataset_may_not_select_its_entities_by_personal_data(q: str, problem: str) -> None:
    for types in (["Lock"], ["Streetlight"]):  # a street light may be a Lock as well
        chosen = {**spec(("Lock",)), "query": {"types": types, "q": q},
                  "policy": {"attributes": ["name"]}}
        with pytest.raises(BadRequestData, match=problem):
            check_not_personal(DatasetSpec(**chosen), REGISTER)


def test_a_minimum_group_needs_aggregation() -> None:
    with pytest.raises(ValueError, match="min_group needs aggregate"):
        DatasetSpec(**spec(min_group=5))


class FakeEntities:
    """What a publication reads: the types and attributes held, the entities, and their
    history (each value as it stands, observed in the period being published)."""

    def __init__(self, entities: list[dict[str, Any]]) -> None:
        self.entities = entities
        self.store = self
        self.history = self
        held: dict[str, dict[str, set[str]]] = {}
        for entity in entities:
            for type_iri in entity["type"]:
                for attr, instances in entity["attrs"].items():
                    held.setdefault(type_iri, {}).setdefault(attr, set()).update(
                        i["type"] for i in instances)
        self.held = held

    async def type_attributes(self, tenant: str) -> dict[str, dict[str, set[str]]]:
        return self.held

    async def query(self, tenant: str, query: Any, offset: int, limit: int,
                    count: bool) -> Page:
        return Page(self.entities[offset:offset + limit], None,
                    len(self.entities) > offset + limit)

    async def values(self, tenant: str, ids: list[str], series: Any, start: int | None,
                     end: int | None) -> AsyncIterator[RawSeries]:
        by_id = {e["id"]: e for e in self.entities}
        for i in ids:
            for attr, instances in by_id[i]["attrs"].items():
                if series.attrs is None or attr in series.attrs:
                    yield i, attr, [(start, None, orjson.dumps(instance))
                                    for instance in instances]

    async def span(self, tenant: str, ids: list[str], series: Any, window: Any
                   ) -> dict[str, tuple[int, int]]:
        return {i: (window.start, window.start) for i in ids}

    async def heads(self, tenant: str, selection: Any) -> list[HistoryHead]:
        return [HistoryHead(e["id"], tuple(e["type"]), None, 0) for e in self.entities
                if e["id"] in (selection.ids or ())]


ATTRIBUTES = ["powerState", "illuminanceLevel", "location", "address", "lockState", "owner",
              "name"]


def _entity(number: int, kind: str, lon: float, lat: float, level: float) -> dict[str, Any]:
    """A street light, a resident's door lock (whose place, address, state and owner
    the register declares personal), or an entity that is both."""
    attrs = {
        NGSI + "location": [{"type": "GeoProperty",
                             "value": {"type": "Point", "coordinates": [lon, lat]}}],
        DEFAULT + "illuminanceLevel": [{"type": "Property", "value": level,
                                        "observedAt": "2026-11-25T10:17:31Z"}],
        DEFAULT + "name": [{"type": "Property", "value": f"{kind} {number}"}]}
    if kind in ("Lock", "Both"):
        attrs.update({
            DEFAULT + "address": [{"type": "Property", "value": {"street": f"Gata {number}"}}],
            DEFAULT + "lockState": [{"type": "Property", "value": "locked"}],
            DEFAULT + "owner": [{"type": "Property",
                                 "value": [f"urn:ngsi-ld:Person:{number}"]}]})
    types = [DEFAULT + "Streetlight", DEFAULT + "Lock"] if kind == "Both" else [DEFAULT + kind]
    return {"id": f"urn:ngsi-ld:{kind}:{number}", "type": types, "attrs": attrs}


entities_strategy = st.lists(st.tuples(
    st.sampled_from(["Lock", "Streetlight", "Both"]),
    st.floats(18.0, 18.02), st.floats(59.3, 59.31), st.floats(0, 100)), max_size=25)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=entities_strategy, types=st.sampled_from([("Streetlight",), ("Lock", "Streetlight")]),
       attributes=st.lists(st.sampled_from(ATTRIBUTES), min_size=1, unique=True),
       grid=st.one_of(st.none(), st.sampled_from([50.0, 500.0, 5000.0])),
       resolution=st.sampled_from(["PT1H", "P1D"]),
       aggregate=st.booleans(), min_group=st.integers(1, 6))
def test_no_policy_lets_personal_data_or_small_groups_out(
        raw: list[tuple[str, float, float, float]], types: tuple[str, ...],
        attributes: list[str],
        grid: float | None, resolution: str, aggregate: bool, min_group: int) -> None:
    entities = [_entity(n, *item) for n, item in enumerate(raw)]
    published = dataset(types, attributes=attributes, location_grid=grid,
                        time_resolution=resolution, aggregate=aggregate,
                        min_group=min_group if aggregate else 1)
    service = FakeEntities(entities)

    async def publish() -> list[dict[str, Any]]:
        try:
            publication = await resolve(published, service, REGISTER, CORE)  # type: ignore[arg-type]
        except Conflict:
            return []  # refused whole: nothing leaves
        rows = published_rows(publication, service, NOW)  # type: ignore[arg-type]
        return [r async for r in rows]
    rows = asyncio.run(publish())
    personal_names = {"address", "lockState", "owner"}
    for row in rows:
        text = str(row)
        assert not personal_names & row.keys()
        assert "Gata" not in text and "urn:ngsi-ld:Person:" not in text
        if aggregate:
            assert row["count"] >= min_group
            assert row["attribute"] not in personal_names
        if "Lock" in str(row.get("type")) or "Both" in str(row.get("id")):
            assert "location" not in row
        if aggregate and "location" in row:  # a group's place is a street light's
            assert row["location"]["type"] == "Point"
