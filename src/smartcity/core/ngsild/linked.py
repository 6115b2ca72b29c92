"""Linked entity retrieval (clause 4.5.23): follow relationships to the entities they name."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence

from smartcity.core.ngsild.model import RELATIONSHIP, Entity

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
