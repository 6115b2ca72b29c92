"""Shared fixtures: a real server on a loopback socket, and a client for it."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import secrets
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
import uvicorn

from smartcity.app import create_app
from smartcity.config import Settings

# Many test servers run at once: none opens the embedded MQTT listener on its fixed port
# unless a test asks for it (tests/mqtt/ does, on a free port).
os.environ["SMARTCITY_MQTT_LISTENER"] = "false"
# The NGSI-LD behaviour is specified without access control (as the ETSI suite runs it);
# tests/security/ turn it on (auth="on") and check every path with it.
os.environ["SMARTCITY_AUTH"] = "none"


class LiveServer:
    """uvicorn serving the app on 127.0.0.1 at a free port, in a thread."""

    def __init__(self, settings: Settings) -> None:
        config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=0,
                                log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    @property
    def platform(self) -> Any:
        """The server's Platform (its services, store and bus), once started."""
        return self.server.config.app.state.platform

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


# The PostgreSQL server the tests use; each test (or module) gets a schema of its own in
# its ``test`` database, dropped afterwards.
POSTGRES_URL = os.environ.get("SMARTCITY_TEST_POSTGRES", "postgresql://127.0.0.1:5432/test")
BACKENDS = ["sqlite", "postgres"]


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A database URL whose search path starts at a fresh, empty schema."""
    parts = urlsplit(POSTGRES_URL)
    require_service(parts.hostname or "127.0.0.1", parts.port or 5432, "PostgreSQL")
    schema = "t_" + secrets.token_hex(6)

    administer(f"CREATE SCHEMA {schema}")
    try:
        yield f"{POSTGRES_URL}?search_path={schema},public"
    finally:
        administer(f"DROP SCHEMA {schema} CASCADE")


def administer(sql: str, url: str = POSTGRES_URL) -> None:
    """Run SQL on PostgreSQL from any test code, async tests included (on a thread of
    its own: the test's event loop may be running)."""
    async def run() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()
    with ThreadPoolExecutor(1) as thread:
        thread.submit(asyncio.run, run()).result()


@contextmanager
def database(backend: str, directory: Path) -> Iterator[str]:
    """The ``db`` setting of a fresh, empty database of ``backend``."""
    if backend == "sqlite":
        yield str(directory / "city.db")
        return
    with postgres_schema() as url:
        yield url


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database on each backend in turn."""
    with database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def settings(db: str) -> Settings:
    return Settings(db=db, max_body_bytes=64 * 1024)


@pytest.fixture
def base_url(settings: Settings) -> Iterator[str]:
    with LiveServer(settings) as url:
        yield url


@pytest.fixture
def client(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url + "/ngsi-ld/v1", timeout=10) as http:
        yield http


def require_service(host: str, port: int, name: str) -> None:
    """Skip a test whose real service is not running, unless CI demands every service."""
    import socket

    try:
        with socket.create_connection((host, port), timeout=1):
            return
    except OSError:
        if os.environ.get("SMARTCITY_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{name} is not reachable at {host}:{port}")
        pytest.skip(f"{name} is not running at {host}:{port}")


@pytest.fixture(scope="module", params=BACKENDS)
def module_db(tmp_path_factory: pytest.TempPathFactory,
              request: pytest.FixtureRequest) -> Iterator[str]:
    """A database shared by a test module, on each backend in turn."""
    directory = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    with database(request.param, directory) as db:
        yield db


@pytest.fixture(scope="module")
def server(module_db: str) -> Iterator[str]:
    """One server per test module and backend (64 KiB body limit, as ``settings``); the
    module's tests keep apart by using fresh entity ids or tenants. Yields the NGSI-LD
    API base URL."""
    with LiveServer(Settings(db=module_db, max_body_bytes=64 * 1024)) as url:
        yield url + "/ngsi-ld/v1"


@pytest.fixture
def api(server: str) -> Iterator[httpx.Client]:
    """A client of its own for each test: a failure cannot leak into the next test."""
    # Plain HTTP on loopback: verify=False skips loading CA certificates (16 ms a client).
    with httpx.Client(base_url=server, timeout=10, verify=False) as http:
        yield http


class Receiver:
    """An HTTP endpoint on 127.0.0.1 that keeps what it is sent."""

    def __init__(self, status: int = 200) -> None:
        self.received: queue.Queue[tuple[dict[str, str], dict[str, Any]]] = queue.Queue()
        self.status = status
        received, owner = self.received, self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                received.put((dict(self.headers), json.loads(self.rfile.read(length))))
                self.send_response(owner.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/notify"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def next(self, timeout: float = 5.0) -> tuple[dict[str, str], dict[str, Any]]:
        return self.received.get(timeout=timeout)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
