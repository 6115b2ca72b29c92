"""Temporal history benchmark: one worker on SQLite, N sensors with one-minute readings.

    python bench/temporal.py [--sensors 1000] [--days 7] [--clients 2]

Loads the history through POST /temporal/entities (one request per sensor and day,
1,440 instances each) and prints the load rate, then the median latency of:
the last 24 hours of one attribute of one sensor, hourly averages over the whole period
for one sensor, and daily averages for all sensors in one query.
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
from live_server import free_port, start_server

START = datetime(2026, 11, 1, tzinfo=UTC)
MINUTES = 1440


def sensor_id(i: int) -> str:
    return f"urn:ngsi-ld:TemperatureSensor:{i:05d}"


def day_body(i: int, day: int) -> bytes:
    """One day of one-minute readings of sensor ``i``: a daily wave plus noise."""
    first = START + timedelta(days=day)
    readings = []
    for minute in range(MINUTES):
        at = first + timedelta(minutes=minute)
        value = round(5 + 4 * math.sin(2 * math.pi * minute / MINUTES) + (i % 7) * 0.1
                      + ((minute * 7919 + i * 104729) % 100) / 500, 2)
        readings.append({"type": "Property", "value": value,
                         "observedAt": at.strftime("%Y-%m-%dT%H:%M:%SZ")})
    return orjson.dumps({"id": sensor_id(i), "type": "TemperatureSensor",
                         "temperature": readings})


def load(base: str, sensors: int, days: int, clients: int) -> float:
    """Instances/s loaded, from ``clients`` clients at once."""
    work = [(i, d) for d in range(days) for i in range(sensors)]

    def send(share: list[tuple[int, int]]) -> None:
        with httpx.Client(base_url=base, timeout=120) as client:
            for i, day in share:
                response = client.post("/temporal/entities", content=day_body(i, day),
                                       headers={"Content-Type": "application/json"})
                if response.status_code not in (201, 204):
                    raise SystemExit(f"load failed: {response.status_code} {response.text}")
    shares = [work[k::clients] for k in range(clients)]
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(send, shares))
    return len(work) * MINUTES / (time.perf_counter() - started)


def median_ms(client: httpx.Client, requests: list[tuple[str, dict[str, str]]],
              expect: int | None = None) -> float:
    times = []
    for url, params in requests:
        started = time.perf_counter()
        response = client.get(url, params=params)
        times.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{url} failed: {response.status_code} {response.text[:300]}")
        if expect is not None and len(response.json()) != expect:
            raise SystemExit(f"{url} answered {len(response.json())} entities, not {expect}")
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sensors", type=int, default=1000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--clients", type=int, default=2)
    args = parser.parse_args()
    end = START + timedelta(days=args.days)
    text = lambda moment: moment.strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        port = free_port()
        server = start_server(db, port)
        base = f"http://127.0.0.1:{port}/ngsi-ld/v1"
        try:
            rate = load(base, args.sensors, args.days, args.clients)
            total = args.sensors * args.days * MINUTES
            print(f"load: {total:,} instances ({args.sensors} sensors x {args.days} days x "
                  f"{MINUTES}/day) at {rate:,.0f} instances/s")
            print(f"database size: {db.stat().st_size / 2**20:,.0f} MiB "
                  f"({db.stat().st_size / total:.1f} bytes an instance)")
            with httpx.Client(base_url=base, timeout=120) as client:
                last_day = median_ms(client, [
                    (f"/temporal/entities/{sensor_id(i * 37 % args.sensors)}",
                     {"attrs": "temperature", "timerel": "after",
                      "timeAt": text(end - timedelta(days=1))}) for i in range(50)])
                hourly = median_ms(client, [
                    (f"/temporal/entities/{sensor_id(i * 41 % args.sensors)}",
                     {"attrs": "temperature", "options": "aggregatedValues",
                      "aggrMethods": "avg", "aggrPeriodDuration": "PT1H",
                      "timerel": "between", "timeAt": text(START), "endTimeAt": text(end)})
                    for i in range(30)])
                daily = median_ms(client, [
                    ("/temporal/entities",
                     {"type": "TemperatureSensor", "attrs": "temperature",
                      "options": "aggregatedValues", "aggrMethods": "avg",
                      "aggrPeriodDuration": "P1D", "timerel": "between",
                      "timeAt": text(START), "endTimeAt": text(end),
                      "limit": str(args.sensors)}) for _ in range(5)], expect=args.sensors)
            print(f"last 24 hours of one attribute ({MINUTES} instances): "
                  f"median {last_day:.1f} ms")
            print(f"hourly averages over {args.days} days, one sensor: median {hourly:.1f} ms")
            print(f"daily averages, all {args.sensors} sensors in one query: "
                  f"median {daily:.0f} ms")
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
