"""Which subscriptions an entity change notifies, and what it tells them.

Subscriptions are compiled once (their q, scopeQ and geoQ become predicates) and
indexed by tenant and entity type, with a second index by attribute for those that
name only watchedAttributes, so a write looks at the subscriptions that can match it,
not at all of them. Everything here is pure: the caller stores and delivers.
"""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import orjson

from smartcity.core.events import EntityChange
from smartcity.core.ngsild import geo
from smartcity.core.ngsild.context import TermMap
from smartcity.core.ngsild.model import VALUE_MEMBER, Entity, Instance
from smartcity.core.ngsild.normalize import NULL
from smartcity.core.ngsild.query import parse_type_expression
from smartcity.core.ngsild.query_language import compile_q, linked_depth, parse_q
from smartcity.core.ngsild.render import CONCISE, KEY_VALUES, NORMALIZED, View, render_entity
from smartcity.core.ngsild.scope_query import parse_scope_q
from smartcity.core.ngsild.storage import OutboxEntry, Predicate
from smartcity.core.ngsild.subscription_model import DEFAULT_TRIGGERS, Subscription, status_of
from smartcity.core.ngsild.user_patterns import compile_pattern

_FORMATS = {"normalized": NORMALIZED, "keyValues": KEY_VALUES, "simplified": KEY_VALUES,
            "concise": CONCISE}
_PREVIOUS = {"value": "previousValue", "object": "previousObject",
             "languageMap": "previousLanguageMap", "vocab": "previousVocab",
             "valueList": "previousValueList", "objectList": "previousObjectList",
             "json": "previousJson"}


@dataclass(frozen=True)
class Selector:
    types: tuple[frozenset[str], ...]  # a type expression: OR of ANDs of type IRIs
    id: str | None
    pattern: re.Pattern[str] | None

    def accepts(self, entity: Entity) -> bool:
        have = set(entity["type"])
        if not any(conjunction <= have for conjunction in self.types):
            return False
        if self.id is not None and entity["id"] != self.id:
            return False
        return self.pattern is None or self.pattern.search(entity["id"]) is not None


@dataclass(frozen=True)
class Compiled:
    """A subscription ready to be matched."""

    record: Subscription
    terms: TermMap
    selectors: tuple[Selector, ...]
    watched: frozenset[str] | None
    triggers: frozenset[str]
    predicate: Predicate | None
    links: int = 0  # relationship hops its q reads through (rel{attr} terms)

    @property
    def key(self) -> tuple[str, str]:
        return self.record["tenant"], self.record["id"]


def compile_subscription(record: Subscription, terms: TermMap) -> Compiled:
    selectors = tuple(
        Selector(parse_type_expression(s["type"], lambda name: name), s.get("id"),
                 compile_pattern(s["idPattern"], "idPattern") if s.get("idPattern") else None)
        for s in record.get("entities") or ())
    checks: list[Predicate] = []
    links = 0
    if record.get("q"):
        # Clients write q as they would in a URL, percent-encoding included (%20).
        expr = parse_q(unquote(record["q"]))
        links = linked_depth(expr)
        checks.append(compile_q(expr, terms.expand))
    if record.get("scopeQ"):
        scope = parse_scope_q(record["scopeQ"])
        checks.append(lambda entity: scope(entity.get("scope")))
    if record.get("geoQ"):
        checks.append(_geo_check(record["geoQ"], terms))
    predicate: Predicate | None = None
    if checks:
        predicate = lambda entity: all(check(entity) for check in checks)  # noqa: E731
    watched = record.get("watchedAttributes")
    return Compiled(record, terms, selectors,
                    frozenset(watched) if watched else None,
                    frozenset(record.get("notificationTrigger") or DEFAULT_TRIGGERS), predicate,
                    links)


def _geo_check(geo_q: dict[str, Any], terms: TermMap) -> Predicate:
    query = geo.parse_geo_query(geo_q.get("georel"), geo_q.get("geometry"),
                                geo_q.get("coordinates"), geo_q.get("geoproperty"))
    assert query is not None
    attr = terms.expand(query.geoproperty)
    return lambda entity: any(query.matches(i["value"]) for i in entity["attrs"].get(attr, ())
                              if isinstance(i.get("value"), dict))


