"""Residents' consents: sharing their personal data with a named service, for a
purpose, until a date. Authorization reads them from memory on every decision, so a
consent given or withdrawn counts from the next request on."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from smartcity.core.ngsild.errors import BadRequestData, ResourceNotFound
from smartcity.core.ngsild.storage import EntityStore

CONSENTS = "consent"


class ConsentSpec(BaseModel):
    """A consent as the resident gives it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    service: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}$",
                         description="the client id of the service (oidc:<id> for a "
                         "client of the city's identity provider)")
    purpose: str = Field(min_length=1, max_length=500)
    until: AwareDatetime = Field(description="when the consent ends")


def _key(person: str, service: str, purpose: str) -> str:
    return f"{person}\n{service}\n{purpose}"


class Consents:
    kinds = (CONSENTS,)

    def __init__(self, store: EntityStore, now: Callable[[], datetime]) -> None:
        self.store = store
        self.now = now
        self.versions: dict[str, int] = {}
        self._records: dict[str, dict[str, str]] = {}
        self._until: dict[tuple[str, str], list[str]] = {}  # (service, person) -> ends

    async def reload(self) -> None:
        versions = await self.store.cache_versions()
        self.versions = {CONSENTS: versions.get(CONSENTS, 0)}
        self._records = {_key(r["person"], r["service"], r["purpose"]): r
                         for r in await self.store.records(CONSENTS)}
        self._index()

    def _index(self) -> None:
        until: dict[tuple[str, str], list[str]] = {}
        for record in self._records.values():
            until.setdefault((record["service"], record["person"]), []).append(record["until"])
        self._until = until

    def consented(self, service: str, person: str) -> bool:
        now = self.now().isoformat()
        return any(end > now for end in self._until.get((service, person), ()))

    def of(self, person: str) -> list[dict[str, str]]:
        return sorted((r for r in self._records.values() if r["person"] == person),
                      key=lambda r: (r["service"], r["purpose"]))

    async def grant(self, person: str, spec: ConsentSpec) -> dict[str, str]:
        if spec.until <= self.now():
            raise BadRequestData("A consent must end in the future")
        record = {"person": person, "service": spec.service, "purpose": spec.purpose,
                  "until": spec.until.astimezone(self.now().tzinfo).isoformat(),
                  "granted": self.now().isoformat()}
        key = _key(person, spec.service, spec.purpose)
        self.versions[CONSENTS] = await self.store.save_record(CONSENTS, "", key, record)
        self._records[key] = record
        self._index()
        return record

    async def withdraw(self, person: str, service: str, purpose: str | None) -> int:
        """Withdraw the consents given to ``service`` (for ``purpose``, or all)."""
        keys = [k for k, r in self._records.items() if r["person"] == person
                and r["service"] == service and purpose in (None, r["purpose"])]
        if not keys:
            raise ResourceNotFound(f"No consent given to {service}")
        for key in keys:
            _, self.versions[CONSENTS] = await self.store.delete_record(CONSENTS, "", key)
            del self._records[key]
        self._index()
        return len(keys)
