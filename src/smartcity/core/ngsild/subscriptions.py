"""Subscription payloads (ETSI GS CIM 009 V1.9.1, clauses 5.2.12, 5.2.14, 5.8) in and out.

``parse_subscription`` turns a request body into the internal record described in
``subscription_model``; ``merge_subscription`` applies a PATCH fragment to a stored one;
``render_subscription`` shows a record to a client under the client's @context.

Each top-level member has its own parser, so creation and PATCH validate members the
same way; rules that tie members together run on the whole record afterwards.
Read-only members (status, delivery counters, system timestamps) and members this
broker does not know are ignored, as clause 5.2.12 asks of read-only ones.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from smartcity.core.ngsild import geo
from smartcity.core.ngsild.context import TermMap
from smartcity.core.ngsild.errors import BadRequestData
from smartcity.core.ngsild.normalize import (
    check_attribute_name,
    check_datetime,
    check_entity_id,
    is_uri,
)
from smartcity.core.ngsild.query import parse_type_expression
from smartcity.core.ngsild.query_language import parse_q
from smartcity.core.ngsild.scope_query import parse_scope_q
from smartcity.core.ngsild.subscription_model import (
    DEFAULT_TRIGGERS,
    TRIGGERS,
    Subscription,
    status_of,
)
from smartcity.core.ngsild.user_patterns import compile_pattern

SUBSCRIPTION = "Subscription"
FORMATS = {"normalized": "normalized", "keyValues": "keyValues", "simplified": "keyValues",
           "concise": "concise"}
ACCEPTS = ("application/json", "application/ld+json", "application/geo+json")
SCHEMES = ("http", "https", "mqtt", "mqtts")
JOINS = ("flat", "inline", "@none")
# Entity members a pick/omit may name besides attributes; they are never expanded.
ENTITY_MEMBERS = frozenset({"id", "type", "scope"})
MAX_ID_PATTERN = 512
_TYPE_TOKEN = re.compile(r"[(),|;]|[^(),|;\s]+")
_FRACTION = re.compile(r"\.(\d{6})\d+")

Parser = Callable[[Any, TermMap, str], Any]


# -- single members -----------------------------------------------------------------


def _text(value: Any, member: str) -> str:
    if not isinstance(value, str) or not value:
        raise BadRequestData(f"{member} must be a non-empty string")
    return value


def _positive(value: Any, member: str) -> float | int:
    # bool is an int in Python, but true is not a number of seconds.
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise BadRequestData(f"{member} must be a positive number of seconds: {value!r}")
    return value


def _boolean(value: Any, member: str) -> bool:
    if not isinstance(value, bool):
        raise BadRequestData(f"{member} must be true or false: {value!r}")
    return value


def _array(value: Any, member: str) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise BadRequestData(f"{member} must be a non-empty array")
    return value


def _attribute_names(value: Any, terms: TermMap, member: str) -> list[str]:
    names = [check_attribute_name(name, terms) for name in _array(value, member)]
    return list(dict.fromkeys(terms.expand(name) for name in names))


def _type_selector(value: Any, terms: TermMap) -> str:
    """A type name or type expression (clause 4.17), stored with every name expanded."""
    if not isinstance(value, str) or not value.strip():
        raise BadRequestData("Each entity selector needs a type")
    parse_type_expression(value, terms.expand)  # validates the expression
    return "".join(token if token in "(),|;" else terms.expand(token)
                   for token in _TYPE_TOKEN.findall(value))


def _entities(value: Any, terms: TermMap, now: str) -> list[dict[str, str]]:
    selectors = []
    for raw in _array(value, "entities"):
        if not isinstance(raw, dict):
            raise BadRequestData("Each entity selector must be an object")
        if "type" not in raw:
            raise BadRequestData("Each entity selector needs a type")
        selector = {"type": _type_selector(raw["type"], terms)}
        if raw.get("id") is not None:
            selector["id"] = check_entity_id(raw["id"])
        if raw.get("idPattern") is not None:
            selector["idPattern"] = _id_pattern(raw["idPattern"])
        selectors.append(selector)
    return selectors


def _id_pattern(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_ID_PATTERN:
        raise BadRequestData(f"idPattern must be a regular expression of at most "
                             f"{MAX_ID_PATTERN} characters")
    compile_pattern(value, "idPattern")
    return value


def _triggers(value: Any, terms: TermMap, now: str) -> list[str]:
    triggers = _array(value, "notificationTrigger")
    for trigger in triggers:
        if trigger not in TRIGGERS:
            raise BadRequestData(f"Unknown notificationTrigger {trigger!r}; expected some of "
                                 f"{', '.join(TRIGGERS)}")
    return list(dict.fromkeys(triggers))


def _query(value: Any, terms: TermMap, now: str) -> str:
    parse_q(_text(value, "q"))
    return str(value)


def _filter(value: Any, terms: TermMap, now: str) -> str:
    parse_q(_text(value, "csf"))
    return str(value)


def _scope_query(value: Any, terms: TermMap, now: str) -> str:
    parse_scope_q(_text(value, "scopeQ"))
    return str(value)


def _geo_query(value: Any, terms: TermMap, now: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRequestData("geoQ must be an object")
    coordinates = value.get("coordinates")
    if isinstance(coordinates, str):
        try:
            coordinates = orjson.loads(coordinates)
        except orjson.JSONDecodeError:
            raise BadRequestData("geoQ coordinates is not a valid JSON array") from None
    if geo.parse_geo_query(value.get("georel"), value.get("geometry"), coordinates,
                           value.get("geoproperty")) is None:
        raise BadRequestData("geoQ needs georel, geometry and coordinates")
    query = {"georel": value["georel"], "geometry": value["geometry"],
             "coordinates": coordinates}
    if value.get("geoproperty") is not None:
        query["geoproperty"] = value["geoproperty"]
    return query


def expiry(value: Any, now: str) -> str:
    """expiresAt in the canonical DateTime form, so that it compares with ``now`` as text.

    Clause 5.8.1.4 / 5.8.2.4: an expiresAt that is already past is refused.
    """
    check_datetime(value, "expiresAt")
    moment = datetime.fromisoformat(_FRACTION.sub(r".\1", value)).astimezone(UTC)
    canonical = moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if canonical <= now:
        raise BadRequestData(f"expiresAt {value} is not in the future")
    return canonical


def _dataset_ids(value: Any, terms: TermMap, now: str) -> list[str]:
    ids = value if isinstance(value, list) else [value]
    for dataset_id in _array(ids, "datasetId"):
        if not is_uri(dataset_id) and dataset_id != "@none":
            raise BadRequestData(f"datasetId must be a URI: {dataset_id!r}")
    return list(dict.fromkeys(ids))


def _context_url(value: Any, terms: TermMap, now: str) -> str:
    if not isinstance(value, str) or not re.match(r"^https?://\S+$", value):
        raise BadRequestData(f"jsonldContext must be an http(s) URL: {value!r}")
    return value


def _key_values(value: Any, member: str) -> list[dict[str, str]]:
    pairs = _array(value, member)
    for pair in pairs:
        if not (isinstance(pair, dict) and set(pair) == {"key", "value"}
                and isinstance(pair["key"], str) and pair["key"]
                and isinstance(pair["value"], str)):
            raise BadRequestData(f"{member} must be an array of {{key, value}} string pairs")
    return [{"key": p["key"], "value": p["value"]} for p in pairs]


def _endpoint(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRequestData("notification.endpoint must be an object with a uri")
    uri = value.get("uri")
    if not is_uri(uri) or uri.split(":", 1)[0].lower() not in SCHEMES \
            or not uri.split(":", 1)[1].startswith("//"):
        raise BadRequestData(f"notification.endpoint.uri must be an absolute "
                             f"{'/'.join(SCHEMES)} URI: {uri!r}")
    accept = value.get("accept", ACCEPTS[0])
    if accept not in ACCEPTS:
        raise BadRequestData(f"notification.endpoint.accept must be one of "
                             f"{', '.join(ACCEPTS)}: {accept!r}")
    endpoint: dict[str, Any] = {"uri": uri, "accept": accept}
    for member in ("timeout", "cooldown"):
        if value.get(member) is not None:
            endpoint[member] = _positive(value[member], f"endpoint.{member}")
    for member in ("receiverInfo", "notifierInfo"):
        if value.get(member) is not None:
            endpoint[member] = _key_values(value[member], f"endpoint.{member}")
    return endpoint


def _members(value: Any, terms: TermMap, member: str) -> list[str]:
    """pick/omit: entity members stay as they are, attribute names are expanded."""
    names = _array(value, f"notification.{member}")
    for name in names:
        if name not in ENTITY_MEMBERS:
            check_attribute_name(name, terms)
    return list(dict.fromkeys(n if n in ENTITY_MEMBERS else terms.expand(n) for n in names))


def _notification(value: Any, terms: TermMap, now: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRequestData("notification must be an object")
    if value.get("endpoint") is None:
        raise BadRequestData("notification.endpoint is missing")
    params: dict[str, Any] = {}
    if value.get("attributes") is not None:
        params["attributes"] = _attribute_names(value["attributes"], terms,
                                                "notification.attributes")
    fmt = value.get("format", "normalized")
    if fmt not in FORMATS:
        raise BadRequestData(f"notification.format must be one of {', '.join(FORMATS)}: "
                             f"{fmt!r}")
    params["format"] = FORMATS[fmt]
    params["showChanges"] = _boolean(value.get("showChanges", False),
                                     "notification.showChanges")
    if params["showChanges"] and params["format"] == "keyValues":
        # Table 5.2.14-1: previous values cannot be shown in the simplified format.
        raise BadRequestData("notification.showChanges cannot go with the keyValues format")
    params["sysAttrs"] = _boolean(value.get("sysAttrs", False), "notification.sysAttrs")
    for member in ("pick", "omit"):
        if value.get(member) is not None:
            params[member] = _members(value[member], terms, member)
    if ("pick" in params or "omit" in params) and "attributes" in params:
        raise BadRequestData("notification.pick and omit cannot go with attributes")
    if set(params.get("pick", ())) & set(params.get("omit", ())):
        raise BadRequestData("A member cannot be both picked and omitted")
    if value.get("join") is not None:
        if value["join"] not in JOINS:
            raise BadRequestData(f"notification.join must be one of {', '.join(JOINS)}")
        params["join"] = value["join"]
    if value.get("joinLevel") is not None:
        level = value["joinLevel"]
        if isinstance(level, bool) or not isinstance(level, int) or level < 1:
            raise BadRequestData("notification.joinLevel must be a positive integer")
        params["joinLevel"] = level
    params["endpoint"] = _endpoint(value["endpoint"])
    return params


def _string(member: str) -> Parser:
    return lambda value, terms, now: _text(value, member)


def _seconds(member: str) -> Parser:
    return lambda value, terms, now: _positive(value, member)


# Writable members of a Subscription and how each one is read.
MEMBERS: dict[str, Parser] = {
    "subscriptionName": _string("subscriptionName"),
    "description": _string("description"),
    "entities": _entities,
    "watchedAttributes": lambda value, terms, now: _attribute_names(value, terms,
                                                                    "watchedAttributes"),
    "notificationTrigger": _triggers,
    "timeInterval": _seconds("timeInterval"),
    "throttling": _seconds("throttling"),
    "q": _query,
    "csf": _filter,
    "scopeQ": _scope_query,
    "geoQ": _geo_query,
    "lang": _string("lang"),
    "datasetId": _dataset_ids,
    "jsonldContext": _context_url,
    "expiresAt": lambda value, terms, now: expiry(value, now),
    "isActive": lambda value, terms, now: _boolean(value, "isActive"),
    "notification": _notification,
}
REQUIRED = frozenset({"notification"})


# -- whole subscriptions ------------------------------------------------------------


def _check_whole(record: Subscription) -> None:
    """Rules that tie members together (clause 5.2.12)."""
    if not record.get("entities") and not record.get("watchedAttributes"):
        raise BadRequestData("A subscription needs entities or watchedAttributes")
    if "timeInterval" in record and "throttling" in record:
        raise BadRequestData("timeInterval and throttling cannot both be given")
    if "timeInterval" in record and "watchedAttributes" in record:
        raise BadRequestData("timeInterval cannot go with watchedAttributes")


def _check_type(payload: dict[str, Any], required: bool) -> None:
    if "type" not in payload and not required:
        return
    if payload.get("type") != SUBSCRIPTION:
        raise BadRequestData(f'A subscription must have type "Subscription", not '
                             f'{payload.get("type")!r}')


def parse_subscription(payload: Any, terms: TermMap, tenant: str, now: str,
                       context: Any = None) -> Subscription:
    """Validate a Subscription document and build its internal record.

    ``context`` is the @context the request was made with (kept to compact
    notifications); ``now`` is the current DateTime text.
    """
    if not isinstance(payload, dict):
        raise BadRequestData("A subscription must be a JSON object")
    _check_type(payload, required=True)
    sub_id = payload.get("id")
    if sub_id is None:
        sub_id = f"urn:ngsi-ld:Subscription:{uuid.uuid4()}"
    elif not is_uri(sub_id):
        raise BadRequestData(f"Subscription id must be a URI: {sub_id!r}")
    if payload.get("notification") is None:
        raise BadRequestData("A subscription needs a notification member")
    record: Subscription = {"id": sub_id, "tenant": tenant}
    for member, parse in MEMBERS.items():
        if payload.get(member) is not None:
            record[member] = parse(payload[member], terms, now)
    record.setdefault("notificationTrigger", list(DEFAULT_TRIGGERS))
    record.setdefault("isActive", True)
    _check_whole(record)
    record.update(context=context, createdAt=now, modifiedAt=now, timesSent=0, timesFailed=0)
    return record


def merge_subscription(stored: Subscription, fragment: Any, terms: TermMap, now: str,
                       context: Any = None) -> Subscription:
    """Apply a Subscription fragment (clause 5.8.2): each member given replaces the stored
    one, null removes an optional member; the result is validated like a new one.

    ``context`` replaces the stored @context when the PATCH request carried one.
    """
    if not isinstance(fragment, dict):
        raise BadRequestData("A subscription fragment must be a JSON object")
    _check_type(fragment, required=False)
    if fragment.get("id", stored["id"]) != stored["id"]:
        raise BadRequestData("The fragment's id differs from the subscription id in the URL")
    changes = {m: v for m, v in fragment.items() if m in MEMBERS}
    if not changes:
        raise BadRequestData("The fragment changes no member of the subscription")
    record = dict(stored)
    for member, value in changes.items():
        if value is None:
            if member in REQUIRED:
                raise BadRequestData(f"{member} is mandatory and cannot be removed")
            record.pop(member, None)
        else:
            record[member] = MEMBERS[member](value, terms, now)
    record.setdefault("notificationTrigger", list(DEFAULT_TRIGGERS))
    record.setdefault("isActive", True)
    _check_whole(record)
    if context is not None:
        record["context"] = context
    record["modifiedAt"] = now
    return record


# -- output -------------------------------------------------------------------------


def _compact_type(expression: str, terms: TermMap) -> str:
    return "".join(token if token in "(),|;" else terms.compact(token)
                   for token in _TYPE_TOKEN.findall(expression))


def _compact_members(names: list[str], terms: TermMap) -> list[str]:
    return [n if n in ENTITY_MEMBERS else terms.compact(n) for n in names]


def _render_notification(record: Subscription, terms: TermMap) -> dict[str, Any]:
    # showChanges and sysAttrs default to false and are shown only when set.
    params = {k: v for k, v in record["notification"].items()
              if k not in ("showChanges", "sysAttrs") or v}
    if "attributes" in params:
        params["attributes"] = [terms.compact(a) for a in params["attributes"]]
    for member in ("pick", "omit"):
        if member in params:
            params[member] = _compact_members(params[member], terms)
    params["endpoint"] = dict(params["endpoint"])
    # Delivery status (Table 5.2.14-1) exists once a notification has been attempted.
    if record.get("lastNotification"):
        params["timesSent"] = record.get("timesSent", 0)
        params["timesFailed"] = record.get("timesFailed", 0)
        for member in ("lastNotification", "lastSuccess", "lastFailure"):
            if record.get(member):
                params[member] = record[member]
        failed = record.get("lastFailure", "") > record.get("lastSuccess", "")
        params["status"] = "failed" if failed else "ok"
    return params


def render_subscription(record: Subscription, terms: TermMap, now: str,
                        sys_attrs: bool = False) -> dict[str, Any]:
    """The Subscription as a client sees it, names compacted with the client's @context."""
    out: dict[str, Any] = {"id": record["id"], "type": SUBSCRIPTION}
    for member in ("subscriptionName", "description"):
        if member in record:
            out[member] = record[member]
    if "entities" in record:
        out["entities"] = [{**s, "type": _compact_type(s["type"], terms)}
                           for s in record["entities"]]
    if "watchedAttributes" in record:
        out["watchedAttributes"] = [terms.compact(a) for a in record["watchedAttributes"]]
    for member in ("notificationTrigger", "timeInterval", "throttling", "q", "csf", "scopeQ",
                   "geoQ", "lang", "datasetId", "jsonldContext", "expiresAt"):
        if member in record:
            out[member] = record[member]
    # isActive defaults to true and is shown only when it departs from that default.
    if not record.get("isActive", True):
        out["isActive"] = False
    out["notification"] = _render_notification(record, terms)
    out["status"] = status_of(record, now)
    if sys_attrs:
        out["createdAt"] = record["createdAt"]
        out["modifiedAt"] = record["modifiedAt"]
    return out
