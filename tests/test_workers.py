"""Specification of several workers sharing one PostgreSQL database: what one changes,
the others see at once; each change is notified once, whichever worker made it.

Two servers on one database stand for two workers (or two machines): each has its own
store connections, caches and notifier, as a worker process does.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from smartcity.config import Settings
from tests.bus.test_jetstream import free_port
from tests.conftest import LiveServer, Receiver, postgres_schema

pytestmark = pytest.mark.services


@pytest.fixture
def workers() -> Iterator[tuple[httpx.Client, httpx.Client]]:
    with postgres_schema() as db, LiveServer(Settings(db=db)) as one, \
            LiveServer(Settings(db=db)) as two, \
            httpx.Client(base_url=one + "/ngsi-ld/v1", timeout=10) as a, \
            httpx.Client(base_url=two + "/ngsi-ld/v1", timeout=10) as b:
        yield a, b


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    endpoint = Receiver()
    yield endpoint
    endpoint.close()


def subscribe(api: httpx.Client, uri: str, **extra: Any) -> str:
    body = {"type": "Subscription", "entities": [{"type": "Streetlight"}],
            "notification": {"endpoint": {"uri": uri}, "format": "keyValues"}, **extra}
    response = api.post("/subscriptions", json=body)
    assert response.status_code == 201, response.text
    return str(response.headers["Location"]).rsplit("/", 1)[1]


def lamp(entity_id: str, level: int) -> dict[str, Any]:
    return {"id": entity_id, "type": "Streetlight", "level": level}


def levels(receiver: Receiver, expected: int, linger: float = 1.5) -> list[int]:
    """The levels notified: until ``expected`` arrived, then for ``linger`` seconds more,
    so that a duplicate would be caught."""
    got: list[int] = []
    deadline = time.monotonic() + 15
    while len(got) < expected and time.monotonic() < deadline:
        got.extend(e["level"] for e in receiver.next(timeout=15)[1]["data"])
    end = time.monotonic() + linger
    while time.monotonic() < end:
        with contextlib.suppress(queue.Empty):
            got.extend(e["level"] for e in receiver.next(timeout=0.1)[1]["data"])
    return got


def test_a_subscription_made_on_one_worker_is_matched_on_another(
        workers: tuple[httpx.Client, httpx.Client], receiver: Receiver) -> None:
    a, b = workers
    subscribe(a, receiver.url)
    assert b.post("/entities", json=lamp("urn:ngsi-ld:Streetlight:1", 7)).status_code == 201
    assert levels(receiver, 1, linger=0.5) == [7]


def test_each_change_is_notified_once_whichever_worker_made_it(
        workers: tuple[httpx.Client, httpx.Client], receiver: Receiver) -> None:
    a, b = workers
    subscription = subscribe(a, receiver.url)
    entity_id = "urn:ngsi-ld:Streetlight:2"
    assert a.post("/entities", json=lamp(entity_id, 0)).status_code == 201
    for level in range(1, 30):
        worker = (a, b)[level % 2]
        response = worker.patch(f"/entities/{entity_id}/attrs", json={"level": level})
        assert response.status_code == 204, response.text
    assert levels(receiver, 30) == list(range(30))
    # Both workers delivered some; the counts they keep add up.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        status = b.get(f"/subscriptions/{subscription}").json()
        if status["notification"].get("timesSent") == 30:
            break
        time.sleep(0.2)
    assert status["notification"]["timesSent"] == 30


def test_a_subscription_deleted_on_one_worker_stops_notifying_from_the_other(
        workers: tuple[httpx.Client, httpx.Client], receiver: Receiver) -> None:
    a, b = workers
    subscription = subscribe(a, receiver.url)
    assert b.post("/entities", json=lamp("urn:ngsi-ld:Streetlight:3", 1)).status_code == 201
    assert levels(receiver, 1, linger=0) == [1]
    assert b.delete(f"/subscriptions/{subscription}").status_code == 204
    assert a.get(f"/subscriptions/{subscription}").status_code == 404
    assert a.patch("/entities/urn:ngsi-ld:Streetlight:3/attrs",
                   json={"level": 2}).status_code == 204
    assert levels(receiver, 0, linger=1.0) == []


def test_periodic_notifications_come_from_one_worker_only(
        workers: tuple[httpx.Client, httpx.Client], receiver: Receiver) -> None:
    a, b = workers
    assert a.post("/entities", json=lamp("urn:ngsi-ld:Streetlight:4", 5)).status_code == 201
    subscribe(b, receiver.url, timeInterval=1)
    got = levels(receiver, 0, linger=3.6)
    # Each worker sending would make about seven.
    assert 2 <= len(got) <= 4 and set(got) == {5}


def test_a_context_hosted_by_one_worker_serves_requests_on_another(
        workers: tuple[httpx.Client, httpx.Client]) -> None:
    a, b = workers
    context = {"@context": {"brightness": "https://example.org/city/brightness"}}
    created = a.post("/jsonldContexts", json=context)
    assert created.status_code == 201, created.text
    url = str(a.base_url.join(created.headers["Location"]))
    local_id = url.rsplit("/", 1)[1]
    link = f'<{url}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
    response = b.post("/entities", json={"id": "urn:ngsi-ld:Streetlight:5",
                                         "type": "Streetlight", "brightness": 80},
                      headers={"Link": link})
    assert response.status_code == 201, response.text
    stored = b.get("/entities/urn:ngsi-ld:Streetlight:5").json()
    assert stored["https://example.org/city/brightness"]["value"] == 80
    assert a.delete(f"/jsonldContexts/{local_id}").status_code == 204
    assert b.get(f"/jsonldContexts/{local_id}").status_code == 404


def test_overlapping_batches_on_two_workers_all_land(
        workers: tuple[httpx.Client, httpx.Client]) -> None:
    """Batches racing on the same entities from two workers are retried, not refused."""
    ids = [f"urn:ngsi-ld:Streetlight:race-{n}" for n in range(200)]

    def upsert(api: httpx.Client, writer: int) -> list[int]:
        statuses = []
        for round_ in range(5):
            body = [{"id": entity_id, "type": "Streetlight",
                     f"w{writer}": {"type": "Property", "value": round_}} for entity_id in ids]
            statuses.append(api.post("/entityOperations/upsert", params={"options": "update"},
                                     json=body).status_code)
        return statuses

    with ThreadPoolExecutor(4) as pool:
        runs = list(pool.map(upsert, [*workers, *workers], range(4)))
    assert all(status in (201, 204) for statuses in runs for status in statuses), runs
    stored = workers[0].get("/entities", params={"type": "Streetlight", "limit": 1000,
                                                 "idPattern": "race", "options": "keyValues"})
    assert len(stored.json()) == 200
    assert all({e[f"w{w}"] for w in range(4)} == {4} for e in stored.json())


def worker_pids(parent: int) -> set[int]:
    """The worker processes a ``smartcity serve --workers N`` process runs."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                command = Path(f"/proc/{entry}/cmdline").read_bytes()
                # Beside its workers, the process manager runs a resource tracker.
                if int(stat[1]) == parent and b"spawn_main" in command:
                    found.add(int(entry))
    return found


