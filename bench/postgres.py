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
import httpx
from live_server import free_port, start_server
from ngsild_core import (
    GET_BODY,
    PATCH_BODY,
    STOCKHOLM,
    WRK_SCRIPT,
    bench_upsert,
    make_entity,
    median_ms,
    run_wrk,
)
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
                report(origin, base, args, rng, workdir, workers)
                if workers == 1:
                    rate = load(base, args.sensors, args.days, CLIENTS)
                    print(f"history load ({args.sensors} sensors x {args.days} days of "
                          f"one-minute readings, {CLIENTS} clients): {rate:,.0f} instances/s")
            finally:
                stop(server)
    finally:
        asyncio.run(_admin(args.url, f"DROP SCHEMA {schema} CASCADE"))
        shutil.rmtree(workdir, ignore_errors=True)


def report(origin: str, base: str, args: argparse.Namespace, rng: random.Random,
           workdir: Path, workers: int) -> None:
    label = f"{workers} worker{'s' if workers > 1 else ''}"
    if shutil.which("wrk"):
        get = run_wrk(origin, WRK_SCRIPT.format(n=args.entities, body=GET_BODY),
                      args.seconds, workdir)
        print(f"retrieve entity, {label}: {get['rate']:,.0f} req/s, p50 {get['p50']:.2f} ms, "
              f"p99 {get['p99']:.2f} ms, non-2xx {get['non2xx']:.0f}")
        patch = run_wrk(origin, WRK_SCRIPT.format(n=args.entities, body=PATCH_BODY),
                        args.seconds, workdir)
        print(f"update attribute (PATCH), {label}: {patch['rate']:,.0f} req/s, "
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
        q = [f"/entities?type=Streetlight&q=illuminanceLevel=={rng.randint(0, 1000)}"
             f";status==%22defectiveLamp%22" for _ in range(50)]
        q_ms, q_found = median_ms(client, q)
    print(f"near;maxDistance==500 (limit 100), {label}: median {near_ms:.1f} ms "
          f"({near_found} found); q filter on one type: median {q_ms:.1f} ms "
          f"({q_found} found)")


if __name__ == "__main__":
    main()
