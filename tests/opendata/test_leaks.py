"""Ways to get personal data or small groups out of the open data that a reviewer
tried; each now fails as it should."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from smartcity.config import Settings
from tests.conftest import LiveServer
from tests.opendata.test_distributions import dataset
from tests.security.conftest import City, start_city

MIXED = {"NGSILD-Tenant": "mixed"}


@pytest.fixture(scope="module")
def site(module_db: str) -> Iterator[str]:
    with LiveServer(Settings(db=module_db)) as url, httpx.Client(base_url=url) as http:
        door = {"id": "urn:ngsi-ld:Lock:m1", "type": ["Streetlight", "Lock"],
                "location": {"type": "GeoProperty", "value": {
                    "type": "Point", "coordinates": [18.1234, 59.4321]}},
                "illuminanceLevel": {"type": "Property", "value": 7,
                                     "observedAt": "2026-11-25T10:00:00Z"}}
        lamp = {"id": "urn:ngsi-ld:Streetlight:m2", "type": "Streetlight",
                "location": {"type": "GeoProperty", "value": {
                    "type": "Point", "coordinates": [18.2, 59.3]}},
                "illuminanceLevel": {"type": "Property", "value": 9,
                                     "observedAt": "2026-11-25T10:00:00Z"}}
        for entity in (door, lamp):
            assert http.post("/ngsi-ld/v1/entities", json=entity,
                             headers=MIXED).status_code == 201
        mixed = {**dataset("mixed"), "query": {"types": ["Streetlight"], "tenant": "mixed"}}
        assert http.put("/datasets/mixed", json=mixed).status_code == 201
        yield url


def _rows(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    return list(csv.DictReader(io.StringIO(response.text)))


def test_an_entity_that_is_also_a_door_keeps_its_place_out_of_every_download(
        site: str) -> None:
    now = httpx.get(f"{site}/datasets/mixed/data.csv").text
    history = httpx.get(f"{site}/datasets/mixed/history.csv").text
    geojson = httpx.get(f"{site}/datasets/mixed/data.geojson").text
    for text in (now, history, geojson):
        assert "18.1234" not in text and "59.4321" not in text
    assert "urn:ngsi-ld:Streetlight:m2" in history
    rows = _rows(httpx.get(f"{site}/datasets/mixed/history.csv"))
    assert {(r["id"], r["attribute"]) for r in rows if r["id"].endswith("m1")} <= \
        {("urn:ngsi-ld:Lock:m1", "illuminanceLevel")}


@pytest.mark.parametrize(("changes", "problem"), [
    ({"query": {"types": ["Lock"]}, "policy": {"attributes": ["urn:city:lockState"]}},
     "personal"),
    ({"query": {"types": ["Streetlight"], "q": 'urn:city:owner=="x"'}}, "personal"),
    ({"policy": {"attributes": ["illuminanceLevel"], "aggregate": True}}, "time_resolution"),
    ({"title": {"sv": "Lampor\x01", "en": "Lamps"}}, "title"),
    ({"contact": {"name": "x", "email": 'a"<>{}@b.se'}}, "email"),
])
def test_a_dataset_that_could_leak_or_break_the_catalogue_is_refused(
        site: str, changes: dict[str, Any], problem: str) -> None:
    response = httpx.put(f"{site}/datasets/refused", json={**dataset("refused"), **changes})
    assert response.status_code == 400 and problem in response.json()["detail"]
    assert httpx.get(f"{site}/datasets/refused").status_code == 404


def test_what_selects_a_dataset_s_data_is_not_published(site: str) -> None:
    body = httpx.get(f"{site}/datasets/mixed").json()
    assert "query" not in body
    assert "tenant" not in str(body)


@pytest.mark.parametrize(("path", "params"), [
    ("/datasets/mixed/data.csv", {"foo": "1"}),
    ("/datasets/mixed/entities", {"offset": "200000"}),
    ("/api/3/action/package_search", {"q": "[ " * 2000}),
    ("/api/3/action/package_search", {"fq": "metadata_modified:[9999-12-31T23:00:00-12:00 TO *]"}),
])
def test_bad_parameters_are_400_at_once(site: str, path: str, params: dict[str, str]) -> None:
    assert httpx.get(site + path, params=params, timeout=5).status_code == 400


def test_an_administrator_of_one_tenant_cannot_publish_another_s_data(db: str) -> None:
    live, admin = start_city(db)
    with live as url:
        city = City(url, admin, live)
        local = city.account(["admin"], tenants=[""])
        secret = {**dataset("secret"), "query": {"types": ["Streetlight"], "tenant": "secret"}}
        assert httpx.put(f"{url}/datasets/secret", json=secret,
                         headers=local).status_code == 403
        assert httpx.put(f"{url}/datasets/secret", json=secret,
                         headers=city.admin).status_code == 201
        assert httpx.delete(f"{url}/datasets/secret", headers=local).status_code == 403


def test_a_dataset_the_register_no_longer_allows_is_not_served(db: str, tmp_path: Any
                                                                ) -> None:
    with LiveServer(Settings(db=db)) as url:
        assert httpx.put(f"{url}/datasets/lamps", json=dataset("lamps")).status_code == 201
    stricter = tmp_path / "policy.toml"
    stricter.write_text(
        '[roles.admin]\ngrants = [{ actions = ["read", "write", "subscribe", "administer"], '
        'personal = "all" }]\n[roles.public]\n\n[[personal]]\ntype = "Streetlight"\n'
        'attributes = ["powerState"]\nsubject = "id"\npurpose = "p"\nlegal_basis = "b"\n'
        'retention = "P1D"\n')
    with LiveServer(Settings(db=db, policy=stricter)) as url:
        response = httpx.get(f"{url}/datasets/lamps/data.csv")
        assert response.status_code == 409 and "powerState" in response.json()["detail"]
        page = httpx.get(f"{url}/catalogue/lamps", params={"lang": "en"})
        assert page.status_code == 409
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert "not published right now" in page.text and "data@example.org" in page.text
