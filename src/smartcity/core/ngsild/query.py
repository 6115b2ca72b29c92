"""Entity queries: from request parameters to a store selection plus a predicate."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from smartcity.core.ngsild import geo
from smartcity.core.ngsild.context import NGSI_LD, TermMap
from smartcity.core.ngsild.errors import BadRequestData
from smartcity.core.ngsild.model import Entity
from smartcity.core.ngsild.normalize import check_attribute_name, check_entity_id, check_name
from smartcity.core.ngsild.ordering import Ordering, order_attributes, parse_order_by
from smartcity.core.ngsild.pushdown import value_filters
from smartcity.core.ngsild.query_language import (
    QExpr,
    compile_q,
    linked_attribute_names,
    linked_depth,
    parse_q,
    without_linked,
)
from smartcity.core.ngsild.scope_query import ScopeMatcher, parse_scope_q
from smartcity.core.ngsild.storage import Predicate, Selection
from smartcity.core.ngsild.user_patterns import compile_pattern

SYSTEM_NAMES = frozenset({"createdAt", "modifiedAt", "deletedAt", "observedAt"})
SYSTEM_IRIS = frozenset(NGSI_LD + n for n in SYSTEM_NAMES)
_TYPE_TOKEN = re.compile(r"\s*([(),|;]|[^(),|;\s]+)")
MAX_ID_PATTERN = 512


def parse_type_expression(text: str, expand: Callable[[str], str]) -> tuple[frozenset[str], ...]:
    """An NGSI-LD type expression as a disjunction of conjunctions of type IRIs.

    ``,`` and ``|`` are OR, ``;`` is AND (binding tighter), parentheses group.
    """
    tokens = [m.group(1) for m in _TYPE_TOKEN.finditer(text)]
    if "".join(tokens) != re.sub(r"\s+", "", text) or not tokens:
        raise BadRequestData(f"Invalid type expression: {text!r}")
    pos = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> str:
        nonlocal pos
        pos += 1
        return tokens[pos - 1]

    def disjunction() -> list[frozenset[str]]:
        terms = conjunction()
        while peek() in (",", "|"):
            take()
            terms = terms + conjunction()
        return terms

    def conjunction() -> list[frozenset[str]]:
        terms = atom()
        while peek() == ";":
            take()
            right = atom()
            terms = [a | b for a in terms for b in right]
        return terms

    def atom() -> list[frozenset[str]]:
        token = peek()
        if token == "(":
            take()
            inner = disjunction()
            if peek() != ")":
                raise BadRequestData(f"Unbalanced parentheses in type expression: {text!r}")
            take()
            return inner
        if token is None or token in "(),|;":
            raise BadRequestData(f"Invalid type expression: {text!r}")
        return [frozenset({expand(check_name(take(), "Entity type"))})]

    result = disjunction()
    if pos != len(tokens):
        raise BadRequestData(f"Invalid type expression: {text!r}")
    return tuple(dict.fromkeys(result))


def split_list(text: str | None) -> list[str]:
    if text is None:
        return []
    items = [item.strip() for item in text.split(",")]
    if any(not item for item in items):
        raise BadRequestData(f"Empty item in list: {text!r}")
    return items


@dataclass(frozen=True)
class EntityQuery:
    selection: Selection
    predicate: Predicate | None
    attrs: frozenset[str] | None
    order: Ordering | None = None
    linked: LinkedFilter | None = None
    scope: ScopeMatcher | None = None  # scopeQ, also held by the predicate unless left out
    # Attributes whose values decide what matches (q, geoproperty, orderBy), and those
    # q reads on linked entities: access control refuses a filter on what the caller
    # may not read.
    filters: frozenset[str] = frozenset()
    linked_filters: frozenset[str] = frozenset()


@dataclass(frozen=True)
class LinkedFilter:
    """A q predicate that reads linked entities, and how many hops they are away."""

    predicate: Predicate
    levels: int


def build_query(params: dict[str, Any], terms: TermMap, *, require_filter: bool = False,
                scope_in_predicate: bool = True) -> EntityQuery:
    """Turn query parameters (type, id, idPattern, attrs, q, scopeQ, geo-query) into a query.

    ``params`` values are strings as they come from a URL, except ``coordinates``,
    which may already be parsed (POST /entityOperations/query, subscriptions). Without
    ``scope_in_predicate`` the caller applies ``scopeQ`` itself (temporal queries judge
    it over time).
    """
    wildcard = params.get("type") == "*"
    if wildcard and params.get("local") == "false":
        raise BadRequestData("type=* selects every local entity; it cannot go with local=false")
    types = parse_type_expression(params["type"], terms.expand) \
        if params.get("type") not in (None, "", "*") else None
    ids = tuple(split_list(params.get("id"))) or None
    for entity_id in ids or ():
        check_entity_id(entity_id)
    attrs = frozenset(terms.expand(check_attribute_name(a, terms))
                      for a in split_list(params.get("attrs"))) or None
    geo_query = geo.parse_geo_query(params.get("georel"), params.get("geometry"),
                                    params.get("coordinates"), params.get("geoproperty"))
    q_expr = parse_q(params["q"]) if params.get("q") else None
    q_names = q_expr.attribute_names() if q_expr is not None else set()
    linked_levels = _linked_query(q_expr, params) if q_expr is not None else 0
    if params.get("csf"):
        # Context source filters only matter for registrations; still, a bad one is refused.
        parse_q(params["csf"])
    if require_filter and not (
            types or wildcard or geo_query
            or params.get("local") == "true"
            or (attrs and attrs - SYSTEM_IRIS)
            or (q_expr is not None and q_expr.attribute_names() - SYSTEM_NAMES)):
        raise BadRequestData("A query needs at least one of type, id, idPattern, attrs, q "
                             "or a geo-query (system attributes alone select everything)")
    checks: list[Predicate] = []
    if params.get("idPattern"):
        checks.append(_id_pattern(params["idPattern"]))
    expand_values = frozenset(split_list(params.get("expandValues")))
    linked: LinkedFilter | None = None
    if q_expr is not None and linked_levels:
        # The store narrows with the rest of q; the linked terms run once links are known.
        linked = LinkedFilter(compile_q(q_expr, terms.expand, expand_values), linked_levels)
        q_expr = without_linked(q_expr)
    if q_expr is not None:
        checks.append(compile_q(q_expr, terms.expand, expand_values))
    scope = parse_scope_q(params["scopeQ"]) if params.get("scopeQ") else None
    if scope is not None and scope_in_predicate:
        checks.append(lambda entity: scope(entity.get("scope")))
    bbox = None
    if geo_query is not None:
        geoproperty = terms.expand(geo_query.geoproperty)
        box = geo_query.bbox()
        if box is not None:
            bbox = (geoproperty, box)
        checks.append(_geo_check(geo_query, geoproperty))
    predicate: Predicate | None = None
    if len(checks) == 1:
        predicate = checks[0]
    elif checks:
        predicate = lambda entity: all(check(entity) for check in checks)  # noqa: E731
    order = parse_order_by(params["orderBy"], terms.expand, params.get("collation"),
                           params.get("orderFrom"), params.get("orderGeometry")) \
        if params.get("orderBy") else None
    if order is None and params.get("collation") is not None:
        parse_order_by("id", terms.expand, params["collation"])  # validates the tag
    values = value_filters(q_expr, terms.expand) if q_expr is not None else ()
    filters = {terms.expand(name) for name in q_names}
    if geo_query is not None:
        filters.add(terms.expand(geo_query.geoproperty))
    linked_names = linked_attribute_names(q_expr) if q_expr is not None else set()
    return EntityQuery(Selection(types=types, ids=ids, attrs=attrs, bbox=bbox, values=values),
                       predicate, attrs, order, linked, scope,
                       frozenset(filters | order_attributes(order)),
                       frozenset(terms.expand(n) for n in linked_names))


def _linked_query(expr: QExpr, params: dict[str, Any]) -> int:
    """The relationship depth of ``rel{attr}`` terms (clause 4.9); they may reach no
    further than the ``join``/``joinLevel`` of the same request."""
    depth = linked_depth(expr)
    if not depth:
        return 0
    level = params.get("joinLevel") or "1"
    if not params.get("join") or params["join"] == "@none" or not level.isdigit() \
            or depth > int(level):
        raise BadRequestData("A linked-entity term in q reaches further than the join asks")
    return depth


def _id_pattern(pattern: str) -> Predicate:
    if len(pattern) > MAX_ID_PATTERN:
        raise BadRequestData("idPattern is too long")
    regex = compile_pattern(pattern, "idPattern")
    return lambda entity: regex.search(entity["id"]) is not None


def _geo_check(query: geo.GeoQuery, geoproperty: str) -> Predicate:
    def check(entity: Entity) -> bool:
        return any(query.matches(inst["value"])
                   for inst in entity["attrs"].get(geoproperty, ())
                   if isinstance(inst.get("value"), dict))
    return check
