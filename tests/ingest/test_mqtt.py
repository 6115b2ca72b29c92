"""Specification of measurements over MQTT: the IoT Agents' topics, the embedded
listener by default, Mosquitto in production, bad messages rejected one by one."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from typing import Any

import aiomqtt
import httpx
import orjson
import pytest

from smartcity.config import Settings
from smartcity.ingest.mqtt import message_of
from tests.bus.test_jetstream import free_port
from tests.conftest import LiveServer, require_service


@pytest.mark.parametrize(("topic", "payload", "expected"), [
    ("/key/lamp1/attrs", b"l|5", ("key", "lamp1", "ul", b"l|5")),
    ("/key/lamp1/attrs", b' {"l": 5}', ("key", "lamp1", "json", b' {"l": 5}')),
    ("/ul/key/lamp1/attrs", b"l|5", ("key", "lamp1", "ul", b"l|5")),
    ("json/key/lamp1/attrs", b'{"l": 5}', ("key", "lamp1", "json", b'{"l": 5}')),
    ("/key/lamp1/attrs/l", b"5", ("key", "lamp1", "json", b'{"l":5}')),
    ("/ul/key/lamp1/attrs/p", b"on", ("key", "lamp1", "json", b'{"p":"on"}')),
])
def test_topics_of_the_iot_agents_name_key_device_and_encoding(
        topic: str, payload: bytes, expected: tuple[str, str, str, bytes]) -> None:
    message = message_of(topic, payload, 0)
    assert message is not None
    assert (message.apikey, message.device_id, message.encoding, message.payload) == expected


@pytest.mark.parametrize("topic", ["/key/lamp1/cmd", "/key//attrs", "city/doors", "/a/b/c/d/e"])
def test_other_topics_are_no_measurements(topic: str) -> None:
    assert message_of(topic, b"1", 0) is None


SERVICE = {"fiware-service": "mqttcity", "fiware-servicepath": "/"}
GROUP = {"resource": "/iot/d", "entity_type": "Streetlight",
         "attributes": [{"object_id": "l", "name": "illuminanceLevel", "type": "Number"}]}


def provision(base: str) -> str:
    apikey = "k" + secrets.token_hex(4)
    with httpx.Client(base_url=base, timeout=10) as iot:
        response = iot.post("/iot/services", headers=SERVICE,
                            json={"services": [{**GROUP, "apikey": apikey}]})
        assert response.status_code == 201, response.text
    return apikey


def level(base: str, device_id: str, expected: Any, timeout: float = 10) -> Any:
    """The entity's illuminanceLevel once it is ``expected`` (or the last one seen)."""
    seen = None
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=base + "/ngsi-ld/v1", timeout=10) as api:
        while time.monotonic() < deadline:
            response = api.get(f"/entities/urn:ngsi-ld:Streetlight:{device_id}",
                               headers={"NGSILD-Tenant": "mqttcity"})
            if response.status_code == 200:
                seen = response.json()["illuminanceLevel"]["value"]
                if seen == expected:
                    break
            time.sleep(0.05)
    return seen


async def publish(port: int, *messages: tuple[str, bytes]) -> None:
    async with aiomqtt.Client("127.0.0.1", port) as client:
        for topic, payload in messages:
            await client.publish(topic, payload, qos=1)


@pytest.fixture
def embedded(db: str) -> Iterator[tuple[str, int, LiveServer]]:
    port = free_port()
    live = LiveServer(Settings(db=db, mqtt_listener=True, mqtt_port=port))
    with live as url:
        yield url, port, live


async def test_measurements_published_to_the_embedded_listener_update_entities(
        embedded: tuple[str, int, LiveServer]) -> None:
    base, port, live = embedded
    apikey = await asyncio.to_thread(provision, base)
    await asyncio.to_thread(wait_connected, live)
    await publish(port, (f"/ul/{apikey}/lamp1/attrs", b"l|30"),
                  (f"/{apikey}/lamp2/attrs", orjson.dumps({"l": 40})),
                  (f"/{apikey}/lamp1/attrs", b"l|not-a-number"),
                  (f"/{apikey}/lamp3/attrs/l", b"50"))
    assert await asyncio.to_thread(level, base, "lamp1", 30) == 30
    assert await asyncio.to_thread(level, base, "lamp2", 40) == 40
    assert await asyncio.to_thread(level, base, "lamp3", 50) == 50
    letters = (await asyncio.to_thread(httpx.get, base + "/iot/deadletters")).json()
    assert [d["payload"] for d in letters if d["device_id"] == "lamp1"] == ["l|not-a-number"]


def wait_connected(live: LiveServer) -> None:
    """Until the platform has subscribed to the device topics."""
    southbound = live.server.config.app.state.southbound
    deadline = time.monotonic() + 10
    while not southbound.connected.is_set():
        assert time.monotonic() < deadline, "the platform never subscribed"
        time.sleep(0.05)


async def test_measurements_through_mosquitto_reach_the_platform(db: str) -> None:
    require_service("127.0.0.1", 1883, "Mosquitto")
    settings = Settings(db=db, iot_mqtt="mqtt://127.0.0.1:1883",
                        event_bus_prefix="t" + secrets.token_hex(3))
    live = LiveServer(settings)
    with live as base:
        apikey = await asyncio.to_thread(provision, base)
        device_id = "lamp" + secrets.token_hex(3)
        deadline = time.monotonic() + 10
        found = None
        while found != 7 and time.monotonic() < deadline:
            # The platform's subscription may land after the first publication.
            await publish(1883, (f"/ul/{apikey}/{device_id}/attrs", b"l|7"))
            found = await asyncio.to_thread(level, base, device_id, 7, 1.0)
        assert found == 7