class SubscriptionIndex:
    """Compiled subscriptions, found by (tenant, entity type) or (tenant, attribute)."""

    def __init__(self) -> None:
        self._all: dict[tuple[str, str], Compiled] = {}
        self._links: dict[tuple[str, str], int] = {}  # subscriptions with linked q terms
        self._by_type: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)
        self._by_attr: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)
        # Subscriptions with both types and watchedAttributes, by (tenant, type, attr):
        # an update of other attributes never looks at them.
        self._by_type_attr: dict[tuple[str, str, str], set[tuple[str, str]]] = \
            defaultdict(set)
        self._places: dict[tuple[str, str], list[set[tuple[str, str]]]] = {}

    def put(self, compiled: Compiled) -> None:
        self.remove(*compiled.key)
        tenant, key = compiled.record["tenant"], compiled.key
        self._all[key] = compiled
        if compiled.links:
            self._links[key] = compiled.links
        places: list[set[tuple[str, str]]] = []
        types = {t for selector in compiled.selectors for t in set().union(*selector.types)}
        # entityCreated/entityDeleted fire whatever attributes the entity has.
        whole = compiled.watched is None or compiled.triggers & {"entityCreated",
                                                                  "entityDeleted"}
        for type_iri in types:
            if whole:
                places.append(self._by_type[(tenant, type_iri)])
            else:
                places.extend(self._by_type_attr[(tenant, type_iri, attr)]
                              for attr in compiled.watched or ())
        if not types:
            places.extend(self._by_attr[(tenant, attr)] for attr in compiled.watched or ())
        for place in places:
            place.add(key)
        self._places[key] = places

    @property
    def links(self) -> int:
        """The most relationship hops any subscription's q reads through."""
        return max(self._links.values(), default=0)

    def remove(self, tenant: str, subscription_id: str) -> None:
        key = (tenant, subscription_id)
        self._links.pop(key, None)
        if self._all.pop(key, None) is None:
            return
        for place in self._places.pop(key, ()):
            place.discard(key)

    def get(self, tenant: str, subscription_id: str) -> Compiled | None:
        return self._all.get((tenant, subscription_id))

    def all(self) -> list[Compiled]:
        return list(self._all.values())

    def candidates(self, tenant: str, types: Iterable[str], attrs: Iterable[str]
                   ) -> list[Compiled]:
        keys: set[tuple[str, str]] = set()
        attrs = list(attrs)
        for type_iri in types:
            keys |= self._by_type.get((tenant, type_iri), set())
            for attr in attrs:
                keys |= self._by_type_attr.get((tenant, type_iri, attr), set())
        for attr in attrs:
            keys |= self._by_attr.get((tenant, attr), set())
        return [self._all[k] for k in sorted(keys)]

    def __len__(self) -> int:
        return len(self._all)


def _instances(entity: Entity | None) -> dict[tuple[str, str | None], Instance]:
    if entity is None:
        return {}
    return {(iri, inst.get("datasetId")): inst
            for iri, instances in entity["attrs"].items() for inst in instances}


def _stripped(instance: Instance) -> Instance:
    return {k: v for k, v in instance.items() if k not in ("createdAt", "modifiedAt")}


def attribute_changes(change: EntityChange) -> dict[str, set[str]]:
    """attribute IRI -> the attribute triggers it fires (created, updated, deleted)."""
    before, after = _instances(change.previous), _instances(change.entity)
    fired: dict[str, set[str]] = defaultdict(set)
    for key, inst in after.items():
        old = before.get(key)
        if old is None:
            fired[key[0]].add("attributeCreated")
        elif _stripped(old) != _stripped(inst):
            fired[key[0]].add("attributeUpdated")
    for key in before.keys() - after.keys():
        fired[key[0]].add("attributeDeleted")
    return fired


