"""The device registry: service groups and devices per tenant and service path, kept in
the store as records and in memory for the ingest path (a measurement is matched to its
device without reading the database). Other workers' changes arrive through
``SharedCaches``: the registry reloads when the store says its records changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from smartcity.core.ngsild.errors import AlreadyExists, BadRequestData, ResourceNotFound
from smartcity.core.ngsild.storage import EntityStore
from smartcity.ingest.provisioning import Device, ServiceGroup, entity_id

GROUPS, DEVICES = "iot-group", "iot-device"


class UnknownDevice(ResourceNotFound):
    """A measurement for a device (or API key) the registry does not know."""


@dataclass(frozen=True)
class Provisioned:
    """A device as the ingest path sees it: where it belongs and what maps it."""

    tenant: str
    service_path: str
    device: Device
    group: ServiceGroup | None

    # Settings a device takes from its group unless it has its own.
    @property
    def decoder(self) -> str | None:
        return self.device.decoder or (self.group.decoder if self.group else None)

    @property
    def expected_interval(self) -> float | None:
        return self.device.expected_interval or (self.group.expected_interval if self.group
                                                 else None)


def _group_key(service_path: str, resource: str, apikey: str) -> str:
    return f"{service_path}\n{resource}\n{apikey}"


class DeviceRegistry:
    kinds = (GROUPS, DEVICES)

    def __init__(self, store: EntityStore) -> None:
        self.store = store
        self.versions: dict[str, int] = {}
        self._groups: dict[tuple[str, str], tuple[str, ServiceGroup]] = {}  # (tenant, key)
        self._devices: dict[tuple[str, str], tuple[str, Device]] = {}  # (tenant, device id)
        self._by_apikey: dict[str, list[tuple[str, str, ServiceGroup]]] = {}
        self._by_entity: dict[tuple[str, str], Provisioned] = {}

    async def reload(self) -> None:
        """Fill the registry from the store (at start-up, and after other workers'
        changes)."""
        versions = await self.store.cache_versions()
        self.versions = {kind: versions.get(kind, 0) for kind in self.kinds}
        groups = {}
        for record in await self.store.records(GROUPS):
            group = ServiceGroup.model_validate(record["group"])
            groups[(record["tenant"], _group_key(record["service_path"], group.resource,
                                                 group.apikey))] = \
                (record["service_path"], group)
        self._groups = groups
        self._devices = {(r["tenant"], r["device"]["device_id"]):
                         (r["service_path"], Device.model_validate(r["device"]))
                         for r in await self.store.records(DEVICES)}
        by_apikey: dict[str, list[tuple[str, str, ServiceGroup]]] = {}
        for (tenant, _), (path, group) in self._groups.items():
            by_apikey.setdefault(group.apikey, []).append((tenant, path, group))
        self._by_apikey = by_apikey
        self._by_entity = {}
        for tenant, device_id in self._devices:
            found = self.device(tenant, device_id)
            self._by_entity[(tenant, entity_id(found.device, found.group))] = found

    def by_entity(self, tenant: str, entity: str) -> Provisioned | None:
        """The device that feeds an entity, if one does."""
        return self._by_entity.get((tenant, entity))

    # -- service groups --------------------------------------------------------
    def groups(self, tenant: str, service_path: str) -> list[ServiceGroup]:
        return [group for (t, _), (path, group) in self._groups.items()
                if t == tenant and _path_matches(service_path, path)]

    async def add_groups(self, tenant: str, service_path: str,
                         groups: list[ServiceGroup]) -> None:
        keys = [_group_key(service_path, g.resource, g.apikey) for g in groups]
        if len(set(keys)) < len(keys):
            raise BadRequestData("The request holds the same apikey and resource twice")
        if any(g.apikey in self._by_apikey for g in groups):
            raise AlreadyExists("A service group with this apikey exists")
        for key, group in zip(keys, groups, strict=True):
            await self._save_group(tenant, service_path, key, group)

    async def update_group(self, tenant: str, service_path: str, resource: str,
                           apikey: str, changes: dict[str, Any]) -> None:
        key = _group_key(service_path, resource, apikey)
        found = self._groups.get((tenant, key))
        if found is None:
            raise ResourceNotFound(f"No service group for apikey {apikey!r} and resource "
                                   f"{resource!r}")
        merged = {**found[1].model_dump(exclude_unset=True), **changes}
        if merged.get("apikey") != apikey or merged.get("resource", resource) != resource:
            raise BadRequestData("apikey and resource of a service group cannot change")
        await self._save_group(tenant, service_path, key, ServiceGroup.model_validate(merged))

    async def delete_group(self, tenant: str, service_path: str, resource: str,
                           apikey: str) -> None:
        key = _group_key(service_path, resource, apikey)
        if (tenant, key) not in self._groups:
            raise ResourceNotFound(f"No service group for apikey {apikey!r} and resource "
                                   f"{resource!r}")
        await self.store.delete_record(GROUPS, tenant, key)
        await self.reload()

    async def _save_group(self, tenant: str, service_path: str, key: str,
                          group: ServiceGroup) -> None:
        await self.store.save_record(GROUPS, tenant, key, {
            "tenant": tenant, "service_path": service_path,
            "group": group.model_dump(exclude_unset=True)})
        await self.reload()

    def tenants(self) -> list[str]:
        """The tenants with devices."""
        return sorted({tenant for tenant, _ in self._devices})

    # -- devices -------------------------------------------------------------
    def devices(self, tenant: str, service_path: str) -> list[Provisioned]:
        return [self.device(t, device_id) for (t, device_id), (path, _) in self._devices.items()
                if t == tenant and _path_matches(service_path, path)]

    def device(self, tenant: str, device_id: str) -> Provisioned:
        found = self._devices.get((tenant, device_id))
        if found is None:
            raise ResourceNotFound(f"No device {device_id!r}")
        path, device = found
        return Provisioned(tenant, path, device, self._group_of(tenant, path, device))

    async def add_devices(self, tenant: str, service_path: str,
                          devices: list[Device]) -> list[Provisioned]:
        ids = [d.device_id for d in devices]
        if len(set(ids)) < len(ids):
            raise BadRequestData("The request holds the same device_id twice")
        taken = [i for i in ids if (tenant, i) in self._devices]
        if taken:
            raise AlreadyExists(f"Device {taken[0]!r} exists already")
        for device in devices:
            await self._save_device(tenant, service_path, device)
        return [self.device(tenant, i) for i in ids]

    async def update_device(self, tenant: str, device_id: str,
                            changes: dict[str, Any]) -> Provisioned:
        current = self.device(tenant, device_id)
        merged = {**current.device.model_dump(exclude_unset=True), **changes}
        if merged.get("device_id") != device_id:
            raise BadRequestData("The device_id of a device cannot change")
        await self._save_device(tenant, current.service_path, Device.model_validate(merged))
        return self.device(tenant, device_id)

    async def delete_device(self, tenant: str, device_id: str) -> Provisioned:
        current = self.device(tenant, device_id)
        _, version = await self.store.delete_record(DEVICES, tenant, device_id)
        if await self._caught_up(version):
            del self._devices[(tenant, device_id)]
            self._by_entity.pop((tenant, entity_id(current.device, current.group)), None)
        return current

    async def _save_device(self, tenant: str, service_path: str, device: Device) -> None:
        version = await self.store.save_record(DEVICES, tenant, device.device_id, {
            "tenant": tenant, "service_path": service_path,
            "device": device.model_dump(exclude_unset=True)})
        if await self._caught_up(version):
            before = self._devices.get((tenant, device.device_id))
            if before is not None:
                old = self.device(tenant, device.device_id)
                self._by_entity.pop((tenant, entity_id(old.device, old.group)), None)
            self._devices[(tenant, device.device_id)] = (service_path, device)
            added = self.device(tenant, device.device_id)
            self._by_entity[(tenant, entity_id(added.device, added.group))] = added

    async def _caught_up(self, version: int) -> bool:
        """After saving a device: whether the registry may take the change in itself
        (no other worker changed devices since it loaded, so a fleet provisioned one by
        one costs no reload each), else it has reloaded."""
        if version == self.versions.get(DEVICES, 0) + 1:
            self.versions[DEVICES] = version
            return True
        await self.reload()
        return False

    def _group_of(self, tenant: str, path: str, device: Device) -> ServiceGroup | None:
        for group_tenant, group_path, group in self._by_apikey.get(device.apikey or "", ()):
            if group_tenant == tenant and group_path == path:
                return group
        matching = [g for (t, _), (p, g) in self._groups.items() if t == tenant and p == path]
        return matching[0] if len(matching) == 1 and device.apikey is None else None

    # -- the ingest path ---------------------------------------------------------
    async def resolve(self, apikey: str, device_id: str, resource: str | None = None,
                      provision: bool = True) -> Provisioned:
        """The device a measurement (API key, device id) is for. A device known under
        another API key is unknown here; a device not provisioned is provisioned
        now when ``provision`` and its group allow it (``autoprovision``)."""
        groups = [(t, p, g) for t, p, g in self._by_apikey.get(apikey, ())
                  if resource is None or g.resource == resource]
        for tenant, _path, group in groups:
            found = self._devices.get((tenant, device_id))
            if found is not None and (found[1].apikey or apikey) == apikey:
                return Provisioned(tenant, found[0], found[1], group)
        for tenant, _path, _group in groups:
            found = self._devices.get((tenant, device_id))
            if found is not None:
                raise UnknownDevice(f"No device {device_id!r} for this API key")
        for tenant, path, group in groups:
            if provision and group.autoprovision:
                [added] = await self.add_devices(tenant, path, [Device(
                    device_id=device_id, apikey=apikey)])
                return added
        raise UnknownDevice(f"No device {device_id!r} for this API key")


def _path_matches(asked: str, path: str) -> bool:
    """A service path (``/a/b``) asked for, or every path below one (``/a/*``, ``/*``)."""
    if asked.endswith("/*"):
        return path == asked[:-2] or path.startswith(asked[:-1]) or asked == "/*"
    return path == asked
