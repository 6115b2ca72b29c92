"""Hostile input: injection through q, idPattern and ids, patterns built to take
forever, oversized bodies and floods. Each is answered with a 4xx (or harmlessly) and
leaves the data as it was."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.security.conftest import City, start_city

LAMPS = [{"id": f"urn:ngsi-ld:Streetlight:attack-{'a' * 40}{n}", "type": "Streetlight",
          "name": {"type": "Property", "value": f"lamp {n}"}} for n in range(3)]


@pytest.fixture(scope="module")
def operator(city: City) -> dict[str, str]:
    with city.http(city.admin) as admin:
        assert admin.post("/entityOperations/upsert", json=LAMPS).status_code in (201, 204)
    return city.account(["lighting"])


def _lamps(city: City) -> list[dict[str, object]]:
    with city.http(city.admin) as admin:
        return sorted(admin.get("/entities", params={"type": "Streetlight", "limit": 1000,
                                                     "idPattern": "attack"}).json(),
                      key=lambda e: str(e["id"]))


@pytest.mark.parametrize("q", [
    "name==\"x' OR '1'='1\"",
    "name==\"x\\\"); DROP TABLE entities; --\"",
    "name=='; DELETE FROM entities; --'",
    "name==1;DROP TABLE entities",
    "name==\"x'||pg_sleep(10)||'\"",
])
def test_sql_in_q_matches_nothing_and_changes_nothing(city: City, operator: dict[str, str],
                                                      q: str) -> None:
    before = _lamps(city)
    with city.http(operator) as http:
        response = http.get("/entities", params={"type": "Streetlight", "q": q}, timeout=5)
    assert response.status_code in (200, 400)
    if response.status_code == 200:
        assert response.json() == []
    else:
        assert response.json()["type"].endswith(("BadRequestData", "InvalidRequest"))
    assert _lamps(city) == before


@pytest.mark.parametrize("entity_id", [
    "urn:ngsi-ld:Streetlight:x' OR '1'='1",
    "urn:ngsi-ld:Streetlight:x%27%3B%20DROP%20TABLE%20entities%3B--",
    "'; DROP TABLE entities; --",
])
def test_sql_in_an_id_finds_nothing_and_changes_nothing(
        city: City, operator: dict[str, str], entity_id: str) -> None:
    before = _lamps(city)
    with city.http(operator) as http:
        assert http.get(f"/entities/{entity_id}").status_code in (400, 404)
        assert http.delete(f"/entities/{entity_id}").status_code in (400, 404)
    assert _lamps(city) == before


@pytest.mark.parametrize("params", [
    {"idPattern": "^urn:ngsi-ld:Streetlight:attack-(a+)+$"},
    {"idPattern": "(a|aa)+$"},
    {"q": "name~=\"(a*)*b\""},
    {"q": "name~=\"^(([a-z])+.)+[A-Z]([a-z])+$\""},
])
def test_patterns_built_to_take_forever_are_answered_at_once(
        city: City, operator: dict[str, str], params: dict[str, str]) -> None:
    # RE2 matches in linear time: the client time-out only guards against a hang.
    with city.http(operator) as http:
        response = http.get("/entities", params={"type": "Streetlight", **params}, timeout=5)
    assert response.status_code == 200


@pytest.mark.parametrize("pattern", ["(?=look)ahead", "(a)\\1", "[unclosed", "x{99999999999}"])
def test_patterns_re2_cannot_run_are_bad_request_data(
        city: City, operator: dict[str, str], pattern: str) -> None:
    with city.http(operator) as http:
        response = http.get("/entities", params={"type": "Streetlight",
                                                 "idPattern": pattern})
    assert response.status_code == 400
    assert response.json()["type"].endswith("BadRequestData")


def test_an_oversized_body_is_refused_and_nothing_is_stored(
        city: City, operator: dict[str, str]) -> None:
    huge = {"id": "urn:ngsi-ld:Streetlight:huge", "type": "Streetlight",
            "name": {"type": "Property", "value": "x" * (3 * 1024 * 1024)}}
    with city.http(operator) as http:
        assert http.post("/entities", json=huge).status_code == 413
    with city.http(city.admin) as admin:
        assert admin.get("/entities/urn:ngsi-ld:Streetlight:huge").status_code == 404


@pytest.fixture(scope="module")
def strict(module_db: str) -> Iterator[City]:
    """A platform that lets a caller make 5 requests at once, then one a second."""
    live, admin = start_city(module_db, client_rate=1, client_burst=5)
    with live as url:
        yield City(url, admin, live)


def test_a_flooding_caller_is_slowed_down_and_others_are_not(strict: City) -> None:
    flooder, other = strict.account(["lighting"]), strict.account(["lighting"])
    with strict.http(flooder) as http:
        answers = [http.get("/entities", params={"type": "Streetlight"}) for _ in range(8)]
    assert answers[0].status_code == 200
    refused = [a for a in answers if a.status_code == 429]
    assert refused and refused[0].headers["retry-after"] == "1"
    assert refused[0].json()["type"] == "urn:smartcity:error:TooManyRequests"
    with strict.http(other) as http:
        assert http.get("/entities", params={"type": "Streetlight"}).status_code == 200


def test_guessing_secrets_at_the_token_endpoint_is_slowed_down(strict: City) -> None:
    answers = [httpx.post(f"{strict.url}/auth/token", data={
        "grant_type": "password", "username": "root", "password": f"guess {n}"})
        for n in range(8)]
    assert {a.status_code for a in answers} == {400, 429}
