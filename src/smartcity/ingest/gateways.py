"""When each LoRaWAN gateway last forwarded an uplink, per tenant, for operators.

Kept in the store's records, so that every worker of ``serve --workers N`` shows the
same gateways: each worker notes contacts in memory (the ingest loop never waits for
the database) and adds them to the stored ones every FLUSH_EVERY seconds, one worker
at a time, keeping the latest contact of each gateway.
"""

from __future__ import annotations

from smartcity.core.ngsild.storage import EntityStore
from smartcity.core.periodic import Periodic, in_turn

KIND = "lorawan-gateways"
FLUSH_EVERY = 2.0
Contacts = dict[tuple[str, str], int]  # (tenant, gateway id) -> last contact, µs


class GatewayContacts:
    def __init__(self, store: EntityStore) -> None:
        self.store = store
        self._noted: Contacts = {}
        self._flushing = Periodic(self.flush, FLUSH_EVERY,
                                  "gateways' last contacts could not be saved")

    def heard(self, tenant: str, gateway: str, at: int) -> None:
        key = (tenant, gateway)
        self._noted[key] = max(self._noted.get(key, at), at)

    async def of(self, tenant: str) -> dict[str, int]:
        """gateway id -> its last contact: the stored ones and this worker's since."""
        latest = await self._stored()
        for key, at in self._noted.items():
            latest[key] = max(latest.get(key, at), at)
        return {gateway: at for (owner, gateway), at in latest.items() if owner == tenant}

    async def flush(self, patience: float = 0) -> None:
        noted, self._noted = self._noted, {}
        if noted:
            await in_turn(self.store, KIND, lambda: self._add(noted),
                          lambda: self._keep(noted), patience)

    async def _add(self, noted: Contacts) -> None:
        stored = await self._stored()
        for (tenant, gateway), at in noted.items():
            if at > stored.get((tenant, gateway), at - 1):
                await self.store.save_record(KIND, tenant, gateway, {
                    "tenant": tenant, "gateway": gateway, "lastContact": at})

    def _keep(self, noted: Contacts) -> None:
        for (tenant, gateway), at in noted.items():
            self.heard(tenant, gateway, at)

    async def _stored(self) -> Contacts:
        return {(r["tenant"], r["gateway"]): r["lastContact"]
                for r in await self.store.records(KIND)}

    def start(self) -> None:
        self._flushing.start()

    async def stop(self) -> None:
        await self._flushing.stop()
