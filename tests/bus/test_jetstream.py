"""Specification of the NATS JetStream event bus: changes reach the platform's services
through a real NATS server, and an outage of NATS delays them without losing any."""

from __future__ import annotations

import asyncio
import queue
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest

from smartcity.config import Settings
from smartcity.core.events import EntityChange
from tests.conftest import LiveServer, Receiver, require_service

pytestmark = pytest.mark.services
NATS_BINARY = shutil.which("nats-server") or "/usr/sbin/nats-server"


def watch(server: LiveServer) -> queue.Queue[EntityChange]:
    """The changes the server's bus hands to its in-process services."""
    seen: queue.Queue[EntityChange] = queue.Queue()

    def handler(changes: Any) -> None:
        for change in changes:
            seen.put(change)
    server.platform.entities.bus.subscribe(handler)
    return seen


def ids(seen: queue.Queue[EntityChange], count: int, timeout: float) -> list[str]:
    found: list[str] = []
    deadline = time.monotonic() + timeout
    while len(found) < count and time.monotonic() < deadline:
        try:
            found.append(seen.get(timeout=0.1).entity_id)
        except queue.Empty:
            continue
    return found


def delete_stream(url: str, name: str) -> None:
    async def delete() -> None:
        client = await nats.connect(url)
        try:
            await client.jetstream().delete_stream(name)
        finally:
            await client.close()
    asyncio.run(delete())


def test_changes_reach_in_process_services_through_nats(db: str) -> None:
    require_service("127.0.0.1", 4222, "NATS")
    prefix = "test-" + secrets.token_hex(4)
    settings = Settings(db=db, event_bus="nats://127.0.0.1:4222", event_bus_prefix=prefix)
    live = LiveServer(settings)
    try:
        with live as url, httpx.Client(base_url=url + "/ngsi-ld/v1") as api:
            seen = watch(live)
            for n in range(3):
                lamp = {"id": f"urn:ngsi-ld:Streetlight:{n}", "type": "Streetlight"}
                assert api.post("/entities", json=lamp).status_code == 201
            assert api.delete("/entities/urn:ngsi-ld:Streetlight:1").status_code == 204
            assert ids(seen, 4, timeout=10) == [f"urn:ngsi-ld:Streetlight:{n}"
                                                for n in (0, 1, 2, 1)]
    finally:
        delete_stream("nats://127.0.0.1:4222", f"{prefix.upper().replace('-', '_')}_CHANGES")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class NatsServer:
    """A NATS server of this test's own, with JetStream, that the test can stop."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [NATS_BINARY, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd",
             str(self.directory)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nats-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def own_nats(tmp_path: Path) -> Iterator[NatsServer]:
    if not Path(NATS_BINARY).exists():
        require_service("127.0.0.1", 0, "nats-server (the program)")
    server = NatsServer(tmp_path / "nats")
    server.start()
    yield server
    server.stop()


def test_an_outage_of_nats_delays_changes_and_loses_none(
        db: str, own_nats: NatsServer) -> None:
    settings = Settings(db=db, event_bus=own_nats.url)
    receiver = Receiver()
    live = LiveServer(settings)
    try:
        with live as url, httpx.Client(base_url=url + "/ngsi-ld/v1", timeout=10) as api:
            seen = watch(live)
            subscription = {"type": "Subscription", "entities": [{"type": "Streetlight"}],
                            "notification": {"endpoint": {"uri": receiver.url}}}
            assert api.post("/subscriptions", json=subscription).status_code == 201
            lamp = {"id": "urn:ngsi-ld:Streetlight:before", "type": "Streetlight", "level": 1}
            assert api.post("/entities", json=lamp).status_code == 201
            assert ids(seen, 1, timeout=10) == ["urn:ngsi-ld:Streetlight:before"]
            receiver.next()

            own_nats.stop()
            for name in ("during-1", "during-2"):
                lamp = {"id": f"urn:ngsi-ld:Streetlight:{name}", "type": "Streetlight",
                        "level": 1}
                assert api.post("/entities", json=lamp).status_code == 201
            # Subscribers' notifications do not wait for the bus.
            assert {receiver.next()[1]["data"][0]["id"] for _ in range(2)} == {
                "urn:ngsi-ld:Streetlight:during-1", "urn:ngsi-ld:Streetlight:during-2"}
            assert ids(seen, 1, timeout=1.5) == []

            own_nats.start()
            assert ids(seen, 2, timeout=20) == ["urn:ngsi-ld:Streetlight:during-1",
                                                "urn:ngsi-ld:Streetlight:during-2"]
            assert ids(seen, 1, timeout=1.5) == []  # and nothing twice
    finally:
        receiver.close()


def test_two_databases_on_one_stream_lose_none_of_each_others_changes(
        own_nats: NatsServer, tmp_path: Path) -> None:
    """Outbox numbers repeat from one database to another: message ids must not."""
    servers = [LiveServer(Settings(db=str(tmp_path / f"{name}.db"), event_bus=own_nats.url))
               for name in ("north", "south")]
    with servers[0] as north, servers[1] as south:
        seen = [watch(server) for server in servers]
        for base, name in ((north, "north"), (south, "south")):
            lamp = {"id": f"urn:ngsi-ld:Streetlight:{name}", "type": "Streetlight"}
            assert httpx.post(base + "/ngsi-ld/v1/entities", json=lamp).status_code == 201
        found: list[str] = []
        deadline = time.monotonic() + 15
        while len(found) < 2 and time.monotonic() < deadline:
            for queue_ in seen:
                found.extend(ids(queue_, 1, timeout=0.2))
        assert sorted(found) == ["urn:ngsi-ld:Streetlight:north",
                                 "urn:ngsi-ld:Streetlight:south"]
