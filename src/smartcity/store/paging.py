"""A page of the entities a predicate keeps, taken from candidates in store order."""

from __future__ import annotations

from smartcity.core.ngsild.model import Entity
from smartcity.core.ngsild.storage import Page, Predicate


class PredicatePager:
    """Feed it candidates (``offer``) until it says it has enough; then ``page``."""

    def __init__(self, predicate: Predicate, offset: int, limit: int, count: bool) -> None:
        self.predicate = predicate
        self.offset, self.limit, self.count = offset, limit, count
        self.kept: list[Entity] = []
        self.seen = 0

    def offer(self, entity: Entity) -> bool:
        """Take a candidate; False once no later one can change the page (or the count,
        when it is asked for)."""
        if not self.predicate(entity):
            return True
        if self.offset <= self.seen < self.offset + self.limit:
            self.kept.append(entity)
        self.seen += 1
        return self.count or self.seen <= self.offset + self.limit

    def page(self) -> Page:
        return Page(self.kept, self.seen if self.count else None,
                    self.seen > self.offset + self.limit)
