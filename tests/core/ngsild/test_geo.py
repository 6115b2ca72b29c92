"""Specification of the NGSI-LD geo-query module (ETSI GS CIM 009 V1.9.1, clause 4.10)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod

from smartcity.core.ngsild.errors import BadRequestData
from smartcity.core.ngsild.geo import (
    GeoQuery,
    geometry_bbox,
    parse_geo_query,
    validate_geometry,
)

GEOD = Geod(ellps="WGS84")

# A 1° × 1° square south-west of (1, 1), and shapes placed around it.
SQUARE = [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]
INSIDE = [0.5, 0.5]
OUTSIDE = [2.5, 2.5]


def point(coordinates: list[float]) -> dict[str, Any]:
    return {"type": "Point", "coordinates": coordinates}


def polygon(coordinates: list[Any]) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": coordinates}


def box(minx: float, miny: float, maxx: float, maxy: float) -> list[list[list[float]]]:
    return [[[minx, miny], [maxx, miny], [maxx, maxy], [minx, maxy], [minx, miny]]]


def query(georel: str, geometry: str = "Polygon", coordinates: Any = None) -> GeoQuery:
    parsed = parse_geo_query(georel, geometry, SQUARE if coordinates is None else coordinates)
    assert parsed is not None
    return parsed


def offset(origin: list[float], metres: float, azimuth: float) -> list[float]:
    """The position ``metres`` away from ``origin`` along ``azimuth`` (degrees)."""
    lon, lat, _ = GEOD.fwd(origin[0], origin[1], azimuth, metres)
    return [lon, lat]


def in_box(position: list[float], bbox: tuple[float, float, float, float]) -> bool:
    minx, miny, maxx, maxy = bbox
    return minx <= position[0] <= maxx and miny <= position[1] <= maxy


# --- parsing -------------------------------------------------------------------------


def test_parse_returns_none_without_geo_parameters() -> None:
    assert parse_geo_query(None, None, None) is None


def test_parse_ignores_geoproperty_alone() -> None:
    assert parse_geo_query(None, None, None, "location") is None


@pytest.mark.parametrize(("georel", "geometry", "coordinates"), [
    ("near;maxDistance==10", "Point", None),
    ("near;maxDistance==10", None, "[8,40]"),
    (None, "Point", "[8,40]"),
    ("within", None, None),
    (None, None, "[8,40]"),
])
def test_parse_missing_parameter_raises(georel: str | None, geometry: str | None,
                                        coordinates: str | None) -> None:
    with pytest.raises(BadRequestData, match="missing"):
        parse_geo_query(georel, geometry, coordinates)


def test_parse_near_max_distance() -> None:
    parsed = parse_geo_query("near;maxDistance==2000", "Point", "[8.0,40.0]")
    assert parsed is not None
    assert parsed.georel == "near"
    assert parsed.max_distance == 2000.0
    assert parsed.min_distance is None
    assert parsed.geometry.equals(shapely.Point(8.0, 40.0))
    assert parsed.geoproperty == "location"


def test_parse_near_min_distance() -> None:
    parsed = query("near;minDistance==100", "Point", "[8,40]")
    assert (parsed.min_distance, parsed.max_distance) == (100.0, None)


def test_parse_near_refuses_both_distances_in_either_order() -> None:
    for georel in ("near;maxDistance==2000;minDistance==100",
                   "near;minDistance==100;maxDistance==2000"):
        with pytest.raises(BadRequestData):
            query(georel, "Point", "[8,40]")


def test_parse_accepts_decimal_and_exponent_distances() -> None:
    assert query("near;maxDistance==12.5", "Point", "[8,40]").max_distance == 12.5
    assert query("near;maxDistance==1e3", "Point", "[8,40]").max_distance == 1000.0


def test_parse_accepts_already_parsed_coordinates() -> None:
    parsed = query("within", "Polygon", SQUARE)
    assert parsed.geometry.equals(shapely.box(0, 0, 1, 1))


@pytest.mark.parametrize("georel",
                         ["within", "contains", "intersects", "equals", "disjoint", "overlaps"])
def test_parse_every_georel_without_modifiers(georel: str) -> None:
    parsed = query(georel)
    assert parsed.georel == georel
    assert parsed.max_distance is None and parsed.min_distance is None


def test_parse_keeps_geoproperty_as_given() -> None:
    parsed = parse_geo_query("within", "Polygon", SQUARE, "observationSpace")
    assert parsed is not None and parsed.geoproperty == "observationSpace"


@pytest.mark.parametrize(("georel", "geometry", "coordinates"), [
    pytest.param("within", "Polygon", "[[[0,0],[1,0]", id="bad JSON"),
    pytest.param("within", "Polygon", "", id="empty coordinates text"),
    pytest.param("within", "Polygon", "{\"a\": 1}", id="JSON object"),
    pytest.param("within", "Polygon", 5, id="coordinates not an array"),
    pytest.param("within", "Polygon", "[" * 100_000, id="nesting deeper than the parser"),
    pytest.param("nearby;maxDistance==5", "Point", "[8,40]", id="unknown georel"),
    pytest.param("", "Point", "[8,40]", id="empty georel"),
    pytest.param("NEAR;maxDistance==5", "Point", "[8,40]", id="georel is case-sensitive"),
    pytest.param(7, "Point", "[8,40]", id="georel not a string"),
    pytest.param("within", "Circle", "[8,40]", id="unknown geometry"),
    pytest.param("within", "point", "[8,40]", id="geometry is case-sensitive"),
    pytest.param("within", "GeometryCollection", "[]", id="GeometryCollection query"),
    pytest.param("within", "Polygon", "[[[0,0],[1,0],[1,1],[0,1]]]", id="non-closed polygon"),
    pytest.param("within", "Polygon", "[[[0,0],[1,0],[0,0]]]", id="ring of three positions"),
    pytest.param("within", "Polygon", "[]", id="polygon without rings"),
    pytest.param("near;maxDistance==5", "Point", "[8,95]", id="latitude above 90"),
    pytest.param("near;maxDistance==5", "Point", "[8,-90.5]", id="latitude below -90"),
    pytest.param("near;maxDistance==5", "Point", "[181,40]", id="longitude above 180"),
    pytest.param("near;maxDistance==5", "Point", "[NaN,40]", id="NaN coordinate"),
    pytest.param("near;maxDistance==5", "Point", "[1e999,40]", id="infinite coordinate"),
    pytest.param("near;maxDistance==5", "Point", "[8,40,1e999]", id="infinite altitude"),
    pytest.param("near;maxDistance==5", "Point", "[8,40,10" + "0" * 400 + "]",
                 id="integer altitude beyond float"),
    pytest.param("near;maxDistance==5", "Point", "[true,40]", id="boolean coordinate"),
    pytest.param("near;maxDistance==5", "Point", "[\"8\",40]", id="string coordinate"),
    pytest.param("near;maxDistance==5", "Point", "[8]", id="one-number position"),
    pytest.param("near;maxDistance==5", "Point", "[8,40,0,0]", id="four-number position"),
    pytest.param("near;maxDistance==5", "Point", "[[8,40]]", id="Point nested too deep"),
    pytest.param("within", "Polygon", "[[0,0],[1,0],[1,1],[0,0]]", id="Polygon nested too little"),
    pytest.param("within", "LineString", "[[0,0]]", id="LineString of one position"),
    pytest.param("within", "MultiPoint", "[]", id="empty MultiPoint"),
    pytest.param("within", "MultiPolygon", "[[[0,0],[1,0],[1,1],[0,0]]]",
                 id="MultiPolygon nested too little"),
    pytest.param("within", "MultiLineString", "[[[0,0]]]", id="MultiLineString part too short"),
    pytest.param("within", "LineString", "[[0,0],[1,1,1]]", id="mixed dimensions"),
    pytest.param("near;maxDistance==-5", "Point", "[8,40]", id="negative distance"),
    pytest.param("near;minDistance==-0.5", "Point", "[8,40]", id="negative min distance"),
    pytest.param("near;maxDistance==abc", "Point", "[8,40]", id="non-numeric distance"),
    pytest.param("near;maxDistance==", "Point", "[8,40]", id="empty distance"),
    pytest.param("near;maxDistance==nan", "Point", "[8,40]", id="NaN distance"),
    pytest.param("near;maxDistance==1e999", "Point", "[8,40]", id="infinite distance"),
    pytest.param("near;maxDistance==\u0663", "Point", "[8,40]", id="non-ASCII digit"),
    pytest.param("near;maxDistance=2000", "Point", "[8,40]", id="single equals sign"),
    pytest.param("near", "Point", "[8,40]", id="near without distance"),
    pytest.param("near;radius==5", "Point", "[8,40]", id="unknown near modifier"),
    pytest.param("near;maxDistance==5;maxDistance==6", "Point", "[8,40]",
                 id="distance given twice"),
    pytest.param("near;maxDistance==5;minDistance==6", "Point", "[8,40]",
                 id="min above max"),
    pytest.param("within;maxDistance==5", "Polygon", SQUARE, id="modifier on within"),
    pytest.param("within;", "Polygon", SQUARE, id="empty modifier"),
])
def test_parse_invalid_input_raises_bad_request_data(georel: Any, geometry: Any,
                                                     coordinates: Any) -> None:
    with pytest.raises(BadRequestData):
        parse_geo_query(georel, geometry, coordinates)


@pytest.mark.parametrize("geoproperty", ["", "loc ation", "location;x", "a=b"])
def test_parse_invalid_geoproperty_raises(geoproperty: str) -> None:
    with pytest.raises(BadRequestData, match="geoproperty"):
        parse_geo_query("within", "Polygon", SQUARE, geoproperty)


def test_parse_error_detail_locates_the_problem() -> None:
    with pytest.raises(BadRequestData) as raised:
        parse_geo_query("within", "Polygon", "[[[0,0],[1,0],[1,95],[0,0]]]")
    assert "coordinates[0][2]" in raised.value.detail
    assert "latitude" in raised.value.detail


def test_query_geometry_is_prepared_once() -> None:
    assert shapely.is_prepared(query("within").geometry)


def test_direct_construction_rejects_unknown_georel() -> None:
    with pytest.raises(BadRequestData):
        GeoQuery("beside", shapely.Point(0, 0))


# --- near ----------------------------------------------------------------------------

ORIGIN = [18.0686, 59.3293]  # Stockholm, where a degree of longitude is about 57 km


@pytest.mark.parametrize("azimuth", [0, 45, 90, 135, 180, -135, -90, -45])
def test_near_max_distance_keeps_points_within_500_m(azimuth: float) -> None:
    near = query("near;maxDistance==500", "Point", ORIGIN)
    assert near.matches(point(offset(ORIGIN, 499, azimuth)))
    assert near.matches(point(ORIGIN))
    assert not near.matches(point(offset(ORIGIN, 501, azimuth)))


@pytest.mark.parametrize("azimuth", [0, 90, 180, -90])
def test_near_min_distance_keeps_points_beyond_100_m(azimuth: float) -> None:
    near = query("near;minDistance==100", "Point", ORIGIN)
    assert near.matches(point(offset(ORIGIN, 101, azimuth)))
    assert near.matches(point(offset(ORIGIN, 1_000_000, azimuth)))
    assert not near.matches(point(offset(ORIGIN, 99, azimuth)))


def test_near_takes_only_one_distance_modifier() -> None:
    with pytest.raises(BadRequestData):
        query("near;minDistance==100;maxDistance==500", "Point", ORIGIN)


def test_near_max_distance_zero_is_rejected() -> None:
    with pytest.raises(BadRequestData):
        query("near;maxDistance==0", "Point", ORIGIN)


def test_near_measures_geodesic_metres_not_degrees() -> None:
    # 0.01° of longitude is 1113 m at the equator but only 569 m in Stockholm.
    near = query("near;maxDistance==600", "Point", ORIGIN)
    assert near.matches(point([ORIGIN[0] + 0.01, ORIGIN[1]]))
    assert not query("near;maxDistance==600", "Point", [0, 0]).matches(point([0.01, 0]))


def test_near_across_the_antimeridian() -> None:
    near = query("near;maxDistance==2000", "Point", [179.995, 10])
    assert near.matches(point([-179.995, 10]))


def test_near_stored_polygon_uses_its_nearest_edge() -> None:
    # The square's east edge is 1113 m west of (1.01, 0.5).
    near = query("near;maxDistance==1200", "Point", [1.01, 0.5])
    assert near.matches(polygon(SQUARE))
    assert not query("near;maxDistance==1000", "Point", [1.01, 0.5]).matches(polygon(SQUARE))


def test_near_point_inside_stored_polygon_is_at_distance_zero() -> None:
    assert query("near;maxDistance==0.001", "Point", INSIDE).matches(polygon(SQUARE))
    assert not query("near;minDistance==1", "Point", INSIDE).matches(polygon(SQUARE))


def test_near_polygon_query_keeps_points_close_to_its_edge() -> None:
    near = query("near;maxDistance==500")
    assert near.matches(point(offset([1, 0.5], 400, 90)))
    assert near.matches(point(INSIDE))
    assert not near.matches(point(offset([1, 0.5], 600, 90)))


def test_near_line_query_against_stored_line() -> None:
    near = query("near;maxDistance==1200", "LineString", [[0, 0], [0, 1]])
    assert near.matches({"type": "LineString", "coordinates": [[0.01, 0], [0.01, 1]]})
    assert not near.matches({"type": "LineString", "coordinates": [[0.02, 0], [0.02, 1]]})


def test_near_stored_multipoint_uses_its_closest_member() -> None:
    near = query("near;maxDistance==500", "Point", ORIGIN)
    far = offset(ORIGIN, 5000, 0)
    assert near.matches({"type": "MultiPoint", "coordinates": [far, offset(ORIGIN, 300, 90)]})
    assert not near.matches({"type": "MultiPoint", "coordinates": [far]})


# --- the other georels ---------------------------------------------------------------


def test_within_polygon_keeps_point_inside() -> None:
    assert query("within").matches(point(INSIDE))


def test_within_polygon_excludes_point_outside() -> None:
    assert not query("within").matches(point(OUTSIDE))


def test_within_polygon_excludes_point_on_its_boundary() -> None:
    # DE-9IM: a point on the boundary touches the polygon but is not within it.
    assert not query("within").matches(point([1, 0.5]))


def test_within_polygon_keeps_contained_line_and_polygon() -> None:
    within = query("within")
    assert within.matches({"type": "LineString", "coordinates": [[0.1, 0.1], [0.9, 0.9]]})
    assert within.matches(polygon(box(0.2, 0.2, 0.8, 0.8)))
    assert not within.matches(polygon(box(0.5, 0.5, 1.5, 1.5)))


def test_within_polygon_requires_every_member_of_a_multipoint() -> None:
    within = query("within")
    assert within.matches({"type": "MultiPoint", "coordinates": [INSIDE, [0.2, 0.7]]})
    assert not within.matches({"type": "MultiPoint", "coordinates": [INSIDE, OUTSIDE]})


def test_within_polygon_with_hole_excludes_point_in_the_hole() -> None:
    holed = [*box(0, 0, 4, 4), box(1, 1, 3, 3)[0]]
    within = query("within", "Polygon", holed)
    assert within.matches(point([0.5, 0.5]))
    assert not within.matches(point([2, 2]))


def test_within_multipolygon_keeps_points_in_any_part() -> None:
    within = query("within", "MultiPolygon", [SQUARE, box(5, 5, 6, 6)])
    assert within.matches(point([5.5, 5.5]))
    assert within.matches(point(INSIDE))
    assert not within.matches(point(OUTSIDE))


def test_contains_keeps_stored_polygon_around_query_point() -> None:
    contains = query("contains", "Point", INSIDE)
    assert contains.matches(polygon(SQUARE))
    assert not contains.matches(polygon(box(2, 2, 3, 3)))
    assert not contains.matches(point(OUTSIDE))


def test_contains_excludes_stored_point_for_a_polygon_query() -> None:
    assert not query("contains").matches(point(INSIDE))
    assert query("contains").matches(polygon(box(-1, -1, 2, 2)))


def test_intersects_keeps_crossing_line_and_touching_polygon() -> None:
    intersects = query("intersects")
    assert intersects.matches({"type": "LineString", "coordinates": [[-1, 0.5], [2, 0.5]]})
    assert intersects.matches(polygon(box(1, 1, 2, 2)))  # shares one corner
    assert intersects.matches(point([1, 0.5]))  # on the boundary
    assert not intersects.matches(point(OUTSIDE))


def test_intersects_stored_multilinestring_and_multipolygon() -> None:
    intersects = query("intersects")
    assert intersects.matches({"type": "MultiLineString",
                               "coordinates": [[[5, 5], [6, 6]], [[0.5, -1], [0.5, 2]]]})
    assert not intersects.matches({"type": "MultiPolygon",
                                   "coordinates": [box(5, 5, 6, 6), box(7, 7, 8, 8)]})


def test_equals_keeps_the_same_shape_written_differently() -> None:
    equals = query("equals")
    assert equals.matches(polygon([[[1, 1], [0, 1], [0, 0], [1, 0], [1, 1]]]))
    assert not equals.matches(polygon(box(0, 0, 1, 2)))


def test_equals_point() -> None:
    equals = query("equals", "Point", INSIDE)
    assert equals.matches(point(INSIDE))
    assert equals.matches(point([*INSIDE, 30.0]))  # altitude plays no part
    assert not equals.matches(point(OUTSIDE))


def test_disjoint_keeps_only_geometries_apart() -> None:
    disjoint = query("disjoint")
    assert disjoint.matches(point(OUTSIDE))
    assert not disjoint.matches(point(INSIDE))
    assert not disjoint.matches(point([1, 1]))  # touching is not disjoint


def test_overlaps_keeps_partly_shared_polygon() -> None:
    overlaps = query("overlaps")
    assert overlaps.matches(polygon(box(0.5, 0.5, 1.5, 1.5)))
    assert not overlaps.matches(polygon(box(0.2, 0.2, 0.8, 0.8)))  # inside, not overlapping
    assert not overlaps.matches(polygon(box(2, 2, 3, 3)))
    assert not overlaps.matches(point(INSIDE))  # different dimensions never overlap


QUERY_GEOMETRIES = {
    "Point": [0.5, 0.5],
    "MultiPoint": [[0.5, 0.5], [7, 7]],
    "LineString": [[0.5, -1], [0.5, 2]],
    "MultiLineString": [[[7, 7], [8, 8]], [[0.5, -1], [0.5, 2]]],
    "Polygon": box(0.4, 0.4, 0.6, 0.6),
    "MultiPolygon": [box(7, 7, 8, 8), box(0.4, 0.4, 0.6, 0.6)],
}


@pytest.mark.parametrize(("geometry", "coordinates"), QUERY_GEOMETRIES.items())
def test_every_query_geometry_type_intersects_and_is_disjoint(geometry: str,
                                                              coordinates: Any) -> None:
    stored_near, stored_far = polygon(SQUARE), polygon(box(20, 20, 21, 21))
    intersects = query("intersects", geometry, json.dumps(coordinates))
    disjoint = query("disjoint", geometry, coordinates)
    assert intersects.matches(stored_near) and not intersects.matches(stored_far)
    assert disjoint.matches(stored_far) and not disjoint.matches(stored_near)
    assert intersects.geometry.geom_type == geometry


def test_stored_geometry_collection_is_queried_as_a_whole() -> None:
    collection = {"type": "GeometryCollection",
                  "geometries": [point(OUTSIDE), polygon(box(0.2, 0.2, 0.3, 0.3))]}
    assert query("intersects").matches(collection)
    assert not query("within").matches(collection)


@pytest.mark.parametrize("stored", [
    None, "Point", 5, {}, {"type": "Point"}, {"type": "Blob", "coordinates": [0, 0]},
    point([]), point(["a", "b"]), point([0.5]), point([float("nan"), 0.5]),
    point([10**400, 0.5]), point([500, 0.5]), point([0.5, 100]),
    {"type": "LineString", "coordinates": [[0, 0], [1, 1, 1]]},
    {"type": "LineString", "coordinates": [[float("nan"), 0], [0.5, 0.5]]},
    {"type": "GeometryCollection", "geometries": []},
    {"type": "Polygon", "coordinates": 7},
])
@pytest.mark.parametrize("georel", ["near;maxDistance==1e9", "near;minDistance==0", "within",
                                    "contains", "intersects", "equals", "disjoint",
                                    "overlaps"])
def test_unusable_stored_geometry_never_matches(georel: str, stored: Any) -> None:
    for geometry in ("Point", "Polygon"):
        coordinates = INSIDE if geometry == "Point" else box(-10, -10, 10, 10)
        assert query(georel, geometry, coordinates).matches(stored) is False


# --- bbox ----------------------------------------------------------------------------


@pytest.mark.parametrize("georel", ["within", "contains", "intersects", "equals", "overlaps"])
def test_bbox_of_spatial_relations_is_the_query_bounds(georel: str) -> None:
    assert query(georel).bbox() == (0.0, 0.0, 1.0, 1.0)


def test_bbox_is_none_for_disjoint() -> None:
    assert query("disjoint").bbox() is None


def test_bbox_is_none_for_near_with_only_min_distance() -> None:
    assert query("near;minDistance==100", "Point", ORIGIN).bbox() is None


def test_bbox_of_near_covers_the_distance_in_every_direction() -> None:
    bbox = query("near;maxDistance==2000", "Point", ORIGIN).bbox()
    assert bbox is not None
    for azimuth in range(0, 360, 15):
        assert in_box(offset(ORIGIN, 2000, azimuth), bbox)
    # ... while staying a tight prefilter: about 2 km plus under 1 % of slack.
    assert bbox[3] - ORIGIN[1] < 0.0182
    assert bbox[2] - ORIGIN[0] < 0.0355


def test_bbox_of_near_a_pole_spans_every_longitude() -> None:
    bbox = query("near;maxDistance==50000", "Point", [10, 89.9]).bbox()
    assert bbox is not None
    assert (bbox[0], bbox[2], bbox[3]) == (-180.0, 180.0, 90.0)


def test_bbox_of_near_the_antimeridian_spans_every_longitude() -> None:
    bbox = query("near;maxDistance==2000", "Point", [179.995, 10]).bbox()
    assert bbox is not None and (bbox[0], bbox[2]) == (-180.0, 180.0)
    assert bbox[1] > 9.9 and bbox[3] < 10.1


def test_bbox_of_near_with_a_huge_distance_is_the_whole_world() -> None:
    assert query("near;maxDistance==1e8", "Point", ORIGIN).bbox() == (-180, -90, 180, 90)


def test_bbox_of_near_polygon_grows_its_bounds() -> None:
    bbox = query("near;maxDistance==1000").bbox()
    assert bbox is not None
    assert bbox[0] < 0 < 1 < bbox[2] and bbox[1] < 0 < 1 < bbox[3]
    assert in_box(offset([1, 1], 1000, 45), bbox)


lons = st.floats(-180, 180)
lats = st.floats(-90, 90)
distances = st.floats(0.001, 5_000_000)


@settings(max_examples=300, deadline=None)
@given(lon=lons, lat=lats, max_distance=distances, azimuth=st.floats(-180, 180),
       fraction=st.floats(0, 1.5))
def test_near_point_bbox_never_excludes_a_match(lon: float, lat: float, max_distance: float,
                                                azimuth: float, fraction: float) -> None:
    near = query(f"near;maxDistance=={max_distance!r}", "Point", [lon, lat])
    bbox = near.bbox()
    assert bbox is not None
    candidate = offset([lon, lat], max_distance * fraction, azimuth)
    if near.matches(point(candidate)):
        assert in_box(candidate, bbox)
    if max_distance * fraction < max_distance - 0.001:  # Geod.fwd is exact to nanometres
        assert near.matches(point(candidate))


@settings(max_examples=200, deadline=None)
@given(lon=st.floats(-179, 178), lat=st.floats(-89, 88), size=st.floats(0.001, 1),
       max_distance=distances, corner=st.integers(0, 3), azimuth=st.floats(-180, 180),
       fraction=st.floats(0, 1.5), geometry=st.sampled_from(["Polygon", "LineString"]))
def test_near_shape_bbox_never_excludes_a_match(lon: float, lat: float, size: float,
                                                max_distance: float, corner: int,
                                                azimuth: float, fraction: float,
                                                geometry: str) -> None:
    ring = box(lon, lat, lon + size, lat + size)
    coordinates = ring if geometry == "Polygon" else ring[0][:3]
    near = query(f"near;maxDistance=={max_distance!r}", geometry, coordinates)
    bbox = near.bbox()
    assert bbox is not None
    candidate = offset(ring[0][corner], max_distance * fraction, azimuth)
    if near.matches(point(candidate)):
        assert in_box(candidate, bbox)


def boxes_intersect(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


@settings(max_examples=300, deadline=None)
@given(x=st.floats(-2, 3), y=st.floats(-2, 3), width=st.floats(0.01, 2),
       height=st.floats(0.01, 2), kind=st.sampled_from(["Point", "LineString", "Polygon"]),
       georel=st.sampled_from(["within", "contains", "intersects", "equals", "overlaps"]),
       query_geometry=st.sampled_from(["Polygon", "LineString"]))
def test_relation_bbox_never_excludes_a_match(x: float, y: float, width: float, height: float,
                                              kind: str, georel: str,
                                              query_geometry: str) -> None:
    relation = query(georel, query_geometry,
                     SQUARE if query_geometry == "Polygon" else [[0, 0], [1, 1]])
    bbox = relation.bbox()
    assert bbox is not None
    coordinates: Any = {"Point": [x, y], "LineString": [[x, y], [x + width, y + height]],
                        "Polygon": box(x, y, x + width, y + height)}[kind]
    stored = {"type": kind, "coordinates": coordinates}
    if relation.matches(stored):
        assert boxes_intersect(geometry_bbox(stored), bbox)


# --- GeoProperty values --------------------------------------------------------------


@pytest.mark.parametrize("value", [
    point([8, 40]),
    point([8, 40, 12.5]),
    point([-180, -90]),
    {"type": "MultiPoint", "coordinates": [[8, 40], [9, 41]]},
    {"type": "LineString", "coordinates": [[8, 40], [9, 41]]},
    {"type": "MultiLineString", "coordinates": [[[8, 40], [9, 41]], [[1, 1], [2, 2]]]},
    polygon(SQUARE),
    polygon([*box(0, 0, 4, 4), box(1, 1, 2, 2)[0]]),
    {"type": "MultiPolygon", "coordinates": [SQUARE, box(5, 5, 6, 6)]},
    {"type": "GeometryCollection", "geometries": [point([8, 40]), polygon(SQUARE)]},
    {"type": "Point", "coordinates": [8, 40], "bbox": [8, 40, 8, 40]},
])
def test_validate_geometry_accepts_geojson_and_returns_it(value: dict[str, Any]) -> None:
    assert validate_geometry(value) is value


@pytest.mark.parametrize("value", [
    pytest.param(None, id="null"),
    pytest.param([8, 40], id="bare coordinates"),
    pytest.param({"coordinates": [8, 40]}, id="no type"),
    pytest.param({"type": "Point"}, id="no coordinates"),
    pytest.param({"type": "Circle", "coordinates": [8, 40]}, id="unknown type"),
    pytest.param({"type": "Feature", "geometry": point([8, 40])}, id="Feature"),
    pytest.param(point([8, 91]), id="latitude out of range"),
    pytest.param(point([-180.5, 0]), id="longitude out of range"),
    pytest.param(point([[8, 40]]), id="wrong nesting"),
    pytest.param(point([8, 40, "high"]), id="string altitude"),
    pytest.param(polygon(box(0, 0, 1, 1)[0]), id="Polygon missing a level"),
    pytest.param(polygon([[[0, 0], [1, 0], [1, 1], [0, 1]]]), id="open ring"),
    pytest.param(polygon([[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0, 5]]]), id="ring ends elsewhere"),
    pytest.param({"type": "LineString", "coordinates": []}, id="empty LineString"),
    pytest.param({"type": "GeometryCollection"}, id="collection without geometries"),
    pytest.param({"type": "GeometryCollection", "geometries": []}, id="empty collection"),
    pytest.param({"type": "GeometryCollection", "geometries": [point([8, 95])]},
                 id="collection member out of range"),
    pytest.param({"type": "GeometryCollection", "geometries": [
        {"type": "GeometryCollection", "geometries": [point([8, 40])]}]},
        id="nested collection"),
])
def test_validate_geometry_rejects_invalid_values(value: Any) -> None:
    with pytest.raises(BadRequestData):
        validate_geometry(value)


def test_geometry_bbox_of_each_kind() -> None:
    assert geometry_bbox(point([8, 40])) == (8.0, 40.0, 8.0, 40.0)
    assert geometry_bbox(polygon([*box(0, 0, 4, 3), box(1, 1, 2, 2)[0]])) == (0, 0, 4, 3)
    collection = {"type": "GeometryCollection",
                  "geometries": [point([-5, 50.5]), {"type": "LineString",
                                                     "coordinates": [[1, 2, 300], [3, -4]]}]}
    assert geometry_bbox(collection) == (-5.0, -4.0, 3.0, 50.5)


def test_geometry_bbox_rejects_invalid_geometry() -> None:
    with pytest.raises(BadRequestData):
        geometry_bbox(point([8, 400]))


# --- robustness ----------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=5), children, max_size=5),
    max_leaves=30,
)
numbers = st.floats(-200, 200) | st.integers(-200, 200) | st.floats()
nested_numbers = st.recursive(st.lists(numbers, max_size=4),
                              lambda children: st.lists(children, max_size=4), max_leaves=40)
georels = st.sampled_from(["near;maxDistance==1000", "near;minDistance==5", "within",
                           "contains", "intersects", "equals", "disjoint", "overlaps"])
geometry_names = st.sampled_from(["Point", "MultiPoint", "LineString", "MultiLineString",
                                  "Polygon", "MultiPolygon", "GeometryCollection"])


def parse_or_bad_request(*args: Any) -> GeoQuery | None:
    """parse_geo_query, turning the only allowed error into None."""
    try:
        return parse_geo_query(*args)
    except BadRequestData:
        return None


@settings(max_examples=300, deadline=None)
@given(georel=st.none() | st.text(), geometry=st.none() | st.text(),
       coordinates=st.none() | st.text(), geoproperty=st.none() | st.text())
def test_parse_arbitrary_strings_returns_or_raises_bad_request_data(
        georel: str | None, geometry: str | None, coordinates: str | None,
        geoproperty: str | None) -> None:
    parse_or_bad_request(georel, geometry, coordinates, geoproperty)


@settings(max_examples=300, deadline=None)
@given(georel=georels | st.text(), geometry=geometry_names,
       coordinates=nested_numbers, as_text=st.booleans(), stored=json_values)
def test_parse_arbitrary_coordinates_then_match_never_fails(
        georel: str, geometry: str, coordinates: list[Any], as_text: bool, stored: Any) -> None:
    raw = json.dumps(coordinates) if as_text else coordinates
    parsed = parse_or_bad_request(georel, geometry, raw)
    if parsed is not None:
        parsed.bbox()
        assert isinstance(parsed.matches(stored), bool)
        assert isinstance(parsed.matches({"type": geometry, "coordinates": coordinates}), bool)


@settings(max_examples=300, deadline=None)
@given(value=json_values | st.fixed_dictionaries({"type": geometry_names,
                                                  "coordinates": nested_numbers}))
def test_validate_geometry_only_returns_or_raises_bad_request_data(value: Any) -> None:
    try:
        assert validate_geometry(value) is value
    except BadRequestData:
        return
    minx, miny, maxx, maxy = geometry_bbox(value)
    assert -180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90


def test_near_measures_lines_in_metres_at_high_latitude() -> None:
    # From [0, 85] the line's end [1, 85] is ~9.7 km away and [0, 85.6] ~67 km:
    # a nearest point chosen in degrees would pick the wrong end.
    line = {"type": "LineString", "coordinates": [[1, 85], [0, 85.6]]}
    assert query("near;maxDistance==20000", "Point", [0, 85]).matches(line)
    assert not query("near;maxDistance==5000", "Point", [0, 85]).matches(line)
