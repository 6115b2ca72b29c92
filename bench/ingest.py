"""IoT ingestion benchmark: MQTT measurements to entities (and their history).

    python bench/ingest.py [--devices 1000] [--messages 50000] [--rate 5000] [--seconds 10]

Starts `smartcity serve` on a fresh SQLite database, once taking measurements from its
embedded listener and once from Mosquitto at 127.0.0.1:1883 (skipped when none runs),
and prints for each:
- sustained throughput: --messages UltraLight messages from --devices devices published
  as fast as one client can (QoS 0), until the last one is queryable;
- latency at --rate messages/s for --seconds: publish-to-queryable of every 100th
  message (a second client polls its entity), p50 and p99.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import aiomqtt
import httpx
from live_server import free_port, start_server

SERVICE = {"fiware-service": "bench", "fiware-servicepath": "/"}


def start(db: Path, port: int, mqtt: str | None, listener_port: int) -> subprocess.Popen[bytes]:
    settings = {"SMARTCITY_INGEST_RATE": "1000", "SMARTCITY_INGEST_BURST": "5000"}
    if mqtt is None:
        settings.update(SMARTCITY_MQTT_LISTENER="true", SMARTCITY_MQTT_PORT=str(listener_port))
    else:
        settings.update(SMARTCITY_IOT_MQTT=mqtt)
    return start_server(db, port, settings=settings)


def queryable(base: str, device: int, seq: int) -> bool:
    response = httpx.get(f"{base}/ngsi-ld/v1/entities/urn:ngsi-ld:Thing:dev{device:05d}",
                         headers={"NGSILD-Tenant": "bench"}, timeout=10)
    return response.status_code == 200 and response.json()["seq"]["value"] >= seq


async def flood(port: int, apikey: str, devices: int, messages: int) -> None:
    async with aiomqtt.Client("127.0.0.1", port, max_queued_outgoing_messages=0) as client:
        for seq in range(messages):
            await client.publish(f"/ul/{apikey}/dev{seq % devices:05d}/attrs",
                                 f"t|{seq % 40}|seq|{seq}".encode(), qos=0)


async def paced(port: int, apikey: str, devices: int, rate: int, seconds: int,
                sent: dict[int, float]) -> None:
    async with aiomqtt.Client("127.0.0.1", port) as client:
        start = time.perf_counter()
        for seq in range(rate * seconds):
            due = start + seq / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if seq % 100 == 0:
                sent[seq] = time.perf_counter()
            await client.publish(f"/ul/{apikey}/dev{seq % devices:05d}/attrs",
                                 f"t|{seq % 40}|seq|{seq}".encode(), qos=0)


def measure(base: str, broker_port: int, args: argparse.Namespace) -> None:
    apikey = "bench" + secrets.token_hex(3)
    group = {"apikey": apikey, "resource": "/iot/d", "entity_type": "Thing",
             "attributes": [{"object_id": "t", "name": "temperature", "type": "Number"},
                            {"object_id": "seq", "name": "seq", "type": "Number"}]}
    assert httpx.post(base + "/iot/services", json={"services": [group]},
                      headers=SERVICE).status_code == 201
    # Every device once, so the runs below measure updates, not provisioning.
    asyncio.run(flood(broker_port, apikey, args.devices, args.devices))
    last = args.devices - 1
    while not queryable(base, last % args.devices, last):
        time.sleep(0.05)
    start = time.perf_counter()
    asyncio.run(flood(broker_port, apikey, args.devices, args.messages))
    published = time.perf_counter() - start
    last = args.messages - 1
    while not queryable(base, last % args.devices, last):
        time.sleep(0.01)
    elapsed = time.perf_counter() - start
    print(f"  sustained: {args.messages:,} messages from {args.devices:,} devices in "
          f"{elapsed:.1f} s = {args.messages / elapsed:,.0f} messages/s "
          f"(published in {published:.1f} s)")
    sent: dict[int, float] = {}
    latencies: list[float] = []
    done = threading.Event()

    def watch() -> None:
        checked = 0
        while not done.is_set() or checked in sent:
            if checked not in sent:
                time.sleep(0.001)
                continue
            while not queryable(base, checked % args.devices, checked):
                time.sleep(0.002)  # each look is a request the server must answer too
            latencies.append((time.perf_counter() - sent[checked]) * 1000)
            checked += 100
    watcher = threading.Thread(target=watch)
    watcher.start()
    asyncio.run(paced(broker_port, apikey, args.devices, args.rate, args.seconds, sent))
    done.set()
    watcher.join(timeout=60)
    cuts = statistics.quantiles(latencies, n=100)
    print(f"  at {args.rate:,} messages/s for {args.seconds} s: publish-to-queryable "
          f"p50 {statistics.median(latencies):.1f} ms, p99 {cuts[98]:.1f} ms "
          f"({len(latencies)} samples)")


def mosquitto_running() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 1883), timeout=1).close()
        return True
    except OSError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--rate", type=int, default=5000)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    brokers = [("embedded listener", None)]
    if mosquitto_running():
        brokers.append(("Mosquitto", "mqtt://127.0.0.1:1883"))
    for name, mqtt in brokers:
        workdir = Path(tempfile.mkdtemp(prefix="smartcity-bench-"))
        port, listener_port = free_port(), free_port()
        server = start(workdir / "bench.db", port, mqtt, listener_port)
        try:
            print(f"{name} (one worker, SQLite, history on):")
            measure(f"http://127.0.0.1:{port}", 1883 if mqtt else listener_port, args)
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