def triggers_of(change: EntityChange, attrs: dict[str, set[str]],
                watched: frozenset[str] | None) -> set[str]:
    """The notification triggers a change fires for a subscription's watched attributes."""
    relevant = {a: t for a, t in attrs.items() if watched is None or a in watched}
    fired = {t for triggers in relevant.values() for t in triggers}
    if change.kind == "created":
        fired.add("entityCreated")
    elif change.kind == "deleted":
        fired.add("entityDeleted")
    elif relevant or (watched is None and change.entity != change.previous):
        fired.add("entityUpdated")
    return fired


def matches(compiled: Compiled, change: EntityChange, attrs: dict[str, set[str]],
            now: str) -> bool:
    record = compiled.record
    if status_of(record, now) != "active" or record.get("timeInterval"):
        return False
    entity = change.entity if change.entity is not None else change.previous
    assert entity is not None
    if compiled.selectors and not any(s.accepts(entity) for s in compiled.selectors):
        return False
    if not compiled.triggers & triggers_of(change, attrs, compiled.watched):
        return False
    return compiled.predicate is None or compiled.predicate(entity)


def notification_entity(compiled: Compiled, change: EntityChange,
                        attrs: dict[str, set[str]]) -> Entity:
    """The entity as a notification shows it: deleted attribute instances as NGSI-LD null
    (beside the instances left), previous values when showChanges asks for them. A
    deleted entity shows what identifies it, and as null the attributes it had when
    showChanges asks for their previous values, or those the subscription watches when
    it asked for attributeDeleted."""
    notification = compiled.record["notification"]
    show_changes = bool(notification.get("showChanges"))
    if change.kind == "deleted":
        assert change.previous is not None
        shown = show_changes or "attributeDeleted" in compiled.triggers
        watched = {} if not shown else {
            iri: instances for iri, instances in change.previous["attrs"].items()
            if compiled.watched is None or iri in compiled.watched}
        return {**change.previous,
                "attrs": _nulled(watched, show_changes, change.at)}
    entity = change.entity
    assert entity is not None
    gone: dict[str, list[Instance]] = {}
    if change.previous is not None:
        for iri, fired in attrs.items():
            if "attributeDeleted" not in fired:
                continue
            kept = {i.get("datasetId") for i in entity["attrs"].get(iri, ())}
            removed = [i for i in change.previous["attrs"].get(iri, ())
                       if i.get("datasetId") not in kept]
            if removed and not kept:
                # The whole attribute went: one null stands for it (clause 4.5.5).
                default = next((i for i in removed if "datasetId" not in i), removed[0])
                removed = [{k: v for k, v in default.items() if k != "datasetId"}]
            if removed:
                gone[iri] = removed
    if show_changes and change.previous is not None:
        entity = _with_previous(entity, change.previous)
    if gone:
        nulled = _nulled(gone, show_changes, change.at)
        entity = {**entity, "attrs": {**entity["attrs"], **{
            iri: [*entity["attrs"].get(iri, ()), *nulls] for iri, nulls in nulled.items()}}}
    return entity


