"""Specification of the per-device rate limit of the ingest path."""

from __future__ import annotations

from smartcity.core.rate_limit import RateLimit


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_device_may_burst_then_is_held_to_its_rate_while_others_go_on() -> None:
    clock = Clock()
    limit = RateLimit(rate=10, burst=5, clock=clock)
    assert [limit.admit(("k", "a")) for _ in range(7)] == [True] * 5 + [False] * 2
    assert limit.admit(("k", "b"))
    clock.now = 0.25  # 2.5 measurements' worth of time
    assert [limit.admit(("k", "a")) for _ in range(3)] == [True, True, False]
