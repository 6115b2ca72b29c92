"""Notifications published to a real MQTT broker (Mosquitto on 127.0.0.1:1883)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import aiomqtt
import httpx
import orjson
import pytest

from smartcity.config import Settings
from tests.conftest import LiveServer, require_service

pytestmark = pytest.mark.services


@pytest.fixture
def base(db: str) -> Iterator[str]:
    require_service("127.0.0.1", 1883, "Mosquitto")
    with LiveServer(Settings(db=db)) as url:
        yield url + "/ngsi-ld/v1"


async def first_message(topic: str, trigger: Any) -> dict[str, Any]:
    async with aiomqtt.Client("127.0.0.1", 1883) as client:
        await client.subscribe(topic, qos=1)
        await asyncio.to_thread(trigger)
        async with asyncio.timeout(10):
            async for message in client.messages:
                payload: dict[str, Any] = orjson.loads(message.payload)  # type: ignore[arg-type]
                return payload
    raise AssertionError("no message")


async def test_a_change_is_published_on_the_subscription_topic(base: str) -> None:
    topic = f"smartcity/test/{uuid.uuid4()}"
    with httpx.Client(base_url=base, timeout=10) as api:
        response = api.post("/subscriptions", json={
            "type": "Subscription", "entities": [{"type": "Door"}],
            "notification": {"endpoint": {
                "uri": f"mqtt://127.0.0.1:1883/{topic}",
                "notifierInfo": [{"key": "MQTT-QoS", "value": "1"}],
                "receiverInfo": [{"key": "X-City", "value": "Stockholm"}]}}})
        assert response.status_code == 201, response.text

        def open_door() -> None:
            created = api.post("/entities", json={
                "id": "urn:ngsi-ld:Door:1", "type": "Door",
                "doorStatus": {"type": "Property", "value": "open"}})
            assert created.status_code == 201

        message = await first_message(topic, open_door)
    assert message["metadata"] == {"X-City": "Stockholm"}
    assert message["body"]["type"] == "Notification"
    assert message["body"]["data"][0]["doorStatus"]["value"] == "open"
