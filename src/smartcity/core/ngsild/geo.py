"""NGSI-LD geo-queries and GeoProperty values (ETSI GS CIM 009 V1.9.1, clause 4.10).

Geometries are GeoJSON (RFC 7946): positions are ``[longitude, latitude(, altitude)]``
in WGS 84 degrees. Spatial relations other than ``near`` are evaluated by shapely in the
plane of those degrees (DE-9IM, altitude ignored, no wrapping across the antimeridian),
which is what GeoJSON prescribes for edges. ``near`` distances are geodesic, in metres,
on the WGS 84 ellipsoid.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy
import shapely
from pyproj import Geod, Transformer
from shapely.errors import ShapelyError
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from shapely.ops import nearest_points

from smartcity.core.ngsild.errors import BadRequestData

__all__ = [
    "GEORELS",
    "QUERY_GEOMETRIES",
    "GeoQuery",
    "geometry_bbox",
    "parse_geo_query",
    "validate_geometry",
]

Position = Sequence[float]
BBox = tuple[float, float, float, float]

GEORELS = frozenset({"near", "within", "contains", "intersects", "equals", "disjoint",
                     "overlaps"})
# Geometry types a geo-query may use; a stored GeoProperty may also be a collection.
QUERY_GEOMETRIES = frozenset({"Point", "MultiPoint", "LineString", "MultiLineString",
                              "Polygon", "MultiPolygon"})
_COLLECTION = "GeometryCollection"

_GEOD = Geod(ellps="WGS84")
# Smallest radius of curvature of the WGS 84 ellipsoid (meridional, at the equator:
# a·(1 − e²) ≈ 6 335 439 m), rounded down. Lengths on the ellipsoid are never shorter
# than the same lat/lon curve on a sphere of this radius, so a spherical cap of angular
# radius d / _R_MIN contains every point within geodesic distance d: the near bbox
# derived from it can never drop a true match.
_R_MIN = 6_335_000.0
# Slack, in degrees, against rounding in the bbox arithmetic (about 1 mm).
_BBOX_EPSILON = 1e-8
# Largest magnitude accepted for any coordinate (altitude included).
_LARGEST = 1e300

_DISTANCE = re.compile(r"(maxDistance|minDistance)==(.*)", re.DOTALL)
# ASCII only: \d alone would also accept other scripts' digits.
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?", re.ASCII)
# Characters an attribute name may not contain (clause 4.6.2), plus whitespace.
_BAD_NAME_CHARS = re.compile(r"[<>\"'=;()\s]")

# Predicate(query, stored) for each georel but near; the query geometry comes first so
# that shapely uses its prepared form. "within" means the stored geometry lies within
# the query geometry, hence the swapped predicates for within and contains.
_PREDICATES: dict[str, Callable[[BaseGeometry, BaseGeometry], bool]] = {
    "within": shapely.contains,
    "contains": shapely.within,
    "intersects": shapely.intersects,
    "equals": shapely.equals,
    "disjoint": shapely.disjoint,
    "overlaps": shapely.overlaps,
}
# For a stored Point these georels are a point-in-geometry test that needs no shapely
# object for the point: about twice as fast on the most common kind of location.
_POINT_TESTS: dict[str, Callable[[BaseGeometry, float, float], bool]] = {
    "within": shapely.contains_xy,
    "intersects": shapely.intersects_xy,
}
# Failures shapely or pyproj may raise on malformed stored data. NaN coordinates make
# shapely warn (RuntimeWarning), which is an error where warnings are turned into errors.
_STORED_DATA_ERRORS = (ShapelyError, ValueError, TypeError, KeyError, IndexError,
                       AttributeError, OverflowError, RuntimeWarning)


@dataclass(frozen=True)
class GeoQuery:
    """A parsed geo-query: ``georel`` applied to the ``geoproperty`` of each entity."""

    georel: str
    geometry: BaseGeometry
    max_distance: float | None = None
    min_distance: float | None = None
    geoproperty: str = "location"
    # (lon, lat) of a Point query geometry, for the near Point-to-Point fast path.
    _point: tuple[float, float] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.georel not in GEORELS:
            raise BadRequestData(f"Unknown georel {self.georel!r}")
        # Prepared once, so that each matches() call reuses the query's spatial index.
        shapely.prepare(self.geometry)
        point = None
        if self.geometry.geom_type == "Point":
            point = (self.geometry.x, self.geometry.y)
        object.__setattr__(self, "_point", point)

    def bbox(self) -> BBox | None:
        """Lon/lat box every matching geometry intersects, or None when nothing bounds it."""
        if self.georel == "disjoint":
            return None
        if self.georel == "near":
            if self.max_distance is None:
                return None
            return _expand_bounds(self.geometry.bounds, self.max_distance)
        # within, contains, intersects, equals and overlaps all need a common point.
        return self.geometry.bounds

    def distance(self, geojson: dict[str, Any]) -> float | None:
        """Metres from the query geometry to a stored one; None if it is unusable."""
        try:
            return self._distance(geojson)
        except _STORED_DATA_ERRORS:
            return None

    def matches(self, geojson: dict[str, Any]) -> bool:
        """Whether a stored GeoJSON geometry satisfies the query; False if it is unusable."""
        try:
            if self.georel == "near":
                return self._near(geojson)
            point_test = _POINT_TESTS.get(self.georel)
            if point_test is not None and geojson.get("type") == "Point":
                lon, lat = geojson["coordinates"][:2]
                return bool(point_test(self.geometry, lon, lat))
            return bool(_PREDICATES[self.georel](self.geometry, _stored_shape(geojson)))
        except _STORED_DATA_ERRORS:
            return False

    def _near(self, geojson: dict[str, Any]) -> bool:
        distance = self._distance(geojson)
        if self.max_distance is not None and distance > self.max_distance:
            return False
        return self.min_distance is None or distance >= self.min_distance

    def _distance(self, geojson: dict[str, Any]) -> float:
        """Geodesic distance in metres between the query and a stored geometry."""
        if self._point is not None and geojson.get("type") == "Point":
            # The common case (a Point location near a point) needs no shapely object.
            lon, lat = geojson["coordinates"][:2]
            # pyproj would wrap such a longitude, or answer NaN for such a latitude.
            if not (-180 <= lon <= 180 and -90 <= lat <= 90):
                raise ValueError("coordinates outside the globe")
            return float(_GEOD.inv(self._point[0], self._point[1], lon, lat)[2])
        stored = _stored_shape(geojson)
        if shapely.intersects(self.geometry, stored):
            return 0.0
        if self._point is not None:
            # From a point, an azimuthal equidistant projection centred on it keeps every
            # distance from the centre exact, so the nearest part of a line or polygon is
            # found in metres, not in degrees (which mislead at high latitudes).
            projected = shapely.transform(stored, _equidistant_from(*self._point))
            return float(shapely.distance(projected, _ORIGIN))
        # Approximation: the closest pair of points is found in the lon/lat plane, then
        # measured on the ellipsoid. The result is the true geodesic length between two
        # points of the geometries, so it never underestimates the minimum distance; it
        # can overestimate it slightly for long edges at high latitudes.
        on_query, on_stored = nearest_points(self.geometry, stored)
        return float(_GEOD.inv(on_query.x, on_query.y, on_stored.x, on_stored.y)[2])


_ORIGIN = shapely.Point(0.0, 0.0)


@lru_cache(maxsize=256)
def _equidistant_from(lon: float, lat: float) -> Callable[[Any], Any]:
    """Coordinates (n x 2 array of lon/lat) into metres from (lon, lat), azimuthal
    equidistant on WGS 84."""
    transformer = Transformer.from_crs(
        "EPSG:4326", f"+proj=aeqd +lat_0={lat} +lon_0={lon} +datum=WGS84 +units=m",
        always_xy=True)

    def project(coords: Any) -> Any:
        x, y = transformer.transform(coords[:, 0], coords[:, 1])
        return numpy.column_stack([x, y])
    return project


def _stored_shape(geojson: dict[str, Any]) -> BaseGeometry:
    """The shapely form of a stored geometry; ValueError if it is empty or off the globe."""
    stored = shape(geojson)
    # An empty geometry, or one with NaN or out-of-range coordinates, would still be
    # disjoint from the query: refuse it so that unusable data never matches.
    minx, miny, maxx, maxy = stored.bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise ValueError("empty geometry or coordinates outside the globe")
    return stored


def _expand_bounds(bounds: BBox, distance: float) -> BBox:
    """Bounds grown by a geodesic distance, generously (see _R_MIN)."""
    minx, miny, maxx, maxy = bounds
    radius = math.degrees(distance / _R_MIN) + _BBOX_EPSILON
    south, north = miny - radius, maxy + radius
    if south <= -90.0 or north >= 90.0:
        # The distance reaches a pole: every longitude is in reach.
        return (-180.0, max(south, -90.0), 180.0, min(north, 90.0))
    # Widest longitude span of a spherical cap of that radius, centred at the latitude
    # of the query farthest from the equator: asin(sin r / cos φ). Defined here because
    # the cap does not reach the pole (r < 90° − |φ|).
    farthest = math.radians(max(abs(miny), abs(maxy)))
    ratio = math.sin(math.radians(radius)) / math.cos(farthest)
    spread = math.degrees(math.asin(min(ratio, 1.0))) + _BBOX_EPSILON
    west, east = minx - spread, maxx + spread
    if west < -180.0 or east > 180.0:
        # Geodesic distances wrap around the antimeridian while the box cannot.
        return (-180.0, south, 180.0, north)
    return (west, south, east, north)


def parse_geo_query(georel: str | None, geometry: str | None,
                    coordinates: str | list[Any] | None,
                    geoproperty: str | None = None) -> GeoQuery | None:
    """Build a GeoQuery from the georel, geometry, coordinates and geoproperty parameters.

    ``coordinates`` is the JSON text of the query parameter, or the already parsed array
    of a query body or subscription ``geoQ``. Returns None when georel, geometry and
    coordinates are all absent; raises BadRequestData when some are missing or invalid.
    """
    if georel is None or geometry is None or coordinates is None:
        given = {"georel": georel, "geometry": geometry, "coordinates": coordinates}
        missing = [name for name, v in given.items() if v is None]
        if len(missing) == len(given):
            return None
        raise BadRequestData(f"A geo-query needs georel, geometry and coordinates; "
                             f"missing: {', '.join(missing)}")
    relation, max_distance, min_distance = _parse_georel(georel)
    if not isinstance(geometry, str) or geometry not in QUERY_GEOMETRIES:
        raise BadRequestData(f"Unsupported geometry {geometry!r}; expected one of "
                             f"{', '.join(sorted(QUERY_GEOMETRIES))}")
    query_shape = _query_shape(geometry, _parse_coordinates(coordinates))
    return GeoQuery(relation, query_shape, max_distance, min_distance,
                    _parse_geoproperty(geoproperty))


def _parse_georel(georel: str) -> tuple[str, float | None, float | None]:
    """Split ``near;maxDistance==2000`` into the relation and its distance bounds."""
    if not isinstance(georel, str):
        raise BadRequestData("georel must be a string")
    relation, *modifiers = georel.split(";")
    if relation not in GEORELS:
        raise BadRequestData(f"Unknown georel {relation!r}; expected one of "
                             f"{', '.join(sorted(GEORELS))}")
    if relation != "near":
        if modifiers:
            raise BadRequestData(f"georel {relation!r} takes no modifiers")
        return relation, None, None
    distances: dict[str, float] = {}
    for modifier in modifiers:
        found = _DISTANCE.fullmatch(modifier)
        if found is None:
            raise BadRequestData(f"Invalid near modifier {modifier!r}; expected "
                                 f"maxDistance==<metres> or minDistance==<metres>")
        name, number = found.groups()
        if name in distances:
            raise BadRequestData(f"{name} is given twice in georel")
        distances[name] = _parse_distance(name, number)
    # Clause 4.10: near takes exactly one distance modifier.
    if len(distances) != 1:
        raise BadRequestData("georel near needs one of maxDistance==<metres> or "
                             "minDistance==<metres>")
    max_distance, min_distance = distances.get("maxDistance"), distances.get("minDistance")
    if max_distance == 0:
        raise BadRequestData("maxDistance must be greater than zero")
    return relation, max_distance, min_distance


def _parse_distance(name: str, text: str) -> float:
    if _NUMBER.fullmatch(text) is None:
        raise BadRequestData(f"{name} must be a number of metres, not {text!r}")
    value = float(text)
    if value < 0:
        raise BadRequestData(f"{name} must not be negative")
    if not math.isfinite(value):
        raise BadRequestData(f"{name} is too large")
    return value


def _parse_coordinates(coordinates: str | list[Any]) -> Any:
    if isinstance(coordinates, str):
        try:
            return json.loads(coordinates)
        except (ValueError, RecursionError) as exc:
            # RecursionError: the text nests arrays deeper than the JSON parser goes.
            raise BadRequestData("coordinates is not a valid JSON array") from exc
    if isinstance(coordinates, list | tuple):
        return coordinates
    raise BadRequestData("coordinates must be a JSON array")


def _query_shape(geometry: str, coordinates: Any) -> BaseGeometry:
    _positions(geometry, coordinates, "coordinates")
    try:
        query_shape = shape({"type": geometry, "coordinates": coordinates})
    except (ValueError, TypeError, ShapelyError) as exc:
        # e.g. positions mixing two and three dimensions.
        raise BadRequestData(f"Unusable {geometry} coordinates: {exc}") from exc
    # A self-intersecting query polygon is kept as given: clients compare it with stored
    # geometries of the same shape (equals), and predicates GEOS cannot decide on it
    # simply do not match (see GeoQuery.matches).
    return query_shape


def _parse_geoproperty(geoproperty: str | None) -> str:
    if geoproperty is None:
        return "location"
    if not isinstance(geoproperty, str) or not geoproperty \
            or _BAD_NAME_CHARS.search(geoproperty):
        raise BadRequestData(f"Invalid geoproperty {geoproperty!r}")
    return geoproperty


def validate_geometry(value: object) -> dict[str, Any]:
    """Check that a GeoProperty value is a GeoJSON geometry and return it unchanged."""
    if not isinstance(value, dict):
        raise BadRequestData("A GeoProperty value must be a GeoJSON geometry object")
    _geometry_positions(value, "value")
    return value


def geometry_bbox(value: dict[str, Any]) -> BBox:
    """(minx, miny, maxx, maxy) of a GeoJSON geometry; BadRequestData if it is invalid."""
    positions = _geometry_positions(value, "value")
    lons = [p[0] for p in positions]
    lats = [p[1] for p in positions]
    return (float(min(lons)), float(min(lats)), float(max(lons)), float(max(lats)))


def _geometry_positions(value: object, where: str) -> list[Position]:
    """Every position of a GeoJSON geometry object, after checking its structure."""
    if not isinstance(value, dict):
        raise BadRequestData(f"{where} must be a GeoJSON geometry object")
    kind = value.get("type")
    if kind == _COLLECTION:
        members = value.get("geometries")
        if not isinstance(members, list) or not members:
            raise BadRequestData(f"{where}: a GeometryCollection needs a non-empty "
                                 f"'geometries' array")
        positions: list[Position] = []
        for i, member in enumerate(members):
            # RFC 7946 §3.1.8 advises against nesting; refusing it also bounds recursion.
            if isinstance(member, dict) and member.get("type") == _COLLECTION:
                raise BadRequestData(f"{where}.geometries[{i}]: nested GeometryCollections "
                                     f"are not supported")
            positions += _geometry_positions(member, f"{where}.geometries[{i}]")
        return positions
    if not isinstance(kind, str) or kind not in QUERY_GEOMETRIES:
        raise BadRequestData(f"{where}: unsupported geometry type {kind!r}; expected one of "
                             f"{', '.join(sorted([*QUERY_GEOMETRIES, _COLLECTION]))}")
    if "coordinates" not in value:
        raise BadRequestData(f"{where}: a {kind} needs 'coordinates'")
    return _positions(kind, value["coordinates"], f"{where}.coordinates")


def _positions(kind: str, coordinates: Any, where: str) -> list[Position]:
    """Positions of the coordinates of a ``kind`` geometry, checking nesting and ranges."""
    if kind == "Point":
        return [_position(coordinates, where)]
    if kind == "MultiPoint":
        return [_position(p, f"{where}[{i}]")
                for i, p in enumerate(_array(coordinates, where, 1, "position"))]
    if kind == "LineString":
        return _line(coordinates, where)
    if kind == "Polygon":
        return _polygon(coordinates, where)
    part = _line if kind == "MultiLineString" else _polygon
    positions: list[Position] = []
    for i, item in enumerate(_array(coordinates, where, 1, "part")):
        positions += part(item, f"{where}[{i}]")
    return positions


def _array(value: Any, where: str, minimum: int, items: str) -> Sequence[Any]:
    if not isinstance(value, list | tuple):
        raise BadRequestData(f"{where} must be an array of {items}s")
    if len(value) < minimum:
        raise BadRequestData(f"{where} needs at least {minimum} {items}(s)")
    return value


def _line(value: Any, where: str) -> list[Position]:
    return [_position(p, f"{where}[{i}]")
            for i, p in enumerate(_array(value, where, 2, "position"))]


def _polygon(value: Any, where: str) -> list[Position]:
    positions: list[Position] = []
    for i, ring in enumerate(_array(value, where, 1, "linear ring")):
        ring_where = f"{where}[{i}]"
        points = [_position(p, f"{ring_where}[{j}]")
                  for j, p in enumerate(_array(ring, ring_where, 4, "position"))]
        if list(points[0]) != list(points[-1]):
            raise BadRequestData(f"{ring_where}: a linear ring must end at its first "
                                 f"position (closed ring)")
        positions += points
    return positions


def _position(value: Any, where: str) -> Position:
    if not isinstance(value, list | tuple) or not 2 <= len(value) <= 3:
        raise BadRequestData(f"{where} must be a position [longitude, latitude(, altitude)]")
    for number in value:
        # bool is an int to Python but not a number to JSON. The bound also refuses NaN,
        # infinities and integers too large for a float (shapely would overflow on them).
        if isinstance(number, bool) or not isinstance(number, int | float) \
                or not abs(number) <= _LARGEST:
            raise BadRequestData(f"{where} holds {number!r}, not a finite number")
    lon, lat = value[0], value[1]
    if not -180 <= lon <= 180:
        raise BadRequestData(f"{where}: longitude {lon} is outside [-180, 180]")
    if not -90 <= lat <= 90:
        raise BadRequestData(f"{where}: latitude {lat} is outside [-90, 90]")
    return value
