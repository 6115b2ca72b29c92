"""The access policy: roles and what they may do, and the register of personal data.

Read from a TOML file (the platform bundles a default; a city points ``policy`` at its
own). A role holds grants: actions on entity types and attributes in tenants. Personal
attributes, declared in the register with their purpose, legal basis and retention,
are seen only by the resident they are about, by a role whose grant covers personal
data (``personal = "all"``, or ``"assigned"``: staff with a current assignment to that
resident), and by a service the resident consented to.

Types and attributes are named as operators know them: a short name ("Streetlight")
matches every IRI that ends in it (``.../default-context/Streetlight`` and
``https://smartdatamodels.org/dataModel.Streetlighting/Streetlight`` alike), a full IRI
only itself. Decisions are compiled once per (roles, tenant, types, action) and cached:
checking a request costs a dictionary look-up.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from smartcity.core.duration_fields import DurationText, FixedPeriodText

Action = Literal["read", "write", "subscribe", "administer"]
ACTIONS: tuple[Action, ...] = ("read", "write", "subscribe", "administer")
Personal = Literal["none", "assigned", "all"]
ANY = "*"


class Grant(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    actions: tuple[Action, ...] = Field(min_length=1)
    types: tuple[str, ...] = (ANY,)
    attributes: tuple[str, ...] = Field((ANY,), description="attributes the grant "
                                        "covers; others of the types are hidden")
    tenants: tuple[str, ...] = (ANY,)
    personal: Personal = "none"


class Role(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = ""
    inherits: tuple[str, ...] = ()
    grants: tuple[Grant, ...] = ()


class PersonalData(BaseModel):
    """One entry of the register: personal attributes of an entity type."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    attributes: tuple[str, ...] = Field(min_length=1)
    subject: str = Field(description="'id' when the entity is the resident, else the "
                         "attribute that names them (a Relationship or a Property "
                         "holding their entity id)")
    purpose: str
    legal_basis: str
    retention: DurationText = Field(description="ISO 8601 duration the history is kept")
    aggregate: FixedPeriodText | None = Field(None, description="fold older history into "
                                              "aggregates of this fixed period (e.g. PT1H) "
                                              "instead of deleting it")
    category: tuple[str, ...] = ()
    recipients: tuple[str, ...] = ()
    pseudonymise: tuple[str, ...] = Field((), description="personal attributes that "
                                          "those who may not see them get as stable "
                                          "pseudonyms instead of not at all (to count or "
                                          "group by resident without knowing who)")


