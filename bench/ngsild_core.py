"""NGSI-LD core benchmark: one worker on SQLite, N entities with 5 attributes each.

    python bench/ngsild_core.py [--entities 100000] [--seconds 10]

Prints: batch upsert rate (beside a raw SQLite executemany of the same rows),
retrieve and PATCH throughput with latency percentiles (wrk, on the other core),
and median latencies of a near;maxDistance==500 geo-query and a q filter.
Needs `wrk` (Debian package) for the throughput figures.
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import orjson
from live_server import free_port, start_server

from smartcity.core.clock import SystemClock, timestamp
from smartcity.core.ngsild.context import ContextCompiler, ContextDocuments
from smartcity.core.ngsild.history import from_changes
from smartcity.core.ngsild.instants import parse_instant
from smartcity.core.ngsild.mutations import new_entity
from smartcity.core.ngsild.normalize import parse_entity
from smartcity.store.history_rows import encode
from smartcity.store.sqlite import GEO_SLOTS, SCHEMA
from smartcity.store.sqlite_history import SCHEMA as HISTORY_SCHEMA
from smartcity.store.write_plan import index_rows, index_shape, values_signature

STOCKHOLM = (18.0686, 59.3293)
BATCH = 1000


def make_entity(i: int, rng: random.Random) -> dict[str, Any]:
    lon = STOCKHOLM[0] + rng.uniform(-0.15, 0.15)
    lat = STOCKHOLM[1] + rng.uniform(-0.08, 0.08)
    return {
        "id": f"urn:ngsi-ld:Streetlight:{i:06d}",
        "type": "Streetlight",
        "powerState": {"type": "Property", "value": rng.choice(["on", "off"])},
        "illuminanceLevel": {"type": "Property", "value": rng.randint(0, 1000),
                             "unitCode": "LUX"},
        "status": {"type": "Property", "value": rng.choice(["ok", "defectiveLamp",
                                                            "columnIssue"])},
        "refStreetlightGroup": {"type": "Relationship",
                                "object": f"urn:ngsi-ld:StreetlightGroup:{i % 500}"},
        "location": {"type": "GeoProperty",
                     "value": {"type": "Point", "coordinates": [round(lon, 6), round(lat, 6)]}},
    }


def bench_upsert(base: str, entities: list[dict[str, Any]], clients: int,
                 headers: dict[str, str] | None = None) -> float:
    """Entities/s for upserts of BATCH entities a request, from ``clients`` clients at once."""
    bodies = [orjson.dumps(entities[offset:offset + BATCH])
              for offset in range(0, len(entities), BATCH)]

    def send(share: list[bytes]) -> None:
        with httpx.Client(base_url=base, timeout=120, headers=headers) as client:
            for body in share:
                response = client.post("/entityOperations/upsert", content=body,
                                       headers={"Content-Type": "application/json"})
                if response.status_code not in (201, 204):
                    raise SystemExit(f"upsert failed: {response.status_code} "
                                     f"{response.text[:300]}")

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(send, [bodies[i::clients] for i in range(clients)]))
    return len(entities) / (time.perf_counter() - start)


def bench_raw_sqlite(path: Path, entities: list[dict[str, Any]]) -> float:
    """The rows the store writes for these entities (with their history), prepared
    beforehand and inserted with plain executemany, one transaction per batch: the floor
    for the upsert path."""
    terms = ContextCompiler(ContextDocuments()).core
    now = timestamp(SystemClock().now())
    stored = [new_entity(parse_entity(e, terms), now) for e in entities]
    batches = []
    recorded_at = parse_instant(now)
    sid = 0
    for offset in range(0, len(stored), BATCH):
        rows: dict[str, list[tuple[Any, ...]]] = {"e": [], "t": [], "a": [], "b": [],
                                                  "he": [], "ht": [], "hs": [], "h": []}
        for pk, entity in enumerate(stored[offset:offset + BATCH], start=offset + 1):
            # The history the store records: a registry row, its type, and per attribute
            # a series row and one instance.
            rows["he"].append((pk, "", entity["id"], orjson.dumps(entity["type"]), None,
                               recorded_at))
            rows["ht"].extend(("", t, pk) for t in entity["type"])
            for inst in from_changes([("created", entity, None)], now).instances:
                sid += 1
                rows["hs"].append((sid, pk, inst.attr, inst.dataset_id))
                rows["h"].append((sid, inst.time, sid, *encode(inst.time, inst.body),
                                  recorded_at))
            index = index_rows(entity)
            types, attrs, geoms = index
            rows["e"].append((pk, "", entity["id"], entity["modifiedAt"], index_shape(index),
                              values_signature(index), orjson.dumps(entity)))
            rows["t"].extend(("", t, pk) for t in types)
            rows["a"].extend(("", *a[:1], pk, *a[1:5]) for a in attrs)
            for slot, (attr, geometry) in enumerate(geoms):
                lon, lat = geometry["coordinates"]
                rows["b"].append((pk * GEO_SLOTS + slot, lon, lon, lat, lat, pk, attr))
        batches.append(rows)
    db = sqlite3.connect(path, isolation_level=None)
    # The same settings the store uses.
    for pragma in ("page_size=8192", "journal_mode=WAL", "wal_autocheckpoint=10000",
                   "synchronous=NORMAL", "cache_size=-65536"):
        db.execute(f"PRAGMA {pragma}")
    db.executescript(SCHEMA)
    db.executescript(HISTORY_SCHEMA)
    start = time.perf_counter()
    for rows in batches:
        db.execute("BEGIN")
        db.executemany("INSERT INTO entities (pk, tenant, id, modified_at, shape, "
                       "values_sig, doc) VALUES (?,?,?,?,?,?,?)", rows["e"])
        db.executemany("INSERT INTO entity_types VALUES (?,?,?)", rows["t"])
        db.executemany("INSERT INTO entity_attrs VALUES (?,?,?,?,?,?,?)", rows["a"])
        db.executemany("INSERT INTO geo_boxes VALUES (?,?,?,?,?,?,?)", rows["b"])
        db.executemany("INSERT INTO history_entities VALUES (?,?,?,?,?,?)", rows["he"])
        db.executemany("INSERT INTO history_types VALUES (?,?,?)", rows["ht"])
        db.executemany("INSERT INTO history_series VALUES (?,?,?,?)", rows["hs"])
        db.executemany("INSERT INTO history (sid, t, iid, num, rest, created) "
                       "VALUES (?,?,?,?,?,?)", rows["h"])
        db.execute("COMMIT")
    rate = len(stored) / (time.perf_counter() - start)
    db.close()
    return rate


WRK_SCRIPT = """
math.randomseed(os.time())
{headers}
local n = {n}
request = function()
  local id = string.format("urn:ngsi-ld:Streetlight:%06d", math.random(0, n - 1))
  {body}
