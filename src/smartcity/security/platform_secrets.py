"""Secrets the platform makes for itself once (token signing key, pseudonym key) and
every worker shares: kept as records in the store."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from collections.abc import Callable
from typing import Any

from smartcity.core.ngsild.storage import EntityStore

PSEUDONYM_KIND = "auth-pseudonym-key"
PSEUDONYM_PREFIX = "urn:ngsi-ld:Pseudonym:"


async def shared_record(store: EntityStore, kind: str,
                        make: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The record of ``kind``, made by ``make`` on first start: the first process to
    hold the right makes it, the others wait and read it."""
    while True:
        found = await store.records(kind)
        if found:
            return found[0]
        async with store.exclusive(kind) as held:
            if held and not await store.records(kind):
                record = make()
                await store.save_record(kind, "", "current", record)
                return record
        await asyncio.sleep(0.1)


async def pseudonymiser(store: EntityStore) -> Callable[[str], str]:
    """A stable pseudonym for a value: the same value always gives the same pseudonym,
    which cannot be turned back into the value without the platform's key."""
    record = await shared_record(store, PSEUDONYM_KIND,
                                 lambda: {"key": secrets.token_hex(32)})
    key = bytes.fromhex(record["key"])

    def pseudonym(value: str) -> str:
        digest = hmac.new(key, value.encode(), hashlib.sha256).hexdigest()
        return PSEUDONYM_PREFIX + digest[:24]
    return pseudonym
