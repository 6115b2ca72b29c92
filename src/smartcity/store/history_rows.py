"""How a temporal instance fits a row: a number column and a JSON remainder.

Most city history is a numeric Property observed at a time; such an instance is stored
as its number alone (``rest`` is None) and rebuilt from the row's time. Anything else
keeps the members the columns cannot carry as JSON. Integers stay integers.
"""

from __future__ import annotations

from typing import Any

import orjson

from smartcity.core.ngsild.instants import format_instant
from smartcity.core.ngsild.model import Instance

_INT64 = 2**63


def numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and (
        not isinstance(value, int) or -_INT64 <= value < _INT64)


def encode(time: int, body: Instance) -> tuple[int | float | None, bytes | None]:
    """(num, rest) of an instance body."""
    if body.get("type", "Property") != "Property" or not numeric(body.get("value")):
        return None, orjson.dumps(body)
    if len(body) == 3 and body.get("observedAt") == format_instant(time) \
            and "type" in body:
        return body["value"], None
    rest = {k: v for k, v in body.items() if k != "value"}
    return body["value"], orjson.dumps(rest)


def decode(time: int, num: int | float | None, rest: bytes | None) -> Instance:
    if rest is None:
        return {"type": "Property", "value": num, "observedAt": format_instant(time)}
    body: Instance = orjson.loads(rest)
    if num is not None:
        body["value"] = num
    return body
