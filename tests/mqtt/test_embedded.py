"""Specification of the embedded MQTT listener: with nothing else installed, MQTT
clients connect to `smartcity serve` itself and MQTT notifications reach them."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import orjson
import pytest

from smartcity.config import Settings
from tests.conftest import LiveServer


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[tuple[str, int]]:
    port = free_port()
    settings = Settings(db=str(tmp_path / "city.db"), mqtt_listener=True, mqtt_port=port)
    with LiveServer(settings) as url:
        yield url + "/ngsi-ld/v1", port


async def test_a_client_of_the_embedded_listener_gets_mqtt_notifications(
        platform: tuple[str, int]) -> None:
    base, port = platform
    topic = f"city/doors/{uuid.uuid4().hex}"
    with httpx.Client(base_url=base, timeout=10) as api:
        created = api.post("/subscriptions", json={
            "type": "Subscription", "entities": [{"type": "Door"}],
            "notification": {"endpoint": {"uri": f"mqtt://127.0.0.1:{port}/{topic}",
                                          "notifierInfo": [{"key": "MQTT-QoS",
                                                            "value": "1"}]}}})
        assert created.status_code == 201, created.text
        async with aiomqtt.Client("127.0.0.1", port) as client:
            await client.subscribe(topic, qos=1)

            def open_door() -> None:
                response = api.post("/entities", json={
                    "id": "urn:ngsi-ld:Door:1", "type": "Door",
                    "doorStatus": {"type": "Property", "value": "open"}})
                assert response.status_code == 201
            await asyncio.to_thread(open_door)
            async with asyncio.timeout(10):
                message = await anext(aiter(client.messages))
    payload: dict[str, Any] = orjson.loads(message.payload)  # type: ignore[arg-type]
    assert payload["body"]["data"][0]["doorStatus"]["value"] == "open"


async def test_devices_can_talk_to_each_other_through_it(platform: tuple[str, int]) -> None:
    _, port = platform
    async with aiomqtt.Client("127.0.0.1", port) as listener, \
            aiomqtt.Client("127.0.0.1", port) as sensor:
        await listener.subscribe("city/sensors/#")
        await sensor.publish("city/sensors/1/attrs", b'{"t": 21.5}')
        async with asyncio.timeout(10):
            message = await anext(aiter(listener.messages))
    assert (str(message.topic), message.payload) == ("city/sensors/1/attrs", b'{"t": 21.5}')
