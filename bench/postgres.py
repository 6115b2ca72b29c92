"""The production backend: the NGSI-LD core benchmark and a history load on PostgreSQL,
with one worker and with two.

    python bench/postgres.py [--url postgresql://127.0.0.1:5432/test] [--entities 100000]
                             [--seconds 10] [--sensors 200] [--days 7]

Works in a fresh schema of the database at ``--url`` (dropped at the end) and prints:
batch upsert rates (1,000 entities a request, 4 clients) with one worker and with two,
measured in one run; retrieve and PATCH throughput (wrk) and the geo and q latencies
with one worker; the rate of loading history through POST /temporal/entities.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import shutil
import tempfile
from pathlib import Path

import asyncpg
from live_server import free_port, start_server
from ngsild_core import bench_upsert, make_entity, report
from temporal import load

CLIENTS = 4


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def serve(db: str, workers: int) -> tuple[object, str, str]:
    port = free_port()
    server = start_server(db, port, workers)
    return server, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port}/ngsi-ld/v1"


def stop(server: object) -> None:
    server.terminate()  # type: ignore[attr-defined]
    server.wait(timeout=30)  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="postgresql://127.0.0.1:5432/test")
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--sensors", type=int, default=200)
    parser.add_argument("--days", type=int, default=7)
    args = parser.parse_args()
    schema = "bench_" + secrets.token_hex(4)
    asyncio.run(_admin(args.url, f"CREATE SCHEMA {schema}"))
    separator = "&" if "?" in args.url else "?"
    db = f"{args.url}{separator}search_path={schema},public"
    rng = random.Random(7)
    entities = [make_entity(i, rng) for i in range(args.entities)]
    workdir = Path(tempfile.mkdtemp(prefix="smartcity-bench-"))
    half = len(entities) // 2
    try:
        rates = {}
        for workers, share in ((1, entities[:half]), (2, entities[half:])):
            server, _, base = serve(db, workers)
            try:
                rates[workers] = bench_upsert(base, share, CLIENTS)
            finally:
                stop(server)
        print(f"entities: {args.entities:,} with 5 attributes; PostgreSQL; {CLIENTS} clients")
        print(f"batch upsert (1000/request): one worker {rates[1]:,.0f} entities/s, "
              f"two workers {rates[2]:,.0f} entities/s (x{rates[2] / rates[1]:.2f})")
        for workers in (1, 2):
            server, origin, base = serve(db, workers)
            try:
                label = f", {workers} worker{'s' if workers > 1 else ''}"
                report(origin, base, args.entities, args.seconds, rng, workdir, label)
                if workers == 1:
                    rate = load(base, args.sensors, args.days, CLIENTS)
                    print(f"history load ({args.sensors} sensors x {args.days} days of "
                          f"one-minute readings, {CLIENTS} clients): {rate:,.0f} instances/s")
            finally:
                stop(server)
    finally:
        asyncio.run(_admin(args.url, f"DROP SCHEMA {schema} CASCADE"))
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
