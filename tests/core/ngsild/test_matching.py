"""Which subscriptions a change notifies, and with what."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from smartcity.core.events import EntityChange
from smartcity.core.ngsild.context import ContextCompiler, ContextDocuments
from smartcity.core.ngsild.matching import (
    SubscriptionIndex,
    attribute_changes,
    compile_subscription,
    outbox_entries,
)

D = "https://uri.etsi.org/ngsi-ld/default-context/"
TERMS = ContextCompiler(ContextDocuments()).core
NOW = "2026-01-01T00:00:00.000000Z"


def lamp(entity_id: str = "urn:ngsi-ld:Streetlight:1", **values: Any) -> dict[str, Any]:
    return {"id": entity_id, "type": [D + "Streetlight"], "createdAt": NOW, "modifiedAt": NOW,
            "attrs": {D + k: [{"type": "Property", "value": v}] for k, v in values.items()}}


def subscription(sub_id: str = "urn:ngsi-ld:Subscription:1", **extra: Any) -> dict[str, Any]:
    return {"id": sub_id, "tenant": "", "entities": [{"type": D + "Streetlight"}],
            "notification": {"endpoint": {"uri": "http://127.0.0.1:9/n"}},
            "isActive": True, "context": None, **extra}


def index_of(*subs: dict[str, Any]) -> SubscriptionIndex:
    index = SubscriptionIndex()
    for sub in subs:
        index.put(compile_subscription(sub, TERMS))
    return index


def notified(index: SubscriptionIndex, *changes: EntityChange) -> list[dict[str, Any]]:
    return [dict(orjson.loads(e.payload), to=e.subscription_id)
            for e in outbox_entries(index, list(changes), lambda: NOW)]


def created(entity: dict[str, Any]) -> EntityChange:
    return EntityChange("created", "", entity["id"], entity, None, NOW)


def updated(before: dict[str, Any], after: dict[str, Any]) -> EntityChange:
    return EntityChange("updated", "", after["id"], after, before, NOW)


def test_default_triggers_notify_creation_and_changed_attributes() -> None:
    index = index_of(subscription())
    assert len(notified(index, created(lamp(power="on")))) == 1
    assert len(notified(index, updated(lamp(power="on"), lamp(power="off")))) == 1
    assert notified(index, updated(lamp(power="on"), lamp(power="on"))) == []


def test_watched_attributes_limit_what_notifies() -> None:
    index = index_of(subscription(watchedAttributes=[D + "power"]))
    assert notified(index, updated(lamp(power="on", level=1), lamp(power="on", level=2))) == []
    assert len(notified(index, updated(lamp(power="on"), lamp(power="off")))) == 1


def test_other_types_and_tenants_are_not_notified() -> None:
    index = index_of(subscription())
    other = lamp()
    other["type"] = [D + "Bench"]
    assert notified(index, created(other)) == []
    assert notified(index, EntityChange("created", "elsewhere", "x", lamp(), None, NOW)) == []


def test_q_filters_on_the_new_state() -> None:
    index = index_of(subscription(q='power=="off"'))
    assert notified(index, updated(lamp(power="off"), lamp(power="on"))) == []
    assert len(notified(index, updated(lamp(power="on"), lamp(power="off")))) == 1


def test_explicit_triggers_pick_the_kind_of_change() -> None:
    index = index_of(subscription(notificationTrigger=["entityDeleted"]))
    assert notified(index, created(lamp(power="on"))) == []
    gone = notified(index, EntityChange("deleted", "", "urn:ngsi-ld:Streetlight:1", None,
                                        lamp(power="on"), NOW))
    assert gone[0]["data"][0]["id"] == "urn:ngsi-ld:Streetlight:1"
    assert "deletedAt" in gone[0]["data"][0]


def test_paused_and_expired_subscriptions_are_quiet() -> None:
    index = index_of(subscription("urn:a", isActive=False),
                     subscription("urn:b", expiresAt="2020-01-01T00:00:00Z"))
    assert notified(index, created(lamp(power="on"))) == []


def test_notification_shows_the_chosen_attributes_in_the_chosen_format() -> None:
    sub = subscription(notification={"endpoint": {"uri": "http://x"}, "format": "keyValues",
                                     "attributes": [D + "power"]})
    body = notified(index_of(sub), created(lamp(power="on", level=3)))[0]
    assert body["type"] == "Notification"
    assert body["subscriptionId"] == sub["id"]
    assert body["data"] == [{"id": "urn:ngsi-ld:Streetlight:1", "type": "Streetlight",
                             "power": "on"}]


def test_show_changes_adds_the_previous_value() -> None:
    sub = subscription(notification={"endpoint": {"uri": "http://x"}, "showChanges": True})
    body = notified(index_of(sub), updated(lamp(power="on"), lamp(power="off")))[0]
    assert body["data"][0]["power"] == {"type": "Property", "value": "off",
                                        "previousValue": "on"}


@pytest.mark.parametrize(("before", "after", "expected"), [
    ({}, {"a": 1}, {D + "a": {"attributeCreated"}}),
    ({"a": 1}, {"a": 2}, {D + "a": {"attributeUpdated"}}),
    ({"a": 1}, {}, {D + "a": {"attributeDeleted"}}),
    ({"a": 1}, {"a": 1}, {}),
])
def test_attribute_changes(before: dict[str, Any], after: dict[str, Any],
                           expected: dict[str, set[str]]) -> None:
    assert dict(attribute_changes(updated(lamp(**before), lamp(**after)))) == expected


def test_only_indexed_subscriptions_are_looked_at() -> None:
    index = index_of(*[subscription(f"urn:s:{i}") for i in range(3)])
    assert len(index.candidates("", [D + "Streetlight"], [])) == 3
    assert index.candidates("", [D + "Bench"], [D + "power"]) == []
    index.remove("", "urn:s:0")
    assert len(index) == 2


def test_a_deleted_attribute_is_notified_as_ngsi_ld_null() -> None:
    sub = subscription(notificationTrigger=["attributeDeleted"],
                       notification={"endpoint": {"uri": "http://x"}, "showChanges": True})
    body = notified(index_of(sub), updated(lamp(power="on", level=2), lamp(level=2)))[0]
    assert body["data"][0]["power"] == {"type": "Property", "value": "urn:ngsi-ld:null",
                                        "previousValue": "on"}
    assert body["data"][0]["level"] == {"type": "Property", "value": 2}


def test_a_deleted_entity_is_notified_by_what_identifies_it() -> None:
    gone = EntityChange("deleted", "", "urn:ngsi-ld:Streetlight:1", None, lamp(power="on"),
                        NOW)
    body = notified(index_of(subscription(notificationTrigger=["entityDeleted"])), gone)[0]
    assert body["data"][0] == {"id": "urn:ngsi-ld:Streetlight:1", "type": "Streetlight",
                               "deletedAt": NOW}


def test_an_entity_deleted_under_attribute_deleted_shows_its_watched_attributes_null(
        ) -> None:
    gone = EntityChange("deleted", "", "urn:ngsi-ld:Streetlight:1", None,
                        lamp(power="on", level=2), NOW)
    sub = subscription(notificationTrigger=["attributeDeleted"], watchedAttributes=[D + "power"],
                       notification={"endpoint": {"uri": "http://x"}, "sysAttrs": True})
    entity = notified(index_of(sub), gone)[0]["data"][0]
    assert entity["power"]["value"] == "urn:ngsi-ld:null"
    assert entity["power"]["deletedAt"] == NOW
    assert "level" not in entity


def test_a_deleted_dataset_instance_is_shown_null_beside_the_instances_left() -> None:
    before = lamp(power="on")
    before["attrs"][D + "power"].append({"type": "Property", "value": "off",
                                         "datasetId": "urn:ngsi-ld:Dataset:b"})
    sub = subscription(notificationTrigger=["attributeDeleted"])
    shown = notified(index_of(sub), updated(before, lamp(power="on")))[0]["data"][0]["power"]
    assert shown == [{"type": "Property", "value": "on"},
                     {"type": "Property", "value": "urn:ngsi-ld:null",
                      "datasetId": "urn:ngsi-ld:Dataset:b"}]


def test_dataset_ids_select_the_instances_a_notification_shows() -> None:
    two = lamp(power="on")
    two["attrs"][D + "power"].append({"type": "Property", "value": "off",
                                      "datasetId": "urn:ngsi-ld:Dataset:backup"})
    sub = subscription(datasetId=["urn:ngsi-ld:Dataset:backup"])
    body = notified(index_of(sub), created(two))[0]
    assert body["data"][0]["power"] == {"type": "Property", "value": "off",
                                        "datasetId": "urn:ngsi-ld:Dataset:backup"}


def test_q_may_be_percent_encoded_as_in_a_url() -> None:
    index = index_of(subscription(q='power=="is%20on"'))
    assert len(notified(index, created(lamp(power="is on")))) == 1


def test_updates_of_unwatched_attributes_look_at_no_watching_subscription() -> None:
    index = index_of(*[subscription(f"urn:s:{i}", watchedAttributes=[D + f"other{i}"])
                       for i in range(50)])
    assert index.candidates("", [D + "Streetlight"], [D + "power"]) == []
    assert [c.record["id"] for c in index.candidates(
        "", [D + "Streetlight"], [D + "other7"])] == ["urn:s:7"]


def test_an_attribute_deleted_with_all_its_instances_is_one_null() -> None:
    before = lamp(power="on", level=1)
    before["attrs"][D + "power"].append({"type": "Property", "value": "off",
                                         "datasetId": "urn:ngsi-ld:Dataset:b"})
    sub = subscription(notificationTrigger=["attributeDeleted"])
    shown = notified(index_of(sub), updated(before, lamp(level=1)))[0]["data"][0]["power"]
    assert shown == {"type": "Property", "value": "urn:ngsi-ld:null"}
