"""MQTT notification endpoints: ``mqtt://host[:port]/topic`` and ``mqtts://...``.

The topic is the URI's path; the QoS comes from the endpoint's notifierInfo
(``MQTT-QoS``, 0 by default) and the MQTT version from ``MQTT-Version`` (clause 7.3).
One connection is kept per broker and reopened when it drops.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from typing import Any
from urllib.parse import unquote, urlsplit

import aiomqtt
import orjson

from smartcity.core.ngsild.subscription_model import Subscription


def _info(endpoint: dict[str, Any], key: str) -> str | None:
    for item in endpoint.get("notifierInfo") or ():
        if item.get("key") == key:
            return str(item.get("value"))
    return None


class MqttSender:
    """Publishes notifications; safe to share between concurrent deliveries."""

    def __init__(self) -> None:
        self._clients: dict[tuple[str, int, bool, str | None, str | None],
                            aiomqtt.Client] = {}
        self._lock = asyncio.Lock()

    async def send(self, record: Subscription, body: dict[str, Any]) -> None:
        endpoint = record["notification"]["endpoint"]
        uri = urlsplit(endpoint["uri"])
        secure = uri.scheme.lower() == "mqtts"
        topic = unquote(uri.path.lstrip("/"))
        if not topic or not uri.hostname:
            raise ValueError(f"{endpoint['uri']} names no broker or topic")
        qos = int(_info(endpoint, "MQTT-QoS") or 0)
        key = (uri.hostname, uri.port or (8883 if secure else 1883), secure,
               unquote(uri.username) if uri.username else None,
               unquote(uri.password) if uri.password else None)
        message = {"metadata": {i["key"]: i["value"]
                                for i in endpoint.get("receiverInfo") or ()},
                   "body": body}
        client = await self._client(key)
        try:
            await client.publish(topic, orjson.dumps(message), qos=min(max(qos, 0), 2))
        except aiomqtt.MqttError:
            await self._forget(key)
            raise

    async def _client(self, key: tuple[str, int, bool, str | None, str | None]
                      ) -> aiomqtt.Client:
        async with self._lock:
            client = self._clients.get(key)
            if client is None:
                host, port, secure, username, password = key
                client = aiomqtt.Client(host, port, username=username, password=password,
                                        tls_context=ssl.create_default_context()
                                        if secure else None, timeout=5)
                await client.__aenter__()
                self._clients[key] = client
            return client

    async def _forget(self, key: tuple[str, int, bool, str | None, str | None]) -> None:
        async with self._lock:
            client = self._clients.pop(key, None)
        if client is not None:
            # The connection may already be gone; closing it is then all that is left.
            with contextlib.suppress(aiomqtt.MqttError, OSError):
                await client.__aexit__(None, None, None)

    async def close(self) -> None:
        for key in list(self._clients):
            await self._forget(key)
