"""Reading request parameters that shape answers: formats, attrs, pick/omit, pagination."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from smartcity.api.negotiation import GEO_JSON, JSON, JSON_LD, accepted, json_response
from smartcity.core.ngsild.context import TermMap
from smartcity.core.ngsild.errors import BadRequestData, InvalidRequest, TooManyResults
from smartcity.core.ngsild.projection import Projection, depth, parse_projection
from smartcity.core.ngsild.query import split_list
from smartcity.core.ngsild.render import CONCISE, KEY_VALUES, NORMALIZED, View

FORMAT_OPTIONS = {"keyValues": KEY_VALUES, "simplified": KEY_VALUES, "concise": CONCISE,
                  "normalized": NORMALIZED}
READ_OPTIONS = frozenset({*FORMAT_OPTIONS, "sysAttrs"})
_ENTITY_MEMBERS = {"id", "type", "scope"}
_SHAPE = {"attrs", "options", "format", "lang", "pick", "omit", "geometryProperty",
          "datasetId", "join", "joinLevel", "containedBy", "entityMap", "expandValues",
          "local", "csf", "via"}
RETRIEVE_PARAMS = frozenset({*_SHAPE, "type"})
QUERY_PARAMS = frozenset({*_SHAPE, "type", "id", "idPattern", "q", "scopeQ", "georel",
                          "geometry", "coordinates", "geoproperty", "limit", "offset",
                          "count", "orderBy", "orderFrom", "collation", "splitEntities"})
BATCH_QUERY_PARAMS = frozenset({*_SHAPE, "limit", "offset", "count"})
WRITE_PARAMS = frozenset({"options", "type", "local", "datasetId", "deleteAll"})


def view_of(params: Mapping[str, str], terms: TermMap, options: set[str],
            attrs: list[str] | None = None) -> View:
    """The view asked by query parameters (or a Query body's members)."""
    formats = {FORMAT_OPTIONS[o] for o in options if o in FORMAT_OPTIONS}
    if params.get("format"):
        if params["format"] not in FORMAT_OPTIONS:
            raise InvalidRequest(f"Unknown format {params['format']!r}")
        formats = {FORMAT_OPTIONS[params["format"]]}
    if len(formats) > 1:
        raise BadRequestData("Only one of keyValues, concise and normalized may be asked")
    attr_names = attrs if attrs is not None else split_list(params.get("attrs")) \
        if params.get("attrs") else None
    pick = _projection(params.get("pick"), terms)
    omit = _projection(params.get("omit"), terms)
    if (pick is not None or omit is not None) and attr_names is not None:
        raise BadRequestData("pick and omit cannot be combined with attrs")
    if pick is not None and omit is not None and pick.keys() & omit.keys():
        raise BadRequestData("A member cannot be both picked and omitted")
    join = params.get("join")
    if join not in (None, "inline", "flat", "@none"):
        raise BadRequestData("join must be inline, flat or @none")
    level = 1
    if params.get("joinLevel") is not None:
        level = _int(params["joinLevel"], 1, "joinLevel")
        if level < 1:
            raise BadRequestData("joinLevel must be at least 1")
    join = None if join == "@none" else join
    nested = max(depth(pick or {}), depth(omit or {}))
    if nested and (join is None or nested > level):
        raise BadRequestData("A nested pick/omit reaches further than the join asks for")
    return View(format=formats.pop() if formats else NORMALIZED,
                sys_attrs="sysAttrs" in options,
                attrs=frozenset(terms.expand(a) for a in attr_names)
                if attr_names is not None else None,
                pick=pick, omit=omit, lang=params.get("lang") or None,
                dataset_ids=frozenset(split_list(params.get("datasetId")))
                if params.get("datasetId") else None,
                join=join, join_level=level)


def _projection(text: str | None, terms: TermMap) -> Projection | None:
    if text is None:
        return None
    return _expand_projection(parse_projection(text), terms)


def _expand_projection(projection: Projection, terms: TermMap) -> Projection:
    return {name if name in _ENTITY_MEMBERS else terms.expand(name):
            _expand_projection(sub, terms) if sub else None
            for name, sub in projection.items()}


def pagination(request: Request, default: int, maximum: int) -> tuple[int, int, bool]:
    params = request.query_params
    limit = _int(params.get("limit"), default, "limit")
    offset = _int(params.get("offset"), 0, "offset")
    count = _bool(params.get("count"), "count")
    if limit < 0 or offset < 0:
        raise BadRequestData("limit and offset must not be negative")
    if limit == 0 and not count:
        raise BadRequestData("limit=0 is only allowed with count=true")
    if limit > maximum:
        raise TooManyResults(f"limit must be at most {maximum}", maximum=maximum)
    return offset, limit, count


def _int(text: str | None, default: int, name: str) -> int:
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise BadRequestData(f"{name} must be an integer") from None


def _bool(text: str | None, name: str) -> bool:
    if text is None:
        return False
    if text not in ("true", "false"):
        raise BadRequestData(f"{name} must be true or false")
    return text == "true"


def entity_media(request: Request) -> str:
    media = accepted(request, (JSON, JSON_LD, GEO_JSON))
    if media != GEO_JSON and "geometryProperty" in request.query_params:
        raise BadRequestData("geometryProperty only applies to application/geo+json answers")
    return media


def feature(entity: dict[str, Any], geometry_property: str) -> dict[str, Any]:
    """An entity (already rendered) as a GeoJSON Feature."""
    geometry = entity.get(geometry_property)
    if isinstance(geometry, list):
        # Several instances: the default one (no datasetId) gives the Feature's geometry.
        geometry = next((g for g in geometry if isinstance(g, dict) and "datasetId" not in g),
                        None)
    elif isinstance(geometry, dict) and "dataset" in geometry and len(geometry) == 1:
        geometry = geometry["dataset"].get("@none")
    if isinstance(geometry, dict) and "value" in geometry:
        geometry = geometry["value"]
    if not (isinstance(geometry, dict) and "type" in geometry):
        geometry = None
    properties = {k: v for k, v in entity.items() if k != "id"}
    return {"id": entity.get("id"), "type": "Feature", "geometry": geometry,
            "properties": properties}


def entity_answer(request: Request, rendered: Any, media: str, context: Any,
                  headers: dict[str, str] | None = None) -> Response:
    """Answer one rendered entity or a list of them in the negotiated media type."""
    if media == GEO_JSON:
        geometry_property = request.query_params.get("geometryProperty", "location")
        if isinstance(rendered, list):
            body: Any = {"type": "FeatureCollection",
                         "features": [feature(e, geometry_property) for e in rendered]}
        else:
            body = feature(rendered, geometry_property)
        inline = "body=json" not in request.headers.get("prefer", "")
        return json_response(body, media=GEO_JSON, context=context, headers=headers,
                             inline=inline)
    return json_response(rendered, media=media, context=context, headers=headers)
