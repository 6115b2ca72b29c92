"""Commands to actuators: writing a command attribute of a device's entity (``dim`` on a
lamp, ``unlock`` on a lock) sends it to the device, as the FIWARE IoT Agents do.

The entity then holds the command's status in ``<command>_status`` (PENDING until the
device answers, OK, or ERROR) and its result in ``<command>_info``. Over MQTT the command
goes to ``/<apikey>/<device>/cmd`` and the device answers on ``/<apikey>/<device>/cmdexe``;
over HTTP it is POSTed to the device's ``endpoint`` and the answer is the response. The
payload is UltraLight (``<device>@<command>|<value>``) or JSON (``{"<command>": value}``),
as the device speaks. A command not answered within ``timeout`` seconds is an ERROR.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from smartcity.core.events import EntityChange
from smartcity.core.ngsild.context import TermMap
from smartcity.core.ngsild.entities import EntityService
from smartcity.core.ngsild.errors import NgsiLdError
from smartcity.core.ngsild.model import value_of
from smartcity.core.ngsild.normalize import parse_entity
from smartcity.ingest.provisioning import entity_id
from smartcity.ingest.registry import DeviceRegistry, Provisioned

log = logging.getLogger(__name__)

PENDING, OK, ERROR = "PENDING", "OK", "ERROR"
Publish = Callable[[str, bytes], Awaitable[None]]
Post = Callable[[str, bytes, str], Awaitable[bytes]]


@dataclass(frozen=True)
class CommandReply:
    """A device's answer to a command (a ``cmdexe`` message)."""

    apikey: str
    device_id: str
    payload: bytes


def speaks_ultralight(provisioned: Provisioned) -> bool:
    device, group = provisioned.device, provisioned.group
    protocol = (device.protocol or "").lower()
    if protocol:
        return "ul" in protocol or "ultra" in protocol
    return group is not None and group.resource == "/iot/d"


def command_payload(provisioned: Provisioned, command: str, value: Any) -> bytes:
    if speaks_ultralight(provisioned):
        text = value if isinstance(value, str) else orjson.dumps(value).decode()
        return f"{provisioned.device.device_id}@{command}|{text}".encode()
    return orjson.dumps({command: value})


def parse_reply(payload: bytes, device_id: str) -> dict[str, str]:
    """command -> result of an answer, in UltraLight (``dev@cmd|result``) or JSON."""
    text = payload.decode("utf-8", "replace").strip()
    if text.startswith("{"):
        try:
            body = orjson.loads(text)
        except orjson.JSONDecodeError:
            return {}
        return {str(k): v if isinstance(v, str) else orjson.dumps(v).decode()
                for k, v in body.items()} if isinstance(body, dict) else {}
    head, _, result = text.partition("|")
    device, _, command = head.partition("@")
    if not command:
        device, command = device_id, head
    return {command: result} if device == device_id and command else {}


class Commander:
    """Watches entity changes for written commands, sends them, and keeps their status."""

    def __init__(self, registry: DeviceRegistry, entities: EntityService, terms: TermMap,
                 publish: Publish | None, post: Post, timeout: float = 30.0) -> None:
        self.registry = registry
        self.entities = entities
        self.terms = terms
        self.publish = publish
        self.post = post
        self.timeout = timeout
        self._tasks: set[asyncio.Task[None]] = set()

    async def changes_committed(self, changes: Sequence[EntityChange]) -> None:
        """Event-bus handler: send each command attribute that was just written."""
        for change in changes:
            if change.entity is None:
                continue
            provisioned = self.registry.by_entity(change.tenant, change.entity_id)
            if provisioned is None:
                continue
            for command in _written(provisioned, change, self.terms):
                value = value_of(change.entity["attrs"][self.terms.expand(command)][0])
                task = asyncio.create_task(self._send(provisioned, command, value))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _send(self, provisioned: Provisioned, command: str, value: Any) -> None:
        device = provisioned.device
        payload = command_payload(provisioned, command, value)
        await self._status(provisioned, command, PENDING, None)
        try:
            if device.transport == "HTTP" or (device.endpoint and device.transport is None):
                if not device.endpoint:
                    raise ValueError("the device has no endpoint to send commands to")
                media = "text/plain" if speaks_ultralight(provisioned) else "application/json"
                answer = await self.post(device.endpoint, payload, media)
                result = parse_reply(answer, device.device_id).get(command, "")
                await self._status(provisioned, command, OK, result)
                return
            if self.publish is None:
                raise ValueError("no MQTT broker to send the command through")
            apikey = device.apikey or (provisioned.group.apikey if provisioned.group else "")
            await self.publish(f"/{apikey}/{device.device_id}/cmd", payload)
        except Exception as exc:
            log.info("command %s to %s failed: %s", command, device.device_id, exc)
            await self._status(provisioned, command, ERROR, str(exc))
            return
        await asyncio.sleep(self.timeout)
        await self._expire(provisioned, command)

    async def _expire(self, provisioned: Provisioned, command: str) -> None:
        """Mark a command still PENDING after the timeout an ERROR (another worker may
        have got the answer meanwhile)."""
        try:
            stored = await self.entities.retrieve(provisioned.tenant,
                                                  entity_id(provisioned.device,
                                                            provisioned.group))
        except NgsiLdError:
            return
        status = stored["attrs"].get(self.terms.expand(f"{command}_status"))
        if status and value_of(status[0]) == PENDING:
            await self._status(provisioned, command, ERROR, "expired")

    async def replied(self, reply: CommandReply) -> None:
        """A device answered: its commands are OK, with the results it sent."""
        # An answer comes from a device that was sent a command: never a new one.
        provisioned = await self.registry.resolve(reply.apikey, reply.device_id,
                                                  provision=False)
        for command, result in parse_reply(reply.payload, reply.device_id).items():
            if command in _commands(provisioned):
                await self._status(provisioned, command, OK, result)

    async def _status(self, provisioned: Provisioned, command: str, status: str,
                      info: str | None) -> None:
        fragment: dict[str, Any] = {f"{command}_status": {"type": "Property",
                                                          "value": status}}
        if info is not None:
            fragment[f"{command}_info"] = {"type": "Property", "value": info}
        target = entity_id(provisioned.device, provisioned.group)
        try:
            await self.entities.append_attributes(
                provisioned.tenant, target,
                parse_entity(fragment, self.terms, require_id=False, require_type=False,
                             for_update=True), overwrite=True)
        except NgsiLdError as exc:
            log.info("status of command %s of %s not kept: %s", command, target, exc)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _commands(provisioned: Provisioned) -> set[str]:
    group = provisioned.group
    return {c.name for c in (*(group.commands if group else ()),
                             *provisioned.device.commands)}


def _written(provisioned: Provisioned, change: EntityChange, terms: TermMap) -> list[str]:
    """The commands whose attribute this change wrote."""
    assert change.entity is not None
    written = []
    for command in _commands(provisioned):
        iri = terms.expand(command)
        now = change.entity["attrs"].get(iri)
        before = (change.previous or {}).get("attrs", {}).get(iri)
        if now and now != before:
            written.append(command)
    return written