class Assignments(BaseModel):
    """Which entities say that a member of staff is assigned to a resident, and when."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str = "CareAssignment"
    staff: str = "refStaff"
    client: str = "refClient"
    start: str = "startDate"
    end: str = "endDate"


class PolicyFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    roles: dict[str, Role]
    personal: tuple[PersonalData, ...] = ()
    assignments: Assignments = Assignments()

    @field_validator("roles")
    @classmethod
    def _known_parents(cls, roles: dict[str, Role]) -> dict[str, Role]:
        for name, role in roles.items():
            unknown = set(role.inherits) - roles.keys()
            if unknown:
                raise ValueError(f"role {name} inherits unknown {sorted(unknown)}")
        if "admin" not in roles or "public" not in roles:
            raise ValueError("the policy must define the roles 'admin' and 'public'")
        return roles


def read_policy(path: Path | None) -> PolicyFile:
    """The policy file at ``path``, or the bundled default."""
    raw = path.read_bytes() if path is not None else \
        resources.files("smartcity.security").joinpath("default_policy.toml").read_bytes()
    try:
        return PolicyFile.model_validate(tomllib.loads(raw.decode()))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, ValidationError) as exc:
        raise ValueError(f"The policy {path or 'bundled'} is not valid: {exc}") from None


@dataclass(frozen=True)
class Access:
    """What a caller may do to entities of some types in one tenant.

    ``attrs`` None: every attribute. Personal attributes are further limited:
    ``personal`` says whether the grant covers them ("all"), covers them for assigned
    residents ("assigned"), or not at all (only the resident or a consent opens them).
    """

    allowed: bool
    attrs: frozenset[str] | None = None
    personal: Personal = "none"


DENIED = Access(False)
RANK: dict[Personal, int] = {"none": 0, "assigned": 1, "all": 2}


@dataclass(frozen=True)
class CompiledGrant:
    actions: frozenset[str]
    types: frozenset[str] | None  # None: any type
    attrs: frozenset[str] | None
    tenants: frozenset[str] | None
    personal: Personal


def local_name(iri: str) -> str:
    """The last segment of an IRI (after its last '/', '#' or ':'): what a short name
    in the policy matches, whatever @context named it (``urn:city:owner`` too)."""
    return iri.rsplit("/", 1)[-1].rsplit("#", 1)[-1].rsplit(":", 1)[-1]


def matches(names: frozenset[str] | None, iri: str) -> bool:
    """Whether ``iri`` is one of ``names`` (None: any), by IRI or by short name."""
    return names is None or iri in names or local_name(iri) in names


def _names(values: tuple[str, ...]) -> frozenset[str] | None:
    return None if ANY in values else frozenset(values)


@dataclass(frozen=True)
class PersonalView:
    """What the register says of an entity of some types."""

    attrs: frozenset[str] | None  # personal attribute names (None: all; empty: none)
    subjects: tuple[str, ...]  # what names the resident: "id" or attribute names
    purpose: str  # why the data is held ("" if it holds none)
    pseudonyms: frozenset[str]  # personal attributes others see as pseudonyms


class Register:
    """The personal attributes of entity types, whose they are, and why they are held;
    answers are cached per set of types."""

    def __init__(self, entries: tuple[PersonalData, ...]) -> None:
        self.entries = entries
        self._of = cache(self._view)

    def of(self, types: Iterable[str]) -> PersonalView:
        return self._of(tuple(types))

    def _view(self, types: tuple[str, ...]) -> PersonalView:
        found = [e for e in self.entries
                 if any(matches(frozenset({e.type}), t) for t in types)]
        attrs: frozenset[str] | None = frozenset()
        for entry in found:
            names = _names(entry.attributes)
            attrs = None if attrs is None or names is None else attrs | names
        return PersonalView(attrs, tuple(dict.fromkeys(e.subject for e in found)),
                            "; ".join(e.purpose for e in found),
                            frozenset(n for e in found for n in e.pseudonymise))


class Policy:
    def __init__(self, document: PolicyFile) -> None:
        self.document = document
        self.roles = frozenset(document.roles)
        self._grants = {name: tuple(self._compile(g) for g in self._all(name))
                        for name in document.roles}
        self.register = Register(document.personal)
        self.assignments = document.assignments
        self.decide = cache(self._decide)

    def _all(self, role: str, seen: frozenset[str] = frozenset()) -> list[Grant]:
        """A role's grants and those of the roles it inherits."""
        spec = self.document.roles[role]
        grants = list(spec.grants)
        for parent in spec.inherits:
            if parent not in seen:
                grants += self._all(parent, seen | {role})
        return grants

    @staticmethod
    def _compile(grant: Grant) -> CompiledGrant:
        return CompiledGrant(frozenset(grant.actions), _names(grant.types),
                             _names(grant.attributes), _names(grant.tenants),
                             grant.personal)

    def _grants_for(self, roles: frozenset[str], tenant: str, action: str
                    ) -> list[CompiledGrant]:
        return [g for role in roles for g in self._grants.get(role, ())
                if action in g.actions and (g.tenants is None or tenant in g.tenants)]

    def _decide(self, roles: frozenset[str], tenant: str, types: tuple[str, ...],
                action: str) -> Access:
        """What ``roles`` may do to an entity of ``types`` (any type: empty tuple asks
        whether the action is granted on some type at all)."""
        grants = [g for g in self._grants_for(roles, tenant, action)
                  if not types or any(matches(g.types, t) for t in types)]
        if not grants:
            return DENIED
        attrs: set[str] | None = set()
        personal: Personal = "none"
        for grant in grants:
            if grant.attrs is None:
                attrs = None
            elif attrs is not None:
                attrs |= grant.attrs
            if RANK[grant.personal] > RANK[personal]:
                personal = grant.personal
        return Access(True, frozenset(attrs) if attrs is not None else None, personal)

    def types(self, roles: frozenset[str], tenant: str, action: str
              ) -> frozenset[str] | None:
        """The type names ``roles`` may act on in ``tenant`` (None: any)."""
        found: set[str] = set()
        for grant in self._grants_for(roles, tenant, action):
            if grant.types is None:
                return None
            found |= grant.types
        return frozenset(found)
