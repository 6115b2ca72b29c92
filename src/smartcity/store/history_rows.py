"""How a temporal instance fits a row: a number column and a JSON remainder.

Most city history is a numeric Property observed at a time; such an instance is stored
as its number alone (``rest`` is None) and rebuilt from the row's time. Anything else
is kept whole as JSON, with its number (a boolean as 1 or 0) also in ``num`` for
aggregation.
Integers stay integers.
"""

from __future__ import annotations

from typing import Any

import orjson

from smartcity.core.ngsild.history import NOT_KEPT
from smartcity.core.ngsild.instants import format_instant
from smartcity.core.ngsild.model import Instance

_INT64 = 2**63
# Below and above every stored time (a signed 64-bit integer): where reading a series
# starts, and where it ends when nothing ends it.
BEFORE_ALL = -_INT64
AFTER_ALL = _INT64 - 1
# The members of an instance that the row's number and time give back alone.
_PLAIN = frozenset({"type", "value", "observedAt", "createdAt", "modifiedAt"})


def numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and (
        not isinstance(value, int) or -_INT64 <= value < _INT64)


def encode(time: int, body: Instance) -> tuple[int | float | None, bytes | None]:
    """(num, rest) of an instance body. ``rest`` is the body as given (its system
    members and datasetId are dropped when read back: cheaper than on every write)."""
    value = body.get("value")
    if body.get("type", "Property") != "Property":
        return None, orjson.dumps(body)
    if isinstance(value, bool):  # aggregates count true as 1 and false as 0
        return int(value), orjson.dumps(body)
    if not numeric(value):
        return None, orjson.dumps(body)
    if body.keys() <= _PLAIN and body.get("observedAt") == format_instant(time) \
            and "type" in body:
        return value, None
    return value, orjson.dumps(body)


def decode(time: int, num: int | float | None, rest: bytes | None) -> Instance:
    if rest is None:
        return {"type": "Property", "value": num, "observedAt": format_instant(time)}
    body: Instance = orjson.loads(rest)
    for member in NOT_KEPT & body.keys():
        del body[member]
    return body


def widened(span: tuple[int, int] | None, first: int, last: int) -> tuple[int, int]:
    """An entity's span of times taking in one more series' ``first`` and ``last``."""
    return (first, last) if span is None else (min(span[0], first), max(span[1], last))
