"""Device health: which devices are silent longer than they should be or run low on
battery, raised as NGSI-LD ``Alert`` entities (Smart Data Models) so that subscriptions
and history work on them, and an overview for operators.

A device's last report and battery are read from its ``Device`` entity (written by the
ingest path at most once a minute); its expected reporting interval is provisioned on
the device or its group. A device that never reported, or has no expected interval, is
of unknown state, never alarmed for silence.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from smartcity.core.clock import Clock
from smartcity.core.ngsild.context import TermMap
from smartcity.core.ngsild.entities import BatchResult, EntityService
from smartcity.core.ngsild.instants import format_instant, parse_instant
from smartcity.core.ngsild.model import Entity, value_of
from smartcity.core.ngsild.normalize import parse_entity
from smartcity.core.ngsild.temporal import now_micros
from smartcity.ingest.measures import (
    BATTERY_LEVEL,
    DEVICE_STATE,
    LAST_VALUE_REPORTED,
    device_entity_id,
)
from smartcity.ingest.provisioning import entity_type
from smartcity.ingest.registry import DeviceRegistry, Provisioned

SILENT, LOW_BATTERY = "deviceSilent", "lowBattery"
# Smart Data Models: dataModel.Alert
ALERT = "https://smartdatamodels.org/dataModel.Alert/"
DESCRIPTION = "http://purl.org/dc/terms/description"
# Reports reach the Device entity at most once a minute: silence counts beyond that.
SLACK = 60_000_000


@dataclass(frozen=True)
class Condition:
    kind: str  # SILENT or LOW_BATTERY
    description: str


def conditions(provisioned: Provisioned, reported: int | None, battery: float | None,
               now: int, low_battery: float) -> list[Condition]:
    """What is wrong with a device now (nothing: an empty list)."""
    found = []
    interval = provisioned.expected_interval
    if interval is not None and reported is not None \
            and now - reported > interval * 1_000_000 + SLACK:
        found.append(Condition(SILENT, f"No report since {format_instant(reported)} "
                                       f"(expected every {interval:g} s)"))
    if battery is not None:
        level = battery / 100 if battery > 1 else battery
        if level < low_battery:
            found.append(Condition(LOW_BATTERY, f"Battery at {level:.0%}"))
    return found


def alert_id(device_id: str, kind: str) -> str:
    return f"urn:ngsi-ld:Alert:{device_id}:{kind}"


def alert_fragment(provisioned: Provisioned, condition: Condition, now: int
                   ) -> dict[str, Any]:
    device_id = provisioned.device.device_id
    return {"id": alert_id(device_id, condition.kind), "type": ALERT + "Alert",
            ALERT + "category": {"type": "Property", "value": "device"},
            ALERT + "subCategory": {"type": "Property", "value": condition.kind},
            ALERT + "severity": {"type": "Property", "value": "medium"},
            DESCRIPTION: {"type": "Property", "value": condition.description},
            ALERT + "dateIssued": {"type": "Property", "value": {
                "@type": "DateTime", "@value": format_instant(now)}},
            ALERT + "alertSource": {"type": "Relationship",
                                    "object": device_entity_id(device_id)}}


def reading(device: Entity | None) -> tuple[int | None, float | None]:
    """(last report, battery) of a Device entity."""
    if device is None:
        return None, None
    attrs = device["attrs"]
    reported = value_of(attrs[LAST_VALUE_REPORTED][0]) if LAST_VALUE_REPORTED in attrs \
        else None
    if isinstance(reported, dict):
        reported = reported.get("@value")
    battery = value_of(attrs[BATTERY_LEVEL][0]) if BATTERY_LEVEL in attrs else None
    return (parse_instant(reported) if isinstance(reported, str) else None,
            float(battery) if isinstance(battery, int | float) else None)


class HealthWatch:
    def __init__(self, registry: DeviceRegistry, entities: EntityService, terms: TermMap,
                 clock: Clock, low_battery: float) -> None:
        self.registry = registry
        self.entities = entities
        self.terms = terms
        self.clock = clock
        self.low_battery = low_battery

    async def states(self, tenant: str) -> list[tuple[Provisioned, int | None,
                                                      list[Condition]]]:
        """Each device of a tenant with its last report and what is wrong with it."""
        devices = self.registry.devices(tenant, "/*")
        stored = await self.entities.store.get_many(
            tenant, [device_entity_id(d.device.device_id) for d in devices])
        now = now_micros(self.clock)
        found = []
        for provisioned in devices:
            reported, battery = reading(stored.get(device_entity_id(
                provisioned.device.device_id)))
            found.append((provisioned, reported,
                          conditions(provisioned, reported, battery, now, self.low_battery)))
        return found

    async def check(self) -> int:
        """Raise an Alert for each condition that holds, withdraw those that cleared,
        and keep each Device entity's ``deviceState``; how many alerts hold."""
        now = now_micros(self.clock)
        held = 0
        for tenant in self.registry.tenants():
            updates = []
            cleared = []
            for provisioned, _reported, found in await self.states(tenant):
                kinds = {c.kind for c in found}
                updates.extend(alert_fragment(provisioned, c, now) for c in found)
                cleared.extend(alert_id(provisioned.device.device_id, kind)
                               for kind in (SILENT, LOW_BATTERY) if kind not in kinds)
                updates.append({"id": device_entity_id(provisioned.device.device_id),
                                DEVICE_STATE: {"type": "Property",
                                               "value": found[0].kind if found else "ok"}})
                held += len(found)
            await self._apply(tenant, updates, cleared)
        return held

    async def _apply(self, tenant: str, updates: list[dict[str, Any]],
                     cleared: list[str]) -> None:
        alerts = [parse_entity(u, self.terms) for u in updates if "type" in u]
        states = [parse_entity(u, self.terms, require_type=False, for_update=True)
                  for u in updates if "type" not in u]
        # An alert is written when it is raised or its description changes, not at every
        # check: each write would notify its subscribers again.
        raised = await self.entities.store.get_many(tenant, [a["id"] for a in alerts])
        alerts = [a for a in alerts if a["id"] not in raised or
                  _description(raised[a["id"]]) != _description(a)]
        if alerts:
            await self.entities.batch_upsert(tenant, alerts, True, BatchResult())
        existing = await self.entities.store.get_many(tenant, [s["id"] for s in states])
        changed = [s for s in states if s["id"] in existing and
                   existing[s["id"]]["attrs"].get(DEVICE_STATE, [{}])[0].get("value") !=
                   s["attrs"][DEVICE_STATE][0]["value"]]
        if changed:
            await self.entities.batch_update(tenant, changed, True, BatchResult())
        stale = await self.entities.store.get_many(tenant, cleared)
        if stale:
            await self.entities.batch_delete(tenant, list(stale), BatchResult())

    async def forget(self, tenant: str, device_id: str) -> None:
        """Withdraw the alerts of a device that is no longer provisioned."""
        ids = [alert_id(device_id, kind) for kind in (SILENT, LOW_BATTERY)]
        stale = await self.entities.store.get_many(tenant, ids)
        if stale:
            await self.entities.batch_delete(tenant, list(stale), BatchResult())

    async def overview(self, tenant: str, gateways: dict[str, int]) -> dict[str, Any]:
        """Devices per transport, profile and entity type; how many are online, offline,
        of unknown state, alarmed; the LoRaWAN gateways and their last contact."""
        counts: dict[str, Counter[str]] = {"byTransport": Counter(), "byProfile": Counter(),
                                           "byEntityType": Counter()}
        state: Counter[str] = Counter()
        alarms: Counter[str] = Counter()
        states = await self.states(tenant)
        for provisioned, reported, found in states:
            counts["byTransport"][provisioned.device.transport or "unknown"] += 1
            counts["byProfile"][provisioned.decoder or "none"] += 1
            counts["byEntityType"][entity_type(provisioned.device, provisioned.group)] += 1
            if reported is None or provisioned.expected_interval is None:
                state["unknown"] += 1
            elif any(c.kind == SILENT for c in found):
                state["offline"] += 1
            else:
                state["online"] += 1
            alarms.update(c.kind for c in found)
        return {"devices": len(states), **{k: dict(v) for k, v in counts.items()},
                "online": state["online"], "offline": state["offline"],
                "unknown": state["unknown"], "alarms": dict(alarms),
                "gateways": [{"id": g, "lastContact": format_instant(at)}
                             for g, at in sorted(gateways.items())]}


def _description(alert: Entity) -> Any:
    found = alert["attrs"].get(DESCRIPTION)
    return value_of(found[0]) if found else None
