"""A platform with access control on, and the accounts tests act as."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from smartcity.config import Settings
from smartcity.security.accounts import Accounts, AccountSpec
from smartcity.security.policy import Policy, read_policy
from smartcity.store.backend import open_store
from tests.conftest import LiveServer

NOW = "2026-11-25T12:00:00.000000Z"


def seed_admin(db: str) -> tuple[str, str]:
    """Make an administrator client before the platform starts: its name and secret."""
    name = f"root-{secrets.token_hex(3)}"

    async def make() -> tuple[str, str]:
        store = await open_store(db)
        try:
            accounts = Accounts(store, Policy(read_policy(None)).roles)
            await accounts.reload()
            issued = await accounts.add("client", AccountSpec(name=name, roles=("admin",)),
                                        NOW)
            return issued.name, issued.secret
        finally:
            await store.close()
    return asyncio.run(make())


class City:
    """A running platform with access control, and a way to act as anyone."""

    def __init__(self, url: str, admin: tuple[str, str], live: LiveServer) -> None:
        self.url = url
        self.live = live
        self.admin_name = admin[0]
        self.admin = self.client_token(*admin)
        self._made = 0

    def client_token(self, name: str, secret: str) -> dict[str, str]:
        response = httpx.post(f"{self.url}/auth/token", auth=(name, secret),
                              data={"grant_type": "client_credentials"})
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    def account(self, roles: list[str], *, person: str | None = None,
                tenants: list[str] | None = None, name: str | None = None
                ) -> dict[str, str]:
        """A new client with these roles; the headers that act as it."""
        self._made += 1
        name = name or f"c{secrets.token_hex(3)}-{self._made}-{'-'.join(roles)}"
        body: dict[str, Any] = {"name": name, "roles": roles, "person": person,
                                "tenants": tenants}
        made = httpx.post(f"{self.url}/auth/clients", json=body, headers=self.admin)
        assert made.status_code == 201, made.text
        return self.client_token(name, made.json()["secret"])

    def api_key(self, roles: list[str], owner: str = "dev") -> dict[str, str]:
        made = httpx.post(f"{self.url}/auth/apikeys", json={"name": owner, "roles": roles},
                          headers=self.admin)
        assert made.status_code == 201, made.text
        return {"X-API-Key": made.json()["secret"]}

    def http(self, headers: dict[str, str] | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.url + "/ngsi-ld/v1", headers=headers or {},
                            timeout=10)


def start_city(db: str, **settings: Any) -> tuple[LiveServer, tuple[str, str]]:
    admin = seed_admin(db)
    return LiveServer(Settings(db=db, auth="on", **settings)), admin


@pytest.fixture(scope="module")
def city(module_db: str) -> Iterator[City]:
    live, admin = start_city(module_db)
    with live as url:
        yield City(url, admin, live)
