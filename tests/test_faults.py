"""Faults, tested: a worker killed in the middle of a batch, and PostgreSQL restarted
under running workers."""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from smartcity.config import Settings
from tests.bus.test_jetstream import free_port
from tests.conftest import LiveServer, postgres_schema

pytestmark = pytest.mark.services
ATTRIBUTES = 20


class Worker:
    """``smartcity serve`` in a process of its own, which a test may kill."""

    def __init__(self, db: str) -> None:
        self.application = "worker-" + str(free_port())
        self.db = f"{db}&application_name={self.application}"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/ngsi-ld/v1"

    def start(self) -> None:
        env = {**os.environ, "SMARTCITY_MQTT_LISTENER": "false"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "smartcity", "serve", "--db", self.db, "--port",
             str(self.port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/types", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("the worker did not start")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)


@pytest.fixture
def worker() -> Iterator[Worker]:
    with postgres_schema() as db:
        process = Worker(db)
        process.start()
        yield process
        process.kill()


def batch(prefix: str, size: int) -> list[dict[str, Any]]:
    return [{"id": f"urn:ngsi-ld:Streetlight:{prefix}-{n}", "type": "Streetlight",
             **{f"a{k}": {"type": "Property", "value": n * k} for k in range(ATTRIBUTES)}}
            for n in range(size)]


async def stored(db: str, prefix: str) -> list[int]:
    """How many attributes each stored entity of the batch holds."""
    conn = await asyncpg.connect(db)
    try:
        rows = await conn.fetch("SELECT doc FROM entities WHERE id LIKE $1",
                                f"urn:ngsi-ld:Streetlight:{prefix}-%")
    finally:
        await conn.close()
    return [len(orjson.loads(doc)["attrs"]) for (doc,) in rows]


async def in_transaction(db: str, application: str, timeout: float = 20) -> bool:
    """Wait until a connection of ``application`` is inside a write transaction."""
    conn = await asyncpg.connect(db)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND "
                    "xact_start IS NOT NULL AND backend_xid IS NOT NULL", application):
                return True
            await asyncio.sleep(0.001)
        return False
    finally:
        await conn.close()


async def test_a_worker_killed_in_the_middle_of_a_batch_leaves_no_half_written_entity(
        worker: Worker) -> None:
    size = 2000
    thread = threading.Thread(target=lambda: _post_quietly(
        worker.url + "/entityOperations/upsert", batch("killed", size)))
    thread.start()
    # Killed once its transaction has written (it holds a transaction id), before commit.
    assert await in_transaction(worker.db, worker.application)
    worker.kill()
    thread.join(timeout=30)
    assert await stored(worker.db, "killed") == []
    worker.start()  # the database serves the next worker as it was
    response = httpx.post(worker.url + "/entityOperations/upsert", json=batch("again", size),
                          timeout=60)
    assert response.status_code == 201, response.text
    assert await stored(worker.db, "again") == [ATTRIBUTES] * size
    count = httpx.get(worker.url + "/entities", params={"type": "Streetlight",
                                                       "count": "true", "limit": 1})
    assert count.headers["NGSILD-Results-Count"] == str(size)


def _post_quietly(url: str, body: Any) -> None:
    with contextlib.suppress(httpx.HTTPError):  # the worker was killed under it
        httpx.post(url, json=body, timeout=30)


def restart_postgresql() -> None:
    """Restart the local PostgreSQL cluster (as the machine's services were started)."""
    versions = [os.path.basename(p) for p in glob.glob("/etc/postgresql/*")]
    if not versions or shutil.which("pg_ctlcluster") is None:
        pytest.skip("no pg_ctlcluster to restart PostgreSQL with")
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", versions[0], "main",
                    "restart"], check=True, capture_output=True, timeout=60)


def test_workers_serve_again_after_postgresql_restarts() -> None:
    with postgres_schema() as db, LiveServer(Settings(db=db)) as url, \
            httpx.Client(base_url=url + "/ngsi-ld/v1", timeout=10) as api:
        lamp = {"id": "urn:ngsi-ld:Streetlight:before", "type": "Streetlight", "level": 1}
        assert api.post("/entities", json=lamp).status_code == 201
        restart_postgresql()
        answers = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            response = api.get("/entities/urn:ngsi-ld:Streetlight:before")
            answers.append(response.status_code)
            if response.status_code == 200:
                break
            # Meanwhile the worker says it is unavailable, not that it broke.
            assert response.status_code == 503, response.text
            time.sleep(0.2)
        assert answers[-1] == 200
        for n in range(20):
            lamp = {"id": f"urn:ngsi-ld:Streetlight:after-{n}", "type": "Streetlight"}
            assert api.post("/entities", json=lamp).status_code == 201
        count = api.get("/entities", params={"type": "Streetlight", "count": "true"})
        assert count.headers["NGSILD-Results-Count"] == "21"
