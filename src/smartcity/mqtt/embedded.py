"""The embedded MQTT listener: a broker inside `smartcity serve` (amqtt), so that MQTT
notifications (and, later, devices) work on a laptop with nothing else installed.

Production runs a real broker (Mosquitto) instead; amqtt speaks MQTT 3.1.1 only. The
listener binds loopback by default, on a port apart from the standard 1883 so that it
never collides with a real broker on the same machine. It accepts anonymous clients:
keep it on loopback until authentication covers MQTT.
"""

from __future__ import annotations

import logging
from typing import Any

from amqtt.broker import Broker

log = logging.getLogger(__name__)


class EmbeddedBroker:
    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        config: dict[str, Any] = {
            "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
            # Only anonymous access: amqtt's default event, packet and $SYS plugins log
            # every packet and publish broker statistics nobody asked for.
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin":
                        {"allow_anonymous": True}},
        }
        self._broker = Broker(config)

    async def start(self) -> None:
        await self._broker.start()
        log.info("embedded MQTT listener on mqtt://%s:%d", self.host, self.port)

    async def stop(self) -> None:
        await self._broker.shutdown()
