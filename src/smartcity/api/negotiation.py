"""HTTP edge of NGSI-LD: media types, the @context Link header, bodies, tenants, options."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from smartcity.core.ngsild.context import CORE_CONTEXT_URL, ContextCompiler, TermMap
from smartcity.core.ngsild.errors import (
    BadRequestData,
    InvalidRequest,
    LengthRequired,
    NgsiLdError,
    NotAcceptable,
    PayloadTooLarge,
    UnsupportedMediaType,
)

JSON, JSON_LD, GEO_JSON, MERGE_PATCH = ("application/json", "application/ld+json",
                                        "application/geo+json", "application/merge-patch+json")
CONTEXT_REL = "http://www.w3.org/ns/json-ld#context"
_LINK = re.compile(r'<([^>]*)>\s*((?:;\s*[^;,]+)*)')
_TENANT = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
TENANT_HEADER = "NGSILD-Tenant"


def tenant_of(request: Request) -> str:
    tenant = request.headers.get(TENANT_HEADER)
    if tenant is None or tenant == "":
        return ""
    if not _TENANT.match(tenant):
        raise BadRequestData(f"Invalid tenant name: {tenant!r}")
    return tenant


def link_context(request: Request) -> str | None:
    """The @context URL of a JSON-LD Link header, if one is given."""
    header = request.headers.get("link")
    if not header:
        return None
    found: list[str] = []
    for match in _LINK.finditer(header):
        url, params = match.group(1), match.group(2)
        if CONTEXT_REL in params:
            found.append(url.strip())
    if len(found) > 1:
        raise BadRequestData("More than one JSON-LD @context Link header")
    if not found:
        return None
    if not re.match(r"^https?://", found[0]):
        raise BadRequestData(f"The @context Link must be an http(s) URL: {found[0]!r}")
    return found[0]


def accepted(request: Request, offered: tuple[str, ...] = (JSON, JSON_LD)) -> str:
    """The media type to answer with (clause 6.3.4, RFC 9110 5.3.2), 406 if none fits.

    Each offered type takes the weight of the most specific range that matches it;
    the highest weight wins and ties go to the first offered type.
    """
    header = request.headers.get("accept")
    if not header:
        return offered[0]
    ranges: list[tuple[str, float]] = []
    for part in header.split(","):
        pieces = [p.strip() for p in part.split(";")]
        quality = 1.0
        for param in pieces[1:]:
            if param.startswith("q="):
                try:
                    quality = min(max(float(param[2:]), 0.0), 1.0)
                except ValueError:
                    quality = 1.0
        if pieces[0]:
            ranges.append((pieces[0].lower(), quality))
    best: tuple[float, str] | None = None
    for media in offered:
        weight = _weight(media, ranges)
        if weight > 0 and (best is None or weight > best[0]):
            best = (weight, media)
    if best is None:
        raise NotAcceptable(f"None of {header!r} can be produced; offered: {', '.join(offered)}")
    return best[1]


def _weight(media: str, ranges: list[tuple[str, float]]) -> float:
    kind = media.split("/")[0] + "/*"
    for candidate in (media, kind, "*/*"):
        weights = [q for r, q in ranges if r == candidate]
        if weights:
            return max(weights)
    return 0.0


@dataclass
class Body:
    data: Any
    context: Any  # the @context the body was written with (URL, list or object), or None
    ld: bool


def content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def read_json(request: Request, max_bytes: int, allowed: tuple[str, ...]) -> Any:
    """The body parsed as JSON, after media-type, length and size checks."""
    raw = await read_raw(request, max_bytes, allowed)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The body is not valid JSON: {exc}") from None


async def read_raw(request: Request, max_bytes: int, allowed: tuple[str, ...]) -> bytes:
    """The body, after media-type, length and size checks; never empty."""
    if content_type(request) not in allowed:
        raise UnsupportedMediaType(f"Content-Type must be one of {', '.join(allowed)}")
    length = request.headers.get("content-length")
    if length is None:
        raise LengthRequired("A request body needs a Content-Length header")
    if length.isdigit() and int(length) > max_bytes:
        raise PayloadTooLarge(f"The body is larger than {max_bytes} bytes")
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > max_bytes:
            raise PayloadTooLarge(f"The body is larger than {max_bytes} bytes")
    if not raw:
        raise InvalidRequest("The request body is empty")
    return bytes(raw)


async def read_body(request: Request, max_bytes: int, *, patch: bool = False) -> Body:
    """Parse a JSON / JSON-LD body and find its @context, after media-type checks."""
    data = await read_json(request, max_bytes,
                           (JSON, JSON_LD, MERGE_PATCH) if patch else (JSON, JSON_LD))
    ctype = content_type(request)
    link = link_context(request)
    if ctype == JSON_LD:
        if link is not None:
            raise BadRequestData("application/ld+json bodies carry their @context inline, "
                                 "not in a Link header")
        context = _inline_context(data)
        # Arrays (batches) carry one @context per entity, checked item by item.
        if context is None and not isinstance(data, list):
            raise BadRequestData("An application/ld+json body needs an @context")
        return Body(data, context, True)
    if isinstance(data, dict) and "@context" in data:
        raise BadRequestData("An application/json body must not hold an @context; "
                             "use application/ld+json or a Link header")
    return Body(data, link, False)


def _inline_context(data: Any) -> Any:
    if isinstance(data, dict):
        return data.get("@context")
    return None


async def compile_context(compiler: ContextCompiler, context: Any) -> TermMap:
    """A term map for the @context; compiled off the event loop when it needs fetching."""
    if context is None:
        return compiler.core
    cached = compiler.cached(context)
    if cached is not None:
        return cached
    return await asyncio.to_thread(compiler.compile, context)


async def link_terms(compiler: ContextCompiler, request: Request) -> tuple[TermMap, Any]:
    """The term map of the request's Link header @context (the core one without), and
    that context."""
    context = link_context(request)
    return await compile_context(compiler, context), context


def allow_params(request: Request, allowed: frozenset[str]) -> None:
    """Refuse query parameters the operation does not define (clause 6.3.20)."""
    for name in request.query_params:
        if name not in allowed:
            raise InvalidRequest(f"Unknown query parameter {name!r}")


def parse_options(request: Request, allowed: frozenset[str]) -> set[str]:
    options: set[str] = set()
    for raw in request.query_params.getlist("options"):
        for option in raw.split(","):
            option = option.strip()
            if option not in allowed:
                raise InvalidRequest(f"Unknown option {option!r}")
            options.add(option)
    return options


def json_response(body: Any, status: int = 200, media: str = JSON, context: Any = None,
                  headers: dict[str, str] | None = None, *, inline: bool = True) -> Response:
    """A JSON body; JSON-LD gets its @context inline, plain JSON gets it as a Link header.

    GeoJSON carries it inline unless ``inline`` is false (``Prefer: body=json``), then
    as a Link header.
    """
    out_headers = dict(headers or {})
    if media == GEO_JSON and context is not ... and isinstance(body, dict) and inline:
        # GeoJSON carries its @context inline by default (clause 6.3.15).
        body = {**body, "@context": context if context is not None else CORE_CONTEXT_URL}
    elif media == JSON_LD and context is not ...:
        ctx = context if context is not None else CORE_CONTEXT_URL
        if isinstance(body, dict):
            body = {**body, "@context": ctx}
        elif isinstance(body, list):
            body = [{**item, "@context": ctx} if isinstance(item, dict) else item
                    for item in body]
    elif media in (JSON, GEO_JSON) and context is not ...:
        url = context if isinstance(context, str) else CORE_CONTEXT_URL
        link = f'<{url}>; rel="{CONTEXT_REL}"; type="application/ld+json"'
        out_headers["Link"] = ", ".join(filter(None, [link, out_headers.get("Link")]))
    return Response(orjson.dumps(body), status_code=status, media_type=media,
                    headers=out_headers)


def problem_response(error: NgsiLdError) -> Response:
    if isinstance(error, LengthRequired):
        # RFC 9110: a 411 answers the missing length itself, with no body to delimit.
        return Response(status_code=error.status)
    return Response(orjson.dumps(error.problem()), status_code=error.status,
                    media_type=JSON)
