"""Specification of background work done every few seconds (``Periodic``) and of writes
taken in turns (``in_turn``): work runs again after a failure, once more at stop (after
the run in progress has finished), and what could not be written is kept."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from smartcity.core.periodic import LAST_PATIENCE, Periodic, in_turn


async def test_work_runs_again_after_a_failure_and_once_more_at_stop() -> None:
    runs: list[float] = []

    async def work(patience: float) -> None:
        runs.append(patience)
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
    assert set(runs[:-1]) == {0} and runs[-1] == LAST_PATIENCE


async def test_stop_lets_the_run_in_progress_finish_before_the_last() -> None:
    events: list[str] = []
    started = asyncio.Event()

    async def work(patience: float) -> None:
        events.append(f"begin {patience:g}")
        started.set()
        await asyncio.sleep(0.1)  # a slow write, as to a busy database
        events.append(f"end {patience:g}")
    periodic = Periodic(work, 0.01, "the work failed")
    periodic.start()
    await started.wait()
    await periodic.stop()
    assert events == ["begin 0", "end 0", f"begin {LAST_PATIENCE:g}",
                      f"end {LAST_PATIENCE:g}"]


async def test_a_failure_at_stop_is_logged_not_raised(caplog: pytest.LogCaptureFixture
                                                      ) -> None:
    async def work(patience: float) -> None:
        raise ConnectionError("the store is away")
    periodic = Periodic(work, 60, "counts could not be saved")
    periodic.start()
    await periodic.stop()
    assert "counts could not be saved" in caplog.text


class Turns:
    """A store's exclusive rights, held by another worker for the first ``busy`` asks."""

    def __init__(self, busy: int) -> None:
        self.busy = busy

    @asynccontextmanager
    async def exclusive(self, name: str) -> AsyncIterator[bool]:
        self.busy -= 1
        yield self.busy < 0


async def test_a_write_waits_for_its_turn_as_long_as_it_is_patient() -> None:
    written: list[str] = []
    kept: list[str] = []

    async def write() -> None:
        written.append("counts")
    await in_turn(Turns(busy=3), "usage", write, lambda: kept.append("counts"),
                  patience=1.0)
    assert written == ["counts"] and kept == []
    await in_turn(Turns(busy=3), "usage", write, lambda: kept.append("counts"))
    assert written == ["counts"] and kept == ["counts"]


async def test_a_cancelled_write_keeps_what_it_was_to_write() -> None:
    kept: list[str] = []

    async def write() -> None:
        await asyncio.sleep(10)
    task = asyncio.create_task(in_turn(Turns(busy=0), "usage", write,
                                       lambda: kept.append("counts")))
    await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert kept == ["counts"]
