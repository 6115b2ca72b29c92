"""Download counts outlive the worker that counted them."""

from __future__ import annotations

import asyncio

from smartcity.opendata.usage import USAGE, Usage
from smartcity.store.backend import open_store


async def test_counts_are_added_to_the_stored_totals(db: str) -> None:
    store = await open_store(db)
    try:
        one, two = Usage(store), Usage(store)
        one.count("lamps", "data.csv")
        one.count("lamps", "data.csv")
        two.count("lamps", "data.geojson")
        two.count("lamps", "data.csv")
        await one.flush()
        await two.flush()
        later = Usage(store)
        await later.load()
        assert later.of("lamps") == {"data.csv": 3, "data.geojson": 1}
        assert later.of("elsewhere") == {}
    finally:
        await store.close()


async def test_a_stopping_worker_waits_for_its_turn_to_store_its_counts(db: str) -> None:
    mine, other = await open_store(db), await open_store(db)
    try:
        usage = Usage(mine)
        usage.start()
        usage.count("lamps", "data.csv")

        async def other_workers_turn() -> None:
            async with other.exclusive(USAGE) as held:
                assert held
                await asyncio.sleep(0.3)  # all workers stop at once: another flushes
        turn = asyncio.create_task(other_workers_turn())
        await asyncio.sleep(0.05)
        await usage.stop()
        await turn
        later = Usage(other)
        await later.load()
        assert later.of("lamps") == {"data.csv": 1}
    finally:
        await mine.close()
        await other.close()
