"""Specification of the LoRaWAN gateways' last contacts (``GatewayContacts``): the same
for every worker sharing a store, the latest contact kept, tenants apart."""

from __future__ import annotations

from smartcity.ingest.gateways import GatewayContacts
from smartcity.store.backend import open_store


async def test_every_worker_sees_each_gateway_s_latest_contact(db: str) -> None:
    one, two = await open_store(db), await open_store(db)
    try:
        first, second = GatewayContacts(one), GatewayContacts(two)
        first.heard("north", "roof", 300)
        first.heard("north", "tower", 100)
        second.heard("north", "roof", 200)  # older than what the first worker heard
        second.heard("south", "roof", 50)
        assert await first.of("north") == {"roof": 300, "tower": 100}  # not yet stored
        await first.flush()
        await second.flush()
        for contacts in (first, second):
            assert await contacts.of("north") == {"roof": 300, "tower": 100}
            assert await contacts.of("south") == {"roof": 50}
        second.heard("north", "tower", 400)
        await second.flush()
        assert await first.of("north") == {"roof": 300, "tower": 400}
    finally:
        await one.close()
        await two.close()
