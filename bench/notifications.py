"""Subscription benchmark: what 1,000 subscriptions cost writes, and notification latency.

    python bench/notifications.py [--entities 1000] [--subscriptions 1000] [--seconds 10]

Prints attribute-update throughput (wrk, PATCH of random entities) with no subscription
and with N active subscriptions, then the latency from an update's response to the
notification's arrival at a local HTTP receiver, at a steady 500 updates/s.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).parent))
from ngsild_core import PATCH_BODY, free_port, run_wrk, start_server, wrk_script


def lamp(i: int) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:Streetlight:{i:06d}", "type": "Streetlight",
            "illuminanceLevel": {"type": "Property", "value": 0},
            "powerState": {"type": "Property", "value": "on"}}


class Receiver:
    """Notes when each notification for the measured entity arrives."""

    def __init__(self) -> None:
        self.arrivals: dict[int, float] = {}
        arrivals = self.arrivals

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = orjson.loads(self.rfile.read(int(self.headers["Content-Length"])))
                now = time.perf_counter()
                for entity in body["data"]:
                    level = entity.get("illuminanceLevel", {}).get("value")
                    if isinstance(level, int):
                        arrivals.setdefault(level, now)
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/notify"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=1000)
    parser.add_argument("--subscriptions", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="smartcity-bench-"))
    port = free_port()
    server = start_server(workdir / "bench.db", port)
    base = f"http://127.0.0.1:{port}/ngsi-ld/v1"
    origin = f"http://127.0.0.1:{port}"
    script = wrk_script(args.entities, PATCH_BODY)
    receiver = Receiver()
    try:
        with httpx.Client(base_url=base, timeout=60) as client:
            for start in range(0, args.entities, 1000):
                batch = [lamp(i) for i in range(start, min(start + 1000, args.entities))]
                client.post("/entityOperations/upsert", content=orjson.dumps(batch),
                            headers={"Content-Type": "application/json"})
            bare = run_wrk(origin, script, args.seconds, workdir)
            # Active subscriptions on the updated type, each watching other attributes,
            # so every update has to look at them and none notifies: the matching cost.
            for n in range(args.subscriptions):
                response = client.post("/subscriptions", json={
                    "type": "Subscription", "entities": [{"type": "Streetlight"}],
                    "watchedAttributes": [f"other{n}"],
                    "notification": {"endpoint": {"uri": receiver.url}}})
                assert response.status_code == 201, response.text
            loaded = run_wrk(origin, script, args.seconds, workdir)
            print(f"PATCH with no subscription: {bare['rate']:,.0f} req/s; with "
                  f"{args.subscriptions:,} active subscriptions: {loaded['rate']:,.0f} req/s "
                  f"({100 * (1 - loaded['rate'] / bare['rate']):.1f}% fewer)")
            response = client.post("/subscriptions", json={
                "type": "Subscription", "entities": [{"type": "Streetlight"}],
                "watchedAttributes": ["illuminanceLevel"],
                "notification": {"endpoint": {"uri": receiver.url}, "format": "normalized"}})
            assert response.status_code == 201, response.text
            sent: dict[int, float] = {}
            rng = random.Random(3)
            interval = 1 / 500
            next_at = time.perf_counter()
            # Values above any the wrk runs wrote (0-1000): an update that wrote the value
            # an attribute already holds changes nothing and rightly notifies nothing.
            for value in range(10**6, 10**6 + 500 * args.seconds):
                entity = f"urn:ngsi-ld:Streetlight:{rng.randrange(args.entities):06d}"
                client.patch(f"/entities/{entity}/attrs/illuminanceLevel",
                              json={"value": value})
                sent[value] = time.perf_counter()
                next_at += interval
                time.sleep(max(0.0, next_at - time.perf_counter()))
            time.sleep(2)
        latencies = sorted((receiver.arrivals[v] - t) * 1000 for v, t in sent.items()
                           if v in receiver.arrivals)
        lost = len(sent) - len(latencies)
        p99 = latencies[int(len(latencies) * 0.99) - 1]
        print(f"notification latency at 500 updates/s ({len(sent):,} updates): "
              f"p50 {statistics.median(latencies):.1f} ms, p99 {p99:.1f} ms, "
              f"not received {lost}")
    finally:
        server.terminate()
        server.wait(timeout=10)
        receiver.server.shutdown()
        receiver.server.server_close()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
