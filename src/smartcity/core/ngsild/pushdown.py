"""The part of a ``q`` query a store can answer from its value index.

Only conjuncts on the plain value of a top-level attribute, compared with a number
or a string, are handed down; each becomes a condition the store may use to narrow
candidates. The full predicate still runs on what the store returns, so a store may
ignore these conditions or over-approximate them, but never drop a true match.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from smartcity.core.ngsild.query_language import (
    And,
    Kind,
    Op,
    QExpr,
    Range,
    Scalar,
    Term,
    ValueList,
)

_ORDERED = {Op.GT: ">", Op.GE: ">=", Op.LT: "<", Op.LE: "<="}


@dataclass(frozen=True)
class ValueFilter:
    """``attr`` (IRI) has a scalar value ``op`` ``values``.

    ``op`` is one of ``in`` (any of ``values``), ``between`` (two bounds, inclusive)
    or a comparison (``>``, ``>=``, ``<``, ``<=``) with one value; ``column`` says
    whether the values are numbers (``num``) or strings (``str``).
    """

    attr: str
    op: str
    column: str
    values: tuple[float | str, ...]


def value_filters(expr: QExpr, expand: Callable[[str], str]) -> tuple[ValueFilter, ...]:
    terms = expr.operands if isinstance(expr, And) else (expr,)
    found = []
    for term in terms:
        if isinstance(term, Term):
            pushed = _term_filter(term, expand)
            if pushed is not None:
                found.append(pushed)
    return tuple(found)


def _column(kind: Kind) -> str | None:
    return {Kind.NUMBER: "num", Kind.STRING: "str"}.get(kind)


def _term_filter(term: Term, expand: Callable[[str], str]) -> ValueFilter | None:
    path = term.path
    if len(path.names) != 1 or path.member or path.keys or path.linked or term.op is None:
        return None
    attr = expand(path.names[0])
    value = term.value
    if isinstance(value, Scalar):
        column = _column(value.kind)
        if column is None:
            return None
        if term.op == Op.EQ:
            return ValueFilter(attr, "in", column, (value.value,))
        if term.op in _ORDERED:
            return ValueFilter(attr, _ORDERED[term.op], column, (value.value,))
        return None
    if isinstance(value, Range) and term.op == Op.EQ and value.low.kind == value.high.kind:
        column = _column(value.low.kind)
        if column is not None:
            return ValueFilter(attr, "between", column, (value.low.value, value.high.value))
    if isinstance(value, ValueList) and term.op == Op.EQ and value.items:
        kinds = {item.kind for item in value.items}
        column = _column(kinds.pop()) if len(kinds) == 1 else None
        if column is not None:
            return ValueFilter(attr, "in", column, tuple(i.value for i in value.items))
    return None
