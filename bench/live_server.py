"""A smartcity server in a child process, for the benchmarks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(db: Path | str, port: int, workers: int = 1,
                 settings: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """``smartcity serve``; ``settings`` are SMARTCITY_* environment variables. Access
    control is off unless they turn it on (SMARTCITY_AUTH=on): the other benchmarks
    measure the core (bench/security_cost.py measures what access control adds)."""
    env = {**os.environ, "SMARTCITY_LOG_LEVEL": "warning", "SMARTCITY_MQTT_LISTENER": "false",
           "SMARTCITY_AUTH": "none", **(settings or {})}
    proc = subprocess.Popen([sys.executable, "-m", "smartcity", "serve", "--port", str(port),
                             "--db", str(db), "--workers", str(workers)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the server did not start")
