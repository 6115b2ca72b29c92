"""Specification of background work done every few seconds (``Periodic``): it runs
again after a failure, and once more at stop."""

from __future__ import annotations

import asyncio

from smartcity.core.periodic import Periodic


async def test_work_runs_again_after_a_failure_and_once_more_at_stop() -> None:
    runs: list[int] = []

    async def work() -> None:
        runs.append(len(runs))
        if len(runs) == 1:
            raise ConnectionError("the store is away")
    periodic = Periodic(work, 0.01, "the work failed")
    periodic.start()
    while len(runs) < 3:
        await asyncio.sleep(0.01)
    await periodic.stop()
    done = len(runs)
    await asyncio.sleep(0.05)
    assert len(runs) == done >= 4  # the last run is stop's own; none after it
