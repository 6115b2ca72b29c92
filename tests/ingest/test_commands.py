"""Specification of commands to actuators: a written command attribute reaches the device
over HTTP or MQTT, and the entity keeps its status (PENDING, OK, ERROR) and result."""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import aiomqtt
import httpx
import pytest

from smartcity.config import Settings
from smartcity.ingest.commands import command_payload, parse_reply
from smartcity.ingest.provisioning import Device, ServiceGroup
from smartcity.ingest.registry import Provisioned
from tests.bus.test_jetstream import free_port
from tests.conftest import LiveServer

SERVICE = {"fiware-service": "cmdcity", "fiware-servicepath": "/"}
UL_GROUP = ServiceGroup(apikey="k", resource="/iot/d")
JSON_GROUP = ServiceGroup(apikey="k", resource="/iot/json")


def lamp(group: ServiceGroup) -> Provisioned:
    return Provisioned("", "/", Device(device_id="lamp1"), group)


def test_commands_are_sent_in_the_language_the_device_speaks() -> None:
    assert command_payload(lamp(UL_GROUP), "dim", 50) == b"lamp1@dim|50"
    assert command_payload(lamp(UL_GROUP), "say", "hej") == b"lamp1@say|hej"
    assert command_payload(lamp(JSON_GROUP), "dim", 50) == b'{"dim":50}'


@pytest.mark.parametrize(("payload", "expected"), [
    (b"lamp1@dim|dimmed to 50", {"dim": "dimmed to 50"}),
    (b"dim|done", {"dim": "done"}),
    (b'{"dim": "done", "on": true}', {"dim": "done", "on": "true"}),
    (b"lamp2@dim|done", {}),  # another device's answer
    (b"{broken", {}),
])
def test_answers_are_read_in_either_language(payload: bytes, expected: dict[str, str]) -> None:
    assert parse_reply(payload, "lamp1") == expected


class DeviceEndpoint:
    """An actuator on HTTP: answers commands with ``answer`` (and ``status``)."""

    def __init__(self, answer: bytes, status: int = 200) -> None:
        self.received: list[bytes] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                received.append(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/lamp"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def platform(db: str) -> Iterator[tuple[str, int]]:
    port = free_port()
    settings = Settings(db=db, mqtt_listener=True, mqtt_port=port, command_timeout=1.0)
    live = LiveServer(settings)
    with live as url:
        southbound = live.server.config.app.state.southbound
        deadline = time.monotonic() + 10
        while not southbound.connected.is_set():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        yield url, port


def provision(base: str, **device: Any) -> str:
    apikey = "k" + secrets.token_hex(4)
    with httpx.Client(base_url=base, timeout=10) as iot:
        assert iot.post("/iot/services", headers=SERVICE, json={"services": [{
            "apikey": apikey, "resource": "/iot/d", "entity_type": "Streetlight",
            "commands": [{"name": "dim", "type": "command"}]}]}).status_code == 201
        assert iot.post("/iot/devices", headers=SERVICE, json={"devices": [
            {"apikey": apikey, **device}]}).status_code == 201
        # The entity exists once the device has reported.
        assert iot.post("/iot/d", params={"k": apikey, "i": device["device_id"]},
                        content="powerState|on",
                        headers={"Content-Type": "text/plain"}).status_code == 200
    return apikey


def command(base: str, device_id: str, value: Any) -> None:
    with httpx.Client(base_url=base + "/ngsi-ld/v1", timeout=10) as api:
        response = api.patch(f"/entities/urn:ngsi-ld:Streetlight:{device_id}/attrs",
                             json={"dim": {"type": "Property", "value": value}},
                             headers={"NGSILD-Tenant": "cmdcity"})
        assert response.status_code == 204, response.text


def status(base: str, device_id: str, wanted: str, timeout: float = 10) -> tuple[Any, Any]:
    """(status, info) of the dim command once the status is ``wanted``."""
    deadline = time.monotonic() + timeout
    found: tuple[Any, Any] = (None, None)
    with httpx.Client(base_url=base + "/ngsi-ld/v1", timeout=10) as api:
        while time.monotonic() < deadline:
            entity = api.get(f"/entities/urn:ngsi-ld:Streetlight:{device_id}",
                             headers={"NGSILD-Tenant": "cmdcity"}).json()
            found = (entity.get("dim_status", {}).get("value"),
                     entity.get("dim_info", {}).get("value"))
            if found[0] == wanted:
                break
            time.sleep(0.05)
    return found


def test_a_command_to_an_http_device_is_ok_with_its_answer(
        platform: tuple[str, int]) -> None:
    base, _ = platform
    endpoint = DeviceEndpoint(b"lamp-h@dim|dimmed to 40")
    try:
        provision(base, device_id="lamp-h", transport="HTTP", endpoint=endpoint.url)
        command(base, "lamp-h", 40)
        assert status(base, "lamp-h", "OK") == ("OK", "dimmed to 40")
        assert endpoint.received == [b"lamp-h@dim|40"]
    finally:
        endpoint.close()


def test_a_command_the_http_device_refuses_is_an_error(platform: tuple[str, int]) -> None:
    base, _ = platform
    endpoint = DeviceEndpoint(b"broken", status=500)
    try:
        provision(base, device_id="lamp-x", transport="HTTP", endpoint=endpoint.url)
        command(base, "lamp-x", 10)
        assert status(base, "lamp-x", "ERROR")[0] == "ERROR"
    finally:
        endpoint.close()


async def test_a_command_over_mqtt_is_pending_until_the_device_answers(
        platform: tuple[str, int]) -> None:
    base, port = platform
    apikey = await asyncio.to_thread(provision, base, device_id="lamp-m", transport="MQTT")
    async with aiomqtt.Client("127.0.0.1", port) as device:
        await device.subscribe(f"/{apikey}/lamp-m/cmd", qos=1)
        await asyncio.to_thread(command, base, "lamp-m", 70)
        async with asyncio.timeout(10):
            received = await anext(aiter(device.messages))
        assert received.payload == b"lamp-m@dim|70"
        assert (await asyncio.to_thread(status, base, "lamp-m", "PENDING"))[0] == "PENDING"
        await device.publish(f"/{apikey}/lamp-m/cmdexe", b"lamp-m@dim|at 70", qos=1)
        assert await asyncio.to_thread(status, base, "lamp-m", "OK") == ("OK", "at 70")


async def test_a_command_nobody_answers_expires_as_an_error(
        platform: tuple[str, int]) -> None:
    base, _ = platform
    await asyncio.to_thread(provision, base, device_id="lamp-q", transport="MQTT")
    await asyncio.to_thread(command, base, "lamp-q", 5)
    assert await asyncio.to_thread(status, base, "lamp-q", "ERROR") == ("ERROR", "expired")
