"""Where the core asks access control: the entity and temporal services call these for
every read and write, whichever path (NGSI-LD API, temporal API, batch, platform
services) the request came by. The policy itself lives in ``smartcity.security``; the
caller is the principal of the running request (``smartcity.security.principal``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from smartcity.core.ngsild.model import Entity
from smartcity.core.ngsild.query import EntityQuery


class AccessControl(Protocol):
    def require(self, tenant: str, action: str, types: Sequence[str] = (),
                what: str = "this") -> object:
        """AccessDenied unless the caller may ``action`` (on ``types``, or some type)
        in ``tenant``: checked before anything of the tenant is looked at."""

    async def readable_query(self, tenant: str, query: EntityQuery) -> EntityQuery:
        """The query narrowed to what the caller may read; AccessDenied when it asks
        for nothing they may read, or filters on what they may not see."""

    async def reveal(self, tenant: str, entities: list[Entity]) -> list[Entity]:
        """The entities as the caller may see them: unreadable attributes left out,
        entities of types they may not read dropped."""

    async def visible_attributes(self, tenant: str, entities: Sequence[Entity]
                                 ) -> dict[str, Callable[[str], bool] | None]:
        """For history: per entity, which attributes the caller may see (None: not the
        entity at all)."""

    def subject_attributes(self, types: Sequence[str], attrs: Iterable[str]
                           ) -> frozenset[str]:
        """Of ``attrs`` of an entity of ``types``, those that name the resident it is
        about: their history says whose past data the entity's history holds."""

    async def check_write(self, tenant: str, after: Entity | None,
                          before: Entity | None) -> None:
        """AccessDenied unless the caller may make this change (create: no ``before``,
        delete: no ``after``)."""


class OpenAccess:
    """No access control: the embedded platform run with ``--auth none``."""

    def require(self, tenant: str, action: str, types: Sequence[str] = (),
                what: str = "this") -> object:
        return None

    async def readable_query(self, tenant: str, query: EntityQuery) -> EntityQuery:
        return query

    async def reveal(self, tenant: str, entities: list[Entity]) -> list[Entity]:
        return entities

    async def visible_attributes(self, tenant: str, entities: Sequence[Entity]
                                 ) -> dict[str, Callable[[str], bool] | None]:
        return {entity["id"]: _everything for entity in entities}

    def subject_attributes(self, types: Sequence[str], attrs: Iterable[str]
                           ) -> frozenset[str]:
        return frozenset()

    async def check_write(self, tenant: str, after: Entity | None,
                          before: Entity | None) -> None:
        return None


def _everything(attr: str) -> bool:
    return True
