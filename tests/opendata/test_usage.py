"""Download counts outlive the worker that counted them."""

from __future__ import annotations

from smartcity.opendata.usage import Usage
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
