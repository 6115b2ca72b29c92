"""Specification of entity queries: GET /entities and POST /entityOperations/query.

ETSI GS CIM 009 V1.9.1, clauses 4.9 (q), 4.10 (geo-queries), 4.17 (type expressions),
4.19 (scopeQ), 5.5.9 (pagination), 5.7.2 (Query Entities), 6.4.3.2 and 6.23.
The queries read a small fixed city (Stockholm landmarks, districts and air quality
sensors) loaded once into a server shared by the module.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from smartcity.config import Settings
from tests.conftest import LiveServer

ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
CORE_CONTEXT = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld"
DEFAULT = "https://uri.etsi.org/ngsi-ld/default-context/"

CITY_HALL = [18.0546, 59.3275]
PALACE = [18.0716, 59.3268]  # 971 m east of City Hall
VASA = [18.0914, 59.3280]  # 2 096 m from City Hall
GLOBEN = [18.0838, 59.2935]  # 4 137 m from City Hall


def ring(minx: float, miny: float, maxx: float, maxy: float) -> list[list[list[float]]]:
    return [[[minx, miny], [maxx, miny], [maxx, maxy], [minx, maxy], [minx, miny]]]


GAMLA_STAN = ring(18.064, 59.319, 18.080, 59.329)  # holds the Palace
KUNGSHOLMEN = ring(18.000, 59.325, 18.060, 59.340)  # holds City Hall
CENTRE = ring(18.04, 59.32, 18.10, 59.335)  # City Hall, Palace and Vasa, not Globen


def geo(geometry_type: str, coordinates: Any) -> dict[str, Any]:
    return {"type": "GeoProperty", "value": {"type": geometry_type, "coordinates": coordinates}}


def sensor(name: str, **attrs: Any) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:AirQualitySensor:{name}", "type": "AirQualitySensor", **attrs}


CITY: list[dict[str, Any]] = [
    {"id": "urn:ngsi-ld:Landmark:CityHall", "type": "Landmark",
     "name": "Stadshuset", "location": geo("Point", CITY_HALL),
     "entrance": geo("Point", [18.0550, 59.3280])},
    {"id": "urn:ngsi-ld:Landmark:Palace", "type": "Landmark",
     "name": "Kungliga slottet", "location": geo("Point", PALACE), "open": True},
    {"id": "urn:ngsi-ld:Landmark:Vasa", "type": ["Landmark", "Museum"],
     "name": "Vasamuseet", "location": geo("Point", VASA), "open": False,
     "launched": "1628-08-10"},
    {"id": "urn:ngsi-ld:Landmark:Globen", "type": "Landmark",
     "name": "Avicii Arena", "location": geo("Point", GLOBEN)},
    {"id": "urn:ngsi-ld:District:GamlaStan", "type": "District",
     "name": "Gamla stan", "location": geo("Polygon", GAMLA_STAN)},
    {"id": "urn:ngsi-ld:District:Kungsholmen", "type": "District",
     "name": "Kungsholmen", "location": geo("Polygon", KUNGSHOLMEN)},
    {"id": "urn:ngsi-ld:Route:Bridge", "type": "Route", "name": "Centralbron (E4|E20); 1966",
     "location": geo("LineString", [[18.060, 59.324], [18.085, 59.324]])},
    sensor("S1", scope="/Stockholm/Kungsholmen",
           temperature={"type": "Property", "value": 21.5, "unitCode": "CEL",
                        "observedAt": "2024-05-01T12:00:00Z"},
           no2={"type": "Property", "value": 12,
                "quality": {"type": "Property", "value": 0.9}},
           status="ok", tags=["traffic", "park"], installedAt="2020-03-01T10:00:00Z",
           address={"type": "Property",
                    "value": {"addressLocality": "Stockholm", "postalCode": "11221"}},
           location=geo("Point", CITY_HALL)),
    sensor("S2", scope="/Stockholm/Sodermalm",
           temperature={"type": "Property", "value": 15, "unitCode": "CEL",
                        "observedAt": "2024-05-02T12:00:00Z"},
           no2={"type": "Property", "value": 40,
                "quality": {"type": "Property", "value": 0.3}},
           status="broken", installedAt="2022-06-01T10:00:00Z",
           address={"type": "Property",
                    "value": {"addressLocality": "Göteborg", "postalCode": "41101"}}),
    sensor("S3", scope=["/Stockholm/Sodermalm", "/Sweden"],
           temperature={"type": "Property", "value": 30, "unitCode": "FAH"},
           no2={"type": "Property", "value": 25},
           status="ok", tags=["harbour"],
           address={"type": "Property",
                    "value": {"addressLocality": "Stockholm", "postalCode": "11850"}},
           controlledBy={"type": "Relationship", "object": "urn:ngsi-ld:Device:1"}),
    sensor("S4", status="maintenance"),
]
BENCHES = [{"id": f"urn:ngsi-ld:Bench:{i}", "type": "Bench", "seats": i} for i in range(7)]
BOLLARDS = [{"id": f"urn:ngsi-ld:Bollard:{i:02d}", "type": "Bollard"} for i in range(25)]


@pytest.fixture(scope="module")
def server(module_db: str) -> Iterator[str]:
    """A server shared by this module, holding the city."""
    with LiveServer(Settings(db=module_db, max_body_bytes=64 * 1024)) as url, \
            httpx.Client(base_url=url + "/ngsi-ld/v1", timeout=10) as http:
        for entity in CITY + BENCHES + BOLLARDS:
            response = http.post("/entities", json=entity)
            assert response.status_code == 201, response.text
        yield url + "/ngsi-ld/v1"


def query(api: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    response = api.get("/entities", params={"limit": 100, **params})
    assert response.status_code == 200, response.text
    body: list[dict[str, Any]] = response.json()
    return body


def ids(api: httpx.Client, **params: Any) -> set[str]:
    """The short names (last id segment) of the entities a query answers."""
    return {e["id"].rsplit(":", 1)[1] for e in query(api, **params)}


def sensors(api: httpx.Client, q: str, **params: Any) -> set[str]:
    return ids(api, type="AirQualitySensor", q=q, **params)


def assert_problem(response: httpx.Response, status: int, name: str | None = None
                   ) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["type"].startswith(ERRORS)
    if name is not None:
        assert body["type"] == ERRORS + name
    assert body["title"] and body["status"] == status and body["detail"]
    return body


def links(response: httpx.Response) -> dict[str, str]:
    """rel -> target of the Link header (the @context link is named 'context')."""
    found = {}
    for target, params in re.findall(r"<([^>]*)>([^,]*)", response.headers.get("Link", "")):
        rel = re.search(r'rel="?([^";]+)"?', params)
        assert rel is not None
        found["context" if rel.group(1).endswith("#context") else rel.group(1)] = target
    return found


# --- type expressions -------------------------------------------------------------------


@pytest.mark.parametrize(("expression", "expected"), [
    ("Landmark", {"CityHall", "Palace", "Vasa", "Globen"}),
    ("Museum", {"Vasa"}),
    ("District,Route", {"GamlaStan", "Kungsholmen", "Bridge"}),
    ("District|Route", {"GamlaStan", "Kungsholmen", "Bridge"}),
    ("Landmark;Museum", {"Vasa"}),
    ("Museum;District", set()),
    ("(District|Museum);Landmark", {"Vasa"}),
    ("Route|(Landmark;Museum)", {"Bridge", "Vasa"}),
    ("Fountain", set()),
    (f"{DEFAULT}Route", {"Bridge"}),
])
def test_type_expression_selects_entities(api: httpx.Client, expression: str,
                                          expected: set[str]) -> None:
    assert ids(api, type=expression) == expected


@pytest.mark.parametrize("expression", ["District,", ",District", "(District", "District)",
                                        "District;;Route", "()", "District Route"])
def test_malformed_type_expression_is_400(api: httpx.Client, expression: str) -> None:
    assert_problem(api.get("/entities", params={"type": expression}), 400, "BadRequestData")


def test_entities_with_several_types_are_found_by_each(api: httpx.Client) -> None:
    assert "Vasa" in ids(api, type="Landmark")
    assert "Vasa" in ids(api, type="Museum")
    vasa = query(api, type="Museum")[0]
    assert sorted(vasa["type"]) == ["Landmark", "Museum"]


# --- id, idPattern, attrs ---------------------------------------------------------------


def test_id_list_selects_those_entities(api: httpx.Client) -> None:
    assert ids(api, type="Landmark,District",
               id="urn:ngsi-ld:Landmark:Vasa,urn:ngsi-ld:District:GamlaStan,"
                  "urn:ngsi-ld:Landmark:Nowhere") == {"Vasa", "GamlaStan"}


def test_id_with_type_must_match_both(api: httpx.Client) -> None:
    assert ids(api, id="urn:ngsi-ld:Landmark:Vasa,urn:ngsi-ld:District:GamlaStan",
               type="District") == {"GamlaStan"}


def test_id_pattern_selects_matching_ids(api: httpx.Client) -> None:
    assert ids(api, type="AirQualitySensor",
               idPattern=r"^urn:ngsi-ld:AirQualitySensor:S[13]$") == {"S1", "S3"}
    assert ids(api, type="Landmark", idPattern="a") == {"CityHall", "Palace", "Vasa", "Globen"}


@pytest.mark.parametrize("params", [{"idPattern": "(unclosed"},
                                    {"id": "not-a-uri"}, {"id": "urn:x:1,,urn:x:2"}])
def test_bad_id_selectors_are_400(api: httpx.Client, params: dict[str, str]) -> None:
    assert_problem(api.get("/entities", params=params), 400, "BadRequestData")


def test_attrs_selects_entities_that_have_them_and_shows_only_those(api: httpx.Client) -> None:
    found = query(api, type="AirQualitySensor", attrs="temperature")
    assert {e["id"].rsplit(":", 1)[1] for e in found} == {"S1", "S2", "S3"}
    assert all(set(e) - {"scope"} == {"id", "type", "temperature"} for e in found)


def test_attrs_alone_is_a_filter(api: httpx.Client) -> None:
    assert ids(api, attrs="controlledBy") == {"S3"}


def test_a_query_without_any_filter_is_400(api: httpx.Client) -> None:
    assert_problem(api.get("/entities"), 400, "BadRequestData")


def test_type_star_selects_every_entity(api: httpx.Client) -> None:
    response = api.get("/entities", params={"type": "*", "count": "true", "limit": 1})
    assert response.status_code == 200
    # Later tests write Trams and Counters; they may have run first.
    later = len(query(api, type="Tram,Counter"))
    assert int(response.headers["NGSILD-Results-Count"]) == len(CITY + BENCHES + BOLLARDS) \
        + later


# --- q: the query language --------------------------------------------------------------


@pytest.mark.parametrize(("q", "expected"), [
    ("temperature>20", {"S1", "S3"}),
    ("temperature>=21.5", {"S1", "S3"}),
    ("temperature<21.5", {"S2"}),
    ("temperature<=15", {"S2"}),
    ("temperature==15", {"S2"}),
    ("temperature!=15", {"S1", "S3"}),
    ("temperature==15..22", {"S1", "S2"}),
    ("temperature==22..40", {"S3"}),
    ("temperature==15,30", {"S2", "S3"}),
    ("temperature!=15,30", {"S1"}),
    ('status=="ok"', {"S1", "S3"}),
    ('status=="ok","broken"', {"S1", "S2", "S3"}),
    ('status!="ok"', {"S2", "S4"}),
    ("temperature", {"S1", "S2", "S3"}),
])
def test_q_comparisons_ranges_and_lists(api: httpx.Client, q: str, expected: set[str]) -> None:
    assert sensors(api, q) == expected


@pytest.mark.parametrize(("q", "expected"), [
    ("status~=^bro", {"S2"}),
    ('status~="(?i)^OK$"', {"S1", "S3"}),
    ("status!~=^(ok|broken)$", {"S4"}),
    ("address[postalCode]~=^118", {"S3"}),
])
def test_q_patterns(api: httpx.Client, q: str, expected: set[str]) -> None:
    assert sensors(api, q) == expected


@pytest.mark.parametrize(("q", "expected"), [
    ('address[addressLocality]=="Stockholm"', {"S1", "S3"}),
    ('address[addressLocality]=="Göteborg"', {"S2"}),
    ("no2.quality>0.5", {"S1"}),
    ("no2.quality<0.5", {"S2"}),
    ('temperature.unitCode=="CEL"', {"S1", "S2"}),
    ("temperature.observedAt>=2024-05-02T00:00:00Z", {"S2"}),
    ('tags=="park"', {"S1"}),
    ('controlledBy=="urn:ngsi-ld:Device:1"', {"S3"}),
    (f"{DEFAULT}temperature>20", {"S1", "S3"}),
])
def test_q_paths_into_values_sub_attributes_and_metadata(api: httpx.Client, q: str,
                                                         expected: set[str]) -> None:
    assert sensors(api, q) == expected


@pytest.mark.parametrize(("q", "expected"), [
    ("installedAt>2021-01-01T00:00:00Z", {"S2"}),
    ("installedAt<2021-01-01T00:00:00Z", {"S1"}),
    ("installedAt==2020-01-01T00:00:00Z..2023-01-01T00:00:00Z", {"S1", "S2"}),
])
def test_q_compares_datetimes(api: httpx.Client, q: str, expected: set[str]) -> None:
    assert sensors(api, q) == expected


@pytest.mark.parametrize(("q", "expected"), [
    ('status=="ok";temperature>25', {"S3"}),
    ('status=="broken"|temperature>25', {"S2", "S3"}),
    ('(status=="ok"|status=="broken");temperature<20', {"S2"}),
    ('status=="ok";(temperature<20|no2<20)', {"S1"}),
    ('status=="maintenance"|status=="ok";temperature>25', {"S3", "S4"}),
])
def test_q_combines_terms_with_and_or_and_parentheses(api: httpx.Client, q: str,
                                                      expected: set[str]) -> None:
    assert sensors(api, q) == expected


@pytest.mark.parametrize(("q", "expected"), [
    ("open==true", {"Palace"}),
    ("open==false", {"Vasa"}),
    ("open!=true", {"Vasa"}),
    ("launched<1700-01-01", {"Vasa"}),
    ("launched==1600-01-01..1650-12-31", {"Vasa"}),
    ('name=="Centralbron (E4|E20); 1966"', {"Bridge"}),
    ('name~="\\(E4\\|E20\\)"', {"Bridge"}),
    ('name=="Stadshuset","Vasamuseet"', {"CityHall", "Vasa"}),
    ("name>3", set()),
])
def test_q_on_booleans_dates_and_quoted_strings(api: httpx.Client, q: str,
                                                expected: set[str]) -> None:
    assert ids(api, type="Landmark,Route", q=q) == expected


def test_q_can_be_the_only_filter(api: httpx.Client) -> None:
    assert ids(api, q="seats>=5") == {"5", "6"}


@pytest.mark.parametrize("q", ["temperature>>3", "temperature==", "(status==1",
                               "status==1)", "temperature==1..", ";status==1",
                               "temperature~=(unclosed"])
def test_malformed_q_is_400(api: httpx.Client, q: str) -> None:
    response = api.get("/entities", params={"type": "AirQualitySensor", "q": q})
    assert_problem(response, 400, "BadRequestData")


# --- scopeQ -----------------------------------------------------------------------------


@pytest.mark.parametrize(("scope_q", "expected"), [
    ("/Stockholm/Kungsholmen", {"S1"}),
    ("/Stockholm", set()),
    ("/Stockholm/#", {"S1", "S2", "S3"}),
    ("/Stockholm/+", {"S1", "S2", "S3"}),
    ("/Sweden", {"S3"}),
    ("/Stockholm/Kungsholmen,/Sweden", {"S1", "S3"}),
    ("/Stockholm/Sodermalm;/Sweden", {"S3"}),
])
def test_scope_q_selects_by_scope(api: httpx.Client, scope_q: str,
                                  expected: set[str]) -> None:
    assert ids(api, type="AirQualitySensor", scopeQ=scope_q) == expected


def test_scope_is_shown_on_the_entity(api: httpx.Client) -> None:
    found = {e["id"]: e for e in query(api, type="AirQualitySensor")}
    assert sorted(found["urn:ngsi-ld:AirQualitySensor:S3"]["scope"]) == [
        "/Stockholm/Sodermalm", "/Sweden"]
    assert found["urn:ngsi-ld:AirQualitySensor:S1"]["scope"] == "/Stockholm/Kungsholmen"


@pytest.mark.parametrize("scope_q", ["Stockholm", "/Stockholm/", "/Stockholm//x", ""])
def test_malformed_scope_q_is_400(api: httpx.Client, scope_q: str) -> None:
    response = api.get("/entities", params={"type": "AirQualitySensor", "scopeQ": scope_q})
    if scope_q == "":
        assert response.status_code in (200, 400)
        return
    assert_problem(response, 400, "BadRequestData")


# --- geo-queries ------------------------------------------------------------------------


def near(max_distance: int | None = None, min_distance: int | None = None,
         point: list[float] = CITY_HALL) -> dict[str, str]:
    georel = "near"
    if max_distance is not None:
        georel += f";maxDistance=={max_distance}"
    if min_distance is not None:
        georel += f";minDistance=={min_distance}"
    return {"georel": georel, "geometry": "Point", "coordinates": json.dumps(point)}


@pytest.mark.parametrize(("distances", "expected"), [
    ((500, None), {"CityHall"}),
    ((1500, None), {"CityHall", "Palace"}),
    ((2500, None), {"CityHall", "Palace", "Vasa"}),
    ((None, 1500), {"Vasa", "Globen"}),
    ((None, 3000), {"Globen"}),
])
def test_near_selects_by_distance_in_metres(api: httpx.Client,
                                            distances: tuple[int | None, int | None],
                                            expected: set[str]) -> None:
    assert ids(api, type="Landmark", **near(*distances)) == expected


def test_within_selects_geometries_inside_the_polygon(api: httpx.Client) -> None:
    params = {"georel": "within", "geometry": "Polygon", "coordinates": json.dumps(CENTRE)}
    assert ids(api, type="Landmark", **params) == {"CityHall", "Palace", "Vasa"}


def test_intersects_finds_the_districts_around_a_point(api: httpx.Client) -> None:
    params = {"georel": "intersects", "geometry": "Point", "coordinates": json.dumps(PALACE)}
    assert ids(api, type="District", **params) == {"GamlaStan"}


def test_intersects_finds_what_a_line_crosses(api: httpx.Client) -> None:
    line = [[18.07, 59.30], [18.07, 59.34]]
    params = {"georel": "intersects", "geometry": "LineString", "coordinates": json.dumps(line)}
    assert ids(api, type="District,Route", **params) == {"GamlaStan", "Bridge"}


def test_contains_finds_the_polygons_holding_a_point(api: httpx.Client) -> None:
    params = {"georel": "contains", "geometry": "Point", "coordinates": json.dumps(CITY_HALL)}
    assert ids(api, type="District", **params) == {"Kungsholmen"}


def test_disjoint_finds_what_lies_outside(api: httpx.Client) -> None:
    params = {"georel": "disjoint", "geometry": "Polygon", "coordinates": json.dumps(CENTRE)}
    assert ids(api, type="Landmark", **params) == {"Globen"}


def test_geoproperty_names_the_geometry_to_test(api: httpx.Client) -> None:
    entrance = near(100, point=[18.0550, 59.3280])
    assert ids(api, type="Landmark", **entrance) == {"CityHall"}
    assert ids(api, type="Landmark", geoproperty="entrance", **near(1000)) == {"CityHall"}
    assert ids(api, type="Landmark", geoproperty="entrance", **near(None, 1)) == {"CityHall"}


def test_a_geo_query_can_be_the_only_filter(api: httpx.Client) -> None:
    assert ids(api, **near(300)) == {"CityHall", "S1", "Kungsholmen"}


def test_a_geo_query_combines_with_q(api: httpx.Client) -> None:
    assert ids(api, q='name=="Kungliga slottet"', **near(1500)) == {"Palace"}


@pytest.mark.parametrize("params", [
    {"georel": "near", "geometry": "Point", "coordinates": "[18.05,59.32]"},
    {"georel": "near;maxDistance==-5", "geometry": "Point", "coordinates": "[18.05,59.32]"},
    {"georel": "near;maxDistance==ten", "geometry": "Point", "coordinates": "[18.05,59.32]"},
    {"georel": "beside", "geometry": "Point", "coordinates": "[18.05,59.32]"},
    {"georel": "within", "geometry": "Circle", "coordinates": "[18.05,59.32]"},
    {"georel": "within", "geometry": "Polygon", "coordinates": "[18.05,59.32]"},
    {"georel": "intersects", "geometry": "Point", "coordinates": "[181,59.32]"},
    {"georel": "intersects", "geometry": "Point", "coordinates": "[18.05,91]"},
    {"georel": "intersects", "geometry": "Point", "coordinates": "Stockholm"},
    {"georel": "intersects", "geometry": "Point"},
    {"geometry": "Point", "coordinates": "[18.05,59.32]"},
])
def test_malformed_geo_queries_are_400(api: httpx.Client, params: dict[str, str]) -> None:
    response = api.get("/entities", params={"type": "Landmark", **params})
    assert_problem(response, 400, "BadRequestData")


def test_geo_json_answers_a_feature_collection(api: httpx.Client) -> None:
    response = api.get("/entities", params={"type": "Landmark", **near(1500)},
                       headers={"Accept": "application/geo+json"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/geo+json"
    body = response.json()
    assert body["type"] == "FeatureCollection"
    features = {f["id"]: f for f in body["features"]}
    assert set(features) == {"urn:ngsi-ld:Landmark:CityHall", "urn:ngsi-ld:Landmark:Palace"}
    palace = features["urn:ngsi-ld:Landmark:Palace"]
    assert palace["type"] == "Feature"
    assert palace["geometry"] == {"type": "Point", "coordinates": PALACE}
    assert palace["properties"]["name"] == {"type": "Property", "value": "Kungliga slottet"}


# --- answer shape -----------------------------------------------------------------------


def test_query_answers_in_key_values(api: httpx.Client) -> None:
    s1 = query(api, type="AirQualitySensor", id="urn:ngsi-ld:AirQualitySensor:S1",
               options="keyValues")[0]
    assert s1["temperature"] == 21.5
    assert s1["address"] == {"addressLocality": "Stockholm", "postalCode": "11221"}


def test_json_ld_answers_give_every_entity_its_context(api: httpx.Client) -> None:
    response = api.get("/entities", params={"type": "Bench", "limit": 3},
                       headers={"Accept": "application/ld+json"})
    assert response.headers["content-type"] == "application/ld+json"
    entities = response.json()
    assert len(entities) == 3
    assert all(e["@context"] == CORE_CONTEXT for e in entities)
    assert "context" not in links(response)


def test_json_answers_link_the_context(api: httpx.Client) -> None:
    response = api.get("/entities", params={"type": "Bench", "limit": 3})
    assert response.headers["content-type"] == "application/json"
    assert links(response)["context"] == CORE_CONTEXT
    assert all("@context" not in e for e in response.json())


def test_query_with_join_flat_adds_the_linked_entities(api: httpx.Client) -> None:
    response = api.get("/entities", params={"type": "AirQualitySensor",
                                            "q": "controlledBy", "join": "flat"})
    # The Device the sensor links to does not exist: the answer is the sensor alone.
    assert [e["id"] for e in response.json()] == ["urn:ngsi-ld:AirQualitySensor:S3"]


def test_query_with_sys_attrs_shows_times(api: httpx.Client) -> None:
    bench = query(api, type="Bench", options="sysAttrs", limit=1)[0]
    assert bench["createdAt"].endswith("Z")
    assert bench["seats"]["createdAt"] == bench["createdAt"]


def test_query_with_pick_keeps_only_the_named_members(api: httpx.Client) -> None:
    assert query(api, type="Bench", pick="id", limit=2) == [
        {"id": "urn:ngsi-ld:Bench:0"}, {"id": "urn:ngsi-ld:Bench:1"}]


def test_an_unknown_query_parameter_is_400_invalid_request(api: httpx.Client) -> None:
    response = api.get("/entities", params={"type": "Bench", "sort": "seats"})
    assert_problem(response, 400, "InvalidRequest")


def test_an_unknown_option_is_400(api: httpx.Client) -> None:
    response = api.get("/entities", params={"type": "Bench", "options": "everything"})
    assert_problem(response, 400)


def test_an_empty_answer_is_an_empty_array(api: httpx.Client) -> None:
    response = api.get("/entities", params={"type": "Fountain"})
    assert response.status_code == 200
    assert response.json() == []


# --- pagination -------------------------------------------------------------------------


def bench_ids(response: httpx.Response) -> list[int]:
    assert response.status_code == 200, response.text
    return [int(e["id"].rsplit(":", 1)[1]) for e in response.json()]


def test_limit_and_offset_cut_pages_in_a_stable_order(api: httpx.Client) -> None:
    pages = [bench_ids(api.get("/entities", params={"type": "Bench", "limit": 3,
                                                    "offset": offset}))
             for offset in (0, 3, 6)]
    assert pages == [[0, 1, 2], [3, 4, 5], [6]]


def test_first_page_links_to_the_next_only(api: httpx.Client) -> None:
    response = api.get("/entities", params={"type": "Bench", "limit": 3})
    found = links(response)
    assert "prev" not in found
    assert "offset=3" in found["next"] and "limit=3" in found["next"]
    assert "type=Bench" in found["next"]


def test_middle_page_links_both_ways_and_last_page_back_only(api: httpx.Client) -> None:
    middle = links(api.get("/entities", params={"type": "Bench", "limit": 3, "offset": 3}))
    assert "offset=0" in middle["prev"] and "offset=6" in middle["next"]
    last = links(api.get("/entities", params={"type": "Bench", "limit": 3, "offset": 6}))
    assert "offset=3" in last["prev"]
    assert "next" not in last


def test_following_next_links_visits_every_entity_once(api: httpx.Client) -> None:
    seen: list[int] = []
    response = api.get("/entities", params={"type": "Bench", "limit": 2, "q": "seats>=1"})
    while True:
        seen += bench_ids(response)
        target = links(response).get("next")
        if target is None:
            break
        response = api.get(str(api.base_url.join(target)))
    assert seen == [1, 2, 3, 4, 5, 6]


def test_a_page_that_reaches_the_last_entity_has_no_next_link(api: httpx.Client) -> None:
    response = api.get("/entities", params={"type": "Bench", "limit": 7})
    assert bench_ids(response) == list(range(7))
    assert "next" not in links(response)
    response = api.get("/entities", params={"type": "Bench", "limit": 3, "offset": 4})
    assert bench_ids(response) == [4, 5, 6]
    assert "next" not in links(response)


def test_count_gives_the_total_in_a_header(api: httpx.Client) -> None:
    response = api.get("/entities", params={"type": "Bench", "limit": 2, "count": "true"})
    assert response.headers["NGSILD-Results-Count"] == "7"
    assert len(response.json()) == 2
    response = api.get("/entities", params={"type": "Bench", "q": "seats<3", "count": "true"})
    assert response.headers["NGSILD-Results-Count"] == "3"
    assert "NGSILD-Results-Count" not in api.get(
        "/entities", params={"type": "Bench"}).headers


def test_limit_zero_with_count_only_counts(api: httpx.Client) -> None:
    response = api.get("/entities", params={"type": "Bench", "limit": 0, "count": "true"})
    assert response.status_code == 200
    assert response.json() == []
    assert response.headers["NGSILD-Results-Count"] == "7"


def test_the_default_limit_is_20(api: httpx.Client, settings: Settings) -> None:
    response = api.get("/entities", params={"type": "Bollard"})
    assert len(response.json()) == settings.default_limit == 20
    assert "offset=20" in links(response)["next"]


def test_limit_above_the_maximum_is_403_too_many_results(api: httpx.Client,
                                                         settings: Settings) -> None:
    response = api.get("/entities", params={"type": "Bench",
                                            "limit": settings.max_limit + 1})
    assert_problem(response, 403, "TooManyResults")
    response = api.get("/entities", params={"type": "Bench", "limit": settings.max_limit})
    assert response.status_code == 200


@pytest.mark.parametrize("params", [{"limit": "-1"}, {"offset": "-1"}, {"limit": "ten"},
                                    {"offset": "1.5"}, {"limit": "0"}, {"count": "yes"}])
def test_bad_pagination_parameters_are_400(api: httpx.Client, params: dict[str, str]) -> None:
    assert_problem(api.get("/entities", params={"type": "Bench", **params}), 400)


def test_an_offset_past_the_end_answers_an_empty_page(api: httpx.Client) -> None:
    response = api.get("/entities", params={"type": "Bench", "offset": 50})
    assert response.status_code == 200
    assert response.json() == []


# --- tenants ----------------------------------------------------------------------------


def test_queries_see_only_their_tenant(api: httpx.Client) -> None:
    headers = {"NGSILD-Tenant": "query-tenant"}
    response = api.post("/entities", json={"id": "urn:ngsi-ld:Bench:99", "type": "Bench"},
                        headers=headers)
    assert response.status_code == 201
    response = api.get("/entities", params={"type": "Bench"}, headers=headers)
    assert [e["id"] for e in response.json()] == ["urn:ngsi-ld:Bench:99"]
    assert response.headers["NGSILD-Tenant"] == "query-tenant"
    assert "99" not in ids(api, type="Bench")


# --- POST /entityOperations/query -------------------------------------------------------


def post_query(api: httpx.Client, body: dict[str, Any], **kwargs: Any) -> httpx.Response:
    return api.post("/entityOperations/query", json={"type": "Query", **body}, **kwargs)


def names(response: httpx.Response) -> set[str]:
    assert response.status_code == 200, response.text
    return {e["id"].rsplit(":", 1)[1] for e in response.json()}


def test_post_query_with_type_and_q_answers_like_the_get(api: httpx.Client) -> None:
    response = post_query(api, {"entities": [{"type": "AirQualitySensor"}],
                                "q": "temperature>20"})
    assert names(response) == sensors(api, "temperature>20") == {"S1", "S3"}


def test_post_query_entity_selectors_give_ids_patterns_and_types(api: httpx.Client) -> None:
    response = post_query(api, {"entities": [
        {"type": "Landmark", "id": "urn:ngsi-ld:Landmark:Vasa"}]})
    assert names(response) == {"Vasa"}
    response = post_query(api, {"entities": [
        {"type": "AirQualitySensor", "idPattern": "S[12]$"}]})
    assert names(response) == {"S1", "S2"}
    response = post_query(api, {"entities": [{"type": "District"}, {"type": "Route"}]})
    assert names(response) == {"GamlaStan", "Kungsholmen", "Bridge"}


def test_post_query_attrs_and_geo_q(api: httpx.Client) -> None:
    response = post_query(api, {
        "entities": [{"type": "Landmark"}], "attrs": ["name"],
        "geoQ": {"georel": "within", "geometry": "Polygon", "coordinates": CENTRE}})
    assert names(response) == {"CityHall", "Palace", "Vasa"}
    assert all(set(e) == {"id", "type", "name"} for e in response.json())


def test_post_query_geo_q_near_with_an_array_of_coordinates(api: httpx.Client) -> None:
    response = post_query(api, {"entities": [{"type": "Landmark"}], "geoQ": {
        "georel": "near;maxDistance==1500", "geometry": "Point", "coordinates": CITY_HALL}})
    assert names(response) == {"CityHall", "Palace"}


def test_post_query_scope_q(api: httpx.Client) -> None:
    response = post_query(api, {"entities": [{"type": "AirQualitySensor"}],
                                "scopeQ": "/Stockholm/Sodermalm"})
    assert names(response) == {"S2", "S3"}


def test_post_query_pages_with_url_parameters(api: httpx.Client) -> None:
    response = post_query(api, {"entities": [{"type": "Bench"}]},
                          params={"limit": 3, "offset": 3, "count": "true"})
    assert bench_ids(response) == [3, 4, 5]
    assert response.headers["NGSILD-Results-Count"] == "7"


def test_post_query_answers_in_key_values(api: httpx.Client) -> None:
    response = post_query(api, {"entities": [{"type": "Bench"}], "q": "seats==2"},
                          params={"options": "keyValues"})
    assert response.json() == [{"id": "urn:ngsi-ld:Bench:2", "type": "Bench", "seats": 2}]


def test_post_query_in_json_ld_reads_the_body_context(api: httpx.Client) -> None:
    body = {"type": "Query", "entities": [{"type": "Seat"}], "q": "places==2",
            "@context": [{"Seat": DEFAULT + "Bench", "places": DEFAULT + "seats"}]}
    response = api.post("/entityOperations/query", content=json.dumps(body),
                        headers={"Content-Type": "application/ld+json",
                                 "Accept": "application/ld+json"})
    assert response.status_code == 200, response.text
    [bench] = response.json()
    assert bench["id"] == "urn:ngsi-ld:Bench:2"
    assert bench["type"] == "Seat"
    assert bench["places"]["value"] == 2


@pytest.mark.parametrize("body", [
    {"type": "Subscription", "entities": [{"type": "Bench"}]},
    {"entities": [{"type": "Bench"}]},
    {"type": "Query", "entities": []},
    {"type": "Query", "entities": [{"id": "urn:ngsi-ld:Bench:1"}]},
    {"type": "Query", "entities": [{"type": "Bench"}], "attrs": "seats"},
    {"type": "Query", "entities": [{"type": "Bench"}], "q": 3},
    {"type": "Query", "entities": [{"type": "Bench"}], "geoQ": "near"},
    {"type": "Query", "entities": [{"type": "Bench"}],
     "temporalQ": {"timerel": "before", "timeAt": "2024-01-01T00:00:00Z"}},
])
def test_post_query_with_a_malformed_query_is_400(api: httpx.Client,
                                                  body: dict[str, Any]) -> None:
    response = api.post("/entityOperations/query", json=body)
    assert_problem(response, 400)


def test_post_query_without_any_filter_is_400_like_the_get(api: httpx.Client) -> None:
    response = api.post("/entityOperations/query", json={"type": "Query"})
    assert_problem(response, 400, "BadRequestData")


def test_post_query_in_an_unknown_tenant_is_404(api: httpx.Client) -> None:
    response = post_query(api, {"entities": [{"type": "Bench"}]},
                          headers={"NGSILD-Tenant": "nobody-here"})
    assert_problem(response, 404, "NonexistentTenant")


def test_lang_applies_to_every_entity_of_a_query(api: httpx.Client) -> None:
    name = {"type": "LanguageProperty", "languageMap": {"sv": "Spårvagn", "en": "Tram"}}
    entity = {"id": "urn:ngsi-ld:Tram:9", "type": "Tram", "name": name}
    assert api.post("/entities", json=entity).status_code == 201
    [tram] = query(api, type="Tram", q="name", lang="en")
    assert tram["name"] == {"type": "Property", "value": "Tram", "lang": "en"}


def test_post_query_refuses_unknown_url_parameters(api: httpx.Client) -> None:
    response = post_query(api, {"entities": [{"type": "Bench"}]}, params={"type": "Bench"})
    assert_problem(response, 400, "InvalidRequest")


def test_post_query_limit_above_the_maximum_is_403(api: httpx.Client,
                                                   settings: Settings) -> None:
    response = post_query(api, {"entities": [{"type": "Bench"}]},
                          params={"limit": settings.max_limit + 1})
    assert_problem(response, 403, "TooManyResults")


# --- queries follow writes --------------------------------------------------------------


def test_a_moved_entity_is_found_by_geo_queries_at_its_new_place_only(
        api: httpx.Client) -> None:
    tram = {"id": "urn:ngsi-ld:Tram:7", "type": "Tram", "line": 7,
            "location": geo("Point", GLOBEN)}
    assert api.post("/entities", json=tram).status_code == 201
    assert ids(api, type="Tram", **near(500, point=GLOBEN)) == {"7"}
    response = api.patch("/entities/urn:ngsi-ld:Tram:7/attrs",
                         json={"location": geo("Point", CITY_HALL)})
    assert response.status_code == 204, response.text
    assert ids(api, type="Tram", **near(500)) == {"7"}
    assert ids(api, type="Tram", **near(500, point=GLOBEN)) == set()


def test_a_changed_value_is_found_by_q_at_its_new_value_only(api: httpx.Client) -> None:
    tram = {"id": "urn:ngsi-ld:Tram:8", "type": "Tram", "line": 8, "status": "running"}
    assert api.post("/entities", json=tram).status_code == 201
    assert ids(api, type="Tram", q="line==8") == {"8"}
    response = api.patch("/entities/urn:ngsi-ld:Tram:8/attrs", json={"line": 12})
    assert response.status_code == 204, response.text
    assert ids(api, type="Tram", q="line==8") == set()
    assert ids(api, type="Tram", q="line==12") == {"8"}
    assert ids(api, type="Tram", q='status=="running";line>10') == {"8"}


def test_q_compares_integers_beyond_float_precision_exactly(api: httpx.Client) -> None:
    for n, count in ((1, 2**53 + 1), (2, 2**53)):
        entity = {"id": f"urn:ngsi-ld:Counter:{n}", "type": "Counter", "count": count}
        assert api.post("/entities", json=entity).status_code == 201
    assert ids(api, type="Counter", q=f"count=={2**53 + 1}") == {"1"}
    assert ids(api, type="Counter", q=f"count=={2**53}") == {"2"}
    assert ids(api, type="Counter", q=f"count>{2**53}") == {"1"}


# --- orderBy ----------------------------------------------------------------------------


def names_in_order(api: httpx.Client, **params: Any) -> list[str]:
    return [e["id"].rsplit(":", 1)[1] for e in query(api, **params)]


def test_order_by_an_attribute_descending(api: httpx.Client) -> None:
    assert names_in_order(api, type="AirQualitySensor", orderBy="no2;desc") == [
        "S2", "S3", "S1", "S4"]


def test_order_by_distance_from_a_reference_point(api: httpx.Client) -> None:
    order = names_in_order(api, type="Landmark", orderBy="location;dist-asc",
                           orderFrom=json.dumps(CITY_HALL))
    assert order[0] == "CityHall"
    assert order[-1] == "Globen"


def test_order_by_distance_without_reference_is_400(api: httpx.Client) -> None:
    response = api.get("/entities", params={"type": "Landmark",
                                            "orderBy": "location;dist-asc"})
    assert_problem(response, 400, "BadRequestData")


def test_post_query_orders_with_ordering_info(api: httpx.Client) -> None:
    response = api.post("/entityOperations/query", json={
        "type": "Query", "entities": [{"type": "Landmark"}],
        "ordering": {"orderBy": ["location;dist-desc"], "coordinates": CITY_HALL}})
    assert response.status_code == 200, response.text
    assert response.json()[-1]["id"].endswith("CityHall")


@pytest.mark.parametrize("ordering", [{"orderBy": ["location;dist-asc"]},
                                      {"orderBy": ["name"], "coordinates": "18,59"},
                                      {"orderBy": ["name"], "geometry": 5},
                                      {"orderBy": ["name"], "collation": "not a tag!!"}])
def test_post_query_with_bad_ordering_info_is_400(api: httpx.Client,
                                                  ordering: dict[str, Any]) -> None:
    response = api.post("/entityOperations/query", json={
        "type": "Query", "entities": [{"type": "Landmark"}], "ordering": ordering})
    assert_problem(response, 400, "BadRequestData")


# --- linked entity queries ----------------------------------------------------------------


def test_q_follows_a_relationship_to_the_linked_entity(api: httpx.Client) -> None:
    headers = {"NGSILD-Tenant": "linkedq"}
    for body in ({"id": "urn:ngsi-ld:Device:lamp", "type": "Device", "name": "lamp"},
                 {"id": "urn:ngsi-ld:Pole:1", "type": "Pole", "carries": {
                     "type": "Relationship", "object": "urn:ngsi-ld:Device:lamp"}},
                 {"id": "urn:ngsi-ld:Pole:2", "type": "Pole"}):
        assert api.post("/entities", json=body, headers=headers).status_code == 201

    def poles(q: str, **extra: str) -> list[str]:
        response = api.get("/entities", params={"type": "Pole", "q": q, **extra},
                           headers=headers)
        assert response.status_code == 200, response.text
        return [e["id"] for e in response.json()]

    assert poles('carries{name}=="lamp"', join="inline") == ["urn:ngsi-ld:Pole:1"]
    # A flat join lists the linked entity after the match.
    assert poles('carries{Device:name}=="lamp"', join="flat") == [
        "urn:ngsi-ld:Pole:1", "urn:ngsi-ld:Device:lamp"]
    assert poles('carries{Vehicle:name}=="lamp"', join="inline") == []
    response = api.get("/entities", params={"type": "Pole", "q": 'carries{name}=="lamp"'},
                       headers=headers)
    assert_problem(response, 400, "BadRequestData")


def test_post_query_with_an_inline_context_links_it_in_a_json_answer(api: httpx.Client) -> None:
    context = {"Landmark": "https://uri.etsi.org/ngsi-ld/default-context/Landmark",
               "label": "https://uri.etsi.org/ngsi-ld/default-context/name"}
    response = api.post("/entityOperations/query",
                        json={"type": "Query", "entities": [{"type": "Landmark"}],
                              "@context": context},
                        headers={"Content-Type": "application/ld+json",
                                 "Accept": "application/json"})
    assert response.status_code == 200, response.text
    assert "label" in response.json()[0]
    url = re.search(r"<([^>]+)>", response.headers["Link"]).group(1)  # type: ignore[union-attr]
    served = api.get(url.split("/ngsi-ld/v1", 1)[1])
    assert served.status_code == 200
    assert served.json()["@context"] == context
