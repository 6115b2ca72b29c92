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
import secrets
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

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


class Publisher:
    """An MQTT 3.1.1 client that only publishes at QoS 0, writing pre-encoded packets
    straight to its socket: the load generator must outrun the platform, and a Python
    MQTT client's publish (tens of microseconds each) does not at 10,000 messages/s on
    this machine."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        client_id = b"bench-" + secrets.token_hex(4).encode()
        variable = b"\x00\x04MQTT\x04\x02\x00\x3c" + len(client_id).to_bytes(2, "big")
        self.sock.sendall(b"\x10" + _length(len(variable) + len(client_id)) + variable
                          + client_id)
        if self.sock.recv(4) != b"\x20\x02\x00\x00":
            raise SystemExit("the broker refused the benchmark's connection")

    def send(self, packets: list[bytes]) -> None:
        self.sock.sendall(b"".join(packets))

    def close(self) -> None:
        self.sock.sendall(b"\xe0\x00")  # DISCONNECT
        self.sock.close()


def _length(n: int) -> bytes:
    """MQTT's variable-length integer."""
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (128 if n else 0))
        if not n:
            return bytes(out)


def packet(apikey: str, devices: int, seq: int) -> bytes:
    """A QoS 0 PUBLISH of measurement ``seq`` from device ``seq % devices``."""
    topic = f"/ul/{apikey}/dev{seq % devices:05d}/attrs".encode()
    payload = f"t|{seq % 40}|seq|{seq}".encode()
    return (b"\x30" + _length(2 + len(topic) + len(payload)) + len(topic).to_bytes(2, "big")
            + topic + payload)


def flood(port: int, apikey: str, devices: int, messages: int) -> None:
    publisher = Publisher(port)
    for start in range(0, messages, 1000):
        publisher.send([packet(apikey, devices, seq)
                        for seq in range(start, min(start + 1000, messages))])
    publisher.close()


def paced(port: int, apikey: str, devices: int, rate: int, seconds: int,
          sent: dict[int, float]) -> None:
    """``rate`` messages a second for ``seconds``, sent a millisecond's share at a time;
    the send time of every 100th is noted."""
    publisher = Publisher(port)
    per_tick = max(1, rate // 1000)
    start = time.perf_counter()
    for first in range(0, rate * seconds, per_tick):
        delay = start + first / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        seqs = range(first, min(first + per_tick, rate * seconds))
        packets = [packet(apikey, devices, seq) for seq in seqs]
        now = time.perf_counter()
        sent.update({seq: now for seq in seqs if seq % 100 == 0})
        publisher.send(packets)
    publisher.close()


def measure(base: str, broker_port: int, args: argparse.Namespace) -> None:
    apikey = "bench" + secrets.token_hex(3)
    group = {"apikey": apikey, "resource": "/iot/d", "entity_type": "Thing",
             "attributes": [{"object_id": "t", "name": "temperature", "type": "Number"},
                            {"object_id": "seq", "name": "seq", "type": "Number"}]}
    assert httpx.post(base + "/iot/services", json={"services": [group]},
                      headers=SERVICE).status_code == 201
    # Every device once, so the runs below measure updates, not provisioning.
    flood(broker_port, apikey, args.devices, args.devices)
    last = args.devices - 1
    while not queryable(base, last % args.devices, last):
        time.sleep(0.05)
    start = time.perf_counter()
    flood(broker_port, apikey, args.devices, args.messages)
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
    paced(broker_port, apikey, args.devices, args.rate, args.seconds, sent)
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
