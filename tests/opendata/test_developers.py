"""Developers take API keys themselves, use them for the open data, and give them up."""

from __future__ import annotations

import httpx

from tests.security.conftest import start_city


def test_a_developer_takes_a_key_uses_it_and_gives_it_up(db: str) -> None:
    live, _ = start_city(db)
    with live as url:
        made = httpx.post(f"{url}/developer/keys",
                          json={"name": "busapp", "email": "dev@busapp.example"})
        assert made.status_code == 201 and made.headers["cache-control"] == "no-store"
        key = {"X-API-Key": made.json()["key"]}
        lamps = httpx.get(f"{url}/ngsi-ld/v1/entities", params={"type": "Streetlight"},
                          headers=key)
        assert lamps.status_code == 200
        refused = httpx.get(f"{url}/ngsi-ld/v1/entities", params={"type": "Lock"},
                            headers=key)
        assert refused.status_code == 403
        mine = httpx.get(f"{url}/developer/keys/current", headers=key).json()
        assert mine["owner"] == "busapp" and mine["roles"] == ["developer"]
        assert "secret" not in mine
        assert httpx.delete(f"{url}/developer/keys/current", headers=key).status_code == 204
        assert httpx.get(f"{url}/developer/keys/current", headers=key).status_code == 401


def test_keys_are_not_handed_out_in_bulk_nor_for_bad_requests(db: str) -> None:
    live, _ = start_city(db)
    with live as url:
        bad = httpx.post(f"{url}/developer/keys", json={"name": "x", "email": "nope"})
        assert bad.status_code == 400
        answers = [httpx.post(f"{url}/developer/keys",
                              json={"name": f"bulk{n}", "email": "a@b.example"}).status_code
                   for n in range(7)]
        assert answers.count(201) == 4 and answers[-1] == 429
        assert httpx.get(f"{url}/developer/keys/current").status_code == 401


def test_each_key_is_held_to_its_own_request_rate(db: str) -> None:
    live, _ = start_city(db, client_rate=1, client_burst=5)
    with live as url:
        keys = [{"X-API-Key": httpx.post(f"{url}/developer/keys", json={
            "name": "busapp", "email": "dev@busapp.example"}).json()["key"]}
            for _ in range(2)]
        flood = [httpx.get(f"{url}/ngsi-ld/v1/entities", params={"type": "Streetlight"},
                           headers=keys[0]).status_code for _ in range(8)]
        assert flood[0] == 200 and flood[-1] == 429
        # Another key of the same developer name has a bucket of its own.
        assert httpx.get(f"{url}/ngsi-ld/v1/entities", params={"type": "Streetlight"},
                         headers=keys[1]).status_code == 200