def notification_body(compiled: Compiled, change: EntityChange, attrs: dict[str, set[str]],
                      now: str, data: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The Notification (clause 5.3.1) a change sends to one subscription; ``data`` when
    the caller rendered the entity itself (with linked entities)."""
    record = compiled.record
    entity = notification_entity(compiled, change, attrs)
    view = notification_view(record)
    if data is None:
        data = [render_entity(entity, compiled.terms, view)]
    first = data[0]
    if view.sys_attrs and view.format == KEY_VALUES:
        # System attributes are entity members, shown in keyValues too (clause 4.8).
        first.update({k: entity[k] for k in ("createdAt", "modifiedAt") if k in entity})
    if change.kind == "deleted":
        # When it was deleted is part of the news, system attributes asked for or not.
        data[0] = {"id": first.get("id"), "type": first.get("type"),
                   "deletedAt": change.at, **first}
    return {"id": f"urn:ngsi-ld:Notification:{uuid.uuid4()}", "type": "Notification",
            "subscriptionId": record["id"], "notifiedAt": now, "data": data,
            "triggerReason": sorted(compiled.triggers & triggers_of(
                change, attrs, compiled.watched))[0]}


def notification_view(record: Subscription) -> View:
    """How a subscription wants entities shown in its notifications."""
    notification = record["notification"]
    shown = notification.get("attributes")
    pick, omit = notification.get("pick"), notification.get("omit")
    datasets = record.get("datasetId")
    return View(format=_FORMATS.get(notification.get("format", "normalized"), NORMALIZED),
                sys_attrs=bool(notification.get("sysAttrs")),
                attrs=frozenset(shown) if shown else None, lang=record.get("lang"),
                pick=dict.fromkeys(pick) if pick is not None else None,
                omit=dict.fromkeys(omit) if omit else None,
                dataset_ids=frozenset(datasets) if datasets else None)


def periodic_body(compiled: Compiled, entities: list[Entity], now: str) -> dict[str, Any]:
    """The Notification of a timeInterval subscription: every entity that matches now."""
    view = notification_view(compiled.record)
    data = [render_entity(e, compiled.terms, view) for e in entities
            if (not compiled.selectors or any(s.accepts(e) for s in compiled.selectors))
            and (compiled.predicate is None or compiled.predicate(e))]
    return {"id": f"urn:ngsi-ld:Notification:{uuid.uuid4()}", "type": "Notification",
            "subscriptionId": compiled.record["id"], "notifiedAt": now, "data": data,
            "triggerReason": "timeInterval"}


def _nulled(attrs: dict[str, list[Instance]], show_changes: bool,
            deleted_at: str) -> dict[str, list[Instance]]:
    """Deleted attribute instances as notifications show them: NGSI-LD null with when
    they were deleted (shown with sysAttrs), and the previous value when showChanges asks
    for it (clause 5.2.12)."""
    shown: dict[str, list[Instance]] = {}
    for iri, instances in attrs.items():
        nulls = []
        for inst in instances:
            kind = inst.get("type", "Property")
            member = VALUE_MEMBER.get(kind, "value")
            null: Instance = {"type": kind, member: {"@none": NULL} if member == "languageMap"
                              else NULL}
            for kept in ("datasetId", "createdAt", "modifiedAt"):
                if kept in inst:
                    null[kept] = inst[kept]
            null["deletedAt"] = deleted_at
            if show_changes and member in inst:
                null[_PREVIOUS[member]] = inst[member]
            nulls.append(null)
        shown[iri] = nulls
    return shown


def _with_previous(entity: Entity, previous: Entity) -> Entity:
    """The entity with previousValue (and the like) on instances whose value changed."""
    old = _instances(previous)
    attrs: dict[str, list[Instance]] = {}
    for iri, instances in entity["attrs"].items():
        shown = []
        for inst in instances:
            before = old.get((iri, inst.get("datasetId")))
            inst = dict(inst)
            if before is not None:
                for member, previous_member in _PREVIOUS.items():
                    if member in before and before.get(member) != inst.get(member):
                        inst[previous_member] = before[member]
            shown.append(inst)
        attrs[iri] = shown
    return {**entity, "attrs": attrs}


Match = tuple[Compiled, EntityChange, dict[str, set[str]]]


def matched(index: SubscriptionIndex, changes: Sequence[EntityChange], now: str
            ) -> list[Match]:
    """Each (subscription, change) pair that calls for a notification, in order."""
    found: list[Match] = []
    if not len(index):
        return found
    for change in changes:
        entity = change.entity if change.entity is not None else change.previous
        if entity is None:
            continue
        attrs = attribute_changes(change)
        for compiled in index.candidates(change.tenant, entity["type"], attrs):
            if matches(compiled, change, attrs, now):
                found.append((compiled, change, attrs))
    return found


def outbox_entries(index: SubscriptionIndex, changes: Sequence[EntityChange],
                   now: Callable[[], str]) -> list[OutboxEntry]:
    """The notifications a batch of committed-to-be changes calls for (no joins)."""
    moment = now()
    return [OutboxEntry(change.tenant, compiled.record["id"],
                        orjson.dumps(notification_body(compiled, change, attrs, moment)))
            for compiled, change, attrs in matched(index, changes, moment)]
