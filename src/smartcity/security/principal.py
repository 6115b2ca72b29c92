"""Who is acting: the principal of a request, of a subscription, of a background job.

The principal of the request being served is held in a context variable, so the core's
write path can check it without every call passing it along; work the platform does
on its own (ingestion, retention, health checks) runs as ``SYSTEM``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Principal:
    """An authenticated caller (or the anonymous public).

    ``person`` is the entity id of the resident the caller is, if any: the data subject
    whose personal data they may always read. ``client`` names the service acting, which
    consents are given to. ``tenants`` limits the tenants the caller may reach (None:
    those its roles allow).
    """

    subject: str
    roles: frozenset[str]
    tenants: frozenset[str] | None = None
    person: str | None = None
    client: str | None = None
    system: bool = False
    via: str = field(default="", compare=False)  # how it was authenticated
    # When the local account was made: a token names it, so that a removed account's
    # tokens stay refused when an account of the same name is made again.
    account: str = field(default="", compare=False)

    def to_record(self) -> dict[str, Any]:
        """What a subscription keeps of its owner, to notify only what they may read."""
        return {"subject": self.subject, "roles": sorted(self.roles),
                "tenants": sorted(self.tenants) if self.tenants is not None else None,
                "person": self.person, "client": self.client, "account": self.account}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Principal:
        tenants = record.get("tenants")
        return cls(record["subject"], frozenset(record["roles"]),
                   frozenset(tenants) if tenants is not None else None,
                   record.get("person"), record.get("client"),
                   account=record.get("account", ""))


SYSTEM = Principal("system", frozenset({"admin"}), system=True, via="platform")
PUBLIC = Principal("anonymous", frozenset({"public"}), via="none")

_current: ContextVar[Principal] = ContextVar("principal", default=SYSTEM)


def current() -> Principal:
    """The principal the running code acts for."""
    return _current.get()


@contextmanager
def acting_as(principal: Principal) -> Iterator[None]:
    token = _current.set(principal)
    try:
        yield
    finally:
        _current.reset(token)