def wait_for(condition: Callable[[], bool], timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_serve_with_workers_notifies_once_and_replaces_a_dead_worker(
        receiver: Receiver, tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    with postgres_schema() as db, log.open("wb") as output:
        port = free_port()
        env = {**os.environ, "SMARTCITY_MQTT_LISTENER": "false"}
        process = subprocess.Popen(
            [sys.executable, "-m", "smartcity", "serve", "--db", db, "--port", str(port),
             "--workers", "2"], env=env, stdout=output, stderr=subprocess.STDOUT)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}/ngsi-ld/v1",
                              timeout=10) as api:
                assert wait_for(lambda: len(worker_pids(process.pid)) == 2), log.read_text()
                assert wait_for(lambda: _answers(api)), log.read_text()
                subscribe(api, receiver.url)
                entity_id = "urn:ngsi-ld:Streetlight:workers"
                assert api.post("/entities", json=lamp(entity_id, 0)).status_code == 201
                for level in range(1, 20):
                    assert api.patch(f"/entities/{entity_id}/attrs",
                                     json={"level": level}).status_code == 204
                assert levels(receiver, 20) == list(range(20))
                assert wait_for(lambda: len(worker_pids(process.pid)) == 2), \
                    (worker_pids(process.pid), log.read_text())
                first = worker_pids(process.pid)
                os.kill(min(first), signal.SIGKILL)
                assert wait_for(lambda: len(worker_pids(process.pid)) == 2
                                and worker_pids(process.pid) != first)
                assert wait_for(lambda: _answers(api))
                assert api.get(f"/entities/{entity_id}").json()["level"]["value"] == 19
        finally:
            process.terminate()
            process.wait(timeout=30)


def _answers(api: httpx.Client) -> bool:
    try:
        return api.get("/types").status_code == 200
    except httpx.HTTPError:
        return False


def test_batches_creating_the_same_entities_in_opposite_orders_never_fail(
        workers: tuple[httpx.Client, httpx.Client]) -> None:
    """Inserted in id order, racing creations wait for each other instead of deadlocking."""
    def create(api: httpx.Client, ids: list[str]) -> list[int]:
        body = [{"id": i, "type": "Streetlight"} for i in ids]
        return [api.post("/entityOperations/upsert", json=body).status_code]

    for round_ in range(10):
        ids = [f"urn:ngsi-ld:Streetlight:order-{round_}-{n}" for n in range(20)]
        with ThreadPoolExecutor(2) as pool:
            statuses = list(pool.map(create, workers, [ids, ids[::-1]]))
        assert all(s in (201, 204) for run in statuses for s in run), statuses


def test_a_batch_racing_a_delete_reports_the_deleted_entity_alone(
        workers: tuple[httpx.Client, httpx.Client]) -> None:
    a, b = workers
    ids = [f"urn:ngsi-ld:Streetlight:gone-{n}" for n in range(200)]
    assert a.post("/entityOperations/create", json=[
        {"id": i, "type": "Streetlight", "level": 0} for i in ids]).status_code == 201

    def update() -> httpx.Response:
        return a.post("/entityOperations/update", json=[
            {"id": i, "level": {"type": "Property", "value": 1}} for i in ids])

    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(update)
        assert b.delete(f"/entities/{ids[100]}").status_code == 204
        response = pending.result()
    assert response.status_code in (204, 207), response.text
    if response.status_code == 207:
        assert [e["entityId"] for e in response.json()["errors"]] == [ids[100]]


def test_one_subscription_id_is_created_once_whichever_worker_is_asked(
        workers: tuple[httpx.Client, httpx.Client], receiver: Receiver) -> None:
    body = {"id": "urn:ngsi-ld:Subscription:twice", "type": "Subscription",
            "entities": [{"type": "Streetlight"}],
            "notification": {"endpoint": {"uri": receiver.url}}}
    with ThreadPoolExecutor(2) as pool:
        statuses = sorted(pool.map(lambda api: api.post("/subscriptions", json=body)
                                   .status_code, workers))
    assert statuses == [201, 409]
