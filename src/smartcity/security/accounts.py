"""Local accounts of the embedded identity provider: users (password grant), clients
(client-credentials grant) and API keys (open-data developers).

Kept in the store as records and in memory, like the device registry: checking an API
key reads no database, and other workers' changes arrive through ``SharedCaches``.
Only hashes of secrets are stored; a secret is shown once, when it is made.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from smartcity.core.ngsild.errors import AlreadyExists, BadRequestData, ResourceNotFound
from smartcity.core.ngsild.storage import EntityStore
from smartcity.security.passwords import (
    digest,
    hash_secret,
    new_secret,
    same_digest,
    verify_secret,
)
from smartcity.security.principal import Principal

Kind = Literal["user", "client", "apikey"]
RECORD_KIND: dict[Kind, str] = {"user": "auth-user", "client": "auth-client",
                                "apikey": "auth-apikey"}
MIN_PASSWORD = 12
ACCOUNT_NAME = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"
EMAIL_ADDRESS = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
_API_KEY = re.compile(r"^sc_([0-9a-f]{12})_[A-Za-z0-9_-]{20,}$")


class AccountSpec(BaseModel):
    """An account as an administrator describes it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=ACCOUNT_NAME,
                      description="user name, client id, or the owner of an API key")
    roles: tuple[str, ...] = Field(min_length=1)
    tenants: tuple[str, ...] | None = Field(None, description="tenants the account may "
                                            "reach; any its roles allow if unset")
    person: str | None = Field(None, description="entity id of the resident this account "
                               "belongs to (their personal data is theirs to read)")
    password: str | None = Field(None, description="users only; at least 12 characters")
    email: str | None = Field(None, pattern=EMAIL_ADDRESS,
                              description="how to reach the account's holder")

    @field_validator("password")
    @classmethod
    def _long_enough(cls, value: str | None) -> str | None:
        if value is not None and len(value) < MIN_PASSWORD:
            raise ValueError(f"a password needs at least {MIN_PASSWORD} characters")
        return value


@dataclass(frozen=True)
class Issued:
    """A new account and its secret, which is never shown again."""

    kind: Kind
    name: str
    secret: str


def _public(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "secret"}


class Accounts:
    kinds = tuple(RECORD_KIND.values())

    def __init__(self, store: EntityStore, roles: frozenset[str]) -> None:
        self.store = store
        self.roles = roles  # the roles the policy defines
        self.versions: dict[str, int] = {}
        self._records: dict[Kind, dict[str, dict[str, Any]]] = {k: {} for k in RECORD_KIND}

    async def reload(self) -> None:
        versions = await self.store.cache_versions()
        self.versions = {kind: versions.get(kind, 0) for kind in self.kinds}
        for kind, record_kind in RECORD_KIND.items():
            self._records[kind] = {r["name"]: r for r in await self.store.records(record_kind)}

    def empty(self) -> bool:
        return not any(self._records.values())

    def holds(self, subject: str, made: str) -> bool:
        """Whether the account a principal's subject names ("user:alice"), made at
        ``made``, exists."""
        kind, _, name = subject.partition(":")
        record = self._records.get(kind, {}).get(name)  # type: ignore[call-overload]
        return record is not None and record["created"] == made

    def list(self, kind: Kind) -> list[dict[str, Any]]:
        return [_public(r) for _, r in sorted(self._records[kind].items())]

    async def add(self, kind: Kind, spec: AccountSpec, created: str) -> Issued:
        """Make an account; its secret (password as given, or a generated client secret
        or API key) comes back once."""
        unknown = set(spec.roles) - self.roles
        if unknown:
            raise BadRequestData(f"No such role: {', '.join(sorted(unknown))}; the policy "
                                 f"defines {', '.join(sorted(self.roles))}")
        if (kind == "user") != (spec.password is not None):
            raise BadRequestData("A user needs a password; clients and API keys get a "
                                 "generated secret")
        record = {"name": spec.name, "roles": list(spec.roles),
                  "tenants": list(spec.tenants) if spec.tenants is not None else None,
                  "person": spec.person, "email": spec.email, "created": created}
        if kind == "apikey":
            key_id = secrets.token_hex(6)
            secret = f"sc_{key_id}_{new_secret()}"
            record.update(name=key_id, owner=spec.name, secret=digest(secret))
        else:
            if spec.name in self._records[kind]:
                raise AlreadyExists(f"The {kind} {spec.name} exists")
            secret = spec.password or new_secret()
            record["secret"] = hash_secret(secret)
        await self._save(kind, record)
        return Issued(kind, record["name"], secret)

    async def remove(self, kind: Kind, name: str) -> None:
        if name not in self._records[kind]:
            raise ResourceNotFound(f"No {kind} named {name}")
        _, version = await self.store.delete_record(RECORD_KIND[kind], "", name)
        self.versions[RECORD_KIND[kind]] = version
        del self._records[kind][name]

    async def _save(self, kind: Kind, record: dict[str, Any]) -> None:
        version = await self.store.save_record(RECORD_KIND[kind], "", record["name"], record)
        self.versions[RECORD_KIND[kind]] = version
        self._records[kind][record["name"]] = record

    # -- checking credentials ----------------------------------------------------
    async def password(self, name: str, password: str) -> Principal | None:
        return await self._secret("user", name, password)

    async def client(self, name: str, secret: str) -> Principal | None:
        return await self._secret("client", name, secret)

    async def _secret(self, kind: Kind, name: str, secret: str) -> Principal | None:
        record = self._records[kind].get(name)
        if not await verify_secret(record["secret"] if record else None, secret):
            return None
        assert record is not None
        return _principal(kind, record)

    def api_key(self, key: str) -> Principal | None:
        match = _API_KEY.match(key)
        record = self._records["apikey"].get(match.group(1)) if match else None
        if record is None or not same_digest(record["secret"], key):
            return None
        return _principal("apikey", record)


def _principal(kind: Kind, record: dict[str, Any]) -> Principal:
    tenants = record.get("tenants")
    return Principal(f"{kind}:{record['name']}", frozenset(record["roles"]),
                     frozenset(tenants) if tenants is not None else None,
                     record.get("person"),
                     client=record.get("owner", record["name"]) if kind != "user" else None,
                     via=kind, account=record["created"])


FIRST_ADMIN = "admin"


async def first_admin(accounts: Accounts, created: str) -> Issued | None:
    """On a platform with no account at all, an administrator client (the first
    credential, which makes the others); None when accounts exist. Workers sharing a
    store make it once: the holder of the right does, the others find it made."""
    async with accounts.store.exclusive("first-admin") as held:
        await accounts.reload()
        if not held or not accounts.empty():
            return None
        return await accounts.add("client", AccountSpec(name=FIRST_ADMIN, roles=("admin",)),
                                  created)
