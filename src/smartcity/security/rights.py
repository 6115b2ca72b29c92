"""Residents' rights: a copy of everything the platform holds linked to a resident
(GDPR art. 15), in portable formats (art. 20): JSON-LD and CSV, in one zip archive.

What is "linked to me" is decided by the register of personal data: entities of a
personal type whose naming attribute holds the resident's entity id, and the entity
that is the resident. Their history comes along.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from smartcity.core.ngsild.context import CORE_CONTEXT_URL, TermMap
from smartcity.core.ngsild.history_storage import SeriesFilter, StoredInstance, Window
from smartcity.core.ngsild.instants import format_instant
from smartcity.core.ngsild.model import Entity, value_of
from smartcity.core.ngsild.render import View, render_entity, render_instance
from smartcity.core.ngsild.storage import EntityStore, Selection
from smartcity.security.guard import subjects_of
from smartcity.security.policy import Register, matches

MAX_ENTITIES = 100_000
README = """This archive holds a copy of the data the city's platform keeps about you
(GDPR article 15), in formats other systems can read (article 20).

entities.jsonld  the entities linked to you, as they are now (NGSI-LD, JSON-LD)
history.jsonld   the earlier values of their attributes
entities.csv     the same values as a table: one row per attribute value
consents.json    the consents you have given to services
access-log.json  who accessed your personal data, when and for what purpose
register.json    what the city collects about people, why, and for how long
"""


@dataclass
class PersonalCopy:
    person: str
    entities: dict[str, list[Entity]] = field(default_factory=dict)  # tenant -> entities
    history: dict[str, dict[str, list[StoredInstance]]] = field(default_factory=dict)


async def collect(store: EntityStore, register: Register, person: str,
                  tenants: Sequence[str]) -> PersonalCopy:
    """Everything linked to ``person`` in ``tenants``, with its history."""
    copy = PersonalCopy(person)
    for tenant in tenants:
        found = await store.get_many(tenant, [person])
        for type_iri in await store.type_attributes(tenant):
            names = register.of([type_iri]).subjects
            if not names:
                continue
            page = await store.query(
                tenant, Selection(types=(frozenset({type_iri}),)),
                lambda e, names=names: person in subjects_of(e, names), 0, MAX_ENTITIES,
                False)
            found.update((e["id"], e) for e in page.entities)
        if found:
            copy.entities[tenant] = list(found.values())
            history = await store.history.instances(
                tenant, list(found), SeriesFilter(), Window(timeproperty="createdAt"))
            copy.history[tenant] = {
                entity_id: _theirs(found[entity_id], instances, register, person)
                for entity_id, instances in history.items()}
    return copy


def _theirs(entity: Entity, history: list[StoredInstance], register: Register,
            person: str) -> list[StoredInstance]:
    """The history of an entity that is the resident's to have: all of it when it has
    only ever been about them; else its personal attributes are left out (they may
    be a former resident's)."""
    view = register.of(entity["type"])
    past = {**entity, "attrs": {}}
    for stored in history:
        past["attrs"].setdefault(stored.attr, []).append(stored.body)
    residents = set(subjects_of(entity, view.subjects)) | set(
        subjects_of(past, view.subjects))
    if residents <= {person} or (view.attrs is not None and not view.attrs):
        return history
    return [i for i in history
            if view.attrs is not None and not matches(view.attrs, i.attr)]


def archive(copy: PersonalCopy, terms: TermMap, consents: list[dict[str, Any]],
            access_log: list[dict[str, Any]], register: list[dict[str, Any]]) -> bytes:
    """The zip archive a resident downloads."""
    view = View(sys_attrs=True)
    entities = [{**render_entity(e, terms, view), "tenant": tenant}
                for tenant, found in copy.entities.items() for e in found]
    history = [{"tenant": tenant, "id": entity_id,
                "instances": [{"attribute": terms.compact(i.attr),
                               "recordedAt": format_instant(i.created),
                               **render_instance(i.body, terms, view)} for i in instances]}
               for tenant, by_id in copy.history.items() for entity_id, instances in
               by_id.items()]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("README.txt", README)
        zipped.writestr("entities.jsonld", _json({"@context": CORE_CONTEXT_URL,
                                                  "person": copy.person,
                                                  "entities": entities}))
        zipped.writestr("history.jsonld", _json({"@context": CORE_CONTEXT_URL,
                                                 "history": history}))
        zipped.writestr("entities.csv", _csv(copy, terms))
        zipped.writestr("consents.json", _json(consents))
        zipped.writestr("access-log.json", _json(access_log))
        zipped.writestr("register.json", _json(register))
    return buffer.getvalue()


def _json(data: Any) -> bytes:
    return orjson.dumps(data, option=orjson.OPT_INDENT_2)


def _csv(copy: PersonalCopy, terms: TermMap) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["tenant", "entity", "type", "attribute", "datasetId", "value",
                     "observedAt", "recordedAt", "current"])
    for tenant, entities in copy.entities.items():
        history = copy.history.get(tenant, {})
        for entity in entities:
            types = " ".join(terms.compact(t) for t in entity["type"])
            for attr, instances in sorted(entity["attrs"].items()):
                for instance in instances:
                    writer.writerow(_row(tenant, entity["id"], types, terms.compact(attr),
                                         instance, instance.get("modifiedAt", ""), True))
            for stored in history.get(entity["id"], ()):
                writer.writerow(_row(tenant, entity["id"], types, terms.compact(stored.attr),
                                     stored.body, format_instant(stored.created), False))
    return out.getvalue()


def _row(tenant: str, entity_id: str, types: str, attr: str, instance: dict[str, Any],
         recorded: str, current: bool) -> list[str]:
    value = value_of(instance)
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return [tenant, entity_id, types, attr, instance.get("datasetId", ""), text,
            instance.get("observedAt", ""), recorded, "yes" if current else "no"]
