"""Specification of linked entity retrieval (ETSI GS CIM 009 V1.9.1, clause 4.5.23)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from smartcity.core.ngsild.linked import resolve, targets
from smartcity.core.ngsild.model import Entity

R = "https://uri.etsi.org/ngsi-ld/default-context/"


def node(entity_id: str, **relationships: Any) -> Entity:
    """An entity whose relationships point at the given id(s)."""
    attrs: dict[str, Any] = {R + "name": [{"type": "Property", "value": entity_id}]}
    for name, target in relationships.items():
        attrs[R + name] = [{"type": "Relationship", "object": target}]
    return {"id": entity_id, "type": [R + "T"], "attrs": attrs}


class Store:
    """A fetch function over a dict, remembering what each call asked for."""

    def __init__(self, *entities: Entity) -> None:
        self.entities = {e["id"]: e for e in entities}
        self.calls: list[list[str]] = []

    async def __call__(self, ids: Sequence[str]) -> dict[str, Entity]:
        self.calls.append(list(ids))
        return {i: self.entities[i] for i in ids if i in self.entities}


def test_targets_lists_every_relationship_object() -> None:
    entity = node("a", owner="b", members=["c", "d"])
    entity["attrs"][R + "owner"].append({"type": "Relationship", "object": "e",
                                         "datasetId": "urn:d"})
    assert sorted(targets(entity)) == [(R + "members", "c"), (R + "members", "d"),
                                       (R + "owner", "b"), (R + "owner", "e")]


def test_targets_ignores_properties() -> None:
    assert list(targets(node("a"))) == []


async def test_one_level_reaches_the_direct_targets_in_one_fetch() -> None:
    store = Store(node("b", next="c"), node("c"))
    found = await resolve([node("a", owner="b")], store, 1)
    assert set(found) == {"b"}
    assert found["b"] == (store.entities["b"], (R + "owner",))
    assert store.calls == [["b"]]


async def test_more_levels_follow_the_chain_one_fetch_per_level() -> None:
    store = Store(node("b", next="c"), node("c", next="d"), node("d"))
    found = await resolve([node("a", owner="b")], store, 3)
    assert {i: path for i, (_, path) in found.items()} == {
        "b": (R + "owner",), "c": (R + "owner", R + "next"),
        "d": (R + "owner", R + "next", R + "next")}
    assert store.calls == [["b"], ["c"], ["d"]]


async def test_cycles_and_links_back_to_the_roots_are_fetched_once() -> None:
    store = Store(node("b", back="a", next="c"), node("c", next="b"))
    found = await resolve([node("a", owner="b")], store, 5)
    assert set(found) == {"b", "c"}
    assert store.calls == [["b"], ["c"]]


async def test_dangling_links_are_skipped() -> None:
    store = Store(node("b"))
    found = await resolve([node("a", owner="b", site="missing")], store, 2)
    assert set(found) == {"b"}


async def test_an_entity_reached_twice_keeps_the_first_path() -> None:
    store = Store(node("b", next="c"), node("c"))
    found = await resolve([node("a", owner="b", site="c")], store, 2)
    assert found["c"][1] == (R + "site",)


async def test_several_roots_share_their_fetches() -> None:
    store = Store(node("c"))
    found = await resolve([node("a", owner="c"), node("b", owner="c")], store, 1)
    assert set(found) == {"c"}
    assert store.calls == [["c"]]


async def test_zero_levels_fetch_nothing() -> None:
    store = Store(node("b"))
    assert await resolve([node("a", owner="b")], store, 0) == {}
    assert store.calls == []
