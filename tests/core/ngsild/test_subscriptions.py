"""Specification of Subscription documents in and out (ETSI GS CIM 009 V1.9.1, clauses
5.2.12 Subscription, 5.2.14 NotificationParams, 5.2.15 Endpoint, 5.8 Subscription API).

Requests become the internal record of ``subscription_model`` (names expanded, defaults
filled in); records are shown back under the reader's @context.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from smartcity.core.ngsild.context import ContextCompiler, ContextDocuments, TermMap
from smartcity.core.ngsild.errors import (
    AlreadyExists,
    BadRequestData,
    NonexistentTenant,
    ResourceNotFound,
)
from smartcity.core.ngsild.storage import with_status
from smartcity.core.ngsild.subscription_model import DEFAULT_TRIGGERS
from smartcity.core.ngsild.subscription_service import SubscriptionService
from smartcity.core.ngsild.subscriptions import (
    merge_subscription,
    parse_subscription,
    render_subscription,
)

COMPILER = ContextCompiler(ContextDocuments())
CORE = COMPILER.core
DEFAULT = "https://uri.etsi.org/ngsi-ld/default-context/"
EX = "https://example.org/city/"
NOW = "2026-05-01T12:00:00.000000Z"
LATER = "2026-05-01T13:00:00.000000Z"
ENDPOINT = {"uri": "http://receiver.example/notify"}


@pytest.fixture(scope="module")
def city() -> TermMap:
    return COMPILER.compile({"Lamp": EX + "Lamp", "lux": EX + "lux", "ex": EX})


def sub(**members: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"id": "urn:ngsi-ld:Subscription:lamps", "type": "Subscription",
                            "entities": [{"type": "Lamp"}],
                            "notification": {"endpoint": dict(ENDPOINT)}}
    body.update(members)
    return {k: v for k, v in body.items() if v is not None}


def parse(terms: TermMap = CORE, **members: Any) -> dict[str, Any]:
    return parse_subscription(sub(**members), terms, "", NOW)


def refused(**members: Any) -> str:
    with pytest.raises(BadRequestData) as caught:
        parse(**members)
    return caught.value.detail


# -- creation ------------------------------------------------------------------------


def test_a_minimal_subscription_gets_the_defaults(city: TermMap) -> None:
    record = parse_subscription(sub(), city, "tenant1", NOW, context="http://ctx.example/c")
    assert record == {
        "id": "urn:ngsi-ld:Subscription:lamps", "tenant": "tenant1",
        "entities": [{"type": EX + "Lamp"}],
        "notificationTrigger": list(DEFAULT_TRIGGERS), "isActive": True,
        "notification": {"format": "normalized", "showChanges": False, "sysAttrs": False,
                         "endpoint": {"uri": ENDPOINT["uri"], "accept": "application/json"}},
        "context": "http://ctx.example/c", "createdAt": NOW, "modifiedAt": NOW,
        "timesSent": 0, "timesFailed": 0}


def test_default_triggers_are_attribute_created_and_updated() -> None:
    # Table 5.2.12-1, and what the ETSI suite's expected payloads show.
    assert DEFAULT_TRIGGERS == ("attributeCreated", "attributeUpdated")


def test_without_an_id_a_subscription_uri_is_generated() -> None:
    first = parse_subscription({k: v for k, v in sub().items() if k != "id"}, CORE, "", NOW)
    second = parse_subscription({k: v for k, v in sub().items() if k != "id"}, CORE, "", NOW)
    assert first["id"].startswith("urn:ngsi-ld:Subscription:")
    assert first["id"] != second["id"]


def test_names_are_expanded_with_the_request_context(city: TermMap) -> None:
    record = parse(city, watchedAttributes=["lux", "speed"],
                   entities=[{"type": "Lamp", "idPattern": "^urn:ngsi-ld:Lamp:.*"},
                             {"type": "ex:Pole", "id": "urn:ngsi-ld:Pole:1"}],
                   notification={"endpoint": ENDPOINT, "attributes": ["lux"]})
    assert record["watchedAttributes"] == [EX + "lux", DEFAULT + "speed"]
    assert record["entities"] == [
        {"type": EX + "Lamp", "idPattern": "^urn:ngsi-ld:Lamp:.*"},
        {"type": EX + "Pole", "id": "urn:ngsi-ld:Pole:1"}]
    assert record["notification"]["attributes"] == [EX + "lux"]


def test_a_type_expression_is_kept_with_each_name_expanded(city: TermMap) -> None:
    record = parse(city, entities=[{"type": "(Lamp|Pole);Smart"}])
    assert record["entities"][0]["type"] == \
        f"({EX}Lamp|{DEFAULT}Pole);{DEFAULT}Smart"


def test_watched_attributes_alone_select_entities() -> None:
    record = parse(entities=None, watchedAttributes=["lux"])
    assert "entities" not in record


def test_q_scope_q_and_geo_q_are_kept_as_given() -> None:
    geo_q = {"georel": "near;maxDistance==500", "geometry": "Point",
             "coordinates": "[18.07, 59.33]", "geoproperty": "location"}
    record = parse(q="lux>100;status==\"on\"", scopeQ="/Stockholm/#", geoQ=geo_q)
    assert record["q"] == "lux>100;status==\"on\""
    assert record["scopeQ"] == "/Stockholm/#"
    assert record["geoQ"] == {**geo_q, "coordinates": [18.07, 59.33]}


def test_simplified_is_a_synonym_of_key_values() -> None:
    record = parse(notification={"endpoint": ENDPOINT, "format": "simplified"})
    assert record["notification"]["format"] == "keyValues"


def test_expires_at_is_kept_in_the_canonical_datetime_form() -> None:
    assert parse(expiresAt="2030-01-01T00:00:00Z")["expiresAt"] == \
        "2030-01-01T00:00:00.000000Z"


def test_read_only_and_unknown_members_are_ignored() -> None:
    record = parse(status="expired", timesSent=42, createdAt="2000-01-01T00:00:00Z",
                   __context="http://hijack.example/c.jsonld")
    assert record["timesSent"] == 0
    assert record["createdAt"] == NOW
    assert "status" not in record and "__context" not in record


def test_endpoint_info_pairs_are_kept() -> None:
    endpoint = {**ENDPOINT, "accept": "application/ld+json",
                "receiverInfo": [{"key": "Authorization", "value": "Bearer x"}],
                "notifierInfo": [{"key": "MQTT-QoS", "value": "1"}]}
    record = parse(notification={"endpoint": endpoint})
    assert record["notification"]["endpoint"] == endpoint


# -- refusals --------------------------------------------------------------------------


@pytest.mark.parametrize("sub_id", ["invalidId", "", 42, "urn with space"])
def test_an_id_that_is_not_a_uri_is_refused(sub_id: Any) -> None:
    assert "URI" in refused(id=sub_id)


@pytest.mark.parametrize("sub_type", [None, "Subscriptions", "Lamp"])
def test_the_type_must_be_subscription(sub_type: Any) -> None:
    assert "Subscription" in refused(type=sub_type)


def test_an_empty_document_is_refused() -> None:
    with pytest.raises(BadRequestData):
        parse_subscription({}, CORE, "", NOW)


def test_neither_entities_nor_watched_attributes_is_refused() -> None:
    assert "entities or watchedAttributes" in refused(entities=None)


@pytest.mark.parametrize("entities", [[], [{}], [{"id": "urn:ngsi-ld:Lamp:1"}],
                                      [{"type": ""}], [{"type": "(Lamp"}], ["Lamp"], {}])
def test_entity_selectors_need_a_type(entities: Any) -> None:
    refused(entities=entities)


def test_an_entity_selector_id_must_be_a_uri() -> None:
    assert "URI" in refused(entities=[{"type": "Lamp", "id": "lamp one"}])


def test_a_bad_id_pattern_is_refused() -> None:
    assert "idPattern is not valid" in refused(entities=[{"type": "Lamp", "idPattern": "(["}])


@pytest.mark.parametrize("watched", [[], "lux", ["lux", ""], ["value"]])
def test_watched_attributes_must_be_a_non_empty_list_of_names(watched: Any) -> None:
    refused(watchedAttributes=watched)


@pytest.mark.parametrize("triggers", [["entityChanged"], [], "entityCreated"])
def test_unknown_notification_triggers_are_refused(triggers: Any) -> None:
    refused(notificationTrigger=triggers)


def test_all_six_triggers_are_accepted() -> None:
    triggers = ["entityCreated", "entityUpdated", "entityDeleted", "attributeCreated",
                "attributeUpdated", "attributeDeleted"]
    assert parse(notificationTrigger=triggers)["notificationTrigger"] == triggers


@pytest.mark.parametrize("members", [{"q": "lux>>1"}, {"q": ""}, {"scopeQ": "Stockholm"},
                                     {"csf": "(("},
                                     {"geoQ": {"georel": "near", "geometry": "Point",
                                               "coordinates": [1, 2]}},
                                     {"geoQ": {"georel": "within", "geometry": "Point"}},
                                     {"geoQ": {}}, {"geoQ": "near"}])
def test_bad_filters_are_refused(members: dict[str, Any]) -> None:
    refused(**members)


def test_a_missing_notification_is_refused() -> None:
    assert "notification" in refused(notification=None)


@pytest.mark.parametrize("endpoint", [None, {}, {"uri": "not a uri"}, {"uri": "/notify"},
                                      {"uri": "ftp://receiver.example/notify"},
                                      {"uri": "urn:ngsi-ld:Receiver:1"}, "http://a.b/c"])
def test_the_endpoint_needs_an_absolute_http_or_mqtt_uri(endpoint: Any) -> None:
    refused(notification={"endpoint": endpoint})


@pytest.mark.parametrize("uri", ["http://a.example/n", "https://a.example/n",
                                 "mqtt://broker:1883/topic", "mqtts://broker/topic"])
def test_http_and_mqtt_endpoints_are_accepted(uri: str) -> None:
    assert parse(notification={"endpoint": {"uri": uri}})["notification"]["endpoint"]["uri"] \
        == uri


@pytest.mark.parametrize("accept", ["text/plain", "application/xml", ""])
def test_the_endpoint_accepts_only_json_media_types(accept: str) -> None:
    assert "accept" in refused(notification={"endpoint": {**ENDPOINT, "accept": accept}})


@pytest.mark.parametrize("fmt", ["raw", "keyvalues", ""])
def test_unknown_formats_are_refused(fmt: str) -> None:
    assert "format" in refused(notification={"endpoint": ENDPOINT, "format": fmt})


@pytest.mark.parametrize("fmt", ["keyValues", "simplified"])
def test_show_changes_cannot_go_with_key_values(fmt: str) -> None:
    refused(notification={"endpoint": ENDPOINT, "format": fmt, "showChanges": True})


@pytest.mark.parametrize("extra", [{"attributes": []}, {"pick": []}, {"omit": []},
                                   {"pick": ["id"], "omit": ["id"]},
                                   {"pick": ["id"], "attributes": ["lux"]},
                                   {"omit": ["lux"], "attributes": ["lux"]},
                                   {"sysAttrs": "yes"}, {"join": "deep"}, {"joinLevel": 0}])
def test_bad_notification_parameters_are_refused(extra: dict[str, Any]) -> None:
    refused(notification={"endpoint": ENDPOINT, **extra})


@pytest.mark.parametrize("member", ["timeInterval", "throttling"])
@pytest.mark.parametrize("seconds", [0, -5, "10", True])
def test_time_interval_and_throttling_must_be_positive_numbers(member: str,
                                                               seconds: Any) -> None:
    assert member in refused(**{member: seconds})


def test_subscription_with_both_throttling_and_time_interval_is_refused() -> None:
    assert "throttling" in refused(timeInterval=10, throttling=30)


def test_time_interval_cannot_go_with_watched_attributes() -> None:
    assert "watchedAttributes" in refused(timeInterval=10, watchedAttributes=["lux"])


@pytest.mark.parametrize("expires", ["2030-01-01", "2030-01-01T00:00:00+01:00", 12, ""])
def test_expires_at_must_be_a_utc_datetime(expires: Any) -> None:
    assert "expiresAt" in refused(expiresAt=expires)


def test_expires_at_in_the_past_is_refused() -> None:
    assert "future" in refused(expiresAt="2000-01-01T00:00:00Z")


@pytest.mark.parametrize("active", ["true", 1, "yes"])
def test_is_active_must_be_a_boolean(active: Any) -> None:
    assert "isActive" in refused(isActive=active)


@pytest.mark.parametrize("info", [[{"key": "K", "value": 42}], [{"key": "K", "value": {}}],
                                  [{"key": "K"}], [{"key": 5, "value": "v"}], {"K": "v"},
                                  [], ["K=v"]])
@pytest.mark.parametrize("member", ["receiverInfo", "notifierInfo"])
def test_endpoint_info_must_be_key_value_string_pairs(member: str, info: Any) -> None:
    refused(notification={"endpoint": {**ENDPOINT, member: info}})


def test_json_ld_context_must_be_an_http_url() -> None:
    assert "jsonldContext" in refused(jsonldContext="unknownContext")


# -- PATCH ---------------------------------------------------------------------------


def test_a_fragment_replaces_only_the_members_it_gives(city: TermMap) -> None:
    stored = parse(city, timeInterval=5, q="lux>10")
    merged = merge_subscription(stored, {"type": "Subscription", "entities": [{"type": "Lamp"}],
                                         "notification": {"endpoint": {"uri": "http://b/n"}}},
                                CORE, LATER)
    assert merged["entities"] == [{"type": DEFAULT + "Lamp"}]
    assert merged["notification"]["endpoint"]["uri"] == "http://b/n"
    assert merged["timeInterval"] == 5 and merged["q"] == "lux>10"
    assert merged["createdAt"] == NOW and merged["modifiedAt"] == LATER
    assert stored["notification"]["endpoint"]["uri"] == ENDPOINT["uri"]


def test_a_fragment_replaces_the_whole_notification() -> None:
    # Clause 5.8.2: members are replaced, not merged, so the endpoint must come again.
    with pytest.raises(BadRequestData):
        merge_subscription(parse(), {"notification": {"format": "keyValues"}}, CORE, LATER)


def test_null_removes_an_optional_member() -> None:
    merged = merge_subscription(parse(q="lux>10"), {"q": None}, CORE, LATER)
    assert "q" not in merged


@pytest.mark.parametrize("fragment", [{"notification": None},
                                      {"notification": {"endpoint": None}},
                                      {"entities": None}])
def test_mandatory_members_cannot_be_removed(fragment: dict[str, Any]) -> None:
    with pytest.raises(BadRequestData):
        merge_subscription(parse(), fragment, CORE, LATER)


@pytest.mark.parametrize("fragment", [{"type": "Lamp", "isActive": False},
                                      {"id": "urn:ngsi-ld:Subscription:other"},
                                      {"throttling": 5},
                                      {"expiresAt": "2020-08-01T22:07:00Z"}, {}, []])
def test_fragments_are_validated_like_new_subscriptions(fragment: Any) -> None:
    with pytest.raises(BadRequestData):
        merge_subscription(parse(timeInterval=5), fragment, CORE, LATER)


def test_a_fragment_keeps_the_delivery_status() -> None:
    stored = {**parse(), "timesSent": 3, "lastSuccess": NOW, "lastNotification": NOW}
    merged = merge_subscription(stored, {"isActive": False}, CORE, LATER)
    assert (merged["timesSent"], merged["lastSuccess"], merged["isActive"]) == (3, NOW, False)


# -- output --------------------------------------------------------------------------


def test_a_subscription_is_shown_compacted_with_the_readers_context(city: TermMap) -> None:
    record = parse(city, watchedAttributes=["lux"], entities=[{"type": "Lamp|ex:Pole"}],
                   notification={"endpoint": ENDPOINT, "pick": ["id", "lux"]})
    mine = render_subscription(record, city, NOW)
    assert mine["entities"] == [{"type": "Lamp|ex:Pole"}]
    assert mine["watchedAttributes"] == ["lux"]
    assert mine["notification"]["pick"] == ["id", "lux"]
    core = render_subscription(record, CORE, NOW)
    assert core["entities"] == [{"type": f"{EX}Lamp|{EX}Pole"}]
    assert core["watchedAttributes"] == [EX + "lux"]


def test_the_shown_form_has_only_clause_5_2_12_members() -> None:
    shown = render_subscription(parse(timeInterval=5), CORE, NOW)
    assert shown == {
        "id": "urn:ngsi-ld:Subscription:lamps", "type": "Subscription",
        "entities": [{"type": "Lamp"}], "timeInterval": 5,
        "notificationTrigger": list(DEFAULT_TRIGGERS),
        "notification": {"format": "normalized",
                         "endpoint": {"uri": ENDPOINT["uri"], "accept": "application/json"}},
        "status": "active"}


def test_system_timestamps_are_shown_on_request() -> None:
    shown = render_subscription(parse(), CORE, LATER, sys_attrs=True)
    assert (shown["createdAt"], shown["modifiedAt"]) == (NOW, NOW)


@pytest.mark.parametrize(("members", "now", "status"), [
    ({}, NOW, "active"),
    ({"isActive": False}, NOW, "paused"),
    ({"expiresAt": "2026-05-01T12:30:00Z"}, NOW, "active"),
    ({"expiresAt": "2026-05-01T12:30:00Z"}, LATER, "expired"),
    ({"expiresAt": "2026-05-01T12:30:00Z", "isActive": False}, LATER, "expired"),
])
def test_status_is_derived_from_is_active_and_expires_at(members: dict[str, Any], now: str,
                                                         status: str) -> None:
    shown = render_subscription(parse(**members), CORE, now)
    assert shown["status"] == status
    assert shown.get("isActive", True) == members.get("isActive", True)


def test_delivery_status_sits_in_the_notification_member() -> None:
    record = {**parse(), "timesSent": 2, "timesFailed": 1, "lastNotification": LATER,
              "lastSuccess": NOW, "lastFailure": LATER}
    notification = render_subscription(record, CORE, LATER)["notification"]
    assert notification["status"] == "failed"
    assert (notification["timesSent"], notification["timesFailed"]) == (2, 1)
    assert (notification["lastNotification"], notification["lastSuccess"],
            notification["lastFailure"]) == (LATER, NOW, LATER)
    record["lastSuccess"] = "2026-05-01T14:00:00.000000Z"
    assert render_subscription(record, CORE, LATER)["notification"]["status"] == "ok"


def test_before_any_delivery_there_is_no_notification_status() -> None:
    notification = render_subscription(parse(), CORE, NOW)["notification"]
    assert not {"status", "timesSent", "timesFailed", "lastNotification"} & notification.keys()


# -- the service -----------------------------------------------------------------------


class FakeStore:
    """Just the subscription part of a store, in memory; ``shared`` as when workers use
    it (another worker's change is a change of ``rows`` with ``version`` moved)."""

    def __init__(self, records: list[dict[str, Any]] | None = None,
                 shared: bool = False) -> None:
        self.rows = {(r["tenant"], r["id"]): r for r in records or []}
        self.status: dict[tuple[str, str], dict[str, Any]] = {}
        self.shared = shared
        self.version = 0

    async def subscriptions(self) -> list[dict[str, Any]]:
        return [with_status(r, self.status.get(k, {})) for k, r in self.rows.items()]

    async def subscription(self, tenant: str, sub_id: str) -> dict[str, Any] | None:
        record = self.rows.get((tenant, sub_id))
        return None if record is None else with_status(record,
                                                       self.status.get((tenant, sub_id), {}))

    async def add_subscription(self, record: dict[str, Any]) -> bool:
        if (record["tenant"], record["id"]) in self.rows:
            return False
        await self.save_subscription(record)
        return True

    async def save_subscription(self, record: dict[str, Any]) -> None:
        self.rows[(record["tenant"], record["id"])] = record
        self.version += 1

    async def add_subscription_status(self, tenant: str, sub_id: str,
                                      delta: dict[str, Any]) -> None:
        key = (tenant, sub_id)
        self.status[key] = with_status(self.status.get(key, {}), delta)

    async def delete_subscription(self, tenant: str, subscription_id: str) -> bool:
        self.version += 1
        return self.rows.pop((tenant, subscription_id), None) is not None

    async def cache_versions(self) -> dict[str, int]:
        return {"subscriptions": self.version}

    async def has_tenant(self, tenant: str) -> bool:
        return False


class FixedClock:
    def now(self) -> datetime:
        return datetime(2026, 5, 1, 12, tzinfo=UTC)


async def test_the_service_loads_the_store_and_tells_listeners_of_changes() -> None:
    stored = {**parse(), "tenant": "t1"}
    store = FakeStore([stored])
    service = SubscriptionService(store, FixedClock())  # type: ignore[arg-type]
    await service.load()
    assert await service.get("t1", stored["id"]) == stored
    heard: list[tuple[Any, str, str]] = []
    service.on_change(lambda record, tenant, sub_id: heard.append((record, tenant, sub_id)))
    second = parse_subscription(sub(id="urn:ngsi-ld:Subscription:2"), CORE, "t1", service.now())
    await service.create("t1", second)
    with pytest.raises(AlreadyExists):
        await service.create("t1", second)
    paused = merge_subscription(second, {"isActive": False}, CORE, service.now())
    await service.update("t1", second["id"], paused)
    await service.delete("t1", stored["id"])
    assert heard == [(second, "t1", second["id"]), (paused, "t1", second["id"]),
                     (None, "t1", stored["id"])]
    assert list(store.rows) == [("t1", second["id"])]
    assert [r["id"] for r in service.records()] == [second["id"]]
    with pytest.raises(ResourceNotFound):
        await service.update("t1", stored["id"], stored)
    with pytest.raises(NonexistentTenant):
        await service.list("t2", 0, 10)


async def test_a_worker_catches_up_with_subscriptions_another_worker_changed() -> None:
    store = FakeStore(shared=True)
    mine, theirs = (SubscriptionService(store, FixedClock()),  # type: ignore[arg-type]
                    SubscriptionService(store, FixedClock()))  # type: ignore[arg-type]
    await mine.load()
    await theirs.load()
    heard: list[tuple[Any, str, str]] = []
    mine.on_change(lambda record, tenant, sub_id: heard.append((record, tenant, sub_id)))
    record = parse_subscription(sub(), CORE, "t1", mine.now())
    await theirs.create("t1", record)
    await mine.refresh((await store.cache_versions())["subscriptions"])
    assert heard == [(record, "t1", record["id"])]
    await theirs.delete("t1", record["id"])
    await mine.refresh((await store.cache_versions())["subscriptions"])
    assert heard[-1] == (None, "t1", record["id"])
    assert list(mine.records()) == []


async def test_workers_delivering_for_one_subscription_add_up_their_counts() -> None:
    store = FakeStore(shared=True)
    workers = [SubscriptionService(store, FixedClock()),  # type: ignore[arg-type]
               SubscriptionService(store, FixedClock())]  # type: ignore[arg-type]
    for worker in workers:
        await worker.load()
    record = parse_subscription(sub(), CORE, "t1", workers[0].now())
    await workers[0].create("t1", record)
    await workers[1].refresh((await store.cache_versions())["subscriptions"])
    for worker, ok in ((workers[0], True), (workers[1], True), (workers[1], False)):
        await worker.sending("t1", record["id"], worker.now())
        await worker.delivered("t1", record["id"], ok, worker.now())
        await worker.flush()
    # A settings change by one worker keeps the counts of all.
    paused = merge_subscription(record, {"isActive": False}, CORE, workers[0].now())
    await workers[0].update("t1", record["id"], paused)
    seen = await workers[0].get("t1", record["id"])
    assert (seen["timesSent"], seen["timesFailed"], seen["isActive"]) == (3, 1, False)
