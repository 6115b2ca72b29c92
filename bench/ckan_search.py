"""CKAN package_search benchmark: one worker on SQLite, N published datasets.

    python bench/ckan_search.py [--datasets 1000] [--searches 200]

Publishes the datasets through PUT /datasets/{id}, then times --searches calls of
GET /api/3/action/package_search (client-side, over HTTP) with varied q, fq, sort and
paging, and prints the median and 95th percentile (issue 8's target: a median of at
most 50 ms over 1,000 datasets).
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from live_server import free_port, start_server

SUBJECTS = [("luft", "air"), ("parkering", "parking"), ("cykel", "bicycle"),
            ("buller", "noise"), ("vatten", "water"), ("trafik", "traffic"),
            ("belysning", "lighting"), ("avfall", "waste")]
PLACES = ["Centrum", "Hisingen", "Majorna", "Frölunda", "Angered", "Askim"]
THEMES = ["ENVI", "TRAN", "ENER", "REGI", "SOCI"]


def dataset(i: int, rng: random.Random) -> dict[str, Any]:
    (sv, en), place = rng.choice(SUBJECTS), rng.choice(PLACES)
    other = rng.choice(SUBJECTS)
    return {"title": {"sv": f"{sv.capitalize()} i {place} {i}", "en": f"{en.capitalize()} in "
                      f"{place} {i}"},
            "description": {"sv": f"Mätningar av {sv} och {other[0]} i {place}.",
                            "en": f"Measurements of {en} and {other[1]} in {place}."},
            "keywords": {"sv": [sv, other[0]], "en": [en, other[1]]},
            "themes": rng.sample(THEMES, rng.randint(1, 2)),
            "licence": rng.choice(["CC0-1.0", "CC-BY-4.0"]),
            "contact": {"name": "Öppna data", "email": "data@example.org"},
            "query": {"types": ["AirQualityObserved"]}, "policy": {"attributes": ["NO2"]}}


def searches(count: int, rng: random.Random) -> list[dict[str, str]]:
    """Varied searches: free text (in either language, phrases, prefixes), field
    filters, sorting and paging."""
    made: list[dict[str, str]] = []
    for _ in range(count):
        sv, en = rng.choice(SUBJECTS)
        params: dict[str, str] = rng.choice([
            {"q": en}, {"q": sv}, {"q": f"{en} {rng.choice(PLACES)}"},
            {"q": f'"{en} in"'}, {"q": sv[:4]}, {},
            {"fq": f"tags:{en}"}, {"fq": f"groups:{rng.choice(THEMES).lower()}"},
            {"q": en, "fq": "res_format:GeoJSON license_id:cc-by"},
            {"fq": f"tags:{sv} -groups:tran", "sort": "metadata_modified desc"},
            {"q": sv, "sort": "title_string asc", "rows": "50"},
            {"fq": "organization:example-municipality", "start": "500", "rows": "20"},
            {"q": en, "facet.field": '["tags", "groups", "res_format"]'}])
        made.append(params)
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=1000)
    parser.add_argument("--searches", type=int, default=200)
    args = parser.parse_args()
    rng = random.Random(8)
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        server = start_server(Path(tmp) / "bench.db", port)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
                for i in range(args.datasets):
                    response = client.put(f"/datasets/set-{i:05d}", json=dataset(i, rng))
                    assert response.status_code == 201, response.text
                # The first search maps every dataset to a package; it is not timed.
                client.get("/api/3/action/package_search").raise_for_status()
                times: list[float] = []
                for params in searches(args.searches, rng):
                    started = time.perf_counter()
                    response = client.get("/api/3/action/package_search", params=params)
                    times.append((time.perf_counter() - started) * 1000)
                    assert response.status_code == 200, response.text
            print(f"package_search over {args.datasets:,} datasets, {args.searches} "
                  f"searches: median {statistics.median(times):.1f} ms, "
                  f"p95 {statistics.quantiles(times, n=20)[-1]:.1f} ms")
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
