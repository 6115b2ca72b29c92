"""Care assignments: which residents a member of staff is assigned to now, read from the
assignment entities the policy names (by default ``CareAssignment``, with ``refStaff``,
``refClient``, ``startDate`` and ``endDate``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from smartcity.core.ngsild.model import Entity, value_of
from smartcity.core.ngsild.storage import EntityStore, Selection
from smartcity.security.policy import Assignments
from smartcity.security.principal import Principal

MAX_ASSIGNMENTS = 10_000


class AssignmentLookup:
    def __init__(self, store: EntityStore, spec: Assignments, expand: Callable[[str], str],
                 now: Callable[[], datetime]) -> None:
        self.store = store
        self.type = expand(spec.type)
        self.staff, self.client = expand(spec.staff), expand(spec.client)
        self.start, self.end = expand(spec.start), expand(spec.end)
        self.now = now

    async def __call__(self, principal: Principal, tenant: str) -> frozenset[str]:
        """The residents ``principal`` is assigned to at this moment."""
        me = {principal.subject} | ({principal.person} if principal.person else set())
        now = self.now().isoformat()
        page = await self.store.query(
            tenant, Selection(types=(frozenset({self.type}),), attrs=frozenset({self.staff})),
            lambda e: bool(me & set(self._values(e, self.staff))), 0, MAX_ASSIGNMENTS, False)
        return frozenset(client for entity in page.entities if self._current(entity, now)
                         for client in self._values(entity, self.client))

    def _current(self, entity: Entity, now: str) -> bool:
        starts, ends = self._values(entity, self.start), self._values(entity, self.end)
        return (not starts or min(starts) <= now) and (not ends or max(ends) > now)

    @staticmethod
    def _values(entity: Entity, attr: str) -> list[str]:
        found = []
        for instance in entity["attrs"].get(attr, ()):
            value = instance.get("object") if "object" in instance else value_of(instance)
            if isinstance(value, dict) and "@value" in value:  # a typed DateTime value
                value = value["@value"]
            found += [v for v in (value if isinstance(value, list) else [value])
                      if isinstance(v, str)]
        return found
