"""Token buckets: a flood from one device or client is cut back, the others go on."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable

# Buckets kept at most; past it, those full again (idle callers) are forgotten.
MAX_BUCKETS = 100_000


class RateLimit:
    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self._buckets: dict[Hashable, tuple[float, float]] = {}

    def admit(self, key: Hashable) -> bool:
        now = self.clock()
        tokens, since = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - since) * self.rate)
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            return False
        if len(self._buckets) >= MAX_BUCKETS and key not in self._buckets:
            self._forget_idle(now)
        self._buckets[key] = (tokens - 1, now)
        return True

    def _forget_idle(self, now: float) -> None:
        self._buckets = {k: (tokens, since) for k, (tokens, since) in self._buckets.items()
                         if tokens + (now - since) * self.rate < self.burst}
