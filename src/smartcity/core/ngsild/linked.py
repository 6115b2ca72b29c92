"""Linked entity retrieval (clause 4.5.23): follow relationships to the entities they name."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from typing import Any

from smartcity.core.ngsild.context import TermMap
from smartcity.core.ngsild.model import RELATIONSHIP, Entity
from smartcity.core.ngsild.render import View, render_entity

Fetch = Callable[[Sequence[str]], Awaitable[dict[str, Entity]]]
Path = tuple[str, ...]


def targets(entity: Entity) -> Iterator[tuple[str, str]]:
    """(relationship IRI, target id) for each relationship of an entity."""
    for iri, instances in entity["attrs"].items():
        for inst in instances:
            if inst.get("type") == RELATIONSHIP:
                objects = inst.get("object")
                for target in objects if isinstance(objects, list) else [objects]:
                    yield iri, target


async def resolve(roots: Iterable[Entity], fetch: Fetch, levels: int
                  ) -> dict[str, tuple[Entity, Path]]:
    """Every entity reachable from the roots in at most ``levels`` hops, by id, with the
    relationship path that first reached it (breadth first); dangling links are skipped."""
    found: dict[str, tuple[Entity, Path]] = {}
    frontier: list[tuple[Entity, Path]] = [(e, ()) for e in roots]
    seen = {e["id"] for e, _ in frontier}
    for _ in range(levels):
        wanted: dict[str, Path] = {}
        for entity, path in frontier:
            for iri, target in targets(entity):
                if target not in seen and target not in wanted:
                    wanted[target] = (*path, iri)
        if not wanted:
            break
        seen.update(wanted)
        fetched = await fetch(list(wanted))
        frontier = [(fetched[t], p) for t, p in wanted.items() if t in fetched]
        for entity, path in frontier:
            found[entity["id"]] = (entity, path)
    return found


def _kept_along(view: View, path: tuple[str, ...]) -> bool:
    """Whether every relationship on the path survives the projections on the way."""
    for iri in path:
        if not view.keeps(iri):
            return False
        view = view.linked(iri)
    return True


async def render_linked(entities: list[Entity], terms: TermMap, view: View,
                        fetch: Fetch) -> list[dict[str, Any]]:
    """Render entities, following relationships as far as the view's join asks."""
    if not view.follows():
        rendered = [render_entity(e, terms, view) for e in entities]
        # A projection can leave nothing of an entity: such entities are not listed.
        return [r for r in rendered if r] if view.pick is not None else rendered
    reached = await resolve(entities, fetch, view.join_level)
    if view.join == "inline":
        linked = {i: e for i, (e, _) in reached.items()}
        return [render_entity(e, terms, view, linked) for e in entities]
    flat = [render_entity(e, terms, view) for e in entities]
    for entity, path in reached.values():
        if not _kept_along(view, path):
            continue
        linked_view = view
        for iri in path:
            linked_view = linked_view.linked(iri)
        flat.append(render_entity(entity, terms, replace(linked_view, join=None)))
    return flat
