"""The catalogue through CKAN's Action API (issue 8, item 3): what portal tools that
speak CKAN see of it, first as the pure mapping and search, then over a real server
with the ckanapi client those tools use."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import ckanapi
import httpx
import orjson
import pytest

from smartcity.config import Settings
from smartcity.opendata.ckan_api import CkanError, Packages, call
from smartcity.opendata.model import Dataset, Publisher, Text
from tests.conftest import LiveServer
from tests.security.conftest import City, start_city

PUBLISHER = Publisher(name=Text(sv="Göteborgs Stad", en="City of Gothenburg"),
                      organisation_number="212000-1355", homepage="https://goteborg.se",
                      email="data@goteborg.se")
BASE = "https://data.example.org"
DISTRIBUTIONS = ("data.csv", "data.geojson", "data.jsonld", "history.csv", "entities")


def spec(name: str, title: tuple[str, str], description: tuple[str, str],
         keywords: tuple[list[str], list[str]], themes: list[str],
         **more: Any) -> dict[str, Any]:
    return {"id": name, "title": {"sv": title[0], "en": title[1]},
            "description": {"sv": description[0], "en": description[1]},
            "keywords": {"sv": keywords[0], "en": keywords[1]}, "themes": themes,
            "contact": {"name": "Öppna data", "email": "data@example.org"},
            "query": {"types": ["AirQualityObserved"]}, "policy": {"attributes": ["NO2"]},
            **more}


SPECS = [
    spec("air-quality", ("Luftkvalitet", "Air quality"),
         ("Halter av kvävedioxid i stadens luft", "Nitrogen dioxide in the city's air"),
         (["luft", "miljö"], ["air", "environment"]), ["ENVI"], licence="CC-BY-4.0",
         hvd_category="earth-observation-environment", frequency="HOURLY",
         spatial={"west": 11.8, "south": 57.6, "east": 12.1, "north": 57.8},
         temporal={"start": "2024-01-01"}),
    spec("parking", ("Parkeringsplatser", "Parking spaces"),
         ("Lediga platser i parkeringshusen", "Free spaces in the car parks"),
         (["parkering", "mobilitet"], ["parking", "mobility"]), ["TRAN"]),
    spec("bike-counts", ("Cykelräkningar", "Bicycle counts"),
         ("Cyklar räknade vid stråken, för renare luft", "Bicycles counted on the main "
          "routes, for cleaner air"), (["cykel", "mobilitet"], ["bicycle", "mobility"]),
         ["TRAN", "ENVI"]),
]
# Published in this order, a day apart.
TIMES = ["2026-01-10T08:00:00.000000Z", "2026-02-10T08:00:00.000000Z",
         "2026-03-10T08:00:00.000000Z"]


@pytest.fixture(scope="module")
def packages() -> Packages:
    datasets = [Dataset(**s, issued=t, modified=t) for s, t in zip(SPECS, TIMES, strict=True)]
    return Packages(PUBLISHER, BASE, DISTRIBUTIONS).refresh(datasets)


def names(result: dict[str, Any]) -> list[str]:
    return [p["name"] for p in result["results"]]


def found(packages: Packages, **params: Any) -> list[str]:
    return names(call("package_search", packages, params))


# --- the mapping ------------------------------------------------------------------------


def test_a_dataset_is_a_package_in_english_with_swedish_beside(packages: Packages) -> None:
    package = call("package_show", packages, {"id": "air-quality"})
    assert package["name"] == package["id"] == "air-quality"
    assert package["title"] == "Air quality"
    assert package["title_translated"] == {"sv": "Luftkvalitet", "en": "Air quality"}
    assert package["notes"] == "Nitrogen dioxide in the city's air"
    assert package["notes_translated"]["sv"] == "Halter av kvävedioxid i stadens luft"
    assert [t["name"] for t in package["tags"]] == ["luft", "miljö", "air", "environment"]
    assert package["license_id"] == "cc-by"
    assert package["license_title"] == "Creative Commons Attribution 4.0"
    assert package["organization"]["name"] == "city-of-gothenburg"
    assert package["organization"]["title"] == "City of Gothenburg"
    assert package["metadata_created"] == package["metadata_modified"] == TIMES[0]
    assert package["url"] == f"{BASE}/datasets/air-quality"
    assert call("package_show", packages, {"id": "parking"})["license_id"] == "cc-zero"


def test_each_distribution_is_a_resource_with_a_stable_id(packages: Packages) -> None:
    resources = call("package_show", packages, {"id": "parking"})["resources"]
    assert [(r["id"], r["format"], r["url"]) for r in resources] == [
        ("parking--csv", "CSV", f"{BASE}/datasets/parking/data.csv"),
        ("parking--geojson", "GeoJSON", f"{BASE}/datasets/parking/data.geojson"),
        ("parking--jsonld", "JSON-LD", f"{BASE}/datasets/parking/data.jsonld"),
        ("parking--history-csv", "CSV", f"{BASE}/datasets/parking/history.csv"),
        ("parking--api", "API", f"{BASE}/datasets/parking/entities")]
    assert {r["package_id"] for r in resources} == {"parking"}
    assert resources[1]["mimetype"] == "application/geo+json"
    assert call("resource_show", packages, {"id": "parking--geojson"}) == resources[1]


def test_themes_frequency_hvd_and_coverage_are_extras(packages: Packages) -> None:
    extras = {e["key"]: e["value"] for e in
              call("package_show", packages, {"id": "air-quality"})["extras"]}
    assert orjson.loads(extras["theme"]) == [
        "http://publications.europa.eu/resource/authority/data-theme/ENVI"]
    assert extras["frequency"] == \
        "http://publications.europa.eu/resource/authority/frequency/HOURLY"
    assert extras["hvd_category"] == "http://data.europa.eu/bna/c_dd313021"
    assert orjson.loads(extras["spatial"]) == {"type": "Polygon", "coordinates": [[
        [11.8, 57.6], [12.1, 57.6], [12.1, 57.8], [11.8, 57.8], [11.8, 57.6]]]}
    assert extras["temporal_start"] == "2024-01-01"
    plain = {e["key"] for e in call("package_show", packages, {"id": "parking"})["extras"]}
    assert plain == {"theme", "frequency"}


def test_the_publisher_is_the_one_organization(packages: Packages) -> None:
    assert call("organization_list", packages, {}) == ["city-of-gothenburg"]
    [org] = call("organization_list", packages, {"all_fields": "true"})
    assert org["title"] == "City of Gothenburg"
    assert org["package_count"] == 3


def test_tags_are_every_keyword_in_both_languages(packages: Packages) -> None:
    assert call("tag_list", packages, {}) == [
        "air", "bicycle", "cykel", "environment", "luft", "miljö", "mobilitet",
        "mobility", "parkering", "parking"]
    assert call("tag_list", packages, {"query": "MOBIL"}) == ["mobilitet", "mobility"]
    assert call("tag_list", packages, {"query": "park", "vocabulary_id": "x"}) == [
        "parkering", "parking"]


def test_package_list_pages_the_names(packages: Packages) -> None:
    assert call("package_list", packages, {}) == ["air-quality", "bike-counts", "parking"]
    assert call("package_list", packages, {"limit": 1, "offset": 1}) == ["bike-counts"]


# --- searching --------------------------------------------------------------------------


def test_words_are_found_in_either_language_and_at_the_start_of_words(
        packages: Packages) -> None:
    assert found(packages, q="luftkvalitet") == ["air-quality"]
    assert found(packages, q="Parking") == ["parking"]
    assert found(packages, q="parkering") == ["parking"]
    assert found(packages, q="cykel") == ["bike-counts"]
    # Equal scores: the newer first.
    assert found(packages, q="MOBIL") == ["bike-counts", "parking"]
    assert found(packages, q="spaceship") == []


def test_every_word_must_match_and_phrases_keep_their_order(packages: Packages) -> None:
    assert found(packages, q="mobility cleaner") == ["bike-counts"]
    assert found(packages, q='"cleaner air"') == ["bike-counts"]
    assert found(packages, q='"air cleaner"') == []
    assert set(found(packages, q="air -bicycle")) == {"air-quality"}


def test_a_title_match_ranks_above_a_description_match(packages: Packages) -> None:
    # "air" is air-quality's title; bike-counts only mentions cleaner air.
    assert found(packages, q="air") == ["air-quality", "bike-counts"]


def test_no_query_finds_everything_newest_first(packages: Packages) -> None:
    result = call("package_search", packages, {})
    assert result["count"] == 3
    assert names(result) == ["bike-counts", "parking", "air-quality"]
    assert result["sort"] == "score desc, metadata_modified desc"
    assert found(packages, q="*:*") == names(result)


@pytest.mark.parametrize(("fq", "expected"), [
    ("tags:mobility", {"parking", "bike-counts"}),
    ("tags:MILJÖ", {"air-quality"}),
    ('tags:"mobility"', {"parking", "bike-counts"}),
    ("tags:park*", {"parking"}),
    ("organization:city-of-gothenburg", {"air-quality", "parking", "bike-counts"}),
    ("organization:elsewhere", set()),
    ("res_format:GeoJSON", {"air-quality", "parking", "bike-counts"}),
    ("res_format:xlsx", set()),
    ("groups:envi", {"air-quality", "bike-counts"}),
    ("groups:tran AND groups:envi", {"bike-counts"}),
    ("+groups:tran -tags:parking", {"bike-counts"}),
    ("license_id:cc-by", {"air-quality"}),
    ("name:parking", {"parking"}),
    ("dataset_type:dataset tags:*", {"air-quality", "parking", "bike-counts"}),
    ("text:nitrogen", {"air-quality"}),
    ("metadata_modified:[2026-02-01T00:00:00Z TO *]", {"parking", "bike-counts"}),
    ("metadata_created:[* TO 2026-02-10T08:00:00Z]", {"air-quality", "parking"}),
    ("metadata_created:{* TO 2026-02-10T08:00:00Z}", {"air-quality"}),
    ("metadata_modified:[2026-01-01 TO 2026-01-31]", {"air-quality"}),
])
def test_fq_filters_by_field(packages: Packages, fq: str, expected: set[str]) -> None:
    assert set(found(packages, fq=fq)) == expected


def test_fq_list_and_fields_in_q_filter_too(packages: Packages) -> None:
    assert found(packages, fq_list=["groups:tran", "tags:cykel"]) == ["bike-counts"]
    assert found(packages, q="tags:parking") == ["parking"]
    assert found(packages, q="mobility groups:envi") == ["bike-counts"]


@pytest.mark.parametrize(("sort", "expected"), [
    ("name asc", ["air-quality", "bike-counts", "parking"]),
    ("name desc", ["parking", "bike-counts", "air-quality"]),
    ("title_string asc", ["air-quality", "bike-counts", "parking"]),
    ("metadata_modified asc", ["air-quality", "parking", "bike-counts"]),
    ("metadata_created desc", ["bike-counts", "parking", "air-quality"]),
    ("score desc, name desc", ["parking", "bike-counts", "air-quality"]),
])
def test_sort_orders_the_results(packages: Packages, sort: str, expected: list[str]
                                 ) -> None:
    result = call("package_search", packages, {"sort": sort})
    assert names(result) == expected
    assert result["sort"] == sort


def test_rows_and_start_page_the_results(packages: Packages) -> None:
    every = found(packages, sort="name asc")
    pages = [found(packages, sort="name asc", rows=2, start=s) for s in (0, 2, 4)]
    assert pages == [every[:2], every[2:], []]
    only_count = call("package_search", packages, {"rows": "0"})
    assert (only_count["count"], only_count["results"]) == (3, [])
    # As CKAN, more rows than the most (1000) are capped, not refused.
    assert len(found(packages, rows=5000)) == 3


def test_facets_count_values_among_the_results(packages: Packages) -> None:
    result = call("package_search", packages, {
        "fq": "groups:tran", "facet.field": '["tags", "res_format", "groups"]'})
    assert result["facets"]["groups"] == {"tran": 2, "envi": 1}
    assert result["facets"]["tags"]["mobility"] == 2
    assert result["facets"]["res_format"] == {"CSV": 2, "GeoJSON": 2, "JSON-LD": 2,
                                              "API": 2}
    assert {"name": "tran", "display_name": "tran", "count": 2} in \
        result["search_facets"]["groups"]["items"]
    limited = call("package_search", packages, {"facet.field": ["tags"], "facet.limit": 1})
    # The most frequent first, ties in the order of their names.
    assert limited["facets"]["tags"] == {"mobilitet": 2}


@pytest.mark.parametrize(("params", "parameter", "says"), [
    ({"rows": -1}, "rows", "natural number"),
    ({"rows": "abc"}, "rows", "natural number"),
    ({"start": -5}, "start", "natural number"),
    ({"sort": "bogus"}, "sort", "Cannot sort by 'bogus'"),
    ({"sort": "name sideways"}, "sort", "Cannot sort by"),
    ({"fq": "colour:red"}, "fq", "Unknown field 'colour'"),
    ({"fq": "parking"}, "fq", "not a field:value clause"),
    ({"fq": "tags:a OR tags:b"}, "fq", "OR is not supported"),
    ({"fq": "(tags:a)"}, "fq", "parentheses"),
    ({"fq": 'tags:"open'}, "fq", "Unclosed quote"),
    ({"fq": "metadata_modified:[NOW-1DAY TO *]"}, "fq", "NOW is not supported"),
    ({"fq": "metadata_modified:yesterday"}, "fq", "range"),
    ({"q": 5}, "q", "must be a string"),
    ({"facet.field": '["colour"]'}, "facet.field", "Cannot count 'colour'"),
    ({"colour": "red"}, "colour", "Unknown parameter 'colour'"),
])
def test_bad_search_parameters_are_refused_naming_the_parameter(
        packages: Packages, params: dict[str, Any], parameter: str, says: str) -> None:
    with pytest.raises(CkanError) as refused:
        call("package_search", packages, params)
    assert refused.value.code == 400
    body = refused.value.body()
    assert body["__type"] == "Validation Error"
    assert says in body["message"]
    assert body[parameter] == [body["message"]]


def test_unknown_names_are_not_found(packages: Packages) -> None:
    for name, params in [("package_show", {"id": "nope"}),
                         ("resource_show", {"id": "parking--xlsx"}),
                         ("resource_show", {"id": "nope--csv"})]:
        with pytest.raises(CkanError) as refused:
            call(name, packages, params)
        assert refused.value.code == 404
        assert refused.value.body()["__type"] == "Not Found Error"


def test_help_show_says_what_an_action_does(packages: Packages) -> None:
    assert "rows" in call("help_show", packages, {"name": "package_search"})


# --- over a real server, with the ckanapi client ------------------------------------------


@pytest.fixture(scope="module")
def site(module_db: str) -> Iterator[str]:
    with LiveServer(Settings(db=module_db, public_url="https://data.example.org")) as url:
        with httpx.Client(base_url=url) as http:
            for body in SPECS:
                response = http.put(f"/datasets/{body['id']}", json=body)
                assert response.status_code == 201, response.text
        yield url


@pytest.fixture
def ckan(site: str) -> Iterator[ckanapi.RemoteCKAN]:
    with ckanapi.RemoteCKAN(site) as remote:
        yield remote


def test_ckanapi_lists_shows_and_searches(ckan: ckanapi.RemoteCKAN) -> None:
    assert ckan.action.package_list() == ["air-quality", "bike-counts", "parking"]
    package = ckan.action.package_show(id="parking")
    assert package["title"] == "Parking spaces"
    assert package["resources"][0]["url"] == \
        "https://data.example.org/datasets/parking/data.csv"
    result = ckan.action.package_search(q="mobilitet", fq="groups:envi", rows=5)
    assert (result["count"], names(result)) == (1, ["bike-counts"])
    assert names(ckan.action.package_search(sort="name desc")) == [
        "parking", "bike-counts", "air-quality"]
    assert ckan.action.organization_list() == ["example-municipality"]
    assert "parkering" in ckan.action.tag_list()
    assert ckan.action.resource_show(id="air-quality--jsonld")["format"] == "JSON-LD"


def test_ckanapi_gets_the_same_with_get_requests(site: str) -> None:
    with ckanapi.RemoteCKAN(site, get_only=True) as ckan:
        result = ckan.action.package_search(q="parking", fq='tags:"parking"', rows=1)
        assert names(result) == ["parking"]
        assert ckan.action.package_show(id="air-quality")["license_id"] == "cc-by"


def test_ckanapi_raises_not_found_and_validation_errors(ckan: ckanapi.RemoteCKAN) -> None:
    with pytest.raises(ckanapi.NotFound, match="No dataset 'nope' in the catalogue"):
        ckan.action.package_show(id="nope")
    with pytest.raises(ckanapi.NotFound):
        ckan.action.resource_show(id="parking--xlsx")
    with pytest.raises(ckanapi.ValidationError) as refused:
        ckan.action.package_search(rows=-1)
    assert "natural number" in refused.value.error_dict["rows"][0]
    with pytest.raises(ckanapi.ValidationError) as missing:
        ckan.action.package_show()
    assert missing.value.error_dict["id"] == ["Missing value"]


@pytest.mark.parametrize("prefix", ["/api/3/action", "/api/action"])
def test_answers_come_in_ckans_envelope(site: str, prefix: str) -> None:
    response = httpx.get(f"{site}{prefix}/package_search", params={"q": "luft"})
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert body["help"] == \
        "https://data.example.org/api/3/action/help_show?name=package_search"
    assert names(body["result"]) == ["air-quality", "bike-counts"]


@pytest.mark.parametrize(("params", "parameter"), [
    ({"rows": "-1"}, "rows"), ({"rows": "abc"}, "rows"), ({"start": "-5"}, "start"),
    ({"sort": "bogus"}, "sort"), ({"fq": "colour:red"}, "fq")])
def test_bad_search_parameters_are_400s(site: str, params: dict[str, str], parameter: str
                                        ) -> None:
    response = httpx.get(f"{site}/api/3/action/package_search", params=params)
    assert response.status_code == 400
    body = response.json()
    assert body["success"] is False
    assert body["error"]["__type"] == "Validation Error"
    assert parameter in body["error"]


def test_other_failures_keep_ckans_statuses(site: str) -> None:
    missing = httpx.post(f"{site}/api/3/action/package_show", json={})
    assert (missing.status_code, missing.json()["error"]["id"]) == (409, ["Missing value"])
    unknown = httpx.get(f"{site}/api/3/action/package_create")
    assert unknown.status_code == 400
    assert "Action name not known" in unknown.json()["error"]["message"]
    not_json = httpx.post(f"{site}/api/3/action/package_list", content=b"[1, 2]",
                          headers={"Content-Type": "application/json"})
    assert not_json.status_code == 400
    assert not_json.json()["success"] is False


def test_a_changed_or_withdrawn_dataset_shows_at_once(db: str) -> None:
    with LiveServer(Settings(db=db)) as url, httpx.Client(base_url=url) as http, \
            ckanapi.RemoteCKAN(url) as ckan:
        assert http.put("/datasets/parking", json=SPECS[1]).status_code == 201
        first = ckan.action.package_show(id="parking")
        changed = {**SPECS[1], "title": {"sv": "Parkering", "en": "Car parks"}}
        assert http.put("/datasets/parking", json=changed).status_code == 200
        now = ckan.action.package_show(id="parking")
        assert now["title"] == "Car parks"
        assert now["metadata_created"] == first["metadata_created"]
        assert now["metadata_modified"] > first["metadata_modified"]
        assert names(ckan.action.package_search(q="car parks")) == ["parking"]
        assert http.delete("/datasets/parking").status_code == 204
        assert ckan.action.package_list() == []
        assert ckan.action.package_search()["count"] == 0


def test_anyone_may_read_with_access_control_on(db: str) -> None:
    live, admin = start_city(db)
    with live as url:
        city = City(url, admin, live)
        assert httpx.put(f"{url}/datasets/parking", json=SPECS[1],
                         headers=city.admin).status_code == 201
        with ckanapi.RemoteCKAN(url) as anyone:
            assert anyone.action.package_list() == ["parking"]
            assert names(anyone.action.package_search(q="parkering")) == ["parking"]
