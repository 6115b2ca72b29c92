"""The embedded MQTT listener: a broker beside `smartcity serve` (amqtt), so that MQTT
notifications and devices work on a laptop with nothing else installed.

It runs in a process of its own: a broker's work (parsing, routing every packet) would
otherwise share the platform's event loop and core with the ingestion of what it routes
(measured: ingestion through it rose from 3,200 to 4,400 messages/s once it moved out).
It dies with the platform. Production runs a real broker (Mosquitto) instead; amqtt
speaks MQTT 3.1.1 only. The listener binds loopback by default, on a port apart from
the standard 1883 so that it never collides with a real broker on the same machine. It
accepts anonymous clients: keep it on loopback until authentication covers MQTT.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import time
from typing import Any

log = logging.getLogger(__name__)
START_TIMEOUT = 20.0


def _serve(host: str, port: int, parent: int, ready: Any) -> None:
    """The broker process: serve until the platform stops it or is gone."""
    from amqtt.broker import Broker

    # Ctrl-C reaches every process of the terminal's group: the platform stops us itself,
    # after its own MQTT clients are done.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    async def run() -> None:
        config: dict[str, Any] = {
            "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
            # Only anonymous access: amqtt's default event, packet and $SYS plugins log
            # every packet and publish broker statistics nobody asked for.
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin":
                        {"allow_anonymous": True}},
        }
        broker = Broker(config)
        await broker.start()
        ready.set()
        while os.getppid() == parent:  # orphaned: the platform died without stopping us
            await asyncio.sleep(1.0)
        await broker.shutdown()

    logging.getLogger("amqtt").setLevel(logging.WARNING)
    asyncio.run(run())


class EmbeddedBroker:
    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._process: multiprocessing.process.BaseProcess | None = None

    async def start(self) -> None:
        # A fresh interpreter: forking a process that runs an event loop and threads
        # would copy them half-working.
        context = multiprocessing.get_context("spawn")
        ready = context.Event()
        self._process = context.Process(target=_serve, name="smartcity-mqtt", daemon=True,
                                        args=(self.host, self.port, os.getpid(), ready))
        self._process.start()
        await asyncio.to_thread(self._wait_ready, ready)
        log.info("embedded MQTT listener on mqtt://%s:%d", self.host, self.port)

    def _wait_ready(self, ready: Any) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while not ready.wait(0.05):
            assert self._process is not None
            if not self._process.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the embedded MQTT listener on {self.host}:{self.port} "
                                   "did not start")

    async def stop(self) -> None:
        process = self._process
        if process is None or not process.is_alive():
            return
        assert process.pid is not None
        os.kill(process.pid, signal.SIGTERM)
        await asyncio.to_thread(process.join, 10)
        if process.is_alive():
            process.kill()
            await asyncio.to_thread(process.join, 5)
