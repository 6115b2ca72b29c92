"""Downloading an open dataset: CSV, GeoJSON, NGSI-LD, history and a live view, as
its publication policy shapes them, over a real server."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from smartcity.config import Settings
from smartcity.opendata import exporters
from tests.conftest import LiveServer
from tests.security.conftest import City, start_city

LAMPS = [("1", 18.06861, 59.32931, 10), ("2", 18.06870, 59.32935, 30),
         ("3", 18.20000, 59.40000, 50)]


def lamp(number: str, lon: float, lat: float, level: int) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:Streetlight:d{number}", "type": "Streetlight",
            "location": {"type": "GeoProperty",
                         "value": {"type": "Point", "coordinates": [lon, lat]}},
            "illuminanceLevel": {"type": "Property", "value": level,
                                 "observedAt": "2026-11-25T10:17:31Z"},
            "powerState": {"type": "Property", "value": "on"},
            "serviceNote": {"type": "Property", "value": "internal"}}


def dataset(name: str, **policy: Any) -> dict[str, Any]:
    return {"title": {"sv": "Gatubelysning", "en": "Street lighting"},
            "description": {"sv": "Belysningsnivå per lampa", "en": "Light level per lamp"},
            "keywords": {"sv": ["belysning"], "en": ["lighting"]}, "themes": ["ENER"],
            "contact": {"name": "Öppna data", "email": "data@example.org"},
            "query": {"types": ["Streetlight"]},
            "policy": {"attributes": ["illuminanceLevel", "location", "powerState"],
                       **policy}, "id": name}


@pytest.fixture(scope="module")
def site(module_db: str) -> Iterator[str]:
    with LiveServer(Settings(db=module_db)) as url:
        with httpx.Client(base_url=url) as http:
            for entry in LAMPS:
                assert http.post("/ngsi-ld/v1/entities", json=lamp(*entry)).status_code == 201
            assert http.patch("/ngsi-ld/v1/entities/urn:ngsi-ld:Streetlight:d1/attrs", json={
                "illuminanceLevel": {"type": "Property", "value": 12,
                                     "observedAt": "2026-11-25T11:45:00Z"}}
            ).status_code == 204
            assert http.put("/datasets/lamps", json=dataset(
                "lamps", location_grid=500, time_resolution="PT1H")).status_code == 201
            assert http.put("/datasets/lamp-groups", json=dataset(
                "lamp-groups", location_grid=500, time_resolution="PT1H", aggregate=True,
                min_group=2)).status_code == 201
        yield url


def _csv(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.text)))


def test_the_csv_has_the_allowed_attributes_coarsened(site: str) -> None:
    rows = _csv(httpx.get(f"{site}/datasets/lamps/data.csv"))
    assert [r["id"] for r in rows] == [f"urn:ngsi-ld:Streetlight:d{n}" for n in "123"]
    assert set(rows[0]) == {"id", "type", "observedAt", "illuminanceLevel", "location",
                            "powerState"}
    assert rows[0]["observedAt"] == "2026-11-25T11:00:00Z"
    assert rows[1]["observedAt"] == "2026-11-25T10:00:00Z"
    first, second, third = (orjson.loads(r["location"])["coordinates"] for r in rows)
    assert first == second != third
    assert first != [18.06861, 59.32931]
    assert "internal" not in httpx.get(f"{site}/datasets/lamps/data.csv").text


def test_geojson_and_ngsi_ld_carry_the_same(site: str) -> None:
    geojson = httpx.get(f"{site}/datasets/lamps/data.geojson")
    assert geojson.headers["content-type"] == "application/geo+json"
    features = geojson.json()["features"]
    assert len(features) == 3 and features[0]["geometry"]["type"] == "Point"
    assert features[0]["properties"]["illuminanceLevel"] == 12
    entities = httpx.get(f"{site}/datasets/lamps/data.jsonld").json()
    assert entities[0]["id"] == "urn:ngsi-ld:Streetlight:d1"
    assert entities[0]["illuminanceLevel"] == {"type": "Property", "value": 12,
                                               "observedAt": "2026-11-25T11:00:00Z"}
    assert entities[0]["location"]["type"] == "GeoProperty"
    assert "serviceNote" not in entities[0]


def test_history_is_downloaded_over_a_period(site: str) -> None:
    rows = _csv(httpx.get(f"{site}/datasets/lamps/history.csv",
                          params={"from": "2026-11-25T00:00:00Z",
                                  "to": "2026-11-26T00:00:00Z"}))
    levels = [(r["id"], r["observedAt"], r["value"]) for r in rows
              if r["attribute"] == "illuminanceLevel"]
    assert ("urn:ngsi-ld:Streetlight:d1", "2026-11-25T10:00:00Z", "10") in levels
    assert ("urn:ngsi-ld:Streetlight:d1", "2026-11-25T11:00:00Z", "12") in levels
    later = _csv(httpx.get(f"{site}/datasets/lamps/history.csv",
                           params={"from": "2026-11-25T11:00:00Z"}))
    assert {r["value"] for r in later if r["attribute"] == "illuminanceLevel"} == {"12"}


def test_groups_smaller_than_the_minimum_are_not_published(site: str) -> None:
    groups = _csv(httpx.get(f"{site}/datasets/lamp-groups/data.csv"))
    # Lamps 1 and 2 share a cell but not an hour; lamp 3 is alone: nothing is published
    # for lamp 1, nor for lamp 3.
    assert all(int(g["count"]) >= 2 for g in groups)
    assert "id" not in (groups[0] if groups else {})
    history = _csv(httpx.get(f"{site}/datasets/lamp-groups/history.csv"))
    assert [(h["observedAt"], h["count"], h["value"]) for h in history
            if h["attribute"] == "illuminanceLevel"] == \
        [("2026-11-25T10:00:00Z", "2", "20.0")]


def test_the_live_view_pages(site: str) -> None:
    page = httpx.get(f"{site}/datasets/lamps/entities", params={"limit": 2, "offset": 1})
    assert [e["id"] for e in page.json()] == ["urn:ngsi-ld:Streetlight:d2",
                                              "urn:ngsi-ld:Streetlight:d3"]


@pytest.mark.parametrize(("path", "params", "status"), [
    ("/datasets/nowhere/data.csv", {}, 404),
    ("/datasets/lamps/history.csv", {"from": "yesterday"}, 400),
    ("/datasets/lamps/history.csv", {"since": "2026-01-01T00:00:00Z"}, 400),
    ("/datasets/lamps/history.csv", {"from": "2026-02-01T00:00:00Z",
                                     "to": "2026-01-01T00:00:00Z"}, 400),
    ("/datasets/lamps/entities", {"limit": "-1"}, 400),
])
def test_bad_download_requests_are_clear_errors(site: str, path: str,
                                                params: dict[str, str], status: int) -> None:
    response = httpx.get(site + path, params=params)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.json()["detail"]


def test_a_dataset_of_personal_data_is_refused_and_nothing_changes(site: str) -> None:
    doors = {**dataset("doors"), "query": {"types": ["Lock"]},
             "policy": {"attributes": ["lockState"]}}
    response = httpx.put(f"{site}/datasets/doors", json=doors)
    assert response.status_code == 400 and "personal" in response.json()["detail"]
    assert httpx.get(f"{site}/datasets/doors").status_code == 404
    bad = httpx.put(f"{site}/datasets/lamps", json={**dataset("lamps"), "themes": ["MOON"]})
    assert bad.status_code == 400
    assert httpx.get(f"{site}/datasets/lamps").json()["policy"]["location_grid"] == 500


def test_anyone_downloads_and_only_administrators_publish(db: str) -> None:
    live, admin = start_city(db)
    with live as url:
        city = City(url, admin, live)
        assert httpx.put(f"{url}/datasets/lamps", json=dataset("lamps")).status_code == 401
        operator = city.account(["lighting"])
        assert httpx.put(f"{url}/datasets/lamps", json=dataset("lamps"),
                         headers=operator).status_code == 403
        assert httpx.put(f"{url}/datasets/lamps", json=dataset("lamps"),
                         headers=city.admin).status_code == 201
        assert httpx.get(f"{url}/datasets/lamps/data.csv").status_code == 200
        assert httpx.get(f"{url}/datasets").json()[0]["id"] == "lamps"


def test_each_download_is_counted_per_distribution(site: str) -> None:
    before = httpx.get(f"{site}/datasets/lamps").json()["downloads"]
    for _ in range(3):
        assert httpx.get(f"{site}/datasets/lamps/data.geojson").status_code == 200
    after = httpx.get(f"{site}/datasets/lamps").json()["downloads"]
    assert after["data.geojson"] == before.get("data.geojson", 0) + 3


def test_the_catalogue_s_own_name_cannot_be_a_dataset_s(site: str) -> None:
    response = httpx.put(f"{site}/datasets/dcat", json=dataset("dcat"))
    assert response.status_code == 400 and "dcat" in response.json()["detail"]


def test_history_csv_gives_back_every_kind_of_value_exactly(db: str) -> None:
    gauge = "urn:ngsi-ld:Gauge:north,1"
    readings = [0.1 + 0.2, 'says "hi", then stops', {"level": [1, 2]}, True, 7]
    with LiveServer(Settings(db=db)) as url, httpx.Client(base_url=url) as http:
        assert http.post("/ngsi-ld/v1/entities", json={
            "id": gauge, "type": "Gauge", "reading": {"type": "Property", "value": 0}}
        ).status_code == 201
        for minute, value in enumerate(readings):
            assert http.patch(f"/ngsi-ld/v1/entities/{gauge}/attrs", json={"reading": {
                "type": "Property", "value": value,
                "observedAt": f"2026-11-25T10:0{minute}:00Z"}}).status_code == 204
        assert http.put("/datasets/gauges", json={
            **dataset("gauges"), "query": {"types": ["Gauge"]},
            "policy": {"attributes": ["reading"]}}).status_code == 201
        rows = _csv(http.get("/datasets/gauges/history.csv", params={
            "from": "2026-11-25T10:00:00Z", "to": "2026-11-25T11:00:00Z"}))
    assert [(r["id"], r["attribute"], r["observedAt"]) for r in rows] == [
        (gauge, "reading", f"2026-11-25T10:0{minute}:00Z") for minute in range(5)]
    assert [r["value"] for r in rows] == [
        "0.30000000000000004", 'says "hi", then stops', '{"level":[1,2]}', "true", "7"]


def test_an_aggregated_history_read_in_several_passes_is_the_same(
        db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with LiveServer(Settings(db=db)) as url, httpx.Client(base_url=url) as http:
        for number, lon, lat, _level in LAMPS[:2]:  # two lamps in one 500 m cell
            assert http.post("/ngsi-ld/v1/entities", json=lamp(number, lon, lat, 0)
                             ).status_code == 201
            for hour in range(5):
                assert http.patch(
                    f"/ngsi-ld/v1/entities/urn:ngsi-ld:Streetlight:d{number}/attrs",
                    json={"illuminanceLevel": {
                        "type": "Property", "value": hour * 10 + int(number),
                        "observedAt": f"2026-11-2{hour}T10:00:00Z"}}).status_code == 204
        assert http.put("/datasets/groups", json=dataset(
            "groups", location_grid=500, time_resolution="P1D", aggregate=True,
            min_group=2)).status_code == 201

        def history() -> list[tuple[str, str, str]]:
            rows = _csv(http.get("/datasets/groups/history.csv",
                                 params={"to": "2026-11-25T00:00:00Z"}))
            return [(r["observedAt"], r["count"], r["value"]) for r in rows
                    if r["attribute"] == "illuminanceLevel"]
        whole = history()
        monkeypatch.setattr(exporters, "PERIODS_PER_PASS", 2)
        assert history() == whole == [
            (f"2026-11-2{day}T00:00:00Z", "2", f"{day * 10 + 1.5}") for day in range(5)]


def test_an_aggregated_history_is_cut_at_whole_periods_only(db: str) -> None:
    # A reads 97 at 10:10; B and C read 10 and 20 at 10:40. Were the window cut at
    # 10:30, comparing its group with the whole hour's would give A's value away.
    with LiveServer(Settings(db=db)) as url, httpx.Client(base_url=url) as http:
        for name, minute, value in (("a", 10, 97), ("b", 40, 10), ("c", 40, 20)):
            assert http.post("/ngsi-ld/v1/entities", json={
                "id": f"urn:ngsi-ld:Streetlight:{name}", "type": "Streetlight",
                "illuminanceLevel": {"type": "Property", "value": value,
                                     "observedAt": f"2026-11-20T10:{minute}:00Z"}}
            ).status_code == 201
        assert http.put("/datasets/hourly", json=dataset(
            "hourly", time_resolution="PT1H", aggregate=True, min_group=2)
        ).status_code == 201
        answers = [_csv(http.get("/datasets/hourly/history.csv", params={
            "from": f"2026-11-20T10:{minute}:00Z", "to": "2026-11-20T10:50:00Z"}))
            for minute in ("00", "30")]
    assert answers[0] == answers[1]
    assert [(r["observedAt"], r["count"]) for r in answers[0]] == [
        ("2026-11-20T10:00:00Z", "3")]


def test_an_aggregated_history_leaps_over_years_without_values(
        db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exporters, "PERIODS_PER_PASS", 2)
    with LiveServer(Settings(db=db)) as url, httpx.Client(base_url=url) as http:
        for number in "12":
            assert http.post("/ngsi-ld/v1/entities", json={
                "id": f"urn:ngsi-ld:Streetlight:y{number}", "type": "Streetlight",
                "illuminanceLevel": {"type": "Property", "value": 1,
                                     "observedAt": "1970-01-01T00:00:30Z"}}
            ).status_code == 201
            assert http.patch(f"/ngsi-ld/v1/entities/urn:ngsi-ld:Streetlight:y{number}/attrs",
                              json={"illuminanceLevel": {
                                  "type": "Property", "value": 3,
                                  "observedAt": "2026-11-20T10:00:30Z"}}).status_code == 204
        assert http.put("/datasets/minutes", json=dataset(
            "minutes", time_resolution="PT1M", aggregate=True, min_group=2)
        ).status_code == 201
        rows = _csv(http.get("/datasets/minutes/history.csv",
                             params={"to": "2026-11-21T00:00:00Z"}, timeout=30))
    # 29 million minutes apart, two passes of two minutes each.
    assert [(r["observedAt"], r["value"]) for r in rows] == [
        ("1970-01-01T00:00:00Z", "1.0"), ("2026-11-20T10:00:00Z", "3.0")]
