"""Access control applied: the one place every read and write of entities passes
(``AccessControl`` of the core), for the principal of the running request.

An entity is visible when a grant lets the caller read one of its types, or when the
caller is the resident it is about. Its attributes are then shown as far as the grant
names them; personal ones (see the register in ``policy``) only to the resident, to a
grant that covers personal data (all of it, or that of residents the caller is
currently assigned to), or to a service the resident consented to.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson

from smartcity.core.ngsild.errors import AccessDenied, Unauthorized
from smartcity.core.ngsild.model import RELATIONSHIP, Entity, value_of
from smartcity.core.ngsild.query import EntityQuery
from smartcity.security.policy import RANK, Access, Policy, matches
from smartcity.security.principal import PUBLIC, Principal, current

# What a pseudonymised attribute instance keeps besides its pseudonymised value.
PSEUDONYM_KEEPS = frozenset({"type", "observedAt", "createdAt", "modifiedAt", "datasetId"})
# Residents the caller is currently assigned to, in a tenant.
Assigned = Callable[[Principal, str], Awaitable[frozenset[str]]]
# Whether a service (client) has a resident's consent, now.
Consented = Callable[[str, str], bool]
# What a caller was shown of one entity's personal data: its id, the residents it is
# about, the personal attributes shown, the purpose the data is held for.
Shown = tuple[str, list[str], list[str], str]
# Told, once per read, of the personal data a caller was shown.
PersonalRead = Callable[[Principal, str, list[Shown]], None]


def deny(principal: Principal, message: str) -> AccessDenied | Unauthorized:
    """The error for a refused act: 401 for an anonymous caller (who should log in),
    403 for an authenticated one."""
    if principal == PUBLIC:
        return Unauthorized(f"{message}: authenticate (Authorization: Bearer <token> or "
                            "X-API-Key)")
    return AccessDenied(message)


def subjects_of(entity: Entity, names: Iterable[str]) -> list[str]:
    """The residents an entity is about: its id, or the entity ids its naming
    attributes hold (a Relationship's object, or a Property's text or list of texts)."""
    found: list[str] = []
    for name in names:
        if name == "id":
            found.append(entity["id"])
            continue
        for iri, instances in entity.get("attrs", {}).items():
            if not matches(frozenset({name}), iri):
                continue
            for instance in instances:
                value = instance.get("object") if instance.get("type") == RELATIONSHIP \
                    else value_of(instance)
                values = value if isinstance(value, list) else [value]
                found += [v for v in values if isinstance(v, str)]
    return found


@dataclass(frozen=True)
class Sight:
    """What a caller sees of one entity: None attrs means every attribute."""

    attrs: frozenset[str] | None
    personal: frozenset[str] | None  # the entity type's personal attributes (None: all)
    personal_open: bool
    subjects: tuple[str, ...]
    purpose: str = ""  # why the register says the personal data is held
    pseudonyms: frozenset[str] = frozenset()  # personal attributes shown as pseudonyms

    def shows(self, iri: str) -> bool:
        if not matches(self.attrs, iri):
            return False
        return self.personal_open or not _is_personal(self.personal, iri)

    def pseudonymises(self, iri: str) -> bool:
        """Whether ``iri``, hidden as personal, is shown as a pseudonym instead."""
        return bool(self.pseudonyms) and matches(self.attrs, iri) \
            and not self.personal_open and matches(self.pseudonyms, iri)


EVERYTHING = Sight(None, frozenset(), True, ())


def _is_personal(personal: frozenset[str] | None, iri: str) -> bool:
    return personal is None or (bool(personal) and matches(personal, iri))


class Guard:
    def __init__(self, policy: Policy, assigned: Assigned, consented: Consented,
                 pseudonym: Callable[[str], str], personal_read: PersonalRead | None = None
                 ) -> None:
        self.policy = policy
        self.pseudonym = pseudonym
        self.assigned = assigned
        self.consented = consented
        self.personal_read = personal_read

    # -- decisions -------------------------------------------------------------
    def decide(self, principal: Principal, tenant: str, types: Sequence[str],
               action: str) -> Access:
        """What ``principal`` may do to an entity of ``types``: allowed if one of its
        types allows it (a read of a multi-typed entity)."""
        if principal.tenants is not None and tenant not in principal.tenants:
            return Access(False)
        return self.policy.decide(principal.roles, tenant, tuple(types), action)

    def decide_every(self, principal: Principal, tenant: str, types: Sequence[str],
                     action: str) -> Access:
        """The same, allowed only if every one of ``types`` allows it, as far as all of
        them do (writes: a type the caller may not write cannot ride on one they may)."""
        found = [self.decide(principal, tenant, (t,), action) for t in types]
        if not found or not all(a.allowed for a in found):
            return Access(False)
        attrs = [a.attrs for a in found if a.attrs is not None]
        personal = min((a.personal for a in found), key=lambda p: RANK[p])
        return Access(True, frozenset.intersection(*attrs) if attrs else None, personal)

    def require(self, tenant: str, action: str, types: Sequence[str] = (),
                what: str = "this") -> Principal:
        """The caller, if they may do ``action`` on some (or the given) types in
        ``tenant``; else the refusal."""
        principal = current()
        if not principal.system and not self.decide(principal, tenant, types,
                                                     action).allowed:
            raise deny(principal, f"You may not {action} {what}"
                       + (f" in tenant {tenant!r}" if tenant else ""))
        return principal

    def check_subscription(self, tenant: str, types: Sequence[str],
                           filters: frozenset[str], linked_filters: frozenset[str]
                           ) -> Principal:
        """The caller, if they may subscribe to entities of ``types`` (to some type, when
        none is named) with these filters (on the entities, and on linked ones);
        notifications are later cut to what they may read, so a filter on what they may
        not see is all there is to refuse."""
        principal = self.require(tenant, "subscribe", (), "to notifications")
        if principal.system:
            return principal
        for type_iri in types:
            if not self.decide(principal, tenant, (type_iri,), "subscribe").allowed:
                raise deny(principal, f"You may not subscribe to entities of type {type_iri}")
        self._check_filters(principal, tenant, filters,
                            tuple(frozenset({t}) for t in types) or None)
        if linked_filters and not self._reads_everything(principal, tenant):
            # Notifications match linked entities as stored, whoever subscribed.
            raise deny(principal, "Only those who may read every entity may subscribe "
                       "with q terms on linked entities")
        return principal

    def _reads_everything(self, principal: Principal, tenant: str) -> bool:
        return self.policy.types(principal.roles, tenant, "read") is None and \
            self.decide(principal, tenant, (), "read").personal == "all"

    def may_manage(self, tenant: str, owner: dict[str, Any] | None) -> None:
        """AccessDenied unless the caller owns what ``owner`` describes (a subscription's
        owner) or may administer the tenant."""
        principal = current()
        if principal.system or (owner is not None and owner["subject"] == principal.subject):
            return
        if not self.decide(principal, tenant, (), "administer").allowed:
            raise deny(principal, "This belongs to another caller")

    def readable_types(self, tenant: str, types: dict[str, dict[str, Any]]
                       ) -> dict[str, dict[str, Any]]:
        """Of a map type -> attribute -> anything, what the caller may read."""
        principal = current()
        if principal.system:
            return types
        shown = {}
        for type_iri, attrs in types.items():
            access = self.decide(principal, tenant, (type_iri,), "read")
            if access.allowed:
                shown[type_iri] = {a: v for a, v in attrs.items() if matches(access.attrs, a)}
        return shown

    async def sight(self, principal: Principal, tenant: str, entity: Entity,
                    action: str = "read", *, strict: bool = False) -> Sight | None:
        """What ``principal`` may see (or change) of ``entity``; None: nothing.

        ``strict`` (writes, and history, which may hold other residents' past data):
        every type of the entity must allow the act, and the data is a resident's own
        only when they are the only resident it names.
        """
        if principal.system:
            return EVERYTHING
        if principal.tenants is not None and tenant not in principal.tenants:
            return None
        types = entity.get("type", ())
        view = self.policy.register.of(types)
        subjects = tuple(dict.fromkeys(subjects_of(entity, view.subjects))) \
            if view.subjects else ()
        if action == "read" and principal.person is not None and (
                set(subjects) == {principal.person} if strict
                else principal.person in subjects):
            return Sight(None, view.attrs, True, subjects, view.purpose)  # their own data
        access = self.decide_every(principal, tenant, types, action) if strict \
            else self.decide(principal, tenant, types, action)
        if not access.allowed:
            return None
        if view.attrs is not None and not view.attrs:
            return Sight(access.attrs, view.attrs, True, ())
        return Sight(access.attrs, view.attrs,
                     await self._personal_open(principal, tenant, access, subjects),
                     subjects, view.purpose, view.pseudonyms)

    async def _personal_open(self, principal: Principal, tenant: str, access: Access,
                             subjects: Sequence[str]) -> bool:
        """Whether the caller may see the personal data of every resident ``subjects``
        names: with a grant over all personal data, or that resident's consent, or a
        current assignment to them."""
        if access.personal == "all":
            return True
        if not subjects:
            return False
        if principal.client and all(self.consented(principal.client, s) for s in subjects):
            return True
        return access.personal == "assigned" and \
            set(subjects) <= await self.assigned(principal, tenant)

    # -- the core's questions (AccessControl) --------------------------------------
    async def readable_query(self, tenant: str, query: EntityQuery) -> EntityQuery:
        principal = current()
        if principal.system:
            return query
        if not self.decide(principal, tenant, (), "read").allowed:
            raise deny(principal, "You may not read entities"
                       + (f" in tenant {tenant!r}" if tenant else ""))
        names = self.policy.types(principal.roles, tenant, "read")
        selection = query.selection
        if names is not None:
            if selection.types is None:
                raise deny(principal, "You may read entities of the types "
                           f"{', '.join(sorted(names))} only: name them with type=")
            kept = tuple(c for c in selection.types if any(matches(names, t) for t in c))
            if not kept:
                raise deny(principal, "You may not read entities of the types asked for")
            selection = replace(selection, types=kept)
        # attrs selects the entities that have one of them: a filter too.
        self._check_filters(principal, tenant, query.filters | (selection.attrs or set()),
                            selection.types)
        self._check_filters(principal, tenant, query.linked_filters, None)
        return replace(query, selection=selection)

    def _check_filters(self, principal: Principal, tenant: str, filters: frozenset[str],
                       types: tuple[frozenset[str], ...] | None) -> None:
        """Refuse a filter (q, geoproperty, orderBy) on an attribute the caller may not
        read, or on personal data unless their grant covers all of it: which entities
        match would tell what they may not see."""
        candidates = [(t,) for conjunction in types for t in conjunction] if types \
            else [(entry.type,) for entry in self.policy.register.entries] + [()]
        for attr in filters:
            for type_names in candidates:
                access = self.decide(principal, tenant, type_names, "read")
                if not access.allowed:
                    continue
                personal = self.policy.register.of(type_names).attrs
                if not matches(access.attrs, attr) or (
                        _is_personal(personal, attr) and access.personal != "all"):
                    raise deny(principal, f"You may not filter or sort on {attr}")

    async def reveal(self, tenant: str, entities: list[Entity]) -> list[Entity]:
        principal = current()
        if principal.system:
            return entities
        shown = []
        personal: list[Shown] = []
        for entity in entities:
            sight = await self.sight(principal, tenant, entity)
            if sight is None:
                continue
            visible = {k: v if sight.shows(k) else [self._pseudonymised(i) for i in v]
                       for k, v in entity["attrs"].items()
                       if sight.shows(k) or sight.pseudonymises(k)}
            if visible.keys() != entity["attrs"].keys() or sight.pseudonyms:
                entity = _with_attrs(entity, visible)
            shown.append(entity)
            _personal_shown(entity, sight, personal)
        self._tell(principal, tenant, personal)
        return shown

    def _pseudonymised(self, instance: dict[str, Any]) -> dict[str, Any]:
        """The instance with its value (each text, or the JSON of anything else) made a
        pseudonym, and its sub-attributes left out: they may tell who it is."""
        def hidden(value: Any) -> Any:
            if isinstance(value, list):
                return [hidden(v) for v in value]
            return self.pseudonym(value if isinstance(value, str) else
                                  orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode())
        kept = {k: v for k, v in instance.items() if k in PSEUDONYM_KEEPS}
        for member in ("value", "object"):
            if member in instance:
                kept[member] = hidden(instance[member])
        return kept

    def _tell(self, principal: Principal, tenant: str, personal: list[Shown]) -> None:
        if personal and self.personal_read is not None:
            self.personal_read(principal, tenant, personal)

    async def visible_attributes(self, tenant: str, entities: Sequence[Entity]
                                 ) -> dict[str, Callable[[str], bool] | None]:
        """For history: per entity (as stored now), which attributes the caller sees
        (None: the entity is not visible)."""
        principal = current()
        found: dict[str, Callable[[str], bool] | None] = {}
        personal: list[Shown] = []
        for entity in entities:
            sight = await self.sight(principal, tenant, entity, strict=True)
            found[entity["id"]] = sight.shows if sight is not None else None
            if sight is not None:
                _personal_shown(entity, sight, personal)
        self._tell(principal, tenant, personal)
        return found

    def subject_attributes(self, types: Sequence[str], attrs: Iterable[str]
                           ) -> frozenset[str]:
        names = frozenset(self.policy.register.of(types).subjects) - {"id"}
        return frozenset(a for a in attrs if names and matches(names, a))

    async def check_write(self, tenant: str, after: Entity | None,
                          before: Entity | None) -> None:
        principal = current()
        if principal.system:
            return
        changed = _changed(after, before)
        for entity in (before, after):
            if entity is None:
                continue
            sight = await self.sight(principal, tenant, entity, "write", strict=True)
            if sight is None:
                raise deny(principal, f"You may not write entities of type "
                           f"{', '.join(entity.get('type', ()))} (entity {entity['id']})")
            if not sight.personal_open and (sight.personal is None or sight.personal):
                # Any change of an entity about a resident (a door's lock state, a
                # command to unlock it) is as sensitive as their personal data.
                raise deny(principal, f"Entity {entity['id']} holds a resident's "
                           "personal data: you may not change it")
            for attr in changed:
                if not sight.shows(attr):
                    raise deny(principal, f"You may not write {attr} of entity "
                               f"{entity['id']}")


def _with_attrs(entity: Entity, attrs: dict[str, Any]) -> Entity:
    """The entity with only ``attrs``; its modifiedAt is theirs (the entity's own would
    tell when a hidden attribute last changed)."""
    shown = {**entity, "attrs": attrs}
    if "modifiedAt" in entity:
        shown["modifiedAt"] = max((i.get("modifiedAt", "") for v in attrs.values()
                                   for i in v), default=entity.get("createdAt", ""))
    return shown


def _personal_shown(entity: Entity, sight: Sight, found: list[Shown]) -> None:
    if sight.subjects and sight.personal_open:
        attrs = [k for k in entity["attrs"] if _is_personal(sight.personal, k)]
        if attrs:
            found.append((entity["id"], list(sight.subjects), attrs, sight.purpose))


def _changed(after: Entity | None, before: Entity | None) -> set[str]:
    old: dict[str, Any] = before["attrs"] if before else {}
    new: dict[str, Any] = after["attrs"] if after else {}
    return {k for k in old.keys() | new.keys() if old.get(k) != new.get(k)}
