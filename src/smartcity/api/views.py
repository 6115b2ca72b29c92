"""Reading request parameters that shape answers: formats, attrs, pick/omit, pagination."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from smartcity.api.negotiation import GEO_JSON, JSON, JSON_LD, accepted, json_response
from smartcity.core.ngsild.context import TermMap
from smartcity.core.ngsild.errors import BadRequestData, TooManyResults
from smartcity.core.ngsild.model import Entity
from smartcity.core.ngsild.query import split_list
from smartcity.core.ngsild.render import CONCISE, KEY_VALUES, NORMALIZED, View, render_entity

FORMAT_OPTIONS = {"keyValues": KEY_VALUES, "simplified": KEY_VALUES, "concise": CONCISE,
                  "normalized": NORMALIZED}
READ_OPTIONS = frozenset({*FORMAT_OPTIONS, "sysAttrs"})
_ENTITY_MEMBERS = {"id", "type", "scope"}


def view_of(request: Request, terms: TermMap, options: set[str]) -> View:
    params = request.query_params
    formats = {FORMAT_OPTIONS[o] for o in options if o in FORMAT_OPTIONS}
    if params.get("format"):
        if params["format"] not in FORMAT_OPTIONS:
            raise BadRequestData(f"Unknown format {params['format']!r}")
        formats = {FORMAT_OPTIONS[params["format"]]}
    if len(formats) > 1:
        raise BadRequestData("Only one of keyValues, concise and normalized may be asked")
    pick = _members(params.get("pick"), terms)
    omit = _members(params.get("omit"), terms)
    if pick is not None and omit:
        raise BadRequestData("pick and omit cannot be used together")
    attrs = frozenset(terms.expand(a) for a in split_list(params.get("attrs"))) \
        if params.get("attrs") else None
    dataset_ids = frozenset(split_list(params.get("datasetId"))) \
        if params.get("datasetId") else None
    return View(format=formats.pop() if formats else NORMALIZED,
                sys_attrs="sysAttrs" in options, attrs=attrs, pick=pick,
                omit=omit or frozenset(), lang=params.get("lang") or None,
                dataset_ids=dataset_ids)


def _members(text: str | None, terms: TermMap) -> frozenset[str] | None:
    if text is None:
        return None
    return frozenset(n if n in _ENTITY_MEMBERS else terms.expand(n) for n in split_list(text))


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
    return accepted(request, (JSON, JSON_LD, GEO_JSON))


def render_many(entities: list[Entity], terms: TermMap, view: View) -> list[dict[str, Any]]:
    return [render_entity(e, terms, view) for e in entities]


def feature(entity: dict[str, Any], geometry_property: str) -> dict[str, Any]:
    """An entity (already rendered) as a GeoJSON Feature."""
    geometry = entity.get(geometry_property)
    if isinstance(geometry, dict) and "value" in geometry:
        geometry = geometry["value"]
    elif isinstance(geometry, list):
        geometry = geometry[0].get("value") if isinstance(geometry[0], dict) else None
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
        return json_response(body, media=GEO_JSON, context=context, headers=headers)
    return json_response(rendered, media=media, context=context, headers=headers)
