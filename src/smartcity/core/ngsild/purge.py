"""Purge Entities (ETSI GS CIM 009 V1.9.1, clause 5.6.21).

One request selects entities the way a query does (type, id, idPattern, attrs, q,
scopeQ, geo-query, local) and then either deletes them or, with ``keep`` / ``drop``,
removes attributes from each of them while the entities stay.

A purge must not be wider than asked: it needs at least a type selector, an attribute
list naming a non-system attribute, a q over a non-system attribute, a geo-query or
the local scope. Entity ids and id patterns narrow a purge but never qualify one.
Linked Entity paths (``owner{name}``) are refused in the filter and in projections.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from smartcity.core.ngsild.context import TermMap
from smartcity.core.ngsild.entities import BatchResult, EntityService
from smartcity.core.ngsild.errors import BadRequestData
from smartcity.core.ngsild.model import DELETE, SYSTEM_MEMBERS, Entity
from smartcity.core.ngsild.normalize import check_attribute_name
from smartcity.core.ngsild.query import EntityQuery, build_query, split_list
from smartcity.core.ngsild.query_language import parse_q

PAGE = 1000
CHUNK = 500
# Parameters that only shape the purge; build_query never sees them.
_OWN = ("keep", "drop", "local")


@dataclass(frozen=True)
class Purge:
    """What to purge: the entities ``query`` selects, whole or only some attributes.

    With neither ``keep`` nor ``drop`` the entities are deleted. ``drop`` names the
    attributes to remove; ``keep`` the only attributes to leave (IRIs).
    """

    query: EntityQuery
    keep: frozenset[str] | None = None
    drop: frozenset[str] | None = None

    def prune(self, entity: Entity) -> list[str]:
        """The attributes of ``entity`` this purge removes (when it keeps the entity)."""
        if self.drop is not None:
            return [iri for iri in entity["attrs"] if iri in self.drop]
        assert self.keep is not None
        return [iri for iri in entity["attrs"] if iri not in self.keep]


def plan_purge(params: Mapping[str, Any], terms: TermMap) -> Purge:
    """Check the purge parameters and turn them into a ``Purge`` (BadRequestData if not)."""
    local = params.get("local")
    if local not in (None, "true", "false"):
        raise BadRequestData("local must be true or false")
    if params.get("keep") is not None and params.get("drop") is not None:
        raise BadRequestData("keep and drop cannot be used together")
    keep = _attribute_set(params.get("keep"), "keep", terms)
    drop = _attribute_set(params.get("drop"), "drop", terms)
    attrs = split_list(params.get("attrs")) if params.get("attrs") else []
    _refuse_linked(attrs, "attrs")
    q_names: set[str] = set()
    if params.get("q"):
        q_names = parse_q(params["q"]).attribute_names()
        _refuse_linked(q_names, "q")
    query = build_query({k: v for k, v in params.items() if k not in _OWN}, terms)
    system = SYSTEM_MEMBERS | {terms.expand(name) for name in SYSTEM_MEMBERS}
    qualifies = (params.get("type") not in (None, "")
                 or any(terms.expand(name) not in system for name in attrs)
                 or any(terms.expand(name) not in system for name in q_names)
                 or params.get("georel") is not None
                 or local == "true")
    if not qualifies:
        raise BadRequestData("Purge Entities needs a type, a non-system attribute in attrs "
                             "or q, a geo-query or local=true; entity ids alone are too "
                             "wide a query")
    return Purge(query, keep, drop)


def _attribute_set(text: str | None, what: str, terms: TermMap) -> frozenset[str] | None:
    if text is None:
        return None
    names = split_list(text)
    _refuse_linked(names, what)
    return frozenset(terms.expand(check_attribute_name(name, terms)) for name in names)


def _refuse_linked(names: Any, what: str) -> None:
    for name in names:
        if "{" in name or "}" in name:
            raise BadRequestData(f"Linked Entity paths are not allowed in a purge ({what}: "
                                 f"{name!r})")


async def purge_entities(service: EntityService, tenant: str, purge: Purge) -> int:
    """Apply ``purge``; return how many entities were deleted or changed.

    The matching entities are all read before anything changes, so paging is not
    disturbed by the writes. Entities that vanish meanwhile are skipped.
    """
    matches = await _matching(service, tenant, purge.query)
    results: list[BatchResult] = []
    if purge.keep is None and purge.drop is None:
        ids = [entity["id"] for entity in matches]
        for start in range(0, len(ids), CHUNK):
            results.append(await service.batch_delete(tenant, ids[start:start + CHUNK],
                                                      BatchResult()))
        return _done(results)
    patches: list[Entity] = []
    for entity in matches:
        removed = purge.prune(entity)
        if removed:
            patches.append({"id": entity["id"], "attrs": {
                iri: [_deletion(inst) for inst in entity["attrs"][iri]] for iri in removed}})
    for start in range(0, len(patches), CHUNK):
        results.append(await service.batch_merge(tenant, patches[start:start + CHUNK],
                                                 BatchResult()))
    return _done(results)


def _done(results: list[BatchResult]) -> int:
    """How many entities were purged; the refusal, if access control kept any from it
    (entities that vanished meanwhile are no refusal)."""
    refused = [(entity_id, error) for result in results for entity_id, error in result.errors
               if error.status in (401, 403)]
    if refused:
        done = sum(len(result.success) for result in results)
        entity_id, error = refused[0]
        raise type(error)(f"{len(refused)} entities were not purged ({entity_id}: "
                          f"{error.detail}); {done} were")
    return sum(len(result.success) for result in results)


def _deletion(instance: dict[str, Any]) -> dict[str, Any]:
    """A merge fragment instance removing ``instance`` (its datasetId, if any)."""
    marker: dict[str, Any] = {DELETE: True}
    if instance.get("datasetId") is not None:
        marker["datasetId"] = instance["datasetId"]
    return marker


async def _matching(service: EntityService, tenant: str, query: EntityQuery) -> list[Entity]:
    found: list[Entity] = []
    offset = 0
    while True:
        page = await service.query(tenant, query, offset, PAGE, False)
        found.extend(page.entities)
        if len(page.entities) < PAGE:
            return found
        offset += PAGE
