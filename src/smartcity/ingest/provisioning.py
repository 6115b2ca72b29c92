"""What an operator provisions: service groups and devices, in the payloads of the FIWARE
IoT Agents' provisioning API (``/iot/services``, ``/iot/devices``), so that tools and
scripts written for FIWARE work unchanged.

A service group shares an API key, an entity type and attribute mappings among the
devices of one kind; a device maps its measurement names (``object_id``) to attributes of
one entity. Fields this platform does not use (``cbroker``, ``lazy``, ...) are accepted
and kept, as the IoT Agents keep them.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from smartcity.core.ngsild.errors import BadRequestData
from smartcity.core.validation import validated
from smartcity.ingest.decoders import decoders

# Ids travel in MQTT topics and URLs: no separators or wildcards.
_TOKEN = re.compile(r"^[A-Za-z0-9_.:~@-]{1,256}$")


def _token(value: str, what: str) -> str:
    if not _TOKEN.fullmatch(value):
        raise ValueError(f"{what} must be 1 to 256 of A-Z a-z 0-9 _ . : ~ @ -")
    return value


class AttributeMapping(BaseModel):
    """A measurement (``object_id``, as the device names it) and the attribute it feeds."""

    model_config = ConfigDict(extra="allow")

    object_id: str | None = None
    name: str = Field(min_length=1)
    type: str = "Property"
    unitCode: str | None = None
    metadata: dict[str, Any] | None = None

    @property
    def key(self) -> str:
        return self.object_id or self.name


class StaticAttribute(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1)
    type: str = "Property"
    value: Any


class Command(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1)
    type: str = "command"


class _Mapped(BaseModel):
    """What groups and devices both carry."""

    model_config = ConfigDict(extra="allow")

    entity_type: str | None = None
    attributes: list[AttributeMapping] = []
    static_attributes: list[StaticAttribute] = []
    commands: list[Command] = []
    timezone: str | None = None
    explicitAttrs: bool = False
    decoder: str | None = Field(None, description="the payload decoder of LoRaWAN "
                                "uplinks (a profile of ``decoders/``)")

    @field_validator("decoder")
    @classmethod
    def _known_decoder(cls, value: str | None) -> str | None:
        if value is not None and value not in decoders():
            raise ValueError(f"unknown decoder {value!r}; known: "
                             f"{', '.join(sorted(decoders())) or 'none'}")
        return value

    def mapping(self) -> dict[str, AttributeMapping]:
        return {a.key: a for a in self.attributes}


class ServiceGroup(_Mapped):
    apikey: str
    resource: str = Field("/iot/json", pattern=r"^/[^\s]*$")
    autoprovision: bool = True
    expected_interval: float | None = Field(None, gt=0, description="seconds between "
                                            "reports before a device counts as silent")

    @field_validator("apikey")
    @classmethod
    def _apikey(cls, value: str) -> str:
        return _token(value, "apikey")


class Device(_Mapped):
    device_id: str
    entity_name: str | None = None
    apikey: str | None = None
    protocol: str | None = None
    transport: Literal["HTTP", "MQTT", "AMQP"] | None = None
    endpoint: str | None = None
    expected_interval: float | None = Field(None, gt=0)
    location: dict[str, Any] | None = None

    @field_validator("device_id")
    @classmethod
    def _device_id(cls, value: str) -> str:
        return _token(value, "device_id")

    @field_validator("apikey")
    @classmethod
    def _apikey(cls, value: str | None) -> str | None:
        return None if value is None else _token(value, "apikey")


def parse_list(body: Any, member: str, model: type[ServiceGroup] | type[Device]
               ) -> list[Any]:
    """``{"services": [...]}`` or ``{"devices": [...]}``, each item validated."""
    if not isinstance(body, dict) or not isinstance(body.get(member), list) \
            or not body[member]:
        raise BadRequestData(f"The body must be an object with a non-empty {member!r} list")
    return [validated(model, item, f"{member}[{n}]") for n, item in enumerate(body[member])]


def entity_id(device: Device, group: ServiceGroup | None) -> str:
    """The entity a device feeds: its ``entity_name``, else the NGSI-LD id the IoT Agents
    give (``urn:ngsi-ld:<entity type>:<device id>``)."""
    if device.entity_name:
        return device.entity_name
    return f"urn:ngsi-ld:{entity_type(device, group)}:{device.device_id}"


def entity_type(device: Device, group: ServiceGroup | None) -> str:
    return device.entity_type or (group.entity_type if group else None) or "Thing"
