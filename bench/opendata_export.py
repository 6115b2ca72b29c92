"""Open-data download benchmark: the history CSV of a dataset of one million readings.

    python bench/opendata_export.py [--sensors 700] [--days 1]

Loads one-minute readings of N sensors (as bench/temporal.py does), publishes them as a
dataset, then downloads its history CSV several times and prints each download's rate
(MB/s, rows/s; the first one reads a cold cache), their median, and the server's peak
memory before and after the downloads (VmHWM): a streamed download keeps it flat,
whatever the size.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from live_server import free_port, start_server
from temporal import MINUTES, load

DATASET = {
    "title": {"sv": "Temperatur", "en": "Temperature"},
    "description": {"sv": "Minutvärden", "en": "One-minute readings"},
    "themes": ["ENVI"], "contact": {"name": "Open data", "email": "data@example.org"},
    "query": {"types": ["TemperatureSensor"]}, "policy": {"attributes": ["temperature"]}}


def peak_memory(pid: int) -> int:
    """The process's peak resident memory so far, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
    return 0


def download(origin: str, readings: int) -> float:
    """Download the history CSV once; print and answer its rate in MB/s."""
    size = rows = 0
    started = time.perf_counter()
    with httpx.stream("GET", f"{origin}/datasets/temperature/history.csv",
                      timeout=600) as response:
        response.raise_for_status()
        for chunk in response.iter_bytes():
            size += len(chunk)
            rows += chunk.count(b"\n")
    seconds = time.perf_counter() - started
    print(f"history CSV of {readings:,} readings: {rows - 1:,} rows, {size / 1e6:,.0f} MB "
          f"in {seconds:.1f} s: {size / 1e6 / seconds:,.1f} MB/s, "
          f"{(rows - 1) / seconds:,.0f} rows/s")
    return size / 1e6 / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sensors", type=int, default=700)
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--downloads", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        server = start_server(Path(tmp) / "bench.db", port)
        origin = f"http://127.0.0.1:{port}"
        try:
            load(origin + "/ngsi-ld/v1", args.sensors, args.days, 2)
            httpx.put(f"{origin}/datasets/temperature", json={**DATASET, "id": "temperature"}
                      ).raise_for_status()
            before = peak_memory(server.pid)
            rates = [download(origin, args.sensors * args.days * MINUTES)
                     for _ in range(args.downloads)]
            print(f"median of {len(rates)} downloads: {statistics.median(rates):,.1f} MB/s")
            print(f"server peak memory: {before} MiB before the downloads, "
                  f"{peak_memory(server.pid)} MiB after")
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
