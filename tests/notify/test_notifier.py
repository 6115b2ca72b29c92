"""Notifications reach a real HTTP receiver, in order, without slowing writes."""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from smartcity.app import build_platform
from smartcity.config import Settings
from smartcity.core.ngsild.normalize import parse_entity
from tests.conftest import LiveServer, Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    endpoint = Receiver()
    yield endpoint
    endpoint.close()


@pytest.fixture
def api(db: str) -> Iterator[httpx.Client]:
    with LiveServer(Settings(db=db)) as url, \
            httpx.Client(base_url=url + "/ngsi-ld/v1", timeout=10) as client:
        yield client


def subscribe(api: httpx.Client, uri: str, **extra: Any) -> str:
    body = {"type": "Subscription", "entities": [{"type": "Streetlight"}],
            "notification": {"endpoint": {"uri": uri}}, **extra}
    response = api.post("/subscriptions", json=body)
    assert response.status_code == 201, response.text
    return response.headers["Location"].rsplit("/", 1)[1]


def lamp(power: str) -> dict[str, Any]:
    return {"id": "urn:ngsi-ld:Streetlight:1", "type": "Streetlight",
            "powerState": {"type": "Property", "value": power}}


def test_a_change_is_posted_to_the_subscriber(api: httpx.Client, receiver: Receiver) -> None:
    subscribe(api, receiver.url)
    assert api.post("/entities", json=lamp("on")).status_code == 201
    headers, body = receiver.next()
    assert body["type"] == "Notification"
    assert body["data"][0]["powerState"]["value"] == "on"
    assert headers["Content-Type"] == "application/json"
    assert "json-ld#context" in headers["Link"]


def test_notifications_keep_the_order_of_the_changes(api: httpx.Client,
                                                     receiver: Receiver) -> None:
    subscribe(api, receiver.url)
    assert api.post("/entities", json=lamp("s0")).status_code == 201
    for n in range(1, 6):
        patch = {"powerState": {"type": "Property", "value": f"s{n}"}}
        assert api.patch("/entities/urn:ngsi-ld:Streetlight:1/attrs",
                         json=patch).status_code == 204
    seen = [receiver.next()[1]["data"][0]["powerState"]["value"] for _ in range(6)]
    assert seen == [f"s{n}" for n in range(6)]


def test_a_dead_endpoint_is_counted_failed_and_never_blocks_writes(
        api: httpx.Client, receiver: Receiver) -> None:
    dead = subscribe(api, "http://127.0.0.1:9/nowhere")
    subscribe(api, receiver.url)
    start = time.monotonic()
    assert api.post("/entities", json=lamp("on")).status_code == 201
    assert time.monotonic() - start < 1.0
    assert receiver.next()[1]["data"][0]["id"] == "urn:ngsi-ld:Streetlight:1"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status = api.get(f"/subscriptions/{dead}").json()
        if status.get("notification", {}).get("timesFailed", status.get("timesFailed")):
            break
        time.sleep(0.2)
    else:
        pytest.fail("the dead endpoint was never counted as failed")


async def test_an_in_process_subscriber_gets_matching_changes(db: str) -> None:
    platform = await build_platform(Settings(db=db))
    got: list[dict[str, Any]] = []
    d = "https://uri.etsi.org/ngsi-ld/default-context/"
    platform.notifier.listen({"id": "urn:lighting:lamps", "tenant": "",
                              "entities": [{"type": d + "Streetlight"}],
                              "watchedAttributes": [d + "powerState"],
                              "notification": {"endpoint": {"uri": "python:lighting"},
                                               "format": "keyValues"},
                              "isActive": True, "context": None}, got.append)
    terms = platform.compiler.core
    await platform.entities.create("", parse_entity(lamp("on"), terms))
    other = {"id": "urn:ngsi-ld:Bench:1", "type": "Bench"}
    await platform.entities.create("", parse_entity(other, terms))
    assert [n["data"] for n in got] == [[{"id": "urn:ngsi-ld:Streetlight:1",
                                          "type": "Streetlight", "powerState": "on"}]]
    await platform.store.close()
    await platform.notifier.stop()
    await platform.store.close()


def test_a_time_interval_subscription_is_told_every_interval(api: httpx.Client,
                                                             receiver: Receiver) -> None:
    assert api.post("/entities", json=lamp("on")).status_code == 201
    subscribe(api, receiver.url, timeInterval=1)
    first = receiver.next(timeout=5)[1]
    second = receiver.next(timeout=5)[1]
    for body in (first, second):
        assert [e["id"] for e in body["data"]] == ["urn:ngsi-ld:Streetlight:1"]
    assert first["id"] != second["id"]


def test_a_notification_can_inline_the_linked_entity(api: httpx.Client,
                                                     receiver: Receiver) -> None:
    group = {"id": "urn:ngsi-ld:StreetlightGroup:k", "type": "StreetlightGroup",
             "name": {"type": "Property", "value": "Kungsholmen"}}
    assert api.post("/entities", json=group).status_code == 201
    subscribe(api, receiver.url, notification={
        "endpoint": {"uri": receiver.url}, "join": "inline", "joinLevel": 1})
    member = {**lamp("on"), "refGroup": {"type": "Relationship", "object": group["id"]}}
    assert api.post("/entities", json=member).status_code == 201
    data = receiver.next()[1]["data"]
    assert data[0]["refGroup"]["entity"]["name"]["value"] == "Kungsholmen"


def test_a_q_on_linked_entities_notifies_only_when_the_linked_entity_matches(
        api: httpx.Client, receiver: Receiver) -> None:
    for device, level in (("low", 0.3), ("full", 0.95)):
        assert api.post("/entities", json={
            "id": f"urn:ngsi-ld:Device:{device}", "type": "Device",
            "batteryLevel": {"type": "Property", "value": level}}).status_code == 201
    subscribe(api, receiver.url, entities=[{"type": "Vehicle"}],
              q="isConnectedTo{batteryLevel}<0.5")
    for vehicle, device in (("ok", "full"), ("low", "low")):
        assert api.post("/entities", json={
            "id": f"urn:ngsi-ld:Vehicle:{vehicle}", "type": "Vehicle",
            "isConnectedTo": {"type": "Relationship",
                              "object": f"urn:ngsi-ld:Device:{device}"}}).status_code == 201
    assert receiver.next()[1]["data"][0]["id"] == "urn:ngsi-ld:Vehicle:low"
    with pytest.raises(queue.Empty):
        receiver.next(timeout=0.5)