end
"""
GET_BODY = 'return wrk.format("GET", "/ngsi-ld/v1/entities/" .. id)'
PATCH_BODY = ('return wrk.format("PATCH", "/ngsi-ld/v1/entities/" .. id .. '
              '"/attrs/illuminanceLevel", {["Content-Type"]="application/json"}, '
              '"{\\"value\\": " .. math.random(0, 1000) .. "}")')


def wrk_script(entities: int, body: str, headers: dict[str, str] | None = None) -> str:
    """A wrk script sending ``body`` requests on random entities, with ``headers``."""
    lines = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in (headers or {}).items())
    return WRK_SCRIPT.format(n=entities, body=body, headers=lines)


def run_wrk(base: str, script: str, seconds: int, workdir: Path) -> dict[str, float]:
    path = workdir / "wrk.lua"
    path.write_text(script)
    out = subprocess.run(["wrk", "-t1", "-c32", f"-d{seconds}s", "--latency", "-s", str(path),
                          base], capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    figures = {"rate": rate, "non2xx": float(errors.group(1)) if errors else 0.0}
    for label, pct in (("50%", "p50"), ("99%", "p99")):
        value, unit = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        figures[pct] = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    return figures


def median_ms(client: httpx.Client, urls: list[str]) -> tuple[float, int]:
    times, found = [], 0
    for url in urls:
        start = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - start) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{url}: {response.status_code} {response.text[:200]}")
        found += len(response.json())
    return statistics.median(times), found // len(urls)


def report(origin: str, base: str, entities: int, seconds: int, rng: random.Random,
           workdir: Path, label: str = "") -> None:
    """Print retrieval and PATCH throughput (wrk) and the geo and q query latencies."""
    if shutil.which("wrk"):
        get = run_wrk(origin, wrk_script(entities, GET_BODY), seconds, workdir)
        print(f"retrieve entity{label}: {get['rate']:,.0f} req/s, p50 {get['p50']:.2f} ms, "
              f"p99 {get['p99']:.2f} ms, non-2xx {get['non2xx']:.0f}")
        patch = run_wrk(origin, wrk_script(entities, PATCH_BODY), seconds, workdir)
        print(f"update attribute (PATCH){label}: {patch['rate']:,.0f} req/s, "
              f"p50 {patch['p50']:.2f} ms, p99 {patch['p99']:.2f} ms, "
              f"non-2xx {patch['non2xx']:.0f}")
    else:
        print("wrk not found: retrieve and PATCH throughput skipped")
    with httpx.Client(base_url=base, timeout=30) as client:
        near = [f"/entities?type=Streetlight&georel=near;maxDistance==500&geometry=Point"
                f"&coordinates=[{STOCKHOLM[0] + rng.uniform(-0.1, 0.1):.5f},"
                f"{STOCKHOLM[1] + rng.uniform(-0.05, 0.05):.5f}]&limit=100"
                for _ in range(100)]
        near_ms, near_found = median_ms(client, near)
        print(f"near;maxDistance==500 (limit 100){label}: median {near_ms:.1f} ms, "
              f"{near_found} entities per answer on average")
        q = [f"/entities?type=Streetlight&q=illuminanceLevel=={rng.randint(0, 1000)}"
             f";status==%22defectiveLamp%22" for _ in range(50)]
        q_ms, q_found = median_ms(client, q)
        print(f"q filter on one type (illuminanceLevel==N;status==\"defectiveLamp\")"
              f"{label}: median {q_ms:.1f} ms, {q_found} entities per answer on average")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    rng = random.Random(7)
    entities = [make_entity(i, rng) for i in range(args.entities)]
    workdir = Path(tempfile.mkdtemp(prefix="smartcity-bench-"))
    port = free_port()
    server = start_server(workdir / "bench.db", port)
    base = f"http://127.0.0.1:{port}/ngsi-ld/v1"
    try:
        half = len(entities) // 2
        one = bench_upsert(base, entities[:half], 1)
        two = bench_upsert(base, entities[half:], 2)
        raw = bench_raw_sqlite(workdir / "raw.db", entities)
        print(f"entities: {args.entities:,} with 5 attributes; one worker; SQLite")
        print(f"batch upsert ({BATCH}/request), first half from 1 client: {one:,.0f} "
              f"entities/s; second half from 2 clients: {two:,.0f} entities/s")
        print(f"raw SQLite executemany of the same rows: {raw:,.0f} rows/s "
              f"(ratios {one / raw:.2f} and {two / raw:.2f})")
        report(f"http://127.0.0.1:{port}", base, args.entities, args.seconds, rng, workdir)
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
