"""Several workers on one PostgreSQL database share accounts, keys, consents and one
audit chain: what one worker is told, the others act on at once."""

from __future__ import annotations

import httpx
import pytest
from typer.testing import CliRunner

from smartcity.cli import app
from tests.conftest import postgres_schema
from tests.security.conftest import City, start_city

pytestmark = pytest.mark.services


def test_accounts_tokens_and_consents_hold_on_every_worker() -> None:
    with postgres_schema() as db:
        live_one, admin = start_city(db)
        live_two, _ = start_city(db)
        with live_one as one_url, live_two as two_url:
            one, two = City(one_url, admin, live_one), City(two_url, admin, live_two)
            assert one.live.platform.gatekeeper.tokens.key.kid == \
                two.live.platform.gatekeeper.tokens.key.kid
            resident = one.account(["resident"], person="urn:ngsi-ld:Person:eva",
                                   name="eva")
            with two.http(resident) as http:
                assert http.get("/entities", params={"type": "Streetlight"}
                                ).status_code == 200
            consent = {"service": "homeapp", "purpose": "family", "until": "2030-01-01T00:00:00Z"}
            assert httpx.post(f"{one_url}/me/consents", json=consent,
                              headers=resident).status_code == 201
            assert [c["service"] for c in httpx.get(f"{two_url}/me/consents",
                                                    headers=resident).json()] == ["homeapp"]
            assert httpx.delete(f"{two_url}/auth/clients/eva",
                                headers=two.admin).status_code == 204
            assert httpx.get(f"{one_url}/me", headers=resident).status_code == 401
        verified = CliRunner().invoke(app, ["audit", "verify", "--db", db])
        assert verified.exit_code == 0 and "intact" in verified.output, verified.output
