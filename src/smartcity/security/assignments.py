"""Care assignments: which residents a member of staff is assigned to now, read from the
assignment entities the policy names (by default ``CareAssignment``, with ``refStaff``,
``refClient``, ``startDate`` and ``endDate``).

Each tenant's assignments are read once and kept: deciding a read costs a look-up.
This process's changes of assignment entities reload them at once; those of other
workers are seen within ``RELOAD_AFTER`` seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from smartcity.core.events import EntityChange
from smartcity.core.ngsild.model import Entity, value_of
from smartcity.core.ngsild.storage import EntityStore, Selection
from smartcity.security.policy import Assignments
from smartcity.security.principal import Principal

MAX_ASSIGNMENTS = 1_000_000
RELOAD_AFTER = 5.0


@dataclass(frozen=True)
class Assignment:
    staff: frozenset[str]
    clients: tuple[str, ...]
    start: datetime | None
    end: datetime | None

    def current(self, now: datetime) -> bool:
        return (self.start is None or self.start <= now) and (self.end is None
                                                              or self.end > now)


def _moment(text: str) -> datetime | None:
    """An ISO 8601 date-time (UTC if it names no offset); None if it is not one."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class AssignmentLookup:
    def __init__(self, store: EntityStore, spec: Assignments, expand: Callable[[str], str],
                 now: Callable[[], datetime],
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.type = expand(spec.type)
        self.staff, self.client = expand(spec.staff), expand(spec.client)
        self.start, self.end = expand(spec.start), expand(spec.end)
        self.now = now
        self.monotonic = monotonic
        self._loaded: dict[str, tuple[float, list[Assignment]]] = {}

    async def __call__(self, principal: Principal, tenant: str) -> frozenset[str]:
        """The residents ``principal`` is assigned to at this moment."""
        me = {principal.subject} | ({principal.person} if principal.person else set())
        now = self.now()
        return frozenset(client for assignment in await self._assignments(tenant)
                         if assignment.current(now) and not assignment.staff.isdisjoint(me)
                         for client in assignment.clients)

    async def _assignments(self, tenant: str) -> list[Assignment]:
        loaded = self._loaded.get(tenant)
        if loaded is not None and self.monotonic() - loaded[0] < RELOAD_AFTER:
            return loaded[1]
        page = await self.store.query(tenant, Selection(types=(frozenset({self.type}),)),
                                      None, 0, MAX_ASSIGNMENTS, False)
        # Only entities of that one type count: a type added to another entity must not
        # make its writer "assigned" (writes are decided on every type an entity has).
        assignments = [a for e in page.entities if e["type"] == [self.type]
                       if (a := self._assignment(e)) is not None]
        self._loaded[tenant] = (self.monotonic(), assignments)
        return assignments

    def _assignment(self, entity: Entity) -> Assignment | None:
        """The assignment an entity states; None when its dates cannot be read (an
        assignment that cannot be judged current is not)."""
        starts = [_moment(v) for v in self._values(entity, self.start)]
        ends = [_moment(v) for v in self._values(entity, self.end)]
        if None in starts or None in ends:
            return None
        return Assignment(frozenset(self._values(entity, self.staff)),
                          tuple(self._values(entity, self.client)),
                          min(starts) if starts else None,  # type: ignore[type-var]
                          max(ends) if ends else None)  # type: ignore[type-var]

    async def changes_committed(self, changes: Sequence[EntityChange]) -> None:
        """Event-bus handler: a change of an assignment reloads its tenant's."""
        for change in changes:
            if any(self.type in (e or {}).get("type", ())
                   for e in (change.entity, change.previous)):
                self._loaded.pop(change.tenant, None)

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
